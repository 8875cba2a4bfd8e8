//! The client's error type: one variant per error status word of protocol.md §5,
//! plus the failures that happen on the client side (IO, a reply that does not parse,
//! a closed connection, an argument that cannot be sent).
//!
//! `Error::from_status` is the only place the status words are spelled on the client
//! side; success words (`ok`, `acquired`, `queued`) are never errors.

use std::fmt;
use std::io;

/// Result alias used by every client call.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything a client call can fail with.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// `timeout`: not granted (or the barrier did not complete) within the timeout.
    Timeout,
    /// `nil`: no such KV entry, or an empty list. Calls that can answer `nil` return
    /// `Option` instead; this variant only appears where `nil` was not expected.
    Nil,
    /// `cas_conflict`: the current value is not the expected one. `Session::kv_cas`
    /// returns `Ok(false)` instead; this variant appears only where it was not expected.
    CasConflict,
    /// `error`: malformed request, token not held (release/renew), counter overflow,
    /// repeated `auth`, fence persistence failure.
    Rejected,
    /// `error_auth`: authentication failed; the server closed the connection.
    Auth,
    /// `error_max_locks`: `--max-locks` keys exist in the lock and semaphore spaces.
    MaxLocks,
    /// `error_max_keys`: `--max-keys` counters, KV entries, lists and barriers exist.
    MaxKeys,
    /// `error_max_waiters`: the key's queue is full.
    MaxWaiters,
    /// `error_max_subscriptions`: the connection has too many registrations.
    MaxSubscriptions,
    /// `error_max_memory`: the server is at its memory budget (`--max-memory`);
    /// retry after data has been consumed or deleted.
    MaxMemory,
    /// `error_limit_mismatch`: the semaphore is in use with another limit.
    LimitMismatch,
    /// `error_type_mismatch`: the key is in use as the other lock type.
    TypeMismatch,
    /// `error_not_enqueued`: a wait without a matching enqueue.
    NotEnqueued,
    /// `error_already_enqueued`: the connection already has enqueue state for the key.
    AlreadyEnqueued,
    /// `error_lease_expired`: the grant being completed or renewed lost its lease.
    LeaseExpired,
    /// `error_list_full`: the list holds `--max-list-length` items.
    ListFull,
    /// `error_barrier_count_mismatch`: the barrier exists with another count.
    BarrierCountMismatch,
    /// `error_draining`: the server is shutting down; the connection is closed.
    Draining,
    /// A socket error, including connect and read/write timeouts
    /// (`io::ErrorKind::TimedOut` / `WouldBlock`).
    Io(io::Error),
    /// The server sent something this client cannot parse (the text says what).
    Protocol(String),
    /// The connection was closed (by the server, or after an earlier failure left it
    /// out of step with its replies).
    Closed,
    /// An argument the protocol cannot carry (a key with a space, a value with a TAB,
    /// an empty server list, ...). Nothing was sent.
    Invalid(String),
}

impl Error {
    /// Maps a reply's status word to its error. `None` for the success words
    /// (`ok`, `acquired`, `queued`) and for words the protocol does not define.
    pub fn from_status(word: &str) -> Option<Error> {
        Some(match word {
            "timeout" => Error::Timeout,
            "nil" => Error::Nil,
            "cas_conflict" => Error::CasConflict,
            "error" => Error::Rejected,
            "error_auth" => Error::Auth,
            "error_max_locks" => Error::MaxLocks,
            "error_max_keys" => Error::MaxKeys,
            "error_max_waiters" => Error::MaxWaiters,
            "error_max_subscriptions" => Error::MaxSubscriptions,
            "error_max_memory" => Error::MaxMemory,
            "error_limit_mismatch" => Error::LimitMismatch,
            "error_type_mismatch" => Error::TypeMismatch,
            "error_not_enqueued" => Error::NotEnqueued,
            "error_already_enqueued" => Error::AlreadyEnqueued,
            "error_lease_expired" => Error::LeaseExpired,
            "error_list_full" => Error::ListFull,
            "error_barrier_count_mismatch" => Error::BarrierCountMismatch,
            "error_draining" => Error::Draining,
            _ => return None,
        })
    }

    /// The status word this error stands for, if it came from the server.
    pub fn status_word(&self) -> Option<&'static str> {
        Some(match self {
            Error::Timeout => "timeout",
            Error::Nil => "nil",
            Error::CasConflict => "cas_conflict",
            Error::Rejected => "error",
            Error::Auth => "error_auth",
            Error::MaxLocks => "error_max_locks",
            Error::MaxKeys => "error_max_keys",
            Error::MaxWaiters => "error_max_waiters",
            Error::MaxSubscriptions => "error_max_subscriptions",
            Error::MaxMemory => "error_max_memory",
            Error::LimitMismatch => "error_limit_mismatch",
            Error::TypeMismatch => "error_type_mismatch",
            Error::NotEnqueued => "error_not_enqueued",
            Error::AlreadyEnqueued => "error_already_enqueued",
            Error::LeaseExpired => "error_lease_expired",
            Error::ListFull => "error_list_full",
            Error::BarrierCountMismatch => "error_barrier_count_mismatch",
            Error::Draining => "error_draining",
            Error::Io(_) | Error::Protocol(_) | Error::Closed | Error::Invalid(_) => return None,
        })
    }

    /// True for `Timeout` (the server's `timeout` reply), not for socket timeouts.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout)
    }

    /// True when the connection cannot be used any more: socket errors, closes,
    /// unparsable replies, `error_auth` and `error_draining`.
    pub fn is_connection_error(&self) -> bool {
        matches!(
            self,
            Error::Io(_) | Error::Protocol(_) | Error::Closed | Error::Auth | Error::Draining
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "i/o error: {e}"),
            Error::Protocol(what) => write!(f, "protocol error: {what}"),
            Error::Closed => f.write_str("connection closed"),
            Error::Invalid(what) => write!(f, "invalid argument: {what}"),
            Error::Timeout => f.write_str("timed out (server replied timeout)"),
            other => {
                let word = other.status_word().unwrap_or("error");
                write!(f, "server replied {word}")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_word_round_trips() {
        let words = [
            "timeout",
            "nil",
            "cas_conflict",
            "error",
            "error_auth",
            "error_max_locks",
            "error_max_keys",
            "error_max_waiters",
            "error_max_subscriptions",
            "error_max_memory",
            "error_limit_mismatch",
            "error_type_mismatch",
            "error_not_enqueued",
            "error_already_enqueued",
            "error_lease_expired",
            "error_list_full",
            "error_barrier_count_mismatch",
            "error_draining",
        ];
        for w in words {
            let e = Error::from_status(w).expect(w);
            assert_eq!(e.status_word(), Some(w));
        }
        for w in ["ok", "acquired", "queued", "OK", ""] {
            assert!(Error::from_status(w).is_none(), "{w}");
        }
    }
}
