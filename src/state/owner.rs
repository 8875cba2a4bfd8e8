//! Per-connection coordination state: what a connection holds, waits for and
//! has enqueued, so that disconnect cleanup is O(owned), never O(all keys).

use super::Via;
use super::fence::Token;
use super::resource::Space;
use crate::owner::OwnerId;
use crate::peer::PeerAddr;
use crate::timer::wheel::TimerKey;

/// What a parked connection is waiting for.
#[derive(Debug, Clone)]
pub enum Parked {
    /// A lock-table waiter (`l sl rl wl elect lock`, or a `w sw rw ww` whose enqueue is queued).
    Waiter {
        waiter: u32,
        timer: Option<TimerKey>,
    },
    /// A blocked `blpop`/`brpop` on a list (the timer lives in the popper).
    Pop { key: Box<str> },
    /// A `bwait` participant (the timer lives in the barrier).
    Barrier { key: Box<str> },
}

/// Two-phase state of one (connection, key space, key) (protocol.md §8.6).
#[derive(Debug, Clone)]
pub struct Enqueue {
    pub space: Space,
    pub key: Box<str>,
    /// Which enqueue made it: `Lock` (e), `Sem` (se), `Read` (re), `Write` (we).
    pub via: Via,
    pub lease_s: u64,
    pub state: EnqState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnqState {
    Queued { waiter: u32 },
    Granted { token: Token },
}

/// A slot held by a connection: resource index and the holder's fence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    pub res: u32,
    pub fence: u64,
}

#[derive(Debug)]
pub struct ConnState {
    pub id: OwnerId,
    /// The connection id users see in `stats` (unique for the process life).
    pub serial: u64,
    /// The peer's `ip:port` shown beside the id in `stats` (`None` if the
    /// server did not say, e.g. in unit tests).
    pub peer: Option<PeerAddr>,
    pub parked: Option<Parked>,
    pub holds: Vec<Hold>,
    pub enqueues: Vec<Enqueue>,
    pub dread_holds: u32,
    /// When `holds` last became empty (ms): the idle clock of a lease holder
    /// restarts there, not at its last byte (§2.8).
    pub leases_ended_at: u64,
    /// Election keys this connection observes / is a candidate of.
    pub observed: Vec<Box<str>>,
    pub candidacies: Vec<Box<str>>,
}

impl ConnState {
    pub fn remove_hold(&mut self, res: u32, fence: u64) {
        // Recent grants are released first, so search from the back.
        if let Some(i) = self
            .holds
            .iter()
            .rposition(|h| h.res == res && h.fence == fence)
        {
            self.holds.swap_remove(i);
        }
    }

    pub fn enqueue_index(&self, space: Space, key: &str) -> Option<usize> {
        self.enqueues
            .iter()
            .position(|e| e.space == space && &*e.key == key)
    }
}

/// Connection states indexed by slab slot, checked by generation.
#[derive(Debug, Default)]
pub struct ConnTable {
    slots: Vec<Option<ConnState>>,
    live: usize,
}

impl ConnTable {
    pub fn insert(&mut self, id: OwnerId, serial: u64) {
        let i = id.slot as usize;
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, || None);
        }
        if self.slots[i].is_none() {
            self.live += 1;
        }
        self.slots[i] = Some(ConnState {
            id,
            serial,
            peer: None,
            parked: None,
            holds: Vec::new(),
            enqueues: Vec::new(),
            dread_holds: 0,
            leases_ended_at: 0,
            observed: Vec::new(),
            candidacies: Vec::new(),
        });
    }

    pub fn remove(&mut self, id: OwnerId) -> Option<ConnState> {
        let slot = self.slots.get_mut(id.slot as usize)?;
        if !slot.as_ref().is_some_and(|c| c.id == id) {
            return None;
        }
        self.live -= 1;
        let state = slot.take();
        self.shrink();
        state
    }

    /// Give memory back after a connection storm: drop trailing empty slots
    /// once three quarters of the table are unused (tried at power-of-two
    /// occupancy only, so a mass close stays O(n) overall).
    fn shrink(&mut self) {
        let live = self.live;
        if live * 4 >= self.slots.len() || self.slots.len() < 64 {
            return;
        }
        if live != 0 && !live.is_power_of_two() {
            return;
        }
        while self.slots.last().is_some_and(Option::is_none) {
            self.slots.pop();
        }
        self.slots.shrink_to_fit();
    }

    pub fn get(&self, id: OwnerId) -> Option<&ConnState> {
        self.slots
            .get(id.slot as usize)?
            .as_ref()
            .filter(|c| c.id == id)
    }

    pub fn get_mut(&mut self, id: OwnerId) -> Option<&mut ConnState> {
        self.slots
            .get_mut(id.slot as usize)?
            .as_mut()
            .filter(|c| c.id == id)
    }

    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }
}
