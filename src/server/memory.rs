//! Connection memory: the budget's view of connection and SSE buffers, and
//! returning freed heap memory to the kernel after a burst.
//!
//! Buffers (protocol.md §7.4a): each connection's input and output buffers
//! are charged to the state's budget by capacity. [`Server::account_buffers`]
//! runs after every read-and-serve and every flush — the points where a
//! buffer grows or is given back — and settles the change since its last
//! call, kept per slot; closing a connection credits what it was charged.
//!
//! glibc's malloc keeps freed chunks in the middle of its heap resident: only
//! the top of the heap is trimmed automatically. After a storm of connections
//! or leases ends, the tables shrink (`Server::shrink_tables`, `Wheel::shrink`,
//! the lock table's `shrink_if_sparse` on the GC pass), but their old pages
//! would stay in RSS until reused.
//! `malloc_trim` hands whole free pages back with `MADV_DONTNEED`. It walks
//! the free lists, so it is called only after a shrink, never per request.

use super::Server;
use crate::owner::OwnerId;
use crate::state::memory::heap;

impl Server {
    /// Charge or credit the change of `id`'s buffer allocations since the
    /// last call: O(1), two capacity reads and a subtraction.
    pub(super) fn account_buffers(&mut self, id: OwnerId) {
        let slot = id.slot as usize;
        let Some(c) = super::live(&mut self.conns, id) else {
            return;
        };
        let now = heap(c.inbuf.capacity()) + heap(c.outbuf.capacity());
        if self.buffer_bytes.len() <= slot {
            self.buffer_bytes.resize(slot + 1, 0);
        }
        let before = std::mem::replace(&mut self.buffer_bytes[slot], now);
        self.state.mem.settle(before, now);
    }

    /// Credit what the closing connection in `slot` was charged for buffers.
    pub(super) fn forget_buffers(&mut self, slot: usize) {
        if let Some(b) = self.buffer_bytes.get_mut(slot) {
            let before = std::mem::take(b);
            self.state.mem.credit(before);
        }
    }
}

/// Give free heap pages back to the kernel (glibc only; a no-op elsewhere).
pub fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes a plain integer (the bytes to leave untrimmed
    // at the heap top), touches only the allocator's own state under its own
    // locks, and is safe to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// CLOCK_MONOTONIC in microseconds (what systemd's `MONOTONIC_USEC` means).
/// `std::time::Instant` does not expose its raw value, hence libc.
pub fn monotonic_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec that outlives the call, and
    // CLOCK_MONOTONIC is always supported on Linux; clock_gettime writes only
    // into `ts`. On failure `ts` stays zeroed and 0 is returned.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000)
        .saturating_add(ts.tv_nsec as u64 / 1000)
}

#[cfg(test)]
mod monotonic_tests {
    #[test]
    fn monotonic_clock_moves_forward_and_is_not_the_wall_clock() {
        let a = super::monotonic_us();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = super::monotonic_us();
        assert!(b >= a + 2000, "{a} -> {b}");
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        // Boot-relative, so far below microseconds since 1970.
        assert!(b < wall / 2, "{b} vs {wall}");
    }
}
