//! Read-write locks (protocol.md §8.7): many readers or one writer, writer-preferring
//! FIFO. They share the lock key space with exclusive locks; a key in use as one type
//! refuses the other (`Err(TypeMismatch)`).

use super::Client;
use super::acquire::{Acquirer, Enqueued};
use super::error::Result;
use super::guard::{Guard, READ, WRITE};
use std::time::Duration;

/// A read-write lock on one key.
#[derive(Debug, Clone)]
pub struct RwLock {
    read: Acquirer,
    write: Acquirer,
}

impl RwLock {
    pub(crate) fn new(client: Client, key: &str) -> Self {
        RwLock {
            read: Acquirer::new(client.clone(), key, &READ, None),
            write: Acquirer::new(client, key, &WRITE, None),
        }
    }

    /// Asks for this lease (rounded up to whole seconds) for both modes.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.read.set_lease(lease);
        self.write.set_lease(lease);
        self
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.read.key
    }

    /// Takes a shared (read) hold, waiting up to `timeout`.
    pub fn read(&self, timeout: Duration) -> Result<Guard> {
        self.read.acquire(timeout)
    }

    /// Takes an exclusive (write) hold, waiting up to `timeout`.
    pub fn write(&self, timeout: Duration) -> Result<Guard> {
        self.write.acquire(timeout)
    }

    /// A read hold only if grantable on the spot.
    pub fn try_read(&self) -> Result<Option<Guard>> {
        self.read.try_acquire()
    }

    /// A write hold only if grantable on the spot.
    pub fn try_write(&self) -> Result<Option<Guard>> {
        self.write.try_acquire()
    }

    /// Two-phase read acquire (`re` then `rw`).
    pub fn enqueue_read(&self) -> Result<Enqueued> {
        self.read.enqueue()
    }

    /// Two-phase write acquire (`we` then `ww`).
    pub fn enqueue_write(&self) -> Result<Enqueued> {
        self.write.enqueue()
    }
}
