//! The default of `--max-memory` (config.md §3.3): the smaller of 1 GiB and a
//! quarter of the memory available to the process — the cgroup v2 limit
//! (`memory.max`: systemd's `MemoryMax=`, a container's limit) when one is
//! set on the process's cgroup or an ancestor, else `MemTotal`. Hosts still
//! on cgroup v1 have the same limit as `memory.limit_in_bytes`, read the
//! same way (its "unlimited" is a huge number, which `MemTotal` caps).
//!
//! Reading only, from a root directory the caller names (`/` in production, a
//! fake tree in tests), so the derivation is testable without a cgroup.
//! A limit above `MemTotal` is not memory the host has, so the smaller of the
//! two counts. Where neither can be read (not Linux, `/proc` not mounted) the
//! default is the 1 GiB cap.

use std::path::{Path, PathBuf};

/// The cap of the default budget (1 GiB).
pub const MAX_MEMORY_CAP: u64 = 1 << 30;

/// The default budget for `available` bytes of memory (None: unknown).
pub fn default_max_memory(available: Option<u64>) -> u64 {
    available.map_or(MAX_MEMORY_CAP, |a| (a / 4).min(MAX_MEMORY_CAP))
}

/// Memory available to this process under `root`: the tightest cgroup v2
/// `memory.max` on the path from its cgroup to the hierarchy's root, capped
/// by `MemTotal`.
pub fn available_memory(root: &Path) -> Option<u64> {
    let total = mem_total(root);
    match (cgroup_limit(root), total) {
        (Some(limit), Some(total)) => Some(limit.min(total)),
        (limit, total) => limit.or(total),
    }
}

/// A small file's content (these are kernel files of a few bytes to a few KiB).
fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// `MemTotal` from `/proc/meminfo`, in bytes.
fn mem_total(root: &Path) -> Option<u64> {
    let info = read(&root.join("proc/meminfo"))?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line
        .trim_start_matches("MemTotal:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

/// The tightest memory limit of the process's cgroup: cgroup v2's
/// `memory.max`, else (on a host still on cgroup v1) the memory controller's
/// `memory.limit_in_bytes`.
fn cgroup_limit(root: &Path) -> Option<u64> {
    let membership = read(&root.join("proc/self/cgroup"))?;
    let mut v1 = None;
    for line in membership.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if controllers.is_empty() {
            // cgroup v2: the single line `0::<path>`.
            if let Some(limit) = tightest(&root.join("sys/fs/cgroup"), path, "memory.max") {
                return Some(limit);
            }
        } else if controllers.split(',').any(|c| c == "memory") {
            let mount = root.join("sys/fs/cgroup/memory");
            v1 = tightest(&mount, path, "memory.limit_in_bytes");
        }
    }
    v1
}

/// The smallest limit in `file` from `mount`/`path` up to `mount` (a parent's
/// limit binds its children). A missing file or `max` means none there.
fn tightest(mount: &Path, path: &str, file: &str) -> Option<u64> {
    let rel = path.trim().trim_start_matches('/');
    // Outside our cgroup namespace the path climbs with `..`: what we can
    // see of the hierarchy is then the namespace's root, the mount itself.
    let rel = if rel.split('/').any(|c| c == "..") {
        ""
    } else {
        rel
    };
    let mut dir: PathBuf = mount.join(rel);
    let mut found: Option<u64> = None;
    loop {
        if let Some(limit) = read(&dir.join(file)).and_then(|t| t.trim().parse().ok()) {
            found = Some(found.map_or(limit, |f: u64| f.min(limit)));
        }
        if dir == mount || !dir.pop() || !dir.starts_with(mount) {
            break;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fake `/` with the given files, removed on drop.
    struct FakeRoot(PathBuf);

    impl FakeRoot {
        fn new(files: &[(&str, &str)]) -> FakeRoot {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "dflockd-host-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            for (path, content) in files {
                let p = dir.join(path);
                std::fs::create_dir_all(p.parent().expect("files have a directory"))
                    .expect("create fake root");
                std::fs::write(&p, content).expect("write fake file");
            }
            std::fs::create_dir_all(&dir).expect("create fake root");
            FakeRoot(dir)
        }
    }

    impl Drop for FakeRoot {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const MEMINFO_16G: &str = "MemTotal:       16384000 kB\nMemFree:         1000 kB\n";

    #[test]
    fn a_256_mib_cgroup_limit_gives_64_mib() {
        // What `systemd-run --scope -p MemoryMax=256M` sets up.
        let root = FakeRoot::new(&[
            ("proc/self/cgroup", "0::/system.slice/run-u42.scope\n"),
            ("proc/meminfo", MEMINFO_16G),
            (
                "sys/fs/cgroup/system.slice/run-u42.scope/memory.max",
                "268435456\n",
            ),
            ("sys/fs/cgroup/system.slice/memory.max", "max\n"),
        ]);
        let available = available_memory(&root.0);
        assert_eq!(available, Some(256 << 20));
        assert_eq!(default_max_memory(available), 64 << 20);
    }

    #[test]
    fn a_parent_limit_binds_and_max_means_none() {
        let root = FakeRoot::new(&[
            ("proc/self/cgroup", "0::/a/b\n"),
            ("proc/meminfo", MEMINFO_16G),
            ("sys/fs/cgroup/a/b/memory.max", "max\n"),
            ("sys/fs/cgroup/a/memory.max", "1073741824\n"),
        ]);
        assert_eq!(available_memory(&root.0), Some(1 << 30));
        assert_eq!(default_max_memory(available_memory(&root.0)), 256 << 20);
    }

    #[test]
    fn without_a_limit_mem_total_counts_and_1_gib_caps() {
        let root = FakeRoot::new(&[
            ("proc/self/cgroup", "0::/user.slice\n"),
            ("proc/meminfo", MEMINFO_16G),
            ("sys/fs/cgroup/user.slice/memory.max", "max\n"),
        ]);
        assert_eq!(available_memory(&root.0), Some(16_384_000 * 1024));
        assert_eq!(default_max_memory(available_memory(&root.0)), 1 << 30);
        // A small host: a quarter of its memory.
        let small = FakeRoot::new(&[("proc/meminfo", "MemTotal: 1024000 kB\n")]);
        assert_eq!(
            default_max_memory(available_memory(&small.0)),
            1024000 * 1024 / 4
        );
    }

    #[test]
    fn a_limit_above_the_host_is_not_memory() {
        let root = FakeRoot::new(&[
            ("proc/self/cgroup", "0::/\n"),
            ("proc/meminfo", "MemTotal: 2048000 kB\n"),
            ("sys/fs/cgroup/memory.max", "1099511627776\n"),
        ]);
        assert_eq!(available_memory(&root.0), Some(2_048_000 * 1024));
    }

    #[test]
    fn cgroup_v1_limit_in_bytes_counts_too() {
        let root = FakeRoot::new(&[
            (
                "proc/self/cgroup",
                "5:cpu,cpuacct:/x\n4:memory:/docker/abc\n0::/\n",
            ),
            ("proc/meminfo", MEMINFO_16G),
            (
                "sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes",
                "536870912\n",
            ),
            (
                "sys/fs/cgroup/memory/memory.limit_in_bytes",
                "9223372036854771712\n",
            ),
        ]);
        assert_eq!(default_max_memory(available_memory(&root.0)), 128 << 20);
        // Seen from inside the container: its path is not under the mount,
        // the mount's own file is the container's limit.
        let inside = FakeRoot::new(&[
            ("proc/self/cgroup", "4:memory:/docker/abc\n"),
            ("proc/meminfo", MEMINFO_16G),
            ("sys/fs/cgroup/memory/memory.limit_in_bytes", "268435456\n"),
        ]);
        assert_eq!(default_max_memory(available_memory(&inside.0)), 64 << 20);
    }

    #[test]
    fn nothing_readable_gives_the_cap() {
        let root = FakeRoot::new(&[]);
        assert_eq!(available_memory(&root.0), None);
        assert_eq!(default_max_memory(None), MAX_MEMORY_CAP);
    }
}
