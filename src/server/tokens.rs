//! mio tokens. Fixed tokens sit at the top of the range; connection tokens are
//! slab keys. Anything that outlives one event (waiters, leases, timers) holds a
//! [`ConnId`] — slot *and* generation — so a stale reference can never reach a
//! new connection that reused the slot.

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

/// A connection's identity for everything that outlives one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId {
    pub slot: u32,
    pub generation: u32,
}

impl ConnId {
    pub fn token(self) -> Token {
        Token(self.slot as usize)
    }
}
