//! Request framing: cuts the next request off the front of a connection's input
//! (protocol.md §2.1, §2.2, §9 "Recognition") and the cross-protocol guard (§4.2).
//!
//! [`parse_frame`] is pure and stateless, httparse-style: no IO, no clock, no
//! allocation. The caller keeps the bytes and calls again when more arrive, so
//! nothing has to be remembered between reads and a request split over any number
//! of reads frames exactly as if it had arrived in one.
//!
//! Invariants (tested below):
//! * `Complete { consumed }` has `1 <= consumed <= buf.len()`; the slices in the
//!   [`Frame`] borrow from `buf` and lie inside its first `consumed` bytes.
//! * **Segmentation does not matter**: if a prefix of a buffer parses `Complete`
//!   or `Invalid`, the whole buffer parses to the same answer. The server's reply
//!   never depends on how TCP cut the stream.
//! * **Limits are enforced while a line is still arriving** (§2.2): a line is
//!   refused as soon as its bytes cannot be the start of a valid line, never after
//!   buffering it to its LF, so the caller's buffer cap
//!   ([`LineLimits::max_request`]) always suffices and `Incomplete` always means
//!   "a valid request may still follow".
//! * **Each call reads at most `limit + 2` bytes of each line** (content, one CR,
//!   the LF; the dialect check may read the first 7): the cost of a call is
//!   bounded by the request, not by the buffer, and nothing is quadratic within a
//!   call. A 10 MB buffer without LF is refused after looking at 258 bytes of it.

use std::fmt;

use super::{LineLimits, Parsed};

const LF: u8 = b'\n';
const CR: u8 = b'\r';

/// §9: "if the next line starts with `lock` or `unlock` (ASCII letters in any
/// case) followed by a space, that line is a complete Dreadlock request".
const DREADLOCK_MARKERS: [&[u8]; 2] = [b"lock ", b"unlock "];

/// §4.2: "an HTTP method followed by a space — `GET `, `HEAD `, `POST `, `PUT `,
/// `DELETE `, `OPTIONS `, `PATCH `, `CONNECT ` or `TRACE ` (uppercase, exactly)".
const HTTP_METHODS: [&[u8]; 9] = [
    b"GET ",
    b"HEAD ",
    b"POST ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
];

/// One framed request, borrowing from the caller's buffer.
///
/// Line *content* (§2.1) is the line's bytes without the LF and without ONE CR
/// directly before the LF: `telnet` and the Dreadlock clients send CRLF, so CRLF
/// and LF work everywhere. A CR anywhere else stays in the content as an ordinary
/// byte; rejecting it is the job of the field validators (§3), not of framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A 3-line dflockd request. Any of the three may be empty: the command
    /// decoder, not the framer, decides what a line must hold.
    Request {
        cmd: &'a [u8],
        key: &'a [u8],
        arg: &'a [u8],
    },
    /// A Dreadlock line, recognised at a request boundary because it starts with
    /// `lock ` or `unlock ` in any letter case (§9). Decode it with
    /// [`super::dreadlock::parse_dreadlock`].
    Dreadlock(&'a [u8]),
}

/// Why the stream cannot be resynchronised. Both errors close the connection:
/// once a line is over its limit we refuse to look for its end, so we no longer
/// know where the next request starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// A dflockd line exceeded its limit (§2.2): reply `error`, then close
    /// (log code 12, §11).
    LineTooLong,
    /// A line recognised as Dreadlock exceeded the line limit: it is a malformed
    /// Dreadlock line (§2.10 item 7), so close without a reply (log code 17).
    DreadlockTooLong,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FrameError::LineTooLong => "line longer than its limit",
            FrameError::DreadlockTooLong => "Dreadlock line longer than its limit",
        })
    }
}

impl std::error::Error for FrameError {}

/// Frames the request at the start of `buf`.
///
/// * `Complete { value, consumed }`: the first `consumed` bytes (every LF and CR
///   included) are one request; the next request starts at `buf[consumed..]`.
/// * `Incomplete`: `buf` is a proper prefix of a request that may still turn out
///   valid; read more and call again with the grown buffer. Never returned once
///   a line is over its limit, with one bounded exception: while the first line
///   is still a proper prefix of `lock ` / `unlock ` (at most 6 bytes) we cannot
///   yet tell which error applies, so with a `max_line` below 6 such a line waits
///   for the byte that decides. Real limits (256) never reach it.
/// * `Invalid(e)`: a line is longer than its limit (§2.2). The caller writes the
///   reply `e` calls for after the replies to earlier requests, then closes.
///
/// Limits (content bytes): command and key line `max_line`; the argument line
/// `max_auth_arg` after `auth`, `max_value_arg` after `kset kcas lpush rpush
/// signal`, else `max_line`; a Dreadlock line `max_line`. The command is known
/// before the argument is read (§2.2), so the argument gets its own limit.
pub fn parse_frame<'a>(buf: &'a [u8], limits: &LineLimits) -> Parsed<Frame<'a>, FrameError> {
    let (cmd, rest) = match scan_line(buf, limits.max_line) {
        Line::Complete { content, rest } => {
            if is_dreadlock(content) {
                return Parsed::Complete {
                    value: Frame::Dreadlock(content),
                    consumed: buf.len() - rest.len(),
                };
            }
            (content, rest)
        }
        Line::Incomplete => return Parsed::Incomplete,
        // Classify on `buf`, not on the scanned window: with a `max_line` below 5
        // the window is shorter than the marker. The markers hold no LF, so the
        // bytes from the line's LF on can make neither test pass: both answer for
        // the line alone, terminated or not.
        Line::TooLong => {
            return if is_dreadlock(buf) {
                Parsed::Invalid(FrameError::DreadlockTooLong)
            } else if may_become_dreadlock(buf) {
                // Refusing now would pick an error the next byte might contradict.
                Parsed::Incomplete
            } else {
                Parsed::Invalid(FrameError::LineTooLong)
            };
        }
    };
    let (key, rest) = match scan_line(rest, limits.max_line) {
        Line::Complete { content, rest } => (content, rest),
        Line::Incomplete => return Parsed::Incomplete,
        Line::TooLong => return Parsed::Invalid(FrameError::LineTooLong),
    };
    let (arg, rest) = match scan_line(rest, arg_limit(cmd, limits)) {
        Line::Complete { content, rest } => (content, rest),
        Line::Incomplete => return Parsed::Incomplete,
        Line::TooLong => return Parsed::Invalid(FrameError::LineTooLong),
    };
    Parsed::Complete {
        value: Frame::Request { cmd, key, arg },
        consumed: buf.len() - rest.len(),
    }
}

/// The argument limit of §2.2, chosen by the command line's content. Command
/// names are case-sensitive (§2.1), so `AUTH` gets the ordinary limit.
fn arg_limit(cmd: &[u8], limits: &LineLimits) -> usize {
    match cmd {
        b"auth" => limits.max_auth_arg,
        b"kset" | b"kcas" | b"lpush" | b"rpush" | b"signal" => limits.max_value_arg,
        _ => limits.max_line,
    }
}

/// The state of the line at the start of a buffer.
enum Line<'a> {
    /// The LF is here and the content fits: `rest` follows the LF.
    Complete { content: &'a [u8], rest: &'a [u8] },
    /// No LF yet, and what has arrived can still be a valid line.
    Incomplete,
    /// Over the limit, whether or not its LF has arrived.
    TooLong,
}

/// Scans one line of at most `limit` content bytes, looking at no more than the
/// `limit + 2` bytes a valid line can span (content, one CR, the LF).
fn scan_line(buf: &[u8], limit: usize) -> Line<'_> {
    let window = &buf[..buf.len().min(limit.saturating_add(2))];
    match find_lf(window) {
        Some(lf) => {
            let (raw, rest) = (&buf[..lf], &buf[lf + 1..]);
            let content = raw.strip_suffix(&[CR]).unwrap_or(raw);
            if content.len() <= limit {
                Line::Complete { content, rest }
            } else {
                Line::TooLong
            }
        }
        // Without an LF the line is still valid only while its bytes fit, or
        // overshoot by exactly one CR that the next byte (an LF) would strip.
        None => match window.len().checked_sub(limit) {
            None | Some(0) => Line::Incomplete,
            Some(1) if window.last() == Some(&CR) => Line::Incomplete,
            Some(_) => Line::TooLong,
        },
    }
}

/// True if `line` starts with a Dreadlock marker (§9), letters in any case.
fn is_dreadlock(line: &[u8]) -> bool {
    DREADLOCK_MARKERS.iter().any(|marker| {
        line.get(..marker.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(marker))
    })
}

/// True if `buf` is a proper prefix (any letter case) of a Dreadlock marker, so
/// the next bytes decide the dialect. Never true once the line's LF is in `buf`.
fn may_become_dreadlock(buf: &[u8]) -> bool {
    DREADLOCK_MARKERS.iter().any(|marker| {
        marker
            .get(..buf.len())
            .is_some_and(|head| buf.len() < marker.len() && head.eq_ignore_ascii_case(buf))
    })
}

/// Position of the first LF in `hay`.
///
/// Values are long lines (up to 2 × V + 64 bytes), so the search runs 16 bytes
/// per step as two words (SWAR) instead of a byte at a time: `iter().position`
/// does not vectorise because of its early exit and framed a 64 KiB value about
/// 10× slower in benches/parse.rs. Short lines cost about the same either way.
/// Safe code only; no crates.
fn find_lf(hay: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const LFS: u64 = u64::from_ne_bytes([LF; 8]);
    // A byte of `x` is zero exactly where the input byte is LF. The classic
    // has-zero test sets the high bit of every zero byte; it may also flag bytes
    // *after* a zero byte (borrow), never before one, so the lowest flag in
    // memory order is exact. Little-endian loads put memory order at the low end.
    let lf_mask = |w: [u8; 8]| {
        let x = u64::from_le_bytes(w) ^ LFS;
        x.wrapping_sub(ONES) & !x & HIGHS
    };
    let mut chunks = hay.chunks_exact(16);
    let mut base = 0;
    for chunk in &mut chunks {
        let (lo, hi) = chunk.split_at(8);
        let lo = lf_mask([lo[0], lo[1], lo[2], lo[3], lo[4], lo[5], lo[6], lo[7]]);
        let hi = lf_mask([hi[0], hi[1], hi[2], hi[3], hi[4], hi[5], hi[6], hi[7]]);
        if lo | hi != 0 {
            let bit = if lo != 0 {
                lo.trailing_zeros()
            } else {
                64 + hi.trailing_zeros()
            };
            return Some(base + (bit / 8) as usize);
        }
        base += 16;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == LF)
        .map(|i| base + i)
}

/// Verdict of the cross-protocol guard (§4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpGuard {
    /// The connection's first bytes are an HTTP request line: close without a
    /// reply and log a warning (log code 16). This stops a web page from making a
    /// browser smuggle dflockd requests inside an HTTP request body.
    Http,
    /// Not HTTP: frame requests as usual; the guard is not consulted again.
    NotHttp,
    /// Still a proper prefix of a method token: wait for more bytes.
    NeedMore,
}

/// Cross-protocol guard (§4.2), applied by the caller to a connection's first
/// bytes only, before authentication.
///
/// `Http` if `buf` begins with an uppercase method token and its space
/// (`GET ` … `TRACE `), `NeedMore` while `buf` is a proper prefix of one of
/// them (at most 7 bytes), `NotHttp` otherwise. Case-sensitive on purpose: the
/// spec names the exact bytes browsers send, and `lock ` must never match.
pub fn http_guard(buf: &[u8]) -> HttpGuard {
    if HTTP_METHODS.iter().any(|m| buf.starts_with(m)) {
        HttpGuard::Http
    } else if HTTP_METHODS.iter().any(|m| m.starts_with(buf)) {
        HttpGuard::NeedMore
    } else {
        HttpGuard::NotHttp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The limits of a server with the default V = 65536: 256 / 65536 / 131136.
    fn real() -> LineLimits {
        LineLimits::for_value_bytes(65536)
    }

    /// Small limits, so that every rule is also exercised near tiny numbers.
    fn small() -> LineLimits {
        LineLimits {
            max_line: 20,
            max_auth_arg: 30,
            max_value_arg: 40,
        }
    }

    fn req<'a>(cmd: &'a [u8], key: &'a [u8], arg: &'a [u8]) -> Frame<'a> {
        Frame::Request { cmd, key, arg }
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    /// Asserts that `buf` is exactly the requests `expected`, back to back, and
    /// that from each request boundary every proper prefix of the request is
    /// `Incomplete` and every longer prefix of the buffer frames that request.
    fn assert_stream(buf: &[u8], limits: &LineLimits, expected: &[Frame<'_>]) {
        let mut start = 0;
        for (i, want) in expected.iter().enumerate() {
            let end = match parse_frame(&buf[start..], limits) {
                Parsed::Complete { value, consumed } => {
                    assert_eq!(value, *want, "request {i} of {buf:?}");
                    start + consumed
                }
                other => panic!("request {i} of {buf:?}: {other:?}"),
            };
            for k in start..end {
                assert_eq!(
                    parse_frame(&buf[start..k], limits),
                    Parsed::Incomplete,
                    "request {i} of {buf:?}, prefix up to {k}"
                );
            }
            for k in end..=buf.len() {
                assert_eq!(
                    parse_frame(&buf[start..k], limits),
                    Parsed::Complete {
                        value: *want,
                        consumed: end - start
                    },
                    "request {i} of {buf:?}, prefix up to {k}"
                );
            }
            start = end;
        }
        assert_eq!(start, buf.len(), "bytes left over in {buf:?}");
    }

    #[test]
    fn valid_requests_at_every_prefix() {
        let cases: &[(&[u8], &[Frame<'_>])] = &[
            (b"l\nmy-key\n10 60\n", &[req(b"l", b"my-key", b"10 60")]),
            (
                b"l\r\nmy-key\r\n10 60\r\n",
                &[req(b"l", b"my-key", b"10 60")],
            ),
            (b"l\r\nmy-key\n10 60\r\n", &[req(b"l", b"my-key", b"10 60")]),
            (b"l\nmy-key\r\n10 60\n", &[req(b"l", b"my-key", b"10 60")]),
            (b"ping\n_\n\n", &[req(b"ping", b"_", b"")]),
            (b"ping\n\n\n", &[req(b"ping", b"", b"")]),
            (b"stats\r\n\r\n\r\n", &[req(b"stats", b"", b"")]),
            (b"\n\n\n", &[req(b"", b"", b"")]),
            // A CR that is not directly before the LF is content; only one is stripped.
            (b"kset\nk\na\rb\n", &[req(b"kset", b"k", b"a\rb")]),
            (b"kset\nk\nv\r\r\n", &[req(b"kset", b"k", b"v\r")]),
            (b"\r\r\n\r\n\r\r\r\n", &[req(b"\r", b"", b"\r\r")]),
            (b"kset\nk\nv\t30\n", &[req(b"kset", b"k", b"v\t30")]),
            (b"L\nk\n1\n", &[req(b"L", b"k", b"1")]),
            // Not Dreadlock: the marker needs the space right after the verb.
            (b"lock\nk\n5\n", &[req(b"lock", b"k", b"5")]),
            (b"lock\r\nk\r\n5\r\n", &[req(b"lock", b"k", b"5")]),
            (b"lockk 5\nx\ny\n", &[req(b"lockk 5", b"x", b"y")]),
            (b"lock\tk 5\n_\n\n", &[req(b"lock\tk 5", b"_", b"")]),
            (b"unlockx\n_\n\n", &[req(b"unlockx", b"_", b"")]),
            (b" lock k 5\n_\n\n", &[req(b" lock k 5", b"_", b"")]),
            (
                b"l\nlock k 5\nunlock k\n",
                &[req(b"l", b"lock k 5", b"unlock k")],
            ),
            // Dreadlock lines, any case, several spaces, CRLF or LF.
            (
                b"lock build42 5000\r\n",
                &[Frame::Dreadlock(b"lock build42 5000")],
            ),
            (
                b"LOCK  build42   0 \r\n",
                &[Frame::Dreadlock(b"LOCK  build42   0 ")],
            ),
            (b"UnLoCk job\n", &[Frame::Dreadlock(b"UnLoCk job")]),
            (b"unlock  k  \r\n", &[Frame::Dreadlock(b"unlock  k  ")]),
            (b"lock \n", &[Frame::Dreadlock(b"lock ")]),
            (b"lOcK k 5\r\r\n", &[Frame::Dreadlock(b"lOcK k 5\r")]),
            // Pipelined.
            (
                b"ping\n_\n\nping\n_\n\nstats\n_\n\n",
                &[
                    req(b"ping", b"_", b""),
                    req(b"ping", b"_", b""),
                    req(b"stats", b"_", b""),
                ],
            ),
            (
                b"l\njob\n30\nping\n_\n\n",
                &[req(b"l", b"job", b"30"), req(b"ping", b"_", b"")],
            ),
            (
                b"lock job 0\r\nl\njob\n0\nunlock job\r\n",
                &[
                    Frame::Dreadlock(b"lock job 0"),
                    req(b"l", b"job", b"0"),
                    Frame::Dreadlock(b"unlock job"),
                ],
            ),
            (
                b"l\r\nk\n1\nLOCK k 1\nkset\r\nk\r\nv\r\nUNLOCK   k\n",
                &[
                    req(b"l", b"k", b"1"),
                    Frame::Dreadlock(b"LOCK k 1"),
                    req(b"kset", b"k", b"v"),
                    Frame::Dreadlock(b"UNLOCK   k"),
                ],
            ),
            (
                b"\n\n\n\r\n\r\n\r\n",
                &[req(b"", b"", b""), req(b"", b"", b"")],
            ),
        ];
        for (buf, expected) in cases {
            assert_stream(buf, &real(), expected);
            assert_stream(buf, &small(), expected);
        }
    }

    #[test]
    fn long_lines_within_their_limits_at_every_prefix() {
        let limits = small();
        let line = vec![b'k'; limits.max_line];
        let auth = vec![b'a'; limits.max_auth_arg];
        let value = vec![b'v'; limits.max_value_arg];
        let buf = cat(&[&line, b"\r\n", &line, b"\n", &line, b"\r\n"]);
        assert_stream(&buf, &limits, &[req(&line, &line, &line)]);
        let buf = cat(&[
            b"auth\r\n_\n",
            &auth,
            b"\r\n",
            b"signal\nc\n",
            &value,
            b"\n",
        ]);
        assert_stream(
            &buf,
            &limits,
            &[req(b"auth", b"_", &auth), req(b"signal", b"c", &value)],
        );
        let mut dreadlock = b"lock ".to_vec();
        dreadlock.resize(limits.max_line, b'k');
        let buf = cat(&[&dreadlock, b"\r\n"]);
        assert_stream(&buf, &limits, &[Frame::Dreadlock(&dreadlock)]);
    }

    /// Which line of a request a limit case puts at its limit.
    #[derive(Clone, Copy, Debug)]
    enum Slot {
        Cmd,
        Key,
        Arg,
        Dreadlock,
    }

    /// One line kind at its limit N: `before` are the complete lines ahead of it,
    /// `fill` builds its content of n bytes, `after` completes the request.
    struct LimitCase<'a> {
        name: &'a str,
        before: &'a [u8],
        fill: fn(usize) -> Vec<u8>,
        after: &'a [u8],
        slot: Slot,
        limit: usize,
        error: FrameError,
    }

    fn content_of(frame: Frame<'_>, slot: Slot) -> Vec<u8> {
        match (frame, slot) {
            (Frame::Request { cmd, .. }, Slot::Cmd) => cmd.to_vec(),
            (Frame::Request { key, .. }, Slot::Key) => key.to_vec(),
            (Frame::Request { arg, .. }, Slot::Arg) => arg.to_vec(),
            (Frame::Dreadlock(line), Slot::Dreadlock) => line.to_vec(),
            (frame, slot) => panic!("{slot:?} case framed as {frame:?}"),
        }
    }

    fn check_limit_case(case: &LimitCase<'_>, limits: &LineLimits) {
        let LimitCase {
            name,
            before,
            fill,
            after,
            slot,
            limit,
            error,
        } = *case;
        let at = fill(limit);
        let over = fill(limit + 1);
        assert_eq!(at.len(), limit, "{name}: fill");
        assert_ne!(over.last(), Some(&CR), "{name}: fill");
        let run = |parts: &[&[u8]]| {
            let buf = cat(parts);
            let result = match parse_frame(&buf, limits) {
                Parsed::Complete { value, consumed } => Parsed::Complete {
                    value: content_of(value, slot),
                    consumed,
                },
                Parsed::Incomplete => Parsed::Incomplete,
                Parsed::Invalid(e) => Parsed::Invalid(e),
            };
            (buf.len(), result)
        };
        // Exactly N: complete with LF or CRLF ...
        for end in [&b"\n"[..], b"\r\n"] {
            let (len, got) = run(&[before, &at, end, after]);
            assert_eq!(
                got,
                Parsed::Complete {
                    value: at.clone(),
                    consumed: len
                },
                "{name}: N{end:?}"
            );
        }
        // ... and still incomplete while it, or the request behind it, arrives,
        // including N bytes + CR waiting for its LF.
        for end in [&b""[..], b"\r"] {
            assert_eq!(
                run(&[before, &at, end]).1,
                Parsed::Incomplete,
                "{name}: N{end:?}…"
            );
        }
        if !after.is_empty() {
            for end in [&b"\n"[..], b"\r\n"] {
                assert_eq!(
                    run(&[before, &at, end]).1,
                    Parsed::Incomplete,
                    "{name}: N{end:?} then…"
                );
            }
        }
        // N + 1: refused whether or not the LF or the rest of the request is there.
        for parts in [
            &[before, &over, b"\n", after][..],
            &[before, &over, b"\r\n", after],
            &[before, &over, b"\n"],
            &[before, &over, b"\r\n"],
            &[before, &over],
            &[before, &over, b"\r"],
            &[before, &at, b"\r\r"],
            &[before, &at, b"\rx"],
            &[before, &at, b"\r\r\n"],
        ] {
            assert_eq!(
                run(parts).1,
                Parsed::Invalid(error),
                "{name}: N+1 {parts:?}"
            );
        }
        // A 10 MB line without LF is refused at once, never Incomplete.
        let huge = fill(10 << 20);
        assert_eq!(
            run(&[before, &huge]).1,
            Parsed::Invalid(error),
            "{name}: 10 MB"
        );
    }

    fn limit_cases(limits: &LineLimits) -> Vec<LimitCase<'static>> {
        fn xs(n: usize) -> Vec<u8> {
            vec![b'x'; n]
        }
        fn lock(n: usize) -> Vec<u8> {
            let mut line = b"lock ".to_vec();
            line.resize(n, b'k');
            line
        }
        fn unlock(n: usize) -> Vec<u8> {
            let mut line = b"UNLOCK ".to_vec();
            line.resize(n, b'K');
            line
        }
        let line = limits.max_line;
        let auth = limits.max_auth_arg;
        let value = limits.max_value_arg;
        let case = |name, before, fill, after, slot, limit, error| LimitCase {
            name,
            before,
            fill,
            after,
            slot,
            limit,
            error,
        };
        use FrameError::{DreadlockTooLong, LineTooLong};
        vec![
            case("cmd", b"", xs, b"k\na\n", Slot::Cmd, line, LineTooLong),
            case("key", b"l\n", xs, b"a\n", Slot::Key, line, LineTooLong),
            case(
                "key after CRLF",
                b"l\r\n",
                xs,
                b"a\r\n",
                Slot::Key,
                line,
                LineTooLong,
            ),
            case(
                "key of auth",
                b"auth\n",
                xs,
                b"a\n",
                Slot::Key,
                line,
                LineTooLong,
            ),
            case("arg", b"l\nk\n", xs, b"", Slot::Arg, line, LineTooLong),
            case(
                "arg of AUTH",
                b"AUTH\n_\n",
                xs,
                b"",
                Slot::Arg,
                line,
                LineTooLong,
            ),
            case(
                "arg of kse",
                b"kse\nk\n",
                xs,
                b"",
                Slot::Arg,
                line,
                LineTooLong,
            ),
            case(
                "arg of kget",
                b"kget\nk\n",
                xs,
                b"",
                Slot::Arg,
                line,
                LineTooLong,
            ),
            case(
                "arg of auth",
                b"auth\n_\n",
                xs,
                b"",
                Slot::Arg,
                auth,
                LineTooLong,
            ),
            case(
                "arg of auth CRLF",
                b"auth\r\n_\r\n",
                xs,
                b"",
                Slot::Arg,
                auth,
                LineTooLong,
            ),
            case(
                "arg of kset",
                b"kset\nk\n",
                xs,
                b"",
                Slot::Arg,
                value,
                LineTooLong,
            ),
            case(
                "arg of kcas",
                b"kcas\nk\n",
                xs,
                b"",
                Slot::Arg,
                value,
                LineTooLong,
            ),
            case(
                "arg of lpush",
                b"lpush\nk\n",
                xs,
                b"",
                Slot::Arg,
                value,
                LineTooLong,
            ),
            case(
                "arg of rpush",
                b"rpush\r\nk\n",
                xs,
                b"",
                Slot::Arg,
                value,
                LineTooLong,
            ),
            case(
                "arg of signal",
                b"signal\nc\n",
                xs,
                b"",
                Slot::Arg,
                value,
                LineTooLong,
            ),
            case(
                "lock",
                b"",
                lock,
                b"",
                Slot::Dreadlock,
                line,
                DreadlockTooLong,
            ),
            case(
                "UNLOCK",
                b"",
                unlock,
                b"",
                Slot::Dreadlock,
                line,
                DreadlockTooLong,
            ),
        ]
    }

    #[test]
    fn limits_at_n_and_n_plus_1() {
        for limits in [real(), small()] {
            for case in limit_cases(&limits) {
                check_limit_case(&case, &limits);
            }
        }
    }

    #[test]
    fn dreadlock_line_followed_by_more_requests() {
        let buf = b"unlock k\r\nping\n_\n\n";
        assert_eq!(
            parse_frame(buf, &real()),
            Parsed::Complete {
                value: Frame::Dreadlock(b"unlock k"),
                consumed: 10
            }
        );
    }

    #[test]
    fn key_line_too_long_before_the_argument_arrives() {
        let limits = small();
        let buf = cat(&[b"l\n", &[b'k'; 21]]);
        assert_eq!(
            parse_frame(&buf, &limits),
            Parsed::Invalid(FrameError::LineTooLong)
        );
        // The arg limit follows the command even when the key line is empty.
        let buf = cat(&[b"auth\n\n", &[b'a'; 31]]);
        assert_eq!(
            parse_frame(&buf, &limits),
            Parsed::Invalid(FrameError::LineTooLong)
        );
        let buf = cat(&[b"auth\n\n", &[b'a'; 30]]);
        assert_eq!(parse_frame(&buf, &limits), Parsed::Incomplete);
    }

    #[test]
    fn tiny_limit_waits_for_the_byte_that_decides_the_dialect() {
        let limits = LineLimits {
            max_line: 2,
            max_auth_arg: 2,
            max_value_arg: 2,
        };
        let cases: &[(&[u8], Parsed<Frame<'_>, FrameError>)] = &[
            (b"un", Parsed::Incomplete),
            (b"unl", Parsed::Incomplete),
            (b"UnLoCk", Parsed::Incomplete),
            (b"unlock ", Parsed::Invalid(FrameError::DreadlockTooLong)),
            (b"unlock\n", Parsed::Invalid(FrameError::LineTooLong)),
            (b"unlo\r", Parsed::Invalid(FrameError::LineTooLong)),
            (b"unx", Parsed::Invalid(FrameError::LineTooLong)),
            (b"unl\n", Parsed::Invalid(FrameError::LineTooLong)),
            (b"unl\r\n", Parsed::Invalid(FrameError::LineTooLong)),
            (b"lo\r", Parsed::Incomplete),
            (
                b"lo\r\n\n\n",
                Parsed::Complete {
                    value: req(b"lo", b"", b""),
                    consumed: 6,
                },
            ),
        ];
        for (buf, want) in cases {
            assert_eq!(parse_frame(buf, &limits), *want, "{buf:?}");
        }
        let zero = LineLimits {
            max_line: 0,
            max_auth_arg: 0,
            max_value_arg: 0,
        };
        assert_eq!(parse_frame(b"", &zero), Parsed::Incomplete);
        assert_eq!(parse_frame(b"\r", &zero), Parsed::Incomplete);
        assert_eq!(parse_frame(b"L", &zero), Parsed::Incomplete);
        assert_eq!(
            parse_frame(b"x", &zero),
            Parsed::Invalid(FrameError::LineTooLong)
        );
        assert_eq!(
            parse_frame(b"\r\r", &zero),
            Parsed::Invalid(FrameError::LineTooLong)
        );
        assert_eq!(
            parse_frame(b"\r\n\n\r\n", &zero),
            Parsed::Complete {
                value: req(b"", b"", b""),
                consumed: 5
            }
        );
    }

    #[test]
    fn huge_limits_do_not_overflow() {
        let limits = LineLimits {
            max_line: usize::MAX,
            max_auth_arg: usize::MAX,
            max_value_arg: usize::MAX,
        };
        assert_eq!(parse_frame(&[b'x'; 1000], &limits), Parsed::Incomplete);
        assert_eq!(
            parse_frame(b"a\r\nb\nc\r\n", &limits),
            Parsed::Complete {
                value: req(b"a", b"b", b"c"),
                consumed: 8
            }
        );
    }

    #[test]
    fn find_lf_matches_position_everywhere() {
        let mut hay = vec![b'a'; 70];
        assert_eq!(find_lf(&hay), None);
        for i in 0..hay.len() {
            hay[i] = LF;
            for start in 0..=i {
                assert_eq!(
                    find_lf(&hay[start..]),
                    Some(i - start),
                    "lf at {i} from {start}"
                );
            }
            // A later LF, and bytes whose borrow could fool the word test, do not win.
            for j in i + 1..hay.len() {
                hay[j] = [LF, 0x0b, 0x09, 0x8a, 0x0a ^ 0x80][j % 5];
            }
            assert_eq!(find_lf(&hay), Some(i));
            hay.fill(b'a');
        }
        for b in 0..=255u8 {
            let hay = [b; 40];
            assert_eq!(find_lf(&hay), hay.iter().position(|&x| x == LF), "byte {b}");
        }
    }

    #[test]
    fn http_guard_cases() {
        for method in HTTP_METHODS {
            assert_eq!(http_guard(method), HttpGuard::Http, "{method:?}");
            let line = cat(&[method, b"/ HTTP/1.1\r\nHost: x\r\n\r\n"]);
            assert_eq!(http_guard(&line), HttpGuard::Http, "{line:?}");
            for k in 0..method.len() {
                assert_eq!(
                    http_guard(&method[..k]),
                    HttpGuard::NeedMore,
                    "{method:?}[..{k}]"
                );
            }
            let lower = method.to_ascii_lowercase();
            assert_eq!(http_guard(&lower), HttpGuard::NotHttp, "{lower:?}");
        }
        let not_http: &[&[u8]] = &[
            b"GET\t/",
            b"GET/",
            b"GETX ",
            b"GET\n",
            b"GET\r\n",
            b" GET /",
            b"Get /",
            b"POSTS ",
            b"PUTT",
            b"ping\n_\n\n",
            b"l\nk\n1\n",
            b"lock k 1\r\n",
            b"x",
            b"\n",
        ];
        for buf in not_http {
            assert_eq!(http_guard(buf), HttpGuard::NotHttp, "{buf:?}");
        }
        assert_eq!(http_guard(b""), HttpGuard::NeedMore);
        assert_eq!(http_guard(b"P"), HttpGuard::NeedMore);
        assert_eq!(http_guard(b"CONNECT"), HttpGuard::NeedMore);
    }

    use crate::test_rng::XorShift;

    /// Naive restatement of §2.1, §2.2 and §9 recognition: splits the whole
    /// buffer at every LF first, then applies each rule as the spec words it.
    /// Slow and obvious, so that the windowed word-at-a-time scanner has
    /// something independent to be compared with.
    fn reference<'a>(buf: &'a [u8], limits: &LineLimits) -> Parsed<Frame<'a>, FrameError> {
        let mut lines: Vec<(&[u8], bool)> = buf.split(|&b| b == b'\n').map(|l| (l, true)).collect();
        if let Some(last) = lines.last_mut() {
            last.1 = false;
        }
        let content = |raw: &'a [u8]| raw.strip_suffix(b"\r").unwrap_or(raw);
        let too_long = |(raw, terminated): (&'a [u8], bool), limit: usize| {
            if terminated {
                content(raw).len() > limit
            } else {
                raw.len() > limit + 1 || (raw.len() == limit + 1 && raw.last() != Some(&b'\r'))
            }
        };
        let (first, first_terminated) = lines[0];
        let lower = first.to_ascii_lowercase();
        let dreadlock = lower.starts_with(b"lock ") || lower.starts_with(b"unlock ");
        if too_long(lines[0], limits.max_line) {
            let undecided = !first_terminated
                && (b"lock ".starts_with(&lower) || b"unlock ".starts_with(&lower));
            return if dreadlock {
                Parsed::Invalid(FrameError::DreadlockTooLong)
            } else if undecided {
                Parsed::Incomplete
            } else {
                Parsed::Invalid(FrameError::LineTooLong)
            };
        }
        if !first_terminated {
            return Parsed::Incomplete;
        }
        if dreadlock {
            return Parsed::Complete {
                value: Frame::Dreadlock(content(first)),
                consumed: first.len() + 1,
            };
        }
        let cmd = content(first);
        let arg_limit = match cmd {
            b"auth" => limits.max_auth_arg,
            b"kset" | b"kcas" | b"lpush" | b"rpush" | b"signal" => limits.max_value_arg,
            _ => limits.max_line,
        };
        for (i, limit) in [(1, limits.max_line), (2, arg_limit)] {
            if too_long(lines[i], limit) {
                return Parsed::Invalid(FrameError::LineTooLong);
            }
            if !lines[i].1 {
                return Parsed::Incomplete;
            }
        }
        Parsed::Complete {
            value: req(cmd, content(lines[1].0), content(lines[2].0)),
            consumed: first.len() + lines[1].0.len() + lines[2].0.len() + 3,
        }
    }

    fn random_buffer(rng: &mut XorShift) -> Vec<u8> {
        const SEEDS: [&[u8]; 8] = [
            b"auth\n",
            b"kset\r\n",
            b"signal\n",
            b"lock ",
            b"UNLOCK ",
            b"l\n",
            b"unl",
            b"Lo",
        ];
        const COMMON: &[u8] = b"lockunLOCKUauth kset signalp0123456789\t";
        let mut buf = Vec::new();
        if rng.below(3) == 0 {
            buf.extend_from_slice(SEEDS[rng.below(SEEDS.len())]);
        }
        let len = rng.below(48);
        for _ in 0..len {
            let byte = match rng.below(100) {
                0..=19 => b'\n',
                20..=34 => b'\r',
                35..=44 => b'l',
                45..=59 => b' ',
                60..=89 => COMMON[rng.below(COMMON.len())],
                _ => rng.next() as u8,
            };
            buf.push(byte);
        }
        buf
    }

    #[test]
    fn random_bytes_never_panic_and_match_the_reference() {
        const LINE_LIMITS: [usize; 10] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 12];
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for round in 0..100_000 {
            let max_line = LINE_LIMITS[rng.below(LINE_LIMITS.len())];
            let limits = LineLimits {
                max_line,
                max_auth_arg: max_line + rng.below(8),
                max_value_arg: max_line + rng.below(8),
            };
            let buf = random_buffer(&mut rng);
            let whole = parse_frame(&buf, &limits);
            assert_eq!(
                whole,
                reference(&buf, &limits),
                "round {round}: {buf:?} {limits:?}"
            );
            // Segmentation does not matter: a decided prefix decides the whole.
            for k in 0..buf.len() {
                let part = parse_frame(&buf[..k], &limits);
                if part != Parsed::Incomplete {
                    assert_eq!(part, whole, "round {round}: {buf:?}[..{k}] {limits:?}");
                }
            }
            // Pipelined: frame request by request to the end.
            let mut rest = &buf[..];
            while let Parsed::Complete { consumed, .. } = parse_frame(rest, &limits) {
                assert!(
                    (1..=rest.len()).contains(&consumed),
                    "round {round}: {buf:?}"
                );
                rest = &rest[consumed..];
            }
            let _ = http_guard(&buf);
        }
    }
}
