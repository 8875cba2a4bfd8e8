//! Per-IP token buckets for `--http-rate-limit-per-ip` (http.md §3.4).
//!
//! Each client IP has a bucket of at most `burst` tokens, refilled at `rate`
//! per second and full at first use; a request takes one. Buckets idle for a
//! minute are forgotten, so the table is bounded by the clients of the last
//! minute. Time is injected (ms), like everywhere in the loop.

use std::collections::HashMap;
use std::net::IpAddr;

/// Buckets untouched for this long are discarded.
const IDLE_FORGET_MS: u64 = 60_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Tokens × 1000, so refills at any rate stay integral.
    milli_tokens: u64,
    last: u64,
}

#[derive(Debug, Default)]
pub struct RateLimiter {
    /// Requests per second; 0 = off.
    rate: u64,
    burst: u64,
    buckets: HashMap<IpAddr, Bucket>,
    last_sweep: u64,
}

impl RateLimiter {
    /// `burst` 0 means the rate.
    pub fn new(rate: u64, burst: u64) -> Self {
        RateLimiter {
            rate,
            burst: if burst == 0 { rate } else { burst },
            ..Default::default()
        }
    }

    /// Take one token for `ip` at `now` (ms). False: rate limited.
    pub fn take(&mut self, ip: IpAddr, now: u64) -> bool {
        if self.rate == 0 {
            return true;
        }
        if now.saturating_sub(self.last_sweep) >= IDLE_FORGET_MS {
            self.last_sweep = now;
            self.buckets
                .retain(|_, b| now.saturating_sub(b.last) < IDLE_FORGET_MS);
        }
        let cap = self.burst.saturating_mul(1000);
        let b = self.buckets.entry(ip).or_insert(Bucket {
            milli_tokens: cap,
            last: now,
        });
        // rate tokens per 1000 ms = rate milli-tokens per ms.
        let refill = now.saturating_sub(b.last).saturating_mul(self.rate);
        b.milli_tokens = b.milli_tokens.saturating_add(refill).min(cap);
        b.last = now;
        if b.milli_tokens >= 1000 {
            b.milli_tokens -= 1000;
            true
        } else {
            false
        }
    }

    /// Whether [`take`](Self::take) for `ip` at `now` would succeed, without
    /// taking anything (for the `100 Continue` decision, http.md §2.2: the
    /// request takes its token when it runs).
    pub fn would_allow(&self, ip: IpAddr, now: u64) -> bool {
        if self.rate == 0 {
            return true;
        }
        let Some(b) = self.buckets.get(&ip) else {
            // A new bucket starts full (and holds at least one token).
            return self.burst > 0;
        };
        let refill = now.saturating_sub(b.last).saturating_mul(self.rate);
        let cap = self.burst.saturating_mul(1000);
        b.milli_tokens.saturating_add(refill).min(cap) >= 1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    #[test]
    fn off_when_rate_is_zero() {
        let mut r = RateLimiter::new(0, 0);
        assert!((0..10_000).all(|_| r.take(A, 0)));
    }

    #[test]
    fn burst_then_refill_at_the_rate_per_ip() {
        let mut r = RateLimiter::new(2, 3);
        assert!(r.take(A, 0) && r.take(A, 0) && r.take(A, 0));
        assert!(!r.take(A, 0), "burst of 3 used up");
        assert!(r.take(B, 0), "another IP has its own bucket");
        assert!(!r.take(A, 499), "half a token after 499 ms at 2/s");
        assert!(r.take(A, 500), "one token after 500 ms");
        assert!(!r.take(A, 500));
        // Never more than the burst, however long the pause.
        let n = (0..10).filter(|_| r.take(A, 100_000)).count();
        assert_eq!(n, 3);
    }

    #[test]
    fn would_allow_predicts_take_without_taking() {
        let mut r = RateLimiter::new(2, 2);
        assert!(r.would_allow(A, 0));
        assert!(r.take(A, 0) && r.would_allow(A, 0) && r.would_allow(A, 0));
        assert!(r.take(A, 0));
        assert!(!r.would_allow(A, 0) && !r.take(A, 0));
        assert!(r.would_allow(A, 500) && r.take(A, 500));
        assert!(RateLimiter::new(0, 0).would_allow(B, 0));
    }

    #[test]
    fn idle_buckets_are_forgotten() {
        let mut r = RateLimiter::new(1, 1);
        assert!(r.take(A, 0));
        assert!(r.take(B, 60_000));
        assert_eq!(r.buckets.len(), 1, "A idle for a minute was dropped");
    }
}
