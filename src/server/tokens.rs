//! mio tokens. Fixed tokens sit at the top of the range; connection tokens are
//! slab keys. Anything that outlives one event (waiters, leases, timers) holds a
//! [`OwnerId`](crate::owner::OwnerId) — slot *and* generation — so a stale reference can never reach a
//! new connection that reused the slot.

use crate::owner::OwnerId;
use mio::Token;

pub const SIGNALS: Token = Token(usize::MAX - 1);
/// Listener tokens: `LISTENER_BASE - i` for listener `i`.
pub const LISTENER_BASE: usize = usize::MAX - 16;
pub const MAX_LISTENERS: usize = 8;

pub fn listener_token(i: usize) -> Token {
    Token(LISTENER_BASE - i)
}

/// Listener index of a token, if it is one.
pub fn listener_index(t: Token) -> Option<usize> {
    let d = LISTENER_BASE.checked_sub(t.0)?;
    (d < MAX_LISTENERS && t.0 <= LISTENER_BASE).then_some(d)
}

/// The mio token of a connection owner (its connection-table slot).
pub fn conn_token(id: OwnerId) -> Token {
    debug_assert!(!id.is_session(), "sessions have no mio token");
    Token(id.index())
}
