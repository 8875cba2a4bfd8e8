//! Latency histograms for the contention statistics (protocol.md §8.15):
//! a fixed-bucket log histogram with two buckets per power of two.
//!
//! Durations arrive as whole milliseconds (the loop's clock is floored to
//! ms). Bucket 0 holds 0 ms; for v ≥ 1 ms, bucket `1 + 2k` holds
//! `[2^k, 2^k·√2)` and bucket `2 + 2k` holds `[2^k·√2, 2^(k+1))`, so a
//! quantile read from a bucket is off by at most a factor √2 (≈ 41%). The
//! last bucket is open: everything from 2^23 ms (about 2.3 hours) up.
//!
//! Two flavours share the bucket layout:
//! * [`KeyHistogram`] — per tracked key, 48 × `u16` = 96 bytes. When a
//!   bucket would overflow, every bucket is halved (rounding up, so a bucket
//!   that saw anything keeps at least 1): the shape of the distribution, and
//!   so its quantiles, survives, with a bias towards recent samples. Exact
//!   totals are kept beside it in `u64`s.
//! * [`Histogram`] — the two server-wide histograms of `/metrics`, with
//!   exact `u64` counts, a sum and a count.
//!
//! Recording is a leading-zeros count, one multiply and one compare: it runs
//! on every release (hold time), so it must cost next to nothing.

/// Number of buckets in both flavours.
pub const BUCKETS: usize = 48;

/// The bucket of a duration of `ms` milliseconds.
#[inline]
pub fn bucket(ms: u64) -> usize {
    if ms == 0 {
        return 0;
    }
    if ms >= 1 << 23 {
        return BUCKETS - 1;
    }
    let k = 63 - ms.leading_zeros() as u64; // floor(log2 ms), < 23
    // Upper half of the octave when ms ≥ 2^k·√2, i.e. ms² ≥ 2^(2k+1).
    let upper = (ms * ms >= 1 << (2 * k + 1)) as usize;
    1 + 2 * k as usize + upper
}

/// The smallest whole number of milliseconds that falls in a later bucket
/// than `idx`: every duration recorded in `idx` was shorter than this (the
/// recorded ms are floored, so the true duration is too). For the open last
/// bucket, its lower bound.
pub fn upper_ms(idx: usize) -> u64 {
    match idx {
        0 => 1,
        i if i >= BUCKETS - 1 => 1 << 23,
        i if i % 2 == 1 => {
            // Odd 1 + 2k: up to ceil(2^k·√2) = the least v with v² ≥ 2^(2k+1).
            let k = (i - 1) / 2;
            let target = 1u64 << (2 * k + 1);
            let mut v = (target as f64).sqrt() as u64;
            while v * v < target {
                v += 1;
            }
            while v > 1 && (v - 1) * (v - 1) >= target {
                v -= 1;
            }
            v
        }
        i => 1 << (i / 2), // even 2 + 2k: up to 2^(k+1)
    }
}

/// The `q` quantile (0 < q ≤ 1) of bucket counts, in seconds: the upper
/// bound of the bucket that holds it, so it never under-reports. 0 when empty.
fn quantile<T: Copy + Into<u64>>(counts: &[T; BUCKETS], q: f64) -> f64 {
    let total: u64 = counts.iter().map(|&c| c.into()).sum();
    if total == 0 {
        return 0.0;
    }
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (i, &c) in counts.iter().enumerate() {
        seen += c.into();
        if seen >= rank {
            return upper_ms(i) as f64 / 1000.0;
        }
    }
    upper_ms(BUCKETS - 1) as f64 / 1000.0
}

/// A per-key histogram of 96 bytes (see the module doc for the halving).
#[derive(Debug, Clone)]
pub struct KeyHistogram {
    counts: [u16; BUCKETS],
}

impl Default for KeyHistogram {
    fn default() -> Self {
        KeyHistogram {
            counts: [0; BUCKETS],
        }
    }
}

impl KeyHistogram {
    #[inline]
    pub fn record(&mut self, ms: u64) {
        let i = bucket(ms);
        if self.counts[i] == u16::MAX {
            for c in &mut self.counts {
                *c = c.div_ceil(2);
            }
        }
        self.counts[i] += 1;
    }

    /// The `q` quantile in seconds (see [`quantile`]).
    pub fn quantile_s(&self, q: f64) -> f64 {
        quantile(&self.counts, q)
    }
}

/// A server-wide histogram with exact counts (for `/metrics`).
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: [u64; BUCKETS],
    pub sum_ms: u64,
    pub count: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: [0; BUCKETS],
            sum_ms: 0,
            count: 0,
        }
    }
}

impl Histogram {
    #[inline]
    pub fn record(&mut self, ms: u64) {
        self.counts[bucket(ms)] += 1;
        self.sum_ms = self.sum_ms.saturating_add(ms);
        self.count += 1;
    }

    /// The `q` quantile in seconds (see [`quantile`]).
    pub fn quantile_s(&self, q: f64) -> f64 {
        quantile(&self.counts, q)
    }

    /// Cumulative counts at the power-of-two bounds, as Prometheus `le`
    /// buckets: `(le in seconds, samples < le)`, from 1 ms to 2^23 ms. The
    /// open last bucket is only in the total (`+Inf`).
    pub fn cumulative(&self) -> Vec<(f64, u64)> {
        let mut out = Vec::with_capacity(BUCKETS / 2 + 1);
        let mut acc = 0;
        for (i, &c) in self.counts.iter().enumerate().take(BUCKETS - 1) {
            acc += c;
            // Bucket 0 ends at 1 ms; even buckets end at a power of two.
            if i % 2 == 0 {
                out.push((upper_ms(i) as f64 / 1000.0, acc));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_duration_is_below_its_bucket_upper_bound_and_not_below_the_previous() {
        for ms in (0..70_000u64).chain([1 << 22, (1 << 23) - 1, 1 << 23, u64::MAX]) {
            let i = bucket(ms);
            assert!(i < BUCKETS);
            if i < BUCKETS - 1 {
                assert!(ms < upper_ms(i), "{ms} ms in bucket {i}");
            }
            if i > 0 {
                assert!(ms >= upper_ms(i - 1), "{ms} ms in bucket {i}");
            }
        }
    }

    #[test]
    fn buckets_are_at_most_root_two_wide() {
        for i in 2..BUCKETS - 1 {
            let (lo, hi) = (upper_ms(i - 1) as f64, upper_ms(i) as f64);
            assert!(hi / lo <= 1.5, "bucket {i}: {lo}..{hi}");
        }
    }

    #[test]
    fn quantiles_never_under_report_and_stay_within_root_two() {
        let mut h = KeyHistogram::default();
        for ms in 1..=1000 {
            h.record(ms);
        }
        let p50 = h.quantile_s(0.5);
        let p99 = h.quantile_s(0.99);
        assert!((0.5..=0.5 * 1.5).contains(&p50), "p50 {p50}");
        assert!((0.99..=0.99 * 1.5).contains(&p99), "p99 {p99}");
        assert_eq!(KeyHistogram::default().quantile_s(0.99), 0.0);
    }

    #[test]
    fn key_histogram_halves_instead_of_overflowing() {
        let mut h = KeyHistogram::default();
        for _ in 0..200_000 {
            h.record(5);
        }
        h.record(5000);
        assert!(h.counts[bucket(5)] > 30_000);
        assert_eq!(h.counts[bucket(5000)], 1);
        assert_eq!(h.quantile_s(0.5), upper_ms(bucket(5)) as f64 / 1000.0);
        assert_eq!(std::mem::size_of::<KeyHistogram>(), 96);
    }

    #[test]
    fn cumulative_buckets_rise_to_the_count() {
        let mut h = Histogram::default();
        for ms in [0, 1, 3, 900, 1 << 30] {
            h.record(ms);
        }
        let c = h.cumulative();
        assert_eq!(c.first(), Some(&(0.001, 1)));
        assert!(c.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
        assert_eq!(c.last().map(|l| l.1), Some(4));
        assert_eq!(h.count, 5);
    }
}
