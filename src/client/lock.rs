//! Exclusive locks (`l r n e w`, protocol.md §8.4): one holder at a time, strict FIFO.

use super::Client;
use super::acquire::{Acquirer, Enqueued};
use super::error::Result;
use super::guard::{EXCLUSIVE, Guard};
use std::time::Duration;

/// An exclusive lock on one key. Cheap: it holds no connection until an acquire.
///
/// ```no_run
/// # fn main() -> dflockd::client::Result<()> {
/// use dflockd::client::Client;
/// use std::time::Duration;
/// let client = Client::single("127.0.0.1:6388")?;
/// let lock = client.lock("deploy").lease(Duration::from_secs(30));
/// let guard = lock.acquire(Duration::from_secs(10))?; // Err(Timeout) if not granted
/// println!("fence {}", guard.fence());
/// drop(guard); // releases
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Lock {
    inner: Acquirer,
}

impl Lock {
    pub(crate) fn new(client: Client, key: &str) -> Self {
        Lock {
            inner: Acquirer::new(client, key, &EXCLUSIVE, None),
        }
    }

    /// Asks for this lease (rounded up to whole seconds) instead of the server's
    /// default (33 s unless configured).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.inner.set_lease(lease);
        self
    }

    /// Asks the server for lease notices on the grant (protocol.md §8.15):
    /// the guard then offers them on [`Guard::lease_notices`], and an expiry
    /// marks it lost at once. Costs one `opt` request per acquire and a small
    /// watcher thread per guard.
    pub fn lease_notices(mut self) -> Self {
        self.inner.notices = true;
        self
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.inner.key
    }

    /// Acquires, waiting in the FIFO queue up to `timeout`. `Err(Timeout)` if not
    /// granted in time.
    pub fn acquire(&self, timeout: Duration) -> Result<Guard> {
        self.inner.acquire(timeout)
    }

    /// Acquires only if the lock is free and nobody queues: `Ok(None)` otherwise.
    pub fn try_acquire(&self) -> Result<Option<Guard>> {
        self.inner.try_acquire()
    }

    /// Two-phase acquire: takes a place in the queue now, wait later.
    pub fn enqueue(&self) -> Result<Enqueued> {
        self.inner.enqueue()
    }
}
