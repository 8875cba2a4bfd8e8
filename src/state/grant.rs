//! The shared grant machinery of the lock table: acquire, enqueue, wait,
//! release, renew, expiry and FIFO hand-over. Exclusive locks, semaphores,
//! read-write locks, elections and Dreadlock locks are all thin callers of
//! these functions (protocol.md §6, §7.2, §7.3, §8.6).

use super::fence::Token;
use super::holders::Holder;
use super::memory;
use super::owner::{EnqState, Enqueue, Hold, Parked};
use super::resource::{Kind, Space};
use super::waiters::Waiter;
use super::{Cx, Out, Outcome, State, Via};
use crate::owner::OwnerId;
use crate::protocol::reply::{DreadReply, GrantWord, Reply, Status};
use crate::timer::{Timer, deadline_after};

/// Why a holder ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndCause {
    /// A release command with the token (`r sr rr wr`, Dreadlock `unlock`).
    Release,
    /// `resign`.
    Resign,
    /// The lease ran out.
    Expire,
    /// The owning connection went away (auto-release).
    Disconnect,
}

/// A holder about to be installed.
#[derive(Debug, Clone, Copy)]
struct NewGrant {
    conn: OwnerId,
    conn_serial: u64,
    token: Token,
    via: Via,
    lease_s: u64,
    two_phase: bool,
}

/// What an acquire asks for.
#[derive(Debug, Clone, Copy)]
pub struct Ask {
    pub space: Space,
    pub kind: Kind,
    pub via: Via,
    pub lease_s: u64,
}

impl State {
    // ---------------------------------------------------------------- lookup

    /// The existing resource for `key`, after the type/limit check of §7.2.
    /// Takes the new kind if the key is not in use.
    pub(super) fn existing_checked(
        &mut self,
        space: Space,
        key: &str,
        kind: Kind,
    ) -> Result<Option<u32>, Status> {
        let Some(idx) = self.table.find(space, key) else {
            return Ok(None);
        };
        let Some(r) = self.table.get_mut(idx) else {
            return Ok(None);
        };
        if r.in_use() && r.kind != kind {
            return Err(match (r.kind, kind) {
                (Kind::Semaphore(_), Kind::Semaphore(_)) => Status::ErrorLimitMismatch,
                _ => Status::ErrorTypeMismatch,
            });
        }
        r.kind = kind;
        Ok(Some(idx))
    }

    /// Create `key` unless `--max-locks` keys exist.
    pub(super) fn create_checked(
        &mut self,
        space: Space,
        key: &str,
        kind: Kind,
        now: u64,
    ) -> Result<u32, Status> {
        if self.table.len() as u64 >= self.cfg.max_locks {
            return Err(Status::ErrorMaxLocks);
        }
        Ok(self.table.create(space, key, kind, now, &mut self.mem))
    }

    fn find_or_create(&mut self, ask: &Ask, key: &str, now: u64) -> Result<u32, Status> {
        match self.existing_checked(ask.space, key, ask.kind)? {
            Some(idx) => Ok(idx),
            None => self.create_checked(ask.space, key, ask.kind, now),
        }
    }

    // ---------------------------------------------------------------- replies

    /// The reply to a grant made through `via`.
    pub(super) fn grant_reply(
        &self,
        via: Via,
        word: GrantWord,
        token: Token,
        lease_s: u64,
    ) -> Reply {
        match via {
            Via::Dread => Reply::Dread(DreadReply::Locked),
            _ => Reply::Grant {
                word,
                token,
                lease_s,
                with_fence: via.always_fenced() || self.cfg.fence_field,
            },
        }
    }

    fn timeout_reply(via: Via) -> Reply {
        match via {
            Via::Dread => Reply::Dread(DreadReply::Timeout),
            _ => Reply::Status(Status::Timeout),
        }
    }

    // ---------------------------------------------------------------- grants

    /// Take the next fence and a salt. On a persistence failure, arms the retry
    /// timer and returns None: nothing is granted above the persisted ceiling.
    fn new_token(&mut self, cx: &mut Cx) -> Option<Token> {
        match self.fences.next(cx.now) {
            Ok(fence) => Some(Token {
                fence,
                salt: self.salts.next(),
            }),
            Err(e) => {
                log::error!("cannot issue a fence: {e:?}");
                if !self.fence_retry_armed {
                    self.fence_retry_armed = true;
                    cx.timers
                        .insert(deadline_after(cx.now, 1000), Timer::FenceRetry);
                }
                None
            }
        }
    }

    /// Install a new holder on `res` and start its lease.
    fn install_holder(&mut self, cx: &mut Cx, res: u32, g: NewGrant) {
        let NewGrant {
            conn,
            conn_serial,
            token,
            via,
            lease_s,
            two_phase,
        } = g;
        let (deadline, timer) = if via == Via::Dread {
            (u64::MAX, None)
        } else {
            let d = deadline_after(cx.now, lease_s.saturating_mul(1000));
            (
                d,
                Some(cx.timers.insert(
                    d,
                    Timer::Lease {
                        res,
                        fence: token.fence,
                    },
                )),
            )
        };
        if let Some(r) = self.table.get_mut(res) {
            self.mem.charge(memory::holder(!r.holders.is_empty()));
            r.insert_holder(Holder {
                token,
                owner: conn,
                owner_serial: conn_serial,
                deadline,
                timer,
                via,
                two_phase,
            });
        }
        if let Some(c) = self.conns.get_mut(conn) {
            if c.holds.capacity() == 0 {
                // Most connections hold one lock: skip Vec's minimum of four.
                c.holds.reserve_exact(1);
            }
            c.holds.push(Hold {
                res,
                fence: token.fence,
                since: cx.now,
            });
            if via == Via::Dread {
                c.dread_holds += 1;
            }
        }
        self.totals.grants += 1;
        self.totals.by_label.grants[via as usize] += 1;
        let event = if via == Via::Elect {
            "elect"
        } else {
            "acquire"
        };
        self.watch_event_res(cx, event, res);
    }

    fn serial_of(&self, conn: OwnerId) -> u64 {
        self.conns.get(conn).map_or(0, |c| c.serial)
    }

    /// Grant on the spot if the queue is empty and there is capacity.
    /// `Ok(None)` = must queue; `Err` = fence failure.
    fn try_fast_grant(
        &mut self,
        cx: &mut Cx,
        res: u32,
        conn: OwnerId,
        ask: &Ask,
        two_phase: bool,
    ) -> Result<Option<Token>, ()> {
        let free = self
            .table
            .get(res)
            .is_some_and(|r| r.queue.is_empty() && r.has_capacity_for(ask.via));
        if !free {
            return Ok(None);
        }
        let token = self.new_token(cx).ok_or(())?;
        let serial = self.serial_of(conn);
        let grant = NewGrant {
            conn,
            conn_serial: serial,
            token,
            via: ask.via,
            lease_s: ask.lease_s,
            two_phase,
        };
        self.install_holder(cx, res, grant);
        if ask.via == Via::Elect {
            self.announce(cx, res, "elected");
        }
        Ok(Some(token))
    }

    /// Hand freed capacity to the head of the queue for as long as it fits
    /// (§7.3; read-write batching of §8.7 falls out of `has_capacity_for`).
    pub(super) fn grant_from_queue(&mut self, cx: &mut Cx, res: u32) {
        loop {
            let Some(r) = self.table.get(res) else { return };
            let Some(wid) = self.waiters.front(&r.queue) else {
                break;
            };
            let Some(w) = self.waiters.get(wid) else {
                break;
            };
            if !r.has_capacity_for(w.via) {
                break;
            }
            let exclusive = r.kind == Kind::Exclusive;
            let Some(token) = self.new_token(cx) else {
                break;
            };
            let Some(r) = self.table.get_mut(res) else {
                return;
            };
            let w = self.waiters.remove(&mut r.queue, wid);
            self.mem.credit(memory::WAITER);
            if exclusive {
                self.announce(cx, res, "failover");
            }
            let grant = NewGrant {
                conn: w.conn,
                conn_serial: w.conn_serial,
                token,
                via: w.via,
                lease_s: w.lease_s,
                two_phase: w.two_phase,
            };
            self.install_holder(cx, res, grant);
            self.deliver_grant(cx, wid, &w, token);
            if w.via == Via::Elect {
                self.announce(cx, res, "elected");
            }
        }
        self.mark_idle_if_unused(cx.now, res);
    }

    /// Tell the waiter's connection about its grant.
    fn deliver_grant(&mut self, cx: &mut Cx, wid: u32, w: &Waiter, token: Token) {
        let Some(c) = self.conns.get_mut(w.conn) else {
            return;
        };
        if w.two_phase {
            let Some(i) = c
                .enqueues
                .iter()
                .position(|e| e.state == EnqState::Queued { waiter: wid })
            else {
                return;
            };
            if !w.parked {
                // Granted before its wait: the lease runs; the wait returns the token.
                c.enqueues[i].state = EnqState::Granted { token };
                return;
            }
            // A wait was in progress: it completes now and consumes the state.
            c.enqueues.swap_remove(i);
            self.unmark_two_phase(w.res, token.fence);
        }
        if w.parked {
            if let Some(c) = self.conns.get_mut(w.conn) {
                if let Some(Parked::Waiter { timer: Some(t), .. }) = c.parked.take() {
                    cx.timers.cancel(t);
                }
            }
            let reply = self.grant_reply(w.via, GrantWord::Ok, token, w.lease_s);
            cx.out.push(Out::Reply {
                conn: w.conn,
                reply,
            });
        }
    }

    /// A leader event for the key of `res` to all its subscribers.
    fn announce(&mut self, cx: &mut Cx, res: u32, event: &str) {
        if let Some(name) = self.table.get(res).map(|r| r.name.clone()) {
            self.leader_event(cx, event, &name, None);
        }
    }

    fn unmark_two_phase(&mut self, res: u32, fence: u64) {
        if let Some(r) = self.table.get_mut(res) {
            if let Some(i) = r.holder_by_fence(fence) {
                r.holders[i].two_phase = false;
            }
        }
    }

    pub(super) fn mark_idle_if_unused(&mut self, now: u64, res: u32) {
        if let Some(r) = self.table.get_mut(res) {
            if !r.in_use() {
                r.idle_since = now;
            }
        }
    }

    // ---------------------------------------------------------------- acquire

    /// `l sl rl wl elect` and Dreadlock `lock`: grant, refuse, or park.
    pub(super) fn acquire(
        &mut self,
        cx: &mut Cx,
        conn: OwnerId,
        key: &str,
        ask: Ask,
        timeout_ms: u64,
    ) -> Outcome {
        let res = match self.find_or_create(&ask, key, cx.now) {
            Ok(r) => r,
            Err(s) => return Outcome::Reply(dread_or(ask.via, s)),
        };
        match self.try_fast_grant(cx, res, conn, &ask, false) {
            Err(()) => {
                self.mark_idle_if_unused(cx.now, res);
                return Outcome::Reply(dread_or(ask.via, Status::Error));
            }
            Ok(Some(token)) => {
                return Outcome::Reply(self.grant_reply(
                    ask.via,
                    GrantWord::Ok,
                    token,
                    ask.lease_s,
                ));
            }
            Ok(None) => {}
        }
        if timeout_ms == 0 {
            self.totals.acquire_timeouts += 1;
            return Outcome::Reply(Self::timeout_reply(ask.via));
        }
        if self.refuses_deadlock(conn, res, ask.via) {
            return Outcome::Reply(Status::ErrorDeadlock.into());
        }
        if self.queue_full(res) {
            return Outcome::Reply(dread_or(ask.via, Status::ErrorMaxWaiters));
        }
        let serial = self.serial_of(conn);
        let Some(r) = self.table.get_mut(res) else {
            return Outcome::Reply(Reply::ERROR);
        };
        let mut w = Waiter::new(conn, serial, res, ask.via, ask.lease_s);
        w.parked = true;
        w.since = cx.now;
        let wid = self.waiters.push_back(&mut r.queue, w);
        self.mem.charge(memory::WAITER);
        self.park(cx, conn, wid, timeout_ms);
        Outcome::Park
    }

    fn queue_full(&self, res: u32) -> bool {
        let max = self.cfg.max_waiters;
        max > 0
            && self
                .table
                .get(res)
                .is_some_and(|r| r.queue.len() as u64 >= max)
    }

    fn park(&mut self, cx: &mut Cx, conn: OwnerId, waiter: u32, timeout_ms: u64) {
        let timer = cx
            .timers
            .insert(deadline_after(cx.now, timeout_ms), Timer::Park { conn });
        if let Some(c) = self.conns.get_mut(conn) {
            c.parked = Some(Parked::Waiter {
                waiter,
                timer: Some(timer),
            });
        }
    }

    // ---------------------------------------------------------------- two-phase

    /// `e se re we` (§8.6).
    pub(super) fn enqueue(&mut self, cx: &mut Cx, conn: OwnerId, key: &str, ask: Ask) -> Reply {
        let existing = match self.existing_checked(ask.space, key, ask.kind) {
            Ok(e) => e,
            Err(s) => return s.into(),
        };
        if let Some(c) = self.conns.get(conn) {
            if let Some(i) = c.enqueue_index(ask.space, key) {
                let lost = match c.enqueues[i].state {
                    EnqState::Granted { token } => existing
                        .and_then(|r| self.table.get(r))
                        .is_none_or(|r| r.holder_index(&token).is_none()),
                    EnqState::Queued { .. } => false,
                };
                if !lost {
                    return Status::ErrorAlreadyEnqueued.into();
                }
                if let Some(c) = self.conns.get_mut(conn) {
                    c.enqueues.swap_remove(i);
                }
            }
        }
        let res = match existing {
            Some(r) => r,
            None => match self.create_checked(ask.space, key, ask.kind, cx.now) {
                Ok(r) => r,
                Err(s) => return s.into(),
            },
        };
        let state = match self.try_fast_grant(cx, res, conn, &ask, true) {
            Err(()) => {
                self.mark_idle_if_unused(cx.now, res);
                return Reply::ERROR;
            }
            Ok(Some(token)) => EnqState::Granted { token },
            Ok(None) => {
                if self.queue_full(res) {
                    return Status::ErrorMaxWaiters.into();
                }
                let serial = self.serial_of(conn);
                let Some(r) = self.table.get_mut(res) else {
                    return Reply::ERROR;
                };
                let mut w = Waiter::new(conn, serial, res, ask.via, ask.lease_s);
                w.two_phase = true;
                w.since = cx.now;
                self.mem.charge(memory::WAITER);
                EnqState::Queued {
                    waiter: self.waiters.push_back(&mut r.queue, w),
                }
            }
        };
        if let Some(c) = self.conns.get_mut(conn) {
            c.enqueues.push(Enqueue {
                space: ask.space,
                key: key.into(),
                via: ask.via,
                lease_s: ask.lease_s,
                state,
            });
        }
        match state {
            EnqState::Granted { token } => {
                self.grant_reply(ask.via, GrantWord::Acquired, token, ask.lease_s)
            }
            EnqState::Queued { waiter } => self.queued_reply(conn, waiter),
        }
    }

    /// `w sw rw ww` (§8.6).
    pub(super) fn wait(
        &mut self,
        cx: &mut Cx,
        conn: OwnerId,
        space: Space,
        key: &str,
        via: Via,
        timeout_ms: u64,
    ) -> Outcome {
        let Some(c) = self.conns.get_mut(conn) else {
            return Outcome::Reply(Reply::ERROR);
        };
        let Some(i) = c
            .enqueue_index(space, key)
            .filter(|&i| c.enqueues[i].via == via)
        else {
            return Outcome::Reply(Status::ErrorNotEnqueued.into());
        };
        let lease_s = c.enqueues[i].lease_s;
        match c.enqueues[i].state {
            EnqState::Granted { token } => {
                c.enqueues.swap_remove(i);
                let found = self.table.find(space, key).and_then(|res| {
                    let i = self.table.get(res)?.holder_index(&token)?;
                    Some((res, i))
                });
                let Some((res, i)) = found else {
                    return Outcome::Reply(Status::ErrorLeaseExpired.into());
                };
                if let Some(h) = self.table.get_mut(res).and_then(|r| r.holders.get_mut(i)) {
                    h.two_phase = false;
                }
                self.restart_lease(cx, res, i, lease_s);
                Outcome::Reply(self.grant_reply(via, GrantWord::Ok, token, lease_s))
            }
            EnqState::Queued { waiter } => {
                if timeout_ms == 0 {
                    c.enqueues.swap_remove(i);
                    self.totals.acquire_timeouts += 1;
                    self.drop_waiter(cx, waiter);
                    return Outcome::Reply(Status::Timeout.into());
                }
                // Refused, the enqueue stays queued as it was (§8.15).
                let res = self.waiters.get(waiter).map(|w| w.res);
                if res.is_some_and(|res| self.refuses_deadlock(conn, res, via)) {
                    return Outcome::Reply(Status::ErrorDeadlock.into());
                }
                if let Some(w) = self.waiters.get_mut(waiter) {
                    w.parked = true;
                }
                self.park(cx, conn, waiter, timeout_ms);
                Outcome::Park
            }
        }
    }

    /// Remove a waiter from its queue and let the queue move on.
    pub(super) fn drop_waiter(&mut self, cx: &mut Cx, wid: u32) -> Option<Waiter> {
        let res = self.waiters.get(wid)?.res;
        let r = self.table.get_mut(res)?;
        let w = self.waiters.remove(&mut r.queue, wid);
        self.mem.credit(memory::WAITER);
        // A departed head may unblock others (read-write §8.7).
        self.grant_from_queue(cx, res);
        Some(w)
    }

    // ---------------------------------------------------------------- parked

    /// A parked waiter's timeout fired: it leaves the queue and gets `timeout`.
    pub(super) fn waiter_timeout(&mut self, cx: &mut Cx, conn: OwnerId, waiter: u32) {
        let Some(w) = self.cancel_waiter(cx, conn, waiter, None) else {
            return;
        };
        self.totals.acquire_timeouts += 1;
        cx.out.push(Out::Reply {
            conn,
            reply: Self::timeout_reply(w.via),
        });
    }

    /// Remove a parked waiter without a reply; its two-phase state and elect
    /// candidacy end with it.
    pub(super) fn cancel_waiter(
        &mut self,
        cx: &mut Cx,
        conn: OwnerId,
        waiter: u32,
        timer: Option<crate::timer::wheel::TimerKey>,
    ) -> Option<Waiter> {
        if let Some(t) = timer {
            cx.timers.cancel(t);
        }
        let name = self
            .waiters
            .get(waiter)
            .and_then(|w| self.table.get(w.res))
            .map(|r| r.name.clone());
        let w = self.drop_waiter(cx, waiter)?;
        if w.two_phase {
            self.forget_queued_enqueue(conn, waiter);
        }
        if w.via == Via::Elect {
            if let Some(name) = name {
                self.end_candidacy(conn, &name);
            }
        }
        Some(w)
    }

    fn forget_queued_enqueue(&mut self, conn: OwnerId, waiter: u32) {
        if let Some(c) = self.conns.get_mut(conn) {
            c.enqueues
                .retain(|e| e.state != EnqState::Queued { waiter });
        }
    }

    // ---------------------------------------------------------------- release

    /// End holder `idx` of resource `res` and hand its capacity on.
    /// `by` is the connection whose command ended it (releases and resigns).
    pub(super) fn end_holder(
        &mut self,
        cx: &mut Cx,
        res: u32,
        idx: usize,
        cause: EndCause,
        by: Option<OwnerId>,
    ) {
        let Some(r) = self.table.get_mut(res) else {
            return;
        };
        let h = r.holders.remove(idx);
        // Holders leave in any order; what counts is how many are beyond the
        // first, which this keeps exact.
        self.mem.credit(memory::holder(!r.holders.is_empty()));
        let name = r.name.clone();
        let nobody_queued = r.queue.is_empty();
        if cause == EndCause::Expire {
            if r.remember_expired(h.token) {
                self.mem.charge(memory::EXPIRED_RING);
            }
        } else if let Some(t) = h.timer {
            cx.timers.cancel(t);
        }
        if let Some(c) = self.conns.get_mut(h.owner) {
            c.remove_hold(res, h.token.fence);
            if h.via == Via::Dread {
                c.dread_holds = c.dread_holds.saturating_sub(1);
            }
            if c.holds.is_empty() {
                c.leases_ended_at = cx.now;
            }
            // Releasing a two-phase grant discards its state (§8.6); an expired
            // one is kept so its wait answers `error_lease_expired`.
            if h.two_phase && cause != EndCause::Expire {
                c.enqueues
                    .retain(|e| e.state != EnqState::Granted { token: h.token });
            }
        }
        let event = if cause == EndCause::Resign {
            "resign"
        } else {
            "release"
        };
        self.watch_event(cx, event, &name);
        let voluntary = matches!(cause, EndCause::Release | EndCause::Resign);
        if h.via == Via::Elect && voluntary {
            if by == Some(h.owner) {
                // Releasing one's own leadership ends the candidacy first (§8.8).
                self.end_candidacy(h.owner, &name);
            }
            self.leader_event(cx, "resigned", &name, by);
        }
        self.grant_from_queue(cx, res);
        if h.via == Via::Elect && !voluntary && nobody_queued {
            self.leader_event(cx, "failover", &name, None);
        }
    }

    /// `r sr rr wr resign` by token: `ok` or `error`.
    pub(super) fn release_token(
        &mut self,
        cx: &mut Cx,
        space: Space,
        key: &str,
        token: &[u8],
        cause: EndCause,
        by: OwnerId,
    ) -> Reply {
        let found = Token::parse(token).and_then(|t| {
            let res = self.table.find(space, key)?;
            let i = self.table.get(res)?.holder_index(&t)?;
            Some((res, i))
        });
        match found {
            Some((res, i)) => {
                self.end_holder(cx, res, i, cause, Some(by));
                Reply::OK
            }
            None => Reply::ERROR,
        }
    }

    /// `n sn rn wn` by token (§8.4): `ok <lease>`, `error_lease_expired` or `error`.
    pub(super) fn renew_token(
        &mut self,
        cx: &mut Cx,
        space: Space,
        key: &str,
        token: &[u8],
        lease_s: u64,
        fenced: bool,
    ) -> Reply {
        let Some(t) = Token::parse(token) else {
            return Reply::ERROR;
        };
        let Some(res) = self.table.find(space, key) else {
            return Reply::ERROR;
        };
        let Some(r) = self.table.get_mut(res) else {
            return Reply::ERROR;
        };
        let Some(i) = r.holder_index(&t) else {
            return if r.was_expired(&t) {
                Status::ErrorLeaseExpired.into()
            } else {
                Reply::ERROR
            };
        };
        if r.holders[i].via == Via::Dread {
            return Reply::ERROR;
        }
        self.restart_lease(cx, res, i, lease_s);
        Reply::Lease {
            lease_s,
            fence: (fenced || self.cfg.fence_field).then_some(t.fence),
        }
    }

    /// Restart holder `i` of `res`: its lease now ends `lease_s` from now
    /// (renewals and the wait that completes a two-phase grant, §6.4).
    fn restart_lease(&mut self, cx: &mut Cx, res: u32, i: usize, lease_s: u64) {
        let Some(h) = self.table.get_mut(res).and_then(|r| r.holders.get_mut(i)) else {
            return;
        };
        let d = deadline_after(cx.now, lease_s.saturating_mul(1000));
        h.deadline = d;
        if let Some(old) = h.timer.take() {
            cx.timers.cancel(old);
        }
        let fence = h.token.fence;
        h.timer = Some(cx.timers.insert(d, Timer::Lease { res, fence }));
    }

    /// A lease timer fired.
    pub(super) fn lease_expired(&mut self, cx: &mut Cx, res: u32, fence: u64) {
        let Some(r) = self.table.get_mut(res) else {
            return;
        };
        let Some(i) = r.holder_by_fence(fence) else {
            return;
        };
        r.holders[i].timer = None;
        self.totals.lease_expirations += 1;
        self.end_holder(cx, res, i, EndCause::Expire, None);
    }

    // ---------------------------------------------------------------- disconnect

    /// Cleanup of §4.4 for the lock table.
    pub(super) fn release_conn_locks(&mut self, cx: &mut Cx, conn: OwnerId) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        let enqueues = std::mem::take(&mut c.enqueues);
        for e in enqueues {
            if let EnqState::Queued { waiter } = e.state {
                self.drop_waiter(cx, waiter);
            }
        }
        let holds = match self.conns.get_mut(conn) {
            Some(c) => std::mem::take(&mut c.holds),
            None => return,
        };
        for h in holds {
            let Some(r) = self.table.get(h.res) else {
                continue;
            };
            let Some(i) = r.holder_by_fence(h.fence) else {
                continue;
            };
            if self.cfg.auto_release || r.holders[i].via == Via::Dread {
                self.end_holder(cx, h.res, i, EndCause::Disconnect, None);
            }
        }
    }

    /// Retry a failed fence reservation; on success, serve queues that waited.
    pub(super) fn fence_retry(&mut self, cx: &mut Cx) {
        self.fence_retry_armed = false;
        if self.fences.retry(cx.now).is_err() {
            self.fence_retry_armed = true;
            cx.timers
                .insert(deadline_after(cx.now, 1000), Timer::FenceRetry);
            return;
        }
        let waiting: Vec<u32> = self.table.indices_with_waiters();
        for res in waiting {
            self.grant_from_queue(cx, res);
        }
    }
}

/// A status reply, or its Dreadlock spelling for a Dreadlock request.
fn dread_or(via: Via, s: Status) -> Reply {
    if via != Via::Dread {
        return s.into();
    }
    Reply::Dread(match s {
        Status::ErrorTypeMismatch => DreadReply::TypeMismatch,
        Status::ErrorMaxLocks => DreadReply::MaxLocks,
        Status::ErrorMaxWaiters => DreadReply::MaxWaiters,
        _ => DreadReply::ServerError,
    })
}
