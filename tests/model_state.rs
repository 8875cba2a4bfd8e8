//! Model check of the sans-IO coordination state (issue 13 §1) with
//! `stateright`: every interleaving, up to a depth bound, of lock / release /
//! renew / enqueue / wait / disconnect commands by 2–3 owners on 1–2 keys,
//! with time as an explicit action (jump to the next timer deadline, or
//! sleep one second, and fire the due timers through the real wheel), over
//! exclusive locks, a semaphore of limit 2 and a read-write lock.
//!
//! In every reachable state (`check::invariants`) and on every transition
//! (`check::checked_step`) it checks:
//! - mutual exclusion: ≤ 1 exclusive holder, ≤ limit permits, no reader with
//!   a writer, every holder of the key's type;
//! - FIFO and no barging: waiters leave the queue only as a granted prefix
//!   (or by their own timeout/disconnect), grants follow queue order, and
//!   nothing is granted on the spot past a waiter;
//! - fences: every new fence is above every fence issued before, so they
//!   strictly increase per key;
//! - no owner both holding and waiting through one request: a two-phase
//!   enqueue is either queued or granted, never both, and every waiter is
//!   referenced by exactly its owner's park or enqueue;
//! - no waiter left queued on a key that has room for it;
//! - disconnect leaves nothing behind: no waiter, holder (with
//!   auto-release), index entry, timer or reply for the departed owner;
//! - replies as the spec's tables say (§8.4–8.7), checked against the state
//!   before the command; no leaked or missing timers;
//! - liveness: from every state, letting time run ends every lease and every
//!   wait (each waiter is granted or times out).
//!
//! `State` is not `Clone`, so a model state is the script of actions that
//! reached it, replayed into a fresh `State` per transition; what stateright
//! hashes is `check::View`, an abstraction of the state (owners by model
//! index, fences by rank, deadlines relative to now).
//!
//! Depths are bounded to keep CI near a minute; `DFLOCKD_MODEL_EXTRA_DEPTH=n`
//! explores n levels deeper (see `benches/reliability.sh`).

#[path = "model_state/check.rs"]
mod check;
#[path = "model_state/sim.rs"]
mod sim;

use check::{View, mode_of_code};
use sim::{Act, KeyKind, Op, Prop, Setup, Sim, Violation};
use stateright::{Checker, Model, Property};
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::Instant;

/// A model state: how it was reached, and what it looks like.
#[derive(Clone, Debug)]
struct MState {
    script: Vec<Act>,
    /// In the script's owner numbering (what `actions` offers).
    view: View,
    /// `view` up to a renaming of owners: what is hashed and compared.
    canon: View,
    bad: Option<Violation>,
}

impl MState {
    fn new(script: Vec<Act>, view: View, bad: Option<Violation>) -> MState {
        MState {
            script,
            canon: view.canonical(),
            view,
            bad,
        }
    }
}

impl Hash for MState {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.canon.hash(h);
        self.bad.hash(h);
    }
}

impl PartialEq for MState {
    fn eq(&self, other: &Self) -> bool {
        self.canon == other.canon && self.bad == other.bad
    }
}

struct LockModel {
    setup: &'static Setup,
    /// Views whose liveness drain already passed: the view decides the
    /// future, so one drain per distinct view is enough.
    drained: Mutex<HashSet<View>>,
}

impl LockModel {
    fn new(setup: &'static Setup) -> LockModel {
        LockModel {
            setup,
            drained: Mutex::new(HashSet::new()),
        }
    }
}

fn broken(s: &MState, p: Prop) -> bool {
    s.bad.as_ref().is_some_and(|v| v.prop == p)
}

impl Model for LockModel {
    type State = MState;
    type Action = Act;

    fn init_states(&self) -> Vec<MState> {
        let sim = Sim::new(self.setup);
        let view = check::view(&sim, &sim.state.lock_snapshot());
        vec![MState::new(Vec::new(), view, None)]
    }

    fn actions(&self, s: &MState, out: &mut Vec<Act>) {
        if s.bad.is_some() {
            return;
        }
        let setup = self.setup;
        for (o, ov) in s.view.owners.iter().enumerate() {
            let o8 = o as u8;
            if ov.parked.is_none() {
                for k in 0..setup.keys.len() {
                    let k8 = k as u8;
                    let mut cmd = |op| out.push(Act::Cmd { o: o8, k: k8, op });
                    for &m in setup.modes(k) {
                        cmd(Op::Acquire(m, false));
                        cmd(Op::Acquire(m, true));
                        cmd(Op::Enqueue(m));
                    }
                    for &(ek, via, _) in &ov.enq {
                        if ek == k8 {
                            cmd(Op::Wait(mode_of_code(via), false));
                            cmd(Op::Wait(mode_of_code(via), true));
                        }
                    }
                    if ov.tokens[k].is_some() {
                        cmd(Op::Release);
                        cmd(Op::Renew);
                    }
                }
            }
            out.push(Act::Disconnect(o8));
        }
        if setup.gc {
            out.push(Act::Gc);
        }
        if s.view.timers > 0 {
            out.push(Act::Tick);
            if setup.sleep {
                out.push(Act::Sleep);
            }
        }
    }

    fn next_state(&self, last: &MState, act: Act) -> Option<MState> {
        let mut sim = Sim::replay(self.setup, &last.script);
        let mut script = last.script.clone();
        script.push(act);
        let (view, bad) = match check::checked_step(&mut sim, act) {
            Err(v) => (last.view.clone(), Some(v)),
            Ok(_) => {
                let view = check::view(&sim, &sim.state.lock_snapshot());
                let canon = view.canonical();
                let seen = self.drained.lock().unwrap().contains(&canon);
                let bad = if seen {
                    None
                } else {
                    check::drain(&mut sim).err()
                };
                if bad.is_none() && !seen {
                    self.drained.lock().unwrap().insert(canon);
                }
                (view, bad)
            }
        };
        Some(MState::new(script, view, bad))
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("mutual exclusion", |_, s: &MState| {
                !broken(s, Prop::MutualExclusion)
            }),
            Property::always("fifo, no barging", |_, s: &MState| !broken(s, Prop::Fifo)),
            Property::always("fences increase", |_, s: &MState| !broken(s, Prop::Fences)),
            Property::always("no hold-and-wait on one request", |_, s: &MState| {
                !broken(s, Prop::HoldAndWait)
            }),
            Property::always("no waiter on a free key", |_, s: &MState| {
                !broken(s, Prop::FreeKeyWaiter)
            }),
            Property::always("disconnect leaves nothing", |_, s: &MState| {
                !broken(s, Prop::DisconnectCleanup)
            }),
            Property::always("every waiter ends", |_, s: &MState| {
                !broken(s, Prop::Liveness)
            }),
            Property::always("replies follow the spec", |_, s: &MState| {
                !broken(s, Prop::Replies)
            }),
            Property::always("timers match leases and waits", |_, s: &MState| {
                !broken(s, Prop::Timers)
            }),
            // Reachability, so a bug in the model cannot make it vacuous.
            Property::sometimes("two waiters queue", |_, s: &MState| {
                s.view.keys.iter().any(|k| k.queue.len() >= 2)
            }),
            Property::sometimes("granted before its wait", |_, s: &MState| {
                s.view
                    .owners
                    .iter()
                    .any(|o| o.enq.iter().any(|e| e.2.is_some()))
            }),
            Property::sometimes("a client keeps an expired token", |_, s: &MState| {
                s.view.keys.iter().any(|k| !k.expired.is_empty())
            }),
            Property::sometimes("two holders at once", |_, s: &MState| {
                s.view.keys.iter().any(|k| k.holders.len() >= 2)
            }),
            Property::sometimes("a waiter behind a holder that left", |_, s: &MState| {
                s.view
                    .keys
                    .iter()
                    .any(|k| k.holders.iter().any(|h| h.0 == 9) && !k.queue.is_empty())
            }),
        ]
    }
}

/// Runs one configuration to its depth bound and asserts every property.
/// `reach` names the "sometimes" properties this configuration must reach.
fn run(setup: &'static Setup, reach: &[&str]) {
    let extra: usize = std::env::var("DFLOCKD_MODEL_EXTRA_DEPTH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let depth = setup.depth + extra;
    let started = Instant::now();
    let checker = LockModel::new(setup)
        .checker()
        .threads(1)
        .target_max_depth(depth)
        .spawn_bfs()
        .join();
    let model = LockModel::new(setup);
    for p in model.properties() {
        let found = checker.discovery(p.name);
        match (p.expectation, found) {
            (stateright::Expectation::Always, Some(path)) => {
                let last = path.last_state().clone();
                panic!(
                    "[{}] property {:?} broken: {}\nactions: {:?}",
                    setup.name,
                    p.name,
                    last.bad.map(|v| v.msg).unwrap_or_default(),
                    path.into_actions()
                );
            }
            (stateright::Expectation::Sometimes, None) if reach.contains(&p.name) => {
                panic!(
                    "[{}] never reached {:?}: the model is vacuous",
                    setup.name, p.name
                );
            }
            _ => {}
        }
    }
    eprintln!(
        "model [{}]: {} states explored ({} unique), depth {}, {:.1} s",
        setup.name,
        checker.state_count(),
        checker.unique_state_count(),
        checker.max_depth(),
        started.elapsed().as_secs_f64()
    );
}

static EXCLUSIVE_3: Setup = Setup {
    name: "exclusive lock, 3 owners",
    owners: 3,
    keys: &[("a", KeyKind::Excl)],
    auto_release: true,
    sleep: false,
    gc: true,
    mix: false,
    depth: 9,
};

static EXCLUSIVE_2X2: Setup = Setup {
    name: "exclusive locks, 2 owners, 2 keys, sleeps",
    owners: 2,
    keys: &[("a", KeyKind::Excl), ("b", KeyKind::Excl)],
    auto_release: true,
    sleep: true,
    gc: false,
    mix: false,
    depth: 7,
};

static NO_AUTO_RELEASE: Setup = Setup {
    name: "exclusive lock, 2 owners, no auto-release, sleeps",
    owners: 2,
    keys: &[("a", KeyKind::Excl)],
    auto_release: false,
    sleep: true,
    gc: false,
    mix: false,
    depth: 10,
};

static SEMAPHORE: Setup = Setup {
    name: "semaphore limit 2, 3 owners",
    owners: 3,
    keys: &[("s", KeyKind::Sem)],
    auto_release: true,
    sleep: false,
    gc: false,
    mix: false,
    depth: 9,
};

static RWLOCK: Setup = Setup {
    name: "read-write lock (and l on it), 3 owners",
    owners: 3,
    keys: &[("rw", KeyKind::Rw)],
    auto_release: true,
    sleep: false,
    gc: true,
    mix: true,
    depth: 7,
};

#[test]
fn exclusive_lock_three_owners() {
    run(
        &EXCLUSIVE_3,
        &[
            "two waiters queue",
            "granted before its wait",
            "a client keeps an expired token",
        ],
    );
}

#[test]
fn exclusive_locks_two_keys() {
    run(
        &EXCLUSIVE_2X2,
        &["granted before its wait", "a client keeps an expired token"],
    );
}

#[test]
fn exclusive_lock_without_auto_release() {
    run(&NO_AUTO_RELEASE, &["a waiter behind a holder that left"]);
}

#[test]
fn semaphore_of_two() {
    run(&SEMAPHORE, &["two holders at once", "two waiters queue"]);
}

#[test]
fn read_write_lock() {
    run(&RWLOCK, &["two holders at once", "two waiters queue"]);
}
