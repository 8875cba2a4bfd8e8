//! Barriers `bwait` (protocol.md §8.14): `<count>` connections meet; any
//! departure cancels the barrier for everyone.

use super::memory;
use super::owner::Parked;
use super::{Cx, Out, Outcome, State};
use crate::owner::OwnerId;
use crate::protocol::reply::{Reply, Status};
use crate::timer::wheel::TimerKey;
use crate::timer::{Timer, deadline_after};
use std::collections::HashMap;

#[derive(Debug)]
pub struct Barrier {
    pub count: u32,
    pub waiting: Vec<(OwnerId, TimerKey)>,
    /// Last arrival (ms).
    pub touched: u64,
}

pub type Barriers = HashMap<Box<str>, Barrier>;

/// What barrier `key` with its participants costs the budget.
fn barrier_bytes(key: &str, b: &Barrier) -> usize {
    memory::barrier(key.len()) + b.waiting.len() * memory::BARRIER_PARTICIPANT
}

impl State {
    pub(super) fn bwait(
        &mut self,
        cx: &mut Cx,
        conn: OwnerId,
        key: &str,
        count: u32,
        timeout_s: u64,
    ) -> Outcome {
        let arrived = match self.barriers.get(key) {
            Some(b) if b.count != count => {
                return Outcome::Reply(Status::ErrorBarrierCountMismatch.into());
            }
            Some(b) if b.waiting.iter().any(|(c, _)| *c == conn) => {
                return Outcome::Reply(Reply::ERROR);
            }
            Some(b) => b.waiting.len() as u32,
            None => 0,
        };
        if arrived + 1 >= count {
            // This arrival completes it: everybody gets `ok` at the same moment.
            if let Some(b) = self.barriers.remove(key) {
                self.mem.credit(barrier_bytes(key, &b));
                for (c, t) in b.waiting {
                    cx.timers.cancel(t);
                    if let Some(cs) = self.conns.get_mut(c) {
                        cs.parked = None;
                    }
                    cx.out.push(Out::Reply {
                        conn: c,
                        reply: Reply::OK,
                    });
                }
            }
            return Outcome::Reply(Reply::OK);
        }
        if timeout_s == 0 {
            // A try that does not complete leaves the barrier untouched.
            return Outcome::Reply(Status::Timeout.into());
        }
        if arrived == 0 && self.keys_full() {
            return Outcome::Reply(Status::ErrorMaxKeys.into());
        }
        if self.mem.refuses(arrived == 0) {
            return Outcome::Reply(Status::ErrorMaxMemory.into());
        }
        let at = deadline_after(cx.now, timeout_s.saturating_mul(1000));
        let timer = cx.timers.insert(at, Timer::Park { conn });
        if arrived == 0 {
            self.mem.charge(memory::barrier(key.len()));
        }
        self.mem.charge(memory::BARRIER_PARTICIPANT);
        let b = self.barriers.entry(key.into()).or_insert(Barrier {
            count,
            waiting: Vec::new(),
            touched: cx.now,
        });
        b.waiting.push((conn, timer));
        b.touched = cx.now;
        if let Some(c) = self.conns.get_mut(conn) {
            c.parked = Some(Parked::Barrier { key: key.into() });
        }
        Outcome::Park
    }

    /// `conn` departs (timeout or disconnect): everyone else gets `timeout`, the barrier goes.
    pub(super) fn barrier_depart(&mut self, cx: &mut Cx, conn: OwnerId, key: &str) {
        let Some(b) = self.barriers.remove(key) else {
            return;
        };
        self.mem.credit(barrier_bytes(key, &b));
        for (c, t) in b.waiting {
            cx.timers.cancel(t);
            if c == conn {
                continue;
            }
            if let Some(cs) = self.conns.get_mut(c) {
                cs.parked = None;
            }
            cx.out.push(Out::Reply {
                conn: c,
                reply: Status::Timeout.into(),
            });
        }
    }
}
