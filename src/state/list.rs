//! Lists `lpush rpush lpop rpop llen lrange blpop brpop` (protocol.md §8.11).
//! Blocked poppers park their connection and are served FIFO whichever end
//! they asked for; a push to a list with poppers hands the value straight over.

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

fn take(list: &mut List, end: End) -> Option<Box<str>> {
    match end {
        End::Left => list.items.pop_front(),
        End::Right => list.items.pop_back(),
    }
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
        }
    }

    pub(super) fn push(&mut self, cx: &mut Cx, end: End, key: &str, value: Box<str>) -> Reply {
        if !self.lists.contains_key(key) && self.keys_full() {
            return Status::ErrorMaxKeys.into();
        }
        let max_len = self.cfg.max_list_length;
        let list = self.lists.entry(key.into()).or_default();
        list.touched = cx.now;
        if let Some(p) = list.poppers.pop_front() {
            // Hand-off: the oldest blocked popper takes the value; the list does not grow.
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
        if max_len > 0 && list.items.len() as u64 >= max_len {
            self.prune_list(key);
            return Status::ErrorListFull.into();
        }
        match end {
            End::Left => list.items.push_front(value),
            End::Right => list.items.push_back(value),
        }
        let len = list.items.len() as i64;
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
                self.prune_list(key);
                self.watch_event(cx, pop_event(end, true), key);
                return Outcome::Reply(Reply::Text(v));
            }
        }
        if timeout_s == 0 {
            return Outcome::Reply(Status::Nil.into());
        }
        if !self.lists.contains_key(key) && self.keys_full() {
            return Outcome::Reply(Status::ErrorMaxKeys.into());
        }
        let at = deadline_after(cx.now, timeout_s.saturating_mul(1000));
        let timer = cx.timers.insert(at, Timer::Park { conn });
        let list = self.lists.entry(key.into()).or_default();
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
                }
            }
        }
        self.prune_list(key);
    }
}
