//! Semaphores (`sl sr sn se sw`, protocol.md §8.5): up to `limit` holders at once,
//! each with its own token and lease, in their own key space.

use super::Client;
use super::acquire::{Acquirer, Enqueued};
use super::error::Result;
use super::guard::{Guard, SEMAPHORE};
use std::time::Duration;

/// A counting semaphore on one key. Every user of the key must give the same limit
/// while it is in use (`Err(LimitMismatch)` otherwise).
#[derive(Debug, Clone)]
pub struct Semaphore {
    inner: Acquirer,
}

impl Semaphore {
    pub(crate) fn new(client: Client, key: &str, limit: u32) -> Self {
        Semaphore {
            inner: Acquirer::new(client, key, &SEMAPHORE, Some(limit)),
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

    /// The number of permits.
    pub fn limit(&self) -> u32 {
        self.inner.limit.unwrap_or(1)
    }

    /// Takes a permit, waiting up to `timeout`. `Err(Timeout)` if none came.
    pub fn acquire(&self, timeout: Duration) -> Result<Guard> {
        self.inner.acquire(timeout)
    }

    /// Takes a permit only if one is free and nobody queues.
    pub fn try_acquire(&self) -> Result<Option<Guard>> {
        self.inner.try_acquire()
    }

    /// Two-phase acquire (`se` then `sw`).
    pub fn enqueue(&self) -> Result<Enqueued> {
        self.inner.enqueue()
    }
}
