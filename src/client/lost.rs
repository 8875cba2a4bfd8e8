//! Loss of a grant: a flag the renewal thread sets and the holder reads, waits on, or
//! gets called back through.
//!
//! The first reason recorded wins. Callbacks run once, on the thread that records
//! the loss (the renewal thread, or the caller of `Guard::renew`), outside the lock.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Why a grant is no longer held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LostReason {
    /// A renewal was answered `error_lease_expired`: the lease ran out first.
    Expired,
    /// A renewal was answered `error`: the token is not held any more (released from
    /// another connection, or forgotten by the server).
    NotHeld,
    /// The holding connection failed; the server releases its grants on disconnect
    /// (with the default `--auto-release-on-disconnect`).
    Connection(String),
}

impl fmt::Display for LostReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LostReason::Expired => f.write_str("lease expired"),
            LostReason::NotHeld => f.write_str("token no longer held"),
            LostReason::Connection(e) => write!(f, "connection failed: {e}"),
        }
    }
}

type Callback = Box<dyn FnOnce(&LostReason) + Send>;

#[derive(Default)]
struct State {
    reason: Option<LostReason>,
    callbacks: Vec<Callback>,
}

#[derive(Default)]
struct Inner {
    state: Mutex<State>,
    changed: Condvar,
}

/// A clonable view of a guard's loss flag; usable from any thread.
#[derive(Clone, Default)]
pub struct LostHandle {
    inner: Arc<Inner>,
}

impl fmt::Debug for LostHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LostHandle")
            .field("reason", &self.reason())
            .finish()
    }
}

impl LostHandle {
    pub(crate) fn new() -> Self {
        LostHandle::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking callback cannot leave the state half-written: recover it.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// True once the grant is known to be lost.
    pub fn is_lost(&self) -> bool {
        self.lock().reason.is_some()
    }

    /// Why the grant was lost, if it was.
    pub fn reason(&self) -> Option<LostReason> {
        self.lock().reason.clone()
    }

    /// Blocks until the grant is lost or `timeout` passes; true if lost.
    pub fn wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        while state.reason.is_none() {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = match self.inner.changed.wait_timeout(state, deadline - now) {
                Ok((s, _)) => s,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        true
    }

    /// Records the loss (the first reason wins) and runs the callbacks.
    pub(crate) fn mark(&self, reason: LostReason) {
        let callbacks = {
            let mut state = self.lock();
            if state.reason.is_some() {
                return;
            }
            state.reason = Some(reason.clone());
            std::mem::take(&mut state.callbacks)
        };
        self.inner.changed.notify_all();
        for cb in callbacks {
            cb(&reason);
        }
    }

    /// Calls `f` once when the grant is lost — at once if it already is.
    pub(crate) fn on_lost(&self, f: Callback) {
        let reason = {
            let mut state = self.lock();
            match &state.reason {
                Some(r) => r.clone(),
                None => {
                    state.callbacks.push(f);
                    return;
                }
            }
        };
        f(&reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn first_reason_wins_and_callbacks_run_once() {
        let h = LostHandle::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        h.on_lost(Box::new(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
        }));
        assert!(!h.wait(Duration::from_millis(10)));
        h.mark(LostReason::Expired);
        h.mark(LostReason::NotHeld);
        assert_eq!(h.reason(), Some(LostReason::Expired));
        assert!(h.wait(Duration::ZERO));
        let c = calls.clone();
        h.on_lost(Box::new(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
        }));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
