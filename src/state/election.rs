//! Leader election `elect resign observe unobserve` (protocol.md §8.8): an
//! exclusive lock in the lock key space whose observers and candidates receive
//! `leader elected|resigned|failover <key>` pushes.

use super::grant::{Ask, EndCause};
use super::memory::{self, Budget};
use super::resource::{Kind, Space};
use super::{Cx, Outcome, State, Via};
use crate::owner::OwnerId;
use crate::protocol::reply::{Reply, Status};
use std::collections::HashMap;

/// Subscribers of one election key.
#[derive(Debug, Default)]
struct Subs {
    observers: Vec<OwnerId>,
    candidates: Vec<OwnerId>,
}

/// Observers and candidates per key. Per-connection lists live in the
/// connection state so disconnect cleanup stays O(registrations).
///
/// Memory (§7.4a): a key is charged [`memory::election_key`] while it has
/// subscribers, and each observer or candidate [`memory::observer`] (its slot
/// here and its entry in the connection's own list, added and removed together).
#[derive(Debug, Default)]
pub struct Elections {
    keys: HashMap<Box<str>, Subs>,
}

impl Elections {
    /// Observers and candidates of `key`, each once (observers first), or None.
    pub fn subscribers(&self, key: &str) -> Option<Vec<OwnerId>> {
        let s = self.keys.get(key)?;
        let mut v = s.observers.clone();
        for c in &s.candidates {
            if !v.contains(c) {
                v.push(*c);
            }
        }
        Some(v)
    }

    fn entry(&mut self, key: &str, mem: &mut Budget) -> &mut Subs {
        if !self.keys.contains_key(key) {
            mem.charge(memory::election_key(key.len()));
            self.keys.insert(key.into(), Subs::default());
        }
        self.keys.get_mut(key).expect("inserted above")
    }

    fn prune(&mut self, key: &str, mem: &mut Budget) {
        if self
            .keys
            .get(key)
            .is_some_and(|s| s.observers.is_empty() && s.candidates.is_empty())
        {
            self.keys.remove(key);
            mem.credit(memory::election_key(key.len()));
        }
    }

    pub fn add_observer(&mut self, key: &str, conn: OwnerId, mem: &mut Budget) -> bool {
        let s = self.entry(key, mem);
        if s.observers.contains(&conn) {
            return false;
        }
        s.observers.push(conn);
        mem.charge(memory::observer(key.len()));
        true
    }

    pub fn remove_observer(&mut self, key: &str, conn: OwnerId, mem: &mut Budget) -> bool {
        let removed = self.keys.get_mut(key).is_some_and(|s| {
            let before = s.observers.len();
            s.observers.retain(|c| *c != conn);
            before != s.observers.len()
        });
        if removed {
            mem.credit(memory::observer(key.len()));
        }
        self.prune(key, mem);
        removed
    }

    pub fn add_candidate(&mut self, key: &str, conn: OwnerId, mem: &mut Budget) -> bool {
        let s = self.entry(key, mem);
        if s.candidates.contains(&conn) {
            return false;
        }
        s.candidates.push(conn);
        mem.charge(memory::observer(key.len()));
        true
    }

    pub fn remove_candidate(&mut self, key: &str, conn: OwnerId, mem: &mut Budget) -> bool {
        let removed = self.keys.get_mut(key).is_some_and(|s| {
            let before = s.candidates.len();
            s.candidates.retain(|c| *c != conn);
            before != s.candidates.len()
        });
        if removed {
            mem.credit(memory::observer(key.len()));
        }
        self.prune(key, mem);
        removed
    }

    /// (key, observers, candidates) sorted by key.
    pub fn sorted(&self) -> Vec<(&str, usize, &[OwnerId])> {
        let mut v: Vec<_> = self
            .keys
            .iter()
            .map(|(k, s)| (&**k, s.observers.len(), &s.candidates[..]))
            .collect();
        v.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        v
    }
}

impl State {
    pub(super) fn elect(
        &mut self,
        cx: &mut Cx,
        conn: OwnerId,
        key: &str,
        timeout_s: u64,
        lease: Option<u64>,
    ) -> Outcome {
        let ask = Ask {
            space: Space::Lock,
            kind: Kind::Exclusive,
            via: Via::Elect,
            lease_s: self.lease_or_default(lease),
        };
        // Register first so the new leader receives its own `elected` push.
        let added = self.elections.add_candidate(key, conn, &mut self.mem);
        let outcome = self.acquire(cx, conn, key, ask, timeout_s.saturating_mul(1000));
        let accepted = matches!(outcome, Outcome::Park | Outcome::Reply(Reply::Grant { .. }));
        if added {
            if accepted {
                if let Some(c) = self.conns.get_mut(conn) {
                    c.candidacies.push(key.into());
                }
            } else {
                self.elections.remove_candidate(key, conn, &mut self.mem);
            }
        }
        outcome
    }

    pub(super) fn resign(&mut self, cx: &mut Cx, conn: OwnerId, key: &str, token: &[u8]) -> Reply {
        self.end_candidacy(conn, key);
        self.release_token(cx, Space::Lock, key, token, EndCause::Resign, conn)
    }

    pub(super) fn end_candidacy(&mut self, conn: OwnerId, key: &str) {
        if self.elections.remove_candidate(key, conn, &mut self.mem) {
            if let Some(c) = self.conns.get_mut(conn) {
                c.candidacies.retain(|k| &**k != key);
            }
        }
    }

    pub(super) fn observe(&mut self, cx: &mut Cx, conn: OwnerId, key: &str) -> Reply {
        let already = self
            .elections
            .subscribers(key)
            .is_some_and(|s| s.contains(&conn))
            && self
                .conns
                .get(conn)
                .is_some_and(|c| c.observed.iter().any(|k| &**k == key));
        if !already {
            if !self.may_subscribe(conn) {
                return Status::ErrorMaxSubscriptions.into();
            }
            if let Err(s) = self.mem.admit() {
                return s.into();
            }
            self.elections.add_observer(key, conn, &mut self.mem);
            if let Some(c) = self.conns.get_mut(conn) {
                c.observed.push(key.into());
            }
        }
        if self.leader_of(key).is_some() {
            self.leader_event_to(cx, "elected", key, conn);
        }
        Reply::OK
    }

    /// `unobserve` also ends a candidacy (§8.8).
    pub(super) fn unobserve(&mut self, conn: OwnerId, key: &str) -> Reply {
        if self.elections.remove_observer(key, conn, &mut self.mem) {
            if let Some(c) = self.conns.get_mut(conn) {
                c.observed.retain(|k| &**k != key);
            }
        }
        self.end_candidacy(conn, key);
        Reply::OK
    }

    /// The connection holding `key` through `elect`, if any.
    pub(super) fn leader_of(&self, key: &str) -> Option<u64> {
        let r = self.table.get(self.table.find(Space::Lock, key)?)?;
        r.holders
            .iter()
            .find(|h| h.via == Via::Elect)
            .map(|h| h.owner_serial)
    }

    /// Disconnect: drop observations and candidacies.
    pub(super) fn drop_election_subs(&mut self, conn: OwnerId) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        let observed = std::mem::take(&mut c.observed);
        let candidacies = std::mem::take(&mut c.candidacies);
        for k in observed {
            self.elections.remove_observer(&k, conn, &mut self.mem);
        }
        for k in candidacies {
            self.elections.remove_candidate(&k, conn, &mut self.mem);
        }
    }
}
