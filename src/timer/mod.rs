//! Time: the loop's monotonic clock and the payloads of wheel timers.
//!
//! Everything downstream takes time as `u64` milliseconds since the server
//! started, read once per loop iteration, so the pure modules never see a clock.

pub mod wheel;

use crate::owner::OwnerId;
use std::time::Instant;

/// Monotonic milliseconds since start, read once per loop iteration.
#[derive(Debug)]
pub struct Clock {
    start: Instant,
    now_ms: u64,
}

impl Clock {
    pub fn new() -> Self {
        Clock {
            start: Instant::now(),
            now_ms: 0,
        }
    }

    /// Re-read the OS clock. The value is floored to whole milliseconds.
    pub fn update(&mut self) -> u64 {
        self.now_ms = self.start.elapsed().as_millis() as u64;
        self.now_ms
    }

    pub fn now(&self) -> u64 {
        self.now_ms
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// A deadline `dur_ms` after `now`, rounded up by one millisecond.
///
/// `now` is floored, so the true time may be up to 1 ms later than `now`;
/// adding 1 guarantees the action never happens before the full duration has
/// passed (protocol.md §2.9: never early).
pub fn deadline_after(now: u64, dur_ms: u64) -> u64 {
    now.saturating_add(dur_ms).saturating_add(1)
}

/// What a wheel timer means when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// A holder's lease ends. `fence` identifies the holder (fences are unique).
    Lease { res: u32, fence: u64 },
    /// 80% of a lease period has passed: time for its `lease expiring`
    /// notice (protocol.md §8.15), if the holder `fence` still wants it.
    LeaseNotice { res: u32, fence: u64 },
    /// The timeout of the connection's parked command.
    Park { conn: OwnerId },
    /// A KV entry's TTL passed (index into the KV slab).
    KvExpire { idx: u32 },
    /// Periodic idle garbage collection (protocol.md §7.5).
    Gc,
    /// Retry reserving a fence block after a persistence failure (§6.2).
    FenceRetry,
    /// Idle/request timeout check of a connection (§2.8).
    Idle { conn: OwnerId },
    /// Write-progress check of a connection (§2.7).
    Write { conn: OwnerId },
    /// The delayed `error_auth` answer (§4.3).
    AuthFail { conn: OwnerId },
    /// The drain deadline (`--shutdown-timeout`).
    Shutdown,
    /// An SSE stream's `:ping` check (http.md §7).
    SsePing { conn: OwnerId },
    /// Look for idle HTTP sessions (http.md §5).
    SessionSweep,
    /// A TLS connection's handshake deadline (protocol.md §4.1: 10 s).
    Handshake { conn: OwnerId },
    /// Time to send `WATCHDOG=1` to the service manager (config.md §8.1).
    Watchdog,
}
