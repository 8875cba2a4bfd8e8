//! `who` (protocol.md §8.15; `GET /v1/keys/{key}/who`): the holders and the
//! waiters of a key, as one JSON line. Tokens are never shown: a holder is
//! named by its fence (the 16 hex characters that begin its tokens, which
//! grant nothing), its owner id and peer as `stats` shows them.
//!
//! Cost: O(holders + waiters) of that one key; each waiter's position is its
//! index in the FIFO walk.

use super::holders::Holder;
use super::resource::{Kind, Resource, Space};
use super::waiters::Waiter;
use super::{State, Via};
use crate::owner::OwnerId;
use crate::protocol::reply::Reply;
use serde::Serialize;

/// The document, members in the order of the spec's example.
#[derive(Serialize)]
struct Who<'a> {
    key: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    /// 1 for an exclusive lock or election, the semaphore's limit; `null`
    /// for a read-write lock (readers are unbounded) and a key not in use.
    limit: Option<u32>,
    holders: Vec<HolderDoc>,
    waiters: Vec<WaiterDoc>,
}

#[derive(Serialize)]
struct HolderDoc {
    owner: u64,
    peer: Option<String>,
    fence: String,
    mode: &'static str,
    /// `null` if the owner has gone (a hold kept without auto-release).
    held_s: Option<f64>,
    /// `null` for a Dreadlock hold, which has no lease.
    lease_remaining_s: Option<f64>,
}

#[derive(Serialize)]
struct WaiterDoc {
    owner: u64,
    peer: Option<String>,
    mode: &'static str,
    position: usize,
    waited_s: f64,
}

/// Milliseconds as seconds with millisecond precision.
fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

fn mode(kind: Kind, via: Via) -> &'static str {
    match (kind, via) {
        (_, Via::Read) => "read",
        (_, Via::Write) => "write",
        (Kind::Semaphore(_), _) => "permit",
        _ => "exclusive",
    }
}

impl State {
    /// `who` for `key`: the lock-space key if it is in use, else the
    /// semaphore of that name, else `type: none` with empty arrays.
    pub(super) fn who(&self, now: u64, key: &str) -> Reply {
        let in_use = |space| {
            self.table
                .find(space, key)
                .and_then(|i| Some((i, self.table.get(i)?)))
                .filter(|(_, r)| r.in_use())
        };
        let doc = match in_use(Space::Lock).or_else(|| in_use(Space::Sem)) {
            Some((res, r)) => self.who_doc(now, key, res, r),
            None => Who {
                key,
                kind: "none",
                limit: None,
                holders: Vec::new(),
                waiters: Vec::new(),
            },
        };
        match serde_json::to_string(&doc) {
            Ok(json) => Reply::Text(json.into()),
            Err(e) => {
                log::error!("who {key:?}: the document did not serialise: {e}");
                Reply::ERROR
            }
        }
    }

    fn who_doc<'a>(&self, now: u64, key: &'a str, res: u32, r: &Resource) -> Who<'a> {
        let election = r.holders.iter().any(|h| h.via == Via::Elect)
            || self
                .waiters
                .iter(&r.queue)
                .any(|w| self.waiters.get(w).is_some_and(|w| w.via == Via::Elect));
        let (kind, limit) = match r.kind {
            Kind::Exclusive if election => ("election", Some(1)),
            Kind::Exclusive => ("lock", Some(1)),
            Kind::ReadWrite => ("rw", None),
            Kind::Semaphore(n) => ("semaphore", Some(n)),
        };
        let holders = r
            .holders
            .iter()
            .map(|h| self.holder_doc(now, res, r.kind, h))
            .collect();
        let waiters = self
            .waiters
            .iter(&r.queue)
            .filter_map(|id| self.waiters.get(id))
            .enumerate()
            .map(|(i, w)| self.waiter_doc(now, r.kind, i + 1, w))
            .collect();
        Who {
            key,
            kind,
            limit,
            holders,
            waiters,
        }
    }

    fn holder_doc(&self, now: u64, res: u32, kind: Kind, h: &Holder) -> HolderDoc {
        let since = self
            .conns
            .get(h.owner)
            .and_then(|c| c.held_since(res, h.token.fence));
        HolderDoc {
            owner: h.owner_serial,
            peer: self.peer_name(h.owner),
            fence: format!("{:016x}", h.token.fence),
            mode: mode(kind, h.via),
            held_s: since.map(|s| secs(now.saturating_sub(s))),
            // Deadlines carry one extra millisecond so they never fire early
            // (`timer::deadline_after`); it is not part of the lease.
            lease_remaining_s: (h.via != Via::Dread)
                .then(|| secs(h.deadline.saturating_sub(now.saturating_add(1)))),
        }
    }

    fn waiter_doc(&self, now: u64, kind: Kind, position: usize, w: &Waiter) -> WaiterDoc {
        WaiterDoc {
            owner: w.conn_serial,
            peer: self.peer_name(w.conn),
            mode: mode(kind, w.via),
            position,
            waited_s: secs(now.saturating_sub(w.since)),
        }
    }

    /// `ip:port`, `http-session` for an HTTP session, `null` if unknown.
    fn peer_name(&self, owner: OwnerId) -> Option<String> {
        if owner.is_session() {
            return Some("http-session".into());
        }
        Some(self.conns.get(owner)?.peer?.to_string())
    }
}
