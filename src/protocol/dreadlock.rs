//! Dreadlock dialect: decodes one line framed as [`super::line::Frame::Dreadlock`]
//! (protocol.md §9) into a typed request.
//!
//! Pure and allocation-free: the key borrows from the caller's buffer. The
//! grammar is strict on purpose: a line that does not fit it closes the
//! connection without a reply (§2.4, log code 17), because a Dreadlock client
//! has no way to read an error for a request it did not frame as we expect.
//!
//! ```text
//! lock-request   = "lock" SP key SP timeout-ms [SP] CRLF
//! unlock-request = "unlock" SP key [SP] CRLF
//! key            = 1*256 ASCII letters and digits (A-Z a-z 0-9)
//! timeout-ms     = 1*13 ASCII digits, value 0 ..= 9223372036000
//! ```
//!
//! SP is one or more spaces (0x20 only: a TAB is not a separator, so it lands in
//! a field and fails that field's rule). Verbs match in any letter case. The
//! framer has already removed the LF and the one CR before it; any other CR is
//! an ordinary byte here and so malformed.

use std::fmt;

/// Longest key the grammar allows, in bytes (§9 `key = 1*256 …`). The 256-byte
/// line limit binds first in practice; this keeps the parser correct on its own.
pub const MAX_KEY_LEN: usize = 256;

/// Most digits a timeout may have (§9 `timeout-ms = 1*13 …`). 13 digits cannot
/// overflow a `u64`, so the value is accumulated without checked arithmetic.
pub const MAX_TIMEOUT_DIGITS: usize = 13;

/// Largest timeout in milliseconds: 9223372036 s (the most seconds whose
/// nanosecond count fits an `i64`, §3.2) × 1000.
pub const MAX_TIMEOUT_MS: u64 = 9_223_372_036_000;

/// A decoded Dreadlock request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DreadlockRequest<'a> {
    /// `lock <key> <ms>`: acquire with a timeout in milliseconds; 0 is a try.
    Lock { key: &'a str, timeout_ms: u64 },
    /// `unlock <key>`: release the hold this connection took with `lock`.
    Unlock { key: &'a str },
}

/// The line does not fit the §9 grammar. Close the connection without a reply
/// and log code 17 (§11). Deliberately carries no detail: the wire says nothing
/// and the log only needs the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("malformed Dreadlock line")
    }
}

impl std::error::Error for Malformed {}

/// §9: "key = 1*256 ASCII letters and digits (A-Z a-z 0-9)".
static KEY_BYTE: [bool; 256] = key_byte_table();

const fn key_byte_table() -> [bool; 256] {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < table.len() {
        table[byte] = (byte as u8).is_ascii_alphanumeric();
        byte += 1;
    }
    table
}

/// Decodes a Dreadlock line (the content of [`super::line::Frame::Dreadlock`]).
///
/// * `Ok(Lock { key, timeout_ms })` / `Ok(Unlock { key })`: the line fits the
///   grammar; `key` is 1..=256 ASCII letters and digits, `timeout_ms` is at most
///   [`MAX_TIMEOUT_MS`].
/// * `Err(Malformed)`: anything else: an unknown verb, a leading space, a key
///   with other bytes, a missing, non-numeric, over-long or out-of-range
///   timeout, extra fields, TABs, stray CRs.
pub fn parse_dreadlock(line: &[u8]) -> Result<DreadlockRequest<'_>, Malformed> {
    // The verb opens the line: recognition (§9) happens at the line start, so a
    // leading space is outside the grammar (and the framer never yields one).
    if line.first() == Some(&b' ') {
        return Err(Malformed);
    }
    // Runs of spaces separate fields; empty pieces are the runs themselves and
    // the optional trailing [SP].
    let mut fields = line.split(|&b| b == b' ').filter(|f| !f.is_empty());
    let verb = fields.next().ok_or(Malformed)?;
    let key = parse_key(fields.next().ok_or(Malformed)?)?;
    let request = if verb.eq_ignore_ascii_case(b"lock") {
        let timeout_ms = parse_timeout_ms(fields.next().ok_or(Malformed)?)?;
        DreadlockRequest::Lock { key, timeout_ms }
    } else if verb.eq_ignore_ascii_case(b"unlock") {
        DreadlockRequest::Unlock { key }
    } else {
        return Err(Malformed);
    };
    match fields.next() {
        None => Ok(request),
        Some(_) => Err(Malformed),
    }
}

fn parse_key(field: &[u8]) -> Result<&str, Malformed> {
    if field.len() > MAX_KEY_LEN || !field.iter().all(|&b| KEY_BYTE[usize::from(b)]) {
        return Err(Malformed);
    }
    // Cannot fail once every byte is ASCII; mapped rather than unwrapped so no
    // input can reach a panic.
    std::str::from_utf8(field).map_err(|_| Malformed)
}

fn parse_timeout_ms(field: &[u8]) -> Result<u64, Malformed> {
    if field.len() > MAX_TIMEOUT_DIGITS {
        return Err(Malformed);
    }
    let value = field.iter().try_fold(0u64, |acc, &b| {
        b.is_ascii_digit()
            .then(|| acc * 10 + u64::from(b - b'0'))
            .ok_or(Malformed)
    })?;
    if value > MAX_TIMEOUT_MS {
        return Err(Malformed);
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(key: &str, timeout_ms: u64) -> Result<DreadlockRequest<'_>, Malformed> {
        Ok(DreadlockRequest::Lock { key, timeout_ms })
    }

    fn unlock(key: &str) -> Result<DreadlockRequest<'_>, Malformed> {
        Ok(DreadlockRequest::Unlock { key })
    }

    #[test]
    fn valid_lines() {
        let key256 = "k".repeat(256);
        let lock256 = format!("lock {key256} 1");
        let cases: &[(&[u8], Result<DreadlockRequest<'_>, Malformed>)] = &[
            (b"lock build42 5000", lock("build42", 5000)),
            (b"LOCK  build42   0 ", lock("build42", 0)),
            (b"LoCk Job 7", lock("Job", 7)),
            (b"lock k 0", lock("k", 0)),
            (b"lock k 00", lock("k", 0)),
            (b"lock k 9223372036000", lock("k", 9_223_372_036_000)),
            (b"lock k 0000000000001", lock("k", 1)),
            (b"lock k 1234567890123", lock("k", 1_234_567_890_123)),
            (b"lock ABCxyz0189 1   ", lock("ABCxyz0189", 1)),
            (b"unlock build42", unlock("build42")),
            (b"UNLOCK build42 ", unlock("build42")),
            (b"uNlOcK    b   ", unlock("b")),
            (b"unlock 0", unlock("0")),
            (lock256.as_bytes(), lock(&key256, 1)),
        ];
        for (line, want) in cases {
            assert_eq!(
                parse_dreadlock(line),
                *want,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn malformed_lines() {
        let key257 = format!("lock {} 1", "k".repeat(257));
        let cases: &[&[u8]] = &[
            b"",
            b" ",
            b"lock",
            b"lock ",
            b"lock k",
            b"lock k ",
            b"lockk 5",
            b"lock bad-key 100",
            b"lock bad.key 100",
            b"lock k\xc3\xa9 100",
            b"lock k -1",
            b"lock k +1",
            b"lock k 1.5",
            b"lock k 1e3",
            b"lock k 0x10",
            b"lock k five",
            b"lock k 12345678901234",
            b"lock k 00000000000001",
            b"lock k 9223372036001",
            b"lock k 9999999999999",
            b"lock k 5 extra",
            b"lock k 5 6",
            b"lock k\t5",
            b"lock\tk 5",
            b"lock k 5\t",
            b"lock k 5\r",
            b"lock k\r 5",
            b"lock k 5\n",
            b" lock k 5",
            b"unlock",
            b"unlock ",
            b"unlock k extra",
            b"unlock k 5",
            b"unlock bad-key",
            b"unlock k\r",
            b"unlockk k",
            b"lock_ k 5",
            b"lok k 5",
            b"release k",
            b"l k 5",
            key257.as_bytes(),
        ];
        for line in cases {
            assert_eq!(
                parse_dreadlock(line),
                Err(Malformed),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn key_byte_table_is_the_spec_rule() {
        for b in 0..=255u8 {
            let expected = b.is_ascii_uppercase() || b.is_ascii_lowercase() || b.is_ascii_digit();
            assert_eq!(KEY_BYTE[usize::from(b)], expected, "byte {b:#04x}");
            let line = [b"unlock a".as_slice(), &[b]].concat();
            let got = parse_dreadlock(&line);
            if expected {
                assert!(got.is_ok(), "byte {b:#04x}");
            } else if b != b' ' {
                assert_eq!(got, Err(Malformed), "byte {b:#04x}");
            }
        }
    }

    #[test]
    fn timeout_boundaries() {
        for (digits, ok) in [(1, true), (13, true), (14, false)] {
            let line = format!("lock k {}", "1".repeat(digits));
            let want = "1".repeat(digits).parse::<u64>().ok().filter(|_| ok);
            let got = parse_dreadlock(line.as_bytes()).ok();
            assert_eq!(
                got,
                want.map(|t| DreadlockRequest::Lock {
                    key: "k",
                    timeout_ms: t
                })
            );
        }
        assert_eq!(
            parse_dreadlock(b"lock k 9223372036000"),
            lock("k", MAX_TIMEOUT_MS)
        );
        assert_eq!(parse_dreadlock(b"lock k 9223372036001"), Err(Malformed));
    }

    #[test]
    fn spec_examples_through_the_framer() {
        use crate::protocol::line::{Frame, parse_frame};
        use crate::protocol::{LineLimits, Parsed};
        let cases: &[(&[u8], Result<DreadlockRequest<'_>, Malformed>)] = &[
            (b"lock build42 5000\r\n", lock("build42", 5000)),
            (b"unlock build42\r\n", unlock("build42")),
            (b"LOCK  build42   0 \r\n", lock("build42", 0)),
            (b"lock job 0\r\n", lock("job", 0)),
            (b"lock bad-key 100\r\n", Err(Malformed)),
            (b"lock k 5\r\r\n", Err(Malformed)),
        ];
        for (buf, want) in cases {
            match parse_frame(buf, &LineLimits::for_value_bytes(65536)) {
                Parsed::Complete {
                    value: Frame::Dreadlock(line),
                    consumed,
                } => {
                    assert_eq!(consumed, buf.len());
                    assert_eq!(parse_dreadlock(line), *want, "{buf:?}");
                }
                other => panic!("{buf:?} framed as {other:?}"),
            }
        }
    }

    use crate::test_rng::XorShift;

    #[test]
    fn random_bytes_never_panic() {
        const PREFIXES: [&[u8]; 4] = [b"lock ", b"UNLOCK ", b"lock k ", b"unlock "];
        const COMMON: &[u8] = b"lockunLOCK0123456789 9\t\r-";
        let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
        for round in 0..100_000 {
            let mut line = PREFIXES[rng.below(PREFIXES.len())].to_vec();
            for _ in 0..rng.below(40) {
                let byte = match rng.below(100) {
                    0..=29 => b' ',
                    30..=49 => b'9',
                    50..=89 => COMMON[rng.below(COMMON.len())],
                    _ => rng.next() as u8,
                };
                line.push(byte);
            }
            match parse_dreadlock(&line) {
                Ok(DreadlockRequest::Lock { key, timeout_ms }) => {
                    assert!(timeout_ms <= MAX_TIMEOUT_MS, "round {round}: {line:?}");
                    assert!(valid_key(key), "round {round}: {line:?}");
                }
                Ok(DreadlockRequest::Unlock { key }) => {
                    assert!(valid_key(key), "round {round}: {line:?}");
                }
                Err(Malformed) => {}
            }
        }
    }

    fn valid_key(key: &str) -> bool {
        (1..=MAX_KEY_LEN).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_alphanumeric())
    }
}
