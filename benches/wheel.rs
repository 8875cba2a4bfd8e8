//! Timer wheel costs on the hot paths of the loop: arming and disarming a
//! timer with many others pending (every lease, wait and idle timeout), firing
//! (lease expiry), and `poll_at` (once per loop iteration).
//!
//! Kept short (1 s warm-up, 2 s measurement, 20 samples) so `cargo bench`
//! stays quick on a 2-core machine.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dflockd::timer::wheel::Wheel;
use std::hint::black_box;
use std::time::Duration;

/// Server start plus a day: an arbitrary, non-aligned clock reading.
const NOW: u64 = 86_400_000 + 12_345;

/// xorshift64: deterministic deadlines without extra crates.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A wheel holding `n` timers due within the next ~12 days, spread over all
/// levels like a mix of wait timeouts and leases.
fn filled(n: u64, rng: &mut Rng) -> Wheel<u64> {
    let mut wheel = Wheel::new(NOW);
    for i in 0..n {
        let range = [1 << 10, 1 << 16, 1 << 22, 1 << 30][i as usize % 4];
        wheel.insert(NOW + 1 + rng.below(range), i);
    }
    wheel
}

fn insert_cancel(c: &mut Criterion) {
    let mut group = c.benchmark_group("insert_cancel");
    group.throughput(Throughput::Elements(1));
    for n in [1_000u64, 10_000, 100_000, 1_000_000] {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut wheel = filled(n, &mut rng);
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                let key = wheel.insert(NOW + 1 + rng.below(1 << 20), 0);
                black_box(wheel.cancel(black_box(key)))
            })
        });
    }
    group.finish();
}

/// Inserts a batch, then drains it the way the loop does: sleep until
/// `poll_at`, poll everything due, repeat. Reports time per timer.
fn insert_fire(c: &mut Criterion) {
    const BATCH: u64 = 10_000;
    let mut group = c.benchmark_group("insert_fire");
    group.throughput(Throughput::Elements(BATCH));
    for (name, spread) in [("1s", 1_000u64), ("1h", 3_600_000), ("30d", 2_592_000_000)] {
        let mut rng = Rng(0x0123_4567_89AB_CDEF);
        let mut wheel = Wheel::new(NOW);
        let mut now = NOW;
        group.bench_function(name, |b| {
            b.iter(|| {
                for i in 0..BATCH {
                    wheel.insert(now + 1 + rng.below(spread), i);
                }
                while let Some(at) = wheel.poll_at() {
                    now = now.max(at);
                    while let Some(fired) = wheel.poll(now) {
                        black_box(fired);
                    }
                }
            })
        });
    }
    group.finish();
}

fn poll_at(c: &mut Criterion) {
    let mut group = c.benchmark_group("poll_at");
    for n in [1_000u64, 1_000_000] {
        let wheel = filled(n, &mut Rng(0xDEAD_BEEF_1234_5678));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| black_box(&wheel).poll_at())
        });
    }
    // Worst case: only a far timer, so every level is looked at.
    let mut far = Wheel::new(NOW);
    far.insert(NOW + (1 << 35), 0);
    group.bench_function("top_level_only", |b| b.iter(|| black_box(&far).poll_at()));
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = insert_cancel, insert_fire, poll_at
}
criterion_main!(benches);
