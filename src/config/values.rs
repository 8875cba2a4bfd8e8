//! Pure value parsers for config.md §2 and the per-value rules of §3. No IO: each takes
//! the raw text (or bytes) and returns the typed value, or `None` / the rule that was
//! broken; `resolve.rs` turns that into the §5 message naming the flag and source.

use std::net::Ipv6Addr;

use super::MAX_AUTH_TOKEN_BYTES;

/// The rule stated for an invalid boolean (§5).
pub(super) const BOOL_RULE: &str = "must be one of 1, yes, true, on, 0, no, false, off";

/// The accepted `--log-level` values, lowest verbosity first.
const LOG_LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// The rule stated for an invalid `--log-level`.
pub(super) const LOG_LEVEL_RULE: &str = "must be one of off, error, warn, info, debug, trace";

/// The rule stated for an invalid `--http-cors-allowed-origins`.
pub(super) const ORIGINS_RULE: &str = "must be a comma-separated list without empty entries, \
     each * or an origin http://host[:port] or https://host[:port] without path or trailing slash";

/// An integer (§2): ASCII decimal digits only, no sign, `_` or suffix; leading zeros are
/// fine. `None` for anything else, including values beyond `u64` (which are out of every
/// range anyway, so the caller reports the range).
pub(super) fn parse_uint(text: &str) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    text.bytes().try_fold(0u64, |acc, b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// A boolean (§2): `1 yes true on` / `0 no false off`, ASCII case-insensitive.
pub(super) fn parse_bool(text: &str) -> Option<bool> {
    let is = |words: [&str; 4]| words.iter().any(|w| text.eq_ignore_ascii_case(w));
    if is(["1", "yes", "true", "on"]) {
        Some(true)
    } else if is(["0", "no", "false", "off"]) {
        Some(false)
    } else {
        None
    }
}

/// A `--log-level` value, case-insensitive, returned in lower case (an `env_logger` filter).
pub(super) fn parse_log_level(text: &str) -> Option<&'static str> {
    LOG_LEVELS
        .iter()
        .copied()
        .find(|level| text.eq_ignore_ascii_case(level))
}

/// The auth token rules (§3.5): 1..=65536 bytes, no CR or LF, no leading or trailing
/// space or TAB. `Err` is the rule broken; it never contains the token.
pub(super) fn check_token(token: &[u8]) -> Result<(), String> {
    let is_blank = |b: &u8| *b == b' ' || *b == b'\t';
    if token.is_empty() {
        Err("must not be empty".to_owned())
    } else if token.len() > MAX_AUTH_TOKEN_BYTES {
        Err(format!("must be at most {MAX_AUTH_TOKEN_BYTES} bytes"))
    } else if token.iter().any(|b| *b == b'\r' || *b == b'\n') {
        Err("must not contain CR or LF".to_owned())
    } else if token.first().is_some_and(is_blank) || token.last().is_some_and(is_blank) {
        Err("must not start or end with a space or TAB".to_owned())
    } else {
        Ok(())
    }
}

/// The content of an auth token file without leading and trailing spaces, TABs, CRs and
/// LFs (§3.5; exactly these four, unlike `trim_ascii`, which also strips form feeds).
pub(super) fn trim_token(content: &[u8]) -> &[u8] {
    let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let start = content.iter().position(|b| !is_space(b));
    let end = content.iter().rposition(|b| !is_space(b));
    match (start, end) {
        (Some(start), Some(end)) => content.get(start..=end).unwrap_or_default(),
        _ => &[],
    }
}

/// Parses a fence state file (config.md §3.6): one decimal unsigned 64-bit integer
/// followed by an optional LF, nothing else. `None` for any other content, including an
/// empty file. Shared with the fence module, which writes this format.
pub fn parse_fence_state(content: &[u8]) -> Option<u64> {
    let digits = content.strip_suffix(b"\n").unwrap_or(content);
    std::str::from_utf8(digits).ok().and_then(parse_uint)
}

/// A CORS origin list (§3.7): comma-separated, spaces and TABs around entries trimmed,
/// no empty entries, each `*` or `http(s)://host[:port]`. Origins are ASCII-lowercased
/// (scheme and host are case-insensitive; browsers send them in lower case).
pub(super) fn parse_origins(text: &str) -> Option<Vec<String>> {
    text.split(',')
        .map(|entry| entry.trim_matches([' ', '\t']))
        .map(|entry| {
            if entry == "*" {
                Some(entry.to_owned())
            } else {
                let origin = entry.to_ascii_lowercase();
                is_origin(&origin).then_some(origin)
            }
        })
        .collect()
}

/// `http://host[:port]` or `https://host[:port]` (lower case), where host is a DNS name,
/// an IPv4 address or a bracketed IPv6 address, and port is 0..=65535.
fn is_origin(origin: &str) -> bool {
    let Some(authority) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let (host_ok, port) = if let Some(rest) = authority.strip_prefix('[') {
        match rest.split_once(']') {
            Some((v6, port)) => (v6.parse::<Ipv6Addr>().is_ok(), port),
            None => (false, ""),
        }
    } else {
        let end = authority.find(':').unwrap_or(authority.len());
        let (host, port) = authority.split_at(end);
        let host_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_';
        (!host.is_empty() && host.bytes().all(host_byte), port)
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .filter(|digits| !digits.is_empty() && digits.len() <= 5)
            .and_then(parse_uint)
            .is_some_and(|p| p <= u64::from(u16::MAX));
    host_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uint_syntax() {
        assert_eq!(parse_uint("0"), Some(0));
        assert_eq!(parse_uint("33"), Some(33));
        assert_eq!(parse_uint("007"), Some(7));
        assert_eq!(parse_uint("18446744073709551615"), Some(u64::MAX));
        for bad in [
            "",
            "+1",
            "-1",
            "1_000",
            "1k",
            " 1",
            "1 ",
            "0x10",
            "１",
            "18446744073709551616",
        ] {
            assert_eq!(parse_uint(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn bool_syntax() {
        for t in ["1", "yes", "true", "on", "YES", "True", "ON"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["0", "no", "false", "off", "FALSE", "Off"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        for bad in ["", "maybe", "2", "y", "t", " on", "ofF "] {
            assert_eq!(parse_bool(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn log_levels() {
        assert_eq!(parse_log_level("WARN"), Some("warn"));
        assert_eq!(parse_log_level("off"), Some("off"));
        assert_eq!(parse_log_level("Trace"), Some("trace"));
        assert_eq!(parse_log_level("verbose"), None);
        assert_eq!(parse_log_level("dflockd=debug"), None);
    }

    #[test]
    fn token_rules() {
        assert!(check_token(b"s3cret token").is_ok());
        assert!(check_token(&vec![b'a'; MAX_AUTH_TOKEN_BYTES]).is_ok());
        assert!(check_token(&vec![b'a'; MAX_AUTH_TOKEN_BYTES + 1]).is_err());
        for bad in [&b""[..], b"a\nb", b"a\rb", b" a", b"a ", b"\ta", b"a\t"] {
            assert!(check_token(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn token_trimming() {
        assert_eq!(trim_token(b" \t secret \r\n"), b"secret");
        assert_eq!(trim_token(b"a b\n"), b"a b");
        assert_eq!(trim_token(b" \r\n\t"), b"");
        assert_eq!(trim_token(b""), b"");
        // Only the four characters of §3.5 are trimmed.
        assert_eq!(trim_token(b"\x0csecret\x0c"), b"\x0csecret\x0c");
    }

    #[test]
    fn fence_state_content() {
        assert_eq!(parse_fence_state(b"42\n"), Some(42));
        assert_eq!(parse_fence_state(b"42"), Some(42));
        assert_eq!(parse_fence_state(b"0\n"), Some(0));
        assert_eq!(parse_fence_state(b"18446744073709551615\n"), Some(u64::MAX));
        for bad in [
            &b""[..],
            b"\n",
            b"42\n\n",
            b"42\r\n",
            b" 42",
            b"-1",
            b"abc",
            b"18446744073709551616",
            b"\xff",
        ] {
            assert_eq!(parse_fence_state(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn origins() {
        assert_eq!(
            parse_origins("https://a.example, https://b.example:8443 ,*"),
            Some(vec![
                "https://a.example".to_owned(),
                "https://b.example:8443".to_owned(),
                "*".to_owned(),
            ])
        );
        assert_eq!(
            parse_origins("HTTP://Example.COM"),
            Some(vec!["http://example.com".to_owned()])
        );
        assert_eq!(
            parse_origins("http://[::1]:8080,http://127.0.0.1"),
            Some(vec![
                "http://[::1]:8080".to_owned(),
                "http://127.0.0.1".to_owned()
            ])
        );
        for bad in [
            "",
            "a.example",
            "https://a.example/",
            "https://a.example/path",
            "https://a.example,,https://b.example",
            "https://a.example, ",
            "ftp://a.example",
            "https://",
            "https://a.example:",
            "https://a.example:65536",
            "https://a.example:80:80",
            "https://user@a.example",
            "https://a.example?x",
            "http://[::1",
            "http://[nope]",
        ] {
            assert_eq!(parse_origins(bad), None, "{bad:?}");
        }
    }
}
