//! A read-only snapshot of the lock table and of the owner index, as plain
//! data: every lock-space and semaphore key with its holders, its FIFO queue
//! and its memory of expired tokens, and every owner with what it holds, has
//! enqueued and is parked on.
//!
//! Nothing in the server reads this; it exists so that tests outside the
//! crate can check invariants over the whole state after every step without
//! reaching into private fields (the model checker in `tests/model_state.rs`
//! hashes an abstraction of it). Taking a snapshot is O(keys + waiters +
//! owners) and allocates: never call it on a hot path.

use super::fence::Token;
use super::owner::{EnqState, Parked};
use super::resource::{Kind, Space};
use super::{State, Via};
use crate::owner::OwnerId;

/// The lock table and owner index at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockSnapshot {
    /// Every key of both spaces, sorted by (space, name); idle keys included.
    pub resources: Vec<ResourceView>,
    /// Every live owner (connections, then sessions), by slot.
    pub owners: Vec<OwnerView>,
    /// Waiters allocated in the shared waiter slab, over all queues. Equal
    /// to the sum of the queue lengths unless a waiter leaked.
    pub waiter_slots: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceView {
    pub space: Space,
    pub key: Box<str>,
    pub kind: Kind,
    /// Sorted by fence.
    pub holders: Vec<HolderView>,
    /// In FIFO order, head first.
    pub queue: Vec<WaiterView>,
    /// The tokens whose lease expired that the key still remembers (§6.5).
    pub expired: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolderView {
    pub owner: OwnerId,
    pub token: Token,
    pub via: Via,
    /// Lease deadline in ms (`u64::MAX` for a Dreadlock hold).
    pub deadline: u64,
    /// A lease timer is armed for this holder.
    pub has_timer: bool,
    /// Granted through a two-phase enqueue whose wait has not come yet.
    pub two_phase: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaiterView {
    /// Slot in the shared waiter slab (what `OwnerView` refers to).
    pub id: u32,
    pub owner: OwnerId,
    pub via: Via,
    pub two_phase: bool,
    pub parked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerView {
    pub id: OwnerId,
    pub parked: Option<ParkedView>,
    /// (space, key, fence) of every slot the owner holds.
    pub holds: Vec<(Space, Box<str>, u64)>,
    pub enqueues: Vec<EnqueueView>,
    pub dread_holds: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParkedView {
    /// Parked on lock-table waiter `waiter`; `timer` says whether its timeout is armed.
    Waiter {
        waiter: u32,
        timer: bool,
    },
    Pop {
        key: Box<str>,
    },
    Barrier {
        key: Box<str>,
    },
}

/// Two-phase state of one (owner, space, key) (§8.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnqueueView {
    pub space: Space,
    pub key: Box<str>,
    pub via: Via,
    /// The queued waiter, while not yet granted.
    pub queued: Option<u32>,
    /// The grant's token, once granted (until the wait consumes it).
    pub granted: Option<Token>,
}

impl State {
    /// A snapshot of the lock table and the owner index (see the module docs).
    pub fn lock_snapshot(&self) -> LockSnapshot {
        let mut resources = Vec::new();
        for space in [Space::Lock, Space::Sem] {
            for (key, r) in self.table.sorted(space) {
                resources.push(ResourceView {
                    space,
                    key: key.into(),
                    kind: r.kind,
                    holders: r
                        .holders
                        .iter()
                        .map(|h| HolderView {
                            owner: h.owner,
                            token: h.token,
                            via: h.via,
                            deadline: h.deadline,
                            has_timer: h.timer.is_some(),
                            two_phase: h.two_phase,
                        })
                        .collect(),
                    queue: self
                        .waiters
                        .iter(&r.queue)
                        .filter_map(|id| {
                            let w = self.waiters.get(id)?;
                            Some(WaiterView {
                                id,
                                owner: w.conn,
                                via: w.via,
                                two_phase: w.two_phase,
                                parked: w.parked,
                            })
                        })
                        .collect(),
                    expired: r.expired_tokens().collect(),
                });
            }
        }
        let owners = self
            .conns
            .iter()
            .map(|c| OwnerView {
                id: c.id,
                parked: c.parked.as_ref().map(|p| match p {
                    Parked::Waiter { waiter, timer } => ParkedView::Waiter {
                        waiter: *waiter,
                        timer: timer.is_some(),
                    },
                    Parked::Pop { key } => ParkedView::Pop { key: key.clone() },
                    Parked::Barrier { key } => ParkedView::Barrier { key: key.clone() },
                }),
                holds: c
                    .holds
                    .iter()
                    .filter_map(|h| {
                        let r = self.table.get(h.res)?;
                        Some((r.space, Box::from(&*r.name), h.fence))
                    })
                    .collect(),
                enqueues: c
                    .enqueues
                    .iter()
                    .map(|e| EnqueueView {
                        space: e.space,
                        key: e.key.clone(),
                        via: e.via,
                        queued: match e.state {
                            EnqState::Queued { waiter } => Some(waiter),
                            EnqState::Granted { .. } => None,
                        },
                        granted: match e.state {
                            EnqState::Granted { token } => Some(token),
                            EnqState::Queued { .. } => None,
                        },
                    })
                    .collect(),
                dread_holds: c.dread_holds,
            })
            .collect();
        LockSnapshot {
            resources,
            owners,
            waiter_slots: self.waiters.len(),
        }
    }
}

impl LockSnapshot {
    /// The key `key` of `space`, if it exists.
    pub fn resource(&self, space: Space, key: &str) -> Option<&ResourceView> {
        self.resources
            .iter()
            .find(|r| r.space == space && &*r.key == key)
    }

    /// The live owner `id`, if any.
    pub fn owner(&self, id: OwnerId) -> Option<&OwnerView> {
        self.owners.iter().find(|o| o.id == id)
    }
}
