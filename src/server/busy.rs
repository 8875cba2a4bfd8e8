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
//! Invariants:
//! - The window opens only after an iteration that saw events, so an idle
//!   server never spins: its CPU stays 0 (timer wake-ups with no events do
//!   not open it either).
//! - A spin lasts at most the window after the last event; under steady
//!   traffic it costs one non-blocking `epoll_wait` per empty poll.
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

    #[test]
    fn idle_never_spins() {
        let mut b = BusyPoll::new(50);
        assert!(!b.spin(Duration::from_millis(1000)));
    }

    #[test]
    fn spins_after_traffic_then_stops() {
        let mut b = BusyPoll::new(2_000);
        b.saw_traffic();
        assert!(b.spin(Duration::from_millis(5)));
        // A zero timeout already polls without blocking: no spin needed.
        assert!(!b.spin(Duration::ZERO));
        std::thread::sleep(Duration::from_millis(3));
        assert!(!b.spin(Duration::from_millis(5)));
        assert!(b.until.is_none(), "the window closes once passed");
        assert!(!b.spin(Duration::from_millis(5)));
    }

    #[test]
    fn zero_window_is_off() {
        let mut b = BusyPoll::new(0);
        b.saw_traffic();
        assert!(!b.spin(Duration::from_millis(5)));
    }
}
