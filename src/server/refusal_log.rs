//! The log explains every refusal: one line per event, in words, never a Rust
//! type name (style.md §8; protocol.md §11).
//!
//! * `debug`: every `error*` reply and every close, with the peer `ip:port`,
//!   the connection id, the command, the key (escaped, cut at 64 bytes), the
//!   §11 code and what it means, naming the offending field.
//! * `info` / `warn`: events an operator must see at the default level —
//!   authentication failures, closes by a timeout while holding or waiting,
//!   malformed Dreadlock lines, cross-protocol connections, slow consumers,
//!   refusals at a configured limit. Each [`Kind`] is rate-limited on its own
//!   ([`RateLimiter`]: at most [`LINES_PER_WINDOW`] lines per second, then one
//!   "N similar lines suppressed" line), so no client can flood the log.
//!
//! Cost: nothing is formatted or allocated unless the line's level is enabled.
//! Per successful request the server does one comparison of the reply
//! ([`explain::refusal`]) and, only while `debug` is enabled, copies the
//! command name and key ([`RequestCtx::capture`]). Time comes in as the loop's
//! millisecond clock; nothing here reads a clock.

use super::Listener;
use super::dispatch::{Request, RequestError};
use crate::conn::Conn;
use crate::peer::PeerAddr;
use crate::protocol::command::{Command, ProtoError};
use crate::protocol::explain::{self, CloseReason, Escaped, Limit, Refusal};
use crate::state::{Holdings, StateConfig};
use log::Level;
use std::fmt;
use std::net::SocketAddr;

/// Lines of one kind allowed per window.
pub const LINES_PER_WINDOW: u32 = 10;
/// The rate-limit window, milliseconds.
pub const WINDOW_MS: u64 = 1000;

/// Events logged at `info`/`warn`, each rate-limited separately so a flood of
/// one kind never hides another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    AuthFailed,
    TimeoutClose,
    BadDreadlock,
    CrossProtocol,
    SlowConsumer,
    MaxLocks,
    MaxKeys,
    MaxWaiters,
    MaxSubscriptions,
    MaxListLength,
    ConnectionCap,
}

impl Kind {
    const COUNT: usize = 11;

    const ALL: [Kind; Kind::COUNT] = [
        Kind::AuthFailed,
        Kind::TimeoutClose,
        Kind::BadDreadlock,
        Kind::CrossProtocol,
        Kind::SlowConsumer,
        Kind::MaxLocks,
        Kind::MaxKeys,
        Kind::MaxWaiters,
        Kind::MaxSubscriptions,
        Kind::MaxListLength,
        Kind::ConnectionCap,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// The level its lines are logged at. Cross-protocol connections are a
    /// warning (protocol.md §4.2); the rest are `info`.
    pub fn level(self) -> Level {
        match self {
            Kind::CrossProtocol => Level::Warn,
            _ => Level::Info,
        }
    }

    /// Plural noun for the "suppressed" line.
    fn label(self) -> &'static str {
        match self {
            Kind::AuthFailed => "authentication failures",
            Kind::TimeoutClose => "timeout closes of holders and waiters",
            Kind::BadDreadlock => "malformed Dreadlock lines",
            Kind::CrossProtocol => "cross-protocol connections",
            Kind::SlowConsumer => "slow-consumer closes",
            Kind::MaxLocks => "refusals at --max-locks",
            Kind::MaxKeys => "refusals at --max-keys",
            Kind::MaxWaiters => "refusals at --max-waiters",
            Kind::MaxSubscriptions => "refusals at --max-subscriptions",
            Kind::MaxListLength => "refusals at --max-list-length",
            Kind::ConnectionCap => "connections refused at a connection cap",
        }
    }

    fn of_limit(limit: Limit) -> Kind {
        match limit {
            Limit::MaxLocks => Kind::MaxLocks,
            Limit::MaxKeys => Kind::MaxKeys,
            Limit::MaxWaiters => Kind::MaxWaiters,
            Limit::MaxSubscriptions => Kind::MaxSubscriptions,
            Limit::MaxListLength => Kind::MaxListLength,
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Window {
    /// Start of the current window (ms).
    start: u64,
    /// Lines logged in it.
    lines: u32,
    /// Lines suppressed and not yet reported.
    suppressed: u64,
}

/// Fixed one-second windows per kind: the first [`LINES_PER_WINDOW`] events
/// of a window are logged, the rest are counted, and the count is reported in
/// one line once the window is over — before the next line of that kind, or
/// by [`RateLimiter::take_expired`] if no event of that kind follows. Time is
/// injected (the loop's clock), so the limiter is deterministic under test.
#[derive(Debug, Default)]
pub struct RateLimiter {
    windows: [Window; Kind::COUNT],
    /// Some window has a suppressed count to report.
    pending: bool,
}

impl RateLimiter {
    /// An event of `kind` at `now` (ms). `Some(n)`: log it, after a line
    /// reporting `n` suppressed events if `n > 0`. `None`: suppressed.
    pub fn admit(&mut self, kind: Kind, now: u64) -> Option<u64> {
        let w = &mut self.windows[kind.index()];
        if now >= w.start.saturating_add(WINDOW_MS) || (w.lines == 0 && w.suppressed == 0) {
            let reported = std::mem::take(&mut w.suppressed);
            *w = Window {
                start: now,
                lines: 1,
                suppressed: 0,
            };
            return Some(reported);
        }
        if w.lines < LINES_PER_WINDOW {
            w.lines += 1;
            return Some(0);
        }
        w.suppressed += 1;
        self.pending = true;
        None
    }

    /// Suppressed counts of windows that are over at `now`, each reported
    /// once. Cheap when nothing was suppressed (one flag test).
    pub fn take_expired(&mut self, now: u64, mut report: impl FnMut(Kind, u64)) {
        if !self.pending {
            return;
        }
        self.pending = false;
        for kind in Kind::ALL {
            let w = &mut self.windows[kind.index()];
            if w.suppressed == 0 {
                continue;
            }
            if now >= w.start.saturating_add(WINDOW_MS) {
                report(kind, std::mem::take(&mut w.suppressed));
            } else {
                self.pending = true;
            }
        }
    }
}

/// `conn 7 from 127.0.0.1:40231`: how every per-connection line starts.
pub struct Tag {
    serial: u64,
    peer: PeerAddr,
}

impl Tag {
    pub fn of(c: &Conn) -> Tag {
        Tag {
            serial: c.serial,
            peer: c.peer_addr(),
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn {} from {}", self.serial, self.peer)
    }
}

/// The listener a connection came in on, as `127.0.0.1:6388 (tcp)`.
pub struct ListenerTag(Option<(SocketAddr, &'static str)>);

impl ListenerTag {
    pub fn of(listeners: &[Option<Listener>], index: u8) -> ListenerTag {
        ListenerTag(
            listeners
                .get(usize::from(index))
                .and_then(Option::as_ref)
                .map(|l| (l.addr, l.kind)),
        )
    }
}

impl fmt::Display for ListenerTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some((addr, kind)) => write!(f, "{addr} ({kind})"),
            None => f.write_str("a closed listener"),
        }
    }
}

/// The command name and key of a request, kept across `State::apply` (which
/// consumes the command) so a refusal can name them. Captured only while
/// `debug` is enabled.
pub struct RequestCtx {
    name: &'static str,
    key: Option<Box<str>>,
}

impl RequestCtx {
    /// `None` unless `debug` is enabled: at the default level a request
    /// costs one relaxed atomic load here.
    #[inline]
    pub fn capture(cmd: &Command) -> Option<RequestCtx> {
        if !log::log_enabled!(Level::Debug) {
            return None;
        }
        Some(RequestCtx::of(cmd))
    }

    #[cold]
    fn of(cmd: &Command) -> RequestCtx {
        // The whole key (≤ 256 bytes): `Escaped` cuts it and shows its length.
        RequestCtx {
            name: cmd.name(),
            key: key_of(cmd).map(Box::from),
        }
    }
}

/// The key (or channel, or pattern) a command names, if it names one.
fn key_of(cmd: &Command) -> Option<&str> {
    use Command as C;
    Some(match cmd {
        C::Ping | C::Stats | C::Auth(_) => return None,
        C::Opt { name, .. } => name.name(),
        C::Lock { key, .. }
        | C::Release { key, .. }
        | C::Renew { key, .. }
        | C::Enqueue { key, .. }
        | C::Wait { key, .. }
        | C::SemLock { key, .. }
        | C::SemRelease { key, .. }
        | C::SemRenew { key, .. }
        | C::SemEnqueue { key, .. }
        | C::SemWait { key, .. }
        | C::RwLock { key, .. }
        | C::RwRelease { key, .. }
        | C::RwRenew { key, .. }
        | C::RwEnqueue { key, .. }
        | C::RwWait { key, .. }
        | C::Elect { key, .. }
        | C::Resign { key, .. }
        | C::Observe { key }
        | C::Unobserve { key }
        | C::Incr { key, .. }
        | C::Decr { key, .. }
        | C::Get { key }
        | C::CSet { key, .. }
        | C::KSet { key, .. }
        | C::KGet { key }
        | C::KDel { key }
        | C::KCas { key, .. }
        | C::Push { key, .. }
        | C::Pop { key, .. }
        | C::LLen { key }
        | C::LRange { key, .. }
        | C::BPop { key, .. }
        | C::BWait { key, .. }
        | C::DreadLock { key, .. }
        | C::DreadUnlock { key }
        | C::Pos { key }
        | C::Who { key } => key,
        C::Listen { pattern, .. }
        | C::Unlisten { pattern, .. }
        | C::Watch { pattern }
        | C::Unwatch { pattern } => pattern,
        C::Signal { channel, .. } => channel,
    })
}

/// Why a request that was not refused at parse time never reached the state.
/// Built on the refusal path only, and only if its line will be logged.
pub enum Explained {
    /// A parse error: `command "l" key "k": error, code 4: invalid integer …`.
    Parse(Box<str>),
    /// A malformed Dreadlock line: the line (escaped) and what is wrong with it.
    Dreadlock(Box<str>),
}

impl Explained {
    /// For a three-line request `Command::from_raw` refused; `None` unless
    /// `debug` is enabled (parse errors are debug lines).
    #[cold]
    pub fn parse(
        err: ProtoError,
        cmd: &[u8],
        key: &[u8],
        arg: &[u8],
        max_value: usize,
    ) -> Option<Explained> {
        if !log::log_enabled!(Level::Debug) {
            return None;
        }
        let detail = explain::parse_error(err, cmd, key, arg, max_value);
        Some(Explained::Parse(
            format!(
                "command {} key {}: error, code {}: {detail}",
                Escaped(cmd),
                Escaped(key),
                err.code()
            )
            .into(),
        ))
    }

    /// For a malformed Dreadlock line; `None` unless `info` is enabled.
    #[cold]
    pub fn dreadlock(line: &[u8]) -> Option<Explained> {
        if !log::log_enabled!(Kind::BadDreadlock.level()) {
            return None;
        }
        Some(Explained::Dreadlock(
            format!(
                "malformed Dreadlock line {}: code 17, {}",
                Escaped(line),
                explain::dreadlock_error(line)
            )
            .into(),
        ))
    }
}

/// What a connection's first request was when authentication failed. Never
/// the value given: the log must not help anyone guess the token.
#[derive(Debug, Clone, Copy)]
pub enum AuthAttempt {
    WrongToken,
    /// Another command than `auth`.
    Command(&'static str),
    Malformed,
    MalformedDreadlock,
}

impl AuthAttempt {
    pub(super) fn of(req: &Request) -> AuthAttempt {
        match &req.cmd {
            Ok(Command::Auth(_)) => AuthAttempt::WrongToken,
            Ok(cmd) => AuthAttempt::Command(cmd.name()),
            Err(RequestError::Proto(_)) => AuthAttempt::Malformed,
            Err(RequestError::BadDreadlock(_)) => AuthAttempt::MalformedDreadlock,
        }
    }
}

impl fmt::Display for AuthAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthAttempt::WrongToken => f.write_str("wrong token"),
            AuthAttempt::Command(name) => {
                write!(f, "the first request was \"{name}\", not auth")
            }
            AuthAttempt::Malformed => f.write_str("the first request was malformed, not auth"),
            AuthAttempt::MalformedDreadlock => {
                f.write_str("the first request was a malformed Dreadlock line, not auth")
            }
        }
    }
}

/// The refusal logger the server owns.
#[derive(Debug, Default)]
pub struct Refusals {
    limiter: RateLimiter,
}

impl Refusals {
    /// Whether a line of `kind` may be logged now; logs the pending
    /// "suppressed" line of the kind first when its window turned over.
    fn admit(&mut self, kind: Kind, now: u64) -> bool {
        if !log::log_enabled!(kind.level()) {
            return false;
        }
        match self.limiter.admit(kind, now) {
            Some(0) => true,
            Some(n) => {
                suppressed_line(kind, n);
                true
            }
            None => false,
        }
    }

    /// Report the suppressed counts of windows that ended (called once per
    /// loop iteration; a flag test when nothing was suppressed).
    pub fn flush(&mut self, now: u64) {
        self.limiter.take_expired(now, suppressed_line);
    }

    /// A request refused at parse time (debug).
    #[cold]
    pub fn parse_error(&self, c: &Conn, why: Option<&Explained>) {
        if let Some(Explained::Parse(text)) = why {
            log::debug!("{}: {text}", Tag::of(c));
        }
    }

    /// A malformed Dreadlock line: closed without a reply (info, limited).
    #[cold]
    pub fn bad_dreadlock(&mut self, now: u64, c: &Conn, why: Option<&Explained>) {
        if !self.admit(Kind::BadDreadlock, now) {
            return;
        }
        match why {
            Some(Explained::Dreadlock(text)) => {
                log::info!("{}: {text}; closing without a reply", Tag::of(c));
            }
            _ => log::info!(
                "{}: malformed Dreadlock line (code 17); closing without a reply",
                Tag::of(c)
            ),
        }
    }

    /// An over-long line: `error` (or, for a Dreadlock line, nothing) and close.
    #[cold]
    pub fn line_too_long(&mut self, now: u64, c: &Conn, dreadlock: bool, max_line: usize) {
        if dreadlock {
            if self.admit(Kind::BadDreadlock, now) {
                log::info!(
                    "{}: malformed Dreadlock line: code 17, longer than {max_line} bytes; \
                     closing without a reply",
                    Tag::of(c)
                );
            }
        } else {
            log::debug!(
                "{}: error, code 12: line too long (over its limit without a newline); closing",
                Tag::of(c)
            );
        }
    }

    /// The first request of a connection failed authentication (info, limited).
    /// `why` says how, never with the value given.
    #[cold]
    pub fn auth_failed(&mut self, now: u64, c: &Conn, on: ListenerTag, why: AuthAttempt) {
        if self.admit(Kind::AuthFailed, now) {
            log::info!(
                "{} on {on}: authentication failed ({why}); answering {} after 100 ms and closing",
                Tag::of(c),
                if c.last_dread {
                    "e authentication required"
                } else {
                    "error_auth"
                }
            );
        }
    }

    /// A reply that refuses a request that reached the state or the server's
    /// own checks: debug, or info (limited) at a configured limit.
    #[cold]
    pub fn refused(
        &mut self,
        now: u64,
        c: &Conn,
        ctx: Option<&RequestCtx>,
        refusal: Refusal,
        cfg: &StateConfig,
    ) {
        let request = RequestWords(ctx);
        match refusal.limit() {
            Some(limit) => {
                if self.admit(Kind::of_limit(limit), now) {
                    let value = match limit {
                        Limit::MaxLocks => cfg.max_locks,
                        Limit::MaxKeys => cfg.max_keys,
                        Limit::MaxWaiters => cfg.max_waiters,
                        Limit::MaxSubscriptions => cfg.max_subscriptions,
                        Limit::MaxListLength => cfg.max_list_length,
                    };
                    log::info!(
                        "{}{request}: {}: {} {value} reached, {}",
                        Tag::of(c),
                        refusal.wire(),
                        limit.flag(),
                        limit.what()
                    );
                }
            }
            None => log::debug!(
                "{}{request}: {}: {}",
                Tag::of(c),
                refusal.wire(),
                refusal.meaning(ctx.map(|x| x.name))
            ),
        }
    }

    /// `auth` without a configured token is an unknown command (debug).
    #[cold]
    pub fn auth_without_token(&self, c: &Conn) {
        log::debug!(
            "{}: command \"auth\": error, code 3: unknown command \"auth\" \
             (no auth token is configured, so auth is an unknown command)",
            Tag::of(c)
        );
    }

    /// A request read while the server drains (debug).
    #[cold]
    pub fn draining(&self, c: &Conn) {
        log::debug!(
            "{}: {}: the server is shutting down; closing",
            Tag::of(c),
            if c.last_dread {
                "e draining"
            } else {
                "error_draining"
            }
        );
    }

    /// An HTTP request line on the line port: closed without a reply (warn, limited).
    #[cold]
    pub fn http_on_line_port(&mut self, now: u64, c: &Conn, on: ListenerTag) {
        if self.admit(Kind::CrossProtocol, now) {
            let data = c.inbuf.data();
            let line = data.split(|&b| b == b'\n').next().unwrap_or(data);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            log::warn!(
                "{} on {on}: HTTP request {} on the protocol port, closing without a reply (code 16)",
                Tag::of(c),
                Escaped(line)
            );
        }
    }

    /// A TLS ClientHello on a plain-text listener (warn, limited); the
    /// connection is closed without a reply.
    #[cold]
    pub fn tls_on_plain_port(&mut self, now: u64, c: &Conn, on: ListenerTag) {
        if self.admit(Kind::CrossProtocol, now) {
            log::warn!(
                "{} on {on}: the first bytes are a TLS ClientHello, but this listener \
                 speaks plain text (TLS is off); closing without a reply",
                Tag::of(c)
            );
        }
    }

    /// A connection closed as a slow consumer (info, limited).
    #[cold]
    pub fn slow_consumer(&mut self, now: u64, c: &Conn, max_output: usize) {
        if self.admit(Kind::SlowConsumer, now) {
            log::info!(
                "{}: slow consumer: a push frame would take its pending output ({} bytes) \
                 past --max-output-bytes {max_output}; closing",
                Tag::of(c),
                c.outbuf.pending()
            );
        }
    }

    /// A connection closed by a timeout: info (limited) if it held or waited,
    /// else debug. `limit_s` is the timeout in seconds.
    #[cold]
    pub fn timeout_close(
        &mut self,
        now: u64,
        c: &Conn,
        reason: CloseReason,
        limit_s: u64,
        held: Holdings,
    ) {
        let flag = if reason == CloseReason::WriteTimeout {
            "--write-timeout"
        } else {
            "--read-timeout"
        };
        let notice = match reason {
            CloseReason::WriteTimeout => "",
            _ if c.last_dread => ", sending e idle timeout",
            _ => ", sending error",
        };
        if held.holds == 0 && !held.waiting {
            log::debug!(
                "{}: {reason} ({flag} {limit_s} s){notice}; closing",
                Tag::of(c)
            );
            return;
        }
        if self.admit(Kind::TimeoutClose, now) {
            let waiting = if held.waiting { " and waiting" } else { "" };
            log::info!(
                "{}: {reason} ({flag} {limit_s} s) while holding {} slot(s){waiting}{notice}; \
                 closing (disconnect cleanup follows)",
                Tag::of(c),
                held.holds
            );
        }
    }

    /// A connection refused at `--max-connections` or `--max-connections-per-ip`
    /// (info, limited).
    #[cold]
    pub fn connection_cap(
        &mut self,
        now: u64,
        peer: PeerAddr,
        on: ListenerTag,
        flag: &str,
        cap: u64,
    ) {
        if self.admit(Kind::ConnectionCap, now) {
            log::info!(
                "refused connection from {peer} on {on}: {flag} {cap} reached; closed without a reply"
            );
        }
    }

    /// Every close (debug).
    #[cold]
    pub fn closed(&self, c: &Conn) {
        log::debug!("{} closed: {}", Tag::of(c), c.close_reason);
    }
}

/// ` command "l" key "my-key"` when the request is known, else nothing.
struct RequestWords<'a>(Option<&'a RequestCtx>);

impl fmt::Display for RequestWords<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(ctx) = self.0 else {
            return Ok(());
        };
        write!(f, ": command \"{}\"", ctx.name)?;
        if let Some(key) = &ctx.key {
            write!(f, " key {}", Escaped(key.as_bytes()))?;
        }
        Ok(())
    }
}

fn suppressed_line(kind: Kind, n: u64) {
    log::log!(
        kind.level(),
        "{}: {n} similar line(s) suppressed in the last second (at most {LINES_PER_WINDOW} per second are logged)",
        kind.label()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `events` at the given times; returns (logged, reported suppressed).
    fn run(l: &mut RateLimiter, kind: Kind, times: impl IntoIterator<Item = u64>) -> (u64, u64) {
        let (mut logged, mut reported) = (0, 0);
        for t in times {
            if let Some(n) = l.admit(kind, t) {
                logged += 1;
                reported += n;
            }
        }
        (logged, reported)
    }

    #[test]
    fn ten_lines_per_second_then_a_count() {
        let mut l = RateLimiter::default();
        // 100 events within 100 ms: 10 logged, 90 held back.
        let (logged, reported) = run(&mut l, Kind::AuthFailed, 1000..1100);
        assert_eq!((logged, reported), (10, 0));
        // Nothing is reported before the window is over...
        let mut seen = Vec::new();
        l.take_expired(1999, |k, n| seen.push((k, n)));
        assert!(seen.is_empty());
        // ...and exactly once after.
        l.take_expired(2000, |k, n| seen.push((k, n)));
        assert_eq!(seen, vec![(Kind::AuthFailed, 90)]);
        l.take_expired(5000, |k, n| seen.push((k, n)));
        assert_eq!(seen.len(), 1);
        // A new window logs again.
        assert_eq!(l.admit(Kind::AuthFailed, 2500), Some(0));
    }

    #[test]
    fn the_next_line_reports_what_was_suppressed() {
        let mut l = RateLimiter::default();
        run(&mut l, Kind::MaxLocks, (0..25).map(|i| 10 + i));
        // The next event after the window carries the count of 15.
        assert_eq!(l.admit(Kind::MaxLocks, 1010), Some(15));
        let mut seen = Vec::new();
        l.take_expired(9999, |k, n| seen.push((k, n)));
        assert!(seen.is_empty(), "already reported: {seen:?}");
    }

    #[test]
    fn kinds_are_limited_separately() {
        let mut l = RateLimiter::default();
        run(&mut l, Kind::AuthFailed, std::iter::repeat_n(0, 50));
        assert_eq!(
            run(&mut l, Kind::SlowConsumer, std::iter::repeat_n(0, 50)).0,
            10
        );
        assert_eq!(run(&mut l, Kind::ConnectionCap, [0]).0, 1);
    }

    #[test]
    fn a_steady_flood_logs_at_most_ten_per_second() {
        let mut l = RateLimiter::default();
        // One event per ms for 10 s.
        let (logged, reported) = run(&mut l, Kind::BadDreadlock, 0..10_000);
        assert_eq!(logged, 100);
        let mut rest = 0;
        l.take_expired(20_000, |_, n| rest += n);
        assert_eq!(logged + reported + rest, 10_000);
    }

    #[test]
    fn a_quiet_kind_never_reports() {
        let mut l = RateLimiter::default();
        assert_eq!(run(&mut l, Kind::TimeoutClose, [5, 3000, 9000]), (3, 0));
        let mut seen = 0;
        l.take_expired(20_000, |_, _| seen += 1);
        assert_eq!(seen, 0);
    }
}
