//! Owners: who holds, waits and subscribes.
//!
//! Everything the coordination state ties to a client — holders, waiters,
//! two-phase enqueues, barrier seats, subscriptions, disconnect cleanup — is
//! tied to an [`OwnerId`]. A TCP connection (also an SSE stream) is an owner,
//! and so is an HTTP session, which outlives the HTTP connections it is used
//! from. This type sits on the ground floor so that `state`, `timer`, `conn`,
//! `http` and `server` all import it and none of them imports `server`.
//!
//! An id is a slot *and* a generation: anything that outlives one event keeps
//! the whole id, so a stale reference never reaches a new owner that reused
//! the slot. Connection slots are slab keys of the server's connection table;
//! session slots have [`OwnerId::SESSION_BIT`] set, so the two never collide.

/// One owner: a connection or an HTTP session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OwnerId {
    pub slot: u32,
    pub generation: u32,
}

impl OwnerId {
    /// Set in the slot of every session owner.
    pub const SESSION_BIT: u32 = 1 << 31;

    /// The owner of connection-table slot `key`.
    pub fn conn(key: usize, generation: u32) -> OwnerId {
        debug_assert!(key < Self::SESSION_BIT as usize, "connection slot overflow");
        OwnerId {
            slot: key as u32,
            generation,
        }
    }

    /// The owner of session-table slot `key`.
    pub fn session(key: usize, generation: u32) -> OwnerId {
        debug_assert!(key < Self::SESSION_BIT as usize, "session slot overflow");
        OwnerId {
            slot: key as u32 | Self::SESSION_BIT,
            generation,
        }
    }

    pub fn is_session(self) -> bool {
        self.slot & Self::SESSION_BIT != 0
    }

    /// The slot in its own table (connection or session).
    pub fn index(self) -> usize {
        (self.slot & !Self::SESSION_BIT) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_and_session_slots_never_collide() {
        let c = OwnerId::conn(5, 1);
        let s = OwnerId::session(5, 1);
        assert_ne!(c, s);
        assert!(!c.is_session() && s.is_session());
        assert_eq!((c.index(), s.index()), (5, 5));
    }
}
