//! Returning freed heap memory to the kernel after a burst.
//!
//! glibc's malloc keeps freed chunks in the middle of its heap resident: only
//! the top of the heap is trimmed automatically. After a storm of connections
//! or leases ends, the tables shrink (`Server::shrink_tables`, `Wheel::shrink`,
//! the lock table's `shrink_if_sparse` on the GC pass), but their old pages
//! would stay in RSS until reused.
//! `malloc_trim` hands whole free pages back with `MADV_DONTNEED`. It walks
//! the free lists, so it is called only after a shrink, never per request.

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
