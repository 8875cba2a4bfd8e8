//! The one FIFO waiter queue, shared by every key that can make a client wait.
//!
//! Waiters live in one slab; each key's queue is a doubly-linked list threaded
//! through it by `u32` indices. Removing a waiter from the middle (timeout,
//! disconnect) is O(1), which matters when thousands wait on one key and
//! disconnect together. Each waiter also holds a slot of its key's
//! [`Ranks`], so its queue position is O(log n) (`pos`, §8.15).

use super::Via;
use super::position::Ranks;
use crate::owner::OwnerId;
use slab::Slab;

const NIL: u32 = u32::MAX;

/// A request queued for a slot of a resource.
#[derive(Debug, Clone)]
pub struct Waiter {
    pub conn: OwnerId,
    pub conn_serial: u64,
    /// Resource index in the lock table.
    pub res: u32,
    pub via: Via,
    pub lease_s: u64,
    /// True for a two-phase enqueue (`e se re we`): the grant is kept in the
    /// connection's enqueue state until its wait.
    pub two_phase: bool,
    /// True while the connection is parked on this waiter (its reply is pending).
    pub parked: bool,
    /// When it joined the queue (ms), for `who`'s `waited_s`.
    pub since: u64,
    /// Its slot in the key's [`Ranks`] (arrival order).
    slot: u32,
    prev: u32,
    next: u32,
}

impl Waiter {
    pub fn new(conn: OwnerId, conn_serial: u64, res: u32, via: Via, lease_s: u64) -> Self {
        Waiter {
            conn,
            conn_serial,
            res,
            via,
            lease_s,
            two_phase: false,
            parked: false,
            since: 0,
            slot: 0,
            prev: NIL,
            next: NIL,
        }
    }
}

/// Head, tail and length of one key's queue.
#[derive(Debug, Clone, Copy)]
pub struct Queue {
    head: u32,
    tail: u32,
    len: u32,
}

impl Default for Queue {
    fn default() -> Self {
        Queue {
            head: NIL,
            tail: NIL,
            len: 0,
        }
    }
}

impl Queue {
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[derive(Debug, Default)]
pub struct Waiters {
    slab: Slab<Waiter>,
    ranks: Ranks,
}

impl Waiters {
    pub fn push_back(&mut self, q: &mut Queue, mut w: Waiter) -> u32 {
        let (slot, renumber) = self.ranks.push(w.res, q.len());
        if renumber {
            self.renumber(q);
        }
        w.slot = slot;
        w.prev = q.tail;
        w.next = NIL;
        let id = self.slab.insert(w) as u32;
        if q.tail == NIL {
            q.head = id;
        } else {
            self.slab[q.tail as usize].next = id;
        }
        q.tail = id;
        q.len += 1;
        id
    }

    /// Unlink waiter `id` from `q` and return it. `id` must be in `q`.
    pub fn remove(&mut self, q: &mut Queue, id: u32) -> Waiter {
        let w = self.slab.remove(id as usize);
        if w.prev == NIL {
            q.head = w.next;
        } else {
            self.slab[w.prev as usize].next = w.next;
        }
        if w.next == NIL {
            q.tail = w.prev;
        } else {
            self.slab[w.next as usize].prev = w.prev;
        }
        q.len -= 1;
        if self.ranks.remove(w.res, w.slot, q.len()) {
            self.renumber(q);
        }
        w
    }

    /// Give the waiters of `q` rank slots 0, 1, … in FIFO order (after the
    /// key's rank was rebuilt).
    fn renumber(&mut self, q: &Queue) {
        let mut cur = q.head;
        let mut slot = 0;
        while cur != NIL {
            let w = &mut self.slab[cur as usize];
            w.slot = slot;
            slot += 1;
            cur = w.next;
        }
    }

    /// The 1-based queue position of waiter `id` (1 = granted next), in
    /// O(log n). `None` if there is no such waiter.
    pub fn position(&self, id: u32) -> Option<u32> {
        let w = self.slab.get(id as usize)?;
        self.ranks.position(w.res, w.slot)
    }

    /// Keys that have a rank, i.e. a non-empty queue (tests).
    pub fn ranked_keys(&self) -> usize {
        self.ranks.len()
    }

    pub fn front(&self, q: &Queue) -> Option<u32> {
        (q.head != NIL).then_some(q.head)
    }

    pub fn get(&self, id: u32) -> Option<&Waiter> {
        self.slab.get(id as usize)
    }

    pub fn get_mut(&mut self, id: u32) -> Option<&mut Waiter> {
        self.slab.get_mut(id as usize)
    }

    /// Waiter ids of `q` in FIFO order.
    pub fn iter<'a>(&'a self, q: &Queue) -> impl Iterator<Item = u32> + 'a {
        let mut cur = q.head;
        std::iter::from_fn(move || {
            if cur == NIL {
                return None;
            }
            let id = cur;
            cur = self.slab[id as usize].next;
            Some(id)
        })
    }

    pub fn len(&self) -> usize {
        self.slab.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(n: u32) -> Waiter {
        Waiter::new(
            OwnerId {
                slot: n,
                generation: 0,
            },
            n as u64,
            0,
            Via::Lock,
            1,
        )
    }

    #[test]
    fn fifo_and_middle_removal() {
        let mut ws = Waiters::default();
        let mut q = Queue::default();
        let ids: Vec<u32> = (0..5).map(|i| ws.push_back(&mut q, w(i))).collect();
        ws.remove(&mut q, ids[2]);
        ws.remove(&mut q, ids[0]);
        ws.remove(&mut q, ids[4]);
        let order: Vec<u32> = ws
            .iter(&q)
            .map(|id| ws.get(id).unwrap().conn.slot)
            .collect();
        assert_eq!(order, vec![1, 3]);
        assert_eq!(q.len(), 2);
        let id5 = ws.push_back(&mut q, w(5));
        assert_eq!(ws.front(&q), Some(ids[1]));
        ws.remove(&mut q, ids[1]);
        ws.remove(&mut q, ids[3]);
        assert_eq!(ws.front(&q), Some(id5));
        ws.remove(&mut q, id5);
        assert!(q.is_empty() && ws.is_empty());
        assert_eq!(ws.front(&q), None);
    }

    /// Positions stay exact under removals anywhere, renumbering included,
    /// against a plain vector as the model (fixed-seed xorshift).
    #[test]
    fn positions_match_a_model_under_random_churn() {
        let mut ws = Waiters::default();
        let mut q = Queue::default();
        let mut model: Vec<u32> = Vec::new();
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for step in 0..20_000u32 {
            // Phases of growth and of shrinking, so the tree grows and shrinks.
            let grow = (step / 2_000) % 2 == 0;
            if model.is_empty() || next() % 3 != 0 && grow || next() % 4 == 0 {
                model.push(ws.push_back(&mut q, w(step)));
            } else {
                let i = (next() % model.len() as u64) as usize;
                ws.remove(&mut q, model.remove(i));
            }
            if step % 97 == 0 || model.len() < 8 {
                for (i, &id) in model.iter().enumerate() {
                    assert_eq!(ws.position(id), Some(i as u32 + 1), "step {step}");
                }
            }
            let slots = ws.ranks.slots(0);
            assert!(
                slots <= (super::super::position::SLOTS_PER_WAITER * model.len()).max(4),
                "{slots} slots for {} waiters",
                model.len()
            );
        }
        while let Some(id) = model.pop() {
            ws.remove(&mut q, id);
        }
        assert_eq!(ws.ranked_keys(), 0, "an empty queue keeps no rank");
    }
}
