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
    /// The breakdowns `/metrics` labels (http.md §9); not in `stats`.
    pub by_label: ByLabel,
}

/// Label values of `dflockd_connections_accepted_total{listener}`, in the
/// order of [`ByLabel::accepted`].
pub const LISTENER_LABELS: [&str; 3] = ["tcp", "dreadlock", "http"];
/// `dflockd_connections_rejected_total{reason}`, the flag that refused.
pub const REJECT_LABELS: [&str; 4] = [
    "max_connections",
    "max_connections_per_ip",
    "http_max_connections_per_ip",
    "max_unauthenticated_connections",
];
/// `dflockd_grants_total{kind}`, indexed by `state::Via as usize`.
pub const GRANT_LABELS: [&str; 6] = [
    "lock",
    "semaphore",
    "read",
    "write",
    "election",
    "dreadlock",
];
/// `dflockd_push_frames_total{kind}`: the frame's reserved prefix (§2.3).
pub const PUSH_LABELS: [&str; 4] = ["sig", "watch", "leader", "lease"];

/// Counters broken down by a label. Arrays indexed by the label constants
/// above, so counting is an index, not a lookup; commands are keyed by the
/// command's `&'static str` wire name (a short map, read only by `/metrics`).
#[derive(Debug, Default, Clone)]
pub struct ByLabel {
    pub accepted: [u64; LISTENER_LABELS.len()],
    pub rejected: [u64; REJECT_LABELS.len()],
    pub grants: [u64; GRANT_LABELS.len()],
    pub push_frames: [u64; PUSH_LABELS.len()],
    /// TCP requests executed, by wire name ("lock"/"unlock" for Dreadlock).
    pub commands: std::collections::BTreeMap<&'static str, u64>,
    /// TCP requests that did not parse.
    pub invalid_commands: u64,
}

impl ByLabel {
    /// Count one TCP request executed.
    pub fn command(&mut self, name: &'static str) {
        *self.commands.entry(name).or_insert(0) += 1;
    }

    /// Count one push frame (or SSE event) queued, by its prefix.
    pub fn push_frame(&mut self, frame: &[u8]) {
        let kind = if frame.starts_with(b"sig ") {
            0
        } else if frame.starts_with(b"watch ") {
            1
        } else if frame.starts_with(b"leader ") {
            2
        } else if frame.starts_with(b"lease ") {
            3
        } else {
            return;
        };
        self.push_frames[kind] += 1;
    }

    /// The label value for a command's wire name: Dreadlock's `lock` and
    /// `unlock` are told apart from the line protocol's `l` and `r`.
    pub fn command_label(name: &str) -> &str {
        match name {
            "lock" => "dreadlock_lock",
            "unlock" => "dreadlock_unlock",
            other => other,
        }
    }
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
