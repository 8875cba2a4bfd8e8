//! What an HTTP connection is doing between requests (http.md §2.3, §5, §7).
//!
//! An HTTP connection reads one request at a time. Most complete within the
//! loop iteration that parsed them; a long-poll (blocking acquire, wait,
//! blocking pop, barrier wait), a request queued behind another of its
//! session, a delayed `401`, and an SSE stream outlive it, and the mode says
//! which. Boxed in [`Conn`](super::Conn) so line-protocol connections do not
//! pay for it.

use crate::http::api::Action;
use crate::http::route::Route;
use crate::owner::OwnerId;
use crate::protocol::command::{Command, End, Key, RwMode};
use crate::protocol::reply::Reply;

/// How the response to a request is written (kept while it waits).
#[derive(Debug, Clone)]
pub struct ReplyCx {
    pub route: Option<&'static Route>,
    /// The metrics `method` label of the request (http.md §9): `GET`,
    /// `HEAD`, `POST`, `DELETE`, `OPTIONS` or `OTHER`.
    pub method: &'static str,
    /// HTTP/1.0 or 1.1 (decides the `Connection` header).
    pub minor_version: u8,
    pub keep_alive: bool,
    /// `HEAD`: the headers of `GET`, no body.
    pub head_only: bool,
    /// The `Origin` to echo when CORS allows it.
    pub cors_origin: Option<Box<str>>,
    /// When the request started (ms), for the duration summary.
    pub started: u64,
    /// How to take back what a long-poll produced if its client is found
    /// gone before the response is written (§2.3).
    pub undo: Option<Undo>,
}

/// The inverse of a long-poll's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undo {
    /// Release the grant (`l`/`w`, `sl`/`sw`, `rl`/`wl`/`rw`/`ww`, `elect`).
    Release { kind: Grant, key: Key },
    /// Put a popped value back at the end it was taken from.
    PushBack { end: End, key: Key },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    Lock,
    Sem,
    Rw,
    Elect,
}

impl Undo {
    /// The undo of a command that may park, if its result can be taken back
    /// (a barrier wait cannot: the others already went through).
    pub fn of(cmd: &Command) -> Option<Undo> {
        let release = |kind, key: &Key| {
            Some(Undo::Release {
                kind,
                key: key.clone(),
            })
        };
        match cmd {
            Command::Lock { key, .. } | Command::Wait { key, .. } => release(Grant::Lock, key),
            Command::SemLock { key, .. } | Command::SemWait { key, .. } => release(Grant::Sem, key),
            Command::RwLock { key, .. } | Command::RwWait { key, .. } => release(Grant::Rw, key),
            Command::Elect { key, .. } => release(Grant::Elect, key),
            Command::BPop { end, key, .. } => Some(Undo::PushBack {
                end: *end,
                key: key.clone(),
            }),
            _ => None,
        }
    }

    /// The command that takes `reply` back, if it produced anything.
    pub fn command(&self, reply: &Reply) -> Option<Command> {
        match (self, reply) {
            (Undo::Release { kind, key }, Reply::Grant { token, .. }) => {
                let token: Box<[u8]> = Box::new(token.encode());
                let key = key.clone();
                Some(match kind {
                    Grant::Lock => Command::Release { key, token },
                    Grant::Sem => Command::SemRelease { key, token },
                    // Either mode releases a read-write holder by token.
                    Grant::Rw => Command::RwRelease {
                        mode: RwMode::Write,
                        key,
                        token,
                    },
                    Grant::Elect => Command::Resign { key, token },
                })
            }
            (Undo::PushBack { end, key }, Reply::Text(value)) => Some(Command::Push {
                end: *end,
                key: key.clone(),
                value: value.clone(),
            }),
            _ => None,
        }
    }
}

/// A routed, validated request that has not run yet.
#[derive(Debug)]
pub struct Pending {
    pub action: Action,
    /// The owner the command runs as: the session on session endpoints, the
    /// connection itself otherwise.
    pub owner: OwnerId,
    pub rcx: ReplyCx,
}

#[derive(Debug, Default)]
pub enum HttpMode {
    /// Between requests, or reading one.
    #[default]
    Idle,
    /// A long-poll: `owner`'s parked command answers it through the outbox;
    /// `undo` gives its result back if the client is gone by then (§2.3).
    LongPoll { owner: OwnerId, rcx: Box<ReplyCx> },
    /// The request waits until its session has no request in progress.
    SessionWait(Box<Pending>),
    /// A failed authentication answered after the delay (its bytes are
    /// ready); `close`: the response says `Connection: close`, so the
    /// connection closes once it is written.
    AuthDelay { bytes: Box<[u8]>, close: bool },
    /// An event stream (§7): pushes for this connection become events.
    Stream,
}

#[derive(Debug, Default)]
pub struct HttpState {
    pub mode: HttpMode,
    /// `100 Continue` was sent for the request being read.
    pub sent_continue: bool,
    /// Last time output was queued on a stream (ms), for `:ping`.
    pub last_event: u64,
}

impl HttpState {
    /// The connection ends with its peer: a request of it is waiting
    /// (long-poll or session queue, which the close cancels) or it is a stream.
    pub fn ends_with_peer(&self) -> bool {
        matches!(
            self.mode,
            HttpMode::LongPoll { .. } | HttpMode::SessionWait(_) | HttpMode::Stream
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::reply::GrantWord;
    use crate::state::fence::Token;

    fn grant() -> Reply {
        Reply::Grant {
            word: GrantWord::Ok,
            token: Token { fence: 1, salt: 2 },
            lease_s: 33,
            with_fence: false,
        }
    }

    #[test]
    fn a_grant_is_released_and_a_pop_pushed_back() {
        let lock = Command::Lock {
            key: "k".into(),
            timeout: 5,
            lease: None,
        };
        let undo = Undo::of(&lock).expect("locks can be undone");
        let token: Box<[u8]> = Box::new(Token { fence: 1, salt: 2 }.encode());
        assert_eq!(
            undo.command(&grant()),
            Some(Command::Release {
                key: "k".into(),
                token
            })
        );
        // A timeout produced nothing to take back.
        assert_eq!(
            undo.command(&Reply::Status(crate::protocol::reply::Status::Timeout)),
            None
        );
        let pop = Command::BPop {
            end: End::Left,
            key: "q".into(),
            timeout: 5,
        };
        assert_eq!(
            Undo::of(&pop).and_then(|u| u.command(&Reply::Text("v".into()))),
            Some(Command::Push {
                end: End::Left,
                key: "q".into(),
                value: "v".into()
            })
        );
        let barrier_like = Command::Ping;
        assert_eq!(Undo::of(&barrier_like), None);
    }
}
