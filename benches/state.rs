//! Hot paths of the coordination state, driven without sockets: grant +
//! release pairs, FIFO hand-off under contention, KV TTL churn, the whole
//! dispatch path (frame → command → apply → encode) and reply encoding.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use dflockd::owner::OwnerId;
use dflockd::protocol::command::{Command, CommandLimits, End};
use dflockd::protocol::line::{Frame, parse_frame};
use dflockd::protocol::reply::{GrantWord, Reply};
use dflockd::protocol::{LineLimits, Parsed};
use dflockd::state::fence::{Fences, Token};
use dflockd::state::{Cx, Out, Outcome, State, StateConfig};
use dflockd::timer::Timer;
use dflockd::timer::wheel::Wheel;
use std::hint::black_box;
use std::time::Duration;

fn state() -> State {
    let cfg = StateConfig {
        // The default's ceiling: every data write pays the budget's check.
        max_memory: 1 << 30,
        ..StateConfig::unlimited()
    };
    let fences = Fences::open(None, 0).expect("fences without a state file");
    State::new(cfg, fences)
}

fn conn(slot: u32) -> OwnerId {
    OwnerId {
        slot,
        generation: 0,
    }
}

struct Rig {
    state: State,
    wheel: Wheel<Timer>,
    out: Vec<Out>,
    now: u64,
}

impl Rig {
    fn new(conns: u32) -> Rig {
        let mut state = state();
        for i in 0..conns {
            state.on_connect(conn(i), i as u64 + 1);
        }
        Rig {
            state,
            wheel: Wheel::new(0),
            out: Vec::new(),
            now: 0,
        }
    }

    fn apply(&mut self, c: OwnerId, cmd: Command) -> Outcome {
        let can_take = |_: OwnerId, _: usize| true;
        let mut cx = Cx {
            now: self.now,
            timers: &mut self.wheel,
            out: &mut self.out,
            can_take: &can_take,
        };
        self.state.apply(&mut cx, c, cmd)
    }

    fn fire(&mut self) {
        while let Some((_, t)) = self.wheel.poll(self.now) {
            let can_take = |_: OwnerId, _: usize| true;
            let mut cx = Cx {
                now: self.now,
                timers: &mut self.wheel,
                out: &mut self.out,
                can_take: &can_take,
            };
            self.state.on_timer(&mut cx, t);
        }
    }
}

fn token_of(o: &Outcome) -> Box<[u8]> {
    match o {
        Outcome::Reply(Reply::Grant { token, .. }) => token.encode().to_vec().into(),
        Outcome::Reply(Reply::Dread(_)) => Box::default(),
        other => panic!("expected a grant, got {other:?}"),
    }
}

fn grant_release(c: &mut Criterion) {
    let mut rig = Rig::new(1);
    let key: Box<str> = "bench-key".into();
    c.bench_function("state/lock+release pair", |b| {
        b.iter(|| {
            let o = rig.apply(
                conn(0),
                Command::Lock {
                    key: key.clone(),
                    timeout: 0,
                    lease: None,
                },
            );
            let token = token_of(&o);
            let r = rig.apply(
                conn(0),
                Command::Release {
                    key: key.clone(),
                    token,
                },
            );
            black_box(r);
        })
    });
}

fn contended_handoff(c: &mut Criterion) {
    // 100 connections queue on one key; each release hands the slot to the head.
    const N: u32 = 100;
    let mut rig = Rig::new(N);
    let key: Box<str> = "hot".into();
    let mut holder = token_of(&rig.apply(
        conn(0),
        Command::Lock {
            key: key.clone(),
            timeout: 0,
            lease: None,
        },
    ));
    for i in 1..N {
        rig.apply(
            conn(i),
            Command::Lock {
                key: key.clone(),
                timeout: 3600,
                lease: None,
            },
        );
    }
    let mut next_waiter = 0u32;
    c.bench_function("state/contended hand-off (100 waiters)", |b| {
        b.iter(|| {
            rig.apply(
                conn(next_waiter),
                Command::Release {
                    key: key.clone(),
                    token: holder.clone(),
                },
            );
            // The releaser queues again at the tail; the head got the grant.
            rig.apply(
                conn(next_waiter),
                Command::Lock {
                    key: key.clone(),
                    timeout: 3600,
                    lease: None,
                },
            );
            for out in rig.out.drain(..) {
                if let Out::Reply {
                    conn: c,
                    reply: Reply::Grant { token, .. },
                } = out
                {
                    holder = token.encode().to_vec().into();
                    next_waiter = c.slot;
                }
            }
        })
    });
}

fn kv_ttl_churn(c: &mut Criterion) {
    // Overwrite 10,000 keys with 1 s TTLs while time advances and entries expire.
    let mut rig = Rig::new(1);
    let keys: Vec<Box<str>> = (0..10_000).map(|i| format!("k{i}").into()).collect();
    let mut i = 0usize;
    c.bench_function("state/kv set with ttl + expiry churn", |b| {
        b.iter(|| {
            let r = rig.apply(
                conn(0),
                Command::KSet {
                    key: keys[i % keys.len()].clone(),
                    value: "v".into(),
                    ttl: 1,
                },
            );
            black_box(r);
            i += 1;
            if i % 100 == 0 {
                rig.now += 10;
                rig.fire();
            }
        })
    });
}

/// Overwrite 1,000 keys with 64-byte values: the data write path without TTLs.
fn kset_overwrite(c: &mut Criterion) {
    let mut rig = Rig::new(1);
    let keys: Vec<Box<str>> = (0..1_000).map(|i| format!("k{i}").into()).collect();
    let value: Box<str> = "v".repeat(64).into();
    let mut i = 0usize;
    c.bench_function("state/kset overwrite (1000 keys, 64 B)", |b| {
        b.iter(|| {
            let r = rig.apply(
                conn(0),
                Command::KSet {
                    key: keys[i % keys.len()].clone(),
                    value: value.clone(),
                    ttl: 0,
                },
            );
            black_box(r);
            i += 1;
        })
    });
}

/// A work queue in steady state: push one 64-byte item, pop one.
fn rpush_lpop(c: &mut Criterion) {
    let mut rig = Rig::new(1);
    let key: Box<str> = "jobs".into();
    let value: Box<str> = "j".repeat(64).into();
    // Keep a backlog so the list (and its key) is never deleted.
    for _ in 0..100 {
        rig.apply(
            conn(0),
            Command::Push {
                end: End::Right,
                key: key.clone(),
                value: value.clone(),
            },
        );
    }
    c.bench_function("state/rpush+lpop pair (64 B)", |b| {
        b.iter(|| {
            let r = rig.apply(
                conn(0),
                Command::Push {
                    end: End::Right,
                    key: key.clone(),
                    value: value.clone(),
                },
            );
            black_box(r);
            let r = rig.apply(
                conn(0),
                Command::Pop {
                    end: End::Left,
                    key: key.clone(),
                },
            );
            black_box(r);
        })
    });
}

/// The per-request path of the server minus the socket: frame a pipelined
/// buffer, build typed commands, apply them, encode the replies.
fn dispatch(c: &mut Criterion) {
    let mut rig = Rig::new(1);
    let line = LineLimits::for_value_bytes(65536);
    let limits = CommandLimits {
        max_value_bytes: 65536,
    };
    // 64 requests per buffer: incr, kset, kget, ping — no lock state to undo.
    let mut buf = Vec::new();
    for i in 0..16 {
        buf.extend_from_slice(format!("incr\nc{i}\n1\n").as_bytes());
        buf.extend_from_slice(format!("kset\nk{i}\nvalue {i}\n").as_bytes());
        buf.extend_from_slice(format!("kget\nk{i}\n\n").as_bytes());
        buf.extend_from_slice(b"ping\n_\n\n");
    }
    let mut out = Vec::with_capacity(4096);
    let mut group = c.benchmark_group("dispatch");
    group.throughput(criterion::Throughput::Elements(64));
    group.bench_function("64 pipelined requests", |b| {
        b.iter(|| {
            out.clear();
            let mut at = 0;
            while let Parsed::Complete { value, consumed } = parse_frame(&buf[at..], &line) {
                at += consumed;
                let Frame::Request { cmd, key, arg } = value else {
                    unreachable!("no Dreadlock lines in this buffer")
                };
                let cmd = Command::from_raw(cmd, key, arg, &limits).expect("valid request");
                if let Outcome::Reply(r) = rig.apply(conn(0), cmd) {
                    r.encode(&mut out);
                }
            }
            black_box(&out);
        })
    });
    group.finish();
}

fn encode(c: &mut Criterion) {
    let reply = Reply::Grant {
        word: GrantWord::Ok,
        token: Token {
            fence: 0x18ea9db47e590001,
            salt: 0xd433357e6ef5d88b,
        },
        lease_s: 33,
        with_fence: false,
    };
    let mut buf = Vec::with_capacity(64);
    c.bench_function("reply/encode grant", |b| {
        b.iter_batched_ref(
            || (),
            |_| {
                buf.clear();
                black_box(&reply).encode(&mut buf);
                black_box(&buf);
            },
            BatchSize::SmallInput,
        )
    });
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
    targets = grant_release, contended_handoff, kv_ttl_churn, kset_overwrite, rpush_lpop, dispatch, encode
}
criterion_main!(benches);
