//! The acquire paths every lock-like family shares: blocking acquire with a timeout,
//! try-acquire, and the two-phase enqueue/wait of protocol.md §8.6.
//!
//! Each attempt opens a fresh connection to the key's server. A grant hands that
//! connection to its `Guard`; a timeout or error closes it, which also takes any
//! waiter it left out of the server's queue (§4.4).

use super::conn::{Conn, check_key};
use super::error::{Error, Result};
use super::guard::{Family, Guard};
use super::reply::{expect_bare_ok, failure, parse_grant, split_status};
use super::{Client, lease_secs, timeout_secs};
use std::fmt;
use std::time::Duration;

/// Key, lease and family of one lock-like object.
#[derive(Clone)]
pub(crate) struct Acquirer {
    pub client: Client,
    pub key: String,
    pub lease_s: Option<u64>,
    pub family: &'static Family,
    /// The semaphore limit (semaphores only).
    pub limit: Option<u32>,
    /// Ask for lease notices (`opt lease_notices on` before the request).
    pub notices: bool,
}

impl fmt::Debug for Acquirer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquirer")
            .field("key", &self.key)
            .field("lease_s", &self.lease_s)
            .field("family", &self.family.acquire)
            .field("limit", &self.limit)
            .finish()
    }
}

impl Acquirer {
    pub fn new(client: Client, key: &str, family: &'static Family, limit: Option<u32>) -> Self {
        Acquirer {
            client,
            key: key.to_owned(),
            lease_s: None,
            family,
            limit,
            notices: false,
        }
    }

    /// A connection to the key's server, with lease notices on if asked.
    fn connect(&self) -> Result<Conn> {
        let mut conn = self.client.connect(&self.key)?;
        if self.notices {
            expect_bare_ok(&conn.request("opt", "lease_notices", "on")?)?;
        }
        Ok(conn)
    }

    /// A fresh guard, watching for notices if asked.
    fn guard(&self, conn: Conn, grant: super::reply::Grant) -> Result<Guard> {
        let guard = Guard::start(
            &self.client,
            Guard::share(conn),
            self.family,
            &self.key,
            grant,
        )?;
        if self.notices {
            guard.watch_notices()
        } else {
            Ok(guard)
        }
    }

    pub fn set_lease(&mut self, lease: Duration) {
        self.lease_s = Some(lease_secs(lease));
    }

    /// The fields after the timeout: `[<limit>] [<lease>]`, each with a leading space.
    fn tail(&self) -> String {
        let mut tail = String::new();
        if let Some(limit) = self.limit {
            tail.push_str(&format!(" {limit}"));
        }
        if let Some(lease) = self.lease_s {
            tail.push_str(&format!(" {lease}"));
        }
        tail
    }

    /// Acquires, waiting up to `timeout` (rounded up to whole seconds; zero = try).
    /// `Err(Timeout)` when not granted in time.
    pub fn acquire(&self, timeout: Duration) -> Result<Guard> {
        let secs = timeout_secs(timeout);
        let arg = format!("{secs}{}", self.tail());
        check_key(&self.key)?;
        let mut conn = self.connect()?;
        let line = conn.request_wait(
            self.family.acquire,
            &self.key,
            &arg,
            Duration::from_secs(secs),
        )?;
        match split_status(&line) {
            ("ok", rest) => {
                let grant = parse_grant(rest, &line)?;
                self.guard(conn, grant)
            }
            _ => Err(failure(&line)),
        }
    }

    /// A non-blocking attempt: `Ok(None)` when the key is not free right now.
    pub fn try_acquire(&self) -> Result<Option<Guard>> {
        match self.acquire(Duration::ZERO) {
            Ok(guard) => Ok(Some(guard)),
            Err(Error::Timeout) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Joins the queue without waiting (`e`, `se`, `re`, `we`).
    pub fn enqueue(&self) -> Result<Enqueued> {
        let tail = self.tail();
        let arg = tail.trim_start();
        check_key(&self.key)?;
        let mut conn = self.connect()?;
        let line = conn.request(self.family.enqueue, &self.key, arg)?;
        match split_status(&line) {
            ("acquired", rest) => {
                let grant = parse_grant(rest, &line)?;
                Ok(Enqueued::Acquired(self.guard(conn, grant)?))
            }
            ("queued", _) => Ok(Enqueued::Queued(Pending {
                acquirer: self.clone(),
                conn,
            })),
            _ => Err(failure(&line)),
        }
    }
}

/// The outcome of a two-phase enqueue.
#[derive(Debug)]
pub enum Enqueued {
    /// Granted on the spot: the grant is held (and renewed) already.
    Acquired(Guard),
    /// In the queue: call [`Pending::wait`]. The place is kept while the `Pending`
    /// lives; dropping it leaves the queue (its connection closes).
    Queued(Pending),
}

impl Enqueued {
    /// Waits for the grant if queued; returns the guard either way.
    pub fn wait(self, timeout: Duration) -> Result<Guard> {
        match self {
            Enqueued::Acquired(guard) => Ok(guard),
            Enqueued::Queued(pending) => pending.wait(timeout),
        }
    }
}

/// A queued two-phase enqueue, holding its connection (and so its place).
#[derive(Debug)]
pub struct Pending {
    acquirer: Acquirer,
    conn: Conn,
}

impl Pending {
    /// The key queued for.
    pub fn key(&self) -> &str {
        &self.acquirer.key
    }

    /// Waits up to `timeout` (zero = only check) for the grant. The lease starts now.
    /// `Err(Timeout)` when not granted in time (the place in the queue is given up);
    /// `Err(LeaseExpired)` when the grant came and expired before this wait.
    pub fn wait(mut self, timeout: Duration) -> Result<Guard> {
        let a = &self.acquirer;
        let secs = timeout_secs(timeout);
        let line = self.conn.request_wait(
            a.family.wait,
            &a.key,
            &secs.to_string(),
            Duration::from_secs(secs),
        )?;
        match split_status(&line) {
            ("ok", rest) => {
                let grant = parse_grant(rest, &line)?;
                a.guard(self.conn, grant)
            }
            _ => Err(failure(&line)),
        }
    }
}
