//! Lists (`lpush rpush lpop rpop llen lrange blpop brpop`, protocol.md §8.11).
//! Blocking pops park this session's connection to the list's server.

use super::conn::check_value;
use super::error::{Error, Result};
use super::reply::{expect_ok, failure, parse_field, split_status};
use super::session::Session;
use super::timeout_secs;
use std::time::Duration;

impl Session {
    /// Adds `value` at the head; returns the length after (0 when it was handed
    /// straight to a blocked popper).
    pub fn lpush(&mut self, key: &str, value: &str) -> Result<u64> {
        self.push("lpush", key, value)
    }

    /// Adds `value` at the tail; returns the length after.
    pub fn rpush(&mut self, key: &str, value: &str) -> Result<u64> {
        self.push("rpush", key, value)
    }

    /// Takes the head; `None` when the list is empty.
    pub fn lpop(&mut self, key: &str) -> Result<Option<String>> {
        let line = self.call("lpop", key, "")?;
        value_or_nil(&line)
    }

    /// Takes the tail; `None` when the list is empty.
    pub fn rpop(&mut self, key: &str) -> Result<Option<String>> {
        let line = self.call("rpop", key, "")?;
        value_or_nil(&line)
    }

    /// Takes the head, waiting up to `timeout` (rounded up to whole seconds; zero
    /// never blocks) for a value; `None` when none came.
    pub fn blpop(&mut self, key: &str, timeout: Duration) -> Result<Option<String>> {
        self.blocking_pop("blpop", key, timeout)
    }

    /// Takes the tail, waiting up to `timeout` for a value.
    pub fn brpop(&mut self, key: &str, timeout: Duration) -> Result<Option<String>> {
        self.blocking_pop("brpop", key, timeout)
    }

    /// The list's length (0 when absent).
    pub fn llen(&mut self, key: &str) -> Result<u64> {
        let line = self.call("llen", key, "")?;
        let rest = expect_ok(&line)?;
        parse_field(Some(rest), &line)
    }

    /// Items `start` through `stop` inclusive, Redis-style (negative indexes count
    /// from the end: `lrange(k, 0, -1)` is the whole list).
    pub fn lrange(&mut self, key: &str, start: i64, stop: i64) -> Result<Vec<String>> {
        let line = self.call("lrange", key, &format!("{start} {stop}"))?;
        let json = expect_ok(&line)?;
        serde_json::from_str(json).map_err(|e| {
            Error::Protocol(format!("lrange reply is not a JSON array of strings: {e}"))
        })
    }

    fn push(&mut self, cmd: &str, key: &str, value: &str) -> Result<u64> {
        check_value(value)?;
        let line = self.call(cmd, key, value)?;
        let rest = expect_ok(&line)?;
        parse_field(Some(rest), &line)
    }

    fn blocking_pop(&mut self, cmd: &str, key: &str, timeout: Duration) -> Result<Option<String>> {
        let secs = timeout_secs(timeout);
        let line = self.call_wait(cmd, key, &secs.to_string(), Duration::from_secs(secs))?;
        value_or_nil(&line)
    }
}

fn value_or_nil(line: &str) -> Result<Option<String>> {
    match split_status(line) {
        ("ok", value) => Ok(Some(value.to_owned())),
        ("nil", _) => Ok(None),
        _ => Err(failure(line)),
    }
}
