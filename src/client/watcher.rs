//! Key watches (`watch unwatch`, protocol.md §8.13). A pattern matches keys of every
//! key space, on any server, so each `watch` is registered on every server.

use super::Client;
use super::error::Result;
use super::push::PushHub;
use super::reply::{Push, WatchEvent};
use std::time::{Duration, Instant};

/// Receives `watch <event> <key>` events for its patterns, with the same background
/// heartbeat as [`Subscriber`](super::Subscriber).
pub struct Watcher {
    hub: PushHub,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher").finish_non_exhaustive()
    }
}

impl Watcher {
    pub(crate) fn new(client: Client) -> Self {
        Watcher {
            hub: PushHub::new(client),
        }
    }

    /// Watches a key or pattern. `Rejected` for an invalid pattern.
    pub fn watch(&mut self, pattern: &str) -> Result<()> {
        self.hub.request_all("watch", pattern, "")
    }

    /// Stops watching exactly this pattern.
    pub fn unwatch(&mut self, pattern: &str) -> Result<()> {
        self.hub.request_all("unwatch", pattern, "")
    }

    /// Sends `ping` on every connection now.
    pub fn ping(&mut self) -> Result<()> {
        self.hub.ping()
    }

    /// Blocks for the next event; `Err(Closed)` once a connection ended.
    pub fn recv(&mut self) -> Result<WatchEvent> {
        loop {
            if let Some(Push::Watch(e)) = self.hub.recv(None)? {
                return Ok(e);
            }
        }
    }

    /// The next event within `timeout`; `Ok(None)` when none came.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<WatchEvent>> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.hub.recv(Some(left))? {
                Some(Push::Watch(e)) => return Ok(Some(e)),
                Some(_) => continue,
                None => return Ok(None),
            }
        }
    }

    /// A blocking iterator; yields one `Err` when the connection ends, then stops.
    pub fn iter(&mut self) -> WatchEvents<'_> {
        WatchEvents {
            watcher: self,
            done: false,
        }
    }

    /// Why the connection ended, after `recv` returned `Err(Closed)`.
    pub fn close_reason(&self) -> Option<&str> {
        self.hub.close_reason()
    }
}

/// Iterator returned by [`Watcher::iter`].
pub struct WatchEvents<'a> {
    watcher: &'a mut Watcher,
    done: bool,
}

impl Iterator for WatchEvents<'_> {
    type Item = Result<WatchEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.watcher.recv();
        self.done = item.is_err();
        Some(item)
    }
}
