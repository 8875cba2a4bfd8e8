//! The holders of one resource, sorted by fence.
//!
//! Almost every key has at most one holder at a time (an exclusive lock, a
//! writer, a single reader or permit), so that holder is stored inline in the
//! resource. Only a second concurrent holder (readers, semaphore permits)
//! moves them to a vector. A held lock thereby costs no allocation of its own,
//! which is ~64 bytes per held lock (memory per key matters on small hosts).
//!
//! Everything that only reads or edits holders in place goes through the
//! slice this type dereferences to.

use super::Via;
use super::fence::Token;
use crate::owner::OwnerId;
use crate::timer::wheel::TimerKey;
use std::ops::{Deref, DerefMut};

/// One holder of a resource slot.
#[derive(Debug, Clone)]
pub struct Holder {
    pub token: Token,
    pub owner: OwnerId,
    pub owner_serial: u64,
    /// `u64::MAX` for a Dreadlock hold, which has no lease.
    pub deadline: u64,
    /// When the slot was granted (ms): hold times for the contention statistics.
    pub granted_at: u64,
    pub timer: Option<TimerKey>,
    pub via: Via,
    /// Granted through a two-phase enqueue whose wait may still come.
    pub two_phase: bool,
}

#[derive(Debug, Default)]
pub enum Holders {
    #[default]
    None,
    One(Holder),
    /// Two or more; back to `One` when a removal leaves one.
    Many(Vec<Holder>),
}

impl Holders {
    /// Insert `h` at `at` (see `slice::partition_point`), keeping the order.
    pub fn insert(&mut self, at: usize, h: Holder) {
        *self = match std::mem::take(self) {
            Holders::None => Holders::One(h),
            Holders::One(first) => {
                let mut v = Vec::with_capacity(2);
                v.push(first);
                v.insert(at, h);
                Holders::Many(v)
            }
            Holders::Many(mut v) => {
                v.insert(at, h);
                Holders::Many(v)
            }
        };
    }

    /// Remove and return the holder at `idx`, which must be in bounds.
    ///
    /// # Panics
    /// If `idx` is out of bounds (like `Vec::remove`).
    pub fn remove(&mut self, idx: usize) -> Holder {
        match std::mem::take(self) {
            Holders::None => panic!("holder index {idx} out of bounds (no holders)"),
            Holders::One(h) => {
                assert_eq!(idx, 0, "holder index {idx} out of bounds (one holder)");
                h
            }
            Holders::Many(mut v) => {
                let h = v.remove(idx);
                *self = match v.len() {
                    1 => Holders::One(v.remove(0)),
                    _ => Holders::Many(v),
                };
                h
            }
        }
    }
}

impl Deref for Holders {
    type Target = [Holder];

    fn deref(&self) -> &[Holder] {
        match self {
            Holders::None => &[],
            Holders::One(h) => std::slice::from_ref(h),
            Holders::Many(v) => v,
        }
    }
}

impl DerefMut for Holders {
    fn deref_mut(&mut self) -> &mut [Holder] {
        match self {
            Holders::None => &mut [],
            Holders::One(h) => std::slice::from_mut(h),
            Holders::Many(v) => v,
        }
    }
}

#[cfg(test)]
impl Holder {
    /// A lease-less holder with fence `fence`, for unit tests.
    pub fn for_test(fence: u64, via: Via) -> Holder {
        Holder {
            token: Token { fence, salt: 7 },
            owner: OwnerId {
                slot: 0,
                generation: 0,
            },
            owner_serial: 1,
            deadline: u64::MAX,
            granted_at: 0,
            timer: None,
            via,
            two_phase: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Via;

    fn holder(fence: u64) -> Holder {
        Holder::for_test(fence, Via::Read)
    }

    fn fences(h: &Holders) -> Vec<u64> {
        h.iter().map(|h| h.token.fence).collect()
    }

    #[test]
    fn one_holder_is_inline_and_more_spill_to_a_vector() {
        let mut h = Holders::default();
        assert!(h.is_empty());
        h.insert(0, holder(5));
        assert!(matches!(h, Holders::One(_)));
        h.insert(1, holder(9));
        h.insert(1, holder(7));
        h.insert(0, holder(1));
        assert!(matches!(h, Holders::Many(_)));
        assert_eq!(fences(&h), [1, 5, 7, 9]);
        h[2].two_phase = true;
        assert!(h[2].two_phase);
        assert_eq!(h.remove(0).token.fence, 1);
        assert_eq!(h.remove(2).token.fence, 9);
        assert_eq!(fences(&h), [5, 7]);
        // The last but one leaves: back inline.
        assert_eq!(h.remove(0).token.fence, 5);
        assert!(matches!(h, Holders::One(_)));
        assert_eq!(fences(&h), [7]);
        assert!(h[0].two_phase);
        assert_eq!(h.remove(0).token.fence, 7);
        assert!(matches!(h, Holders::None));
        assert!(h.is_empty());
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn removing_past_the_end_panics_like_a_vector() {
        let mut h = Holders::default();
        h.insert(0, holder(1));
        h.remove(1);
    }
}
