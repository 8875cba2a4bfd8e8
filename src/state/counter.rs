//! Counters `incr decr get cset` (protocol.md §8.9): signed 64-bit, overflow
//! is an error (never a wrap); a missing counter reads 0.

use super::memory;
use super::{Cx, State};
use crate::protocol::reply::{Reply, Status};
use std::collections::HashMap;

#[derive(Debug)]
pub struct Counter {
    pub value: i64,
    /// Last change (ms), for `idle_s` and garbage collection of zero counters.
    pub changed: u64,
}

pub type Counters = HashMap<Box<str>, Counter>;

impl State {
    /// The §7.6 checks for a write to counter `key`: `--max-keys`, then the
    /// memory budget, both only when the write would create the counter.
    fn counter_admit(&mut self, key: &str) -> Result<(), Status> {
        let exists = self.counters.contains_key(key);
        if !exists && self.keys_full() {
            return Err(Status::ErrorMaxKeys);
        }
        if self.mem.refuses(!exists) {
            return Err(Status::ErrorMaxMemory);
        }
        Ok(())
    }

    /// Set counter `key` to `value`, creating (and charging) it if missing.
    fn counter_store(&mut self, key: &str, value: i64, now: u64) {
        let counter = Counter {
            value,
            changed: now,
        };
        if let Some(c) = self.counters.get_mut(key) {
            *c = counter;
            return;
        }
        self.mem.charge(memory::counter(key.len()));
        self.counters.insert(key.into(), counter);
    }

    /// `incr` (sign = 1) and `decr` (sign = -1).
    pub(super) fn counter_add(&mut self, cx: &mut Cx, key: &str, delta: i64, decr: bool) -> Reply {
        if let Err(s) = self.counter_admit(key) {
            return s.into();
        }
        let old = self.counters.get(key).map_or(0, |c| c.value);
        let new = if decr {
            old.checked_sub(delta)
        } else {
            old.checked_add(delta)
        };
        let Some(new) = new else {
            return Reply::ERROR;
        };
        self.counter_store(key, new, cx.now);
        self.watch_event(cx, if decr { "decr" } else { "incr" }, key);
        Reply::Int(new)
    }

    pub(super) fn counter_get(&self, key: &str) -> Reply {
        Reply::Int(self.counters.get(key).map_or(0, |c| c.value))
    }

    pub(super) fn counter_set(&mut self, cx: &mut Cx, key: &str, value: i64) -> Reply {
        if let Err(s) = self.counter_admit(key) {
            return s.into();
        }
        self.counter_store(key, value, cx.now);
        self.watch_event(cx, "cset", key);
        Reply::OK
    }

    /// Garbage collection of zero counters unchanged for `max_idle_ms` (§7.5).
    pub(super) fn collect_counters(&mut self, now: u64) {
        let max_idle = self.cfg.gc_max_idle_ms;
        let mem = &mut self.mem;
        self.counters.retain(|k, c| {
            let keep = c.value != 0 || now.saturating_sub(c.changed) < max_idle;
            if !keep {
                mem.credit(memory::counter(k.len()));
            }
            keep
        });
    }
}
