//! Refusals in words, for the log (protocol.md §11): what an operator reads
//! when a client got `error`, `e …` or a closed connection.
//!
//! Pure and cold: nothing here runs unless a request was refused *and* the
//! line that explains it is going to be logged, so it may allocate freely.
//! The wire is never affected; the log is.
//!
//! * [`Escaped`] shows client bytes safely: quoted, cut at 64 bytes, with
//!   every control character, quote, backslash and invalid UTF-8 byte escaped,
//!   so no client can write a raw control character (or a fake log line) into
//!   the log.
//! * [`parse_error`] names the offending field of a request `Command::from_raw`
//!   refused, with the §11 code's meaning, e.g. `invalid integer "1.5" in
//!   argument (<timeout>; l takes <timeout> [<lease>])`. It re-reads the three
//!   lines rather than making the parser carry the detail, so the parser's hot
//!   path stays as it is.
//! * [`dreadlock_error`] says why a Dreadlock line is malformed (code 17).
//! * [`refusal`] classifies a reply as a refusal, and [`Refusal::meaning`]
//!   says what it means (protocol.md §5 and §9).
//! * [`CloseReason`] is why a connection ended, with its §11 code if it has one.

use super::command::{MAX_KEY_BYTES, MAX_LIMIT, MAX_SECS, ProtoError, is_valid_pattern};
use super::dreadlock::{MAX_KEY_LEN as DREAD_MAX_KEY, MAX_TIMEOUT_DIGITS, MAX_TIMEOUT_MS};
use super::reply::{DreadReply, Reply, Status};
use crate::state::options::OptName;
use std::fmt::{self, Write};

/// How much of a client-supplied field the log shows (bytes).
pub const SHOWN_BYTES: usize = 64;

/// Client bytes as a quoted, escaped string, cut at [`SHOWN_BYTES`] (on a
/// character boundary); a cut field ends with `…(N bytes)`.
///
/// Printable ASCII and printable non-ASCII characters stand for themselves;
/// `"` and `\` are backslash-escaped; TAB, CR and LF are `\t \r \n`; other
/// ASCII controls and bytes that are not UTF-8 are `\xNN`; non-printable
/// Unicode (format and bidi controls, combining marks on their own) is
/// `\u{…}`. The result never contains a control character.
#[derive(Clone, Copy)]
pub struct Escaped<'a>(pub &'a [u8]);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.0;
        let mut end = bytes.len().min(SHOWN_BYTES);
        if end < bytes.len() {
            // Do not split a UTF-8 sequence: back off over continuation bytes.
            while end > SHOWN_BYTES - 3 && bytes.get(end).is_some_and(|b| b & 0xC0 == 0x80) {
                end -= 1;
            }
        }
        f.write_char('"')?;
        for chunk in bytes[..end].utf8_chunks() {
            for c in chunk.valid().chars() {
                match c {
                    '"' => f.write_str("\\\"")?,
                    '\\' => f.write_str("\\\\")?,
                    '\t' => f.write_str("\\t")?,
                    '\r' => f.write_str("\\r")?,
                    '\n' => f.write_str("\\n")?,
                    c if c.is_ascii_control() => write!(f, "\\x{:02x}", c as u32)?,
                    c if c.is_ascii() => f.write_char(c)?,
                    c => write!(f, "{}", c.escape_debug())?,
                }
            }
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        f.write_char('"')?;
        if end < bytes.len() {
            write!(f, "…({} bytes)", bytes.len())?;
        }
        Ok(())
    }
}

/// The meaning of a §11 log code, in the spec's words.
pub fn code_meaning(code: u8) -> &'static str {
    match code {
        3 => "unknown command",
        4 => "invalid integer or out of range",
        5 => "invalid key",
        6 => "negative timeout",
        7 => "empty or malformed token",
        8 => "malformed argument or wrong field count",
        9 => "invalid lease",
        10 => "idle or request timeout",
        11 => "client disconnected",
        12 => "line too long",
        13 => "invalid semaphore limit or barrier count",
        14 => "invalid value",
        15 => "invalid pattern or group",
        16 => "HTTP request on the TCP port",
        17 => "malformed Dreadlock line",
        _ => "unknown code",
    }
}

/// Every command name of the three-line protocol (for hints on near misses).
const COMMANDS: &str = "ping stats auth l r n e w sl sr sn se sw rl wl rr wr rn wn re we rw ww \
     elect resign observe unobserve incr decr get cset kset kget kdel kcas lpush rpush lpop rpop \
     llen lrange blpop brpop listen unlisten signal watch unwatch bwait opt pos who";

/// A command's argument form: its usage and the names of its blank-separated
/// numeric or token fields, in order (empty for value and key-only commands).
fn form(cmd: &[u8]) -> Option<(&'static str, &'static [&'static str])> {
    Some(match cmd {
        b"l" | b"rl" | b"wl" | b"elect" => ("<timeout> [<lease>]", &["<timeout>", "<lease>"]),
        b"r" | b"sr" | b"rr" | b"wr" | b"resign" => ("<token>", &["<token>"]),
        b"n" | b"sn" | b"rn" | b"wn" => ("<token> [<lease>]", &["<token>", "<lease>"]),
        b"e" | b"re" | b"we" => ("[<lease>]", &["<lease>"]),
        b"w" | b"sw" | b"rw" | b"ww" | b"blpop" | b"brpop" => ("<timeout>", &["<timeout>"]),
        b"sl" => (
            "<timeout> <limit> [<lease>]",
            &["<timeout>", "<limit>", "<lease>"],
        ),
        b"se" => ("<limit> [<lease>]", &["<limit>", "<lease>"]),
        b"incr" | b"decr" => ("<delta>", &["<delta>"]),
        b"cset" => ("<value>", &["<value>"]),
        b"lrange" => ("<start> <stop>", &["<start>", "<stop>"]),
        b"bwait" => ("<count> <timeout>", &["<count>", "<timeout>"]),
        b"kset" => ("<value>[TAB<ttl>]", &[]),
        b"kcas" => ("<old>TAB<new>TAB[<ttl>]", &[]),
        b"lpush" | b"rpush" => ("<value>", &[]),
        b"signal" => ("<payload>", &[]),
        b"listen" | b"unlisten" => ("[<group>]", &[]),
        b"opt" => ("on or off, after an option name on the key line", &[]),
        _ => return None,
    })
}

/// `; l takes <timeout> [<lease>]`, or nothing for commands without a form.
fn takes(cmd: &[u8]) -> String {
    match form(cmd) {
        Some((usage, _)) => format!("; {} takes {usage}", String::from_utf8_lossy(cmd)),
        None => String::new(),
    }
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn blank_fields(arg: &[u8]) -> Vec<&[u8]> {
    arg.split(|&b| is_blank(b))
        .filter(|f| !f.is_empty())
        .collect()
}

/// `[+-]digits`: the integer syntax of §3.2, ignoring the range.
fn is_integer(f: &[u8]) -> bool {
    let d = f
        .strip_prefix(b"+")
        .or_else(|| f.strip_prefix(b"-"))
        .unwrap_or(f);
    !d.is_empty() && d.iter().all(u8::is_ascii_digit)
}

/// The magnitude of an integer field, saturating (for range checks).
fn magnitude(f: &[u8]) -> u64 {
    f.iter().filter(|b| b.is_ascii_digit()).fold(0u64, |v, &b| {
        v.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    })
}

/// The name of field `i` of `cmd`'s argument, e.g. `<timeout>`.
fn field_name(cmd: &[u8], i: usize) -> &'static str {
    form(cmd)
        .and_then(|(_, names)| names.get(i).copied())
        .unwrap_or("a field")
}

/// Why a key (or channel, or pattern) line breaks §3.1.
fn key_problem(k: &[u8]) -> &'static str {
    if k.is_empty() {
        "empty"
    } else if k.len() > MAX_KEY_BYTES {
        "longer than 256 bytes"
    } else if k.contains(&b' ') {
        "contains a space"
    } else if k.contains(&b'\t') {
        "contains a TAB"
    } else if k.contains(&b'\r') {
        "contains a CR"
    } else if std::str::from_utf8(k).is_err() {
        "not valid UTF-8"
    } else if k.iter().any(|&b| b == b'*' || b == b'>') {
        "a signal channel cannot contain * or >"
    } else {
        "breaks the key rules"
    }
}

/// Why a value breaks §3.4, or `None` if it is fine.
fn value_problem(v: &[u8], max: usize, allow_empty: bool) -> Option<String> {
    Some(if v.is_empty() && !allow_empty {
        "empty".into()
    } else if v.len() > max {
        format!("{} bytes, over --max-value-bytes {max}", v.len())
    } else if v.contains(&b'\t') {
        "contains a TAB".into()
    } else if v.contains(&b'\r') {
        "contains a CR".into()
    } else if std::str::from_utf8(v).is_err() {
        "not valid UTF-8".into()
    } else {
        return None;
    })
}

/// A hint for an unknown command that is a near miss of a real one.
fn command_hint(cmd: &[u8]) -> &'static str {
    let trimmed: &[u8] = {
        let mut c = cmd;
        while let [rest @ .., last] = c {
            if !(is_blank(*last) || *last == b'\r') {
                break;
            }
            c = rest;
        }
        c
    };
    let known = |c: &[u8]| COMMANDS.split_whitespace().any(|k| k.as_bytes() == c);
    if cmd.is_empty() {
        " (an empty command line: a stray newline shifts the three-line framing; \
         send empty lines until a reply comes back, then the next request is in step)"
    } else if cmd.first() == Some(&0xff) {
        " (telnet control bytes, e.g. from Ctrl-C; send empty lines until a reply \
         comes back, then the next request is in step)"
    } else if trimmed.len() < cmd.len() && known(trimmed) {
        " (trailing blank after the command name)"
    } else if cmd != cmd.to_ascii_lowercase().as_slice() && known(&cmd.to_ascii_lowercase()) {
        " (command names are lowercase)"
    } else if cmd.eq_ignore_ascii_case(b"lock") || cmd.eq_ignore_ascii_case(b"unlock") {
        " (a Dreadlock request is one line: lock <key> <ms> or unlock <key>)"
    } else if cmd.contains(&b' ') {
        " (a request is three lines: command, key, argument)"
    } else {
        ""
    }
}

/// Why `Command::from_raw(cmd, key, arg)` refused the request with `err`:
/// the offending field, quoted, and the rule it breaks. `max_value` is V
/// (`--max-value-bytes`). Starts with the meaning of the §11 code.
pub fn parse_error(
    err: ProtoError,
    cmd: &[u8],
    key: &[u8],
    arg: &[u8],
    max_value: usize,
) -> String {
    let name = Escaped(cmd);
    match err {
        ProtoError::UnknownCommand => format!("unknown command {name}{}", command_hint(cmd)),
        ProtoError::BadKey => format!("invalid key {} ({})", Escaped(key), key_problem(key)),
        ProtoError::BadInteger => bad_integer(cmd, arg),
        ProtoError::NegativeTimeout => {
            let fields = blank_fields(arg);
            let (i, f) = fields
                .iter()
                .enumerate()
                .find(|(_, f)| f.first() == Some(&b'-'))
                .map_or((0, arg), |(i, f)| (i, *f));
            format!(
                "negative timeout {} in argument ({}: 0 means try once{})",
                Escaped(f),
                field_name(cmd, i),
                takes(cmd)
            )
        }
        ProtoError::BadLease => {
            let fields = blank_fields(arg);
            let f = fields.last().copied().unwrap_or(arg);
            format!(
                "invalid lease {} in argument (<lease> is 1..={MAX_SECS} seconds{})",
                Escaped(f),
                takes(cmd)
            )
        }
        ProtoError::BadLimit => {
            let fields = blank_fields(arg);
            let i = usize::from(cmd == b"sl");
            let f = fields.get(i).copied().unwrap_or(arg);
            let what = if cmd == b"bwait" {
                "barrier count"
            } else {
                "semaphore limit"
            };
            format!(
                "invalid {what} {} in argument (1..={MAX_LIMIT}{})",
                Escaped(f),
                takes(cmd)
            )
        }
        ProtoError::BadToken => {
            let t = {
                let fields = blank_fields(arg);
                if form(cmd).is_some_and(|(_, names)| names.len() > 1) {
                    fields.first().copied().unwrap_or(b"")
                } else {
                    // A lone token: the whole trimmed argument is the token.
                    let s = arg.iter().position(|&b| !is_blank(b)).unwrap_or(arg.len());
                    let e = arg.iter().rposition(|&b| !is_blank(b)).map_or(s, |e| e + 1);
                    &arg[s..e]
                }
            };
            let why = if t.is_empty() {
                "empty"
            } else if t.iter().any(|&b| is_blank(b)) {
                "contains a space or TAB"
            } else if t.len() > MAX_KEY_BYTES {
                "longer than 256 bytes"
            } else {
                "not valid UTF-8"
            };
            format!(
                "malformed token {} in argument ({why}{})",
                Escaped(t),
                takes(cmd)
            )
        }
        ProtoError::BadArgument if cmd == b"opt" => bad_option(key, arg),
        ProtoError::BadArgument => match cmd {
            b"kset" => format!(
                "malformed argument {}: more than one TAB{}",
                Escaped(arg),
                takes(cmd)
            ),
            b"kcas" => format!(
                "malformed argument {}: needs exactly two TABs{}",
                Escaped(arg),
                takes(cmd)
            ),
            _ => format!(
                "wrong number of fields in argument {}: {} given{}",
                Escaped(arg),
                blank_fields(arg).len(),
                takes(cmd)
            ),
        },
        ProtoError::BadValue => {
            let (what, v, why) = bad_value(cmd, arg, max_value);
            format!("invalid {what} {} ({why}{})", Escaped(v), takes(cmd))
        }
        ProtoError::BadPattern => {
            let pattern_ok = std::str::from_utf8(key).is_ok_and(is_valid_pattern);
            if pattern_ok {
                format!(
                    "invalid group {} in argument (one word of 1..=256 bytes, no blanks)",
                    Escaped(arg)
                )
            } else {
                format!(
                    "invalid pattern {} (* and > must be whole dot-separated tokens, > only last)",
                    Escaped(key)
                )
            }
        }
    }
}

/// Why `opt` was refused: an unknown option name or a value other than on/off.
fn bad_option(name: &[u8], arg: &[u8]) -> String {
    let names = OptName::ALL.map(OptName::name).join(", ");
    if OptName::parse(name).is_none() {
        format!("unknown option {} (the options are {names})", Escaped(name))
    } else {
        format!(
            "invalid value {} for option {} (on or off)",
            Escaped(arg),
            Escaped(name)
        )
    }
}

fn bad_integer(cmd: &[u8], arg: &[u8]) -> String {
    if cmd == b"kset" || cmd == b"kcas" {
        let ttl = arg.rsplit(|&b| b == b'\t').next().unwrap_or(arg);
        return format!(
            "invalid TTL {} after the TAB (digits only, 0..={MAX_SECS}{})",
            Escaped(ttl),
            takes(cmd)
        );
    }
    let fields = blank_fields(arg);
    if let Some((i, f)) = fields.iter().enumerate().find(|(_, f)| !is_integer(f)) {
        return format!(
            "invalid integer {} in argument ({}{})",
            Escaped(f),
            field_name(cmd, i),
            takes(cmd)
        );
    }
    let signed = matches!(cmd, b"incr" | b"decr" | b"cset" | b"lrange");
    let (max, range) = if signed {
        (i64::MAX as u64, "a signed 64-bit integer".to_string())
    } else {
        (MAX_SECS, format!("0..={MAX_SECS} seconds"))
    };
    match fields.iter().enumerate().find(|(_, f)| magnitude(f) > max) {
        Some((i, f)) => format!(
            "integer {} out of range in argument ({} is {range}{})",
            Escaped(f),
            field_name(cmd, i),
            takes(cmd)
        ),
        None => format!("invalid integer in argument {}{}", Escaped(arg), takes(cmd)),
    }
}

/// (which value, its bytes, what is wrong) for a `BadValue` refusal.
fn bad_value<'a>(cmd: &[u8], arg: &'a [u8], max: usize) -> (&'static str, &'a [u8], String) {
    let mut tabs = arg.split(|&b| b == b'\t');
    let mut candidates: Vec<(&'static str, &'a [u8], bool)> = Vec::new();
    match cmd {
        b"kset" => candidates.push(("value", tabs.next().unwrap_or(arg), false)),
        b"kcas" => {
            candidates.push(("old value", tabs.next().unwrap_or(b""), true));
            candidates.push(("new value", tabs.next().unwrap_or(b""), false));
        }
        b"signal" => candidates.push(("payload", arg, false)),
        _ => candidates.push(("value", arg, false)),
    }
    for (what, v, allow_empty) in &candidates {
        if let Some(why) = value_problem(v, max, *allow_empty) {
            return (what, v, why);
        }
    }
    if cmd == b"signal" {
        return ("payload", arg, "only spaces".into());
    }
    ("value", arg, "breaks the value rules".into())
}

/// Why a Dreadlock line (§9 grammar) is malformed, e.g. `key "my-key" may
/// hold only A-Z a-z 0-9`. The line itself is not repeated.
pub fn dreadlock_error(line: &[u8]) -> String {
    const FORM: &str = "lock <key> <ms> or unlock <key>";
    if line.first() == Some(&b' ') {
        return format!("leading space ({FORM})");
    }
    let mut fields = line.split(|&b| b == b' ').filter(|f| !f.is_empty());
    let verb = fields.next().unwrap_or_default();
    let is_lock = verb.eq_ignore_ascii_case(b"lock");
    if !is_lock && !verb.eq_ignore_ascii_case(b"unlock") {
        return format!("unknown verb {} ({FORM})", Escaped(verb));
    }
    let Some(key) = fields.next() else {
        return format!("missing key ({FORM})");
    };
    if key.len() > DREAD_MAX_KEY {
        return format!("key longer than {DREAD_MAX_KEY} bytes");
    }
    if let Some(&bad) = key.iter().find(|b| !b.is_ascii_alphanumeric()) {
        return format!(
            "key {} may hold only A-Z a-z 0-9 (not {})",
            Escaped(key),
            Escaped(&[bad])
        );
    }
    if is_lock {
        let Some(ms) = fields.next() else {
            return format!("missing timeout in milliseconds ({FORM})");
        };
        if !ms.iter().all(u8::is_ascii_digit) {
            return format!(
                "timeout {} is not whole milliseconds (digits only)",
                Escaped(ms)
            );
        }
        if ms.len() > MAX_TIMEOUT_DIGITS || magnitude(ms) > MAX_TIMEOUT_MS {
            return format!(
                "timeout {} out of range (0..={MAX_TIMEOUT_MS} ms)",
                Escaped(ms)
            );
        }
    }
    match fields.next() {
        Some(extra) => format!("extra field {} ({FORM})", Escaped(extra)),
        None => "does not fit the grammar".into(),
    }
}

/// A reply that refuses the request: an `error*` status word or a Dreadlock
/// `e …` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Status(Status),
    Dread(DreadReply),
}

/// Which configured limit a refusal hit (logged at `info`, rate-limited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    MaxLocks,
    MaxKeys,
    MaxWaiters,
    MaxSubscriptions,
    MaxListLength,
}

impl Limit {
    pub fn flag(self) -> &'static str {
        match self {
            Limit::MaxLocks => "--max-locks",
            Limit::MaxKeys => "--max-keys",
            Limit::MaxWaiters => "--max-waiters",
            Limit::MaxSubscriptions => "--max-subscriptions",
            Limit::MaxListLength => "--max-list-length",
        }
    }

    /// What reaching the limit means, e.g. "the key's queue is full".
    pub fn what(self) -> &'static str {
        match self {
            Limit::MaxLocks => "no new lock or semaphore key can be created",
            Limit::MaxKeys => "no new counter, KV entry, list or barrier can be created",
            Limit::MaxWaiters => "the key's queue is full",
            Limit::MaxSubscriptions => "the connection has no registration left",
            Limit::MaxListLength => "the list is full",
        }
    }
}

/// The refusal `reply` is, if it is one. Cheap: a comparison of the reply's
/// discriminant and status, run for every reply.
#[inline]
pub fn refusal(reply: &Reply) -> Option<Refusal> {
    match reply {
        Reply::Status(s) if is_error_status(*s) => Some(Refusal::Status(*s)),
        Reply::Dread(d) if d.line().first() == Some(&b'e') => Some(Refusal::Dread(*d)),
        _ => None,
    }
}

#[inline]
fn is_error_status(s: Status) -> bool {
    !matches!(
        s,
        Status::Ok | Status::Queued | Status::Timeout | Status::Nil | Status::CasConflict
    )
}

impl Refusal {
    /// The reply as the client saw it, without its line end.
    pub fn wire(self) -> &'static str {
        match self {
            Refusal::Status(s) => s.word(),
            Refusal::Dread(d) => {
                let line = d.line();
                std::str::from_utf8(line)
                    .unwrap_or("e")
                    .trim_end_matches(['\r', '\n'])
            }
        }
    }

    /// The configured limit behind this refusal, if any.
    pub fn limit(self) -> Option<Limit> {
        match self {
            Refusal::Status(Status::ErrorMaxLocks) | Refusal::Dread(DreadReply::MaxLocks) => {
                Some(Limit::MaxLocks)
            }
            Refusal::Status(Status::ErrorMaxWaiters) | Refusal::Dread(DreadReply::MaxWaiters) => {
                Some(Limit::MaxWaiters)
            }
            Refusal::Status(Status::ErrorMaxKeys) => Some(Limit::MaxKeys),
            Refusal::Status(Status::ErrorMaxSubscriptions) => Some(Limit::MaxSubscriptions),
            Refusal::Status(Status::ErrorListFull) => Some(Limit::MaxListLength),
            _ => None,
        }
    }

    /// What the refusal means (protocol.md §5, §9). `cmd` is the command's
    /// wire name when known: a bare `error` from the state means different
    /// things for different commands.
    pub fn meaning(self, cmd: Option<&str>) -> &'static str {
        match self {
            Refusal::Status(Status::Error) => match cmd {
                Some("r" | "sr" | "rr" | "wr" | "resign") => {
                    "the token is not held on this key (wrong token or key, already released, or its lease expired)"
                }
                Some("n" | "sn" | "rn" | "wn") => {
                    "the token is not a current grant on this key (wrong token or key, or already released)"
                }
                Some("incr" | "decr") => {
                    "counter overflow: the result would leave the signed 64-bit range"
                }
                Some("auth") => "auth on a connection that is already authenticated",
                Some("bwait") => "this connection is already waiting at that barrier",
                Some(_) => "the fence ceiling could not be persisted (--fence-state-file)",
                None => "refused by the state (protocol.md §5)",
            },
            Refusal::Status(s) => status_meaning(s),
            Refusal::Dread(d) => match d {
                DreadReply::AlreadyLocked => "this connection already holds the key",
                DreadReply::NotLocked => "nobody holds the key",
                DreadReply::NotOwner => {
                    "the key is held by another connection, or by this one through a token command"
                }
                DreadReply::TypeMismatch => "the key is in use as a read-write lock",
                DreadReply::MaxLocks => "--max-locks keys exist",
                DreadReply::MaxWaiters => "the key's queue already holds --max-waiters waiters",
                DreadReply::ServerError => {
                    "the fence ceiling could not be persisted (--fence-state-file)"
                }
                DreadReply::Draining => "the server is shutting down",
                DreadReply::AuthenticationRequired => "authentication required",
                DreadReply::IdleTimeout => "idle or request timeout",
                _ => "refused",
            },
        }
    }
}

fn status_meaning(s: Status) -> &'static str {
    match s {
        Status::ErrorAuth => "authentication failed",
        Status::ErrorMaxLocks => "--max-locks lock and semaphore keys exist",
        Status::ErrorMaxKeys => "--max-keys counters, KV entries, lists and barriers exist",
        Status::ErrorMaxWaiters => "the key's queue already holds --max-waiters waiters",
        Status::ErrorMaxSubscriptions => "the connection holds --max-subscriptions registrations",
        Status::ErrorLimitMismatch => "the semaphore is in use with a different limit",
        Status::ErrorTypeMismatch => {
            "the key is in use as the other lock type (exclusive versus read-write)"
        }
        Status::ErrorNotEnqueued => "this connection has no matching enqueue for the key",
        Status::ErrorAlreadyEnqueued => "this connection already has enqueue state for the key",
        Status::ErrorLeaseExpired => "the grant's lease has already expired",
        Status::ErrorListFull => "the list holds --max-list-length items",
        Status::ErrorBarrierCountMismatch => "the barrier exists with another count",
        Status::ErrorDraining => "the server is shutting down",
        Status::ErrorDeadlock => {
            "waiting would close a cycle in the wait-for graph (opt deadlock on)"
        }
        _ => "refused",
    }
}

/// Why a connection ended. Kept in the connection (one or two bytes) and
/// logged once, when it is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CloseReason {
    /// The peer closed or half-closed the connection (code 11).
    #[default]
    PeerClosed,
    /// Reading failed (a reset, usually).
    ReadError(std::io::ErrorKind),
    /// Writing failed.
    WriteError(std::io::ErrorKind),
    /// The first line was an HTTP request line (code 16).
    HttpOnLinePort,
    /// The first bytes were a TLS ClientHello on a plain-text listener.
    TlsOnPlainPort,
    /// A line over its limit (code 12).
    LineTooLong,
    /// A malformed Dreadlock line (code 17).
    BadDreadlock,
    /// `error_auth` (§4.3).
    AuthFailed,
    /// `--read-timeout` without a byte (code 10).
    IdleTimeout,
    /// `--read-timeout` while a request was arriving (code 10).
    RequestTimeout,
    /// `--write-timeout` without progress (§2.7).
    WriteTimeout,
    /// A push frame would pass `--max-output-bytes` (§2.7).
    SlowConsumer,
    /// The server drains (§4.5).
    Draining,
}

impl CloseReason {
    /// The §11 code, for the reasons that have one.
    pub fn code(self) -> Option<u8> {
        match self {
            CloseReason::PeerClosed => Some(11),
            CloseReason::IdleTimeout | CloseReason::RequestTimeout => Some(10),
            CloseReason::LineTooLong => Some(12),
            CloseReason::HttpOnLinePort => Some(16),
            CloseReason::BadDreadlock => Some(17),
            _ => None,
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(code) = self.code() {
            write!(f, "code {code}, ")?;
        }
        match self {
            CloseReason::PeerClosed => f.write_str("the client closed the connection"),
            CloseReason::ReadError(k) => write!(f, "read error: {k}"),
            CloseReason::WriteError(k) => write!(f, "write error: {k}"),
            CloseReason::HttpOnLinePort => f.write_str("HTTP request on the TCP port"),
            CloseReason::TlsOnPlainPort => f.write_str("TLS ClientHello on a plain-text port"),
            CloseReason::LineTooLong => f.write_str("line too long"),
            CloseReason::BadDreadlock => f.write_str("malformed Dreadlock line"),
            CloseReason::AuthFailed => f.write_str("authentication failed"),
            CloseReason::IdleTimeout => f.write_str("idle timeout"),
            CloseReason::RequestTimeout => f.write_str("request timeout"),
            CloseReason::WriteTimeout => f.write_str("write timeout"),
            CloseReason::SlowConsumer => f.write_str("slow consumer"),
            CloseReason::Draining => f.write_str("server draining"),
        }
    }
}

/// True if `buf` starts like a TLS handshake record (a ClientHello): content
/// type 22, major version 3. Two bytes suffice; no dflockd request starts so.
pub fn looks_like_tls(buf: &[u8]) -> bool {
    matches!(buf, [0x16, 0x03, ..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::command::{Command, CommandLimits};

    fn why(cmd: &[u8], key: &[u8], arg: &[u8]) -> String {
        let limits = CommandLimits {
            max_value_bytes: 64,
        };
        let err = Command::from_raw(cmd, key, arg, &limits).expect_err("a refused request");
        parse_error(err, cmd, key, arg, 64)
    }

    #[test]
    fn escapes_client_bytes() {
        assert_eq!(Escaped(b"my-key").to_string(), r#""my-key""#);
        assert_eq!(Escaped(b"a \"b\" \\").to_string(), r#""a \"b\" \\""#);
        assert_eq!(
            Escaped(b"\xff\xf4\xff\xfd\x06").to_string(),
            r#""\xff\xf4\xff\xfd\x06""#
        );
        assert_eq!(
            Escaped(b"\t\r\n\x1b[31m").to_string(),
            r#""\t\r\n\x1b[31m""#
        );
        assert_eq!(Escaped("é日".as_bytes()).to_string(), "\"é日\"");
        assert_eq!(
            Escaped("\u{202e}x".as_bytes()).to_string(),
            r#""\u{202e}x""#
        );
        let long = [b'k'; 300];
        assert_eq!(
            Escaped(&long).to_string(),
            format!("\"{}\"…(300 bytes)", "k".repeat(64))
        );
        // A cut never splits a character.
        let mut s = "a".repeat(63).into_bytes();
        s.extend_from_slice("é".repeat(10).as_bytes());
        assert_eq!(
            Escaped(&s).to_string(),
            format!("\"{}\"…({} bytes)", "a".repeat(63), s.len())
        );
    }

    #[test]
    fn escaped_output_has_no_control_characters() {
        let mut x: u32 = 0x9e37_79b9;
        for _ in 0..2000 {
            let bytes: Vec<u8> = (0..40)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let s = Escaped(&bytes).to_string();
            assert!(!s.chars().any(char::is_control), "{s:?}");
        }
    }

    #[test]
    fn names_the_offending_field() {
        assert_eq!(
            why(b"l", b"my-key", b"1.5"),
            r#"invalid integer "1.5" in argument (<timeout>; l takes <timeout> [<lease>])"#
        );
        assert_eq!(
            why(b"l", b"my-key", b"ten"),
            r#"invalid integer "ten" in argument (<timeout>; l takes <timeout> [<lease>])"#
        );
        assert_eq!(
            why(b"l", b"k", b"10 6x"),
            r#"invalid integer "6x" in argument (<lease>; l takes <timeout> [<lease>])"#
        );
        assert_eq!(
            why(b"l", b"k", b"9223372037"),
            r#"integer "9223372037" out of range in argument (<timeout> is 0..=9223372036 seconds; l takes <timeout> [<lease>])"#
        );
        assert_eq!(
            why(b"incr", b"c", b"99999999999999999999"),
            r#"integer "99999999999999999999" out of range in argument (<delta> is a signed 64-bit integer; incr takes <delta>)"#
        );
        assert_eq!(
            why(b"kset", b"k", b"v\tx"),
            r#"invalid TTL "x" after the TAB (digits only, 0..=9223372036; kset takes <value>[TAB<ttl>])"#
        );
        assert_eq!(
            why(b"l", b"my key", b"10"),
            r#"invalid key "my key" (contains a space)"#
        );
        assert_eq!(
            why(b"l", b"my-key ", b"0"),
            r#"invalid key "my-key " (contains a space)"#
        );
        assert_eq!(why(b"l", b"", b"0"), r#"invalid key "" (empty)"#);
        assert_eq!(
            why(b"signal", b"a.*", b"x"),
            r#"invalid key "a.*" (a signal channel cannot contain * or >)"#
        );
        assert_eq!(
            why(b"l", b"k", b"-1"),
            r#"negative timeout "-1" in argument (<timeout>: 0 means try once; l takes <timeout> [<lease>])"#
        );
        assert_eq!(
            why(b"l", b"k", b"1 0"),
            r#"invalid lease "0" in argument (<lease> is 1..=9223372036 seconds; l takes <timeout> [<lease>])"#
        );
        assert_eq!(
            why(b"sl", b"k", b"5 0"),
            r#"invalid semaphore limit "0" in argument (1..=1048576; sl takes <timeout> <limit> [<lease>])"#
        );
        assert_eq!(
            why(b"bwait", b"k", b"0 5"),
            r#"invalid barrier count "0" in argument (1..=1048576; bwait takes <count> <timeout>)"#
        );
        assert_eq!(
            why(b"r", b"k", b""),
            r#"malformed token "" in argument (empty; r takes <token>)"#
        );
        assert_eq!(
            why(b"r", b"k", b"ab cd"),
            r#"malformed token "ab cd" in argument (contains a space or TAB; r takes <token>)"#
        );
        assert_eq!(
            why(b"l", b"k", b"10 60 5"),
            r#"wrong number of fields in argument "10 60 5": 3 given; l takes <timeout> [<lease>]"#
        );
        assert_eq!(
            why(b"l", b"k", b""),
            r#"wrong number of fields in argument "": 0 given; l takes <timeout> [<lease>]"#
        );
        assert_eq!(
            why(b"kcas", b"k", b"a\tb"),
            r#"malformed argument "a\tb": needs exactly two TABs; kcas takes <old>TAB<new>TAB[<ttl>]"#
        );
        assert_eq!(
            why(b"kset", b"k", b""),
            r#"invalid value "" (empty; kset takes <value>[TAB<ttl>])"#
        );
        assert_eq!(
            why(b"lpush", b"k", &[b'v'; 65]),
            format!(
                "invalid value \"{}\"…(65 bytes) (65 bytes, over --max-value-bytes 64; lpush takes <value>)",
                "v".repeat(64)
            )
        );
        assert_eq!(
            why(b"signal", b"ch", b"   "),
            r#"invalid payload "   " (only spaces; signal takes <payload>)"#
        );
        assert_eq!(
            why(b"listen", b"fo*", b""),
            r#"invalid pattern "fo*" (* and > must be whole dot-separated tokens, > only last)"#
        );
        assert_eq!(
            why(b"listen", b"a.*", b"g h"),
            r#"invalid group "g h" in argument (one word of 1..=256 bytes, no blanks)"#
        );
    }

    #[test]
    fn explains_refused_options() {
        assert_eq!(
            why(b"opt", b"bogus", b"on"),
            r#"unknown option "bogus" (the options are queue_position, lease_notices, deadlock)"#
        );
        assert_eq!(
            why(b"opt", b"deadlock", b"yes"),
            r#"invalid value "yes" for option "deadlock" (on or off)"#
        );
    }

    #[test]
    fn hints_for_unknown_commands() {
        assert!(
            why(b"", b"ping", b"_").starts_with(
                r#"unknown command "" (an empty command line: a stray newline shifts"#
            )
        );
        assert_eq!(
            why(b"ping ", b"_", b""),
            r#"unknown command "ping " (trailing blank after the command name)"#
        );
        assert_eq!(
            why(b"L", b"k", b"1"),
            r#"unknown command "L" (command names are lowercase)"#
        );
        assert!(
            why(b"\xff\xf4\xff\xfd\x06", b"", b"")
                .starts_with(r#"unknown command "\xff\xf4\xff\xfd\x06" (telnet control bytes"#)
        );
        assert_eq!(
            why(b"lock", b"k", b"1000"),
            r#"unknown command "lock" (a Dreadlock request is one line: lock <key> <ms> or unlock <key>)"#
        );
        assert_eq!(why(b"hello", b"_", b""), r#"unknown command "hello""#);
    }

    #[test]
    fn every_command_name_is_known_to_the_parser() {
        let limits = CommandLimits {
            max_value_bytes: 64,
        };
        for name in COMMANDS.split_whitespace() {
            let r = Command::from_raw(name.as_bytes(), b"k", b"", &limits);
            assert_ne!(r, Err(ProtoError::UnknownCommand), "{name}");
        }
    }

    #[test]
    fn explains_dreadlock_lines() {
        assert_eq!(
            dreadlock_error(b"lock my-key 1000"),
            r#"key "my-key" may hold only A-Z a-z 0-9 (not "-")"#
        );
        assert_eq!(
            dreadlock_error(b"lock build42"),
            "missing timeout in milliseconds (lock <key> <ms> or unlock <key>)"
        );
        assert_eq!(
            dreadlock_error(b"lock k 1.5"),
            r#"timeout "1.5" is not whole milliseconds (digits only)"#
        );
        assert_eq!(
            dreadlock_error(b"lock k 99999999999999"),
            r#"timeout "99999999999999" out of range (0..=9223372036000 ms)"#
        );
        assert_eq!(
            dreadlock_error(b"unlock k extra"),
            r#"extra field "extra" (lock <key> <ms> or unlock <key>)"#
        );
        assert_eq!(
            dreadlock_error(b"lock k\t5"),
            r#"key "k\t5" may hold only A-Z a-z 0-9 (not "\t")"#
        );
    }

    #[test]
    fn classifies_refusals() {
        assert_eq!(refusal(&Reply::OK), None);
        assert_eq!(refusal(&Status::Timeout.into()), None);
        assert_eq!(refusal(&Status::CasConflict.into()), None);
        assert_eq!(refusal(&Reply::Dread(DreadReply::Locked)), None);
        assert_eq!(refusal(&Reply::Dread(DreadReply::Timeout)), None);
        let e = refusal(&Reply::ERROR).unwrap();
        assert_eq!(e.wire(), "error");
        assert!(e.meaning(Some("r")).starts_with("the token is not held"));
        assert!(e.meaning(Some("incr")).starts_with("counter overflow"));
        let m = refusal(&Status::ErrorMaxWaiters.into()).unwrap();
        assert_eq!(m.limit(), Some(Limit::MaxWaiters));
        let d = refusal(&Reply::Dread(DreadReply::NotLocked)).unwrap();
        assert_eq!(d.wire(), "e not locked");
        assert_eq!(d.limit(), None);
        assert_eq!(
            refusal(&Reply::Dread(DreadReply::MaxLocks))
                .unwrap()
                .limit(),
            Some(Limit::MaxLocks)
        );
    }

    #[test]
    fn close_reasons_carry_their_codes() {
        assert_eq!(
            CloseReason::PeerClosed.to_string(),
            "code 11, the client closed the connection"
        );
        assert_eq!(
            CloseReason::IdleTimeout.to_string(),
            "code 10, idle timeout"
        );
        assert_eq!(CloseReason::SlowConsumer.to_string(), "slow consumer");
        assert_eq!(
            CloseReason::ReadError(std::io::ErrorKind::ConnectionReset).to_string(),
            "read error: connection reset"
        );
        for code in [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17] {
            assert_ne!(code_meaning(code), "unknown code");
        }
    }
}
