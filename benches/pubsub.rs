//! Pub/sub subject trie: fan-out, wildcard matching, queue groups, churn.
//!
//! The recipient only counts, so the numbers are the data structure's own cost
//! per publish (the server adds its outbox push per delivery on top).
//! Short measurement times keep `cargo bench` practical.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dflockd::owner::OwnerId;
use dflockd::state::subjects::{PubSub, Recipients};
use std::hint::black_box;
use std::time::Duration;

fn conn(slot: u32) -> OwnerId {
    OwnerId {
        slot,
        generation: 0,
    }
}

/// Takes every frame and counts it; the xor keeps the loop from being elided.
#[derive(Default)]
struct Sink {
    frames: u64,
    mix: u32,
}

impl Recipients for Sink {
    fn can_take(&self, _conn: OwnerId, _len: usize) -> bool {
        true
    }

    fn deliver(&mut self, conn: OwnerId) {
        self.frames += 1;
        self.mix ^= conn.slot;
    }

    fn close_slow(&mut self, _conn: OwnerId) {}
}

/// (a) One signal to N ungrouped subscribers of one exact pattern.
fn fanout(c: &mut Criterion) {
    let mut g = c.benchmark_group("fanout");
    for n in [1_000u32, 10_000] {
        let mut ps = PubSub::new();
        for s in 0..n {
            ps.listen(conn(s), "orders.created", None);
        }
        let mut sink = Sink::default();
        // Per-element throughput: criterion's time / N is ns per delivery.
        g.throughput(Throughput::Elements(u64::from(n)));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| {
                let got = ps.publish(black_box("orders.created"), 64, &mut sink);
                assert_eq!(got, n as usize);
            })
        });
        black_box(sink.mix);
    }
    g.finish();
}

/// The ten wildcard shapes registered under each `app{x}` prefix; every one
/// matches `app{x}.evt.created.eu`.
const SHAPES: [&str; 10] = [
    ">",
    "evt.>",
    "*.>",
    "evt.created.>",
    "*.created.>",
    "evt.*.eu",
    "*.*.eu",
    "*.*.*",
    "evt.created.eu",
    "evt.*.*",
];

/// (b) 10,000 subscribers over 1,000 distinct patterns (100 prefixes × 10
/// shapes × 10 subscribers); the channel matches 10 patterns (1 %), which
/// reach 100 subscribers through several sets, so the dedup path runs.
fn wildcards(c: &mut Criterion) {
    let mut ps = PubSub::new();
    let mut slot = 0;
    for x in 0..100 {
        for shape in SHAPES {
            let pattern = format!("app{x}.{shape}");
            for _ in 0..10 {
                ps.listen(conn(slot), &pattern, None);
                slot += 1;
            }
        }
    }
    let mut sink = Sink::default();
    let mut g = c.benchmark_group("wildcards");
    g.throughput(Throughput::Elements(1));
    g.bench_function("1000_patterns_10k_subs_1pct", |b| {
        b.iter(|| {
            let got = ps.publish(black_box("app42.evt.created.eu"), 64, &mut sink);
            assert_eq!(got, 100);
        })
    });
    g.bench_function("1000_patterns_no_match", |b| {
        b.iter(|| ps.publish(black_box("app42.other"), 64, &mut sink))
    });
    g.finish();
    black_box(sink.mix);
}

/// (c) A queue group of 100 members: one delivery per publish, rotating.
fn queue_group(c: &mut Criterion) {
    let mut ps = PubSub::new();
    for s in 0..100 {
        ps.listen(conn(s), "jobs.>", Some("workers"));
    }
    let mut sink = Sink::default();
    let mut g = c.benchmark_group("queue_group");
    g.throughput(Throughput::Elements(1));
    g.bench_function("100_members", |b| {
        b.iter(|| {
            let got = ps.publish(black_box("jobs.build"), 64, &mut sink);
            assert_eq!(got, 1);
        })
    });
    g.finish();
    black_box(sink.mix);
}

/// (d) listen + unlisten pairs next to 10,000 standing subscriptions.
fn churn(c: &mut Criterion) {
    let mut ps = PubSub::new();
    for s in 0..10_000u32 {
        ps.listen(conn(s), &format!("room{}.*", s % 1000), None);
    }
    let mut g = c.benchmark_group("churn");
    g.throughput(Throughput::Elements(1));
    // The pattern's nodes exist already: set insert + remove.
    g.bench_function("existing_pattern", |b| {
        b.iter(|| {
            ps.listen(conn(20_000), black_box("room7.*"), None);
            ps.unlisten(conn(20_000), black_box("room7.*"), None);
        })
    });
    // Three new nodes each time: created on listen, pruned on unlisten.
    g.bench_function("new_pattern", |b| {
        b.iter(|| {
            ps.listen(conn(20_000), black_box("fresh.a.>"), None);
            ps.unlisten(conn(20_000), black_box("fresh.a.>"), None);
        })
    });
    g.bench_function("group_member", |b| {
        b.iter(|| {
            ps.listen(conn(20_000), black_box("room7.*"), Some("g"));
            ps.unlisten(conn(20_000), black_box("room7.*"), Some("g"));
        })
    });
    // A connection taking 10 subscriptions, then disconnecting.
    let rooms: Vec<String> = (0..10).map(|r| format!("room{r}.*")).collect();
    g.bench_function("listen_10_remove_conn", |b| {
        b.iter(|| {
            for room in &rooms {
                ps.listen(conn(20_000), black_box(room), None);
            }
            ps.remove_conn(conn(20_000));
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = fanout, wildcards, queue_group, churn
}
criterion_main!(benches);
