//! Lists `lpush rpush lpop rpop llen lrange blpop brpop` (protocol.md §8.11).
//! Blocked poppers park their connection and are served FIFO whichever end
//! they asked for; a push to a list with poppers hands the value straight over.
//!
//! Memory (§7.4a): a list key is charged [`memory::list_key`] when created and
//! credited when pruned; each item [`memory::list_item`] and each blocked
//! popper [`memory::POPPER`] while they are held. A hand-off holds nothing,
//! so the budget never refuses it.

use super::memory;
use super::owner::Parked;
use super::{Cx, Out, Outcome, State};
use crate::owner::OwnerId;
use crate::protocol::command::End;
use crate::protocol::reply::{Reply, Status};
use crate::timer::wheel::TimerKey;
use crate::timer::{Timer, deadline_after};
use std::collections::{HashMap, VecDeque};

#[derive(Debug)]
pub struct Popper {
    pub conn: OwnerId,
    pub end: End,
    pub timer: TimerKey,
}

#[derive(Debug, Default)]
pub struct List {
    pub items: VecDeque<Box<str>>,
    pub poppers: VecDeque<Popper>,
    /// Last push or pop (ms).
    pub touched: u64,
}

pub type Lists = HashMap<Box<str>, List>;

fn push_event(end: End) -> &'static str {
    match end {
        End::Left => "lpush",
        End::Right => "rpush",
    }
}

fn pop_event(end: End, blocking: bool) -> &'static str {
    match (end, blocking) {
        (End::Left, false) => "lpop",
        (End::Right, false) => "rpop",
        (End::Left, true) => "blpop",
        (End::Right, true) => "brpop",
    }
}

/// Store `value` at `end` of `list`; returns the new length and what the
/// item costs the budget.
fn put(list: &mut List, end: End, value: Box<str>, now: u64) -> (i64, usize) {
    let bytes = memory::list_item(value.len());
    list.touched = now;
    match end {
        End::Left => list.items.push_front(value),
        End::Right => list.items.push_back(value),
    }
    (list.items.len() as i64, bytes)
}

/// Ring capacity a list keeps however far it drains (items are 16 bytes).
const KEEP_ITEMS: usize = 64;

/// Pop one item. A ring drained to a quarter of its capacity gives half of it
/// back (amortised O(1)), so a queue that once backed up does not pin its
/// peak: the budget credits popped items, and the heap should follow.
fn take(list: &mut List, end: End) -> Option<Box<str>> {
    let v = match end {
        End::Left => list.items.pop_front(),
        End::Right => list.items.pop_back(),
    }?;
    let (len, cap) = (list.items.len(), list.items.capacity());
    if cap > KEEP_ITEMS && len * 4 < cap {
        list.items.shrink_to((len * 2).max(KEEP_ITEMS));
    }
    Some(v)
}

impl State {
    /// Delete the list if it is empty and nobody waits on it.
    fn prune_list(&mut self, key: &str) {
        if self
            .lists
            .get(key)
            .is_some_and(|l| l.items.is_empty() && l.poppers.is_empty())
        {
            self.lists.remove(key);
            self.mem.credit(memory::list_key(key.len()));
        }
    }

    /// The list `key`, created (and charged) if missing.
    fn list_entry(&mut self, key: &str) -> &mut List {
        if !self.lists.contains_key(key) {
            self.mem.charge(memory::list_key(key.len()));
        }
        self.lists.entry(key.into()).or_default()
    }

    pub(super) fn push(&mut self, cx: &mut Cx, end: End, key: &str, value: Box<str>) -> Reply {
        let Some(list) = self.lists.get_mut(key) else {
            if self.keys_full() {
                return Status::ErrorMaxKeys.into();
            }
            // A new list has no poppers and cannot be full.
            if self.mem.refuses(true) {
                return Status::ErrorMaxMemory.into();
            }
            let now = cx.now;
            let stored = put(self.list_entry(key), end, value, now);
            return self.pushed(cx, stored, end, key);
        };
        if let Some(p) = list.poppers.pop_front() {
            // Hand-off: the oldest blocked popper takes the value; the list does not grow.
            list.touched = cx.now;
            self.mem.credit(memory::POPPER);
            cx.timers.cancel(p.timer);
            if let Some(c) = self.conns.get_mut(p.conn) {
                c.parked = None;
            }
            cx.out.push(Out::Reply {
                conn: p.conn,
                reply: Reply::Text(value),
            });
            let len = list.items.len() as i64;
            self.prune_list(key);
            self.watch_event(cx, push_event(end), key);
            self.watch_event(cx, pop_event(p.end, true), key);
            return Reply::Int(len);
        }
        let max_len = self.cfg.max_list_length;
        if max_len > 0 && list.items.len() as u64 >= max_len {
            return Status::ErrorListFull.into();
        }
        if self.mem.refuses(true) {
            return Status::ErrorMaxMemory.into();
        }
        let stored = put(list, end, value, cx.now);
        self.pushed(cx, stored, end, key)
    }

    /// Account for an item just stored (`len` items now) and announce it.
    fn pushed(&mut self, cx: &mut Cx, (len, bytes): (i64, usize), end: End, key: &str) -> Reply {
        self.mem.charge(bytes);
        self.watch_event(cx, push_event(end), key);
        Reply::Int(len)
    }

    pub(super) fn pop(&mut self, cx: &mut Cx, end: End, key: &str) -> Reply {
        let Some(list) = self.lists.get_mut(key) else {
            return Status::Nil.into();
        };
        let Some(v) = take(list, end) else {
            return Status::Nil.into();
        };
        list.touched = cx.now;
        self.mem.credit(memory::list_item(v.len()));
        self.prune_list(key);
        self.watch_event(cx, pop_event(end, false), key);
        Reply::Text(v)
    }

    pub(super) fn llen(&self, key: &str) -> Reply {
        Reply::Int(self.lists.get(key).map_or(0, |l| l.items.len() as i64))
    }

    /// Redis index rules (§8.11).
    pub(super) fn lrange(&self, key: &str, start: i64, stop: i64) -> Reply {
        let empty = VecDeque::new();
        let items = self.lists.get(key).map_or(&empty, |l| &l.items);
        let n = items.len() as i128;
        let norm = |i: i64| if i < 0 { i as i128 + n } else { i as i128 };
        let start = norm(start).max(0);
        let stop = norm(stop).min(n - 1);
        let slice: Vec<&str> = if start > stop || start >= n {
            Vec::new()
        } else {
            items
                .range(start as usize..=stop as usize)
                .map(|s| &**s)
                .collect()
        };
        Reply::Text(
            serde_json::to_string(&slice)
                .unwrap_or_else(|_| "[]".into())
                .into(),
        )
    }

    pub(super) fn bpop(
        &mut self,
        cx: &mut Cx,
        conn: OwnerId,
        end: End,
        key: &str,
        timeout_s: u64,
    ) -> Outcome {
        if let Some(list) = self.lists.get_mut(key) {
            if let Some(v) = take(list, end) {
                list.touched = cx.now;
                self.mem.credit(memory::list_item(v.len()));
                self.prune_list(key);
                self.watch_event(cx, pop_event(end, true), key);
                return Outcome::Reply(Reply::Text(v));
            }
        }
        if timeout_s == 0 {
            return Outcome::Reply(Status::Nil.into());
        }
        let exists = self.lists.contains_key(key);
        if !exists && self.keys_full() {
            return Outcome::Reply(Status::ErrorMaxKeys.into());
        }
        if self.mem.refuses(!exists) {
            return Outcome::Reply(Status::ErrorMaxMemory.into());
        }
        let at = deadline_after(cx.now, timeout_s.saturating_mul(1000));
        let timer = cx.timers.insert(at, Timer::Park { conn });
        self.mem.charge(memory::POPPER);
        let list = self.list_entry(key);
        list.poppers.push_back(Popper { conn, end, timer });
        if let Some(c) = self.conns.get_mut(conn) {
            c.parked = Some(Parked::Pop { key: key.into() });
        }
        Outcome::Park
    }

    /// Remove `conn`'s blocked pop on `key` (timeout or cancellation).
    pub(super) fn drop_popper(&mut self, cx: &mut Cx, conn: OwnerId, key: &str) {
        if let Some(list) = self.lists.get_mut(key) {
            if let Some(i) = list.poppers.iter().position(|p| p.conn == conn) {
                if let Some(p) = list.poppers.remove(i) {
                    cx.timers.cancel(p.timer);
                    self.mem.credit(memory::POPPER);
                }
            }
        }
        self.prune_list(key);
    }
}
