//! Reply lines and push frames as the client reads them (protocol.md §2.3, §2.6, §6).
//!
//! Nothing here trusts the server: every parse returns `Error::Protocol` (or `None`
//! for push frames) instead of panicking on a short or odd line.

use super::error::{Error, Result};

/// A line the server pushes without a request (protocol.md §2.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Push {
    /// `sig <channel> <payload>`
    Signal(Signal),
    /// `watch <event> <key>`
    Watch(WatchEvent),
    /// `leader <event> <key>`
    Leader(LeaderEvent),
    /// `lease expiring|expired <key> <fence> [<remaining_s>]` (with `lease_notices`)
    Lease(LeaseNotice),
}

/// A lease notice (protocol.md §8.15): a connection with `lease_notices` on
/// gets one when 80% of a lease has passed without a renewal, and one when
/// the lease ran out and the slot was released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseNotice {
    pub key: String,
    /// The fence of the grant (the token's first 16 hex characters).
    pub fence: u64,
    pub kind: LeaseNoticeKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseNoticeKind {
    /// "Your lock is about to expire": this much of the lease is left.
    Expiring { remaining: std::time::Duration },
    /// "Your lock was lost": the lease ran out and the slot was released.
    Expired,
}

/// `expiring <key> <fence> <remaining_s>` or `expired <key> <fence>`.
fn parse_lease(rest: &str) -> Option<LeaseNotice> {
    let mut f = rest.split(' ');
    let (event, key, fence) = (f.next()?, f.next()?, f.next()?);
    let fence = u64::from_str_radix(fence, 16).ok()?;
    let kind = match (event, f.next()) {
        ("expiring", Some(s)) => LeaseNoticeKind::Expiring {
            remaining: std::time::Duration::try_from_secs_f64(s.parse().ok()?).ok()?,
        },
        ("expired", None) => LeaseNoticeKind::Expired,
        _ => return None,
    };
    f.next().is_none().then(|| LeaseNotice {
        key: key.to_owned(),
        fence,
        kind,
    })
}

/// One pub/sub delivery: the literal channel signalled and the payload verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    pub channel: String,
    pub payload: String,
}

/// One key-watch event: `event` is the protocol's event word (`kset`, `acquire`,
/// `release`, `expire`, `incr`, ...; protocol.md §8.13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    pub event: String,
    pub key: String,
}

/// One leader event of an election key (protocol.md §8.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderEvent {
    pub kind: LeaderEventKind,
    pub key: String,
}

/// The three leader events, plus any word a newer server may add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaderEventKind {
    Elected,
    Resigned,
    Failover,
    Other(String),
}

/// Parses a push frame; `None` if the line is not one (it is then a reply).
pub(crate) fn parse_push(line: &str) -> Option<Push> {
    if let Some(rest) = line.strip_prefix("sig ") {
        let (channel, payload) = rest.split_once(' ').unwrap_or((rest, ""));
        return Some(Push::Signal(Signal {
            channel: channel.to_owned(),
            payload: payload.to_owned(),
        }));
    }
    if let Some(rest) = line.strip_prefix("watch ") {
        let (event, key) = rest.split_once(' ').unwrap_or((rest, ""));
        return Some(Push::Watch(WatchEvent {
            event: event.to_owned(),
            key: key.to_owned(),
        }));
    }
    if let Some(rest) = line.strip_prefix("leader ") {
        let (event, key) = rest.split_once(' ').unwrap_or((rest, ""));
        let kind = match event {
            "elected" => LeaderEventKind::Elected,
            "resigned" => LeaderEventKind::Resigned,
            "failover" => LeaderEventKind::Failover,
            other => LeaderEventKind::Other(other.to_owned()),
        };
        return Some(Push::Leader(LeaderEvent {
            kind,
            key: key.to_owned(),
        }));
    }
    // A malformed `lease ` line falls through and fails as an unexpected reply.
    line.strip_prefix("lease ")
        .and_then(parse_lease)
        .map(Push::Lease)
}

/// Splits a reply into its status word and the rest after exactly one space.
/// The rest is verbatim (a `kget` value keeps its leading and trailing spaces).
pub(crate) fn split_status(line: &str) -> (&str, &str) {
    line.split_once(' ').unwrap_or((line, ""))
}

/// The error a non-success reply stands for.
pub(crate) fn failure(line: &str) -> Error {
    let (word, _) = split_status(line);
    Error::from_status(word)
        .unwrap_or_else(|| Error::Protocol(format!("unexpected reply {line:?}")))
}

/// Accepts `ok` or `ok <rest>` and returns the rest; any other status is its error.
pub(crate) fn expect_ok(line: &str) -> Result<&str> {
    match split_status(line) {
        ("ok", rest) => Ok(rest),
        _ => Err(failure(line)),
    }
}

/// Accepts exactly `ok` (extra fields are tolerated and ignored).
pub(crate) fn expect_bare_ok(line: &str) -> Result<()> {
    expect_ok(line).map(|_| ())
}

/// Parses a decimal field of a reply.
pub(crate) fn parse_field<T: std::str::FromStr>(field: Option<&str>, line: &str) -> Result<T> {
    field
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| Error::Protocol(format!("bad number in reply {line:?}")))
}

/// Decodes the fence from a token: its first 16 hex characters as a big-endian u64
/// (protocol.md §6.1). `None` if the token is not shaped like one.
pub fn fence_from_token(token: &str) -> Option<u64> {
    let hex = token.get(..16)?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// The fields of a grant: `ok|acquired <token> <lease> [<fence>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grant {
    pub token: String,
    pub lease_s: u64,
    pub fence: u64,
}

/// Parses the fields after the status word of a grant. The fence comes from the
/// token; a decimal fence field (read-write and election replies, `--fence-field`)
/// is only a fallback for tokens that do not carry one.
pub(crate) fn parse_grant(rest: &str, line: &str) -> Result<Grant> {
    let mut fields = rest.split(' ').filter(|f| !f.is_empty());
    let token = fields
        .next()
        .ok_or_else(|| Error::Protocol(format!("grant without token {line:?}")))?
        .to_owned();
    let lease_s: u64 = parse_field(fields.next(), line)?;
    let fence = match fence_from_token(&token) {
        Some(f) => f,
        None => parse_field(fields.next(), line)?,
    };
    Ok(Grant {
        token,
        lease_s,
        fence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_frames() {
        assert_eq!(
            parse_push("sig orders.created {\"id\":7, \"total\": 1}"),
            Some(Push::Signal(Signal {
                channel: "orders.created".into(),
                payload: "{\"id\":7, \"total\": 1}".into()
            }))
        );
        assert_eq!(
            parse_push("watch kset session.42"),
            Some(Push::Watch(WatchEvent {
                event: "kset".into(),
                key: "session.42".into()
            }))
        );
        assert_eq!(
            parse_push("lease expiring job 18ea9db47e590001 0.400"),
            Some(Push::Lease(LeaseNotice {
                key: "job".into(),
                fence: 0x18ea9db47e590001,
                kind: LeaseNoticeKind::Expiring {
                    remaining: std::time::Duration::from_millis(400)
                },
            }))
        );
        assert_eq!(
            parse_push("lease expired job 0000000000000007"),
            Some(Push::Lease(LeaseNotice {
                key: "job".into(),
                fence: 7,
                kind: LeaseNoticeKind::Expired,
            }))
        );
        for bad in [
            "lease expired job",
            "lease expiring job 7",
            "lease gone job 7",
            "lease expired job xyz",
        ] {
            assert_eq!(parse_push(bad), None, "{bad}");
        }
        assert_eq!(
            parse_push("leader failover job"),
            Some(Push::Leader(LeaderEvent {
                kind: LeaderEventKind::Failover,
                key: "job".into()
            }))
        );
        assert_eq!(parse_push("ok"), None);
        assert_eq!(parse_push("signal"), None);
        // Short frames do not panic.
        assert!(parse_push("sig x").is_some());
        assert!(parse_push("leader ").is_some());
    }

    #[test]
    fn statuses() {
        assert_eq!(expect_ok("ok").ok(), Some(""));
        assert_eq!(expect_ok("ok  two spaces ").ok(), Some(" two spaces "));
        assert!(matches!(expect_ok("timeout"), Err(Error::Timeout)));
        assert!(matches!(expect_ok("nope"), Err(Error::Protocol(_))));
        assert!(matches!(expect_ok(""), Err(Error::Protocol(_))));
    }

    #[test]
    fn grants_and_fences() {
        let g = parse_grant("18ea9db47e590001d433357e6ef5d88b 60", "").expect("grant");
        assert_eq!(g.fence, 1795420800000000001);
        assert_eq!(g.lease_s, 60);
        let g = parse_grant(
            "18ea9db47e590001d433357e6ef5d88b 33 1795420800000000001",
            "",
        )
        .expect("grant with fence field");
        assert_eq!(g.fence, 1795420800000000001);
        let g = parse_grant("opaque 5 42", "").expect("fallback fence field");
        assert_eq!(g.fence, 42);
        assert!(parse_grant("", "").is_err());
        assert!(parse_grant("tok", "").is_err());
        assert!(parse_grant("opaque 5", "").is_err());
        assert_eq!(
            fence_from_token("ffffffffffffffff0000000000000000"),
            Some(u64::MAX)
        );
        assert_eq!(fence_from_token("short"), None);
        assert_eq!(fence_from_token("zzzzzzzzzzzzzzzz0000"), None);
        assert_eq!(fence_from_token("é123456789012345678"), None);
    }

    /// What a server (or anything pretending to be one) may send: a million
    /// seeded lines, mostly mutations of real replies and push frames, through
    /// every parser here. None may panic; a parsed grant's fence agrees with
    /// its token; a push frame is recognised only by its prefix.
    #[test]
    fn random_reply_lines_never_panic() {
        use crate::test_rng::XorShift;
        const LINES: &[&str] = &[
            "ok 18ea9db47e590001d433357e6ef5d88b 33",
            "acquired 18ea9db47e590001d433357e6ef5d88b 60 1795420800000000001",
            "ok 18ea9db47e590001d433357e6ef5d88b",
            "ok 120 1795420800000000001",
            "ok -9223372036854775808",
            "ok  value with  spaces ",
            "queued",
            "timeout",
            "nil",
            "cas_conflict",
            "error_lease_expired",
            "sig orders.eu.created {\"id\": 7}",
            "watch kset session.42",
            "leader elected job",
            "ok {\"connections\":1}",
        ];
        const BYTES: &[u8] = b" \t0123456789abcdefABCDEF-+xz\xc3\xa9\xff\x00";
        let mut rng = XorShift(0xC11E_0000_0000_0001);
        let mut grants = 0u32;
        for _ in 0..1_000_000 {
            let mut b = LINES[rng.below(LINES.len())].as_bytes().to_vec();
            for _ in 0..rng.below(4) {
                let at = rng.below(b.len() + 1);
                match rng.below(3) {
                    0 => b.insert(at, BYTES[rng.below(BYTES.len())]),
                    1 if at < b.len() => {
                        b.remove(at);
                    }
                    _ => b.truncate(at),
                }
            }
            let line = String::from_utf8_lossy(&b);
            let push = parse_push(&line);
            assert_eq!(
                push.is_some(),
                ["sig ", "watch ", "leader "]
                    .iter()
                    .any(|p| line.starts_with(p)),
                "{line:?}"
            );
            let (word, rest) = split_status(&line);
            let _ = failure(&line);
            if let Ok(rest) = expect_ok(&line) {
                assert_eq!(word, "ok");
                if let Ok(g) = parse_grant(rest, &line) {
                    grants += 1;
                    if let Some(f) = fence_from_token(&g.token) {
                        assert_eq!(g.fence, f, "{line:?}");
                    }
                }
                let _: Result<i64> = parse_field(rest.split(' ').next(), &line);
            }
            let _ = fence_from_token(rest);
        }
        assert!(grants > 20_000, "only {grants} grants parsed");
    }
}
