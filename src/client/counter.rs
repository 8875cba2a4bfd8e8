//! Counters (`incr decr get cset`, protocol.md §8.9): signed 64-bit, absent reads 0.

use super::error::Result;
use super::reply::{expect_bare_ok, expect_ok, parse_field};
use super::session::Session;

impl Session {
    /// Adds `delta` (may be negative) and returns the new value. `Rejected` when the
    /// result would leave the i64 range (the value is unchanged).
    pub fn incr(&mut self, key: &str, delta: i64) -> Result<i64> {
        self.counter_op("incr", key, delta)
    }

    /// Subtracts `delta` and returns the new value. `Rejected` on overflow.
    pub fn decr(&mut self, key: &str, delta: i64) -> Result<i64> {
        self.counter_op("decr", key, delta)
    }

    /// The counter's value (0 when it does not exist).
    pub fn counter_get(&mut self, key: &str) -> Result<i64> {
        let line = self.call("get", key, "")?;
        let rest = expect_ok(&line)?;
        parse_field(Some(rest), &line)
    }

    /// Sets the counter.
    pub fn counter_set(&mut self, key: &str, value: i64) -> Result<()> {
        let line = self.call("cset", key, &value.to_string())?;
        expect_bare_ok(&line)
    }

    fn counter_op(&mut self, cmd: &str, key: &str, delta: i64) -> Result<i64> {
        let line = self.call(cmd, key, &delta.to_string())?;
        let rest = expect_ok(&line)?;
        parse_field(Some(rest), &line)
    }
}
