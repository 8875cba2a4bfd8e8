//! Hierarchical hashed timer wheel: every lease expiry, wait timeout, idle
//! timeout and GC tick of the server goes through it.
//!
//! Why it is built this way:
//!
//! * Up to millions of timers are pending (one per lease, parked waiter and
//!   connection) and most are cancelled before they fire (a lock is released,
//!   a waiter is granted, a connection speaks). Insert and cancel must be O(1)
//!   and allocation-free; a binary heap pays O(log n) on both and needs
//!   tombstones to cancel.
//! * Six levels of 64 slots at 1 ms resolution: a slot of level `l` covers
//!   64^l ms, so the wheel spans 64^6 ms (~2.2 years). A timer is filed at the
//!   level of the highest 6-bit digit in which its deadline differs from the
//!   wheel's time, which puts it in a slot *after* the current one of that
//!   level. When the wheel's time reaches the start of that slot, the slot is
//!   emptied and its timers are re-filed ("cascaded") lower down: a timer moves
//!   at most five times in its life, and at level 0 a slot is one exact
//!   millisecond, so nothing fires a level-slot late.
//! * A `u64` occupancy bitmap per level turns "next non-empty slot" into one
//!   `trailing_zeros`, so `poll_at` and an idle `poll` cost O(levels).
//! * Slots are intrusive doubly-linked lists threaded through one `Vec` of
//!   entries by `u32` indices: no `Box` per timer, cancel unlinks in O(1),
//!   freed entries are reused through a free list, and links are half the size
//!   of pointers. A generation per entry makes a stale [`TimerKey`] (fired,
//!   cancelled, or its entry since reused) a harmless no-op.
//! * The wheel's time only ever moves to a slot start that is due, or to `now`
//!   when nothing is due. So a loop that sleeps until [`Wheel::poll_at`] sees
//!   every timer at its exact deadline; at worst it first wakes at the start
//!   of a higher-level slot, which only cascades.
//! * Leases may last ~9.2e15 ms, far beyond the span. Such timers wait in an
//!   unsorted overflow list together with a lower bound on the first span-sized
//!   (2^36 ms) block that holds one of them. The list is rescanned only when
//!   time reaches that bound: at most once per poll that crosses into such a
//!   block, i.e. once in ~2.2 years of uptime. Keeping it ordered would cost
//!   every insert instead.
//! * Time is injected as `u64` ms of a monotonic clock and never read here,
//!   which keeps the module deterministic and exhaustively testable.

use std::{fmt, mem};

/// Bits of a deadline consumed by one level (64 slots).
const SLOT_BITS: u32 = 6;
const SLOTS: usize = 1 << SLOT_BITS;
const LEVELS: usize = 6;
/// log2 of the wheel span: deadlines differing from the wheel's time above
/// this bit go to the overflow list.
const SPAN_BITS: u32 = SLOT_BITS * LEVELS as u32;
/// End-of-list marker; also why at most `u32::MAX - 1` entries may exist.
const NIL: u32 = u32::MAX;
/// `Entry::loc` values below `WHEEL_SLOTS` are `level * SLOTS + slot`.
const WHEEL_SLOTS: usize = LEVELS * SLOTS;
/// Due timers, handed out by `poll` one by one.
const LOC_READY: u16 = WHEEL_SLOTS as u16;
/// Timers beyond the wheel span.
const LOC_OVERFLOW: u16 = LOC_READY + 1;
/// Unused entries waiting to be reused.
const LOC_FREE: u16 = LOC_READY + 2;

/// Handle of a pending timer, returned by [`Wheel::insert`].
///
/// It stays valid only while that timer is pending: once it fires or is
/// cancelled, every use of the key is a no-op, even after its entry is reused
/// for another timer (the generation no longer matches).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerKey {
    index: u32,
    generation: u32,
}

struct Entry<T> {
    deadline: u64,
    /// `None` only while the entry is on the free list.
    value: Option<T>,
    prev: u32,
    next: u32,
    /// Bumped on every release so that outstanding keys go stale. It wraps
    /// after 2^32 reuses of one entry, far more than a key is ever kept.
    generation: u32,
    /// Which list the entry is on, so that cancel can fix that list's head.
    loc: u16,
}

/// A hierarchical timer wheel holding values of type `T`; see the module docs.
pub struct Wheel<T> {
    entries: Vec<Entry<T>>,
    /// Heads of the wheel slot lists, indexed by `loc`. Left empty until the
    /// first insert so that an unused wheel allocates nothing.
    slots: Vec<u32>,
    /// Bit `s` of `occupied[l]` is set iff slot `s` of level `l` is non-empty.
    occupied: [u64; LEVELS],
    /// The wheel's time: the last `now` it was polled at, or the start of the
    /// slot it is cascading. Every wheel timer is in a slot after the one
    /// holding `elapsed` at its level.
    elapsed: u64,
    ready: u32,
    /// Lower bound of the deadlines on the ready list (for `poll_at`).
    ready_min: u64,
    overflow: u32,
    /// Lower bound of the 2^36-aligned block starts of overflow deadlines; it
    /// goes stale (lower) on cancel, which only costs one early rescan.
    overflow_min: u64,
    free: u32,
    len: usize,
    /// Generation given to entries created from now on: above every
    /// generation ever handed out for an index that [`shrink`](Wheel::shrink)
    /// dropped, so that a stale key to such an index cannot match its
    /// successor.
    fresh_generation: u32,
}

impl<T> Wheel<T> {
    /// An empty wheel whose time starts at `now_ms`. Allocates nothing.
    pub fn new(now_ms: u64) -> Self {
        Wheel {
            entries: Vec::new(),
            slots: Vec::new(),
            occupied: [0; LEVELS],
            elapsed: now_ms,
            ready: NIL,
            ready_min: 0,
            overflow: NIL,
            overflow_min: 0,
            free: NIL,
            len: 0,
            fresh_generation: 0,
        }
    }

    /// Adds a timer firing at `deadline_ms`, in O(1). A deadline at or before
    /// the wheel's current time fires on the next [`poll`](Self::poll).
    ///
    /// # Panics
    /// If `u32::MAX - 1` timers are already pending (~160 GiB of entries).
    pub fn insert(&mut self, deadline_ms: u64, value: T) -> TimerKey {
        if self.slots.is_empty() {
            self.slots = vec![NIL; WHEEL_SLOTS];
        }
        let index = if self.free != NIL {
            let index = self.free;
            self.unlink(index);
            let entry = &mut self.entries[index as usize];
            entry.deadline = deadline_ms;
            entry.value = Some(value);
            index
        } else {
            assert!(
                self.entries.len() < NIL as usize,
                "timer wheel: too many pending timers"
            );
            self.entries.push(Entry {
                deadline: deadline_ms,
                value: Some(value),
                prev: NIL,
                next: NIL,
                generation: self.fresh_generation,
                loc: LOC_FREE,
            });
            (self.entries.len() - 1) as u32
        };
        self.file(index);
        self.len += 1;
        TimerKey {
            index,
            generation: self.entries[index as usize].generation,
        }
    }

    /// Removes a pending timer in O(1) and returns its value. A key whose
    /// timer already fired or was cancelled returns `None` and touches
    /// nothing, even if its entry now holds another timer.
    pub fn cancel(&mut self, key: TimerKey) -> Option<T> {
        self.live(key)?;
        self.unlink(key.index);
        self.release(key.index)
    }

    /// The deadline of a pending timer; `None` if it is no longer pending.
    pub fn deadline(&self, key: TimerKey) -> Option<u64> {
        self.live(key).map(|entry| entry.deadline)
    }

    /// Removes and returns one timer whose deadline is `<= now_ms`, as
    /// `(deadline, value)`; `None` when no timer is due. Call it until it
    /// returns `None` to collect every due timer (in no particular order).
    /// A `now_ms` earlier than a previous one is taken as that previous one.
    pub fn poll(&mut self, now_ms: u64) -> Option<(u64, T)> {
        let now = now_ms.max(self.elapsed);
        loop {
            if self.ready != NIL {
                let index = self.ready;
                self.unlink(index);
                let deadline = self.entries[index as usize].deadline;
                debug_assert!(deadline <= now);
                return self.release(index).map(|value| (deadline, value));
            }
            if let Some((level, slot, start)) = self.next_expiration() {
                if start > now {
                    break;
                }
                // Move time only to this slot's start, not to `now`: other
                // slots may be due too, and the bitmaps find them only while
                // they still lie after the current slot of their level.
                self.elapsed = start;
                let head = mem::replace(&mut self.slots[level * SLOTS + slot], NIL);
                self.occupied[level] &= !(1 << slot);
                self.refile(head);
            } else if self.overflow != NIL && self.overflow_min <= now {
                // The wheel is empty, so its time may jump straight to `now`:
                // one scan serves however many blocks this poll crossed, and
                // whatever is due goes to the ready list.
                self.elapsed = now;
                let head = mem::replace(&mut self.overflow, NIL);
                self.refile(head);
            } else {
                break;
            }
        }
        // Nothing is due by `now`, so every pending timer is still in a slot
        // after the one `now` falls in, and time can move on without refiling.
        self.elapsed = now;
        None
    }

    /// The earliest time at which [`poll`](Self::poll) may return a timer;
    /// `None` when the wheel is empty. It is never later than the earliest
    /// pending deadline, but may be earlier: at a higher-level slot start
    /// (where poll cascades and returns `None`), after a cancel, or, for timers
    /// already due, any time up to the wheel's current time.
    pub fn poll_at(&self) -> Option<u64> {
        if self.ready != NIL {
            Some(self.ready_min)
        } else if let Some((_, _, start)) = self.next_expiration() {
            Some(start)
        } else if self.overflow != NIL {
            Some(self.overflow_min)
        } else {
            None
        }
    }

    /// The number of pending timers.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when most entries are free: a burst of timers (10k connections,
    /// a million leases) has passed and [`shrink`](Self::shrink) may give
    /// memory back.
    pub fn is_sparse(&self) -> bool {
        self.entries.capacity() >= 256 && self.len * 4 < self.entries.capacity()
    }

    /// Gives back the memory of free entries at the end of the entry vector
    /// and relinks the remaining free entries lowest index first, so that new
    /// timers fill the front and the tail drains for a later call. O(entries):
    /// call it when [`is_sparse`](Self::is_sparse), not per timer. Keys stay
    /// valid; timers are untouched. Returns whether memory was given back.
    pub fn shrink(&mut self) -> bool {
        let before = self.entries.capacity();
        let keep = self
            .entries
            .iter()
            .rposition(|e| e.loc != LOC_FREE)
            .map_or(0, |i| i + 1);
        for dropped in &self.entries[keep..] {
            self.fresh_generation = self
                .fresh_generation
                .max(dropped.generation.wrapping_add(1));
        }
        self.entries.truncate(keep);
        self.entries.shrink_to_fit();
        self.free = NIL;
        for index in (0..keep).rev() {
            if self.entries[index].loc == LOC_FREE {
                self.push(index as u32, LOC_FREE);
            }
        }
        self.entries.capacity() < before
    }

    fn live(&self, key: TimerKey) -> Option<&Entry<T>> {
        self.entries
            .get(key.index as usize)
            .filter(|entry| entry.generation == key.generation && entry.loc != LOC_FREE)
    }

    /// The first non-empty wheel slot as `(level, slot, start time)`.
    ///
    /// Lower levels always come first: a level-`l` timer shares every digit
    /// above `l` with the wheel's time, so it is due before the next slot of
    /// level `l + 1` begins.
    fn next_expiration(&self) -> Option<(usize, usize, u64)> {
        let level = self.occupied.iter().position(|&bits| bits != 0)?;
        let shift = SLOT_BITS * level as u32;
        // Every timer of the level sits after the current slot, so the lowest
        // set bit is the next slot, and no wrap-around can occur.
        let slot = self.occupied[level].trailing_zeros();
        debug_assert!(u64::from(slot) > (self.elapsed >> shift) % SLOTS as u64);
        let level_start = self.elapsed >> (shift + SLOT_BITS) << (shift + SLOT_BITS);
        Some((
            level,
            slot as usize,
            level_start + (u64::from(slot) << shift),
        ))
    }

    /// Files every entry of a detached list relative to the wheel's time.
    fn refile(&mut self, mut index: u32) {
        while index != NIL {
            let next = self.entries[index as usize].next;
            self.file(index);
            index = next;
        }
    }

    /// Puts an unlinked entry on the list its deadline belongs to.
    fn file(&mut self, index: u32) {
        let when = self.entries[index as usize].deadline;
        let loc = if when <= self.elapsed {
            self.ready_min = if self.ready == NIL {
                when
            } else {
                self.ready_min.min(when)
            };
            LOC_READY
        } else {
            // The highest differing bit picks the level; `when > elapsed`, so
            // the deadline's digit there is the larger one: a later slot.
            let top = u64::BITS - 1 - (when ^ self.elapsed).leading_zeros();
            let level = (top / SLOT_BITS) as usize;
            if level < LEVELS {
                let slot = (when >> (SLOT_BITS * level as u32)) as usize % SLOTS;
                self.occupied[level] |= 1 << slot;
                (level * SLOTS + slot) as u16
            } else {
                let block = when >> SPAN_BITS << SPAN_BITS;
                // Restart the bound on an empty list, so that one left behind
                // by cancelled timers does not cost a needless rescan.
                self.overflow_min = if self.overflow == NIL {
                    block
                } else {
                    self.overflow_min.min(block)
                };
                LOC_OVERFLOW
            }
        };
        self.push(index, loc);
    }

    fn head_mut(&mut self, loc: u16) -> &mut u32 {
        match loc {
            LOC_READY => &mut self.ready,
            LOC_OVERFLOW => &mut self.overflow,
            LOC_FREE => &mut self.free,
            slot => &mut self.slots[slot as usize],
        }
    }

    /// Pushes an unlinked entry at the front of list `loc`.
    fn push(&mut self, index: u32, loc: u16) {
        let head = mem::replace(self.head_mut(loc), index);
        if head != NIL {
            self.entries[head as usize].prev = index;
        }
        let entry = &mut self.entries[index as usize];
        entry.prev = NIL;
        entry.next = head;
        entry.loc = loc;
    }

    /// Takes an entry off its list, clearing the slot's bit when it empties.
    fn unlink(&mut self, index: u32) {
        let Entry {
            prev, next, loc, ..
        } = self.entries[index as usize];
        if next != NIL {
            self.entries[next as usize].prev = prev;
        }
        if prev != NIL {
            self.entries[prev as usize].next = next;
        } else {
            *self.head_mut(loc) = next;
            if next == NIL && usize::from(loc) < WHEEL_SLOTS {
                let loc = usize::from(loc);
                self.occupied[loc / SLOTS] &= !(1 << (loc % SLOTS));
            }
        }
    }

    /// Returns an unlinked entry to the free list and hands back its value.
    fn release(&mut self, index: u32) -> Option<T> {
        let entry = &mut self.entries[index as usize];
        entry.generation = entry.generation.wrapping_add(1);
        let value = entry.value.take();
        self.push(index, LOC_FREE);
        self.len -= 1;
        value
    }
}

impl<T> fmt::Debug for Wheel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wheel")
            .field("len", &self.len)
            .field("elapsed", &self.elapsed)
            .field("poll_at", &self.poll_at())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use crate::test_rng::XorShift as Rng;

    const SPAN: u64 = 1 << SPAN_BITS;

    /// Pending timers of the reference model, ordered by deadline.
    type Reference = BTreeMap<(u64, u64), TimerKey>;

    /// Polls everything due at `now` and checks it against the reference.
    fn drain(w: &mut Wheel<u64>, now: u64, reference: &mut Reference, ids: &[(TimerKey, u64)]) {
        while let Some((deadline, id)) = w.poll(now) {
            assert!(deadline <= now, "fired early: {deadline} > {now}");
            let (key, expected) = ids[id as usize];
            assert_eq!(deadline, expected, "wrong deadline for {id}");
            assert!(
                reference.remove(&(deadline, id)).is_some(),
                "timer {id} fired twice or after cancel"
            );
            assert_eq!(w.deadline(key), None);
        }
        check_state(w, now, reference);
    }

    /// After a poll returned `None`: nothing due is left, `len` agrees, and
    /// `poll_at` lies after `now` yet not after the earliest deadline.
    fn check_state(w: &Wheel<u64>, now: u64, reference: &Reference) {
        assert_eq!(w.len(), reference.len());
        assert_eq!(w.is_empty(), reference.is_empty());
        match (w.poll_at(), reference.keys().next()) {
            (None, None) => {}
            (Some(at), Some(&(first, id))) => {
                assert!(first > now, "timer {id} due at {first} not fired by {now}");
                assert!(at <= first, "poll_at {at} after earliest deadline {first}");
                assert!(at > now, "poll_at {at} not after {now}: busy loop");
            }
            other => panic!("poll_at/reference disagree: {other:?}"),
        }
    }

    fn random_deadline(rng: &mut Rng, now: u64, ids: &[(TimerKey, u64)]) -> u64 {
        match rng.below_u64(100) {
            0..15 => now.saturating_sub(rng.below_u64(1_000_000)),
            15..20 => now,
            20..45 => now + 1 + rng.below_u64(1000),
            45..65 => now + rng.below_u64(1 << 24),
            65..80 => now + rng.below_u64(SPAN),
            80..90 => now + SPAN + rng.below_u64(SPAN << 2),
            90..93 => rng.below_u64(9_223_372_036_000),
            93..95 => u64::MAX,
            _ if ids.is_empty() => now,
            _ => ids[rng.below_u64(ids.len() as u64) as usize].1,
        }
    }

    #[test]
    fn random_against_reference() {
        const TOTAL: usize = 100_000;
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut now = rng.below_u64(1 << 40);
        let mut w = Wheel::new(now);
        let mut reference = Reference::new();
        let mut ids: Vec<(TimerKey, u64)> = Vec::new();
        let mut to_cancel = Vec::new();
        let (mut cancelled, mut stale) = (0, 0);
        while ids.len() < TOTAL {
            for _ in 0..=rng.below_u64(200) {
                let deadline = random_deadline(&mut rng, now, &ids);
                let id = ids.len() as u64;
                let key = w.insert(deadline, id);
                assert_eq!(w.deadline(key), Some(deadline));
                assert!(reference.insert((deadline, id), key).is_none());
                ids.push((key, deadline));
                if rng.below_u64(5) == 0 {
                    to_cancel.push(id);
                }
            }
            // Cancel some earlier picks; those that fired meanwhile must be no-ops.
            for _ in 0..rng.below_u64(to_cancel.len() as u64 + 1) {
                let id = to_cancel.swap_remove(rng.below_u64(to_cancel.len() as u64) as usize);
                let (key, deadline) = ids[id as usize];
                let expected = reference.remove(&(deadline, id)).map(|_| id);
                cancelled += usize::from(expected.is_some());
                stale += usize::from(expected.is_none());
                assert_eq!(w.cancel(key), expected);
                assert_eq!(w.cancel(key), None);
                assert_eq!(w.deadline(key), None);
            }
            let step = match rng.below_u64(100) {
                0..30 => rng.below_u64(3),
                30..55 => rng.below_u64(5000),
                55..70 => rng.below_u64(1 << 24),
                70..90 => w.poll_at().map_or(0, |at| at.saturating_sub(now)),
                _ => rng.below_u64(SPAN << 1),
            };
            now += step;
            if rng.below_u64(50) == 0 {
                w.shrink();
            }
            drain(&mut w, now, &mut reference, &ids);
            // A clock that goes backwards is taken as the last `now`.
            assert_eq!(w.poll(now.saturating_sub(rng.below_u64(1 << 20))), None);
        }
        assert!(cancelled > TOTAL / 10, "only {cancelled} cancelled");
        assert!(stale > 0);
        let fired_so_far = TOTAL - cancelled - reference.len();
        assert!(fired_so_far > TOTAL / 2, "only {fired_so_far} fired");
        // Huge jumps: one overflow scan each, everything but u64::MAX fires.
        for now in [now + (SPAN << 10), 1 << 53, u64::MAX - 1] {
            drain(&mut w, now, &mut reference, &ids);
        }
        assert!(reference.keys().all(|&(deadline, _)| deadline == u64::MAX));
        for ((_, id), key) in std::mem::take(&mut reference) {
            assert_eq!(w.cancel(key), Some(id));
        }
        assert!(w.is_empty());
        assert_eq!(w.poll_at(), None);
    }

    #[test]
    fn shrink_returns_a_burst_and_keeps_keys_honest() {
        let mut w = Wheel::new(0);
        let burst: Vec<TimerKey> = (0..10_000).map(|i| w.insert(1_000 + i, i)).collect();
        let big = w.entries.capacity();
        // One survivor at the end pins the tail; everything below it is free.
        for (i, &key) in burst.iter().enumerate().take(9_999) {
            assert_eq!(w.cancel(key), Some(i as u64));
        }
        assert!(w.is_sparse());
        w.shrink();
        assert_eq!(w.entries.len(), 10_000);
        assert_eq!(w.deadline(burst[9_999]), Some(10_999));
        // Free entries are reused lowest first, so the tail can drain.
        let low = w.insert(5, 77);
        assert_eq!(low.index, 0);
        assert_eq!(w.cancel(burst[9_999]), Some(9_999));
        w.shrink();
        assert_eq!(w.entries.len(), 1);
        assert!(w.entries.capacity() < big / 100, "{}", w.entries.capacity());
        // Re-created indices never match keys handed out before the shrink
        // (index 0 is `low`'s, so fresh timer k sits where burst k + 1 was).
        let fresh: Vec<TimerKey> = (0..9_999).map(|i| w.insert(2_000 + i, i)).collect();
        for (old, new) in burst.iter().skip(1).zip(&fresh) {
            assert_eq!(old.index, new.index);
            assert_eq!(w.cancel(*old), None);
            assert_eq!(w.deadline(*old), None);
        }
        assert_eq!(w.len(), 10_000);
        assert_eq!(w.poll(10), Some((5, 77)));
        let fired: Vec<u64> = std::iter::from_fn(|| w.poll(20_000))
            .map(|(_, v)| v)
            .collect();
        assert_eq!(fired, (0..9_999).collect::<Vec<_>>());
        assert!(w.is_empty());
    }

    #[test]
    fn stale_keys_never_touch_other_timers() {
        let mut w = Wheel::new(0);
        let a = w.insert(10, 'a');
        assert_eq!(w.cancel(a), Some('a'));
        assert_eq!(w.cancel(a), None);
        // The freed entry is reused, under a new generation.
        let b = w.insert(20, 'b');
        assert_eq!(a.index, b.index);
        assert_ne!(a, b);
        assert_eq!(w.cancel(a), None);
        assert_eq!(w.deadline(a), None);
        assert_eq!(w.deadline(b), Some(20));
        // After firing, the key is stale too, also once the entry is reused.
        assert_eq!(w.poll(25), Some((20, 'b')));
        assert_eq!(w.cancel(b), None);
        let c = w.insert(30, 'c');
        assert_eq!(c.index, b.index);
        assert_eq!(w.cancel(a), None);
        assert_eq!(w.cancel(b), None);
        assert_eq!(w.deadline(b), None);
        assert_eq!(w.len(), 1);
        assert_eq!(w.poll(30), Some((30, 'c')));
        // A key from another wheel or out of range is simply not found.
        let foreign = TimerKey {
            index: 7,
            generation: 0,
        };
        assert_eq!(w.cancel(foreign), None);
        assert_eq!(w.deadline(foreign), None);
    }

    #[test]
    fn poll_at_never_later_than_earliest_deadline() {
        let mut rng = Rng(0xDEAD_BEEF_1234_5678);
        let start = 1 << 38;
        let mut w = Wheel::new(start);
        let mut reference = Reference::new();
        let mut now = start;
        let mut ids = Vec::new();
        for round in 0..2_000u64 {
            // Deadlines right at and around slot and level boundaries.
            let level = rng.below_u64(LEVELS as u64 + 1) as u32;
            let unit = 1u64 << (SLOT_BITS * level);
            let deadline = (now / unit + rng.below_u64(4)) * unit + rng.below_u64(3) - 1;
            let key = w.insert(deadline, round);
            reference.insert((deadline, round), key);
            ids.push((key, deadline));
            let check = |w: &Wheel<u64>, reference: &Reference| {
                if let Some(&(first, _)) = reference.keys().next() {
                    assert!(w.poll_at().is_some_and(|at| at <= first));
                }
            };
            check(&w, &reference);
            if rng.below_u64(3) == 0 {
                // Cancel the earliest: the bound may go stale, never late.
                if let Some(((_, id), key)) = reference.pop_first() {
                    assert_eq!(w.cancel(key), Some(id));
                }
                check(&w, &reference);
            }
            if rng.below_u64(4) == 0 {
                now = w.poll_at().unwrap_or(now).max(now) + rng.below_u64(2);
                drain(&mut w, now, &mut reference, &ids);
            }
        }
    }

    #[test]
    fn sleeping_until_poll_at_fires_exactly_on_time() {
        let mut rng = Rng(0x0123_4567_89AB_CDEF);
        let start = rng.below_u64(1 << 40);
        let mut w = Wheel::new(start);
        let mut pending = 0u64;
        for i in 0..20_000u64 {
            let range = [64, 1 << 12, 1 << 24, SPAN, SPAN << 3][i as usize % 5];
            w.insert(start + 1 + rng.below_u64(range), i);
            pending += 1;
        }
        let mut wakeups = 0u64;
        while let Some(now) = w.poll_at() {
            wakeups += 1;
            while let Some((deadline, i)) = w.poll(now) {
                assert_eq!(deadline, now, "timer {i} fired late or early");
                pending -= 1;
                // Re-arm some timers relative to the new time.
                if i % 7 == 0 && i < 20_000 {
                    w.insert(now + 1 + rng.below_u64(1 << 20), i + 20_000);
                    pending += 1;
                }
            }
        }
        assert_eq!(pending, 0);
        // Each wake-up fires something or cascades a slot, which a timer
        // goes through at most once per level.
        assert!(wakeups <= 40_000 * LEVELS as u64, "{wakeups} wake-ups");
    }

    #[test]
    fn deadline_in_the_past_fires_on_next_poll() {
        let mut w = Wheel::new(1_000);
        w.insert(500, "past");
        w.insert(0, "zero");
        w.insert(1_000, "now");
        assert_eq!(w.poll_at(), Some(0));
        let mut fired: Vec<_> = std::iter::from_fn(|| w.poll(1_000)).collect();
        fired.sort();
        assert_eq!(fired, [(0, "zero"), (500, "past"), (1_000, "now")]);
        // After the wheel moved on, a deadline at its time is also due.
        assert_eq!(w.poll(5_000), None);
        w.insert(5_000, "equal");
        w.insert(4_999, "behind");
        assert_eq!(w.len(), 2);
        // Even a poll with an older clock reading returns them.
        assert!(w.poll(10).is_some());
        assert!(w.poll(10).is_some());
        assert_eq!(w.poll(5_000), None);
        assert!(w.is_empty());
    }

    #[test]
    fn max_deadline_never_fires_early_and_can_be_cancelled() {
        let mut w = Wheel::new(0);
        let key = w.insert(u64::MAX, 1);
        let near = w.insert(u64::MAX - 1, 2);
        assert_eq!(w.deadline(key), Some(u64::MAX));
        for now in [1_000, SPAN, 9_223_372_036_000, 1 << 63, u64::MAX - 2] {
            assert_eq!(w.poll(now), None);
            assert!(w.poll_at().is_some_and(|at| at > now && at < u64::MAX));
        }
        assert_eq!(w.poll(u64::MAX - 1), Some((u64::MAX - 1, 2)));
        assert_eq!(w.cancel(near), None);
        assert_eq!(w.poll(u64::MAX - 1), None);
        assert_eq!(w.poll_at(), Some(u64::MAX));
        assert_eq!(w.cancel(key), Some(1));
        assert_eq!(w.poll(u64::MAX), None);
        assert_eq!(w.poll_at(), None);
        // And the same key fires when the clock really gets there.
        let key = w.insert(u64::MAX, 3);
        assert_eq!(w.poll(u64::MAX), Some((u64::MAX, 3)));
        assert_eq!(w.cancel(key), None);
    }

    #[test]
    fn empty_wheel_is_small_and_allocates_nothing() {
        let w: Wheel<u64> = Wheel::new(42);
        assert_eq!(w.entries.capacity(), 0);
        assert_eq!(w.slots.capacity(), 0);
        assert!(std::mem::size_of::<Wheel<u64>>() <= 160);
        assert_eq!(w.poll_at(), None);
        assert!(w.is_empty());
    }
}
