//! The lock table: every key of the lock and semaphore key spaces, its holders,
//! its FIFO queue, its idle time and its memory of expired tokens.
//!
//! Keys map to a `u32` index into a slab so that timers and waiters refer to a
//! resource without copying its name; the name is one `Rc<str>` shared by the
//! map and the resource (timer-driven events need the name back).

use super::Via;
use super::fence::Token;
use super::waiters::Queue;
use crate::server::tokens::ConnId;
use crate::timer::wheel::TimerKey;
use slab::Slab;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

/// The two key spaces that hold lockable resources (protocol.md §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Space {
    Lock,
    Sem,
}

/// A resource's type while in use (§7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Exclusive,
    ReadWrite,
    Semaphore(u32),
}

/// How many expired tokens a key remembers (§6.5).
const EXPIRED_MEMORY: usize = 16;

/// One holder of a resource slot.
#[derive(Debug, Clone)]
pub struct Holder {
    pub token: Token,
    pub owner: ConnId,
    pub owner_serial: u64,
    /// `u64::MAX` for a Dreadlock hold, which has no lease.
    pub deadline: u64,
    pub timer: Option<TimerKey>,
    pub via: Via,
    /// Granted through a two-phase enqueue whose wait may still come.
    pub two_phase: bool,
}

#[derive(Debug)]
pub struct Resource {
    /// Shared with the key map, so the name is stored once.
    pub name: Rc<str>,
    pub space: Space,
    pub kind: Kind,
    /// Sorted by fence (grants take increasing fences), so lookups by token are
    /// a binary search even for a semaphore with many holders.
    pub holders: Vec<Holder>,
    pub queue: Queue,
    /// When the key last stopped being in use (ms); meaningful only while idle.
    pub idle_since: u64,
    /// Boxed: most keys never expire a token, and then pay one pointer
    /// instead of a 32-byte `VecDeque` header (memory per key matters).
    #[allow(clippy::box_collection)]
    expired: Option<Box<VecDeque<Token>>>,
}

impl Resource {
    pub fn in_use(&self) -> bool {
        !self.holders.is_empty() || !self.queue.is_empty()
    }

    pub fn holder_index(&self, token: &Token) -> Option<usize> {
        let i = self
            .holders
            .binary_search_by_key(&token.fence, |h| h.token.fence)
            .ok()?;
        (self.holders[i].token == *token).then_some(i)
    }

    pub fn holder_by_fence(&self, fence: u64) -> Option<usize> {
        self.holders
            .binary_search_by_key(&fence, |h| h.token.fence)
            .ok()
    }

    pub fn insert_holder(&mut self, h: Holder) {
        // Most keys have one holder at a time; a first push would allocate room
        // for four (Vec's minimum), ~170 wasted bytes per held lock.
        if self.holders.capacity() == 0 {
            self.holders.reserve_exact(1);
        }
        // Fences only grow, so this is almost always a push.
        let at = self
            .holders
            .partition_point(|x| x.token.fence < h.token.fence);
        self.holders.insert(at, h);
    }

    pub fn remember_expired(&mut self, token: Token) {
        let ring = self.expired.get_or_insert_with(Default::default);
        if ring.len() == EXPIRED_MEMORY {
            ring.pop_front();
        }
        ring.push_back(token);
    }

    pub fn was_expired(&self, token: &Token) -> bool {
        self.expired.as_ref().is_some_and(|r| r.contains(token))
    }

    /// True if one more holder of `via`'s mode fits right now (ignoring the queue).
    pub fn has_capacity_for(&self, via: Via) -> bool {
        match self.kind {
            Kind::Exclusive => self.holders.is_empty(),
            Kind::Semaphore(limit) => self.holders.len() < limit as usize,
            Kind::ReadWrite => match via {
                Via::Read => !self.holders.iter().any(|h| h.via == Via::Write),
                _ => self.holders.is_empty(),
            },
        }
    }
}

/// All resources of both key spaces.
#[derive(Debug, Default)]
pub struct Table {
    slab: Slab<Resource>,
    lock_keys: HashMap<Rc<str>, u32>,
    sem_keys: HashMap<Rc<str>, u32>,
}

impl Table {
    fn keys(&self, space: Space) -> &HashMap<Rc<str>, u32> {
        match space {
            Space::Lock => &self.lock_keys,
            Space::Sem => &self.sem_keys,
        }
    }

    pub fn find(&self, space: Space, key: &str) -> Option<u32> {
        self.keys(space).get(key).copied()
    }

    /// Number of keys in both spaces (what `--max-locks` counts).
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    pub fn create(&mut self, space: Space, key: &str, kind: Kind, now: u64) -> u32 {
        let name: Rc<str> = key.into();
        let idx = self.slab.insert(Resource {
            name: name.clone(),
            space,
            kind,
            holders: Vec::new(),
            queue: Queue::default(),
            idle_since: now,
            expired: None,
        }) as u32;
        let map = match space {
            Space::Lock => &mut self.lock_keys,
            Space::Sem => &mut self.sem_keys,
        };
        map.insert(name, idx);
        idx
    }

    pub fn get(&self, idx: u32) -> Option<&Resource> {
        self.slab.get(idx as usize)
    }

    pub fn get_mut(&mut self, idx: u32) -> Option<&mut Resource> {
        self.slab.get_mut(idx as usize)
    }

    /// Delete every idle key whose idle time reached `max_idle_ms` (§7.5).
    /// Returns how many were deleted.
    pub fn collect_idle(&mut self, now: u64, max_idle_ms: u64) -> usize {
        let slab = &mut self.slab;
        let mut removed = 0;
        for map in [&mut self.lock_keys, &mut self.sem_keys] {
            map.retain(|_, idx| {
                let r = &slab[*idx as usize];
                let dead = !r.in_use() && now.saturating_sub(r.idle_since) >= max_idle_ms;
                if dead {
                    slab.remove(*idx as usize);
                    removed += 1;
                }
                !dead
            });
        }
        if removed > 0 {
            self.lock_keys.shrink_to_fit();
            self.sem_keys.shrink_to_fit();
        }
        removed
    }

    /// (name, resource) pairs of one space, sorted by name (for `stats`).
    pub fn sorted(&self, space: Space) -> Vec<(&str, &Resource)> {
        let mut v: Vec<(&str, &Resource)> = self
            .keys(space)
            .iter()
            .map(|(k, idx)| (&**k, &self.slab[*idx as usize]))
            .collect();
        v.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        v
    }
}

impl Table {
    /// Indices of resources with queued waiters (after a fence outage).
    pub fn indices_with_waiters(&self) -> Vec<u32> {
        self.slab
            .iter()
            .filter(|(_, r)| !r.queue.is_empty())
            .map(|(i, _)| i as u32)
            .collect()
    }
}
