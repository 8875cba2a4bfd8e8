//! Barriers (`bwait`, protocol.md §8.14): `count` connections meet; any departure
//! cancels the barrier for everybody.

use super::conn::check_key;
use super::error::{Error, Result};
use super::reply::expect_bare_ok;
use super::{Client, timeout_secs};
use std::time::Duration;

/// An N-party barrier on one key. Every participant must give the same count
/// (`Err(BarrierCountMismatch)` otherwise).
#[derive(Debug, Clone)]
pub struct Barrier {
    client: Client,
    key: String,
    count: u32,
}

impl Barrier {
    pub(crate) fn new(client: Client, key: &str, count: u32) -> Self {
        Barrier {
            client,
            key: key.to_owned(),
            count,
        }
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Arrives and waits up to `timeout` for the others, on a connection of its own.
    /// `Ok(())` when the count was reached; `Err(Timeout)` when this wait timed out or
    /// another participant left. A zero timeout only completes an almost-full barrier.
    pub fn wait(&self, timeout: Duration) -> Result<()> {
        if self.count == 0 {
            return Err(Error::Invalid("barrier count must be at least 1".into()));
        }
        check_key(&self.key)?;
        let secs = timeout_secs(timeout);
        let mut conn = self.client.connect(&self.key)?;
        let arg = format!("{} {secs}", self.count);
        let line = conn.request_wait("bwait", &self.key, &arg, Duration::from_secs(secs))?;
        expect_bare_ok(&line)
    }
}
