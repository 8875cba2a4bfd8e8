//! `Guard`: one held grant (lock, semaphore permit, read or write lock, leadership).
//!
//! A guard owns the connection its grant was made on and, unless renewal is off, a
//! renewal thread sharing that connection. Dropping the guard stops the thread,
//! releases the grant (best effort: errors are ignored) and closes the connection.
//! `release()` does the same and reports the server's answer.

use super::error::Result;
use super::lease_events::spawn_watcher;
use super::lost::{LostHandle, LostReason};
use super::renew::{Periodic, RenewTarget, SharedConn, interval, lock_conn, spawn_renewer};
use super::reply::{Grant, LeaseNotice, expect_bare_ok};
use super::{Client, lease_secs};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The command words of one family of grants.
#[derive(Debug)]
pub(crate) struct Family {
    pub acquire: &'static str,
    pub release: &'static str,
    pub renew: &'static str,
    pub enqueue: &'static str,
    pub wait: &'static str,
}

pub(crate) const EXCLUSIVE: Family = Family {
    acquire: "l",
    release: "r",
    renew: "n",
    enqueue: "e",
    wait: "w",
};
pub(crate) const SEMAPHORE: Family = Family {
    acquire: "sl",
    release: "sr",
    renew: "sn",
    enqueue: "se",
    wait: "sw",
};
pub(crate) const READ: Family = Family {
    acquire: "rl",
    release: "rr",
    renew: "rn",
    enqueue: "re",
    wait: "rw",
};
pub(crate) const WRITE: Family = Family {
    acquire: "wl",
    release: "wr",
    renew: "wn",
    enqueue: "we",
    wait: "ww",
};
/// Elections have no two-phase form; `enqueue`/`wait` are never sent for them.
pub(crate) const ELECTION: Family = Family {
    acquire: "elect",
    release: "resign",
    renew: "n",
    enqueue: "",
    wait: "",
};

/// A held grant. See the module docs for drop behaviour.
pub struct Guard {
    target: Arc<RenewTarget>,
    release_cmd: &'static str,
    fence: u64,
    renewer: Option<Periodic>,
    /// With lease notices: the watcher thread and, until taken, its channel.
    watcher: Option<Periodic>,
    notices: Mutex<Option<Receiver<LeaseNotice>>>,
    released: bool,
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("key", &self.target.key)
            .field("token", &self.target.token)
            .field("fence", &self.fence)
            .field("lost", &self.is_lost())
            .finish_non_exhaustive()
    }
}

impl Guard {
    /// Wraps a fresh grant made on `conn` and starts its renewal thread.
    pub(crate) fn start(
        client: &Client,
        conn: SharedConn,
        family: &'static Family,
        key: &str,
        grant: Grant,
    ) -> Result<Guard> {
        let target = Arc::new(RenewTarget {
            conn,
            cmd: family.renew,
            key: key.to_owned(),
            token: grant.token,
            lease_s: Arc::new(AtomicU64::new(grant.lease_s)),
            lost: LostHandle::new(),
        });
        let mut guard = Guard {
            target,
            release_cmd: family.release,
            fence: grant.fence,
            renewer: None,
            watcher: None,
            notices: Mutex::new(None),
            released: false,
        };
        if let Some(every) = interval(grant.lease_s, client.options().renew_ratio) {
            // On a spawn failure the guard is dropped here, which releases the grant.
            guard.renewer = Some(spawn_renewer(guard.target.clone(), every)?);
        }
        Ok(guard)
    }

    /// Starts forwarding this grant's lease notices (the connection must
    /// have `lease_notices` on; see `lease_events.rs`).
    pub(crate) fn watch_notices(mut self) -> Result<Guard> {
        let (watcher, rx) = spawn_watcher(self.target.clone(), self.fence)?;
        self.watcher = Some(watcher);
        self.notices = Mutex::new(Some(rx));
        Ok(self)
    }

    /// The channel of this grant's lease notices: `Expiring { remaining }`
    /// when 80% of a lease passed without a renewal ("your lock is about to
    /// expire"), `Expired` when the lease ran out and the slot was released
    /// ("your lock was lost"; `is_lost()` is then true and `on_lost`
    /// callbacks have run). `None` unless acquired with `lease_notices()`,
    /// or when already taken (there is one receiver).
    pub fn lease_notices(&self) -> Option<Receiver<LeaseNotice>> {
        self.notices.lock().ok()?.take()
    }

    /// Wraps a connection for `Guard::start` callers holding a plain `Conn`.
    pub(crate) fn share(conn: super::Conn) -> SharedConn {
        Arc::new(Mutex::new(conn))
    }

    /// The key this grant is for.
    pub fn key(&self) -> &str {
        &self.target.key
    }

    /// The token proving the grant (32 hex characters).
    pub fn token(&self) -> &str {
        &self.target.token
    }

    /// The fencing token: the token's first 16 hex characters as a u64, strictly
    /// increasing across grants (protocol.md §6.2). Pass it to downstream systems so
    /// they can reject writes from an older holder.
    pub fn fence(&self) -> u64 {
        self.fence
    }

    /// The current lease, as last granted or renewed.
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.target.lease_s.load(Ordering::SeqCst))
    }

    /// True once a renewal failed (lease expired, token no longer held, or the
    /// connection broke). The grant must then be treated as gone.
    pub fn is_lost(&self) -> bool {
        self.target.lost.is_lost()
    }

    /// A handle to the loss flag that outlives borrows of the guard (for another
    /// thread, or to `wait` on).
    pub fn lost_handle(&self) -> LostHandle {
        self.target.lost.clone()
    }

    /// Calls `f` once if the grant is lost (at once if it already is). `f` runs on the
    /// renewal thread just after `is_lost()` turns true (a waiter on the
    /// [`LostHandle`] may wake before it ran): keep it short and do not call back
    /// into this guard.
    pub fn on_lost<F>(&self, f: F)
    where
        F: FnOnce(&LostReason) + Send + 'static,
    {
        self.target.lost.on_lost(Box::new(f));
    }

    /// Renews now, with `lease` (rounded up to whole seconds) or the current lease.
    /// Returns the new lease. `LeaseExpired` or `Rejected` mean the grant is lost
    /// (and `is_lost()` turns true).
    pub fn renew(&self, lease: Option<Duration>) -> Result<Duration> {
        self.target
            .renew(lease.map(lease_secs))
            .map(Duration::from_secs)
    }

    /// Stops renewal and releases the grant. `Rejected` when the server no longer
    /// knows the token (for example after the lease expired).
    pub fn release(mut self) -> Result<()> {
        self.release_now()
    }

    fn release_now(&mut self) -> Result<()> {
        self.released = true;
        if let Some(mut renewer) = self.renewer.take() {
            renewer.stop();
        }
        if let Some(mut watcher) = self.watcher.take() {
            watcher.stop();
        }
        let line = lock_conn(&self.target.conn).request(
            self.release_cmd,
            &self.target.key,
            &self.target.token,
        )?;
        expect_bare_ok(&line)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.released {
            // Best effort: if the release fails the connection closes right after,
            // and the server releases on disconnect or at the lease's end.
            self.release_now().ok();
        }
    }
}
