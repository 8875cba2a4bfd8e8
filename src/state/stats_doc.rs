//! The `stats` document (protocol.md §10), rendered with serde_json.

use super::resource::{Kind, Space};
use super::{State, Via};
use crate::protocol::reply::Reply;
use serde_json::{Map, Value, json};

/// Time left until a deadline, in seconds. Deadlines carry one extra
/// millisecond so they never fire early (`timer::deadline_after`); it is not
/// part of the lease or TTL the user asked for, so it is not shown.
fn remaining(deadline: u64, now: u64) -> Value {
    secs(deadline.saturating_sub(now.saturating_add(1)))
}

/// Seconds with millisecond precision, as JSON numbers.
fn secs(ms: u64) -> Value {
    json!(ms as f64 / 1000.0)
}

impl State {
    pub(super) fn stats_reply(&self, now: u64) -> Reply {
        Reply::Text(self.stats_json(now).to_string().into())
    }

    fn elections_json(&self) -> Value {
        self.elections
            .sorted()
            .into_iter()
            .map(|(key, observers, candidates)| {
                let leader = self.leader_of(key);
                let waiting = candidates
                    .iter()
                    .filter(|c| {
                        self.conns
                            .get(**c)
                            .is_none_or(|cs| Some(cs.serial) != leader)
                    })
                    .count();
                json!({"key": key, "leader_conn_id": leader.unwrap_or(0),
                       "observers": observers, "candidates": waiting})
            })
            .collect()
    }

    pub fn stats_json(&self, now: u64) -> Value {
        let mut locks = Vec::new();
        let mut rw_locks = Vec::new();
        let mut idle_locks = Vec::new();
        for (key, r) in self.table.sorted(Space::Lock) {
            if !r.in_use() {
                idle_locks
                    .push(json!({"key": key, "idle_s": secs(now.saturating_sub(r.idle_since))}));
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
                Some(h) => (h.owner_serial, remaining(h.deadline, now), h.token.fence),
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
                idle_semaphores
                    .push(json!({"key": key, "idle_s": secs(now.saturating_sub(r.idle_since))}));
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
        doc.insert("elections".into(), self.elections_json());
        let mut counters: Vec<_> = self.counters.iter().collect();
        counters.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        doc.insert(
            "counters".into(),
            counters
                .into_iter()
                .map(|(k, c)| json!({"key": k, "value": c.value, "idle_s": secs(now.saturating_sub(c.changed))}))
                .collect(),
        );
        doc.insert(
            "kv_entries".into(),
            self.kv
                .sorted()
                .into_iter()
                .map(|e| {
                    json!({
                        "key": &*e.name, "value_len": e.value.len(),
                        "ttl": e.ttl.map_or(Value::Null, |(_, d)| remaining(d, now)),
                        "idle_s": secs(now.saturating_sub(e.written)),
                    })
                })
                .collect(),
        );
        let mut lists: Vec<_> = self.lists.iter().collect();
        lists.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        doc.insert(
            "lists".into(),
            lists
                .into_iter()
                .map(|(k, l)| {
                    json!({"key": k, "len": l.items.len(), "pop_waiters": l.poppers.len(),
                           "idle_s": secs(now.saturating_sub(l.touched))})
                })
                .collect(),
        );
        doc.insert(
            "signal_channels".into(),
            self.pubsub
                .stats()
                .into_iter()
                .map(|(pattern, group, n)| match group {
                    Some(g) => json!({"pattern": pattern, "group": g, "listeners": n}),
                    None => json!({"pattern": pattern, "listeners": n}),
                })
                .collect(),
        );
        doc.insert(
            "watch_channels".into(),
            self.watches
                .stats()
                .into_iter()
                .map(|(pattern, n)| json!({"pattern": pattern, "watchers": n}))
                .collect(),
        );
        let mut barriers: Vec<_> = self.barriers.iter().collect();
        barriers.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        doc.insert(
            "barriers".into(),
            barriers
                .into_iter()
                .map(|(k, b)| {
                    json!({"key": k, "count": b.count, "participants": b.waiting.len(),
                           "idle_s": secs(now.saturating_sub(b.touched))})
                })
                .collect(),
        );
        let mut server = json!({
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_s": secs(now),
            "draining": self.view.draining,
            "http_sessions": self.view.http_sessions,
            "totals": self.totals.to_json(),
        });
        if let (Some(tls), Some(obj)) = (&self.view.tls, server.as_object_mut()) {
            // Only with TLS on, so documents of servers without TLS are unchanged.
            obj.insert(
                "tls".into(),
                json!({
                    "handshakes_completed": tls.handshakes_completed,
                    "handshakes_failed": tls.handshakes_failed,
                    "cert_not_after": tls.cert_not_after.map(crate::net::x509::rfc3339),
                    "cert_not_after_unix": tls.cert_not_after,
                    "client_auth": tls.client_auth,
                }),
            );
        }
        doc.insert("server".into(), server);
        Value::Object(doc)
    }
}
