//! The memory budget's figures against the allocator's own count (protocol.md
//! §7.4a: "counted, exactly or within 20% of the real allocation").
//!
//! A counting global allocator records every live allocation at the size
//! malloc really gave it (`malloc_usable_size` + its 8-byte header). Each
//! family is driven through `State::apply` alone — no sockets, no server —
//! and the growth of the live heap is compared with the growth of
//! `memory_used_bytes`. One `#[test]` runs every case in turn, so no other
//! test thread allocates while a case measures.

use dflockd::owner::OwnerId;
use dflockd::protocol::command::{Command, CommandLimits};
use dflockd::state::fence::Fences;
use dflockd::state::{Cx, Out, State, StateConfig};
use dflockd::timer::Timer;
use dflockd::timer::wheel::Wheel;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

/// Live heap bytes, as malloc accounts them.
static LIVE: AtomicIsize = AtomicIsize::new(0);

struct Counting;

fn chunk(ptr: *mut u8) -> isize {
    // SAFETY: `ptr` came from the system allocator (glibc malloc) and is live.
    (unsafe { libc::malloc_usable_size(ptr.cast()) } + 8) as isize
}

// SAFETY: every call is forwarded to `System`; the counter only observes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(chunk(p), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(chunk(p), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(chunk(ptr), Ordering::Relaxed);
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = chunk(ptr);
        // SAFETY: forwarded as received.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(chunk(p) - old, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

struct Rig {
    state: State,
    wheel: Wheel<Timer>,
    out: Vec<Out>,
    now: u64,
}

impl Rig {
    fn new(conns: u32) -> Rig {
        let cfg = StateConfig {
            default_lease_s: 3600,
            max_locks: u64::from(u32::MAX),
            ..StateConfig::unlimited()
        };
        let fences = Fences::open(None, 1).expect("fences without a state file");
        let mut state = State::new(cfg, fences);
        for slot in 0..conns {
            state.on_connect(conn(slot), u64::from(slot) + 1);
        }
        Rig {
            state,
            wheel: Wheel::new(0),
            out: Vec::new(),
            now: 0,
        }
    }

    fn req(&mut self, c: OwnerId, cmd: &str, key: &str, arg: &str) {
        let limits = CommandLimits {
            max_value_bytes: 1 << 20,
        };
        let cmd = Command::from_raw(cmd.as_bytes(), key.as_bytes(), arg.as_bytes(), &limits)
            .unwrap_or_else(|e| panic!("{cmd} {key}: {e:?}"));
        let can_take = |_: OwnerId, _: usize| true;
        let mut cx = Cx {
            now: self.now,
            timers: &mut self.wheel,
            out: &mut self.out,
            can_take: &can_take,
        };
        let outcome = self.state.apply(&mut cx, c, cmd);
        drop(outcome);
        self.out.clear();
    }
}

fn conn(slot: u32) -> OwnerId {
    OwnerId::conn(slot as usize, 0)
}

/// A fixed-seed xorshift, so every run measures the same workload.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Run `fill` on a fresh rig and compare the heap's growth with the budget's.
fn measure(name: &str, conns: u32, fill: impl FnOnce(&mut Rig)) -> f64 {
    let mut rig = Rig::new(conns);
    // Scratch the rig keeps once warm (reply buffers, the wheel's slots).
    rig.req(conn(0), "ping", "_", "");
    let (heap0, used0) = (LIVE.load(Ordering::Relaxed), rig.state.mem.used());
    fill(&mut rig);
    let heap = (LIVE.load(Ordering::Relaxed) - heap0) as f64;
    let used = (rig.state.mem.used() - used0) as f64;
    let ratio = used / heap;
    println!(
        "{name:<44} heap {:>12} B  counted {:>12} B  counted/heap {ratio:.3}",
        heap as u64, used as u64
    );
    drop(rig);
    ratio
}

#[test]
fn every_family_is_counted_within_20_percent_of_the_heap() {
    let mut results = Vec::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let value = |rng: &mut Rng, lo: u64, hi: u64| "v".repeat((lo + rng.below(hi - lo)) as usize);

    results.push(measure("kv: 50k keys, 1..64 B values", 1, |r| {
        for i in 0..50_000 {
            let v = value(&mut rng, 1, 64);
            r.req(conn(0), "kset", &format!("key:{i}"), &v);
        }
    }));
    results.push(measure("kv: 5k keys, 1..16 KiB values", 1, |r| {
        for i in 0..5_000 {
            let v = value(&mut rng, 1024, 16384);
            r.req(conn(0), "kset", &format!("key:{i}"), &v);
        }
    }));
    results.push(measure("kv: 20k keys with TTLs, 100 B values", 1, |r| {
        for i in 0..20_000 {
            r.req(
                conn(0),
                "kset",
                &format!("ttl:{i}"),
                &format!("{}\t600", "t".repeat(100)),
            );
        }
    }));
    results.push(measure("lists: 8 lists, 200k items of 1..128 B", 1, |r| {
        for i in 0..200_000 {
            let v = value(&mut rng, 1, 128);
            r.req(conn(0), "rpush", &format!("q{}", i % 8), &v);
        }
    }));
    results.push(measure("lists: 20k lists of 1 item, 32 B", 1, |r| {
        for i in 0..20_000 {
            r.req(conn(0), "lpush", &format!("list:{i}"), &"x".repeat(32));
        }
    }));
    results.push(measure("lists: 1 list, 2k items of 64 KiB", 1, |r| {
        for _ in 0..2_000 {
            r.req(conn(0), "rpush", "big", &"b".repeat(65536));
        }
    }));
    results.push(measure("counters: 50k", 1, |r| {
        for i in 0..50_000 {
            r.req(conn(0), "incr", &format!("counter:{i}"), "1");
        }
    }));
    results.push(measure(
        "subscriptions: 1k conns × 16 shared patterns",
        1000,
        |r| {
            for c in 0..1000 {
                for p in 0..16 {
                    r.req(conn(c), "listen", &format!("orders.region{p}.*"), "");
                }
            }
        },
    ));
    results.push(measure(
        "subscriptions: 20k unique 3-token patterns",
        1,
        |r| {
            for p in 0..20_000 {
                r.req(conn(0), "listen", &format!("tenant{p}.orders.>"), "");
            }
        },
    ));
    results.push(measure(
        "watches: 100 conns × 100 unique patterns",
        100,
        |r| {
            for c in 0..100 {
                for p in 0..100 {
                    r.req(conn(c), "watch", &format!("w{c}.k{p}"), "");
                }
            }
        },
    ));
    results.push(measure("locks: 20k keys held", 1, |r| {
        for i in 0..20_000 {
            r.req(conn(0), "l", &format!("lock:{i}"), "0");
        }
    }));
    for ratio in &results {
        assert!(
            (0.8..=1.2).contains(ratio),
            "counted/heap {ratio:.3} is outside 0.8..=1.2 (see the table above)"
        );
    }
}
