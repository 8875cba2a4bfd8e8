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
use crate::protocol::command::{Command, End, Key};

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

/// How to give back what a long-poll obtained when its client is found gone
/// before the response could be written (http.md §2.3): a granted slot is
/// released, a popped value is put back at the end it was taken from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undo {
    /// Release the grant's token: `r` (exclusive, election), `sr` or `rr`.
    Release { key: Key, space: Space },
    /// Push the popped value back at `end`.
    PushBack { key: Key, end: End },
    /// Nothing to give back (a barrier wait).
    Nothing,
}

/// The key space of a grant to release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    Lock,
    Semaphore,
    ReadWrite,
}

impl Undo {
    /// The undo of a command that may park.
    pub fn of(cmd: &Command) -> Undo {
        use Command as C;
        let release = |key: &Key, space| Undo::Release {
            key: key.clone(),
            space,
        };
        match cmd {
            C::Lock { key, .. } | C::Wait { key, .. } | C::Elect { key, .. } => {
                release(key, Space::Lock)
            }
            C::SemLock { key, .. } | C::SemWait { key, .. } => release(key, Space::Semaphore),
            C::RwLock { key, .. } | C::RwWait { key, .. } => release(key, Space::ReadWrite),
            C::BPop { end, key, .. } => Undo::PushBack {
                key: key.clone(),
                end: *end,
            },
            _ => Undo::Nothing,
        }
    }
}

#[derive(Debug, Default)]
pub enum HttpMode {
    /// Between requests, or reading one.
    #[default]
    Idle,
    /// A long-poll: `owner`'s parked command answers it through the outbox;
    /// `undo` gives its result back if the client is gone by then (§2.3).
    LongPoll {
        owner: OwnerId,
        rcx: Box<ReplyCx>,
        undo: Undo,
    },
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
