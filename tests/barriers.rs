//! Barriers (protocol.md §8.14, §4.4, §7.4, §10): N connections meet, any
//! departure cancels, a try leaves the barrier untouched, `--max-keys`, stats.

use crate::common;

use common::{Client, Server, wait_until};
use std::time::{Duration, Instant};

/// The `barriers` entry of `key` as (count, participants), if listed.
fn barrier(c: &mut Client, key: &str) -> Option<(u64, u64)> {
    c.stats()
        .entry("barriers", key)
        .map(|e| (e.get("count").u64(), e.get("participants").u64()))
}

fn wait_participants(c: &mut Client, key: &str, n: u64) {
    wait_until(&format!("{n} participants at {key:?}"), || {
        barrier(c, key).map_or(0, |b| b.1) == n
    });
}

#[test]
fn spec_example_8_14() {
    let s = Server::start(&[]);
    let (mut a, mut b, mut c, mut st) = (s.client(), s.client(), s.client(), s.client());
    a.send_req("bwait", "stage-2", "3 30");
    wait_participants(&mut st, "stage-2", 1);
    b.send_req("bwait", "stage-2", "3 30");
    wait_participants(&mut st, "stage-2", 2);
    assert_eq!(barrier(&mut st, "stage-2"), Some((3, 2)));
    assert_eq!(
        c.req("bwait", "stage-2", "4 30"),
        "error_barrier_count_mismatch"
    );
    a.expect_nothing_for(Duration::from_millis(50));
    assert_eq!(c.req("bwait", "stage-2", "3 30"), "ok");
    assert_eq!(a.line(), "ok");
    assert_eq!(b.line(), "ok");
    assert_eq!(barrier(&mut st, "stage-2"), None, "deleted when complete");
    // A fresh barrier of the same name may take another count.
    assert_eq!(a.req("bwait", "stage-2", "1 30"), "ok");
}

#[test]
fn a_timeout_cancels_the_barrier_for_everybody() {
    let s = Server::start(&[]);
    let (mut a, mut b, mut st) = (s.client(), s.client(), s.client());
    let start = Instant::now();
    a.send_req("bwait", "sync", "3 1");
    wait_participants(&mut st, "sync", 1);
    b.send_req("bwait", "sync", "3 30");
    wait_participants(&mut st, "sync", 2);
    assert_eq!(a.line(), "timeout");
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(1000), "early: {waited:?}");
    b.set_read_timeout(Duration::from_millis(500));
    assert_eq!(b.line(), "timeout", "cancelled at once");
    assert_eq!(barrier(&mut st, "sync"), None);
    b.set_read_timeout(common::READ_TIMEOUT);
    assert_eq!(b.req("ping", "_", ""), "ok");
    // Alone, with a 1 s timeout.
    assert_eq!(a.req("bwait", "solo", "2 1"), "timeout");
    assert_eq!(barrier(&mut st, "solo"), None);
}

#[test]
fn a_disconnect_cancels_the_barrier() {
    let s = Server::start(&[]);
    let (mut a, mut b, mut c, mut st) = (s.client(), s.client(), s.client(), s.client());
    a.send_req("bwait", "d", "4 30");
    wait_participants(&mut st, "d", 1);
    b.send_req("bwait", "d", "4 30");
    wait_participants(&mut st, "d", 2);
    c.send_req("bwait", "d", "4 30");
    wait_participants(&mut st, "d", 3);
    drop(a);
    assert_eq!(b.line(), "timeout");
    assert_eq!(c.line(), "timeout");
    assert_eq!(barrier(&mut st, "d"), None);
    assert!(st.stats().get("barriers").arr().is_empty());
}

#[test]
fn a_try_that_does_not_complete_leaves_the_barrier_untouched() {
    let s = Server::start(&[]);
    let (mut a, mut b, mut c, mut st) = (s.client(), s.client(), s.client(), s.client());

    // On an absent barrier: nothing is created.
    assert_eq!(a.req("bwait", "t", "2 0"), "timeout");
    assert_eq!(barrier(&mut st, "t"), None);

    a.send_req("bwait", "t", "3 30");
    wait_participants(&mut st, "t", 1);
    assert_eq!(b.req("bwait", "t", "3 0"), "timeout");
    assert_eq!(
        barrier(&mut st, "t"),
        Some((3, 1)),
        "the try is not an arrival"
    );
    a.expect_nothing_for(Duration::from_millis(100));
    assert_eq!(b.req("bwait", "t", "5 0"), "error_barrier_count_mismatch");

    b.send_req("bwait", "t", "3 30");
    wait_participants(&mut st, "t", 2);
    // A try that completes the barrier releases everybody.
    assert_eq!(c.req("bwait", "t", "3 0"), "ok");
    assert_eq!(a.line(), "ok");
    assert_eq!(b.line(), "ok");
    assert_eq!(barrier(&mut st, "t"), None);
}

#[test]
fn count_one_completes_at_once_and_creates_nothing() {
    let s = Server::start(&[]);
    let mut a = s.client();
    assert_eq!(a.req("bwait", "one", "1 30"), "ok");
    assert_eq!(a.req("bwait", "one", "1 0"), "ok");
    assert_eq!(barrier(&mut a, "one"), None);
    for arg in ["0 5", "2", "2 -1", "1048577 5", "2 5 5", "x 5", ""] {
        assert_eq!(a.req("bwait", "one", arg), "error", "bwait {arg:?}");
    }
    assert_eq!(a.req("bwait", "bad key", "2 5"), "error");
    assert!(a.stats().get("barriers").arr().is_empty());
}

#[test]
fn max_keys_applies_to_barriers_that_would_wait() {
    let s = Server::start(&["--max-keys", "1"]);
    let mut a = s.client();
    assert_eq!(a.req("incr", "c", "1"), "ok 1");
    assert_eq!(a.req("bwait", "b", "2 5"), "error_max_keys");
    assert_eq!(
        a.req("bwait", "b", "1 5"),
        "ok",
        "completes: creates nothing"
    );
    assert_eq!(
        a.req("bwait", "b", "2 0"),
        "timeout",
        "a try creates nothing"
    );

    let s2 = Server::start(&["--max-keys", "1"]);
    let (mut a2, mut b2, mut st2) = (s2.client(), s2.client(), s2.client());
    a2.send_req("bwait", "b", "2 30");
    wait_participants(&mut st2, "b", 1);
    assert_eq!(
        st2.req("incr", "c", "1"),
        "error_max_keys",
        "the barrier counts"
    );
    assert_eq!(st2.req("kset", "c", "v"), "error_max_keys");
    assert_eq!(
        b2.req("bwait", "b", "2 30"),
        "ok",
        "joining creates nothing"
    );
    assert_eq!(a2.line(), "ok");
    assert_eq!(
        st2.req("incr", "c", "1"),
        "ok 1",
        "completed barriers are deleted"
    );
}

#[test]
fn stats_barriers() {
    let s = Server::start(&[]);
    let (mut a, mut b, mut st) = (s.client(), s.client(), s.client());
    a.send_req("bwait", "zz", "5 30");
    wait_participants(&mut st, "zz", 1);
    b.send_req("bwait", "aa", "2 30");
    wait_participants(&mut st, "aa", 1);
    let stats = st.stats();
    assert_eq!(stats.keys("barriers"), ["aa", "zz"]);
    let zz = stats.entry("barriers", "zz").unwrap();
    assert_eq!(zz.get("count").u64(), 5);
    assert_eq!(zz.get("participants").u64(), 1);
    assert!(zz.get("idle_s").f64() >= 0.0);
    assert_eq!(st.req("bwait", "aa", "2 30"), "ok");
    assert_eq!(b.line(), "ok");
    assert_eq!(st.stats().keys("barriers"), ["zz"]);
    drop(a);
    wait_until("barriers to be empty", || {
        st.stats().get("barriers").arr().is_empty()
    });
}
