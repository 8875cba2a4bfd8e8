//! The memory budget with real server processes (protocol.md §7.4a,
//! config.md §3.3 `--max-memory`, http.md §4.4 `503 max_memory`): filling
//! until refused with the RSS bounded, the way back always open, the
//! accounting checked against RSS, subscriptions, and a seeded storm.
//!
//! Figures are printed (`--nocapture` shows them). The storm runs for
//! `MEMBUDGET_STORM_SECS` seconds (default 3); `benches/membudget-storm.sh`
//! runs the 20 s version.

use crate::common;

use common::{Client, Json, Server, run_server_cmd, wait_until};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;
const REFUSED: &str = "error_max_memory";

/// Resident set size of `pid` in bytes, from `/proc/<pid>/status`.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS line");
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .expect("VmRSS in kB");
    kib * 1024
}

/// Samples the RSS of `pid` every 2 ms until dropped; keeps the peak.
struct RssPeak {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<thread::JoinHandle<()>>,
}

impl RssPeak {
    fn start(pid: u32) -> RssPeak {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(rss(pid)));
        let (s, p) = (Arc::clone(&stop), Arc::clone(&peak));
        let thread = thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(rss(pid), Ordering::Relaxed);
                thread::sleep(Duration::from_millis(2));
            }
        });
        RssPeak {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for RssPeak {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A fixed-seed xorshift: every run sends the same sizes in the same order.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    /// A value of `lo..hi` bytes.
    fn value(&mut self, lo: u64, hi: u64) -> String {
        let n = lo + self.below(hi - lo);
        let c = (b'a' + self.below(26) as u8) as char;
        c.to_string().repeat(n as usize)
    }
}

/// `memory_used_bytes` and the rest of `server`, asked on a fresh connection
/// (whose own buffers are not counted yet when `stats` runs).
fn server_stats(addr: SocketAddr) -> Json {
    Client::connect(addr).stats().get("server").clone()
}

fn used(addr: SocketAddr) -> u64 {
    server_stats(addr).get("memory_used_bytes").u64()
}

/// The count once it is back within `slack` bytes of `idle`, or where it
/// stands after 10 s. Each look is a new connection, and the one before may
/// still be open in the server's view (its close not yet read), its buffers
/// (528 B) still counted: the count must come back to idle, not be there at
/// the first look.
fn used_back_to(addr: SocketAddr, idle: u64, slack: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = used(addr);
        if now.abs_diff(idle) <= slack || Instant::now() >= deadline {
            return now;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until only the asking connection is open (closed clients reaped).
fn wait_for_quiet(addr: SocketAddr) {
    wait_until("closed connections to be reaped", || {
        Client::connect(addr).stats().get("connections").u64() == 1
    });
}

/// One HTTP/1.1 request with `Connection: close`; (status, body).
fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect http");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

/// Fill from `lists` list writers and `kvs` KV writers until each is refused;
/// returns the KV keys each KV writer stored. Every reply is `ok …` or
/// `error_max_memory`.
fn fill_until_refused(addr: SocketAddr, lists: u64, kvs: u64, lo: u64, hi: u64) -> Vec<u64> {
    let writers: Vec<_> = (0..lists + kvs)
        .map(|t| {
            thread::spawn(move || {
                let mut c = Client::connect(addr);
                let mut rng = Rng::new(t + 1);
                let mut stored = 0u64;
                loop {
                    let v = rng.value(lo, hi);
                    let reply = if t < lists {
                        c.req("rpush", &format!("q{t}"), &v)
                    } else {
                        c.req("kset", &format!("kv{t}:{stored}"), &v)
                    };
                    if reply == REFUSED {
                        // Refused it stays: nothing is being deleted.
                        for _ in 0..10 {
                            assert_eq!(c.req("rpush", &format!("q{t}"), "x"), REFUSED);
                        }
                        return stored;
                    }
                    assert!(reply.starts_with("ok"), "writer {t}: {reply}");
                    stored += 1;
                }
            })
        })
        .collect();
    writers.into_iter().map(|w| w.join().unwrap()).collect()
}

#[test]
fn filling_until_refused_keeps_rss_bounded_and_the_way_back_open() {
    const BUDGET: u64 = 64 * MIB;
    let port = common::free_port().to_string();
    let server = Server::start(&["--max-memory", "67108864", "--http-port", &port]);
    let addr = server.addr();
    let http_addr = server.listener("http");
    let rss0 = rss(server.pid());
    let sampler = RssPeak::start(server.pid());
    let t0 = Instant::now();
    // Two list writers and two KV writers, values of 512 B ..16 KiB.
    let stored = fill_until_refused(addr, 2, 2, 512, 16 * 1024);
    let fill_s = t0.elapsed().as_secs_f64();

    let st = server_stats(addr);
    let used_full = st.get("memory_used_bytes").u64();
    assert_eq!(st.get("memory_budget_bytes").u64(), BUDGET);
    assert!(used_full >= BUDGET, "{used_full}");
    assert!(st.get("totals").get("max_memory_refusals").u64() >= 44);
    // Everything §7.4a refuses, on TCP and HTTP.
    let mut c = Client::connect(addr);
    assert_eq!(c.req("kset", "new", "v"), REFUSED);
    assert_eq!(c.req("lpush", "q0", "v"), REFUSED);
    assert_eq!(c.req("incr", "ctr", "1"), REFUSED);
    assert_eq!(c.req("listen", "a.>", ""), REFUSED);
    assert_eq!(c.req("watch", "kv2.*", ""), REFUSED);
    let (status, body) = http(http_addr, "POST", "/v1/kv/new", r#"{"value":"v"}"#);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains(r#""error":"max_memory""#), "{body}");
    let (status, body) = http(http_addr, "GET", "/v1/watch?pattern=a.%3E", "");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains(r#""error":"max_memory""#), "{body}");
    let metrics = http(http_addr, "GET", "/metrics", "").1;
    assert!(metrics.contains(&format!("dflockd_memory_budget_bytes {BUDGET}")));
    assert!(metrics.contains("dflockd_memory_used_bytes "));
    assert!(metrics.contains("dflockd_max_memory_refusals_total "));

    // Locks are granted, queued, renewed and released while refused.
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    let grant = a.req("l", "job", "0 5");
    let token = common::token_of(&grant);
    b.send_req("l", "job", "10 5");
    c.wait_lock_waiters("job", 1);
    assert_eq!(a.req("n", "job", &format!("{token} 7")), "ok 7");
    assert_eq!(a.req("r", "job", &token), "ok");
    let b_token = common::token_of(&b.line());
    assert_eq!(b.req("r", "job", &b_token), "ok");
    assert!(a.req("sl", "pool", "0 2 5").starts_with("ok "));
    assert!(a.req("e", "two", "").starts_with("acquired "));
    // Reads, pops and deletes work.
    assert!(c.req("kget", "kv2:0", "").starts_with("ok "));
    assert!(c.req("lpop", "q0", "").starts_with("ok "));
    assert_eq!(c.req("kdel", "kv2:0", ""), "ok");
    // Enough deletes make room: writes succeed again.
    for (t, n) in stored.iter().enumerate().skip(2) {
        for i in 0..*n {
            c.send_req("kdel", &format!("kv{t}:{i}"), "");
        }
        for _ in 0..*n {
            assert_eq!(c.line(), "ok");
        }
    }
    assert_eq!(c.req("kset", "new", "v"), "ok");
    assert!(c.req("rpush", "q0", "v").starts_with("ok "));
    assert_eq!(c.req("listen", "a.>", ""), "ok");

    let peak = sampler.peak();
    drop(sampler);
    let used_after = used(addr);
    // Warnings: once each on the way up, once on the way back below 80%.
    for (needle, what) in [
        ("past 80%", "80% warning"),
        ("past 95%", "95% warning"),
        ("back below 80%", "recovery notice"),
    ] {
        assert!(
            server
                .wait_for_log(needle, Duration::from_secs(5))
                .is_some(),
            "no {what}"
        );
        let n = server
            .stderr_lines()
            .iter()
            .filter(|l| l.contains(needle))
            .count();
        assert_eq!(n, 1, "{what} logged {n} times");
    }
    let bound = BUDGET * 5 / 4 + 16 * MIB;
    println!(
        "fill: budget {} MiB, idle RSS {:.1} MiB, filled in {fill_s:.2} s to {:.1} MiB counted; \
         peak RSS {:.1} MiB (bound {:.1} MiB); after deleting the KV half {:.1} MiB counted",
        BUDGET / MIB,
        rss0 as f64 / MIB as f64,
        used_full as f64 / MIB as f64,
        peak as f64 / MIB as f64,
        bound as f64 / MIB as f64,
        used_after as f64 / MIB as f64,
    );
    assert!(peak <= bound, "peak RSS {peak} over {bound}");
}

#[test]
fn the_accounting_follows_rss_and_returns_to_idle() {
    let server = Server::start(&["--max-memory", "0"]);
    let addr = server.addr();
    let pid = server.pid();
    let used0 = used(addr);
    let rss0 = rss(pid);
    // Fill 64 MiB by the server's own count: two list writers and two KV
    // writers, values of 1..8 KiB, until the count has grown by 64 MiB.
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4u64)
        .map(|t| {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut c = Client::connect(addr);
                let mut rng = Rng::new(100 + t);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // Pipelined batches: the count is checked between them.
                    for _ in 0..64 {
                        let v = rng.value(1, 8192);
                        if t < 2 {
                            c.send_req("rpush", &format!("list{t}"), &v);
                        } else {
                            c.send_req("kset", &format!("k{t}:{}", n), &v);
                        }
                        n += 1;
                    }
                    for _ in 0..64 {
                        assert!(c.line().starts_with("ok"));
                    }
                }
                n
            })
        })
        .collect();
    wait_until("64 MiB counted", || used(addr) >= used0 + 64 * MIB);
    stop.store(true, Ordering::Relaxed);
    let counts: Vec<u64> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    wait_for_quiet(addr);
    let used1 = used(addr);
    let rss1 = rss(pid);
    let counted = used1 - used0;
    let grown = rss1.saturating_sub(rss0);
    let ratio = counted as f64 / grown as f64;
    println!(
        "honesty: counted growth {:.2} MiB, RSS growth {:.2} MiB (idle {:.2} → {:.2} MiB), \
         counted/RSS {ratio:.3}",
        counted as f64 / MIB as f64,
        grown as f64 / MIB as f64,
        rss0 as f64 / MIB as f64,
        rss1 as f64 / MIB as f64,
    );
    assert!(
        (0.8..=1.2).contains(&ratio),
        "counted {counted} vs RSS growth {grown}"
    );

    // Delete everything; the count returns to its idle figure.
    let mut c = Client::connect(addr);
    for (t, n) in counts.iter().enumerate() {
        let t = t as u64;
        for chunk in 0..n.div_ceil(1000) {
            let m = (n - chunk * 1000).min(1000);
            for i in 0..m {
                if t < 2 {
                    c.send_req("lpop", &format!("list{t}"), "");
                } else {
                    c.send_req("kdel", &format!("k{t}:{}", chunk * 1000 + i), "");
                }
            }
            for _ in 0..m {
                assert!(c.line().starts_with("ok"));
            }
        }
    }
    assert_eq!(c.req("llen", "list0", ""), "ok 0");
    drop(c);
    wait_for_quiet(addr);
    let used2 = used_back_to(addr, used0, used0 / 100);
    println!("honesty: idle {used0} B, after deleting everything {used2} B");
    assert!(
        used2.abs_diff(used0) <= used0 / 100,
        "idle {used0}, after {used2}"
    );
}

#[test]
fn subscriptions_until_refused_and_unsubscribing_frees() {
    let port = common::free_port().to_string();
    let server = Server::start(&["--max-memory", "1048576", "--http-port", &port]);
    let addr = server.addr();
    let used0 = used(addr);
    let conns: Vec<_> = (0..8u64)
        .map(|t| {
            thread::spawn(move || {
                let mut c = Client::connect(addr);
                let mut n = 0u64;
                loop {
                    let reply = if n % 2 == 0 {
                        c.req("listen", &format!("c{t}.p{n}.>"), "")
                    } else {
                        c.req("watch", &format!("c{t}.w{n}.*"), "")
                    };
                    if reply == REFUSED {
                        return (c, n);
                    }
                    assert_eq!(reply, "ok", "conn {t} after {n}");
                    n += 1;
                }
            })
        })
        .collect();
    let mut conns: Vec<(Client, u64)> = conns.into_iter().map(|h| h.join().unwrap()).collect();
    let total: u64 = conns.iter().map(|(_, n)| n).sum();
    let full = used(addr);
    println!(
        "subscriptions: {total} registrations on 8 connections until refused at {full} B counted"
    );
    assert!(full >= 1 << 20);
    let (c0, n0) = &mut conns[0];
    // Still refused: new registrations of every kind, on TCP and HTTP.
    assert_eq!(c0.req("observe", "leader", ""), REFUSED);
    assert_eq!(c0.req("listen", "new.>", "grp"), REFUSED);
    let (status, body) = http(server.listener("http"), "GET", "/v1/signals?pattern=x", "");
    assert_eq!((status, body.contains("max_memory")), (503, true), "{body}");
    // A repeat is not new: accepted.
    assert_eq!(c0.req("listen", "c0.p0.>", ""), "ok");
    // Unsubscribing frees: the count drops and registrations work again.
    for i in 0..*n0 {
        let reply = if i % 2 == 0 {
            c0.req("unlisten", &format!("c0.p{i}.>"), "")
        } else {
            c0.req("unwatch", &format!("c0.w{i}.*"), "")
        };
        assert_eq!(reply, "ok");
    }
    let after = used(addr);
    assert!(after < full, "{after} < {full}");
    assert_eq!(c0.req("listen", "new.>", "grp"), "ok");
    assert_eq!(c0.req("observe", "leader", ""), "ok");
    // Disconnecting frees the rest.
    drop(conns);
    wait_for_quiet(addr);
    assert_eq!(used_back_to(addr, used0, 0), used0);
}

#[test]
fn storm_pushers_at_the_budget_never_stop_the_lockers() {
    let secs: u64 = std::env::var("MEMBUDGET_STORM_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let server = Server::start(&["--max-memory", "16777216"]);
    let addr = server.addr();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let pushers: Vec<_> = (0..8u64)
        .map(|t| {
            thread::spawn(move || {
                let mut c = Client::connect(addr);
                let mut rng = Rng::new(1000 + t);
                let (mut ok, mut refused) = (0u64, 0u64);
                while Instant::now() < deadline {
                    let roll = rng.below(100);
                    let list = format!("storm{}", t % 4);
                    let reply = if roll < 70 {
                        c.req("rpush", &list, &rng.value(256, 8192))
                    } else if roll < 85 {
                        let key = format!("s{t}:{}", rng.below(500));
                        c.req("kset", &key, &rng.value(256, 8192))
                    } else if roll < 95 {
                        c.req("lpop", &list, "")
                    } else {
                        c.req("kdel", &format!("s{t}:{}", rng.below(500)), "")
                    };
                    if reply == REFUSED {
                        refused += 1;
                    } else {
                        assert!(
                            reply.starts_with("ok") || reply == "nil",
                            "pusher {t}: {reply}"
                        );
                        ok += 1;
                    }
                }
                (ok, refused)
            })
        })
        .collect();
    let lockers: Vec<_> = (0..8u64)
        .map(|t| {
            thread::spawn(move || {
                let mut c = Client::connect(addr);
                let key = format!("lk{}", t % 4);
                let mut cycles = 0u64;
                while Instant::now() < deadline {
                    let grant = c.req("l", &key, "10 5");
                    assert!(grant.starts_with("ok "), "locker {t}: {grant}");
                    let token = common::token_of(&grant);
                    if cycles % 8 == 0 {
                        assert_eq!(c.req("n", &key, &format!("{token} 5")), "ok 5");
                    }
                    assert_eq!(c.req("r", &key, &token), "ok", "locker {t}");
                    cycles += 1;
                }
                cycles
            })
        })
        .collect();
    let pushed: Vec<(u64, u64)> = pushers.into_iter().map(|h| h.join().unwrap()).collect();
    let cycles: Vec<u64> = lockers.into_iter().map(|h| h.join().unwrap()).collect();
    let st = server_stats(addr);
    let refusals: u64 = pushed.iter().map(|p| p.1).sum();
    let oks: u64 = pushed.iter().map(|p| p.0).sum();
    println!(
        "storm {secs} s: pushers {oks} ok / {refusals} error_max_memory; lock+release cycles \
         per locker {cycles:?}; counted {} B of {} B",
        st.get("memory_used_bytes").u64(),
        st.get("memory_budget_bytes").u64()
    );
    assert!(refusals > 0, "the storm never reached the budget");
    assert_eq!(st.get("totals").get("max_memory_refusals").u64(), refusals);
    assert!(cycles.iter().all(|&n| n > 0), "{cycles:?}");
    assert!(
        !server.stderr_lines().iter().any(|l| l.contains("panicked")),
        "the server panicked"
    );
}

#[test]
fn check_config_prints_the_derived_default() {
    let out = run_server_cmd(&["--check-config"], &[]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("--max-memory="))
        .expect("a --max-memory line");
    let value: u64 = line["--max-memory=".len()..]
        .trim_end_matches(" (default)")
        .parse()
        .expect("a number");
    assert!(value > 0 && value <= 1 << 30, "{line}");
    let out = run_server_cmd(&["--check-config"], &[("DFLOCKD_MAX_MEMORY", "0")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("--max-memory=0 (env DFLOCKD_MAX_MEMORY)"),
        "{text}"
    );
}
