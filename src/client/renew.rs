//! Background lease renewal for one grant.
//!
//! The thread sleeps on a channel: a message or a dropped sender wakes it at once, so
//! stopping never waits out an interval. It renews on the grant's own connection
//! (shared through a mutex with the guard, see the module docs of `client`): that
//! traffic is also what keeps the holding connection clear of the idle timeout.
//! The first failed renewal marks the grant lost and ends the thread.

use super::HEARTBEAT;
use super::conn::Conn;
use super::error::{Error, Result};
use super::lost::{LostHandle, LostReason};
use super::reply::{expect_ok, parse_field};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Shortest renewal interval (a 1 s lease with a tiny ratio must not spin).
const MIN_INTERVAL: Duration = Duration::from_millis(50);

/// The connection a guard and its renewal thread share.
pub(crate) type SharedConn = Arc<Mutex<Conn>>;

/// Locks the shared connection; a panic elsewhere cannot leave a `Conn` in a state
/// worse than "broken", which it tracks itself, so poisoning is ignored.
pub(crate) fn lock_conn(conn: &SharedConn) -> MutexGuard<'_, Conn> {
    conn.lock().unwrap_or_else(|p| p.into_inner())
}

/// Everything one renewal needs.
pub(crate) struct RenewTarget {
    pub conn: SharedConn,
    pub cmd: &'static str,
    pub key: String,
    pub token: String,
    /// The lease in seconds; renewals ask for the same lease and store the reply's.
    pub lease_s: Arc<AtomicU64>,
    pub lost: LostHandle,
}

impl RenewTarget {
    /// Sends one renewal with `lease_s` (or the current lease). On success stores and
    /// returns the new lease; on failure marks the grant lost where the failure means
    /// the grant is gone, and returns the error.
    pub fn renew(&self, lease_s: Option<u64>) -> Result<u64> {
        let lease = lease_s.unwrap_or_else(|| self.lease_s.load(Ordering::SeqCst));
        let arg = format!("{} {lease}", self.token);
        let result = lock_conn(&self.conn).request(self.cmd, &self.key, &arg);
        let outcome = result.and_then(|line| {
            let rest = expect_ok(&line)?;
            parse_field::<u64>(rest.split(' ').next(), &line)
        });
        match &outcome {
            Ok(new_lease) => self.lease_s.store(*new_lease, Ordering::SeqCst),
            Err(Error::LeaseExpired) => self.lost.mark(LostReason::Expired),
            Err(Error::Rejected) => self.lost.mark(LostReason::NotHeld),
            Err(e) if e.is_connection_error() => {
                self.lost.mark(LostReason::Connection(e.to_string()))
            }
            Err(_) => {}
        }
        outcome
    }
}

/// How often to renew a lease of `lease_s` seconds; `None` when renewal is off.
pub(crate) fn interval(lease_s: u64, ratio: f64) -> Option<Duration> {
    if ratio <= 0.0 {
        return None;
    }
    let secs = lease_s as f64 * ratio;
    let d = Duration::try_from_secs_f64(secs).unwrap_or(HEARTBEAT);
    Some(d.clamp(MIN_INTERVAL, HEARTBEAT))
}

/// A named background thread that runs `tick` every `every` until it is
/// stopped or `tick` returns false: the renewal thread, and the lease-notice
/// watcher of `lease_events`. It sleeps on a channel, so stopping never waits
/// out an interval; stopping (or dropping) joins it, waiting for at most one
/// tick in flight.
pub(crate) struct Periodic {
    stop: Option<mpsc::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl Periodic {
    pub fn spawn(
        name: String,
        every: Duration,
        mut tick: impl FnMut() -> bool + Send + 'static,
    ) -> Result<Periodic> {
        let (stop, stopped) = mpsc::channel::<()>();
        let handle = thread::Builder::new().name(name).spawn(move || {
            loop {
                match stopped.recv_timeout(every) {
                    Err(RecvTimeoutError::Timeout) => {}
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                }
                if !tick() {
                    return;
                }
            }
        })?;
        Ok(Periodic {
            stop: Some(stop),
            handle: Some(handle),
        })
    }

    /// Stops the thread and waits for it.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The thread may already have ended; then there is nobody to tell.
            stop.send(()).ok();
        }
        if let Some(handle) = self.handle.take() {
            // A panic in the thread has already been reported by the panic
            // hook; the guard carries on with its release.
            handle.join().ok();
        }
    }
}

impl Drop for Periodic {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts renewing `target` every `every`.
pub(crate) fn spawn_renewer(target: Arc<RenewTarget>, every: Duration) -> Result<Periodic> {
    Periodic::spawn(format!("dflockd-renew {}", target.key), every, move || {
        // A failed renewal either lost the grant or broke the connection;
        // either way nothing more can be renewed.
        target.renew(None).is_ok() && !target.lost.is_lost()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(interval(10, 0.0), None);
        assert_eq!(interval(10, 0.5), Some(Duration::from_secs(5)));
        assert_eq!(interval(1, 0.5), Some(Duration::from_millis(500)));
        assert_eq!(interval(1, 0.001), Some(MIN_INTERVAL));
        assert_eq!(interval(600, 0.5), Some(HEARTBEAT));
        assert_eq!(interval(u64::MAX, 0.9), Some(HEARTBEAT));
    }
}
