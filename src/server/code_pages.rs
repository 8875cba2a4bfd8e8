//! Letting go of the start-up code's pages, once, before the loop starts.
//!
//! Where an idle server's RSS goes (issue 11, `benches/tls.sh`, default glibc
//! build): its own memory (`RssAnon`) is about 240 kB with or without TLS.
//! The other ~3.6 MB are clean file pages: the binary's text and libc's,
//! faulted in by start-up work that never runs again — clap, the config
//! checks, PEM parsing, checking the key against the certificate (ring's
//! P-256 code and tables) — in 64 KiB fault-around windows, so 85% of the
//! binary's text ends up mapped.
//!
//! Unmapping them (`MADV_DONTNEED` on the executable mappings) drops them from
//! the process; the page cache keeps them, and what the loop runs faults back
//! in on first use (minor faults, no I/O). The kernel does exactly this to
//! clean file pages whenever memory is short; this only does it early.

/// One executable mapping of a file, from `/proc/self/smaps`.
#[derive(Debug, PartialEq, Eq)]
struct CodeMapping {
    start: usize,
    len: usize,
    /// Pages of the mapping that are private copies (written to): if any,
    /// dropping them would lose the writes, so the mapping is left alone.
    anonymous_kb: u64,
}

/// The private executable file mappings in `smaps` text.
fn code_mappings(smaps: &str) -> Vec<CodeMapping> {
    let mut out: Vec<CodeMapping> = Vec::new();
    let mut current: Option<CodeMapping> = None;
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or_default();
        if let Some((from, to)) = first.split_once('-') {
            let (Ok(from), Ok(to)) = (
                usize::from_str_radix(from, 16),
                usize::from_str_radix(to, 16),
            ) else {
                continue;
            };
            out.extend(current.take());
            let perms = words.next().unwrap_or_default();
            // A file path (not [vdso], [heap], anonymous memory), private, r-x.
            let path = words.nth(3).unwrap_or_default();
            if perms == "r-xp" && path.starts_with('/') && to > from {
                current = Some(CodeMapping {
                    start: from,
                    len: to - from,
                    anonymous_kb: u64::MAX, // unknown until its Anonymous: line
                });
            }
        } else if first == "Anonymous:" {
            if let Some(m) = current.as_mut() {
                m.anonymous_kb = words
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(u64::MAX);
            }
        }
    }
    out.extend(current);
    out.retain(|m| m.anonymous_kb == 0);
    out
}

/// Drop the resident pages of every unmodified executable file mapping
/// (the binary's, libc's, ld.so's). Returns the mappings dropped.
pub fn release_startup_code() -> usize {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return 0;
    };
    let mut dropped = 0;
    for m in code_mappings(&smaps) {
        // SAFETY: [start, start + len) is a whole mapping of this process, as
        // the kernel listed it a moment ago, and it is still that mapping:
        // only an unmap could change it, and dflockd never unmaps code (no
        // dlclose; the server has one thread). It is a private, read-only, executable file mapping
        // with no anonymous (copied-on-write) page, so every resident page is
        // identical to the file's, and MADV_DONTNEED only unmaps them: the
        // next access faults the same bytes back in from the page cache, as
        // after the kernel's own reclaim. No Rust object lives in code pages.
        let rc = unsafe { libc::madvise(m.start as *mut libc::c_void, m.len, libc::MADV_DONTNEED) };
        if rc == 0 {
            dropped += 1;
        }
    }
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unmodified_private_executable_file_mappings() {
        let smaps = "\
55d0c0000000-55d0c0010000 r--p 00000000 08:01 42 /usr/bin/dflockd
Rss:                  64 kB
Anonymous:             0 kB
55d0c0010000-55d0c0200000 r-xp 00010000 08:01 42 /usr/bin/dflockd
Rss:                1800 kB
Anonymous:             0 kB
55d0c0200000-55d0c0210000 rw-p 00200000 08:01 42 /usr/bin/dflockd
Anonymous:             8 kB
7f0000000000-7f0000100000 r-xp 00028000 08:01 7 /usr/lib/libc.so.6
Anonymous:             4 kB
7f0000200000-7f0000300000 r-xp 00000000 08:01 8 /usr/lib/ld.so
Anonymous:             0 kB
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0 [vdso]
Anonymous:             0 kB
";
        assert_eq!(
            code_mappings(smaps),
            [
                CodeMapping {
                    start: 0x55d0c0010000,
                    len: 0x1f0000,
                    anonymous_kb: 0
                },
                CodeMapping {
                    start: 0x7f0000200000,
                    len: 0x100000,
                    anonymous_kb: 0
                },
            ]
        );
    }

    #[test]
    fn dropping_code_pages_keeps_the_process_running() {
        // Whatever it drops, this test's own code must fault back in.
        let dropped = release_startup_code();
        assert!(dropped >= 1);
        assert_eq!(std::hint::black_box(6) * 7, 42);
    }
}
