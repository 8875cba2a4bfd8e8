//! Request-target pieces (http.md §4.1): splitting the target into path and
//! query, splitting the raw, still-encoded path on `/`, percent-decoding one
//! segment, and reading documented query parameters.
//!
//! Invariants: splitting happens before decoding, so `%2F` is a `/` *inside*
//! one segment and a `{key}` is always exactly one segment; every decoded
//! string is valid UTF-8 or an error; nothing here allocates unless a `%`
//! escape (or a `+` in a query) forces it. Pure: no IO, no state.

use std::borrow::Cow;
use std::fmt;

/// Why a segment or query component could not be decoded. Both are
/// `400 bad_request` (http.md §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// `%` not followed by two hex digits.
    BadEscape,
    /// The decoded bytes are not UTF-8.
    NotUtf8,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecodeError::BadEscape => "bad percent-escape",
            DecodeError::NotUtf8 => "percent-decoded text is not UTF-8",
        })
    }
}

impl std::error::Error for DecodeError {}

/// Why a query parameter could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryError {
    /// A documented parameter's value could not be decoded.
    Decode(&'static str, DecodeError),
    /// A documented parameter was given more than once.
    Repeated(&'static str),
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::Decode(name, e) => write!(f, "query parameter {name}: {e}"),
            QueryError::Repeated(name) => write!(f, "query parameter {name} given twice"),
        }
    }
}

impl std::error::Error for QueryError {}

/// Splits an origin-form target at the first `?` into (path, query). The query
/// is `None` when there is no `?` (and `Some("")` for a bare `?`).
pub fn split_target(target: &str) -> (&str, Option<&str>) {
    match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    }
}

/// The raw segments of a path: `/v1/locks/a%2Fb` gives `v1`, `locks`, `a%2Fb`.
/// The leading `/` does not make an empty first segment; every other `/` does
/// separate two segments, so `/a/` gives `a` and an empty one (a trailing slash is
/// a different path). A path not starting with `/` is returned whole as one
/// segment (the router refuses such paths before splitting).
pub fn segments(raw_path: &str) -> std::str::Split<'_, char> {
    raw_path.strip_prefix('/').unwrap_or(raw_path).split('/')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `raw`; with `plus_is_space`, `+` becomes a space (query
/// strings only). Borrows when there is nothing to decode.
fn decode(raw: &str, plus_is_space: bool) -> Result<Cow<'_, str>, DecodeError> {
    let needs_work = raw
        .bytes()
        .any(|b| b == b'%' || (plus_is_space && b == b'+'));
    if !needs_work {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hi = bytes.next().and_then(hex_value);
                let lo = bytes.next().and_then(hex_value);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push((hi << 4) | lo),
                    _ => return Err(DecodeError::BadEscape),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            _ => out.push(b),
        }
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| DecodeError::NotUtf8)
}

/// Percent-decodes one path segment (`+` stays `+` in a path).
pub fn decode_segment(raw: &str) -> Result<Cow<'_, str>, DecodeError> {
    decode(raw, false)
}

/// Percent-decodes one query-string component, `+` meaning space.
pub fn decode_query_component(raw: &str) -> Result<Cow<'_, str>, DecodeError> {
    decode(raw, true)
}

/// A raw query string (after the `?`), read one documented parameter at a time.
/// Only the names asked for are decoded: parameters an endpoint does not
/// document are ignored, even when malformed (http.md §4.1).
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<'a> {
    raw: &'a str,
}

impl<'a> Query<'a> {
    /// `None` (no `?` at all) behaves like an empty query.
    pub fn new(raw: Option<&'a str>) -> Self {
        Query {
            raw: raw.unwrap_or(""),
        }
    }

    /// The decoded value of parameter `name`.
    ///
    /// * `Ok(None)`: not given;
    /// * `Ok(Some(v))`: given once (`?name` without `=` gives the empty value);
    /// * `Err(Repeated)`: given twice or more;
    /// * `Err(Decode)`: its value has a bad escape or is not UTF-8.
    ///
    /// Pairs whose *name* cannot be decoded are some other parameter and skipped.
    pub fn get(&self, name: &'static str) -> Result<Option<Cow<'a, str>>, QueryError> {
        let mut found = None;
        for pair in self.raw.split('&').filter(|p| !p.is_empty()) {
            let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            match decode_query_component(raw_name) {
                Ok(n) if n == name => {}
                _ => continue,
            }
            if found.is_some() {
                return Err(QueryError::Repeated(name));
            }
            let value =
                decode_query_component(raw_value).map_err(|e| QueryError::Decode(name, e))?;
            found = Some(value);
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_target_at_first_question_mark() {
        assert_eq!(split_target("/v1/watch"), ("/v1/watch", None));
        assert_eq!(
            split_target("/v1/watch?pattern=a?b"),
            ("/v1/watch", Some("pattern=a?b"))
        );
        assert_eq!(split_target("/x?"), ("/x", Some("")));
    }

    #[test]
    fn segments_split_before_decoding() {
        let s: Vec<_> = segments("/v1/locks/a%2Fb/release").collect();
        assert_eq!(s, ["v1", "locks", "a%2Fb", "release"]);
        let s: Vec<_> = segments("/health/").collect();
        assert_eq!(s, ["health", ""]);
        let s: Vec<_> = segments("/").collect();
        assert_eq!(s, [""]);
        let s: Vec<_> = segments("/a//b").collect();
        assert_eq!(s, ["a", "", "b"]);
        let s: Vec<_> = segments("health").collect();
        assert_eq!(s, ["health"]);
    }

    #[test]
    fn segment_decoding() {
        assert!(matches!(
            decode_segment("plain"),
            Ok(Cow::Borrowed("plain"))
        ));
        assert_eq!(decode_segment("a%2Fb").as_deref(), Ok("a/b"));
        assert_eq!(decode_segment("a%2fb").as_deref(), Ok("a/b"));
        assert_eq!(decode_segment("a+b").as_deref(), Ok("a+b"));
        assert_eq!(decode_segment("%C3%A9").as_deref(), Ok("é"));
        assert_eq!(decode_segment("%25").as_deref(), Ok("%"));
        assert_eq!(decode_segment("%20").as_deref(), Ok(" "));
        assert_eq!(decode_segment("%"), Err(DecodeError::BadEscape));
        assert_eq!(decode_segment("a%2"), Err(DecodeError::BadEscape));
        assert_eq!(decode_segment("%zz"), Err(DecodeError::BadEscape));
        assert_eq!(decode_segment("%g0"), Err(DecodeError::BadEscape));
        assert_eq!(decode_segment("%FF"), Err(DecodeError::NotUtf8));
        assert_eq!(decode_segment("%C3"), Err(DecodeError::NotUtf8));
    }

    #[test]
    fn query_components() {
        assert_eq!(decode_query_component("a+b%2Bc").as_deref(), Ok("a b+c"));
        assert_eq!(decode_query_component("%2"), Err(DecodeError::BadEscape));
    }

    #[test]
    fn query_get() {
        let q = Query::new(Some("pattern=orders.*&group=billing&x=%zz&&flag"));
        assert_eq!(q.get("pattern").unwrap().as_deref(), Some("orders.*"));
        assert_eq!(q.get("group").unwrap().as_deref(), Some("billing"));
        assert_eq!(q.get("flag").unwrap().as_deref(), Some(""));
        assert_eq!(q.get("missing").unwrap(), None);
        // Undocumented and malformed: ignored unless asked for.
        assert_eq!(
            q.get("x"),
            Err(QueryError::Decode("x", DecodeError::BadEscape))
        );
        assert_eq!(Query::new(None).get("pattern").unwrap(), None);
    }

    #[test]
    fn query_names_are_decoded_and_repeats_refused() {
        let q = Query::new(Some("pat%74ern=a+b&start=1&start=2&%zz=1"));
        assert_eq!(q.get("pattern").unwrap().as_deref(), Some("a b"));
        assert_eq!(q.get("start"), Err(QueryError::Repeated("start")));
        let q = Query::new(Some("stop=1&st%6Fp=2"));
        assert_eq!(q.get("stop"), Err(QueryError::Repeated("stop")));
        // A repeat is refused even when its value is malformed.
        let q = Query::new(Some("group=a&group=%"));
        assert_eq!(q.get("group"), Err(QueryError::Repeated("group")));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let alphabet = b"%2Fa+&=?/zZ0\xc3\xa9";
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 24) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|i| alphabet[((state >> (i % 8 * 8)) as usize + i) % alphabet.len()])
                .collect();
            let s = String::from_utf8_lossy(&bytes);
            let _ = decode_segment(&s);
            let _ = Query::new(Some(&s)).get("a");
            let _ = segments(&s).count();
        }
    }
}
