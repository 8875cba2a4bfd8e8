//! Key-value store `kset kget kdel kcas` (protocol.md §8.10). TTL expiry is
//! driven by a wheel timer per entry (within 10 ms, never early); entries
//! without a TTL are kept until deleted.
//!
//! Memory (§7.4a): an entry is charged [`memory::kv_entry`] when created and
//! its value's change on every write; a TTL record is [`memory::TIMER`].
//! Removal credits exactly what the entry holds at that moment.

use super::memory;
use super::{Cx, State};
use crate::protocol::reply::{Reply, Status};
use crate::timer::wheel::TimerKey;
use crate::timer::{Timer, deadline_after};
use slab::Slab;
use std::collections::HashMap;
use std::rc::Rc;

#[derive(Debug)]
pub struct Entry {
    pub name: Rc<str>,
    pub value: Box<str>,
    /// Expiry timer and deadline; None = kept forever.
    pub ttl: Option<(TimerKey, u64)>,
    /// Last write (ms).
    pub written: u64,
}

/// Entries in a slab so an expiry timer refers to one by index.
#[derive(Debug, Default)]
pub struct Kv {
    keys: HashMap<Rc<str>, u32>,
    entries: Slab<Entry>,
}

impl Kv {
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(self.index(key)? as usize)
    }

    /// The slab index of `key`'s entry.
    fn index(&self, key: &str) -> Option<u32> {
        self.keys.get(key).copied()
    }

    /// Entries sorted by key (for `stats`).
    pub fn sorted(&self) -> Vec<&Entry> {
        let mut v: Vec<&Entry> = self.entries.iter().map(|(_, e)| e).collect();
        v.sort_unstable_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        v
    }
}

impl State {
    /// The §7.6 checks of a write of `len` bytes to `key` (entry at `at`):
    /// `--max-keys` if it creates the entry, then the budget if it creates
    /// the entry or grows its value (§7.4a).
    fn kv_admit(&mut self, at: Option<u32>, len: usize) -> Result<(), Status> {
        let old = at.and_then(|i| self.kv.entries.get(i as usize));
        let grows = old.is_none_or(|e| len > e.value.len());
        if old.is_none() && self.keys_full() {
            return Err(Status::ErrorMaxKeys);
        }
        if self.mem.refuses(grows) {
            return Err(Status::ErrorMaxMemory);
        }
        Ok(())
    }

    /// Write `value` with `ttl_s` (0 = none) to `key`, whose entry is at `at`
    /// (None: create it), replacing value and TTL.
    fn kv_write(&mut self, cx: &mut Cx, at: Option<u32>, key: &str, value: Box<str>, ttl_s: u64) {
        let idx = match at {
            Some(i) => i,
            None => {
                self.mem.charge(memory::kv_entry(key.len(), 0));
                let name: Rc<str> = key.into();
                let i = self.kv.entries.insert(Entry {
                    name: name.clone(),
                    value: "".into(),
                    ttl: None,
                    written: cx.now,
                }) as u32;
                self.kv.keys.insert(name, i);
                i
            }
        };
        let Some(e) = self.kv.entries.get_mut(idx as usize) else {
            return;
        };
        if let Some((t, _)) = e.ttl.take() {
            cx.timers.cancel(t);
            self.mem.credit(memory::TIMER);
        }
        if ttl_s > 0 {
            let d = deadline_after(cx.now, ttl_s.saturating_mul(1000));
            e.ttl = Some((cx.timers.insert(d, Timer::KvExpire { idx }), d));
            self.mem.charge(memory::TIMER);
        }
        self.mem
            .settle(memory::heap(e.value.len()), memory::heap(value.len()));
        e.value = value;
        e.written = cx.now;
    }

    fn kv_remove(&mut self, cx: &mut Cx, key: &str) -> bool {
        let Some(idx) = self.kv.keys.remove(key) else {
            return false;
        };
        let e = self.kv.entries.remove(idx as usize);
        self.mem
            .credit(memory::kv_entry(e.name.len(), e.value.len()));
        if let Some((t, _)) = e.ttl {
            cx.timers.cancel(t);
            self.mem.credit(memory::TIMER);
        }
        true
    }

    pub(super) fn kset(&mut self, cx: &mut Cx, key: &str, value: Box<str>, ttl: u64) -> Reply {
        let at = self.kv.index(key);
        if let Err(s) = self.kv_admit(at, value.len()) {
            return s.into();
        }
        self.kv_write(cx, at, key, value, ttl);
        self.watch_event(cx, "kset", key);
        Reply::OK
    }

    pub(super) fn kget(&self, key: &str) -> Reply {
        match self.kv.get(key) {
            Some(e) => Reply::Text(e.value.clone()),
            None => Status::Nil.into(),
        }
    }

    pub(super) fn kdel(&mut self, cx: &mut Cx, key: &str) -> Reply {
        self.kv_remove(cx, key);
        self.watch_event(cx, "kdel", key);
        Reply::OK
    }

    pub(super) fn kcas(
        &mut self,
        cx: &mut Cx,
        key: &str,
        old: &str,
        new: Box<str>,
        ttl: u64,
    ) -> Reply {
        let at = self.kv.index(key);
        let matches = match at.and_then(|i| self.kv.entries.get(i as usize)) {
            None => old.is_empty(),
            Some(e) => !old.is_empty() && *e.value == *old,
        };
        if !matches {
            return Status::CasConflict.into();
        }
        if let Err(s) = self.kv_admit(at, new.len()) {
            return s.into();
        }
        self.kv_write(cx, at, key, new, ttl);
        self.watch_event(cx, "kcas", key);
        Reply::OK
    }

    /// A TTL timer fired.
    pub(super) fn kv_expired(&mut self, cx: &mut Cx, idx: u32) {
        let Some(e) = self.kv.entries.get_mut(idx as usize) else {
            return;
        };
        // The timer fired: its record is gone already.
        if e.ttl.take().is_some() {
            self.mem.credit(memory::TIMER);
        }
        let name = e.name.clone();
        self.kv_remove(cx, &name);
        self.totals.kv_expirations += 1;
        self.watch_event(cx, "expire", &name);
    }
}
