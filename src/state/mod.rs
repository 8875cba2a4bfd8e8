//! Coordination state: plain data, no IO, no clock.
//!
//! The server calls [`State::apply`] with one parsed command at a time, plus
//! [`State::on_timer`] and [`State::on_disconnect`]. Time comes in through
//! [`Cx::now`]; effects on *other* connections (grants to parked waiters, push
//! frames) go out through the outbox [`Cx::out`] in the order they happened —
//! raft-rs style, so this module is unit-testable without sockets.

pub mod fence;
mod grant;
mod lock;
pub mod owner;
pub mod resource;
mod semaphore;
mod stats_doc;
pub mod waiters;

use crate::protocol::command::Command;
use crate::protocol::reply::{Reply, Status};
use crate::server::tokens::ConnId;
use crate::stats::Totals;
use crate::timer::wheel::Wheel;
use crate::timer::{Timer, deadline_after};
use fence::{Fences, SaltSource};
use owner::ConnTable;
use resource::Table;
use waiters::Waiters;

/// How a holder was granted: decides its capacity rule and reply form.
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
    /// 0 = no limit.
    pub max_waiters: u64,
    pub gc_interval_ms: u64,
    pub gc_max_idle_ms: u64,
}

/// An effect on some connection, produced while handling something else.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    /// The reply that completes the connection's parked command.
    Reply { conn: ConnId, reply: Reply },
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
}

/// Facts about the server that `stats` reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerView {
    pub connections: usize,
    pub draining: bool,
}

pub struct State {
    pub cfg: StateConfig,
    table: Table,
    waiters: Waiters,
    conns: ConnTable,
    fences: Fences,
    salts: SaltSource,
    fence_retry_armed: bool,
    pub totals: Totals,
    pub view: ServerView,
}

impl State {
    pub fn new(cfg: StateConfig, fences: Fences) -> Self {
        State {
            cfg,
            table: Table::default(),
            waiters: Waiters::default(),
            conns: ConnTable::default(),
            fences,
            salts: SaltSource::new(),
            fence_retry_armed: false,
            totals: Totals::default(),
            view: ServerView::default(),
        }
    }

    /// Arm the periodic timers. Call once at start.
    pub fn start(&mut self, cx: &mut Cx) {
        cx.timers
            .insert(deadline_after(cx.now, self.cfg.gc_interval_ms), Timer::Gc);
    }

    pub fn on_connect(&mut self, conn: ConnId, serial: u64) {
        self.conns.insert(conn, serial);
    }

    /// Disconnect cleanup (protocol.md §4.4).
    pub fn on_disconnect(&mut self, cx: &mut Cx, conn: ConnId) {
        self.release_conn_locks(cx, conn);
        self.conns.remove(conn);
    }

    /// True while the connection holds a Dreadlock lock (its idle timeout is off, §2.8).
    pub fn holds_dreadlock(&self, conn: ConnId) -> bool {
        self.conns.get(conn).is_some_and(|c| c.dread_holds > 0)
    }

    /// A timer owned by the state fired. Returns false for timers it does not own.
    pub fn on_timer(&mut self, cx: &mut Cx, timer: Timer) -> bool {
        match timer {
            Timer::Lease { res, fence } => self.lease_expired(cx, res, fence),
            Timer::Park { conn } => self.park_timeout(cx, conn),
            Timer::Gc => {
                let n = self.table.collect_idle(cx.now, self.cfg.gc_max_idle_ms);
                if n > 0 {
                    log::debug!("idle gc removed {n} keys");
                }
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
    pub fn apply(&mut self, cx: &mut Cx, conn: ConnId, cmd: Command) -> Outcome {
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
            _ => Reply::Status(Status::Error),
        };
        Outcome::Reply(reply)
    }
}
