//! Storms and faults against the real server (issue 13 §4), short seeded
//! versions for CI; `benches/reliability.sh` runs them at full size through
//! the `#[ignore]`d variants:
//! - kill storm: holders of distinct keys die at random (SIGKILL of a
//!   `dflockctl lock` process, connection reset, or close) with a waiter
//!   parked on every key: every waiter is granted, nothing is left stuck, and
//!   the hand-off after a holder's death is fast;
//! - disconnect storm: rounds of connections that subscribe, watch, observe
//!   and park, then vanish: `stats` shows nothing left and the server's RSS
//!   returns to its level after round 1;
//! - fence durability: the server is SIGKILLed during continuous grants and
//!   restarted with `--fence-state-file`: no fence repeats or goes back; a
//!   corrupt, emptied or unwritable state file stops the start with a
//!   message naming it and the documented exit status.

use crate::common;

use common::{
    Client, Json, Server, TempDir, fence_of, reset_stream, run_server_cmd, token_of, wait_until,
};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Deterministic xorshift64 for the storms' random choices.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x % n
    }
}

fn full_size() -> bool {
    std::env::var("DFLOCKD_STORM_FULL").is_ok_and(|v| v == "1")
}

/// Resident set size of `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).unwrap();
    s
}

/// Reads the first line from each of `socks` as it arrives (poll(2) over all
/// of them in one thread); returns (arrival, line) per socket, `None` for
/// sockets that gave nothing before `deadline`.
fn first_lines(socks: &[TcpStream], deadline: Instant) -> Vec<Option<(Instant, String)>> {
    for s in socks {
        s.set_nonblocking(true).unwrap();
    }
    let mut bufs: Vec<Vec<u8>> = vec![Vec::new(); socks.len()];
    let mut got: Vec<Option<(Instant, String)>> = vec![None; socks.len()];
    let mut left = socks.len();
    while left > 0 && Instant::now() < deadline {
        let mut fds: Vec<libc::pollfd> = Vec::new();
        let mut idx = Vec::new();
        for (i, s) in socks.iter().enumerate() {
            if got[i].is_none() {
                fds.push(libc::pollfd {
                    fd: s.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
                idx.push(i);
            }
        }
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 50) };
        assert!(n >= 0, "poll: {}", std::io::Error::last_os_error());
        let now = Instant::now();
        for (f, &i) in fds.iter().zip(&idx) {
            if f.revents == 0 {
                continue;
            }
            let mut buf = [0u8; 512];
            match (&socks[i]).read(&mut buf) {
                Ok(0) => {
                    got[i] = Some((now, "<closed>".into()));
                    left -= 1;
                }
                Ok(k) => {
                    bufs[i].extend_from_slice(&buf[..k]);
                    if let Some(p) = bufs[i].iter().position(|&b| b == b'\n') {
                        let line = String::from_utf8_lossy(&bufs[i][..p]).into_owned();
                        got[i] = Some((now, line));
                        left -= 1;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => {
                    got[i] = Some((now, format!("<{e}>")));
                    left -= 1;
                }
            }
        }
    }
    got
}

/// Keys of `array` in `stats` that are still in use.
fn in_use(st: &Json, array: &str) -> Vec<String> {
    st.get(array)
        .arr()
        .iter()
        .map(|e| e.get("key").str().to_string())
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// A holder that can die: a `dflockctl lock` process (in its own process
/// group, so SIGKILL to the group takes its command too) or a connection.
enum Holder {
    Process(std::process::Child),
    Socket(TcpStream),
}

// ------------------------------------------------------------------ kill storm

fn kill_storm(n: usize, processes: usize, seed: u64) {
    let max_locks = (2 * n + 16).to_string();
    let server = Server::start(&["--max-locks", &max_locks]);
    let addr = server.addr();
    let mut st = server.client();
    let mut rng = Rng(seed | 1);
    let key = |i: usize| format!("ks-{i}");
    let mut holders: Vec<Holder> = Vec::with_capacity(n);
    for i in 0..n {
        if i < processes {
            let child = Command::new(env!("CARGO_BIN_EXE_dflockctl"))
                .args([
                    "-s",
                    &addr.to_string(),
                    "lock",
                    &key(i),
                    "--",
                    "sleep",
                    "600",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("spawn dflockctl");
            holders.push(Holder::Process(child));
        } else {
            let mut s = connect(addr);
            s.write_all(format!("l\n{}\n0 600\n", key(i)).as_bytes())
                .unwrap();
            holders.push(Holder::Socket(s));
        }
    }
    wait_until(&format!("{n} keys held"), || {
        st.stats().get("locks").arr().len() == n
    });
    let waiters: Vec<TcpStream> = (0..n)
        .map(|i| {
            let mut s = connect(addr);
            s.write_all(format!("l\n{}\n60 60\n", key(i)).as_bytes())
                .unwrap();
            s
        })
        .collect();
    wait_until(&format!("{n} waiters parked"), || {
        let stats = st.stats();
        let w: u64 = stats
            .get("locks")
            .arr()
            .iter()
            .map(|e| e.get("waiters").u64())
            .sum();
        w == n as u64
    });
    // Socket holders' own grant replies are read: drain them so a reset
    // does not race a pending read (and they prove the hold).
    for h in &mut holders {
        if let Holder::Socket(s) = h {
            let mut buf = [0u8; 128];
            let k = s.read(&mut buf).unwrap();
            assert!(buf[..k].starts_with(b"ok "), "holder grant");
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let (killed_at, arrivals) = thread::scope(|s| {
        let reader = s.spawn(|| first_lines(&waiters, deadline));
        let mut killed_at = vec![Instant::now(); n];
        let mut holders: Vec<Option<Holder>> = holders.into_iter().map(Some).collect();
        for &i in &order {
            let h = holders[i].take().expect("each holder dies once");
            killed_at[i] = Instant::now();
            match h {
                Holder::Process(mut child) => {
                    // SAFETY: kill(2) on our child's process group.
                    let rc = unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
                    assert_eq!(rc, 0, "SIGKILL");
                    child.wait().expect("reap dflockctl");
                }
                Holder::Socket(sock) if i % 2 == 0 => reset_stream(sock),
                Holder::Socket(sock) => drop(sock),
            }
            if rng.below(4) == 0 {
                thread::sleep(Duration::from_micros(rng.below(1500)));
            }
        }
        (killed_at, reader.join().expect("reader"))
    });
    let mut lat: Vec<f64> = Vec::with_capacity(n);
    for (i, a) in arrivals.iter().enumerate() {
        let Some((t, line)) = a else {
            panic!("waiter of {} never granted after its holder died", key(i));
        };
        token_of(line);
        assert!(line.ends_with(" 60"), "waiter of {}: {line:?}", key(i));
        lat.push(t.saturating_duration_since(killed_at[i]).as_secs_f64() * 1000.0);
    }
    lat.sort_by(f64::total_cmp);
    let (p50, p99, max) = (percentile(&lat, 0.5), percentile(&lat, 0.99), lat[n - 1]);
    eprintln!(
        "kill storm: {n} holders died ({processes} dflockctl processes SIGKILLed, {} resets, \
         {} closes), {n} waiters granted; hand-off ms p50 {p50:.2} p99 {p99:.2} max {max:.2}",
        (n - processes).div_ceil(2),
        (n - processes) / 2
    );
    let stats = st.stats();
    for e in stats.get("locks").arr() {
        assert_eq!(e.get("waiters").u64(), 0, "stuck waiter on {e:?}");
    }
    drop(waiters);
    wait_until("every key free after the waiters left", || {
        let s = st.stats();
        in_use(&s, "locks").is_empty() && s.get("connections").u64() == 1
    });
    // The benchmark's goal is 10 ms; a loaded CI machine gets 5× slack.
    let goal = if full_size() { 10.0 } else { 50.0 };
    assert!(p50 <= goal, "median hand-off {p50:.2} ms > {goal} ms");
}

#[test]
fn kill_storm_of_holders() {
    kill_storm(150, 30, 0x51_0A11);
}

/// Full size for `benches/reliability.sh`: 1,000 holders, 200 of them processes.
#[test]
#[ignore = "benchmark: run by benches/reliability.sh"]
fn kill_storm_full() {
    kill_storm(1000, 200, 0x51_0A12);
}

// ------------------------------------------------------------------ disconnect storm

/// As `wait_until`, polling every 50 ms: each poll is a `stats` document
/// listing thousands of entries.
fn poll_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

fn disconnect_storm(rounds: usize, n: usize) {
    // glibc's per-thread cache keeps up to 7 freed chunks of every small
    // size, scattered over the heap: ~0.5 MB of pages that stay resident
    // after a storm, bounded, whatever the server frees. Off, RSS shows what
    // the server itself keeps (a retained index of 540 KB was found so).
    let server = Server::start_env(
        &[
            "--max-locks",
            "100000",
            "--gc-interval",
            "1",
            "--gc-max-idle",
            "1",
        ],
        &[("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0")],
    );
    let addr = server.addr();
    let mut st = server.client();
    let mut holder = server.client();
    token_of(&holder.req("l", "ds-held", "0 600"));
    token_of(&holder.req("sl", "ds-sem", "0 1 600"));
    let mut rss = Vec::new();
    for round in 0..rounds {
        let conns: Vec<TcpStream> = (0..n)
            .map(|i| {
                let mut s = connect(addr);
                let park = match i % 4 {
                    0 => "l\nds-held\n60\n".to_string(),
                    1 => "sl\nds-sem\n60 1\n".to_string(),
                    2 => format!("blpop\nds-list-{}\n60\n", i % 16),
                    _ => format!("bwait\nds-bar-{i}\n2 60\n"),
                };
                let group = if i % 3 == 0 { "g" } else { "" };
                let req = format!(
                    "listen\nds.ch.{}\n{group}\nwatch\nds-k-{}\n\nobserve\nds-el-{}\n\n{park}",
                    i % 64,
                    i % 64,
                    i % 8
                );
                s.write_all(req.as_bytes()).unwrap();
                s
            })
            .collect();
        poll_until(&format!("round {round}: {n} connections parked"), || {
            let s = st.stats();
            let waiters: u64 = ["locks", "semaphores"]
                .iter()
                .flat_map(|a| s.get(a).arr().iter().map(|e| e.get("waiters").u64()))
                .sum();
            let poppers: u64 = s
                .get("lists")
                .arr()
                .iter()
                .map(|e| e.get("pop_waiters").u64())
                .sum();
            let at_barriers: u64 = s
                .get("barriers")
                .arr()
                .iter()
                .map(|e| e.get("participants").u64())
                .sum();
            waiters + poppers + at_barriers == n as u64
        });
        for (i, s) in conns.into_iter().enumerate() {
            if i % 2 == 0 {
                reset_stream(s);
            }
        }
        poll_until(&format!("round {round}: nothing left"), || {
            let s = st.stats();
            let waiters: u64 = ["locks", "semaphores"]
                .iter()
                .flat_map(|a| s.get(a).arr().iter().map(|e| e.get("waiters").u64()))
                .sum();
            let observers: u64 = s
                .get("elections")
                .arr()
                .iter()
                .map(|e| e.get("observers").u64())
                .sum();
            s.get("connections").u64() == 2
                && waiters == 0
                && observers == 0
                && s.get("lists").arr().is_empty()
                && s.get("barriers").arr().is_empty()
                && s.get("signal_channels").arr().is_empty()
                && s.get("watch_channels").arr().is_empty()
        });
        // Let a GC pass (every second) give the freed tables back first.
        thread::sleep(Duration::from_millis(1200));
        rss.push(rss_kib(server.pid()));
    }
    let base = rss[0] as f64;
    let last = *rss.last().unwrap() as f64;
    eprintln!(
        "disconnect storm: {rounds} rounds of {n} connections (listen, watch, observe, park; \
         half reset), RSS KiB after each round {rss:?}: last/first = {:.3}",
        last / base
    );
    assert!(
        last <= base * 1.05,
        "RSS grew from {base} KiB after round 1 to {last} KiB after round {rounds}"
    );
    let mut c = Client::connect(addr);
    assert_eq!(c.req("ping", "_", ""), "ok");
}

#[test]
fn disconnect_storm_leaves_nothing() {
    disconnect_storm(6, 1000);
}

/// Full size for `benches/reliability.sh`: 10 rounds of 5,000 connections.
#[test]
#[ignore = "benchmark: run by benches/reliability.sh"]
fn disconnect_storm_full() {
    disconnect_storm(10, 5000);
}

// ------------------------------------------------------------------ fence durability

/// Grants as fast as `threads` connections can `l`/`r` distinct keys until the
/// server dies; returns every fence received.
fn grant_until_killed(addr: SocketAddr, threads: usize) -> Vec<u64> {
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            thread::spawn(move || {
                let mut fences = Vec::new();
                let Ok(mut s) = TcpStream::connect(addr) else {
                    return fences;
                };
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut pending = Vec::new();
                let key = format!("fd-{t}");
                loop {
                    if s.write_all(format!("l\n{key}\n0\n").as_bytes()).is_err() {
                        return fences;
                    }
                    let Some(line) = read_line(&mut s, &mut pending) else {
                        return fences;
                    };
                    let token = token_of(&line);
                    fences.push(fence_of(&token));
                    if s.write_all(format!("r\n{key}\n{token}\n").as_bytes())
                        .is_err()
                        || read_line(&mut s, &mut pending).is_none()
                    {
                        return fences;
                    }
                }
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().expect("granting thread"))
        .collect()
}

fn read_line(s: &mut TcpStream, pending: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(p) = pending.iter().position(|&b| b == b'\n') {
            let rest = pending.split_off(p + 1);
            let mut line = std::mem::replace(pending, rest);
            line.pop();
            return String::from_utf8(line).ok();
        }
        let mut buf = [0u8; 1024];
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(k) => pending.extend_from_slice(&buf[..k]),
        }
    }
}

fn ceiling_in(path: &std::path::Path) -> u64 {
    let text = std::fs::read_to_string(path).expect("read the fence state file");
    text.strip_suffix('\n')
        .unwrap_or(&text)
        .parse()
        .unwrap_or_else(|_| panic!("fence state file holds {text:?}"))
}

fn fence_durability(cycles: usize, seed: u64) {
    let dir = TempDir::new("fence-storm");
    let path = dir.join("fence.state");
    let p = path.to_str().unwrap();
    // A ceiling far above the wall clock: only the file can keep fences
    // from going back, so the test would catch it not being honoured.
    let start: u64 = 6_000_000_000_000_000_000;
    std::fs::write(&path, format!("{start}\n")).unwrap();
    let mut rng = Rng(seed | 1);
    let mut high = start;
    let mut total = 0usize;
    for cycle in 0..cycles {
        let mut server = Server::start(&["--fence-state-file", p]);
        let addr = server.addr();
        let killer = {
            let pid = server.pid();
            let after = Duration::from_millis(50 + rng.below(200));
            thread::spawn(move || {
                thread::sleep(after);
                // SAFETY: kill(2) on the server child.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            })
        };
        let mut fences = grant_until_killed(addr, 4);
        killer.join().unwrap();
        let status = server.wait_exit(Duration::from_secs(5)).expect("killed");
        assert_eq!(status.code(), None, "cycle {cycle}: SIGKILLed, not exited");
        fences.sort_unstable();
        let n = fences.len();
        fences.dedup();
        assert_eq!(fences.len(), n, "cycle {cycle}: a fence was issued twice");
        if let Some(&lo) = fences.first() {
            assert!(
                lo > high,
                "cycle {cycle}: fence {lo} not above {high}, the highest before the restart"
            );
            high = *fences.last().unwrap();
        }
        let ceiling = ceiling_in(&path);
        assert!(
            ceiling >= high,
            "cycle {cycle}: ceiling {ceiling} below fence {high}"
        );
        total += n;
    }
    eprintln!(
        "fence durability: {cycles} SIGKILLs during grants, {total} fences, none repeated or \
         going back across restarts"
    );
}

#[test]
fn fences_survive_kill_9_during_grants() {
    fence_durability(10, 0xFE_0C3);
}

/// Full size for `benches/reliability.sh`: 100 kill -9 cycles.
#[test]
#[ignore = "benchmark: run by benches/reliability.sh"]
fn fences_survive_kill_9_full() {
    fence_durability(100, 0xFE_0C4);
}

/// A state file that is not one decimal u64 (corrupted, emptied) refuses the
/// start with exit 78 naming the file; one whose replacement cannot be
/// written (first reservation fails) exits 1 naming it. No fence is issued.
#[test]
fn bad_fence_state_files_refuse_to_start() {
    let dir = TempDir::new("fence-bad");
    let path = dir.join("fence.state");
    let p = path.to_str().unwrap().to_string();
    let valid = "6000000000000000000\n";
    let mut rng = Rng(0xBAD_F11E);
    // Corruptions of a valid file: a byte flipped to a non-digit, emptied,
    // a second line, a sign, a value past u64::MAX.
    let mut cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"\n".to_vec(),
        b"6000000000000000000\n7\n".to_vec(),
        b"-6000000000000000000\n".to_vec(),
        b"18446744073709551616\n".to_vec(),
        b"6000000000000000000\n\n".to_vec(),
    ];
    for _ in 0..6 {
        let mut v = valid.as_bytes().to_vec();
        let at = rng.below(v.len() as u64 - 1) as usize;
        v[at] = [b'x', b' ', 0, 0xff, b'\r', b'.'][rng.below(6) as usize];
        cases.push(v);
    }
    for content in cases {
        std::fs::write(&path, &content).unwrap();
        let out = run_server_cmd(&["--port", "0", "--fence-state-file", &p], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{content:?}: {stderr}");
        assert!(
            stderr.contains(&format!("\"{p}\"")) && stderr.contains("--fence-state-file"),
            "{content:?}: the message names the file and the flag: {stderr}"
        );
        assert!(
            !stderr.contains("listening on"),
            "{content:?} started: {stderr}"
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            content,
            "the bad file was rewritten"
        );
    }
    // Unwritable: the temporary file's name is taken by a directory, so the
    // first reservation cannot be written (as root, too).
    std::fs::write(&path, valid).unwrap();
    std::fs::create_dir(dir.join(".fence.state.tmp")).unwrap();
    let out = run_server_cmd(&["--port", "0", "--fence-state-file", &p], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "unwritable: {stderr}");
    assert!(
        stderr.contains(&p),
        "unwritable: the message names the file: {stderr}"
    );
    assert!(
        !stderr.contains("listening on"),
        "unwritable but started: {stderr}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), valid);
}
