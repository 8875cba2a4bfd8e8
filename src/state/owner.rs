//! Per-connection coordination state: what a connection holds, waits for and
//! has enqueued, so that disconnect cleanup is O(owned), never O(all keys).

use super::Via;
use super::fence::Token;
use super::options::Options;
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

/// A slot held by a connection: resource index, the holder's fence and
/// when it was granted (ms; `who`'s `held_s`, §8.15). Kept here rather than
/// in the key's holder so that keys pay nothing for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    pub res: u32,
    pub fence: u64,
    pub since: u64,
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
    /// `opt` / `PATCH /v1/sessions/{id}` options (§8.15); all off at first.
    pub options: Options,
}

impl ConnState {
    /// When the hold (`res`, `fence`) was granted, if this owner has it.
    pub fn held_since(&self, res: u32, fence: u64) -> Option<u64> {
        self.holds
            .iter()
            .rfind(|h| h.res == res && h.fence == fence)
            .map(|h| h.since)
    }

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

/// Owner states indexed by slot, checked by generation. Connections and HTTP
/// sessions have slot numbers of their own ([`OwnerId::index`]), so each kind
/// has its own dense vector.
#[derive(Debug, Default)]
pub struct ConnTable {
    conns: Vec<Option<ConnState>>,
    sessions: Vec<Option<ConnState>>,
    live: usize,
}

impl ConnTable {
    fn slots(&self, id: OwnerId) -> &Vec<Option<ConnState>> {
        if id.is_session() {
            &self.sessions
        } else {
            &self.conns
        }
    }

    fn slots_mut(&mut self, id: OwnerId) -> &mut Vec<Option<ConnState>> {
        if id.is_session() {
            &mut self.sessions
        } else {
            &mut self.conns
        }
    }

    pub fn insert(&mut self, id: OwnerId, serial: u64) {
        let i = id.index();
        let slots = self.slots_mut(id);
        if slots.len() <= i {
            slots.resize_with(i + 1, || None);
        }
        let fresh = slots[i].is_none();
        slots[i] = Some(ConnState {
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
            options: Options::default(),
        });
        if fresh {
            self.live += 1;
        }
    }

    pub fn remove(&mut self, id: OwnerId) -> Option<ConnState> {
        let slot = self.slots_mut(id).get_mut(id.index())?;
        if !slot.as_ref().is_some_and(|c| c.id == id) {
            return None;
        }
        let state = slot.take();
        self.live -= 1;
        let live = self.live;
        shrink(self.slots_mut(id), live);
        state
    }

    pub fn get(&self, id: OwnerId) -> Option<&ConnState> {
        self.slots(id)
            .get(id.index())?
            .as_ref()
            .filter(|c| c.id == id)
    }

    pub fn get_mut(&mut self, id: OwnerId) -> Option<&mut ConnState> {
        self.slots_mut(id)
            .get_mut(id.index())?
            .as_mut()
            .filter(|c| c.id == id)
    }

    pub fn len(&self) -> usize {
        self.live
    }

    /// Every live owner: connections by slot, then sessions by slot.
    pub fn iter(&self) -> impl Iterator<Item = &ConnState> {
        self.conns.iter().chain(&self.sessions).flatten()
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }
}

/// Give memory back after a connection storm: drop trailing empty slots once
/// three quarters of the table are unused (tried at power-of-two occupancy
/// only, so a mass close stays O(n) overall). `live` counts both kinds, which
/// only makes the shrink more conservative.
fn shrink(slots: &mut Vec<Option<ConnState>>, live: usize) {
    if live * 4 >= slots.len() || slots.len() < 64 {
        return;
    }
    if live != 0 && !live.is_power_of_two() {
        return;
    }
    while slots.last().is_some_and(Option::is_none) {
        slots.pop();
    }
    slots.shrink_to_fit();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_and_connections_use_separate_dense_slots() {
        let mut t = ConnTable::default();
        let c = OwnerId::conn(3, 0);
        let s = OwnerId::session(3, 0);
        t.insert(c, 1);
        t.insert(s, 2);
        assert_eq!(t.len(), 2);
        assert_eq!(t.get(c).map(|x| x.serial), Some(1));
        assert_eq!(t.get(s).map(|x| x.serial), Some(2));
        // A stale generation never reaches the new owner of the slot.
        assert!(t.get(OwnerId::session(3, 1)).is_none());
        assert!(t.remove(s).is_some());
        assert!(t.get(s).is_none() && t.get(c).is_some());
        assert_eq!(t.len(), 1);
    }
}
