//! Typed requests. `Command::from_raw` turns the three framed lines into a
//! `Command` with validated, typed arguments, so the state code never parses.
//! Spec: protocol.md §3 (field syntax) and §8 (commands).

use crate::state::options::{OptName, parse_switch};
use std::fmt;

/// A validated key (protocol.md §3.1): 1..=256 bytes of UTF-8 without space, TAB, CR, LF.
/// Also used for channels and patterns (§3.5), which follow the key rules.
pub type Key = Box<str>;

/// Seconds as given on the wire (already range-checked).
pub type Secs = u64;

/// Which mode a read-write command works in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RwMode {
    Read,
    Write,
}

/// Which end of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Left,
    Right,
}

/// A token argument (§3.3): 1..=256 bytes, no space or TAB, after trimming.
/// Kept as bytes; the state decides whether it is a token it issued.
pub type TokenArg = Box<[u8]>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ping,
    Stats,
    /// `auth`; the argument trimmed of surrounding spaces and TABs.
    Auth(Box<[u8]>),

    // ---- exclusive locks (§8.4) ----
    /// `l <timeout> [<lease>]`
    Lock {
        key: Key,
        timeout: Secs,
        lease: Option<Secs>,
    },
    /// `r <token>`
    Release {
        key: Key,
        token: TokenArg,
    },
    /// `n <token> [<lease>]`
    Renew {
        key: Key,
        token: TokenArg,
        lease: Option<Secs>,
    },
    /// `e [<lease>]`
    Enqueue {
        key: Key,
        lease: Option<Secs>,
    },
    /// `w <timeout>`
    Wait {
        key: Key,
        timeout: Secs,
    },

    // ---- semaphores (§8.5) ----
    /// `sl <timeout> <limit> [<lease>]`
    SemLock {
        key: Key,
        timeout: Secs,
        limit: u32,
        lease: Option<Secs>,
    },
    /// `sr <token>`
    SemRelease {
        key: Key,
        token: TokenArg,
    },
    /// `sn <token> [<lease>]`
    SemRenew {
        key: Key,
        token: TokenArg,
        lease: Option<Secs>,
    },
    /// `se <limit> [<lease>]`
    SemEnqueue {
        key: Key,
        limit: u32,
        lease: Option<Secs>,
    },
    /// `sw <timeout>`
    SemWait {
        key: Key,
        timeout: Secs,
    },

    // ---- read-write locks (§8.7) ----
    /// `rl` / `wl <timeout> [<lease>]`
    RwLock {
        mode: RwMode,
        key: Key,
        timeout: Secs,
        lease: Option<Secs>,
    },
    /// `rr` / `wr <token>` (same release for either mode)
    RwRelease {
        mode: RwMode,
        key: Key,
        token: TokenArg,
    },
    /// `rn` / `wn <token> [<lease>]`
    RwRenew {
        mode: RwMode,
        key: Key,
        token: TokenArg,
        lease: Option<Secs>,
    },
    /// `re` / `we [<lease>]`
    RwEnqueue {
        mode: RwMode,
        key: Key,
        lease: Option<Secs>,
    },
    /// `rw` / `ww <timeout>`
    RwWait {
        mode: RwMode,
        key: Key,
        timeout: Secs,
    },

    // ---- elections (§8.8) ----
    Elect {
        key: Key,
        timeout: Secs,
        lease: Option<Secs>,
    },
    Resign {
        key: Key,
        token: TokenArg,
    },
    Observe {
        key: Key,
    },
    Unobserve {
        key: Key,
    },

    // ---- counters (§8.9) ----
    /// `incr` (delta as given) and `decr` (delta as given; the state subtracts).
    Incr {
        key: Key,
        delta: i64,
    },
    Decr {
        key: Key,
        delta: i64,
    },
    Get {
        key: Key,
    },
    CSet {
        key: Key,
        value: i64,
    },

    // ---- KV (§8.10) ----
    /// `kset <value>[\t<ttl>]`; ttl 0 = none.
    KSet {
        key: Key,
        value: Box<str>,
        ttl: Secs,
    },
    KGet {
        key: Key,
    },
    KDel {
        key: Key,
    },
    /// `kcas <old>\t<new>\t<ttl>`; `old` empty = must not exist; ttl 0 = none.
    KCas {
        key: Key,
        old: Box<str>,
        new: Box<str>,
        ttl: Secs,
    },

    // ---- lists (§8.11) ----
    Push {
        end: End,
        key: Key,
        value: Box<str>,
    },
    Pop {
        end: End,
        key: Key,
    },
    LLen {
        key: Key,
    },
    LRange {
        key: Key,
        start: i64,
        stop: i64,
    },
    BPop {
        end: End,
        key: Key,
        timeout: Secs,
    },

    // ---- pub/sub (§8.12) ----
    /// `listen <pattern> [<group>]` (pattern validated, §3.5)
    Listen {
        pattern: Key,
        group: Option<Box<str>>,
    },
    Unlisten {
        pattern: Key,
        group: Option<Box<str>>,
    },
    /// `signal <channel> <payload>` (channel has no `*`/`>`)
    Signal {
        channel: Key,
        payload: Box<str>,
    },

    // ---- watches (§8.13) ----
    Watch {
        pattern: Key,
    },
    Unwatch {
        pattern: Key,
    },

    // ---- barriers (§8.14) ----
    BWait {
        key: Key,
        count: u32,
        timeout: Secs,
    },

    // ---- extensions (§8.15) ----
    /// `opt\n<name>\n<on|off>\n`
    Opt {
        name: OptName,
        on: bool,
    },
    /// `pos\n<key>\n\n`: this connection's queue position on the key.
    Pos {
        key: Key,
    },
    /// `who\n<key>\n\n`: holders and waiters of the key.
    Who {
        key: Key,
    },

    // ---- Dreadlock dialect (§9) ----
    /// `lock <key> <ms>`
    DreadLock {
        key: Key,
        timeout_ms: u64,
    },
    /// `unlock <key>`
    DreadUnlock {
        key: Key,
    },
}

/// Why a request was refused at parse time. Each maps to the log-only numeric code
/// of protocol.md §11; on the wire every one of them is `error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtoError {
    UnknownCommand,
    BadInteger,
    BadKey,
    NegativeTimeout,
    BadToken,
    BadArgument,
    BadLease,
    BadLimit,
    BadValue,
    BadPattern,
}

impl ProtoError {
    /// The numeric code written to the log (protocol.md §11).
    pub fn code(self) -> u8 {
        match self {
            ProtoError::UnknownCommand => 3,
            ProtoError::BadInteger => 4,
            ProtoError::BadKey => 5,
            ProtoError::NegativeTimeout => 6,
            ProtoError::BadToken => 7,
            ProtoError::BadArgument => 8,
            ProtoError::BadLease => 9,
            ProtoError::BadLimit => 13,
            ProtoError::BadValue => 14,
            ProtoError::BadPattern => 15,
        }
    }
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} (code {})", self, self.code())
    }
}

impl std::error::Error for ProtoError {}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

/// Limits the parser needs (from the configuration).
#[derive(Debug, Clone, Copy)]
pub struct CommandLimits {
    /// V, `--max-value-bytes`: the largest value (§3.4) in bytes.
    pub max_value_bytes: usize,
}

/// Largest key, token or group in bytes (§3.1, §3.3, §8.12).
pub const MAX_KEY_BYTES: usize = 256;
/// Largest timeout, lease or TTL in seconds (§3.2).
pub const MAX_SECS: u64 = 9_223_372_036;
/// Largest semaphore limit or barrier count (§3.2).
pub const MAX_LIMIT: u32 = 1_048_576;

use ProtoError as E;

#[inline]
fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Removes leading and trailing spaces and TABs.
#[inline]
fn trim_blanks(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_blank(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_blank(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// Key byte rules (§3.1): 1..=256 bytes, no space, TAB, CR or LF. UTF-8 is checked apart.
#[inline]
fn key_bytes_ok(k: &[u8]) -> bool {
    !k.is_empty()
        && k.len() <= MAX_KEY_BYTES
        && !k.iter().any(|&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

/// True if `k` is a valid key (§3.1): 1..=256 bytes of UTF-8 without space, TAB, CR, LF.
pub fn is_valid_key(k: &[u8]) -> bool {
    key_bytes_ok(k) && std::str::from_utf8(k).is_ok()
}

/// Token structure of a pattern (§3.5): `*` and `>` only as whole tokens, `>` last.
fn pattern_tokens_ok(p: &[u8]) -> bool {
    let mut tokens = p.split(|&b| b == b'.').peekable();
    while let Some(tok) = tokens.next() {
        match tok {
            b"*" => {}
            b">" => {
                if tokens.peek().is_some() {
                    return false;
                }
            }
            _ => {
                if tok.iter().any(|&b| b == b'*' || b == b'>') {
                    return false;
                }
            }
        }
    }
    true
}

/// Pattern validation shared with pub/sub and watches (§3.5): returns true if `p` is a
/// valid pattern. This includes the key rules of §3.1 (1..=256 bytes, no space, TAB,
/// CR or LF), so it can be used on its own on HTTP input.
pub fn is_valid_pattern(p: &str) -> bool {
    key_bytes_ok(p.as_bytes()) && pattern_tokens_ok(p.as_bytes())
}

/// True if `c` is a valid `signal` channel (§3.5): a valid key without `*` or `>`.
pub fn is_valid_channel(c: &str) -> bool {
    key_bytes_ok(c.as_bytes()) && !c.bytes().any(|b| b == b'*' || b == b'>')
}

/// A validated key, borrowed (allocation happens once the whole request is valid).
#[inline]
fn key_str(k: &[u8]) -> Result<&str, ProtoError> {
    if !key_bytes_ok(k) {
        return Err(E::BadKey);
    }
    std::str::from_utf8(k).map_err(|_| E::BadKey)
}

/// A pattern in the key line of `listen`, `unlisten`, `watch`, `unwatch`.
/// Key-rule failures are `BadKey`; a bad wildcard structure is `BadPattern`.
#[inline]
fn pattern(p: &[u8]) -> Result<&str, ProtoError> {
    let s = key_str(p)?;
    if pattern_tokens_ok(p) {
        Ok(s)
    } else {
        Err(E::BadPattern)
    }
}

/// A `signal` channel: a key without `*` or `>` (§3.5; code 5 per §11).
#[inline]
fn channel(c: &[u8]) -> Result<&str, ProtoError> {
    let s = key_str(c)?;
    if c.iter().any(|&b| b == b'*' || b == b'>') {
        return Err(E::BadKey);
    }
    Ok(s)
}

/// A value (§3.4): verbatim, `1..=max` bytes (or `0..=max` when `allow_empty`), UTF-8,
/// no TAB, CR or LF.
#[inline]
pub(crate) fn value(v: &[u8], max: usize, allow_empty: bool) -> Result<&str, ProtoError> {
    if (v.is_empty() && !allow_empty) || v.len() > max {
        return Err(E::BadValue);
    }
    if v.iter().any(|&b| matches!(b, b'\t' | b'\r' | b'\n')) {
        return Err(E::BadValue);
    }
    std::str::from_utf8(v).map_err(|_| E::BadValue)
}

/// A `signal` payload (§3.4): a value with at least one byte that is not a space.
#[inline]
pub(crate) fn payload(v: &[u8], max: usize) -> Result<&str, ProtoError> {
    let p = value(v, max, false)?;
    if !p.bytes().any(|b| b != b' ') {
        return Err(E::BadValue);
    }
    Ok(p)
}

/// A token argument (§3.3), already split or trimmed by the caller; trimmed again here.
#[inline]
fn token(t: &[u8]) -> Result<TokenArg, ProtoError> {
    let t = trim_blanks(t);
    if t.is_empty() || t.len() > MAX_KEY_BYTES || t.iter().any(|&b| is_blank(b)) {
        return Err(E::BadToken);
    }
    if std::str::from_utf8(t).is_err() {
        return Err(E::BadToken);
    }
    Ok(t.into())
}

/// The optional group of `listen`/`unlisten` (§8.12): the trimmed argument; empty = none;
/// otherwise one field of 1..=256 bytes of UTF-8 without spaces or TABs.
#[inline]
fn group(arg: &[u8]) -> Result<Option<Box<str>>, ProtoError> {
    let g = trim_blanks(arg);
    if g.is_empty() {
        return Ok(None);
    }
    if g.len() > MAX_KEY_BYTES || g.iter().any(|&b| is_blank(b)) {
        return Err(E::BadPattern);
    }
    match std::str::from_utf8(g) {
        Ok(s) => Ok(Some(s.into())),
        Err(_) => Err(E::BadPattern),
    }
}

/// Splits a numeric argument into at most `N` fields on runs of spaces and TABs (§3.2).
/// Returns the fields (unused slots empty) and their number; more than `N` fields is
/// `BadArgument`.
#[inline]
fn fields<const N: usize>(arg: &[u8]) -> Result<([&[u8]; N], usize), ProtoError> {
    let mut out: [&[u8]; N] = [&[]; N];
    let mut n = 0;
    for f in arg.split(|&b| is_blank(b)).filter(|f| !f.is_empty()) {
        match out.get_mut(n) {
            Some(slot) => *slot = f,
            None => return Err(E::BadArgument),
        }
        n += 1;
    }
    Ok((out, n))
}

/// One or more ASCII digits; the value saturates at `u64::MAX` (above every range).
#[inline]
fn digits(d: &[u8]) -> Option<u64> {
    if d.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &b in d {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.saturating_mul(10).saturating_add(u64::from(b - b'0'));
    }
    Some(v)
}

/// `[+-]digits` → (negative, magnitude). The magnitude saturates at `u64::MAX`.
#[inline]
fn sign_magnitude(f: &[u8]) -> Result<(bool, u64), ProtoError> {
    let (neg, d) = match f {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, f),
    };
    digits(d).map(|m| (neg, m)).ok_or(E::BadInteger)
}

/// A timeout (§3.2): unsigned, 0..=9223372036. A negative number is `NegativeTimeout`.
#[inline]
fn timeout(f: &[u8]) -> Result<Secs, ProtoError> {
    match sign_magnitude(f)? {
        (true, _) => Err(E::NegativeTimeout),
        (false, m) if m <= MAX_SECS => Ok(m),
        _ => Err(E::BadInteger),
    }
}

/// A lease (§3.2): unsigned, 1..=9223372036. Zero or negative is `BadLease`.
#[inline]
fn lease(f: &[u8]) -> Result<Secs, ProtoError> {
    match sign_magnitude(f)? {
        (true, _) | (false, 0) => Err(E::BadLease),
        (false, m) if m <= MAX_SECS => Ok(m),
        _ => Err(E::BadInteger),
    }
}

/// A semaphore limit or barrier count (§3.2): 1..=1048576; any other number is `BadLimit`.
#[inline]
fn limit(f: &[u8]) -> Result<u32, ProtoError> {
    match sign_magnitude(f)? {
        (false, m) if (1..=u64::from(MAX_LIMIT)).contains(&m) => {
            u32::try_from(m).map_err(|_| E::BadLimit)
        }
        _ => Err(E::BadLimit),
    }
}

/// A signed 64-bit integer (counter delta/value, `lrange` index).
#[inline]
pub(crate) fn signed(f: &[u8]) -> Result<i64, ProtoError> {
    let (neg, m) = sign_magnitude(f)?;
    let v = if neg {
        0i64.checked_sub_unsigned(m)
    } else {
        i64::try_from(m).ok()
    };
    v.ok_or(E::BadInteger)
}

/// A TTL after a TAB (§8.10, §2.10 item 6): ASCII digits only, 0..=9223372036.
#[inline]
fn ttl(f: &[u8]) -> Result<Secs, ProtoError> {
    match digits(f) {
        Some(m) if m <= MAX_SECS => Ok(m),
        _ => Err(E::BadInteger),
    }
}

/// `<timeout> [<lease>]`
#[inline]
fn timeout_lease(arg: &[u8]) -> Result<(Secs, Option<Secs>), ProtoError> {
    match fields::<2>(arg)? {
        ([t, _], 1) => Ok((timeout(t)?, None)),
        ([t, l], 2) => Ok((timeout(t)?, Some(lease(l)?))),
        _ => Err(E::BadArgument),
    }
}

/// `<timeout>`
#[inline]
fn timeout_only(arg: &[u8]) -> Result<Secs, ProtoError> {
    match fields::<1>(arg)? {
        ([t], 1) => timeout(t),
        _ => Err(E::BadArgument),
    }
}

/// `[<lease>]`
#[inline]
fn opt_lease(arg: &[u8]) -> Result<Option<Secs>, ProtoError> {
    match fields::<1>(arg)? {
        (_, 0) => Ok(None),
        ([l], _) => Ok(Some(lease(l)?)),
    }
}

/// `<token> [<lease>]`
#[inline]
fn token_lease(arg: &[u8]) -> Result<(TokenArg, Option<Secs>), ProtoError> {
    match fields::<2>(arg) {
        Ok(([t, _], 1)) => Ok((token(t)?, None)),
        Ok(([t, l], 2)) => {
            let t = token(t)?;
            Ok((t, Some(lease(l)?)))
        }
        Ok(_) => Err(E::BadToken), // nothing but blanks: empty token
        Err(e) => Err(e),
    }
}

/// `<signed>`
#[inline]
fn one_signed(arg: &[u8]) -> Result<i64, ProtoError> {
    match fields::<1>(arg)? {
        ([v], 1) => signed(v),
        _ => Err(E::BadArgument),
    }
}

impl Command {
    /// Parses one framed request. `cmd`, `key`, `arg` are the line contents (LF and one
    /// preceding CR already removed). Dreadlock lines are parsed elsewhere: `lock` and
    /// `unlock` here are unknown commands.
    pub fn from_raw(
        cmd: &[u8],
        key: &[u8],
        arg: &[u8],
        limits: &CommandLimits,
    ) -> Result<Command, ProtoError> {
        use Command as C;
        let vmax = limits.max_value_bytes;
        Ok(match cmd {
            b"ping" => C::Ping,
            b"stats" => C::Stats,
            b"auth" => C::Auth(trim_blanks(arg).into()),

            // ---- exclusive locks ----
            b"l" => {
                let key = key_str(key)?;
                let (timeout, lease) = timeout_lease(arg)?;
                C::Lock {
                    key: key.into(),
                    timeout,
                    lease,
                }
            }
            b"r" => {
                let key = key_str(key)?;
                C::Release {
                    key: key.into(),
                    token: token(arg)?,
                }
            }
            b"n" => {
                let key = key_str(key)?;
                let (token, lease) = token_lease(arg)?;
                C::Renew {
                    key: key.into(),
                    token,
                    lease,
                }
            }
            b"e" => {
                let key = key_str(key)?;
                C::Enqueue {
                    key: key.into(),
                    lease: opt_lease(arg)?,
                }
            }
            b"w" => {
                let key = key_str(key)?;
                C::Wait {
                    key: key.into(),
                    timeout: timeout_only(arg)?,
                }
            }

            // ---- semaphores ----
            b"sl" => {
                let key = key_str(key)?;
                let (timeout, limit, lease) = match fields::<3>(arg)? {
                    ([t, l, _], 2) => (timeout(t)?, limit(l)?, None),
                    ([t, l, ls], 3) => (timeout(t)?, limit(l)?, Some(lease(ls)?)),
                    _ => return Err(E::BadArgument),
                };
                C::SemLock {
                    key: key.into(),
                    timeout,
                    limit,
                    lease,
                }
            }
            b"sr" => {
                let key = key_str(key)?;
                C::SemRelease {
                    key: key.into(),
                    token: token(arg)?,
                }
            }
            b"sn" => {
                let key = key_str(key)?;
                let (token, lease) = token_lease(arg)?;
                C::SemRenew {
                    key: key.into(),
                    token,
                    lease,
                }
            }
            b"se" => {
                let key = key_str(key)?;
                let (limit, lease) = match fields::<2>(arg)? {
                    ([l, _], 1) => (limit(l)?, None),
                    ([l, ls], 2) => (limit(l)?, Some(lease(ls)?)),
                    _ => return Err(E::BadArgument),
                };
                C::SemEnqueue {
                    key: key.into(),
                    limit,
                    lease,
                }
            }
            b"sw" => {
                let key = key_str(key)?;
                C::SemWait {
                    key: key.into(),
                    timeout: timeout_only(arg)?,
                }
            }

            // ---- read-write locks ----
            b"rl" | b"wl" => {
                let mode = rw_mode(cmd);
                let key = key_str(key)?;
                let (timeout, lease) = timeout_lease(arg)?;
                C::RwLock {
                    mode,
                    key: key.into(),
                    timeout,
                    lease,
                }
            }
            b"rr" | b"wr" => {
                let mode = rw_mode(cmd);
                let key = key_str(key)?;
                C::RwRelease {
                    mode,
                    key: key.into(),
                    token: token(arg)?,
                }
            }
            b"rn" | b"wn" => {
                let mode = rw_mode(cmd);
                let key = key_str(key)?;
                let (token, lease) = token_lease(arg)?;
                C::RwRenew {
                    mode,
                    key: key.into(),
                    token,
                    lease,
                }
            }
            b"re" | b"we" => {
                let mode = rw_mode(cmd);
                let key = key_str(key)?;
                C::RwEnqueue {
                    mode,
                    key: key.into(),
                    lease: opt_lease(arg)?,
                }
            }
            b"rw" | b"ww" => {
                let mode = rw_mode(cmd);
                let key = key_str(key)?;
                C::RwWait {
                    mode,
                    key: key.into(),
                    timeout: timeout_only(arg)?,
                }
            }

            // ---- elections ----
            b"elect" => {
                let key = key_str(key)?;
                let (timeout, lease) = timeout_lease(arg)?;
                C::Elect {
                    key: key.into(),
                    timeout,
                    lease,
                }
            }
            b"resign" => {
                let key = key_str(key)?;
                C::Resign {
                    key: key.into(),
                    token: token(arg)?,
                }
            }
            b"observe" => C::Observe {
                key: key_str(key)?.into(),
            },
            b"unobserve" => C::Unobserve {
                key: key_str(key)?.into(),
            },

            // ---- counters ----
            b"incr" => {
                let key = key_str(key)?;
                C::Incr {
                    key: key.into(),
                    delta: one_signed(arg)?,
                }
            }
            b"decr" => {
                let key = key_str(key)?;
                C::Decr {
                    key: key.into(),
                    delta: one_signed(arg)?,
                }
            }
            b"get" => C::Get {
                key: key_str(key)?.into(),
            },
            b"cset" => {
                let key = key_str(key)?;
                C::CSet {
                    key: key.into(),
                    value: one_signed(arg)?,
                }
            }

            // ---- KV ----
            b"kset" => {
                let key = key_str(key)?;
                let mut parts = arg.splitn(3, |&b| b == b'\t');
                let v = parts.next().unwrap_or_default();
                let t = parts.next();
                if parts.next().is_some() {
                    return Err(E::BadArgument); // a second TAB
                }
                let v = value(v, vmax, false)?;
                let ttl = match t {
                    Some(t) => ttl(t)?,
                    None => 0,
                };
                C::KSet {
                    key: key.into(),
                    value: v.into(),
                    ttl,
                }
            }
            b"kget" => C::KGet {
                key: key_str(key)?.into(),
            },
            b"kdel" => C::KDel {
                key: key_str(key)?.into(),
            },
            b"kcas" => {
                let key = key_str(key)?;
                let mut parts = arg.splitn(4, |&b| b == b'\t');
                let (Some(old), Some(new), Some(t), None) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    return Err(E::BadArgument); // not exactly two TABs
                };
                let old = value(old, vmax, true)?;
                let new = value(new, vmax, false)?;
                let ttl = if t.is_empty() { 0 } else { ttl(t)? };
                C::KCas {
                    key: key.into(),
                    old: old.into(),
                    new: new.into(),
                    ttl,
                }
            }

            // ---- lists ----
            b"lpush" | b"rpush" => {
                let end = end(cmd);
                let key = key_str(key)?;
                C::Push {
                    end,
                    key: key.into(),
                    value: value(arg, vmax, false)?.into(),
                }
            }
            b"lpop" => C::Pop {
                end: End::Left,
                key: key_str(key)?.into(),
            },
            b"rpop" => C::Pop {
                end: End::Right,
                key: key_str(key)?.into(),
            },
            b"llen" => C::LLen {
                key: key_str(key)?.into(),
            },
            b"lrange" => {
                let key = key_str(key)?;
                let (start, stop) = match fields::<2>(arg)? {
                    ([a, b], 2) => (signed(a)?, signed(b)?),
                    _ => return Err(E::BadArgument),
                };
                C::LRange {
                    key: key.into(),
                    start,
                    stop,
                }
            }
            b"blpop" | b"brpop" => {
                let end = if cmd == b"blpop" {
                    End::Left
                } else {
                    End::Right
                };
                let key = key_str(key)?;
                C::BPop {
                    end,
                    key: key.into(),
                    timeout: timeout_only(arg)?,
                }
            }

            // ---- pub/sub ----
            b"listen" => {
                let pattern = pattern(key)?;
                C::Listen {
                    pattern: pattern.into(),
                    group: group(arg)?,
                }
            }
            b"unlisten" => {
                let pattern = pattern(key)?;
                C::Unlisten {
                    pattern: pattern.into(),
                    group: group(arg)?,
                }
            }
            b"signal" => {
                let channel = channel(key)?;
                let payload = payload(arg, vmax)?;
                C::Signal {
                    channel: channel.into(),
                    payload: payload.into(),
                }
            }

            // ---- watches ----
            b"watch" => C::Watch {
                pattern: pattern(key)?.into(),
            },
            b"unwatch" => C::Unwatch {
                pattern: pattern(key)?.into(),
            },

            // ---- barriers ----
            b"bwait" => {
                let key = key_str(key)?;
                let (count, timeout) = match fields::<2>(arg)? {
                    ([c, t], 2) => (limit(c)?, timeout(t)?),
                    _ => return Err(E::BadArgument),
                };
                C::BWait {
                    key: key.into(),
                    count,
                    timeout,
                }
            }

            // ---- extensions (§8.15) ----
            b"opt" => C::Opt {
                name: OptName::parse(key).ok_or(E::BadArgument)?,
                on: parse_switch(trim_blanks(arg)).ok_or(E::BadArgument)?,
            },
            b"pos" => C::Pos {
                key: key_str(key)?.into(),
            },
            b"who" => C::Who {
                key: key_str(key)?.into(),
            },

            _ => return Err(E::UnknownCommand),
        })
    }

    /// The command's wire name (for logs), e.g. "l", "sl", "kset". The Dreadlock
    /// commands are "lock" and "unlock".
    pub fn name(&self) -> &'static str {
        use Command as C;
        use RwMode::{Read, Write};
        match self {
            C::Ping => "ping",
            C::Stats => "stats",
            C::Auth(_) => "auth",
            C::Lock { .. } => "l",
            C::Release { .. } => "r",
            C::Renew { .. } => "n",
            C::Enqueue { .. } => "e",
            C::Wait { .. } => "w",
            C::SemLock { .. } => "sl",
            C::SemRelease { .. } => "sr",
            C::SemRenew { .. } => "sn",
            C::SemEnqueue { .. } => "se",
            C::SemWait { .. } => "sw",
            C::RwLock { mode: Read, .. } => "rl",
            C::RwLock { mode: Write, .. } => "wl",
            C::RwRelease { mode: Read, .. } => "rr",
            C::RwRelease { mode: Write, .. } => "wr",
            C::RwRenew { mode: Read, .. } => "rn",
            C::RwRenew { mode: Write, .. } => "wn",
            C::RwEnqueue { mode: Read, .. } => "re",
            C::RwEnqueue { mode: Write, .. } => "we",
            C::RwWait { mode: Read, .. } => "rw",
            C::RwWait { mode: Write, .. } => "ww",
            C::Elect { .. } => "elect",
            C::Resign { .. } => "resign",
            C::Observe { .. } => "observe",
            C::Unobserve { .. } => "unobserve",
            C::Incr { .. } => "incr",
            C::Decr { .. } => "decr",
            C::Get { .. } => "get",
            C::CSet { .. } => "cset",
            C::KSet { .. } => "kset",
            C::KGet { .. } => "kget",
            C::KDel { .. } => "kdel",
            C::KCas { .. } => "kcas",
            C::Push { end: End::Left, .. } => "lpush",
            C::Push {
                end: End::Right, ..
            } => "rpush",
            C::Pop { end: End::Left, .. } => "lpop",
            C::Pop {
                end: End::Right, ..
            } => "rpop",
            C::LLen { .. } => "llen",
            C::LRange { .. } => "lrange",
            C::BPop { end: End::Left, .. } => "blpop",
            C::BPop {
                end: End::Right, ..
            } => "brpop",
            C::Listen { .. } => "listen",
            C::Unlisten { .. } => "unlisten",
            C::Signal { .. } => "signal",
            C::Watch { .. } => "watch",
            C::Unwatch { .. } => "unwatch",
            C::BWait { .. } => "bwait",
            C::Opt { .. } => "opt",
            C::Pos { .. } => "pos",
            C::Who { .. } => "who",
            C::DreadLock { .. } => "lock",
            C::DreadUnlock { .. } => "unlock",
        }
    }

    /// True for the commands that may park the connection (§2.5): `l sl w sw rl wl rw ww
    /// elect blpop brpop bwait` and the Dreadlock `lock`. (Whether one actually parks
    /// depends on its timeout and the state.)
    pub fn may_block(&self) -> bool {
        matches!(
            self,
            Command::Lock { .. }
                | Command::SemLock { .. }
                | Command::Wait { .. }
                | Command::SemWait { .. }
                | Command::RwLock { .. }
                | Command::RwWait { .. }
                | Command::Elect { .. }
                | Command::BPop { .. }
                | Command::BWait { .. }
                | Command::DreadLock { .. }
        )
    }
}

/// `r…` commands are reads, `w…` writes (only called on `rl wl rr wr rn wn re we rw ww`).
#[inline]
fn rw_mode(cmd: &[u8]) -> RwMode {
    if cmd.first() == Some(&b'r') {
        RwMode::Read
    } else {
        RwMode::Write
    }
}

/// `l…` commands work on the left end, `r…` on the right (only called on `lpush rpush`).
#[inline]
fn end(cmd: &[u8]) -> End {
    if cmd.first() == Some(&b'l') {
        End::Left
    } else {
        End::Right
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: usize = 64;
    const LIM: CommandLimits = CommandLimits { max_value_bytes: V };

    fn pb(cmd: &[u8], key: &[u8], arg: &[u8]) -> Result<Command, ProtoError> {
        Command::from_raw(cmd, key, arg, &LIM)
    }

    fn p(cmd: &str, key: &str, arg: &str) -> Result<Command, ProtoError> {
        pb(cmd.as_bytes(), key.as_bytes(), arg.as_bytes())
    }

    fn k(s: &str) -> Key {
        s.into()
    }

    fn tok(s: &str) -> TokenArg {
        s.as_bytes().into()
    }

    const T: &str = "18ea9db47e590001d433357e6ef5d88b";

    /// Every command name with one valid (key, argument).
    const VALID: &[(&str, &str, &str)] = &[
        ("ping", "_", ""),
        ("stats", "_", "_"),
        ("auth", "_", "s3cret"),
        ("l", "my-key", "10 60"),
        ("r", "my-key", T),
        ("n", "my-key", "18ea9db47e590001d433357e6ef5d88b 120"),
        ("e", "job", ""),
        ("w", "job", "5"),
        ("sl", "pool", "0 2"),
        ("sr", "pool", T),
        ("sn", "pool", T),
        ("se", "pool", "2 60"),
        ("sw", "pool", "10"),
        ("rl", "cfg", "5"),
        ("wl", "cfg", "30"),
        ("rr", "cfg", T),
        ("wr", "cfg", T),
        ("rn", "cfg", T),
        ("wn", "cfg", "18ea9db47e590003c79e845e36b00745 60"),
        ("re", "cfg", ""),
        ("we", "cfg", "60"),
        ("rw", "cfg", "5"),
        ("ww", "cfg", "0"),
        ("elect", "leader-job", "5 10"),
        ("resign", "leader-job", T),
        ("observe", "leader-job", ""),
        ("unobserve", "leader-job", ""),
        ("incr", "hits", "1"),
        ("decr", "hits", "50"),
        ("get", "hits", ""),
        ("cset", "hits", "9223372036854775807"),
        ("kset", "greeting", "hello world"),
        ("kget", "greeting", ""),
        ("kdel", "greeting", ""),
        ("kcas", "greeting", "hello world\tbonjour\t"),
        ("lpush", "jobs", "urgent"),
        ("rpush", "jobs", "build 1"),
        ("lpop", "jobs", ""),
        ("rpop", "jobs", ""),
        ("llen", "jobs", ""),
        ("lrange", "jobs", "0 -1"),
        ("blpop", "tasks", "30"),
        ("brpop", "tasks", "0"),
        ("listen", "orders.*", ""),
        ("unlisten", "orders.>", "billing"),
        ("signal", "orders.created", "{\"id\":7, \"total\": 12.5}"),
        ("watch", "session.*", ""),
        ("unwatch", "session.*", ""),
        ("bwait", "stage-2", "3 30"),
        ("opt", "queue_position", "on"),
        ("opt", "deadlock", " off "),
        ("pos", "job", ""),
        ("who", "deploy-job", ""),
    ];

    const BLOCKING: &[&str] = &[
        "l", "sl", "w", "sw", "rl", "wl", "rw", "ww", "elect", "blpop", "brpop", "bwait",
    ];

    /// Commands whose key line must be a valid key (patterns and channels included).
    fn key_checked(cmd: &str) -> bool {
        !matches!(cmd, "ping" | "auth" | "stats" | "opt")
    }

    #[test]
    fn every_command_parses_and_names_itself() {
        for &(cmd, key, arg) in VALID {
            let c = p(cmd, key, arg).unwrap_or_else(|e| panic!("{cmd} {key:?} {arg:?}: {e}"));
            assert_eq!(c.name(), cmd);
            assert_eq!(c.may_block(), BLOCKING.contains(&cmd), "{cmd}");
        }
        let d = Command::DreadLock {
            key: k("a"),
            timeout_ms: 5,
        };
        assert_eq!(d.name(), "lock");
        assert!(d.may_block());
        let u = Command::DreadUnlock { key: k("a") };
        assert_eq!(u.name(), "unlock");
        assert!(!u.may_block());
    }

    #[test]
    fn unknown_and_uppercase_commands() {
        for cmd in [
            "", "L", "PING", "Ping", "Kset", "lock", "unlock", "foo", "l ", " l", "ll", "x", "l\r",
            "kset\t", "lpushx", "p", "s", "b",
        ] {
            assert_eq!(
                p(cmd, "k", "10"),
                Err(ProtoError::UnknownCommand),
                "{cmd:?}"
            );
        }
        assert_eq!(pb(b"\xff", b"k", b""), Err(ProtoError::UnknownCommand));
        assert_eq!(pb(b"l\0", b"k", b"1"), Err(ProtoError::UnknownCommand));
    }

    #[test]
    fn opt_names_and_switches() {
        let o = |name, on| Ok(Command::Opt { name, on });
        assert_eq!(
            p("opt", "queue_position", "on"),
            o(OptName::QueuePosition, true)
        );
        assert_eq!(
            p("opt", "lease_notices", "off"),
            o(OptName::LeaseNotices, false)
        );
        assert_eq!(p("opt", "deadlock", "\ton "), o(OptName::Deadlock, true));
        for (name, arg) in [
            ("bogus", "on"),
            ("Deadlock", "on"),
            ("deadlock ", "on"),
            ("", "on"),
            ("deadlock", ""),
            ("deadlock", "ON"),
            ("deadlock", "1"),
            ("deadlock", "on off"),
        ] {
            assert_eq!(
                p("opt", name, arg),
                Err(ProtoError::BadArgument),
                "{name:?} {arg:?}"
            );
        }
        assert_eq!(pb(b"opt", b"\xff", b"on"), Err(ProtoError::BadArgument));
    }

    #[test]
    fn ping_stats_auth_ignore_key() {
        assert_eq!(p("ping", "_", ""), Ok(Command::Ping));
        assert_eq!(pb(b"ping", b"", b"\xff\xfe any thing"), Ok(Command::Ping));
        assert_eq!(pb(b"ping", b"a b\tc\r", b""), Ok(Command::Ping));
        assert_eq!(p("stats", "_", "_"), Ok(Command::Stats));
        assert_eq!(p("stats", "_", ""), Ok(Command::Stats));
        assert_eq!(pb(b"stats", b"\xff", b"\xff"), Ok(Command::Stats));
        assert_eq!(p("auth", "_", "s3cret"), Ok(Command::Auth(tok("s3cret"))));
        assert_eq!(
            p("auth", "", " \t s3cret\t "),
            Ok(Command::Auth(tok("s3cret")))
        );
        assert_eq!(p("auth", "x y", "a b"), Ok(Command::Auth(tok("a b"))));
        assert_eq!(p("auth", "_", ""), Ok(Command::Auth(tok(""))));
        assert_eq!(p("auth", "_", " \t "), Ok(Command::Auth(tok(""))));
        let long = "x".repeat(65536);
        assert_eq!(p("auth", "_", &long), Ok(Command::Auth(tok(&long))));
    }

    #[test]
    fn lock_forms() {
        let lock = |t, l| Command::Lock {
            key: k("my-key"),
            timeout: t,
            lease: l,
        };
        assert_eq!(p("l", "my-key", "10 60"), Ok(lock(10, Some(60))));
        assert_eq!(p("l", "my-key", "10"), Ok(lock(10, None)));
        assert_eq!(p("l", "my-key", "0"), Ok(lock(0, None)));
        assert_eq!(p("l", "my-key", "0 1"), Ok(lock(0, Some(1))));
        assert_eq!(p("l", "my-key", " \t10 \t\t 60\t "), Ok(lock(10, Some(60))));
        assert_eq!(p("l", "my-key", "+10 +60"), Ok(lock(10, Some(60))));
        assert_eq!(p("l", "my-key", "0010 00060"), Ok(lock(10, Some(60))));
        assert_eq!(
            p("l", "my-key", "9223372036 9223372036"),
            Ok(lock(9_223_372_036, Some(9_223_372_036)))
        );
        assert_eq!(
            p("l", "my-key", "0000000000000000000000000009223372036"),
            Ok(lock(9_223_372_036, None))
        );
    }

    #[test]
    fn lock_errors_from_spec() {
        assert_eq!(p("l", "my key", "10"), Err(ProtoError::BadKey));
        assert_eq!(p("l", "job", "-1"), Err(ProtoError::NegativeTimeout));
        assert_eq!(p("l", "job", "10 0"), Err(ProtoError::BadLease));
        assert_eq!(p("l", "job", "10 60 5"), Err(ProtoError::BadArgument));
        assert_eq!(p("l", "job", ""), Err(ProtoError::BadArgument));
        assert_eq!(p("l", "job", " \t "), Err(ProtoError::BadArgument));
    }

    #[test]
    fn timeout_and_lease_ranges() {
        for cmd in ["l", "rl", "wl", "elect"] {
            assert!(p(cmd, "k", "9223372036").is_ok());
            assert_eq!(p(cmd, "k", "9223372037"), Err(ProtoError::BadInteger));
            assert_eq!(
                p(cmd, "k", "18446744073709551616"),
                Err(ProtoError::BadInteger)
            );
            assert_eq!(
                p(cmd, "k", "99999999999999999999999999999999"),
                Err(ProtoError::BadInteger)
            );
            assert_eq!(p(cmd, "k", "-1"), Err(ProtoError::NegativeTimeout));
            assert_eq!(p(cmd, "k", "-9223372037"), Err(ProtoError::NegativeTimeout));
            assert_eq!(p(cmd, "k", "-0"), Err(ProtoError::NegativeTimeout));
            assert!(p(cmd, "k", "1 9223372036").is_ok());
            assert_eq!(p(cmd, "k", "1 9223372037"), Err(ProtoError::BadInteger));
            assert_eq!(p(cmd, "k", "1 0"), Err(ProtoError::BadLease));
            assert_eq!(p(cmd, "k", "1 000"), Err(ProtoError::BadLease));
            assert_eq!(p(cmd, "k", "1 -5"), Err(ProtoError::BadLease));
            assert_eq!(p(cmd, "k", "1 1"), p(cmd, "k", "1 +1"));
        }
        for cmd in ["w", "sw", "rw", "ww", "blpop", "brpop"] {
            assert!(p(cmd, "k", "9223372036").is_ok());
            assert!(p(cmd, "k", "0").is_ok());
            assert_eq!(p(cmd, "k", "9223372037"), Err(ProtoError::BadInteger));
            assert_eq!(p(cmd, "k", "-1"), Err(ProtoError::NegativeTimeout));
        }
        for cmd in ["e", "re", "we"] {
            assert!(p(cmd, "k", "9223372036").is_ok());
            assert_eq!(p(cmd, "k", "9223372037"), Err(ProtoError::BadInteger));
            assert_eq!(p(cmd, "k", "0"), Err(ProtoError::BadLease));
            assert_eq!(p(cmd, "k", "-1"), Err(ProtoError::BadLease));
        }
    }

    #[test]
    fn bad_integers() {
        let bad = [
            "1_0", "0x10", "1.5", "1e3", "+", "-", "+-1", "-+1", "--1", "++1", "1-", "a", "١", "½",
            "1,0",
        ];
        for b in bad {
            for cmd in [
                "l", "w", "sw", "rl", "wl", "rw", "ww", "elect", "blpop", "brpop",
            ] {
                assert_eq!(p(cmd, "k", b), Err(ProtoError::BadInteger), "{cmd} {b:?}");
            }
            for cmd in ["e", "re", "we"] {
                assert_eq!(p(cmd, "k", b), Err(ProtoError::BadInteger), "{cmd} {b:?}");
            }
            for cmd in ["incr", "decr", "cset"] {
                assert_eq!(p(cmd, "k", b), Err(ProtoError::BadInteger), "{cmd} {b:?}");
            }
            for cmd in ["n", "sn", "rn", "wn"] {
                assert_eq!(
                    p(cmd, "k", &format!("{T} {b}")),
                    Err(ProtoError::BadInteger)
                );
            }
            assert_eq!(p("l", "k", &format!("1 {b}")), Err(ProtoError::BadInteger));
            assert_eq!(p("sl", "k", &format!("{b} 1")), Err(ProtoError::BadInteger));
            assert_eq!(p("sl", "k", &format!("1 {b}")), Err(ProtoError::BadInteger));
            assert_eq!(
                p("sl", "k", &format!("1 1 {b}")),
                Err(ProtoError::BadInteger)
            );
            assert_eq!(p("se", "k", b), Err(ProtoError::BadInteger));
            assert_eq!(p("se", "k", &format!("1 {b}")), Err(ProtoError::BadInteger));
            assert_eq!(
                p("lrange", "k", &format!("{b} 1")),
                Err(ProtoError::BadInteger)
            );
            assert_eq!(
                p("lrange", "k", &format!("1 {b}")),
                Err(ProtoError::BadInteger)
            );
            assert_eq!(
                p("bwait", "k", &format!("{b} 1")),
                Err(ProtoError::BadInteger)
            );
            assert_eq!(
                p("bwait", "k", &format!("1 {b}")),
                Err(ProtoError::BadInteger)
            );
            assert_eq!(
                p("kset", "k", &format!("v\t{b}")),
                Err(ProtoError::BadInteger)
            );
            assert_eq!(
                p("kcas", "k", &format!("\tv\t{b}")),
                Err(ProtoError::BadInteger)
            );
        }
        // A blank argument has no field at all.
        assert_eq!(p("l", "k", " "), Err(ProtoError::BadArgument));
        assert_eq!(p("incr", "k", " "), Err(ProtoError::BadArgument));
        assert_eq!(p("kset", "k", "v\t "), Err(ProtoError::BadInteger));
        // Non-ASCII / non-UTF-8 digits.
        assert_eq!(pb(b"l", b"k", b"1\xff"), Err(ProtoError::BadInteger));
        assert_eq!(pb(b"incr", b"k", b"\xff"), Err(ProtoError::BadInteger));
    }

    #[test]
    fn wrong_field_counts() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            // (command, too-few args, too-many args)
            ("l", &["", " "], &["1 2 3", "1 2 3 4"]),
            ("w", &[""], &["1 2"]),
            ("e", &[], &["1 2"]),
            ("sl", &["", "1"], &["1 2 3 4"]),
            ("se", &[""], &["1 2 3"]),
            ("sw", &[""], &["1 2"]),
            ("rl", &[""], &["1 2 3"]),
            ("wl", &[""], &["1 2 3"]),
            ("re", &[], &["1 2"]),
            ("we", &[], &["1 2"]),
            ("rw", &[""], &["1 2"]),
            ("ww", &[""], &["1 2"]),
            ("elect", &[""], &["1 2 3"]),
            ("incr", &[""], &["1 2"]),
            ("decr", &[""], &["1 2"]),
            ("cset", &[""], &["1 2"]),
            ("lrange", &["", "0"], &["0 1 2"]),
            ("blpop", &[""], &["1 2"]),
            ("brpop", &[""], &["1 2"]),
            ("bwait", &["", "3"], &["3 30 1"]),
        ];
        for &(cmd, few, many) in cases {
            for a in few.iter().chain(many) {
                assert_eq!(p(cmd, "k", a), Err(ProtoError::BadArgument), "{cmd} {a:?}");
            }
        }
        for cmd in ["n", "sn", "rn", "wn"] {
            assert_eq!(
                p(cmd, "k", &format!("{T} 60 5")),
                Err(ProtoError::BadArgument)
            );
            assert_eq!(p(cmd, "k", ""), Err(ProtoError::BadToken));
        }
    }

    #[test]
    fn release_and_tokens() {
        for (cmd, mk) in [
            (
                "r",
                (|key, token| Command::Release { key, token }) as fn(Key, TokenArg) -> Command,
            ),
            ("sr", |key, token| Command::SemRelease { key, token }),
            ("resign", |key, token| Command::Resign { key, token }),
            ("rr", |key, token| Command::RwRelease {
                mode: RwMode::Read,
                key,
                token,
            }),
            ("wr", |key, token| Command::RwRelease {
                mode: RwMode::Write,
                key,
                token,
            }),
        ] {
            assert_eq!(p(cmd, "my-key", T), Ok(mk(k("my-key"), tok(T))));
            assert_eq!(
                p(cmd, "my-key", &format!(" \t{T}\t ")),
                Ok(mk(k("my-key"), tok(T)))
            );
            // Uppercase is well-formed: the state simply won't know it.
            assert_eq!(p(cmd, "k", "ABC"), Ok(mk(k("k"), tok("ABC"))));
            assert_eq!(p(cmd, "k", ""), Err(ProtoError::BadToken));
            assert_eq!(p(cmd, "k", " \t "), Err(ProtoError::BadToken));
            assert_eq!(p(cmd, "k", "abc def"), Err(ProtoError::BadToken));
            assert_eq!(p(cmd, "k", "abc\tdef"), Err(ProtoError::BadToken));
            let t256 = "a".repeat(256);
            assert_eq!(p(cmd, "k", &t256), Ok(mk(k("k"), tok(&t256))));
            assert_eq!(p(cmd, "k", &"a".repeat(257)), Err(ProtoError::BadToken));
            assert_eq!(
                pb(cmd.as_bytes(), b"k", b"ab\xffcd"),
                Err(ProtoError::BadToken)
            );
            assert_eq!(p(cmd, "", T), Err(ProtoError::BadKey));
        }
    }

    #[test]
    fn renew_forms() {
        let n = |t: &str, l| Command::Renew {
            key: k("my-key"),
            token: tok(t),
            lease: l,
        };
        assert_eq!(p("n", "my-key", &format!("{T} 120")), Ok(n(T, Some(120))));
        assert_eq!(p("n", "my-key", T), Ok(n(T, None)));
        assert_eq!(
            p("n", "my-key", &format!("\t {T} \t 120 ")),
            Ok(n(T, Some(120)))
        );
        assert_eq!(
            p("n", "my-key", &format!("{T} 0")),
            Err(ProtoError::BadLease)
        );
        assert_eq!(
            p("n", "my-key", &format!("{T} 9223372037")),
            Err(ProtoError::BadInteger)
        );
        assert_eq!(p("n", "k", &"a".repeat(257)), Err(ProtoError::BadToken));
        assert_eq!(
            p("n", "k", &format!("{} 5", "a".repeat(257))),
            Err(ProtoError::BadToken)
        );
        assert_eq!(p("n", "k", "  "), Err(ProtoError::BadToken));
        assert_eq!(
            p("sn", "pool", &format!("{T} 5")),
            Ok(Command::SemRenew {
                key: k("pool"),
                token: tok(T),
                lease: Some(5)
            })
        );
        assert_eq!(
            p("rn", "cfg", T),
            Ok(Command::RwRenew {
                mode: RwMode::Read,
                key: k("cfg"),
                token: tok(T),
                lease: None
            })
        );
        assert_eq!(
            p("wn", "cfg", &format!("{T} 60")),
            Ok(Command::RwRenew {
                mode: RwMode::Write,
                key: k("cfg"),
                token: tok(T),
                lease: Some(60)
            })
        );
    }

    #[test]
    fn enqueue_wait_forms() {
        assert_eq!(
            p("e", "job", ""),
            Ok(Command::Enqueue {
                key: k("job"),
                lease: None
            })
        );
        assert_eq!(
            p("e", "job", " \t"),
            Ok(Command::Enqueue {
                key: k("job"),
                lease: None
            })
        );
        assert_eq!(
            p("e", "job", "60"),
            Ok(Command::Enqueue {
                key: k("job"),
                lease: Some(60)
            })
        );
        assert_eq!(
            p("w", "job", "5"),
            Ok(Command::Wait {
                key: k("job"),
                timeout: 5
            })
        );
        assert_eq!(
            p("w", "job", "0"),
            Ok(Command::Wait {
                key: k("job"),
                timeout: 0
            })
        );
        assert_eq!(
            p("sw", "p", "7"),
            Ok(Command::SemWait {
                key: k("p"),
                timeout: 7
            })
        );
        assert_eq!(
            p("re", "cfg", ""),
            Ok(Command::RwEnqueue {
                mode: RwMode::Read,
                key: k("cfg"),
                lease: None
            })
        );
        assert_eq!(
            p("we", "cfg", "9"),
            Ok(Command::RwEnqueue {
                mode: RwMode::Write,
                key: k("cfg"),
                lease: Some(9)
            })
        );
        assert_eq!(
            p("rw", "cfg", "5"),
            Ok(Command::RwWait {
                mode: RwMode::Read,
                key: k("cfg"),
                timeout: 5
            })
        );
        assert_eq!(
            p("ww", "cfg", "5"),
            Ok(Command::RwWait {
                mode: RwMode::Write,
                key: k("cfg"),
                timeout: 5
            })
        );
        assert_eq!(
            p("rl", "cfg", "5"),
            Ok(Command::RwLock {
                mode: RwMode::Read,
                key: k("cfg"),
                timeout: 5,
                lease: None
            })
        );
        assert_eq!(
            p("wl", "cfg", "30 60"),
            Ok(Command::RwLock {
                mode: RwMode::Write,
                key: k("cfg"),
                timeout: 30,
                lease: Some(60)
            })
        );
        assert_eq!(
            p("elect", "leader-job", "60 10"),
            Ok(Command::Elect {
                key: k("leader-job"),
                timeout: 60,
                lease: Some(10)
            })
        );
        assert_eq!(
            p("observe", "leader-job", ""),
            Ok(Command::Observe {
                key: k("leader-job")
            })
        );
        assert_eq!(
            pb(b"unobserve", b"leader-job", b"\xff junk"),
            Ok(Command::Unobserve {
                key: k("leader-job")
            })
        );
        assert_eq!(p("observe", "a b", ""), Err(ProtoError::BadKey));
    }

    #[test]
    fn semaphore_forms() {
        let sl = |t, l, ls| Command::SemLock {
            key: k("pool"),
            timeout: t,
            limit: l,
            lease: ls,
        };
        assert_eq!(p("sl", "pool", "0 2"), Ok(sl(0, 2, None)));
        assert_eq!(p("sl", "pool", "0 2 60"), Ok(sl(0, 2, Some(60))));
        assert_eq!(p("sl", "pool", "0 1048576"), Ok(sl(0, 1_048_576, None)));
        assert_eq!(p("sl", "pool", "0 +1"), Ok(sl(0, 1, None)));
        assert_eq!(p("sl", "pool", "0 1048577"), Err(ProtoError::BadLimit));
        assert_eq!(p("sl", "pool", "0 0"), Err(ProtoError::BadLimit));
        assert_eq!(p("sl", "pool", "0 -1"), Err(ProtoError::BadLimit));
        assert_eq!(
            p("sl", "pool", "0 99999999999999999999999"),
            Err(ProtoError::BadLimit)
        );
        assert_eq!(p("sl", "pool", "-1 2"), Err(ProtoError::NegativeTimeout));
        assert_eq!(p("sl", "pool", "0 2 0"), Err(ProtoError::BadLease));
        let se = |l, ls| Command::SemEnqueue {
            key: k("pool"),
            limit: l,
            lease: ls,
        };
        assert_eq!(p("se", "pool", "2"), Ok(se(2, None)));
        assert_eq!(p("se", "pool", "2 60"), Ok(se(2, Some(60))));
        assert_eq!(p("se", "pool", "0"), Err(ProtoError::BadLimit));
        assert_eq!(p("se", "pool", "1048577 5"), Err(ProtoError::BadLimit));
        assert_eq!(p("se", "pool", "2 0"), Err(ProtoError::BadLease));
    }

    #[test]
    fn counters() {
        let incr = |d| Command::Incr {
            key: k("hits"),
            delta: d,
        };
        assert_eq!(p("incr", "hits", "1"), Ok(incr(1)));
        assert_eq!(p("incr", "hits", "41"), Ok(incr(41)));
        assert_eq!(p("incr", "hits", "-5"), Ok(incr(-5)));
        assert_eq!(p("incr", "hits", "+5"), Ok(incr(5)));
        assert_eq!(p("incr", "hits", "-0"), Ok(incr(0)));
        assert_eq!(p("incr", "hits", " 0007 "), Ok(incr(7)));
        assert_eq!(p("incr", "hits", "9223372036854775807"), Ok(incr(i64::MAX)));
        assert_eq!(
            p("incr", "hits", "-9223372036854775808"),
            Ok(incr(i64::MIN))
        );
        assert_eq!(
            p("incr", "hits", "9223372036854775808"),
            Err(ProtoError::BadInteger)
        );
        assert_eq!(
            p("incr", "hits", "-9223372036854775809"),
            Err(ProtoError::BadInteger)
        );
        assert_eq!(
            p("incr", "hits", "18446744073709551616"),
            Err(ProtoError::BadInteger)
        );
        assert_eq!(
            p("decr", "hits", "50"),
            Ok(Command::Decr {
                key: k("hits"),
                delta: 50
            })
        );
        assert_eq!(
            p("decr", "hits", "-9223372036854775808"),
            Ok(Command::Decr {
                key: k("hits"),
                delta: i64::MIN
            })
        );
        assert_eq!(
            p("decr", "hits", "9223372036854775808"),
            Err(ProtoError::BadInteger)
        );
        assert_eq!(
            p("cset", "hits", "9223372036854775807"),
            Ok(Command::CSet {
                key: k("hits"),
                value: i64::MAX
            })
        );
        assert_eq!(
            p("cset", "hits", "-9223372036854775808"),
            Ok(Command::CSet {
                key: k("hits"),
                value: i64::MIN
            })
        );
        assert_eq!(
            p("cset", "hits", "-9223372036854775809"),
            Err(ProtoError::BadInteger)
        );
        assert_eq!(p("get", "hits", ""), Ok(Command::Get { key: k("hits") }));
        assert_eq!(
            pb(b"get", b"hits", b"\xff x"),
            Ok(Command::Get { key: k("hits") })
        );
        assert_eq!(p("get", "", ""), Err(ProtoError::BadKey));
    }

    #[test]
    fn kv_set() {
        let ks = |v: &str, t| Command::KSet {
            key: k("greeting"),
            value: v.into(),
            ttl: t,
        };
        assert_eq!(
            p("kset", "greeting", "hello world"),
            Ok(ks("hello world", 0))
        );
        assert_eq!(p("kset", "greeting", "  padded  "), Ok(ks("  padded  ", 0)));
        assert_eq!(p("kset", "greeting", "alice\t60"), Ok(ks("alice", 60)));
        assert_eq!(p("kset", "greeting", "alice\t0"), Ok(ks("alice", 0)));
        assert_eq!(p("kset", "greeting", "alice\t0060"), Ok(ks("alice", 60)));
        assert_eq!(
            p("kset", "greeting", "x\t9223372036"),
            Ok(ks("x", 9_223_372_036))
        );
        assert_eq!(p("kset", "greeting", "héllo ✓"), Ok(ks("héllo ✓", 0)));
        assert_eq!(
            p("kset", "greeting", "x\t9223372037"),
            Err(ProtoError::BadInteger)
        );
        assert_eq!(p("kset", "bad", "x\t10\t5"), Err(ProtoError::BadArgument));
        assert_eq!(p("kset", "bad", "x\t\t"), Err(ProtoError::BadArgument));
        for t in ["", "+5", "-5", " 5", "5 ", "5 5", "1.5", "0x1", "5\r"] {
            assert_eq!(
                p("kset", "k", &format!("x\t{t}")),
                Err(ProtoError::BadInteger),
                "{t:?}"
            );
        }
        assert_eq!(p("kset", "k", ""), Err(ProtoError::BadValue));
        assert_eq!(p("kset", "k", "\t10"), Err(ProtoError::BadValue));
        assert_eq!(p("kset", "k", "a\rb"), Err(ProtoError::BadValue));
        assert_eq!(p("kset", "k", "a\nb"), Err(ProtoError::BadValue));
        assert_eq!(pb(b"kset", b"k", b"a\xffb"), Err(ProtoError::BadValue));
        assert_eq!(pb(b"kset", b"k", b"a\xc3"), Err(ProtoError::BadValue));
        let at_v = "v".repeat(V);
        assert_eq!(p("kset", "greeting", &at_v), Ok(ks(&at_v, 0)));
        assert_eq!(
            p("kset", "greeting", &format!("{at_v}\t5")),
            Ok(ks(&at_v, 5))
        );
        assert_eq!(
            p("kset", "k", &"v".repeat(V + 1)),
            Err(ProtoError::BadValue)
        );
        // V counts bytes, not characters.
        let multi = "é".repeat(V / 2);
        assert_eq!(p("kset", "greeting", &multi), Ok(ks(&multi, 0)));
        assert_eq!(
            p("kset", "k", &format!("{multi}x")),
            Err(ProtoError::BadValue)
        );
        assert_eq!(p("kset", "k y", "x"), Err(ProtoError::BadKey));
    }

    #[test]
    fn kv_get_del_cas() {
        assert_eq!(
            p("kget", "greeting", ""),
            Ok(Command::KGet { key: k("greeting") })
        );
        assert_eq!(
            pb(b"kdel", b"greeting", b"\xff"),
            Ok(Command::KDel { key: k("greeting") })
        );
        let kc = |o: &str, n: &str, t| Command::KCas {
            key: k("greeting"),
            old: o.into(),
            new: n.into(),
            ttl: t,
        };
        assert_eq!(
            p("kcas", "greeting", "hello world\tbonjour\t"),
            Ok(kc("hello world", "bonjour", 0))
        );
        assert_eq!(
            p("kcas", "greeting", "hello world\tciao\t"),
            Ok(kc("hello world", "ciao", 0))
        );
        assert_eq!(
            p("kcas", "greeting", "\tfirst\t30"),
            Ok(kc("", "first", 30))
        );
        assert_eq!(
            p("kcas", "greeting", " a \t b \t0"),
            Ok(kc(" a ", " b ", 0))
        );
        let at_v = "v".repeat(V);
        assert_eq!(
            p("kcas", "greeting", &format!("{at_v}\t{at_v}\t")),
            Ok(kc(&at_v, &at_v, 0))
        );
        let over = "v".repeat(V + 1);
        assert_eq!(
            p("kcas", "k", &format!("{over}\tx\t")),
            Err(ProtoError::BadValue)
        );
        assert_eq!(
            p("kcas", "k", &format!("x\t{over}\t")),
            Err(ProtoError::BadValue)
        );
        assert_eq!(p("kcas", "k", "a\tb"), Err(ProtoError::BadArgument));
        assert_eq!(p("kcas", "k", "a\tb\t1\t"), Err(ProtoError::BadArgument));
        assert_eq!(p("kcas", "k", "a\tb\t1\t2"), Err(ProtoError::BadArgument));
        assert_eq!(p("kcas", "k", "ab"), Err(ProtoError::BadArgument));
        assert_eq!(p("kcas", "k", ""), Err(ProtoError::BadArgument));
        assert_eq!(p("kcas", "k", "a\t\t"), Err(ProtoError::BadValue));
        assert_eq!(p("kcas", "k", "\t\t"), Err(ProtoError::BadValue));
        assert_eq!(p("kcas", "k", "a\rb\tc\t"), Err(ProtoError::BadValue));
        assert_eq!(pb(b"kcas", b"k", b"a\tb\xff\t"), Err(ProtoError::BadValue));
        assert_eq!(
            p("kcas", "k", "a\tb\t9223372037"),
            Err(ProtoError::BadInteger)
        );
        assert_eq!(p("kcas", "k", "a\tb\t 1"), Err(ProtoError::BadInteger));
        assert_eq!(p("kcas", "k", "a\tb\t+1"), Err(ProtoError::BadInteger));
    }

    #[test]
    fn lists() {
        assert_eq!(
            p("rpush", "jobs", "build 1"),
            Ok(Command::Push {
                end: End::Right,
                key: k("jobs"),
                value: "build 1".into()
            })
        );
        assert_eq!(
            p("lpush", "jobs", " urgent "),
            Ok(Command::Push {
                end: End::Left,
                key: k("jobs"),
                value: " urgent ".into()
            })
        );
        assert_eq!(p("lpush", "jobs", "a\tb"), Err(ProtoError::BadValue));
        assert_eq!(p("rpush", "jobs", ""), Err(ProtoError::BadValue));
        assert_eq!(
            p("rpush", "jobs", &"x".repeat(V + 1)),
            Err(ProtoError::BadValue)
        );
        assert!(p("rpush", "jobs", &"x".repeat(V)).is_ok());
        assert_eq!(pb(b"lpush", b"jobs", b"\xff"), Err(ProtoError::BadValue));
        assert_eq!(
            p("lpop", "jobs", ""),
            Ok(Command::Pop {
                end: End::Left,
                key: k("jobs")
            })
        );
        assert_eq!(
            p("rpop", "jobs", "x"),
            Ok(Command::Pop {
                end: End::Right,
                key: k("jobs")
            })
        );
        assert_eq!(p("llen", "jobs", ""), Ok(Command::LLen { key: k("jobs") }));
        let lr = |a, b| Command::LRange {
            key: k("jobs"),
            start: a,
            stop: b,
        };
        assert_eq!(p("lrange", "jobs", "0 -1"), Ok(lr(0, -1)));
        assert_eq!(p("lrange", "jobs", "\t+3\t\t-7 "), Ok(lr(3, -7)));
        assert_eq!(
            p("lrange", "jobs", "-9223372036854775808 9223372036854775807"),
            Ok(lr(i64::MIN, i64::MAX))
        );
        assert_eq!(
            p("lrange", "jobs", "-9223372036854775809 0"),
            Err(ProtoError::BadInteger)
        );
        assert_eq!(
            p("lrange", "jobs", "0 9223372036854775808"),
            Err(ProtoError::BadInteger)
        );
        assert_eq!(
            p("blpop", "tasks", "30"),
            Ok(Command::BPop {
                end: End::Left,
                key: k("tasks"),
                timeout: 30
            })
        );
        assert_eq!(
            p("brpop", "tasks", "0"),
            Ok(Command::BPop {
                end: End::Right,
                key: k("tasks"),
                timeout: 0
            })
        );
        assert_eq!(p("blpop", "tasks", "-1"), Err(ProtoError::NegativeTimeout));
    }

    #[test]
    fn pubsub() {
        let listen = |pat: &str, g: Option<&str>| Command::Listen {
            pattern: pat.into(),
            group: g.map(Into::into),
        };
        assert_eq!(p("listen", "orders.*", ""), Ok(listen("orders.*", None)));
        assert_eq!(
            p("listen", "orders.>", "billing"),
            Ok(listen("orders.>", Some("billing")))
        );
        assert_eq!(
            p("listen", "orders.>", " \tbilling\t "),
            Ok(listen("orders.>", Some("billing")))
        );
        assert_eq!(
            p("listen", "orders.>", " \t "),
            Ok(listen("orders.>", None))
        );
        assert_eq!(p("listen", ">", ""), Ok(listen(">", None)));
        assert_eq!(p("listen", "fo*", ""), Err(ProtoError::BadPattern));
        assert_eq!(p("listen", "a.>.b", ""), Err(ProtoError::BadPattern));
        assert_eq!(p("listen", "a b", ""), Err(ProtoError::BadKey));
        assert_eq!(p("listen", "", ""), Err(ProtoError::BadKey));
        assert_eq!(p("listen", "x", "bill ing"), Err(ProtoError::BadPattern));
        assert_eq!(p("listen", "x", "bill\ting"), Err(ProtoError::BadPattern));
        let g256 = "g".repeat(256);
        assert_eq!(p("listen", "x", &g256), Ok(listen("x", Some(&g256))));
        assert_eq!(
            p("listen", "x", &"g".repeat(257)),
            Err(ProtoError::BadPattern)
        );
        assert_eq!(pb(b"listen", b"x", b"g\xff"), Err(ProtoError::BadPattern));
        assert_eq!(
            p("unlisten", "orders.>", "billing"),
            Ok(Command::Unlisten {
                pattern: "orders.>".into(),
                group: Some("billing".into())
            })
        );
        assert_eq!(
            p("unlisten", "orders.*", ""),
            Ok(Command::Unlisten {
                pattern: "orders.*".into(),
                group: None
            })
        );
        assert_eq!(p("unlisten", "*x", ""), Err(ProtoError::BadPattern));
        assert_eq!(p("unlisten", "x", "a b"), Err(ProtoError::BadPattern));

        let sig = |c: &str, pl: &str| Command::Signal {
            channel: c.into(),
            payload: pl.into(),
        };
        assert_eq!(
            p("signal", "orders.created", "{\"id\":7, \"total\": 12.5}"),
            Ok(sig("orders.created", "{\"id\":7, \"total\": 12.5}"))
        );
        assert_eq!(p("signal", "a..b", "  x  "), Ok(sig("a..b", "  x  ")));
        assert_eq!(p("signal", "c", "\u{a0}"), Ok(sig("c", "\u{a0}")));
        assert_eq!(p("signal", "orders.*", "x"), Err(ProtoError::BadKey));
        assert_eq!(p("signal", "orders.>", "x"), Err(ProtoError::BadKey));
        assert_eq!(p("signal", "fo*o", "x"), Err(ProtoError::BadKey));
        assert_eq!(p("signal", "a>b", "x"), Err(ProtoError::BadKey));
        assert_eq!(p("signal", "c", "   "), Err(ProtoError::BadValue));
        assert_eq!(p("signal", "c", " "), Err(ProtoError::BadValue));
        assert_eq!(p("signal", "c", ""), Err(ProtoError::BadValue));
        assert_eq!(p("signal", "c", "a\tb"), Err(ProtoError::BadValue));
        assert_eq!(
            p("signal", "c", &"x".repeat(V + 1)),
            Err(ProtoError::BadValue)
        );
        assert!(p("signal", "c", &"x".repeat(V)).is_ok());
        assert_eq!(pb(b"signal", b"c", b"\xffx"), Err(ProtoError::BadValue));
    }

    #[test]
    fn watches() {
        assert_eq!(
            p("watch", "session.*", ""),
            Ok(Command::Watch {
                pattern: "session.*".into()
            })
        );
        assert_eq!(
            pb(b"watch", b"job", b"\xff ignored"),
            Ok(Command::Watch {
                pattern: "job".into()
            })
        );
        assert_eq!(p("watch", "session:*", ""), Err(ProtoError::BadPattern));
        assert_eq!(p("watch", ">x", ""), Err(ProtoError::BadPattern));
        assert_eq!(p("watch", "a b", ""), Err(ProtoError::BadKey));
        assert_eq!(
            p("unwatch", "session.*", ""),
            Ok(Command::Unwatch {
                pattern: "session.*".into()
            })
        );
        assert_eq!(p("unwatch", "a.>.b", ""), Err(ProtoError::BadPattern));
    }

    #[test]
    fn barriers() {
        let bw = |c, t| Command::BWait {
            key: k("stage-2"),
            count: c,
            timeout: t,
        };
        assert_eq!(p("bwait", "stage-2", "3 30"), Ok(bw(3, 30)));
        assert_eq!(p("bwait", "stage-2", "1 0"), Ok(bw(1, 0)));
        assert_eq!(
            p("bwait", "stage-2", "1048576 9223372036"),
            Ok(bw(1_048_576, 9_223_372_036))
        );
        assert_eq!(
            p("bwait", "stage-2", "1048577 1"),
            Err(ProtoError::BadLimit)
        );
        assert_eq!(p("bwait", "stage-2", "0 30"), Err(ProtoError::BadLimit));
        assert_eq!(p("bwait", "stage-2", "-3 30"), Err(ProtoError::BadLimit));
        assert_eq!(
            p("bwait", "stage-2", "3 -1"),
            Err(ProtoError::NegativeTimeout)
        );
        assert_eq!(
            p("bwait", "stage-2", "3 9223372037"),
            Err(ProtoError::BadInteger)
        );
    }

    #[test]
    fn keys() {
        let k256 = "k".repeat(256);
        let k257 = "k".repeat(257);
        for &(cmd, _, arg) in VALID {
            if !key_checked(cmd) {
                continue;
            }
            assert!(p(cmd, &k256, arg).is_ok(), "{cmd}");
            for bad in [
                "", " ", "\t", "a b", "a\tb", "a\rb", "a\r", "a\nb", " a", "a ", &k257,
            ] {
                assert_eq!(p(cmd, bad, arg), Err(ProtoError::BadKey), "{cmd} {bad:?}");
            }
            assert_eq!(
                pb(cmd.as_bytes(), b"a\xffb", arg.as_bytes()),
                Err(ProtoError::BadKey)
            );
            assert_eq!(
                pb(cmd.as_bytes(), b"\xc3", arg.as_bytes()),
                Err(ProtoError::BadKey)
            );
            // 256 bytes of multi-byte characters.
            assert!(p(cmd, &"é".repeat(128), arg).is_ok(), "{cmd}");
            assert_eq!(
                p(cmd, &format!("{}x", "é".repeat(128)), arg),
                Err(ProtoError::BadKey)
            );
        }
        // Any other character is allowed in a plain key.
        for key in ["/a:b.c", "x*", "a>b", "ключ", "a\u{0}b", "_"] {
            assert!(p("l", key, "0").is_ok(), "{key:?}");
        }
    }

    #[test]
    fn patterns() {
        for good in [
            "orders.created",
            "orders.*",
            "orders.>",
            "*.eu",
            "*",
            ">",
            "*.>",
            "a..b",
            "a.*.b",
            "*.*",
            ".",
            "a.",
            ".a",
            "..",
            "a.>",
            "é.*",
            "job",
        ] {
            assert!(is_valid_pattern(good), "{good:?}");
            assert!(p("watch", good, "").is_ok(), "{good:?}");
            assert!(p("listen", good, "").is_ok(), "{good:?}");
        }
        for bad in [
            "fo*",
            ">x",
            "a.>.b",
            "**",
            ">>",
            "a.b*",
            "*a.b",
            "a.>.",
            ">.",
            ">.*",
            "x>",
            "session:*",
        ] {
            assert!(!is_valid_pattern(bad), "{bad:?}");
            assert_eq!(p("watch", bad, ""), Err(ProtoError::BadPattern), "{bad:?}");
            assert_eq!(p("listen", bad, ""), Err(ProtoError::BadPattern), "{bad:?}");
        }
        for bad_key in ["", "a b", "a\tb", "a\r", "a\n"] {
            assert!(!is_valid_pattern(bad_key));
        }
        assert!(is_valid_pattern(&"a".repeat(256)));
        assert!(!is_valid_pattern(&"a".repeat(257)));
        assert!(is_valid_channel("orders.created"));
        assert!(!is_valid_channel("orders.*"));
        assert!(!is_valid_channel(""));
        assert!(is_valid_key(b"job"));
        assert!(!is_valid_key(b"\xff"));
    }

    #[test]
    fn error_codes() {
        let all = [
            (ProtoError::UnknownCommand, 3),
            (ProtoError::BadInteger, 4),
            (ProtoError::BadKey, 5),
            (ProtoError::NegativeTimeout, 6),
            (ProtoError::BadToken, 7),
            (ProtoError::BadArgument, 8),
            (ProtoError::BadLease, 9),
            (ProtoError::BadLimit, 13),
            (ProtoError::BadValue, 14),
            (ProtoError::BadPattern, 15),
        ];
        for (e, c) in all {
            assert_eq!(e.code(), c);
            assert!(e.to_string().contains(&format!("code {c}")));
        }
    }

    /// Checks the invariants every successfully parsed command must satisfy.
    fn check_ok(c: &Command, limits: &CommandLimits) {
        fn key_ok(s: &str) -> bool {
            is_valid_key(s.as_bytes())
        }
        fn token_ok(t: &[u8]) -> bool {
            !t.is_empty() && t.len() <= 256 && !t.iter().any(|&b| b == b' ' || b == b'\t')
        }
        let v = limits.max_value_bytes;
        let value_ok = |s: &str, empty: bool| {
            (empty || !s.is_empty())
                && s.len() <= v
                && !s.bytes().any(|b| matches!(b, b'\t' | b'\r' | b'\n'))
        };
        let secs_ok = |s: Secs| s <= MAX_SECS;
        let lease_ok = |l: Option<Secs>| l.is_none_or(|l| (1..=MAX_SECS).contains(&l));
        let limit_ok = |l: u32| (1..=MAX_LIMIT).contains(&l);
        use Command as C;
        let ok = match c {
            C::Ping | C::Stats | C::Opt { .. } => true,
            C::Auth(a) => a.first().is_none_or(|&b| b != b' ' && b != b'\t'),
            C::Lock {
                key,
                timeout,
                lease,
            }
            | C::RwLock {
                key,
                timeout,
                lease,
                ..
            }
            | C::Elect {
                key,
                timeout,
                lease,
            } => key_ok(key) && secs_ok(*timeout) && lease_ok(*lease),
            C::Release { key, token }
            | C::SemRelease { key, token }
            | C::RwRelease { key, token, .. }
            | C::Resign { key, token } => key_ok(key) && token_ok(token),
            C::Renew { key, token, lease }
            | C::SemRenew { key, token, lease }
            | C::RwRenew {
                key, token, lease, ..
            } => key_ok(key) && token_ok(token) && lease_ok(*lease),
            C::Enqueue { key, lease } | C::RwEnqueue { key, lease, .. } => {
                key_ok(key) && lease_ok(*lease)
            }
            C::Wait { key, timeout }
            | C::SemWait { key, timeout }
            | C::RwWait { key, timeout, .. }
            | C::BPop { key, timeout, .. } => key_ok(key) && secs_ok(*timeout),
            C::SemLock {
                key,
                timeout,
                limit,
                lease,
            } => key_ok(key) && secs_ok(*timeout) && limit_ok(*limit) && lease_ok(*lease),
            C::SemEnqueue { key, limit, lease } => {
                key_ok(key) && limit_ok(*limit) && lease_ok(*lease)
            }
            C::Observe { key }
            | C::Unobserve { key }
            | C::Get { key }
            | C::KGet { key }
            | C::KDel { key }
            | C::Pop { key, .. }
            | C::LLen { key }
            | C::Incr { key, .. }
            | C::Decr { key, .. }
            | C::CSet { key, .. }
            | C::LRange { key, .. }
            | C::DreadUnlock { key }
            | C::Pos { key }
            | C::Who { key }
            | C::DreadLock { key, .. } => key_ok(key),
            C::KSet { key, value, ttl } => key_ok(key) && value_ok(value, false) && secs_ok(*ttl),
            C::KCas { key, old, new, ttl } => {
                key_ok(key) && value_ok(old, true) && value_ok(new, false) && secs_ok(*ttl)
            }
            C::Push { key, value, .. } => key_ok(key) && value_ok(value, false),
            C::Listen { pattern, group } | C::Unlisten { pattern, group } => {
                is_valid_pattern(pattern) && group.as_deref().is_none_or(|g| token_ok(g.as_bytes()))
            }
            C::Signal { channel, payload } => {
                is_valid_channel(channel)
                    && value_ok(payload, false)
                    && payload.bytes().any(|b| b != b' ')
            }
            C::Watch { pattern } | C::Unwatch { pattern } => is_valid_pattern(pattern),
            C::BWait {
                key,
                count,
                timeout,
            } => key_ok(key) && limit_ok(*count) && secs_ok(*timeout),
        };
        assert!(ok, "invariant broken: {c:?}");
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        const ALPHABET: &[u8] = b"0123456789 \t+-.*>\r\n_xa\xff\xc3\xa9\x80";
        let gen_bytes = |next: &mut dyn FnMut() -> u64, max: u64| -> Vec<u8> {
            let len = (next() % (max + 1)) as usize;
            let biased = next() % 2 == 0;
            (0..len)
                .map(|_| {
                    let r = next();
                    if biased {
                        ALPHABET[(r % ALPHABET.len() as u64) as usize]
                    } else {
                        r as u8
                    }
                })
                .collect()
        };
        let limits = [
            CommandLimits { max_value_bytes: 0 },
            CommandLimits { max_value_bytes: 1 },
            CommandLimits { max_value_bytes: 8 },
            LIM,
        ];
        let mut oks = 0u32;
        for i in 0..100_000u32 {
            let cmd: Vec<u8> = if next() % 8 == 0 {
                gen_bytes(&mut next, 8)
            } else {
                VALID[(next() % VALID.len() as u64) as usize]
                    .0
                    .as_bytes()
                    .to_vec()
            };
            let key = if next() % 3 == 0 {
                VALID[(next() % VALID.len() as u64) as usize]
                    .1
                    .as_bytes()
                    .to_vec()
            } else {
                gen_bytes(&mut next, 300)
            };
            let arg = gen_bytes(&mut next, if i % 10 == 0 { 300 } else { 24 });
            let lim = &limits[(next() % limits.len() as u64) as usize];
            match Command::from_raw(&cmd, &key, &arg, lim) {
                Ok(c) => {
                    oks += 1;
                    check_ok(&c, lim);
                    assert_eq!(c.name().as_bytes(), cmd.as_slice());
                }
                Err(e) => assert!(matches!(e.code(), 3..=9 | 13..=15)),
            }
        }
        assert!(oks > 1000, "too few successful parses: {oks}");
    }
}
