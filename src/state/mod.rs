//! Coordination state: plain data, no IO, no clock.
//!
//! The server calls [`State::apply`] with one parsed command at a time, plus
//! [`State::on_timer`] and [`State::on_disconnect`]. Time comes in through
//! [`Cx::now`]; effects on *other* connections (grants to parked waiters, push
//! frames) go out through the outbox [`Cx::out`] in the order they happened —
//! raft-rs style, so this module is unit-testable without sockets.

mod barrier;
pub mod contention;
mod counter;
mod deadlock;
mod election;
mod events;
pub mod fence;
mod grant;
pub mod holders;
pub mod inspect;
mod kv;
pub mod latency;
mod lease_notice;
mod list;
mod lock;
pub mod memory;
pub mod options;
pub mod owner;
pub mod position;
pub mod resource;
mod rwlock;
mod semaphore;
mod stats_doc;
pub mod subjects;
pub mod waiters;
mod who;

#[cfg(test)]
mod budget_tests;

use crate::owner::OwnerId;
use crate::peer::PeerAddr;
use crate::protocol::command::Command;
use crate::protocol::reply::{Reply, Status};
use crate::stats::Totals;
use crate::timer::wheel::Wheel;
use crate::timer::{Timer, deadline_after};
use fence::{Fences, SaltSource};
use owner::{ConnTable, Parked};
use resource::Table;
use std::rc::Rc;
use subjects::{PubSub, Recipients, Watches};
use waiters::Waiters;

/// How a holder was granted: decides its capacity rule and reply form.
/// The order is `stats::GRANT_LABELS`'s (grants are counted by `via as usize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Lock,
    Sem,
    Read,
    Write,
    Elect,
    Dread,
}

impl Via {
    /// Read-write and election replies always carry the fence (§8.7, §8.8).
    pub fn always_fenced(self) -> bool {
        matches!(self, Via::Read | Via::Write | Via::Elect)
    }
}

/// Settings the state needs, in the units it uses.
#[derive(Debug, Clone)]
pub struct StateConfig {
    pub default_lease_s: u64,
    pub auto_release: bool,
    pub fence_field: bool,
    pub max_locks: u64,
    /// 0 = no limit (also for the next three).
    pub max_waiters: u64,
    pub max_keys: u64,
    pub max_list_length: u64,
    pub max_subscriptions: u64,
    /// `--max-memory` in bytes (protocol.md §7.4a); 0 = no budget.
    pub max_memory: u64,
    pub gc_interval_ms: u64,
    pub gc_max_idle_ms: u64,
}

impl StateConfig {
    /// No limits, no memory budget, auto-release on, 33 s default leases and
    /// the server's GC cadence: the base for benchmarks, the model check and
    /// tests that drive the state without a server (`..StateConfig::unlimited()`).
    pub fn unlimited() -> StateConfig {
        StateConfig {
            default_lease_s: 33,
            auto_release: true,
            fence_field: false,
            max_locks: u64::MAX,
            max_waiters: 0,
            max_keys: 0,
            max_list_length: 0,
            max_subscriptions: 0,
            max_memory: 0,
            gc_interval_ms: 5000,
            gc_max_idle_ms: 60_000,
        }
    }
}

/// An effect on some connection, produced while handling something else.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    /// The reply that completes the connection's parked command.
    Reply { conn: OwnerId, reply: Reply },
    /// A push frame, encoded once and shared by every recipient.
    Push { conn: OwnerId, frame: Rc<[u8]> },
    /// Close a slow consumer (already counted).
    CloseSlow { conn: OwnerId },
}

/// How the idle and request timeouts apply to a connection (§2.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleExemption {
    /// A Dreadlock hold: neither timeout runs.
    Dreadlock,
    /// A lease (lock, permit, read/write lock, leadership): the idle timeout
    /// does not run, the request timeout does.
    Lease,
    /// Both run; the idle clock starts no earlier than when the last lease ended.
    None { leases_ended_at: u64 },
}

/// What a connection holds and waits for (see [`State::holdings`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Holdings {
    /// Slots held: locks, permits, read/write locks, leaderships, Dreadlock holds.
    pub holds: usize,
    /// Parked on a blocking command, or queued through a two-phase enqueue.
    pub waiting: bool,
}

/// What the state did with a command.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Reply(Reply),
    /// The command waits; its reply will come through the outbox.
    Park,
}

/// Everything a state transition may touch besides the state itself.
pub struct Cx<'a> {
    pub now: u64,
    pub timers: &'a mut Wheel<Timer>,
    pub out: &'a mut Vec<Out>,
    /// Whether a connection can take `len` more output bytes (§2.7).
    pub can_take: &'a dyn Fn(OwnerId, usize) -> bool,
}

/// Facts about the server that `stats` reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerView {
    pub connections: usize,
    /// Live HTTP sessions, SSE streams included.
    pub http_sessions: usize,
    pub draining: bool,
    /// Set when TLS is on (`server.tls` in `stats`).
    pub tls: Option<TlsView>,
}

/// TLS facts for `stats` (the loop updates them; single-threaded, plain u64s).
#[derive(Debug, Clone, Copy, Default)]
pub struct TlsView {
    /// Handshakes that completed.
    pub handshakes_completed: u64,
    /// Connections that sent bytes but never completed a handshake: a TLS
    /// error, plain text, the 10 s deadline, or the peer leaving mid-handshake.
    pub handshakes_failed: u64,
    /// The loaded certificate's notAfter (seconds since 1970); `None`: unreadable.
    pub cert_not_after: Option<i64>,
    /// Client certificates are required.
    pub client_auth: bool,
}

pub struct State {
    pub cfg: StateConfig,
    table: Table,
    waiters: Waiters,
    conns: ConnTable,
    fences: Fences,
    salts: SaltSource,
    fence_retry_armed: bool,
    elections: election::Elections,
    counters: counter::Counters,
    kv: kv::Kv,
    lists: list::Lists,
    barriers: barrier::Barriers,
    pubsub: PubSub,
    watches: Watches,
    pub totals: Totals,
    /// Per-key contention and server-wide wait/hold histograms (§8.15).
    pub contention: contention::Contention,
    /// Pending `lease expiring` notices (§8.15).
    notices: lease_notice::LeaseNotices,
    /// The memory budget: every family charges and credits it (§7.4a).
    pub mem: memory::Budget,
    pub view: ServerView,
    /// A GC pass shrank a table since the server last asked (see
    /// [`State::take_freed_memory`]).
    freed_memory: bool,
    /// Scratch space of the wait-for cycle check (§8.15).
    deadlock_search: deadlock::Search,
}

impl State {
    pub fn new(cfg: StateConfig, fences: Fences) -> Self {
        State {
            mem: memory::Budget::new(cfg.max_memory),
            cfg,
            table: Table::default(),
            waiters: Waiters::default(),
            conns: ConnTable::default(),
            fences,
            salts: SaltSource::new(),
            fence_retry_armed: false,
            elections: Default::default(),
            counters: Default::default(),
            kv: Default::default(),
            lists: Default::default(),
            barriers: Default::default(),
            pubsub: PubSub::new(),
            watches: Watches::new(),
            totals: Totals::default(),
            contention: Default::default(),
            notices: Default::default(),
            view: ServerView::default(),
            freed_memory: false,
            deadlock_search: Default::default(),
        }
    }

    /// Whether a GC pass gave table memory back since the last call, so that
    /// the server can return the freed heap pages to the kernel.
    pub fn take_freed_memory(&mut self) -> bool {
        std::mem::take(&mut self.freed_memory)
    }

    /// Arm the periodic timers. Call once at start.
    pub fn start(&mut self, cx: &mut Cx) {
        cx.timers
            .insert(deadline_after(cx.now, self.cfg.gc_interval_ms), Timer::Gc);
    }

    pub fn on_connect(&mut self, conn: OwnerId, serial: u64) {
        self.conns.insert(conn, serial);
    }

    /// [`State::on_connect`] for an owner whose peer address is known: `stats`
    /// shows it beside the connection id (`owner_peer`, `leader_peer`).
    pub fn on_connect_from(&mut self, conn: OwnerId, serial: u64, peer: PeerAddr) {
        self.conns.insert(conn, serial);
        if let Some(c) = self.conns.get_mut(conn) {
            c.peer = Some(peer);
        }
    }

    /// Disconnect cleanup (protocol.md §4.4), in the spec's order.
    pub fn on_disconnect(&mut self, cx: &mut Cx, conn: OwnerId) {
        self.cancel_parked(cx, conn);
        self.release_conn_locks(cx, conn);
        let before = self.subject_bytes();
        self.pubsub.remove_conn(conn);
        self.watches.remove_conn(conn);
        self.settle_subjects(before);
        self.drop_election_subs(conn);
        self.conns.remove(conn);
    }

    /// The owner's options (§8.15); `None` for an owner the state does not know.
    pub fn options(&self, owner: OwnerId) -> Option<options::Options> {
        self.conns.get(owner).map(|c| c.options)
    }

    /// Change some of the owner's options (`PATCH /v1/sessions/{id}`) and
    /// return them all; `None` for an owner the state does not know.
    pub fn patch_options(
        &mut self,
        owner: OwnerId,
        patch: &[(options::OptName, Option<bool>)],
    ) -> Option<options::Options> {
        let c = self.conns.get_mut(owner)?;
        for &(name, on) in patch {
            if let Some(on) = on {
                c.options.set(name, on);
            }
        }
        Some(c.options)
    }

    /// The mode of `owner`'s pending read-write enqueue on `key`, if any
    /// (HTTP's `/v1/rwlocks/{key}/wait` names no mode).
    pub fn pending_rw_mode(
        &self,
        owner: OwnerId,
        key: &str,
    ) -> Option<crate::protocol::command::RwMode> {
        use crate::protocol::command::RwMode;
        let c = self.conns.get(owner)?;
        let e = &c.enqueues[c.enqueue_index(resource::Space::Lock, key)?];
        match e.via {
            Via::Read => Some(RwMode::Read),
            Via::Write => Some(RwMode::Write),
            _ => None,
        }
    }

    /// What the connection holds, for its idle and request timeouts (§2.8).
    pub fn idle_exemption(&self, conn: OwnerId) -> IdleExemption {
        match self.conns.get(conn) {
            Some(c) if c.dread_holds > 0 => IdleExemption::Dreadlock,
            Some(c) if !c.holds.is_empty() => IdleExemption::Lease,
            Some(c) => IdleExemption::None {
                leases_ended_at: c.leases_ended_at,
            },
            None => IdleExemption::None { leases_ended_at: 0 },
        }
    }

    /// What the connection holds and whether it waits, for the log line of a
    /// connection closed by a timeout (§2.8, §2.7).
    pub fn holdings(&self, conn: OwnerId) -> Holdings {
        match self.conns.get(conn) {
            Some(c) => Holdings {
                holds: c.holds.len(),
                waiting: c.parked.is_some()
                    || c.enqueues
                        .iter()
                        .any(|e| matches!(e.state, owner::EnqState::Queued { .. })),
            },
            None => Holdings::default(),
        }
    }

    /// Counters + KV entries + lists + barriers have reached `--max-keys`.
    fn keys_full(&self) -> bool {
        let max = self.cfg.max_keys;
        let n = self.counters.len() + self.kv.len() + self.lists.len() + self.barriers.len();
        max > 0 && n as u64 >= max
    }

    /// The connection may add one more registration (§7.4).
    fn may_subscribe(&self, conn: OwnerId) -> bool {
        let max = self.cfg.max_subscriptions;
        if max == 0 {
            return true;
        }
        let observed = self.conns.get(conn).map_or(0, |c| c.observed.len());
        ((self.pubsub.count_of(conn) + self.watches.count_of(conn) + observed) as u64) < max
    }

    /// What the pub/sub and watch indexes hold, by their own count (their
    /// trie nodes are shared between patterns, so only they know).
    fn subject_bytes(&self) -> usize {
        self.pubsub.bytes() + self.watches.bytes()
    }

    /// Charge or credit the change of [`State::subject_bytes`] since `before`.
    fn settle_subjects(&mut self, before: usize) {
        let after = self.subject_bytes();
        self.mem.settle(before, after);
    }

    /// The parked command's timeout fired.
    fn park_timeout(&mut self, cx: &mut Cx, conn: OwnerId) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        match c.parked.take() {
            None => {}
            Some(Parked::Waiter { waiter, .. }) => self.waiter_timeout(cx, conn, waiter),
            Some(Parked::Pop { key }) => {
                self.drop_popper(cx, conn, &key);
                cx.out.push(Out::Reply {
                    conn,
                    reply: Status::Nil.into(),
                });
            }
            Some(Parked::Barrier { key }) => {
                self.barrier_depart(cx, conn, &key);
                cx.out.push(Out::Reply {
                    conn,
                    reply: Status::Timeout.into(),
                });
            }
        }
    }

    /// Cancel the parked command without a reply (end of input, drain, disconnect).
    pub fn cancel_parked(&mut self, cx: &mut Cx, conn: OwnerId) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        match c.parked.take() {
            None => {}
            Some(Parked::Waiter { waiter, timer }) => {
                self.cancel_waiter(cx, conn, waiter, timer);
            }
            Some(Parked::Pop { key }) => self.drop_popper(cx, conn, &key),
            Some(Parked::Barrier { key }) => self.barrier_depart(cx, conn, &key),
        }
    }

    /// A timer owned by the state fired. Returns false for timers it does not own.
    pub fn on_timer(&mut self, cx: &mut Cx, timer: Timer) -> bool {
        match timer {
            Timer::Lease { res, fence } => self.lease_expired(cx, res, fence),
            Timer::LeaseNotice { res, fence } => self.lease_notice_due(cx, res, fence),
            Timer::Park { conn } => self.park_timeout(cx, conn),
            Timer::KvExpire { idx } => self.kv_expired(cx, idx),
            Timer::Gc => {
                let n = self
                    .table
                    .collect_idle(cx.now, self.cfg.gc_max_idle_ms, &mut self.mem);
                if n > 0 {
                    log::debug!("idle gc removed {n} lock-table keys");
                    self.freed_memory |= self.table.shrink_if_sparse();
                }
                self.collect_counters(cx.now);
                cx.timers
                    .insert(deadline_after(cx.now, self.cfg.gc_interval_ms), Timer::Gc);
            }
            Timer::FenceRetry => self.fence_retry(cx),
            _ => return false,
        }
        true
    }

    fn lease_or_default(&self, lease: Option<u64>) -> u64 {
        lease.unwrap_or(self.cfg.default_lease_s)
    }

    /// Execute one command for `conn`.
    pub fn apply(&mut self, cx: &mut Cx, conn: OwnerId, cmd: Command) -> Outcome {
        self.totals.commands += 1;
        let reply = match cmd {
            Command::Ping => Reply::OK,
            Command::Stats => self.stats_reply(cx.now),
            // Authentication is the server's business; here `auth` is a repeat.
            Command::Auth(_) => Reply::ERROR,
            Command::Lock { .. }
            | Command::Release { .. }
            | Command::Renew { .. }
            | Command::Enqueue { .. }
            | Command::Wait { .. }
            | Command::DreadLock { .. }
            | Command::DreadUnlock { .. } => return self.apply_lock(cx, conn, cmd),
            Command::SemLock { .. }
            | Command::SemRelease { .. }
            | Command::SemRenew { .. }
            | Command::SemEnqueue { .. }
            | Command::SemWait { .. } => return self.apply_semaphore(cx, conn, cmd),
            Command::RwLock { .. }
            | Command::RwRelease { .. }
            | Command::RwRenew { .. }
            | Command::RwEnqueue { .. }
            | Command::RwWait { .. } => return self.apply_rwlock(cx, conn, cmd),
            Command::Elect {
                key,
                timeout,
                lease,
            } => return self.elect(cx, conn, &key, timeout, lease),
            Command::Resign { key, token } => self.resign(cx, conn, &key, &token),
            Command::Observe { key } => self.observe(cx, conn, &key),
            Command::Unobserve { key } => self.unobserve(conn, &key),
            Command::Incr { key, delta } => self.counter_add(cx, &key, delta, false),
            Command::Decr { key, delta } => self.counter_add(cx, &key, delta, true),
            Command::Get { key } => self.counter_get(&key),
            Command::CSet { key, value } => self.counter_set(cx, &key, value),
            Command::KSet { key, value, ttl } => self.kset(cx, &key, value, ttl),
            Command::KGet { key } => self.kget(&key),
            Command::KDel { key } => self.kdel(cx, &key),
            Command::KCas { key, old, new, ttl } => self.kcas(cx, &key, &old, new, ttl),
            Command::Push { end, key, value } => self.push(cx, end, &key, value),
            Command::Pop { end, key } => self.pop(cx, end, &key),
            Command::LLen { key } => self.llen(&key),
            Command::LRange { key, start, stop } => self.lrange(&key, start, stop),
            Command::BPop { end, key, timeout } => return self.bpop(cx, conn, end, &key, timeout),
            Command::Listen { pattern, group } => {
                let new = !self.pubsub.has(conn, &pattern, group.as_deref());
                if new && !self.may_subscribe(conn) {
                    Status::ErrorMaxSubscriptions.into()
                } else if self.mem.refuses(new) {
                    Status::ErrorMaxMemory.into()
                } else {
                    let before = self.subject_bytes();
                    self.pubsub.listen(conn, &pattern, group.as_deref());
                    self.settle_subjects(before);
                    Reply::OK
                }
            }
            Command::Unlisten { pattern, group } => {
                let before = self.subject_bytes();
                self.pubsub.unlisten(conn, &pattern, group.as_deref());
                self.settle_subjects(before);
                Reply::OK
            }
            Command::Signal { channel, payload } => self.signal(cx, &channel, &payload),
            Command::Watch { pattern } => {
                let new = !self.watches.has(conn, &pattern);
                if new && !self.may_subscribe(conn) {
                    Status::ErrorMaxSubscriptions.into()
                } else if self.mem.refuses(new) {
                    Status::ErrorMaxMemory.into()
                } else {
                    let before = self.subject_bytes();
                    self.watches.watch(conn, &pattern);
                    self.settle_subjects(before);
                    Reply::OK
                }
            }
            Command::Unwatch { pattern } => {
                let before = self.subject_bytes();
                self.watches.unwatch(conn, &pattern);
                self.settle_subjects(before);
                Reply::OK
            }
            Command::BWait {
                key,
                count,
                timeout,
            } => return self.bwait(cx, conn, &key, count, timeout),
            Command::Pos { key } => self.pos(conn, &key),
            Command::Who { key } => self.who(cx.now, &key),
            Command::Opt { name, on } => match self.conns.get_mut(conn) {
                Some(c) => {
                    c.options.set(name, on);
                    Reply::OK
                }
                None => Reply::ERROR,
            },
        };
        Outcome::Reply(reply)
    }

    /// Undo a long-poll's result whose client left before its response
    /// (http.md §2.3): a popped value goes back, a grant is released. It only
    /// restores what was held a moment ago, so the memory budget never
    /// refuses it (§7.4a).
    pub fn apply_undo(&mut self, cx: &mut Cx, owner: OwnerId, cmd: Command) -> Outcome {
        self.mem.exempt(true);
        let outcome = self.apply(cx, owner, cmd);
        self.mem.exempt(false);
        outcome
    }

    /// `signal`: one frame per recipient per §8.12, encoded once.
    fn signal(&mut self, cx: &mut Cx, channel: &str, payload: &str) -> Reply {
        let mut frame = Vec::with_capacity(channel.len() + payload.len() + 6);
        frame.extend_from_slice(b"sig ");
        frame.extend_from_slice(channel.as_bytes());
        frame.push(b' ');
        frame.extend_from_slice(payload.as_bytes());
        frame.push(b'\n');
        let mut rx = SignalRx {
            cx,
            frame: frame.into(),
            slow: 0,
        };
        let n = self.pubsub.publish(channel, rx.frame.len(), &mut rx);
        let slow = rx.slow;
        self.totals.slow_consumer_disconnects += slow;
        self.totals.signals_published += 1;
        self.totals.signals_delivered += n as u64;
        Reply::Int(n as i64)
    }
}

/// The server side of one `signal`, as pub/sub's recipients.
struct SignalRx<'c, 'a> {
    cx: &'c mut Cx<'a>,
    frame: Rc<[u8]>,
    slow: u64,
}

impl Recipients for SignalRx<'_, '_> {
    fn can_take(&self, conn: OwnerId, len: usize) -> bool {
        (self.cx.can_take)(conn, len)
    }

    fn deliver(&mut self, conn: OwnerId) {
        self.cx.out.push(Out::Push {
            conn,
            frame: self.frame.clone(),
        });
    }

    fn close_slow(&mut self, conn: OwnerId) {
        self.slow += 1;
        self.cx.out.push(Out::CloseSlow { conn });
    }
}
