//! Counters since start. The loop is single-threaded, so plain u64s suffice.

use serde_json::{Value, json};

#[derive(Debug, Default, Clone)]
pub struct Totals {
    pub connections_accepted: u64,
    pub connections_rejected: u64,
    pub commands: u64,
    pub grants: u64,
    pub acquire_timeouts: u64,
    pub lease_expirations: u64,
    pub kv_expirations: u64,
    pub signals_published: u64,
    pub signals_delivered: u64,
    pub slow_consumer_disconnects: u64,
    pub auth_failures: u64,
    /// Blocking requests refused with `error_deadlock` (§8.15).
    pub deadlocks_refused: u64,
}

impl Totals {
    pub fn to_json(&self) -> Value {
        json!({
            "connections_accepted": self.connections_accepted,
            "connections_rejected": self.connections_rejected,
            "commands": self.commands,
            "grants": self.grants,
            "acquire_timeouts": self.acquire_timeouts,
            "lease_expirations": self.lease_expirations,
            "kv_expirations": self.kv_expirations,
            "signals_published": self.signals_published,
            "signals_delivered": self.signals_delivered,
            "slow_consumer_disconnects": self.slow_consumer_disconnects,
            "auth_failures": self.auth_failures,
            "deadlocks_refused": self.deadlocks_refused,
        })
    }
}
