//! `Session`: the commands that hold nothing on the server — counters, KV, lists,
//! `signal`, `ping`, `stats` — over at most one connection per server, opened on first
//! use and replaced when it was closed (for example by the server's idle timeout).
//!
//! The families' methods live next to their commands: `counter.rs`, `kv.rs`,
//! `list.rs`. A request is never retried after it was sent: `incr` must not count
//! twice.

use super::Client;
use super::conn::{Conn, check_value, encode_request};
use super::error::{Error, Result};
use super::reply::{expect_bare_ok, expect_ok, parse_field};
use std::time::{Duration, Instant};

/// See the module docs. Blocking pops park the server's connection for their timeout.
#[derive(Debug)]
pub struct Session {
    client: Client,
    conns: Vec<Option<Conn>>,
}

impl Session {
    pub(crate) fn new(client: Client) -> Self {
        let n = client.options().servers.len();
        Session {
            client,
            conns: (0..n).map(|_| None).collect(),
        }
    }

    /// The client this session was made from.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn conn(&mut self, index: usize) -> Result<&mut Conn> {
        let slot = self
            .conns
            .get_mut(index)
            .ok_or_else(|| Error::Invalid(format!("no server #{index}")))?;
        if slot.as_mut().is_some_and(|c| !c.is_reusable()) {
            *slot = None;
        }
        if slot.is_none() {
            *slot = Some(self.client.connect_server(index)?);
        }
        slot.as_mut().ok_or(Error::Closed)
    }

    /// Sends one request to `servers[index]` and returns the raw reply line. With
    /// `wait`, the reply may take that much longer (blocking commands).
    pub(crate) fn call_at(
        &mut self,
        index: usize,
        cmd: &str,
        key: &str,
        arg: &str,
        wait: Option<Duration>,
    ) -> Result<String> {
        // Refuse what cannot be sent before opening a connection for it.
        encode_request(cmd, key, arg)?;
        let conn = self.conn(index)?;
        let result = match wait {
            Some(w) => conn.request_wait(cmd, key, arg, w),
            None => conn.request(cmd, key, arg),
        };
        if matches!(&result, Err(e) if e.is_connection_error()) {
            self.conns[index] = None;
        }
        result
    }

    /// `call_at` on the server that owns `key`.
    pub(crate) fn call(&mut self, cmd: &str, key: &str, arg: &str) -> Result<String> {
        let index = self.client.server_index(key);
        self.call_at(index, cmd, key, arg, None)
    }

    /// `call` for a blocking command with a server-side timeout of `wait`.
    pub(crate) fn call_wait(
        &mut self,
        cmd: &str,
        key: &str,
        arg: &str,
        wait: Duration,
    ) -> Result<String> {
        let index = self.client.server_index(key);
        self.call_at(index, cmd, key, arg, Some(wait))
    }

    /// Pings every server; the first failure wins.
    pub fn ping(&mut self) -> Result<()> {
        for index in 0..self.conns.len() {
            self.ping_server(index)?;
        }
        Ok(())
    }

    /// Pings `servers[index]` and returns the round-trip time.
    pub fn ping_server(&mut self, index: usize) -> Result<Duration> {
        let start = Instant::now();
        let line = self.call_at(index, "ping", "_", "", None)?;
        expect_bare_ok(&line)?;
        Ok(start.elapsed())
    }

    /// The `stats` document of `servers[index]` (protocol.md §10).
    pub fn stats(&mut self, index: usize) -> Result<serde_json::Value> {
        serde_json::from_str(&self.stats_raw(index)?)
            .map_err(|e| Error::Protocol(format!("stats is not JSON: {e}")))
    }

    /// The `stats` document of `servers[index]` as the server sent it.
    pub fn stats_raw(&mut self, index: usize) -> Result<String> {
        let line = self.call_at(index, "stats", "_", "", None)?;
        expect_ok(&line).map(str::to_owned)
    }

    /// The `who` document of `key` (protocol.md §8.15) as the server sent
    /// it: holders (by fence, never token) and waiters in queue order.
    pub fn who_raw(&mut self, key: &str) -> Result<String> {
        let line = self.call("who", key, "")?;
        expect_ok(&line).map(str::to_owned)
    }

    /// Publishes `payload` on `channel` (on the channel's server). Returns the number
    /// of frames delivered (§8.12). `Rejected` for a channel with `*` or `>`.
    pub fn signal(&mut self, channel: &str, payload: &str) -> Result<u64> {
        check_value(payload)?;
        if payload.bytes().all(|b| b == b' ') {
            return Err(Error::Invalid("payload must not be only spaces".into()));
        }
        let line = self.call("signal", channel, payload)?;
        let rest = expect_ok(&line)?;
        parse_field(Some(rest), &line)
    }
}
