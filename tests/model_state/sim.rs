//! The driver of the model check: a fresh `State` with its wheel, an injected
//! clock and a few owners, stepped by [`Act`]s, with what each client knows
//! (its last token per key, where it is parked) tracked on the side.
//!
//! `State` is not `Clone`, so a model state is its script of actions: every
//! transition replays the script into a fresh `Sim` (cheap at these depths),
//! applies one more action with every check on, and hashes the [`View`] of
//! the result.

use dflockd::owner::OwnerId;
use dflockd::protocol::command::{Command, RwMode};
use dflockd::protocol::reply::{GrantWord, Reply, Status};
use dflockd::state::fence::{Fences, Token};
use dflockd::state::inspect::{LockSnapshot, ResourceView};
use dflockd::state::resource::{Kind, Space};
use dflockd::state::{Cx, Out, Outcome, State, StateConfig, Via};
use dflockd::timer::Timer;
use dflockd::timer::wheel::Wheel;

/// Lease of every grant, seconds. Shorter than [`WAIT_S`], so a lease can
/// run out and hand over to a waiter that is still waiting.
pub const LEASE_S: u64 = 2;
/// Timeout of every blocking acquire and wait that does not use 0, seconds.
pub const WAIT_S: u64 = 3;
/// How far a `Sleep` moves the clock, ms (lands between deadlines).
pub const SLEEP_MS: u64 = 1000;
/// Semaphore limit of the model's semaphore keys.
pub const SEM_LIMIT: u32 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyKind {
    Excl,
    Sem,
    Rw,
}

/// The kind of slot a command asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    Excl,
    Sem,
    Read,
    Write,
}

impl Mode {
    pub fn via(self) -> Via {
        match self {
            Mode::Excl => Via::Lock,
            Mode::Sem => Via::Sem,
            Mode::Read => Via::Read,
            Mode::Write => Via::Write,
        }
    }

    fn kind(self) -> Kind {
        match self {
            Mode::Excl => Kind::Exclusive,
            Mode::Sem => Kind::Semaphore(SEM_LIMIT),
            Mode::Read | Mode::Write => Kind::ReadWrite,
        }
    }

    fn rw(self) -> RwMode {
        if self == Mode::Write {
            RwMode::Write
        } else {
            RwMode::Read
        }
    }
}

/// A command; `bool` = waits [`WAIT_S`] (false = timeout 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Acquire(Mode, bool),
    Enqueue(Mode),
    Wait(Mode, bool),
    /// Release / renew with the client's last token for the key.
    Release,
    Renew,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Act {
    Cmd {
        o: u8,
        k: u8,
        op: Op,
    },
    /// The connection goes away (cleanup of §4.4) and the client reconnects
    /// on the same slot with the next generation, keeping its tokens.
    Disconnect(u8),
    /// The clock jumps to the next timer deadline and due timers fire.
    Tick,
    /// The clock moves [`SLEEP_MS`] and due timers fire.
    Sleep,
    /// An idle-GC pass that deletes every key not in use (`--gc-max-idle 0`):
    /// expired-token memory goes, and resource slots are reused.
    Gc,
}

/// One model configuration.
#[derive(Debug)]
pub struct Setup {
    pub name: &'static str,
    pub owners: usize,
    pub keys: &'static [(&'static str, KeyKind)],
    pub auto_release: bool,
    /// Offer [`Act::Sleep`] (more interleavings of renewals and deadlines).
    pub sleep: bool,
    /// Offer [`Act::Gc`].
    pub gc: bool,
    /// Offer `l` on read-write keys (type mismatches).
    pub mix: bool,
    pub depth: usize,
}

impl Setup {
    pub fn space(&self, k: usize) -> Space {
        match self.keys[k].1 {
            KeyKind::Sem => Space::Sem,
            _ => Space::Lock,
        }
    }

    /// The modes an acquire or enqueue may use on key `k`.
    pub fn modes(&self, k: usize) -> &'static [Mode] {
        match (self.keys[k].1, self.mix) {
            (KeyKind::Excl, _) => &[Mode::Excl],
            (KeyKind::Sem, _) => &[Mode::Sem],
            (KeyKind::Rw, false) => &[Mode::Read, Mode::Write],
            (KeyKind::Rw, true) => &[Mode::Read, Mode::Write, Mode::Excl],
        }
    }
}

/// Which property a violation breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Prop {
    MutualExclusion,
    Fifo,
    Fences,
    HoldAndWait,
    FreeKeyWaiter,
    DisconnectCleanup,
    Liveness,
    Replies,
    Timers,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Violation {
    pub prop: Prop,
    pub msg: String,
}

pub fn fail<T>(prop: Prop, msg: String) -> Result<T, Violation> {
    Err(Violation { prop, msg })
}

/// A reply delivered through the outbox to model owner `usize`.
pub type Delivered = Vec<(usize, Reply)>;

pub struct Sim<'a> {
    pub setup: &'a Setup,
    pub state: State,
    pub wheel: Wheel<Timer>,
    pub now: u64,
    out: Vec<Out>,
    /// Current id of each model owner (the generation moves on reconnect).
    pub ids: Vec<OwnerId>,
    serial: u64,
    /// Where each owner is parked: (key, deadline of its timeout).
    pub parked: Vec<Option<(usize, u64)>>,
    /// The last token each client was given per key and has not yet seen refused.
    pub tokens: Vec<Vec<Option<Token>>>,
    /// The highest fence handed out so far.
    pub max_fence: u64,
}

/// What one step produced besides the new state.
pub struct StepResult {
    pub reply: Option<Outcome>,
    pub delivered: Delivered,
    /// The id a disconnected owner had.
    pub departed: Option<OwnerId>,
}

impl<'a> Sim<'a> {
    pub fn new(setup: &'a Setup) -> Sim<'a> {
        let cfg = StateConfig {
            auto_release: setup.auto_release,
            max_locks: 1024,
            gc_max_idle_ms: if setup.gc { 0 } else { 60_000 },
            ..StateConfig::unlimited()
        };
        let fences = Fences::open(None, 0).expect("fences without a state file");
        let mut state = State::new(cfg, fences);
        let ids: Vec<OwnerId> = (0..setup.owners).map(|i| OwnerId::conn(i, 0)).collect();
        for (i, id) in ids.iter().enumerate() {
            state.on_connect(*id, i as u64 + 1);
        }
        Sim {
            setup,
            state,
            wheel: Wheel::new(0),
            now: 0,
            out: Vec::new(),
            ids,
            serial: setup.owners as u64,
            parked: vec![None; setup.owners],
            tokens: vec![vec![None; setup.keys.len()]; setup.owners],
            max_fence: 0,
        }
    }

    /// Replays `script` without checks.
    pub fn replay(setup: &'a Setup, script: &[Act]) -> Sim<'a> {
        let mut sim = Sim::new(setup);
        for &a in script {
            // A script only holds steps that passed their checks once.
            let _ = sim.step(a);
        }
        sim
    }

    fn command(&self, o: usize, k: usize, op: Op) -> Command {
        let key: Box<str> = self.setup.keys[k].0.into();
        let secs = |waits: bool| if waits { WAIT_S } else { 0 };
        let token = || -> Box<[u8]> {
            self.tokens[o][k]
                .map(|t| t.encode().to_vec().into())
                .unwrap_or_default()
        };
        let lease = Some(LEASE_S);
        match op {
            Op::Acquire(Mode::Excl, w) => Command::Lock {
                key,
                timeout: secs(w),
                lease,
            },
            Op::Acquire(Mode::Sem, w) => Command::SemLock {
                key,
                timeout: secs(w),
                limit: SEM_LIMIT,
                lease,
            },
            Op::Acquire(m, w) => Command::RwLock {
                mode: m.rw(),
                key,
                timeout: secs(w),
                lease,
            },
            Op::Enqueue(Mode::Excl) => Command::Enqueue { key, lease },
            Op::Enqueue(Mode::Sem) => Command::SemEnqueue {
                key,
                limit: SEM_LIMIT,
                lease,
            },
            Op::Enqueue(m) => Command::RwEnqueue {
                mode: m.rw(),
                key,
                lease,
            },
            Op::Wait(Mode::Excl, w) => Command::Wait {
                key,
                timeout: secs(w),
            },
            Op::Wait(Mode::Sem, w) => Command::SemWait {
                key,
                timeout: secs(w),
            },
            Op::Wait(m, w) => Command::RwWait {
                mode: m.rw(),
                key,
                timeout: secs(w),
            },
            Op::Release => match self.setup.keys[k].1 {
                KeyKind::Excl => Command::Release {
                    key,
                    token: token(),
                },
                KeyKind::Sem => Command::SemRelease {
                    key,
                    token: token(),
                },
                KeyKind::Rw => Command::RwRelease {
                    mode: RwMode::Write,
                    key,
                    token: token(),
                },
            },
            Op::Renew => match self.setup.keys[k].1 {
                KeyKind::Excl => Command::Renew {
                    key,
                    token: token(),
                    lease,
                },
                KeyKind::Sem => Command::SemRenew {
                    key,
                    token: token(),
                    lease,
                },
                KeyKind::Rw => Command::RwRenew {
                    mode: RwMode::Read,
                    key,
                    token: token(),
                    lease,
                },
            },
        }
    }

    /// Runs `f` with a `Cx` over this sim's clock, wheel and outbox.
    fn with_cx<R>(&mut self, f: impl FnOnce(&mut State, &mut Cx) -> R) -> R {
        let can_take = |_: OwnerId, _: usize| true;
        let mut cx = Cx {
            now: self.now,
            timers: &mut self.wheel,
            out: &mut self.out,
            can_take: &can_take,
        };
        f(&mut self.state, &mut cx)
    }

    /// Fire every timer due at `self.now`; returns how many fired.
    fn fire_due(&mut self) -> usize {
        let mut n = 0;
        while let Some((_, t)) = self.wheel.poll(self.now) {
            n += 1;
            let owned = self.with_cx(|s, cx| s.on_timer(cx, t));
            assert!(owned, "the model arms only state timers, got {t:?}");
        }
        n
    }

    /// Applies one action. `Err` only for what the driver itself can see
    /// while delivering (replies to the wrong owner); the checks of
    /// [`super::check`] run on the result.
    pub fn step(&mut self, act: Act) -> Result<StepResult, Violation> {
        let mut res = StepResult {
            reply: None,
            delivered: Vec::new(),
            departed: None,
        };
        match act {
            Act::Cmd { o, k, op } => {
                let (o, k) = (o as usize, k as usize);
                let cmd = self.command(o, k, op);
                let id = self.ids[o];
                let outcome = self.with_cx(|s, cx| s.apply(cx, id, cmd));
                match &outcome {
                    Outcome::Park => {
                        self.parked[o] = Some((k, self.now + WAIT_S * 1000 + 1));
                    }
                    Outcome::Reply(Reply::Grant { token, .. }) => {
                        self.note_fence(token.fence);
                        self.tokens[o][k] = Some(*token);
                    }
                    Outcome::Reply(Reply::Status(Status::Ok)) if op == Op::Release => {
                        self.tokens[o][k] = None;
                    }
                    Outcome::Reply(Reply::Status(Status::Error | Status::ErrorLeaseExpired))
                        if matches!(op, Op::Release | Op::Renew) =>
                    {
                        // The client learns its token is gone and forgets it.
                        self.tokens[o][k] = None;
                    }
                    _ => {}
                }
                res.reply = Some(outcome);
            }
            Act::Disconnect(o) => {
                let o = o as usize;
                let old = self.ids[o];
                self.with_cx(|s, cx| s.on_disconnect(cx, old));
                self.parked[o] = None;
                res.departed = Some(old);
                // The client's next connection reuses the slot; deliver before
                // it is connected: nothing may be addressed to the departed id.
                self.ids[o] = OwnerId::conn(o, old.generation + 1);
                self.deliver(&mut res.delivered)?;
                self.serial += 1;
                let (id, serial) = (self.ids[o], self.serial);
                self.state.on_connect(id, serial);
            }
            Act::Tick => {
                // poll_at is never later than the earliest deadline but may be
                // earlier (a cascade point): step until something fires.
                while let Some(at) = self.wheel.poll_at() {
                    self.now = self.now.max(at);
                    if self.fire_due() > 0 {
                        break;
                    }
                }
            }
            Act::Gc => {
                // The pass re-arms its own timer: give it a wheel of its own,
                // so the model's wheel holds leases and waits only.
                let mut scratch = Wheel::new(self.now);
                let can_take = |_: OwnerId, _: usize| true;
                let mut cx = Cx {
                    now: self.now,
                    timers: &mut scratch,
                    out: &mut self.out,
                    can_take: &can_take,
                };
                self.state.on_timer(&mut cx, Timer::Gc);
            }
            Act::Sleep => {
                self.now += SLEEP_MS;
                self.fire_due();
            }
        }
        self.deliver(&mut res.delivered)?;
        Ok(res)
    }

    fn note_fence(&mut self, fence: u64) {
        self.max_fence = self.max_fence.max(fence);
    }

    /// Hand the outbox to the clients. Every reply must complete a parked command.
    fn deliver(&mut self, delivered: &mut Delivered) -> Result<(), Violation> {
        for out in std::mem::take(&mut self.out) {
            let (conn, reply) = match out {
                Out::Reply { conn, reply } => (conn, reply),
                Out::Push { .. } => continue,
                Out::CloseSlow { conn } => {
                    return fail(Prop::Replies, format!("slow-consumer close of {conn:?}"));
                }
            };
            let Some(o) = self.ids.iter().position(|&id| id == conn) else {
                return fail(
                    Prop::DisconnectCleanup,
                    format!("reply {reply:?} addressed to departed owner {conn:?}"),
                );
            };
            let Some((k, _)) = self.parked[o].take() else {
                return fail(
                    Prop::Replies,
                    format!("reply {reply:?} to owner {o}, which is not parked"),
                );
            };
            match &reply {
                Reply::Grant {
                    word: GrantWord::Ok,
                    token,
                    ..
                } => {
                    self.note_fence(token.fence);
                    self.tokens[o][k] = Some(*token);
                }
                Reply::Status(Status::Timeout) => {}
                other => {
                    return fail(
                        Prop::Replies,
                        format!("owner {o} parked on key {k} got {other:?}"),
                    );
                }
            }
            delivered.push((o, reply));
        }
        Ok(())
    }

    /// The model owner index of `id`, if it is a live owner.
    pub fn owner_index(&self, id: OwnerId) -> Option<usize> {
        self.ids.iter().position(|&x| x == id)
    }

    /// The resource view of model key `k` in `snap`.
    pub fn res<'s>(&self, snap: &'s LockSnapshot, k: usize) -> Option<&'s ResourceView> {
        snap.resource(self.setup.space(k), self.setup.keys[k].0)
    }
}

/// True if one more holder of `via` fits on `r` right now (queue aside),
/// computed from the spec (§7.3, §8.7), not from the implementation.
pub fn has_capacity(kind: Kind, holders: &[dflockd::state::inspect::HolderView], via: Via) -> bool {
    match kind {
        Kind::Exclusive => holders.is_empty(),
        Kind::Semaphore(n) => holders.len() < n as usize,
        Kind::ReadWrite => match via {
            Via::Read => !holders.iter().any(|h| h.via == Via::Write),
            _ => holders.is_empty(),
        },
    }
}

pub fn in_use(r: &ResourceView) -> bool {
    !r.holders.is_empty() || !r.queue.is_empty()
}

/// The kind an acquire of `mode` gives a key.
pub fn kind_of(mode: Mode) -> Kind {
    mode.kind()
}
