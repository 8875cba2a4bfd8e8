//! The `stats` document (protocol.md §10), rendered with serde_json.
//!
//! Beyond §10's members, each lock entry names its holder's peer
//! (`owner_peer`, `ip:port`, beside `owner_conn_id`) and every fence is also
//! given as the 16 hex characters that begin its tokens (`fence_hex`); each
//! election names its leader's peer (`leader_peer`). A peer is `null` when
//! there is no holder or its connection has closed. Clients ignore members
//! they do not know (§10), so these are additions only.

use super::resource::{Kind, Space};
use super::{State, Via};
use crate::owner::OwnerId;
use crate::protocol::reply::Reply;
use serde_json::{Map, Value, json};

/// Time left until a deadline, in seconds. Deadlines carry one extra
/// millisecond so they never fire early (`timer::deadline_after`); it is not
/// part of the lease or TTL the user asked for, so it is not shown.
fn remaining(deadline: u64, now: u64) -> Value {
    secs(deadline.saturating_sub(now.saturating_add(1)))
}

/// A fence as the 16 lowercase hex characters that begin its tokens (§6.1),
/// so a token in a client's log can be matched to its holder.
fn fence_hex(fence: u64) -> String {
    format!("{fence:016x}")
}

/// Seconds with millisecond precision, as JSON numbers.
fn secs(ms: u64) -> Value {
    json!(ms as f64 / 1000.0)
}

impl State {
    pub(super) fn stats_reply(&self, now: u64) -> Reply {
        Reply::Text(self.stats_json(now).to_string().into())
    }

    /// The `ip:port` of an owner's peer, or `null` when it is not known (the
    /// owner's connection has closed, e.g. a holder kept with
    /// `--no-auto-release-on-disconnect`).
    fn peer_json(&self, owner: OwnerId) -> Value {
        match self.conns.get(owner).and_then(|c| c.peer) {
            Some(p) => Value::String(p.to_string()),
            None => Value::Null,
        }
    }

    /// The leader's peer of an election key (see [`State::peer_json`]).
    fn leader_peer_json(&self, key: &str) -> Value {
        let leader = self
            .table
            .find(Space::Lock, key)
            .and_then(|r| self.table.get(r))
            .and_then(|r| r.holders.iter().find(|h| h.via == Via::Elect));
        match leader {
            Some(h) => self.peer_json(h.owner),
            None => Value::Null,
        }
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
                       "leader_peer": self.leader_peer_json(key),
                       "observers": observers, "candidates": waiting})
            })
            .collect()
    }

    /// `contention` (§8.15): the most-waited keys, most total wait first.
    /// Beyond the spec's members: `wait_total_s` (what they are ordered by),
    /// and the key's `waiters` now and `holder_age_s` (its longest current
    /// hold, 0 if none), which `dflockctl top` shows.
    fn contention_json(&self, now: u64) -> Value {
        self.contention
            .top()
            .into_iter()
            .map(|k| {
                let r = self
                    .table
                    .find(k.space, &k.key)
                    .and_then(|i| self.table.get(i));
                let waiters = r.map_or(0, |r| r.queue.len());
                let oldest = r
                    .and_then(|r| r.holders.iter().map(|h| h.granted_at).min())
                    .map_or(0, |t| now.saturating_sub(t));
                json!({"key": &*k.key, "type": k.ty.as_str(), "grants": k.grants,
                       "waits": k.waits, "wait_p50_s": k.wait.quantile_s(0.5),
                       "wait_p99_s": k.wait.quantile_s(0.99),
                       "hold_p99_s": k.hold.quantile_s(0.99),
                       "wait_total_s": secs(k.wait_total_ms),
                       "waiters": waiters, "holder_age_s": secs(oldest)})
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
                let fence = r.holders.iter().map(|h| h.token.fence).max().unwrap_or(0);
                rw_locks.push(json!({
                    "key": key,
                    "readers": r.holders.iter().filter(|h| h.via == Via::Read).count(),
                    "writer": r.holders.iter().any(|h| h.via == Via::Write),
                    "fence": fence,
                    "fence_hex": fence_hex(fence),
                    "waiters": waiters,
                }));
                continue;
            }
            let (owner, peer, lease, fence) = match r.holders.first() {
                Some(h) if h.via == Via::Dread => (
                    h.owner_serial,
                    self.peer_json(h.owner),
                    Value::Null,
                    h.token.fence,
                ),
                Some(h) => (
                    h.owner_serial,
                    self.peer_json(h.owner),
                    remaining(h.deadline, now),
                    h.token.fence,
                ),
                None => (0, Value::Null, json!(0), 0),
            };
            locks.push(json!({
                "key": key, "owner_conn_id": owner, "owner_peer": peer,
                "lease_expires_in_s": lease, "waiters": waiters,
                "fence": fence, "fence_hex": fence_hex(fence),
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
        doc.insert("contention".into(), self.contention_json(now));
        let mut totals = self.totals.to_json();
        if let Some(t) = totals.as_object_mut() {
            t.insert("max_memory_refusals".into(), json!(self.mem.refusals()));
        }
        let mut server = json!({
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_s": secs(now),
            "draining": self.view.draining,
            "http_sessions": self.view.http_sessions,
            "memory_used_bytes": self.mem.used(),
            "memory_budget_bytes": self.mem.limit(),
            "totals": totals,
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

#[cfg(test)]
mod tests {
    use super::super::fence::Fences;
    use super::super::{Cx, Outcome, State, StateConfig};
    use crate::owner::OwnerId;
    use crate::peer::PeerAddr;
    use crate::protocol::command::Command;
    use crate::protocol::reply::Reply;
    use crate::timer::wheel::Wheel;
    use serde_json::json;

    fn state() -> State {
        let cfg = StateConfig {
            auto_release: false,
            max_locks: 1024,
            ..StateConfig::unlimited()
        };
        State::new(cfg, Fences::open(None, 0).expect("fences without a file"))
    }

    fn apply(s: &mut State, wheel: &mut Wheel<crate::timer::Timer>, conn: OwnerId, cmd: Command) {
        let can_take = |_: OwnerId, _: usize| true;
        let mut out = Vec::new();
        let mut cx = Cx {
            now: 0,
            timers: wheel,
            out: &mut out,
            can_take: &can_take,
        };
        let o = s.apply(&mut cx, conn, cmd);
        assert!(matches!(o, Outcome::Reply(Reply::Grant { .. })), "{o:?}");
    }

    #[test]
    fn holders_are_named_by_peer_and_hex_fence() {
        let mut s = state();
        let mut wheel = Wheel::new(0);
        let a = OwnerId::conn(0, 0);
        let peer: PeerAddr = "10.1.2.3:40231"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into();
        s.on_connect_from(a, 7, peer);
        let lock = |key: &str| Command::Lock {
            key: key.into(),
            timeout: 0,
            lease: None,
        };
        apply(&mut s, &mut wheel, a, lock("job"));
        apply(
            &mut s,
            &mut wheel,
            a,
            Command::Elect {
                key: "leader".into(),
                timeout: 0,
                lease: None,
            },
        );
        let doc = s.stats_json(0);
        let find = |doc: &serde_json::Value, section: &str, key: &str| {
            doc[section]
                .as_array()
                .and_then(|a| a.iter().find(|e| e["key"] == key).cloned())
                .unwrap_or_else(|| panic!("no {key} in {section}: {doc}"))
        };
        let job = find(&doc, "locks", "job");
        assert_eq!(job["key"], "job");
        assert_eq!(job["owner_conn_id"], 7);
        assert_eq!(job["owner_peer"], "10.1.2.3:40231");
        let fence = job["fence"].as_u64().unwrap();
        assert_eq!(job["fence_hex"], format!("{fence:016x}"));
        assert_eq!(job["fence_hex"].as_str().unwrap().len(), 16);
        let elected = find(&doc, "locks", "leader");
        assert_eq!(elected["owner_peer"], "10.1.2.3:40231");
        let election = find(&doc, "elections", "leader");
        assert_eq!(election["leader_conn_id"], 7);
        assert_eq!(election["leader_peer"], "10.1.2.3:40231");
        // A holder whose connection has gone (auto-release off) has no known peer.
        s.on_disconnect(
            &mut Cx {
                now: 0,
                timers: &mut wheel,
                out: &mut Vec::new(),
                can_take: &|_: OwnerId, _: usize| true,
            },
            a,
        );
        let doc = s.stats_json(0);
        let job = find(&doc, "locks", "job");
        assert_eq!(job["owner_conn_id"], 7);
        assert_eq!(job["owner_peer"], json!(null));
    }
}
