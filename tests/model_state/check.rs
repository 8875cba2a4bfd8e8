//! What the model check asserts: invariants over one snapshot of the lock
//! table, checks of one step against the state before it (FIFO, fences,
//! replies, disconnect cleanup), the liveness drain, and the abstraction
//! ([`View`]) that is hashed to recognise states already explored.

use super::sim::{
    Act, LEASE_S, Mode, Op, Prop, Sim, StepResult, Violation, fail, has_capacity, in_use, kind_of,
};
use dflockd::owner::OwnerId;
use dflockd::protocol::reply::{GrantWord, Reply, Status};
use dflockd::state::fence::Token;
use dflockd::state::inspect::{LockSnapshot, ParkedView, ResourceView, WaiterView};
use dflockd::state::resource::Kind;
use dflockd::state::{Outcome, Via};
use std::collections::HashSet;

// ------------------------------------------------------------------ invariants

/// Everything that must hold in every reachable state.
pub fn invariants(sim: &Sim, s: &LockSnapshot) -> Result<(), Violation> {
    let mut queued = 0usize;
    let mut waiter_ids = HashSet::new();
    let mut fences = HashSet::new();
    let mut lease_timers = 0usize;
    for r in &s.resources {
        let writers = r.holders.iter().filter(|h| h.via == Via::Write).count();
        let ok = match r.kind {
            Kind::Exclusive => r.holders.len() <= 1,
            Kind::Semaphore(n) => r.holders.len() <= n as usize,
            Kind::ReadWrite => writers == 0 || r.holders.len() == 1,
        };
        if !ok {
            return fail(
                Prop::MutualExclusion,
                format!("{} ({:?}) held by {:?}", r.key, r.kind, r.holders),
            );
        }
        for h in &r.holders {
            let fits = match r.kind {
                Kind::Exclusive => matches!(h.via, Via::Lock | Via::Elect | Via::Dread),
                Kind::Semaphore(_) => h.via == Via::Sem,
                Kind::ReadWrite => matches!(h.via, Via::Read | Via::Write),
            };
            if !fits {
                return fail(
                    Prop::MutualExclusion,
                    format!("{} is {:?} but has a {:?} holder", r.key, r.kind, h.via),
                );
            }
            if !fences.insert(h.token.fence) {
                return fail(Prop::Fences, format!("fence {} held twice", h.token.fence));
            }
            if !h.has_timer {
                return fail(
                    Prop::Timers,
                    format!("holder of {} has no lease timer", r.key),
                );
            }
            // Due timers always fire before the next command (the loop's order).
            if h.deadline <= sim.now {
                return fail(
                    Prop::Timers,
                    format!("holder of {} kept past its deadline {}", r.key, h.deadline),
                );
            }
            lease_timers += 1;
            match s.owner(h.owner) {
                Some(o) => {
                    let indexed = o
                        .holds
                        .iter()
                        .any(|(sp, k, f)| *sp == r.space && **k == *r.key && *f == h.token.fence);
                    if !indexed {
                        return fail(
                            Prop::DisconnectCleanup,
                            format!("holder {:?} of {} missing from its owner's index", h, r.key),
                        );
                    }
                }
                None if sim.setup.auto_release => {
                    return fail(
                        Prop::DisconnectCleanup,
                        format!("{} held by departed owner {:?}", r.key, h.owner),
                    );
                }
                None => {}
            }
        }
        if let Some(head) = r.queue.first() {
            if has_capacity(r.kind, &r.holders, head.via) {
                return fail(
                    Prop::FreeKeyWaiter,
                    format!(
                        "{} has room for its head waiter {:?}: {:?}",
                        r.key, head, r.holders
                    ),
                );
            }
        }
        for w in &r.queue {
            queued += 1;
            if !waiter_ids.insert(w.id) {
                return fail(Prop::HoldAndWait, format!("waiter {} queued twice", w.id));
            }
            let Some(o) = s.owner(w.owner) else {
                return fail(
                    Prop::DisconnectCleanup,
                    format!("{} has a waiter of departed owner {:?}", r.key, w.owner),
                );
            };
            if w.parked
                && o.parked
                    != Some(ParkedView::Waiter {
                        waiter: w.id,
                        timer: true,
                    })
            {
                return fail(
                    Prop::HoldAndWait,
                    format!("parked waiter {w:?} but its owner is {:?}", o.parked),
                );
            }
            let referenced = o
                .enqueues
                .iter()
                .any(|e| e.space == r.space && *e.key == *r.key && e.queued == Some(w.id));
            if w.two_phase != referenced {
                return fail(
                    Prop::HoldAndWait,
                    format!(
                        "two-phase waiter {w:?} on {} vs enqueues {:?}",
                        r.key, o.enqueues
                    ),
                );
            }
            if !w.parked && !w.two_phase {
                return fail(Prop::HoldAndWait, format!("waiter {w:?} waits for nobody"));
            }
        }
    }
    if s.waiter_slots != queued {
        return fail(
            Prop::DisconnectCleanup,
            format!("{} waiters allocated, {queued} queued", s.waiter_slots),
        );
    }
    let mut park_timers = 0usize;
    for o in &s.owners {
        let i = sim.owner_index(o.id);
        if i.is_some_and(|i| sim.parked[i].is_some() != o.parked.is_some()) {
            return fail(
                Prop::Replies,
                format!("client and server disagree on whether {:?} is parked", o.id),
            );
        }
        match &o.parked {
            None => {}
            Some(ParkedView::Waiter { waiter, timer }) => {
                if !timer {
                    return fail(Prop::Timers, format!("{:?} parked without a timeout", o.id));
                }
                park_timers += 1;
                let found = s
                    .resources
                    .iter()
                    .flat_map(|r| &r.queue)
                    .any(|w| w.id == *waiter && w.owner == o.id && w.parked);
                if !found {
                    return fail(
                        Prop::HoldAndWait,
                        format!("{:?} parked on waiter {waiter}, which is not queued", o.id),
                    );
                }
            }
            Some(other) => {
                return fail(Prop::Replies, format!("unexpected park {other:?}"));
            }
        }
        for (sp, key, fence) in &o.holds {
            let held = s.resource(*sp, key).is_some_and(|r| {
                r.holders
                    .iter()
                    .any(|h| h.token.fence == *fence && h.owner == o.id)
            });
            if !held {
                return fail(
                    Prop::DisconnectCleanup,
                    format!(
                        "{:?} indexes a hold of {key} (fence {fence}) it does not have",
                        o.id
                    ),
                );
            }
        }
        for (i, e) in o.enqueues.iter().enumerate() {
            if o.enqueues[..i]
                .iter()
                .any(|x| x.space == e.space && x.key == e.key)
            {
                return fail(
                    Prop::HoldAndWait,
                    format!("two enqueue states for {}", e.key),
                );
            }
            let r = s.resource(e.space, &e.key);
            match (e.queued, e.granted) {
                (Some(w), None) => {
                    let ok = r.is_some_and(|r| {
                        r.queue
                            .iter()
                            .any(|x| x.id == w && x.owner == o.id && x.two_phase)
                    });
                    if !ok {
                        return fail(
                            Prop::HoldAndWait,
                            format!("queued enqueue of {} names waiter {w}, not queued", e.key),
                        );
                    }
                }
                (None, Some(t)) => {
                    let holder = r.and_then(|r| r.holders.iter().find(|h| h.token == t));
                    match holder {
                        Some(h) if h.owner == o.id && h.two_phase => {}
                        Some(h) => {
                            return fail(
                                Prop::HoldAndWait,
                                format!("granted enqueue of {} vs holder {h:?}", e.key),
                            );
                        }
                        // Ended by expiry (kept, so its wait answers
                        // `error_lease_expired`), perhaps deleted by idle GC
                        // since. A release must discard it: see `step_checks`.
                        None => {}
                    }
                }
                other => return fail(Prop::HoldAndWait, format!("enqueue state {other:?}")),
            }
        }
    }
    if sim.wheel.len() != lease_timers + park_timers {
        return fail(
            Prop::Timers,
            format!(
                "{} timers pending for {lease_timers} leases and {park_timers} parked owners",
                sim.wheel.len()
            ),
        );
    }
    Ok(())
}

// ------------------------------------------------------------------ one step

/// What the checks of one step need from before it.
pub struct Before {
    pub pre: LockSnapshot,
    pub max_fence: u64,
    pub now: u64,
    /// The acting client's token for the key it addresses.
    pub token: Option<Token>,
}

/// Applies `act` to `sim` with every check on.
pub fn checked_step(sim: &mut Sim, act: Act) -> Result<StepResult, Violation> {
    let token = match act {
        Act::Cmd { o, k, .. } => sim.tokens[o as usize][k as usize],
        _ => None,
    };
    let before = Before {
        pre: sim.state.lock_snapshot(),
        max_fence: sim.max_fence,
        now: sim.now,
        token,
    };
    let res = sim.step(act)?;
    let post = sim.state.lock_snapshot();
    invariants(sim, &post)?;
    step_checks(sim, &before, &post, act, &res)?;
    Ok(res)
}

fn fences_of(s: &LockSnapshot) -> HashSet<u64> {
    s.resources
        .iter()
        .flat_map(|r| &r.holders)
        .map(|h| h.token.fence)
        .collect()
}

fn step_checks(
    sim: &Sim,
    b: &Before,
    post: &LockSnapshot,
    act: Act,
    res: &StepResult,
) -> Result<(), Violation> {
    if let Some(old) = res.departed {
        let left = post.owner(old).is_some()
            || post.resources.iter().any(|r| {
                r.queue.iter().any(|w| w.owner == old)
                    || (sim.setup.auto_release && r.holders.iter().any(|h| h.owner == old))
            });
        if left {
            return fail(
                Prop::DisconnectCleanup,
                format!("{old:?} left state behind"),
            );
        }
    }
    let pre_fences = fences_of(&b.pre);
    for f in fences_of(post).difference(&pre_fences) {
        if *f <= b.max_fence {
            return fail(
                Prop::Fences,
                format!("new fence {f} is not above {}", b.max_fence),
            );
        }
    }
    let timed_out: HashSet<OwnerId> = res
        .delivered
        .iter()
        .filter(|(_, r)| *r == Reply::Status(Status::Timeout))
        .map(|(o, _)| sim.ids[*o])
        .collect();
    for k in 0..sim.setup.keys.len() {
        fifo(sim, b, post, act, res, k, &timed_out, &pre_fences)?;
    }
    if let (
        Act::Cmd {
            op: Op::Release, ..
        },
        Some(Outcome::Reply(Reply::Status(Status::Ok))),
    ) = (act, &res.reply)
    {
        // Releasing a two-phase grant discards its enqueue state (§8.6).
        let kept = post
            .owners
            .iter()
            .flat_map(|o| &o.enqueues)
            .any(|e| e.granted.is_some() && e.granted == b.token);
        if kept {
            return fail(
                Prop::HoldAndWait,
                format!("released token {:?} still in an enqueue state", b.token),
            );
        }
    }
    if let Act::Cmd { o, k, op } = act {
        let outcome = res.reply.as_ref().expect("a command has an outcome");
        check_reply(sim, b, post, o as usize, k as usize, op, outcome)?;
    }
    Ok(())
}

/// FIFO and no barging on key `k` (§7.3): the waiters that left the queue in
/// this step without being cancelled are a prefix of it, were granted in
/// queue order with increasing fences, and nobody was granted on the spot
/// past a waiter.
#[allow(clippy::too_many_arguments)]
fn fifo(
    sim: &Sim,
    b: &Before,
    post: &LockSnapshot,
    act: Act,
    res: &StepResult,
    k: usize,
    timed_out: &HashSet<OwnerId>,
    pre_fences: &HashSet<u64>,
) -> Result<(), Violation> {
    let key = sim.setup.keys[k].0;
    let empty = Vec::new();
    let before = sim.res(&b.pre, k).map_or(&empty, |r| &r.queue);
    let after = sim.res(post, k).map_or(&empty, |r| &r.queue);
    // The acting client's own queued enqueue, which its `w … 0` cancels.
    let own_zero_wait = match act {
        Act::Cmd {
            o,
            k: kk,
            op: Op::Wait(_, false),
        } if kk as usize == k => b
            .pre
            .owner(sim.ids[o as usize])
            .and_then(|ov| {
                ov.enqueues
                    .iter()
                    .find(|e| e.space == sim.setup.space(k) && &*e.key == key)
            })
            .and_then(|e| e.queued),
        _ => None,
    };
    let cancelled = |w: &WaiterView| {
        res.departed == Some(w.owner)
            || (w.parked && timed_out.contains(&w.owner))
            || own_zero_wait == Some(w.id)
    };
    if let Some(w) = after.iter().find(|w| cancelled(w)) {
        return fail(
            Prop::Fifo,
            format!("cancelled waiter {w:?} still queued on {key}"),
        );
    }
    let remaining: Vec<&WaiterView> = before.iter().filter(|w| !cancelled(w)).collect();
    let was_queued = |id: u32| before.iter().any(|w| w.id == id);
    let kept: Vec<u32> = after
        .iter()
        .filter(|w| was_queued(w.id))
        .map(|w| w.id)
        .collect();
    let added: Vec<&WaiterView> = after.iter().filter(|w| !was_queued(w.id)).collect();
    let acting = match act {
        Act::Cmd { o, k: kk, .. } if kk as usize == k => Some(sim.ids[o as usize]),
        _ => None,
    };
    let tail_ok = added.len() <= 1
        && added
            .iter()
            .all(|w| Some(w.owner) == acting && after.last().map(|l| l.id) == Some(w.id));
    if !tail_ok {
        return fail(
            Prop::Fifo,
            format!("{key}: {added:?} joined other than at the tail"),
        );
    }
    let granted_n = remaining.len().saturating_sub(kept.len());
    let rest: Vec<u32> = remaining[granted_n..].iter().map(|w| w.id).collect();
    if rest != kept {
        return fail(
            Prop::Fifo,
            format!("{key}: queue {remaining:?} became {after:?}: not a prefix granted"),
        );
    }
    let granted = &remaining[..granted_n];
    let mut new_holders: Vec<_> = sim
        .res(post, k)
        .map(|r| {
            r.holders
                .iter()
                .filter(|h| !pre_fences.contains(&h.token.fence))
                .collect()
        })
        .unwrap_or_default();
    new_holders.sort_by_key(|h| h.token.fence);
    let on_the_spot = match (&res.reply, acting) {
        (Some(Outcome::Reply(Reply::Grant { token, .. })), Some(_))
            if !pre_fences.contains(&token.fence) =>
        {
            Some(token.fence)
        }
        _ => None,
    };
    if on_the_spot.is_some() && !before.is_empty() {
        return fail(
            Prop::Fifo,
            format!("{key}: granted on the spot past waiters {before:?}"),
        );
    }
    new_holders.retain(|h| Some(h.token.fence) != on_the_spot);
    if new_holders.len() != granted.len() {
        return fail(
            Prop::Fifo,
            format!("{key}: waiters {granted:?} left the queue, new holders {new_holders:?}"),
        );
    }
    for (w, h) in granted.iter().zip(&new_holders) {
        if w.owner != h.owner || w.via != h.via {
            return fail(
                Prop::Fifo,
                format!("{key}: head waiter {w:?} but the grant went to {h:?}"),
            );
        }
        let told = if w.parked {
            let o = sim.owner_index(w.owner);
            res.delivered.iter().any(|(d, r)| {
                Some(*d) == o && matches!(r, Reply::Grant { token, .. } if *token == h.token)
            })
        } else {
            post.owner(w.owner).is_some_and(|ov| {
                ov.enqueues
                    .iter()
                    .any(|e| &*e.key == key && e.granted == Some(h.token))
            })
        };
        if !told {
            return fail(
                Prop::Replies,
                format!("{key}: grant {h:?} to {w:?} never reached its client"),
            );
        }
    }
    Ok(())
}

/// What the spec says the acting client must be told (§8.4–8.7).
#[derive(Debug)]
enum Expect {
    /// A grant with a fresh token.
    NewGrant(GrantWord),
    /// The two-phase grant's own token, lease restarted.
    OldGrant(Token),
    Park,
    Status(Status),
    Lease,
}

fn check_reply(
    sim: &Sim,
    b: &Before,
    post: &LockSnapshot,
    o: usize,
    k: usize,
    op: Op,
    outcome: &Outcome,
) -> Result<(), Violation> {
    let me = sim.ids[o];
    let space = sim.setup.space(k);
    let key = sim.setup.keys[k].0;
    let r = sim.res(&b.pre, k);
    let holds = |r: Option<&ResourceView>, t: &Token| {
        r.is_some_and(|r| r.holders.iter().any(|h| h.token == *t))
    };
    let mine = b.pre.owner(me).and_then(|ov| {
        ov.enqueues
            .iter()
            .find(|e| e.space == space && &*e.key == key)
    });
    let expect = match op {
        Op::Acquire(m, _) | Op::Enqueue(m) => {
            let mismatch = r.filter(|r| in_use(r) && r.kind != kind_of(m)).map(|r| {
                match (r.kind, kind_of(m)) {
                    (Kind::Semaphore(_), Kind::Semaphore(_)) => Status::ErrorLimitMismatch,
                    _ => Status::ErrorTypeMismatch,
                }
            });
            let already = matches!(op, Op::Enqueue(_))
                && mine
                    .is_some_and(|e| e.queued.is_some() || e.granted.is_some_and(|t| holds(r, &t)));
            let kind = r.filter(|r| in_use(r)).map_or(kind_of(m), |r| r.kind);
            let free =
                r.is_none_or(|r| r.queue.is_empty() && has_capacity(kind, &r.holders, m.via()));
            match (op, mismatch, already, free) {
                (_, Some(s), _, _) => Expect::Status(s),
                (_, None, true, _) => Expect::Status(Status::ErrorAlreadyEnqueued),
                (Op::Acquire(..), None, false, true) => Expect::NewGrant(GrantWord::Ok),
                (Op::Acquire(_, false), None, false, false) => Expect::Status(Status::Timeout),
                (Op::Acquire(_, true), None, false, false) => Expect::Park,
                (_, None, false, true) => Expect::NewGrant(GrantWord::Acquired),
                (_, None, false, false) => Expect::Status(Status::Queued),
            }
        }
        Op::Wait(m, waits) => match mine.filter(|e| e.via == m.via()) {
            None => Expect::Status(Status::ErrorNotEnqueued),
            Some(e) => match e.granted {
                Some(t) if holds(r, &t) => Expect::OldGrant(t),
                Some(_) => Expect::Status(Status::ErrorLeaseExpired),
                None if waits => Expect::Park,
                None => Expect::Status(Status::Timeout),
            },
        },
        Op::Release => match b.token {
            Some(t) if holds(r, &t) => Expect::Status(Status::Ok),
            _ => Expect::Status(Status::Error),
        },
        Op::Renew => match b.token {
            Some(t) if holds(r, &t) => Expect::Lease,
            Some(t) if r.is_some_and(|r| r.expired.contains(&t)) => {
                Expect::Status(Status::ErrorLeaseExpired)
            }
            _ => Expect::Status(Status::Error),
        },
    };
    let post_r = sim.res(post, k);
    let restarted = |t: &Token| {
        post_r.is_some_and(|r| {
            r.holders
                .iter()
                .any(|h| h.token == *t && h.deadline == b.now + LEASE_S * 1000 + 1)
        })
    };
    let ok = match (&expect, outcome) {
        (Expect::Park, Outcome::Park) => true,
        (Expect::Status(s), Outcome::Reply(Reply::Status(got))) => s == got,
        (
            Expect::NewGrant(word),
            Outcome::Reply(Reply::Grant {
                word: w,
                token,
                lease_s,
                ..
            }),
        ) => {
            w == word
                && *lease_s == LEASE_S
                && token.fence > b.max_fence
                && post_r.is_some_and(|r| {
                    r.holders.iter().any(|h| {
                        h.token == *token
                            && h.owner == me
                            && h.two_phase == (*word == GrantWord::Acquired)
                    })
                })
        }
        (
            Expect::OldGrant(t),
            Outcome::Reply(Reply::Grant {
                word,
                token,
                lease_s,
                ..
            }),
        ) => *word == GrantWord::Ok && token == t && *lease_s == LEASE_S && restarted(t),
        (Expect::Lease, Outcome::Reply(Reply::Lease { lease_s, .. })) => {
            *lease_s == LEASE_S && b.token.is_some_and(|t| restarted(&t))
        }
        _ => false,
    };
    if !ok {
        return fail(
            Prop::Replies,
            format!("owner {o} {op:?} on {key}: expected {expect:?}, got {outcome:?}"),
        );
    }
    Ok(())
}

// ------------------------------------------------------------------ liveness

/// Every waiter is eventually granted or times out: letting time run with no
/// more commands must end every lease and every wait, checking every step.
pub fn drain(sim: &mut Sim) -> Result<usize, Violation> {
    let mut ticks = 0;
    while !sim.wheel.is_empty() {
        if ticks == 64 {
            return fail(
                Prop::Liveness,
                format!("{} timers after 64 ticks", sim.wheel.len()),
            );
        }
        checked_step(sim, Act::Tick)?;
        ticks += 1;
    }
    let s = sim.state.lock_snapshot();
    if let Some(r) = s.resources.iter().find(|r| in_use(r)) {
        return fail(
            Prop::Liveness,
            format!("{} still in use when time ran out: {r:?}", r.key),
        );
    }
    if let Some(o) = sim.parked.iter().position(Option::is_some) {
        return fail(Prop::Liveness, format!("owner {o} never got its reply"));
    }
    Ok(ticks)
}

// ------------------------------------------------------------------ abstraction

/// The hashed abstraction of a model state. Owners are model indices (not
/// generations), fences are ranks among the fences still visible (holders,
/// client tokens, granted enqueues), deadlines are relative to now, and a
/// key not in use is only its memory of expired tokens that a client still
/// knows. Everything the future behaviour depends on is here; salts, serials,
/// absolute times and unreachable expired tokens are not.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub struct View {
    pub keys: Vec<KeyAbs>,
    pub owners: Vec<OwnerAbs>,
    pub timers: usize,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyAbs {
    /// (kind, semaphore limit) while in use.
    pub kind: Option<(u8, u32)>,
    /// (owner, fence rank, via, ms left, two-phase).
    pub holders: Vec<(u8, u8, u8, u64, bool)>,
    /// (owner, via, two-phase, parked), head first.
    pub queue: Vec<(u8, u8, bool, bool)>,
    /// Ranks of known tokens this key remembers as expired.
    pub expired: Vec<u8>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub struct OwnerAbs {
    /// (key, ms left) while parked.
    pub parked: Option<(u8, u64)>,
    /// (key, via, granted token rank or None while queued).
    pub enq: Vec<(u8, u8, Option<u8>)>,
    /// Rank of the last token per key.
    pub tokens: Vec<Option<u8>>,
}

pub fn via_code(v: Via) -> u8 {
    match v {
        Via::Lock => 0,
        Via::Sem => 1,
        Via::Read => 2,
        Via::Write => 3,
        Via::Elect => 4,
        Via::Dread => 5,
    }
}

pub fn mode_of_code(c: u8) -> Mode {
    match c {
        0 => Mode::Excl,
        1 => Mode::Sem,
        2 => Mode::Read,
        _ => Mode::Write,
    }
}

pub fn view(sim: &Sim, s: &LockSnapshot) -> View {
    let keys = sim.setup.keys;
    let key_index = |name: &str| keys.iter().position(|(k, _)| *k == name).unwrap_or(99) as u8;
    let mut known: Vec<u64> = Vec::new();
    for r in &s.resources {
        known.extend(r.holders.iter().map(|h| h.token.fence));
    }
    for t in sim.tokens.iter().flatten().flatten() {
        known.push(t.fence);
    }
    for o in &s.owners {
        known.extend(o.enqueues.iter().filter_map(|e| e.granted.map(|t| t.fence)));
    }
    known.sort_unstable();
    known.dedup();
    let rank = |f: u64| known.binary_search(&f).map_or(255, |i| i as u8);
    let who = |id: OwnerId| sim.owner_index(id).map_or(9, |i| i as u8);
    let key_views = (0..keys.len())
        .map(|k| match sim.res(s, k) {
            None => KeyAbs {
                kind: None,
                holders: vec![],
                queue: vec![],
                expired: vec![],
            },
            Some(r) => KeyAbs {
                kind: in_use(r).then_some(match r.kind {
                    Kind::Exclusive => (0, 0),
                    Kind::ReadWrite => (1, 0),
                    Kind::Semaphore(n) => (2, n),
                }),
                holders: r
                    .holders
                    .iter()
                    .map(|h| {
                        (
                            who(h.owner),
                            rank(h.token.fence),
                            via_code(h.via),
                            h.deadline.saturating_sub(sim.now),
                            h.two_phase,
                        )
                    })
                    .collect(),
                queue: r
                    .queue
                    .iter()
                    .map(|w| (who(w.owner), via_code(w.via), w.two_phase, w.parked))
                    .collect(),
                expired: {
                    let mut v: Vec<u8> = r
                        .expired
                        .iter()
                        .filter(|t| known.binary_search(&t.fence).is_ok())
                        .map(|t| rank(t.fence))
                        .collect();
                    v.sort_unstable();
                    v
                },
            },
        })
        .collect();
    let owners = (0..sim.setup.owners)
        .map(|i| {
            let ov = s.owner(sim.ids[i]);
            let mut enq: Vec<(u8, u8, Option<u8>)> = ov
                .map(|ov| {
                    ov.enqueues
                        .iter()
                        .map(|e| {
                            (
                                key_index(&e.key),
                                via_code(e.via),
                                e.granted.map(|t| rank(t.fence)),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            enq.sort_unstable();
            OwnerAbs {
                parked: sim.parked[i].map(|(k, d)| (k as u8, d.saturating_sub(sim.now))),
                enq,
                tokens: sim.tokens[i]
                    .iter()
                    .map(|t| t.map(|t| rank(t.fence)))
                    .collect(),
            }
        })
        .collect();
    View {
        keys: key_views,
        owners,
        timers: sim.wheel.len(),
    }
}

impl View {
    /// The view with owner `i` renamed `perm[i]` (9, a departed owner, stays).
    fn permuted(&self, perm: &[u8]) -> View {
        let map = |o: u8| perm.get(o as usize).copied().unwrap_or(o);
        let mut owners = self.owners.clone();
        for (i, ov) in self.owners.iter().enumerate() {
            owners[perm[i] as usize] = ov.clone();
        }
        let keys = self
            .keys
            .iter()
            .map(|k| KeyAbs {
                kind: k.kind,
                holders: k
                    .holders
                    .iter()
                    .map(|h| (map(h.0), h.1, h.2, h.3, h.4))
                    .collect(),
                queue: k.queue.iter().map(|w| (map(w.0), w.1, w.2, w.3)).collect(),
                expired: k.expired.clone(),
            })
            .collect();
        View {
            keys,
            owners,
            timers: self.timers,
        }
    }

    /// The least view over every renaming of the owners: owners are
    /// interchangeable (the state never orders them by slot), so states equal
    /// up to a renaming need exploring once (symmetry reduction).
    pub fn canonical(&self) -> View {
        let n = self.owners.len() as u8;
        let perms: Vec<Vec<u8>> = match n {
            2 => vec![vec![0, 1], vec![1, 0]],
            3 => vec![
                vec![0, 1, 2],
                vec![0, 2, 1],
                vec![1, 0, 2],
                vec![1, 2, 0],
                vec![2, 0, 1],
                vec![2, 1, 0],
            ],
            _ => vec![(0..n).collect()],
        };
        perms
            .iter()
            .map(|p| self.permuted(p))
            .min()
            .expect("at least the identity")
    }
}
