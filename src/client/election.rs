//! Leader election (`elect resign observe unobserve`, protocol.md §8.8).
//!
//! An election is an exclusive lock whose contenders and observers get leader
//! events. `Election::campaign` parks until elected and returns a [`Guard`]: it is
//! renewed with `n` like any lock, and dropping or releasing it sends `resign`.
//! Leader events that reach the candidate's own connection are not surfaced there;
//! use an [`Observer`] to follow an election.

use super::Client;
use super::acquire::Acquirer;
use super::error::Result;
use super::guard::{ELECTION, Guard};
use super::push::PushHub;
use super::reply::{LeaderEvent, Push};
use std::time::{Duration, Instant};

/// A candidate for leadership of one key.
#[derive(Debug, Clone)]
pub struct Election {
    inner: Acquirer,
}

impl Election {
    pub(crate) fn new(client: Client, key: &str) -> Self {
        Election {
            inner: Acquirer::new(client, key, &ELECTION, None),
        }
    }

    /// Asks for this lease (rounded up to whole seconds).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.inner.set_lease(lease);
        self
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.inner.key
    }

    /// Stands for election and waits up to `timeout` to become leader.
    /// `Err(Timeout)` if not elected in time (the candidacy ends).
    pub fn campaign(&self, timeout: Duration) -> Result<Guard> {
        self.inner.acquire(timeout)
    }

    /// Becomes leader only if nobody leads or queues now.
    pub fn try_campaign(&self) -> Result<Option<Guard>> {
        self.inner.try_acquire()
    }
}

/// Follows leader events (`elected`, `resigned`, `failover`) of any number of keys,
/// each on its key's server. `observe` on a key that has a leader is followed by an
/// `elected` event. Same background heartbeat as [`Subscriber`](super::Subscriber).
pub struct Observer {
    hub: PushHub,
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observer").finish_non_exhaustive()
    }
}

impl Observer {
    pub(crate) fn new(client: Client) -> Self {
        Observer {
            hub: PushHub::new(client),
        }
    }

    /// Starts observing `key`.
    pub fn observe(&mut self, key: &str) -> Result<()> {
        let index = self.hub.client().server_index(key);
        self.hub.request_ok(index, "observe", key, "")
    }

    /// Stops observing `key`.
    pub fn unobserve(&mut self, key: &str) -> Result<()> {
        let index = self.hub.client().server_index(key);
        self.hub.request_ok(index, "unobserve", key, "")
    }

    /// Blocks for the next leader event; `Err(Closed)` once a connection ended.
    pub fn recv(&mut self) -> Result<LeaderEvent> {
        loop {
            if let Some(Push::Leader(e)) = self.hub.recv(None)? {
                return Ok(e);
            }
        }
    }

    /// The next leader event within `timeout`; `Ok(None)` when none came.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<LeaderEvent>> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.hub.recv(Some(left))? {
                Some(Push::Leader(e)) => return Ok(Some(e)),
                Some(_) => continue,
                None => return Ok(None),
            }
        }
    }

    /// A blocking iterator; yields one `Err` when the connection ends, then stops.
    pub fn iter(&mut self) -> LeaderEvents<'_> {
        LeaderEvents {
            observer: self,
            done: false,
        }
    }
}

/// Iterator returned by [`Observer::iter`].
pub struct LeaderEvents<'a> {
    observer: &'a mut Observer,
    done: bool,
}

impl Iterator for LeaderEvents<'_> {
    type Item = Result<LeaderEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.observer.recv();
        self.done = item.is_err();
        Some(item)
    }
}
