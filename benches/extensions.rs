//! The §8.15 extensions on large queues, driven without sockets: `pos` on a
//! queue of 100,000 waiters (O(log n), not a scan) and the deadlock check of
//! a new request at the end of a 10,000-waiter wait-for chain (proportional
//! to the path followed; budget ≤ 1 ms).

use criterion::{Criterion, criterion_group, criterion_main};
use dflockd::owner::OwnerId;
use dflockd::protocol::command::Command;
use dflockd::protocol::reply::{Reply, Status};
use dflockd::state::fence::Fences;
use dflockd::state::options::OptName;
use dflockd::state::{Cx, Out, Outcome, State, StateConfig};
use dflockd::timer::Timer;
use dflockd::timer::wheel::Wheel;
use std::hint::black_box;
use std::time::Duration;

struct Rig {
    state: State,
    wheel: Wheel<Timer>,
    out: Vec<Out>,
}

impl Rig {
    fn new(conns: u32) -> Rig {
        let cfg = StateConfig {
            default_lease_s: 3600,
            ..StateConfig::unlimited()
        };
        let fences = Fences::open(None, 0).expect("fences without a state file");
        let mut state = State::new(cfg, fences);
        for i in 0..conns {
            state.on_connect(conn(i), u64::from(i) + 1);
        }
        Rig {
            state,
            wheel: Wheel::new(0),
            out: Vec::new(),
        }
    }

    fn apply(&mut self, c: OwnerId, cmd: Command) -> Outcome {
        let can_take = |_: OwnerId, _: usize| true;
        let mut cx = Cx {
            now: 0,
            timers: &mut self.wheel,
            out: &mut self.out,
            can_take: &can_take,
        };
        self.state.apply(&mut cx, c, cmd)
    }
}

fn conn(slot: u32) -> OwnerId {
    OwnerId {
        slot,
        generation: 0,
    }
}

fn key(k: &str) -> Box<str> {
    k.into()
}

const QUEUE: u32 = 100_000;

fn pos_on_a_long_queue(c: &mut Criterion) {
    let mut rig = Rig::new(QUEUE + 1);
    let lock = |k: &str| Command::Lock {
        key: key(k),
        timeout: 0,
        lease: None,
    };
    assert!(matches!(
        rig.apply(conn(0), lock("q")),
        Outcome::Reply(Reply::Grant { .. })
    ));
    for i in 1..=QUEUE {
        let e = Command::Enqueue {
            key: key("q"),
            lease: None,
        };
        assert_eq!(rig.apply(conn(i), e), Outcome::Reply(Status::Queued.into()));
    }
    // Every other waiter in the first half leaves (two-phase cancel), so the
    // position of the last one is not simply its arrival index.
    for i in (1..=QUEUE / 2).step_by(2) {
        let w = Command::Wait {
            key: key("q"),
            timeout: 0,
        };
        assert_eq!(
            rig.apply(conn(i), w),
            Outcome::Reply(Status::Timeout.into())
        );
    }
    let expect = i64::from(QUEUE - QUEUE / 4);
    let last = conn(QUEUE);
    assert_eq!(
        rig.apply(last, Command::Pos { key: key("q") }),
        Outcome::Reply(Reply::Int(expect))
    );
    c.bench_function("ext/pos on a queue of 100,000 waiters", |b| {
        b.iter(|| black_box(rig.apply(last, Command::Pos { key: key("q") })))
    });
}

const CHAIN: u32 = 10_000;

/// Owner i holds `k<i>` and waits (parked) for `k<i-1>`: a wait-for chain
/// 10,000 owners deep, no cycle. The measured request is owner `CHAIN`'s
/// acquire of `k<CHAIN-1>` with `opt deadlock on`: the search walks the
/// whole chain, finds no cycle, and the request parks; it is then
/// cancelled so that every iteration measures the same chain (the park and
/// the cancel are included: the figure is an upper bound of the check).
fn deadlock_check_on_a_long_chain(c: &mut Criterion) {
    let mut rig = Rig::new(CHAIN + 1);
    let lock = |i: u32, timeout| Command::Lock {
        key: format!("k{i}").into(),
        timeout,
        lease: None,
    };
    for i in 0..CHAIN {
        assert!(matches!(
            rig.apply(conn(i), lock(i, 0)),
            Outcome::Reply(Reply::Grant { .. })
        ));
    }
    for i in 1..CHAIN {
        assert_eq!(rig.apply(conn(i), lock(i - 1, 3600)), Outcome::Park);
    }
    let me = conn(CHAIN);
    let opt = Command::Opt {
        name: OptName::Deadlock,
        on: true,
    };
    assert_eq!(rig.apply(me, opt), Outcome::Reply(Reply::OK));
    // Sanity: owner 0 (holder of the chain's end) asking for the last key
    // closes the cycle and is refused at once, changing nothing.
    let opt0 = Command::Opt {
        name: OptName::Deadlock,
        on: true,
    };
    assert_eq!(rig.apply(conn(0), opt0), Outcome::Reply(Reply::OK));
    assert_eq!(
        rig.apply(conn(0), lock(CHAIN - 1, 3600)),
        Outcome::Reply(Status::ErrorDeadlock.into())
    );
    c.bench_function(
        "ext/deadlock check, chain of 10,000 waiters, no cycle",
        |b| {
            b.iter(|| {
                let o = rig.apply(me, lock(CHAIN - 1, 3600));
                assert_eq!(o, Outcome::Park);
                let can_take = |_: OwnerId, _: usize| true;
                let mut cx = Cx {
                    now: 0,
                    timers: &mut rig.wheel,
                    out: &mut rig.out,
                    can_take: &can_take,
                };
                rig.state.cancel_parked(&mut cx, me);
            })
        },
    );
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
}

criterion_group! {
    name = benches;
    config = config();
    targets = pos_on_a_long_queue, deadlock_check_on_a_long_chain
}
criterion_main!(benches);
