//! Key-value store (`kset kget kdel kcas`, protocol.md §8.10): string values without
//! TAB, CR or LF, with an optional TTL in whole seconds.

use super::conn::check_value;
use super::error::Result;
use super::reply::{expect_bare_ok, failure, split_status};
use super::session::Session;
use super::timeout_secs;
use std::time::Duration;

impl Session {
    /// Sets `key` to `value` without expiry (an earlier TTL is removed).
    pub fn kv_set(&mut self, key: &str, value: &str) -> Result<()> {
        self.kv_set_ttl(key, value, None)
    }

    /// Sets `key` to `value`, expiring after `ttl` (rounded up to whole seconds;
    /// `None` or zero = no expiry).
    pub fn kv_set_ttl(&mut self, key: &str, value: &str, ttl: Option<Duration>) -> Result<()> {
        check_value(value)?;
        let arg = match ttl.map(timeout_secs) {
            Some(secs) if secs > 0 => format!("{value}\t{secs}"),
            _ => value.to_owned(),
        };
        let line = self.call("kset", key, &arg)?;
        expect_bare_ok(&line)
    }

    /// The value of `key`, verbatim; `None` when absent or expired.
    pub fn kv_get(&mut self, key: &str) -> Result<Option<String>> {
        let line = self.call("kget", key, "")?;
        match split_status(&line) {
            ("ok", value) => Ok(Some(value.to_owned())),
            ("nil", _) => Ok(None),
            _ => Err(failure(&line)),
        }
    }

    /// Deletes `key` (also fine when absent).
    pub fn kv_del(&mut self, key: &str) -> Result<()> {
        let line = self.call("kdel", key, "")?;
        expect_bare_ok(&line)
    }

    /// Compare-and-swap: sets `new` (with `ttl`) only if the current value is `old`,
    /// or — with `old` `None` — only if the key does not exist. `Ok(false)` on a
    /// conflict.
    pub fn kv_cas(
        &mut self,
        key: &str,
        old: Option<&str>,
        new: &str,
        ttl: Option<Duration>,
    ) -> Result<bool> {
        check_value(new)?;
        let old = old.unwrap_or("");
        if !old.is_empty() {
            check_value(old)?;
        }
        let secs = ttl.map(timeout_secs).unwrap_or(0);
        let line = self.call("kcas", key, &format!("{old}\t{new}\t{secs}"))?;
        match split_status(&line) {
            ("ok", _) => Ok(true),
            ("cas_conflict", _) => Ok(false),
            _ => Err(failure(&line)),
        }
    }
}
