//! Pub/sub subscriber (`listen unlisten`, protocol.md §8.12).
//!
//! A pattern can match channels that live on any server (a signal is published on its
//! channel's server), so every `listen` is registered on **every** server. Queue
//! groups stay exact: each signal is published on one server, whose rotation picks one
//! member.

use super::Client;
use super::error::{Error, Result};
use super::push::PushHub;
use super::reply::{Push, Signal};
use std::time::Duration;

/// Receives signals for the patterns it listens to. Pings every server it is
/// connected to every 15 s in the background (the idle-timeout heartbeat).
pub struct Subscriber {
    hub: PushHub,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber").finish_non_exhaustive()
    }
}

impl Subscriber {
    pub(crate) fn new(client: Client) -> Self {
        Subscriber {
            hub: PushHub::new(client),
        }
    }

    /// Subscribes to `pattern` (`*` = one token, `>` = the rest; §3.5), optionally as
    /// a member of queue group `group`. `Rejected` for an invalid pattern or group.
    pub fn listen(&mut self, pattern: &str, group: Option<&str>) -> Result<()> {
        let arg = group_arg(group)?;
        self.hub.request_all("listen", pattern, arg)
    }

    /// Removes exactly the (pattern, group) subscription named.
    pub fn unlisten(&mut self, pattern: &str, group: Option<&str>) -> Result<()> {
        let arg = group_arg(group)?;
        self.hub.request_all("unlisten", pattern, arg)
    }

    /// Sends `ping` on every connection now (the background heartbeat does this
    /// every 15 s anyway).
    pub fn ping(&mut self) -> Result<()> {
        self.hub.ping()
    }

    /// Blocks for the next signal. `Err(Closed)` once a connection ended. Blocks
    /// forever if nothing is subscribed.
    pub fn recv(&mut self) -> Result<Signal> {
        loop {
            if let Some(Push::Signal(s)) = self.hub.recv(None)? {
                return Ok(s);
            }
        }
    }

    /// The next signal within `timeout`; `Ok(None)` when none came.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<Signal>> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.hub.recv(Some(left))? {
                Some(Push::Signal(s)) => return Ok(Some(s)),
                Some(_) => continue,
                None => return Ok(None),
            }
        }
    }

    /// A blocking iterator over signals; it yields one `Err` when the connection
    /// ends, then stops.
    pub fn iter(&mut self) -> Signals<'_> {
        Signals {
            sub: self,
            done: false,
        }
    }

    /// The client this subscriber was made from.
    pub fn client(&self) -> &Client {
        self.hub.client()
    }

    /// Why the connection ended, after `recv` returned `Err(Closed)`.
    pub fn close_reason(&self) -> Option<&str> {
        self.hub.close_reason()
    }
}

fn group_arg(group: Option<&str>) -> Result<&str> {
    match group {
        None => Ok(""),
        Some(g) if !g.is_empty() && !g.contains([' ', '\t', '\r', '\n']) => Ok(g),
        Some(g) => Err(Error::Invalid(format!("group {g:?} must be one word"))),
    }
}

/// Iterator returned by [`Subscriber::iter`].
pub struct Signals<'a> {
    sub: &'a mut Subscriber,
    done: bool,
}

impl Iterator for Signals<'_> {
    type Item = Result<Signal>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.sub.recv();
        self.done = item.is_err();
        Some(item)
    }
}
