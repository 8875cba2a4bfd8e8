//! Counters `incr decr get cset` (protocol.md §8.9): signed 64-bit, overflow
//! is an error (never a wrap); a missing counter reads 0.

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
    /// `incr` (sign = 1) and `decr` (sign = -1).
    pub(super) fn counter_add(&mut self, cx: &mut Cx, key: &str, delta: i64, decr: bool) -> Reply {
        let exists = self.counters.contains_key(key);
        if !exists && self.keys_full() {
            return Status::ErrorMaxKeys.into();
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
        self.counters.insert(
            key.into(),
            Counter {
                value: new,
                changed: cx.now,
            },
        );
        self.watch_event(cx, if decr { "decr" } else { "incr" }, key);
        Reply::Int(new)
    }

    pub(super) fn counter_get(&self, key: &str) -> Reply {
        Reply::Int(self.counters.get(key).map_or(0, |c| c.value))
    }

    pub(super) fn counter_set(&mut self, cx: &mut Cx, key: &str, value: i64) -> Reply {
        if !self.counters.contains_key(key) && self.keys_full() {
            return Status::ErrorMaxKeys.into();
        }
        self.counters.insert(
            key.into(),
            Counter {
                value,
                changed: cx.now,
            },
        );
        self.watch_event(cx, "cset", key);
        Reply::OK
    }

    /// Garbage collection of zero counters unchanged for `max_idle_ms` (§7.5).
    pub(super) fn collect_counters(&mut self, now: u64) {
        let max_idle = self.cfg.gc_max_idle_ms;
        self.counters
            .retain(|_, c| c.value != 0 || now.saturating_sub(c.changed) < max_idle);
    }
}
