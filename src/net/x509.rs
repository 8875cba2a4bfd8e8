//! The not-after date of a DER certificate, for `stats` and `/metrics`.
//!
//! rustls and webpki validate certificates but do not expose their validity
//! period, so this walks the few DER headers in front of it (RFC 5280 §4.1):
//!
//! ```text
//! Certificate ::= SEQUENCE { tbsCertificate SEQUENCE {
//!     [0] version OPTIONAL, serialNumber INTEGER, signature SEQUENCE,
//!     issuer SEQUENCE, validity SEQUENCE { notBefore Time, notAfter Time }, … } … }
//! Time ::= UTCTime "YYMMDDHHMMSSZ" | GeneralizedTime "YYYYMMDDHHMMSSZ"
//! ```
//!
//! No signature or content is checked here (that is rustls's job, done when
//! the same bytes are loaded); this is a date reader over the operator's own
//! file, bounds-checked at every step, and `None` means "could not tell".

/// DER tags used on the way to `validity`.
const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// A cursor over DER elements.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    /// The next element's tag and content; `None` when malformed or at the end.
    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, rest) = self.0.split_first()?;
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            // Long form: the low bits count the length bytes (at most 4 here:
            // no certificate is 4 GiB).
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let (bytes, after) = rest.split_at(n);
            rest = after;
            bytes.iter().fold(0usize, |l, &b| (l << 8) | usize::from(b))
        };
        if rest.len() < len {
            return None;
        }
        let (body, after) = rest.split_at(len);
        self.0 = after;
        Some((tag, body))
    }

    fn expect(&mut self, tag: u8) -> Option<&'a [u8]> {
        self.next().filter(|(t, _)| *t == tag).map(|(_, body)| body)
    }
}

/// Seconds since 1970-01-01 UTC of the certificate's notAfter, or `None` if
/// the DER does not have the expected shape.
pub fn not_after_unix(cert_der: &[u8]) -> Option<i64> {
    let cert = Der(cert_der).expect(SEQUENCE)?;
    let mut tbs = Der(Der(cert).expect(SEQUENCE)?);
    let (mut tag, mut body) = tbs.next()?;
    if tag == VERSION {
        (tag, body) = tbs.next()?;
    }
    if tag != INTEGER || body.is_empty() {
        return None;
    }
    tbs.expect(SEQUENCE)?; // signature algorithm
    tbs.expect(SEQUENCE)?; // issuer
    let mut validity = Der(tbs.expect(SEQUENCE)?);
    validity.next()?; // notBefore
    let (tag, time) = validity.next()?;
    parse_time(tag, time)
}

/// UTCTime (years 1950–2049, RFC 5280 §4.1.2.5.1) or GeneralizedTime, both in
/// the only form RFC 5280 allows: seconds present, `Z`, no fraction.
fn parse_time(tag: u8, s: &[u8]) -> Option<i64> {
    let (year, rest) = match (tag, s.len()) {
        (UTC_TIME, 13) => {
            let yy = digits(&s[..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &s[2..])
        }
        (GENERALIZED_TIME, 15) => (digits(&s[..4])?, &s[4..]),
        _ => return None,
    };
    if rest.last() != Some(&b'Z') {
        return None;
    }
    let field = |i: usize| digits(&rest[i..i + 2]);
    let (month, day) = (field(0)?, field(2)?);
    let (hour, minute, second) = (field(4)?, field(6)?, field(8)?);
    let valid = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour < 24
        && minute < 60
        && second < 61;
    valid.then(|| days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

fn digits(s: &[u8]) -> Option<i64> {
    s.iter().try_fold(0i64, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0'))
    })
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard
/// Hinnant's `days_from_civil`, the inverse of `http::response::civil_from_days`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let shifted_month = (month + 9) % 12; // 0 = March
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// `unix_secs` as RFC 3339 UTC, e.g. `2027-01-31T23:59:59Z` (times before
/// 1970 show as 1970-01-01T00:00:00Z).
pub fn rfc3339(unix_secs: i64) -> String {
    let secs = u64::try_from(unix_secs).unwrap_or(0);
    let (y, m, d) = crate::http::response::civil_from_days(secs / 86_400);
    let t = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time(UTC_TIME, b"700101000000Z"), Some(0));
        assert_eq!(parse_time(UTC_TIME, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(parse_time(UTC_TIME, b"500101000000Z"), Some(-631_152_000));
        assert_eq!(
            parse_time(GENERALIZED_TIME, b"99991231235959Z"),
            Some(253_402_300_799)
        );
        assert_eq!(
            parse_time(GENERALIZED_TIME, b"20240229120000Z"),
            Some(1_709_208_000)
        );
        for bad in [
            &b"7001010000Z"[..],
            b"700101000000+",
            b"701301000000Z",
            b"70010100000aZ",
        ] {
            assert_eq!(parse_time(UTC_TIME, bad), None, "{bad:?}");
        }
        assert_eq!(parse_time(0x04, b"700101000000Z"), None);
    }

    #[test]
    fn days_round_trip() {
        for days in (0..200_000u64).step_by(37) {
            let (y, m, d) = crate::http::response::civil_from_days(days);
            assert_eq!(days_from_civil(y as i64, m as i64, d as i64), days as i64);
        }
        assert_eq!(rfc3339(1_709_208_000), "2024-02-29T12:00:00Z");
        assert_eq!(rfc3339(-5), "1970-01-01T00:00:00Z");
    }

    /// A minimal certificate shape with long-form lengths and a version.
    #[test]
    fn walks_to_not_after() {
        fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
            let mut v = vec![tag];
            if body.len() < 0x80 {
                v.push(body.len() as u8);
            } else {
                v.extend([0x82, (body.len() >> 8) as u8, body.len() as u8]);
            }
            v.extend_from_slice(body);
            v
        }
        let validity = [
            tlv(UTC_TIME, b"240101000000Z"),
            tlv(GENERALIZED_TIME, b"20300102030405Z"),
        ]
        .concat();
        let issuer = tlv(SEQUENCE, &[b'x'; 200]);
        let tbs = [
            tlv(VERSION, &tlv(INTEGER, &[2])),
            tlv(INTEGER, &[1, 2, 3]),
            tlv(SEQUENCE, &[]),
            issuer,
            tlv(SEQUENCE, &validity),
            tlv(SEQUENCE, &[]),
        ]
        .concat();
        let cert = tlv(
            SEQUENCE,
            &[tlv(SEQUENCE, &tbs), tlv(SEQUENCE, &[])].concat(),
        );
        assert_eq!(not_after_unix(&cert), Some(1_893_553_445));
        assert_eq!(rfc3339(1_893_553_445), "2030-01-02T03:04:05Z");
        // Every truncation is refused, never a panic.
        for n in 0..cert.len() {
            assert_eq!(not_after_unix(&cert[..n]), None, "{n}");
        }
        assert_eq!(not_after_unix(b""), None);
        assert_eq!(not_after_unix(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
    }
}
