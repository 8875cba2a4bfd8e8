//! The `stats` document (protocol.md §10), rendered with serde_json.

use super::resource::{Kind, Space};
use super::{State, Via};
use crate::protocol::reply::Reply;
use serde_json::{Map, Value, json};

/// Seconds with millisecond precision, as JSON numbers.
fn secs(ms: u64) -> Value {
    json!(ms as f64 / 1000.0)
}

impl State {
    pub(super) fn stats_reply(&self, now: u64) -> Reply {
        Reply::Text(self.stats_json(now).to_string().into())
    }

    pub fn stats_json(&self, now: u64) -> Value {
        let mut locks = Vec::new();
        let mut rw_locks = Vec::new();
        let mut idle_locks = Vec::new();
        for (key, r) in self.table.sorted(Space::Lock) {
            if !r.in_use() {
                idle_locks.push(json!({"key": key, "idle_s": secs(now.saturating_sub(r.idle_since))}));
                continue;
            }
            let waiters = r.queue.len();
            if r.kind == Kind::ReadWrite {
                rw_locks.push(json!({
                    "key": key,
                    "readers": r.holders.iter().filter(|h| h.via == Via::Read).count(),
                    "writer": r.holders.iter().any(|h| h.via == Via::Write),
                    "fence": r.holders.iter().map(|h| h.token.fence).max().unwrap_or(0),
                    "waiters": waiters,
                }));
                continue;
            }
            let (owner, lease, fence) = match r.holders.first() {
                Some(h) if h.via == Via::Dread => (h.owner_serial, Value::Null, h.token.fence),
                Some(h) => (
                    h.owner_serial,
                    secs(h.deadline.saturating_sub(now)),
                    h.token.fence,
                ),
                None => (0, json!(0), 0),
            };
            locks.push(json!({
                "key": key, "owner_conn_id": owner, "lease_expires_in_s": lease,
                "waiters": waiters, "fence": fence,
            }));
        }
        let mut semaphores = Vec::new();
        let mut idle_semaphores = Vec::new();
        for (key, r) in self.table.sorted(Space::Sem) {
            if !r.in_use() {
                idle_semaphores.push(json!({"key": key, "idle_s": secs(now.saturating_sub(r.idle_since))}));
                continue;
            }
            let limit = match r.kind {
                Kind::Semaphore(l) => l,
                _ => 0,
            };
            semaphores.push(json!({
                "key": key, "limit": limit, "holders": r.holders.len(), "waiters": r.queue.len(),
            }));
        }
        let mut doc = Map::new();
        doc.insert("connections".into(), json!(self.view.connections));
        doc.insert("locks".into(), Value::Array(locks));
        doc.insert("semaphores".into(), Value::Array(semaphores));
        doc.insert("idle_locks".into(), Value::Array(idle_locks));
        doc.insert("idle_semaphores".into(), Value::Array(idle_semaphores));
        doc.insert("rw_locks".into(), Value::Array(rw_locks));
        for empty in [
            "elections",
            "counters",
            "kv_entries",
            "lists",
            "signal_channels",
            "watch_channels",
            "barriers",
        ] {
            doc.insert(empty.into(), Value::Array(Vec::new()));
        }
        doc.insert(
            "server".into(),
            json!({
                "version": env!("CARGO_PKG_VERSION"),
                "uptime_s": secs(now),
                "draining": self.view.draining,
                "http_sessions": 0,
                "totals": self.totals.to_json(),
            }),
        );
        Value::Object(doc)
    }
}
