//! Contention statistics (protocol.md §8.15) against a real server: the
//! `contention` array of `stats` after a contended run, untracked keys that
//! never waited, and the `/metrics` histograms and per-key totals
//! (`promtool check metrics` is run on the scrape when it is installed).

use crate::common;
use crate::http_common;

use common::{Client, Json, expect_grant, token_of};
use http_common::{Api, start};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// `holder` holds `key`; `n` clients park behind it; the holder keeps it
/// `hold`, then each waiter in turn holds it `hold` and releases.
/// Returns the waiters' waits as measured here.
fn contend(s: &common::Server, key: &str, n: usize, hold: Duration) -> Vec<Duration> {
    let mut holder = s.client();
    let mut token = expect_grant(&holder.req("l", key, "10 30"), 30);
    let mut waiters: Vec<(Client, Instant)> = Vec::new();
    for i in 0..n {
        let mut c = s.client();
        c.send_req("l", key, "10 30");
        waiters.push((c, Instant::now()));
        holder.wait_lock_waiters(key, i as u64 + 1);
    }
    thread::sleep(hold);
    assert_eq!(holder.req("r", key, &token), "ok");
    let mut waits = Vec::new();
    for (mut c, since) in waiters {
        token = token_of(&c.line());
        waits.push(since.elapsed());
        thread::sleep(hold);
        assert_eq!(c.req("r", key, &token), "ok");
    }
    waits
}

fn entry<'a>(doc: &'a Json, key: &str) -> Option<&'a Json> {
    doc.get("contention")
        .arr()
        .iter()
        .find(|e| e.get("key").str() == key)
}

#[test]
fn stats_lists_contended_keys_by_total_wait() {
    let (s, http) = start(&[]);
    let waits = contend(&s, "hot", 2, Duration::from_millis(300));
    contend(&s, "warm", 1, Duration::from_millis(100));
    // Contended only as a semaphore: the type is reported.
    let mut a = s.client();
    let t = token_of(&a.req("sl", "pool", "10 1 30"));
    let mut b = s.client();
    b.send_req("sl", "pool", "10 1 30");
    a.wait_sem_waiters("pool", 1);
    assert_eq!(a.req("sr", "pool", &t), "ok");
    let t = token_of(&b.line());
    assert_eq!(b.req("sr", "pool", &t), "ok");
    // Locked without waiting: never tracked.
    let t = token_of(&a.req("l", "calm", "10 30"));
    assert_eq!(a.req("r", "calm", &t), "ok");

    let doc = a.stats();
    let keys: Vec<&str> = doc
        .get("contention")
        .arr()
        .iter()
        .map(|e| e.get("key").str())
        .collect();
    assert_eq!(keys, ["hot", "warm", "pool"], "ordered by total wait");
    let hot = entry(&doc, "hot").unwrap();
    assert_eq!(hot.get("type").str(), "lock");
    // The holder it waited behind counts as a grant, then the two waiters.
    assert_eq!(hot.get("grants").u64(), 3);
    assert_eq!(hot.get("waits").u64(), 2);
    // Waits were ≥ 300 ms and ≥ 600 ms; quantiles never under-report and are
    // within a factor √2 of a bucket, so generous bounds cannot flake.
    let (p50, p99) = (hot.get("wait_p50_s").f64(), hot.get("wait_p99_s").f64());
    assert!((0.3..=10.0).contains(&p50), "wait_p50_s {p50}");
    assert!(
        (0.6..=10.0).contains(&p99) && p99 >= p50,
        "wait_p99_s {p99}"
    );
    let longest = waits.iter().max().unwrap().as_secs_f64();
    assert!(
        p99 <= longest * 1.5 + 0.01,
        "p99 {p99} vs measured {longest}"
    );
    assert!(hot.get("hold_p99_s").f64() >= 0.3);
    assert!(hot.get("wait_total_s").f64() >= 0.9);
    assert_eq!(entry(&doc, "pool").unwrap().get("type").str(), "semaphore");
    assert!(entry(&doc, "calm").is_none());

    // The same over HTTP, and /metrics.
    let api = Api::new(http);
    assert_eq!(api.stats().get("contention").arr().len(), 3);
    let text = api.get("/metrics").text();
    let count = |name: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing"));
        line[name.len() + 1..].parse().unwrap()
    };
    assert!(text.contains("# TYPE dflockd_lock_wait_seconds histogram\n"));
    assert!(text.contains("# TYPE dflockd_lock_hold_seconds histogram\n"));
    assert_eq!(count("dflockd_lock_wait_seconds_count"), 4.0);
    assert!(count("dflockd_lock_wait_seconds_sum") >= 0.9);
    // Every grant above has ended: 4 on hot/warm holders + 2 more, 2 on pool, 1 calm.
    assert_eq!(count("dflockd_lock_hold_seconds_count"), 8.0);
    assert!(text.contains("dflockd_lock_wait_seconds_bucket{le=\"+Inf\"} 4\n"));
    assert!(text.contains("dflockd_contended_key_wait_seconds_total{key=\"hot\"} "));
    assert!(!text.contains("key=\"calm\""));
    promtool_clean(&text);
}

#[test]
fn tracking_survives_idle_collection_of_the_key() {
    let s = common::Server::start(&["--gc-interval", "1", "--gc-max-idle", "1"]);
    contend(&s, "k", 1, Duration::from_millis(50));
    let mut c = s.client();
    common::wait_until("key collected", || {
        c.stats().get("idle_locks").arr().is_empty()
    });
    // Recreated: grants keep counting on the same entry.
    let t = token_of(&c.req("l", "k", "10 30"));
    assert_eq!(c.req("r", "k", &t), "ok");
    let doc = c.stats();
    let k = entry(&doc, "k").expect("still listed");
    assert_eq!((k.get("grants").u64(), k.get("waits").u64()), (3, 1));
}

/// `promtool check metrics` must print nothing (no error, no lint).
fn promtool_clean(text: &str) {
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!("promtool not installed: lint skipped (CI runs it)");
        return;
    };
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool: {said}"
    );
}
