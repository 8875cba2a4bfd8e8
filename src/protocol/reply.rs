//! Replies and their encoding: the only place wire reply strings are spelled
//! (protocol.md §5, §6.3, §9).

use crate::state::fence::Token;

/// Status words that make up a whole reply line on their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Queued,
    Timeout,
    Nil,
    CasConflict,
    Error,
    ErrorAuth,
    ErrorMaxLocks,
    ErrorMaxKeys,
    ErrorMaxWaiters,
    ErrorMaxSubscriptions,
    ErrorMaxMemory,
    ErrorLimitMismatch,
    ErrorTypeMismatch,
    ErrorNotEnqueued,
    ErrorAlreadyEnqueued,
    ErrorLeaseExpired,
    ErrorListFull,
    ErrorBarrierCountMismatch,
    ErrorDraining,
    ErrorDeadlock,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Queued => "queued",
            Status::Timeout => "timeout",
            Status::Nil => "nil",
            Status::CasConflict => "cas_conflict",
            Status::Error => "error",
            Status::ErrorAuth => "error_auth",
            Status::ErrorMaxLocks => "error_max_locks",
            Status::ErrorMaxKeys => "error_max_keys",
            Status::ErrorMaxWaiters => "error_max_waiters",
            Status::ErrorMaxSubscriptions => "error_max_subscriptions",
            Status::ErrorMaxMemory => "error_max_memory",
            Status::ErrorLimitMismatch => "error_limit_mismatch",
            Status::ErrorTypeMismatch => "error_type_mismatch",
            Status::ErrorNotEnqueued => "error_not_enqueued",
            Status::ErrorAlreadyEnqueued => "error_already_enqueued",
            Status::ErrorLeaseExpired => "error_lease_expired",
            Status::ErrorListFull => "error_list_full",
            Status::ErrorBarrierCountMismatch => "error_barrier_count_mismatch",
            Status::ErrorDraining => "error_draining",
            Status::ErrorDeadlock => "error_deadlock",
        }
    }
}

/// Dreadlock replies (§9); they end with CRLF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DreadReply {
    Locked,
    Timeout,
    Unlocked,
    AlreadyLocked,
    NotLocked,
    NotOwner,
    TypeMismatch,
    MaxLocks,
    MaxWaiters,
    ServerError,
    Draining,
    AuthenticationRequired,
    IdleTimeout,
}

impl DreadReply {
    pub fn line(self) -> &'static [u8] {
        match self {
            DreadReply::Locked => b"l locked\r\n",
            DreadReply::Timeout => b"t timeout\r\n",
            DreadReply::Unlocked => b"u unlocked\r\n",
            DreadReply::AlreadyLocked => b"e already locked\r\n",
            DreadReply::NotLocked => b"e not locked\r\n",
            DreadReply::NotOwner => b"e not owner\r\n",
            DreadReply::TypeMismatch => b"e type mismatch\r\n",
            DreadReply::MaxLocks => b"e max locks\r\n",
            DreadReply::MaxWaiters => b"e max waiters\r\n",
            DreadReply::ServerError => b"e server error\r\n",
            DreadReply::Draining => b"e draining\r\n",
            DreadReply::AuthenticationRequired => b"e authentication required\r\n",
            DreadReply::IdleTimeout => b"e idle timeout\r\n",
        }
    }
}

/// The first word of a grant reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantWord {
    Ok,
    Acquired,
}

/// One reply line.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Status(Status),
    /// `ok|acquired <token> <lease>[ <fence>]`
    Grant {
        word: GrantWord,
        token: Token,
        lease_s: u64,
        with_fence: bool,
    },
    /// `ok <lease>[ <fence>]` (renewals)
    Lease {
        lease_s: u64,
        fence: Option<u64>,
    },
    /// `ok <integer>`
    Int(i64),
    /// `ok <text>` (values, JSON documents)
    Text(Box<str>),
    /// `queued <position>` (an enqueue with `queue_position` on, §8.15)
    QueuedAt(u32),
    Dread(DreadReply),
}

impl From<Status> for Reply {
    fn from(s: Status) -> Reply {
        Reply::Status(s)
    }
}

impl Reply {
    pub const OK: Reply = Reply::Status(Status::Ok);
    pub const ERROR: Reply = Reply::Status(Status::Error);

    /// Append the reply line (with its terminator) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Status(s) => {
                out.extend_from_slice(s.word().as_bytes());
            }
            Reply::Grant {
                word,
                token,
                lease_s,
                with_fence,
            } => {
                out.extend_from_slice(match word {
                    GrantWord::Ok => b"ok ",
                    GrantWord::Acquired => b"acquired ",
                });
                out.extend_from_slice(&token.encode());
                out.push(b' ');
                push_u64(out, *lease_s);
                if *with_fence {
                    out.push(b' ');
                    push_u64(out, token.fence);
                }
            }
            Reply::Lease { lease_s, fence } => {
                out.extend_from_slice(b"ok ");
                push_u64(out, *lease_s);
                if let Some(f) = fence {
                    out.push(b' ');
                    push_u64(out, *f);
                }
            }
            Reply::Int(n) => {
                out.extend_from_slice(b"ok ");
                push_i64(out, *n);
            }
            Reply::Text(t) => {
                out.extend_from_slice(b"ok ");
                out.extend_from_slice(t.as_bytes());
            }
            Reply::QueuedAt(n) => {
                out.extend_from_slice(b"queued ");
                push_u64(out, u64::from(*n));
            }
            Reply::Dread(d) => {
                out.extend_from_slice(d.line());
                return;
            }
        }
        out.push(b'\n');
    }
}

/// Decimal without going through `fmt` (this runs for every grant).
pub fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

pub fn push_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    push_u64(out, n.unsigned_abs());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(r: Reply) -> String {
        let mut v = Vec::new();
        r.encode(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn grant_forms() {
        let token = Token {
            fence: 0x18ea9db47e590001,
            salt: 0xd433357e6ef5d88b,
        };
        let g = |word, with_fence| Reply::Grant {
            word,
            token,
            lease_s: 60,
            with_fence,
        };
        assert_eq!(
            enc(g(GrantWord::Ok, false)),
            "ok 18ea9db47e590001d433357e6ef5d88b 60\n"
        );
        assert_eq!(
            enc(g(GrantWord::Acquired, true)),
            "acquired 18ea9db47e590001d433357e6ef5d88b 60 1795420800000000001\n"
        );
        assert_eq!(
            enc(Reply::Lease {
                lease_s: 33,
                fence: Some(7)
            }),
            "ok 33 7\n"
        );
    }

    #[test]
    fn integers_and_words() {
        assert_eq!(enc(Reply::Int(i64::MIN)), "ok -9223372036854775808\n");
        assert_eq!(enc(Reply::Int(0)), "ok 0\n");
        assert_eq!(enc(Reply::QueuedAt(6)), "queued 6\n");
        assert_eq!(
            enc(Reply::Status(Status::ErrorLeaseExpired)),
            "error_lease_expired\n"
        );
        assert_eq!(enc(Reply::Dread(DreadReply::Locked)), "l locked\r\n");
    }
}
