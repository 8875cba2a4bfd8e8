//! Lease notices on a guard (protocol.md §8.15): "your lock is about to
//! expire" and "your lock was lost", as a channel and through the guard's
//! loss callbacks.
//!
//! A lock acquired with [`Lock::lease_notices`](super::Lock::lease_notices)
//! sends `opt lease_notices on` on its connection before the acquire, so the
//! server arms the notice of the very first lease period. The guard then runs
//! a small watcher thread that, every [`POLL`], takes the shared connection
//! for as long as it takes to read the frames already waiting (it never
//! blocks the renewal thread on an idle socket), and forwards this grant's
//! notices to the guard's channel. An `expired` notice also marks the grant
//! lost ([`LostReason::Expired`]), which runs the `on_lost` callbacks at
//! once instead of at the next renewal.

use super::error::Result;
use super::lost::LostReason;
use super::renew::{Periodic, RenewTarget, lock_conn};
use super::reply::{LeaseNotice, LeaseNoticeKind, Push};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

/// How often the watcher looks for notices: well inside the 20% of a lease
/// that an `expiring` notice leaves, even for a 1 s lease.
pub(crate) const POLL: Duration = Duration::from_millis(50);

/// Starts watching `target`'s connection for notices about `fence`; returns
/// the watcher thread (stopping or dropping it joins it) and the channel the
/// notices arrive on.
pub(crate) fn spawn_watcher(
    target: Arc<RenewTarget>,
    fence: u64,
) -> Result<(Periodic, Receiver<LeaseNotice>)> {
    let (tx, rx) = mpsc::channel();
    let name = format!("dflockd-notices {}", target.key);
    let watcher = Periodic::spawn(name, POLL, move || {
        let Ok(pushes) = lock_conn(&target.conn).poll_pushes() else {
            // Broken connection: the renewal thread reports it.
            return false;
        };
        for p in pushes {
            let Push::Lease(n) = p else { continue };
            if n.fence != fence {
                continue;
            }
            let expired = n.kind == LeaseNoticeKind::Expired;
            if expired {
                // Lost first, so a receiver of `Expired` sees it.
                target.lost.mark(LostReason::Expired);
            }
            tx.send(n).ok();
            if expired {
                return false;
            }
        }
        true
    })?;
    Ok((watcher, rx))
}
