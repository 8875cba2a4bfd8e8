//! Adaptive busy-polling: after a loop iteration that saw traffic, the next
//! polls do not block until a short window (`--busy-poll-us`) has passed
//! without new events; then the loop sleeps in `epoll_wait` as before.
//!
//! Why: a FIFO hand-off on a hot key is a chain — grant → client → release
//! → next grant — and every link used to send the loop to sleep in
//! `epoll_wait` and wake it again. On a VM a halted vCPU takes tens of µs to
//! wake, and that wake-up sat on the chain's critical path. Polling through
//! the client's round trip keeps the vCPU awake, as Go's scheduler does by
//! spinning briefly before it parks a thread.
//!
//! Between two empty polls the loop yields the CPU (`sched_yield`), so a
//! client thread woken onto this CPU runs at once instead of waiting for
//! the window to end. Spinning without yielding measured 0.43× the previous
//! binary's unique-key pairs/s on a 2-vCPU host kept busy by other builds;
//! yielding takes most of that loss away, but a host saturated by other
//! work is still better off with 0 (README, Operating).
//!
//! Invariants:
//! - The window opens only after an iteration that saw events, so an idle
//!   server never spins: its CPU stays 0 (timer wake-ups with no events do
//!   not open it either).
//! - A spin lasts at most the window after the last event.
//! - A window of 0 turns it off: the loop behaves exactly as before.

use std::time::{Duration, Instant};

pub(super) struct BusyPoll {
    window: Duration,
    /// End of the current window; `None` when closed.
    until: Option<Instant>,
}

impl BusyPoll {
    pub(super) fn new(window_us: u64) -> BusyPoll {
        BusyPoll {
            window: Duration::from_micros(window_us),
            until: None,
        }
    }

    /// Whether the next poll, which would otherwise wait `timeout`, should
    /// return at once instead. Closes the window once it has passed.
    pub(super) fn spin(&mut self, timeout: Duration) -> bool {
        let Some(until) = self.until else {
            return false;
        };
        if timeout.is_zero() {
            return false;
        }
        if Instant::now() < until {
            return true;
        }
        self.until = None;
        false
    }

    /// Between two empty polls: let anything else runnable on this CPU go
    /// first (a client thread woken here, or other work on the host).
    pub(super) fn yield_cpu(&mut self) {
        std::thread::yield_now();
    }

    /// The iteration saw events: keep polling for one window from now.
    pub(super) fn saw_traffic(&mut self) {
        if !self.window.is_zero() {
            self.until = Some(Instant::now() + self.window);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_millis(5);

    #[test]
    fn idle_never_spins() {
        let mut b = BusyPoll::new(50);
        assert!(!b.spin(Duration::from_millis(1000)));
    }

    #[test]
    fn spins_after_traffic_then_stops() {
        let mut b = BusyPoll::new(2_000);
        b.saw_traffic();
        assert!(b.spin(LONG));
        // A zero timeout already polls without blocking: no spin needed.
        assert!(!b.spin(Duration::ZERO));
        std::thread::sleep(Duration::from_millis(3));
        assert!(!b.spin(LONG));
        assert!(b.until.is_none(), "the window closes once passed");
        assert!(!b.spin(LONG));
    }

    #[test]
    fn zero_window_is_off() {
        let mut b = BusyPoll::new(0);
        b.saw_traffic();
        assert!(!b.spin(LONG));
    }
}
