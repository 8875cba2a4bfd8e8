//! Disconnect cleanup (protocol.md §4.4, §2.5): a connection that goes away
//! while holding, waiting, observing, subscribed or watching leaves nothing
//! behind, and freed capacity goes to the next waiter at once.

use crate::common;

use common::{Client, Json, Server, expect_grant, token_of, wait_until};
use std::time::{Duration, Instant};

/// The `rw_locks` entry of `key` as (readers, writer, waiters), if listed.
fn rw_state(c: &mut Client, key: &str) -> Option<(u64, bool, u64)> {
    c.stats().entry("rw_locks", key).map(|e| {
        (
            e.get("readers").u64(),
            e.get("writer").bool(),
            e.get("waiters").u64(),
        )
    })
}

fn wait_rw_waiters(c: &mut Client, key: &str, n: u64) {
    wait_until(&format!("{n} waiters on rw lock {key:?}"), || {
        rw_state(c, key).map_or(0, |s| s.2) == n
    });
}

fn idle_lock(stats: &Json, key: &str) -> bool {
    stats.entry("idle_locks", key).is_some()
}

/// The `elections` entry of `key` as (leader_conn_id, observers, candidates).
fn election(c: &mut Client, key: &str) -> Option<(u64, u64, u64)> {
    c.stats().entry("elections", key).map(|e| {
        (
            e.get("leader_conn_id").u64(),
            e.get("observers").u64(),
            e.get("candidates").u64(),
        )
    })
}

fn rw_grant(reply: &str) -> String {
    assert_eq!(reply.split(' ').count(), 4, "{reply:?}");
    token_of(reply)
}

#[test]
fn holding_a_lock() {
    let s = Server::start(&[]);
    let (mut a, mut b, mut st) = (s.client(), s.client(), s.client());
    token_of(&a.req("l", "k", "0"));
    b.send_req("l", "k", "30");
    st.wait_lock_waiters("k", 1);
    drop(a);
    let tb = expect_grant(&b.line(), 33);
    let stats = st.stats();
    let e = stats.entry("locks", "k").expect("held by B");
    assert_eq!(e.get("waiters").u64(), 0);
    assert_eq!(e.get("fence").u64(), common::fence_of(&tb));
    drop(b);
    wait_until("the lock to be free", || idle_lock(&st.stats(), "k"));
    assert!(st.stats().get("locks").arr().is_empty());
    token_of(&st.req("l", "k", "0"));
}

#[test]
fn holding_a_semaphore_permit() {
    let s = Server::start(&[]);
    let (mut a, mut b, mut c, mut st) = (s.client(), s.client(), s.client(), s.client());
    token_of(&a.req("sl", "s", "0 2"));
    token_of(&a.req("sl", "s", "0 2"));
    b.send_req("sl", "s", "30 2");
    st.wait_sem_waiters("s", 1);
    c.send_req("sl", "s", "30 2");
    st.wait_sem_waiters("s", 2);
    drop(a);
    expect_grant(&b.line(), 33);
    expect_grant(&c.line(), 33);
    let stats = st.stats();
    let e = stats.entry("semaphores", "s").unwrap();
    assert_eq!((e.get("holders").u64(), e.get("waiters").u64()), (2, 0));
    drop(b);
    drop(c);
    wait_until("the semaphore to be idle", || {
        st.stats().entry("idle_semaphores", "s").is_some()
    });
}

#[test]
fn holding_read_and_write_locks() {
    let s = Server::start(&[]);
    let (mut r, mut w, mut r2, mut r3, mut st) =
        (s.client(), s.client(), s.client(), s.client(), s.client());

    // A reader goes away: the writer behind it is granted.
    rw_grant(&r.req("rl", "k", "0"));
    w.send_req("wl", "k", "30");
    wait_rw_waiters(&mut st, "k", 1);
    drop(r);
    rw_grant(&w.line());
    assert_eq!(rw_state(&mut st, "k"), Some((0, true, 0)));

    // The writer goes away: the readers behind it are granted together.
    r2.send_req("rl", "k", "30");
    wait_rw_waiters(&mut st, "k", 1);
    r3.send_req("rl", "k", "30");
    wait_rw_waiters(&mut st, "k", 2);
    drop(w);
    rw_grant(&r2.line());
    rw_grant(&r3.line());
    assert_eq!(rw_state(&mut st, "k"), Some((2, false, 0)));
    drop(r2);
    drop(r3);
    wait_until("the rw lock to be free", || idle_lock(&st.stats(), "k"));
    assert!(st.stats().get("rw_locks").arr().is_empty());
}

#[test]
fn holding_leadership() {
    let s = Server::start(&[]);
    let (mut a, mut b, mut o) = (s.client(), s.client(), s.client());
    assert_eq!(o.req("observe", "lead", ""), "ok");
    rw_grant(&a.req("elect", "lead", "0"));
    assert_eq!(a.line(), "leader elected lead");
    assert_eq!(o.line(), "leader elected lead");
    b.send_req("elect", "lead", "30");
    o.wait_lock_waiters("lead", 1);
    drop(a);
    assert_eq!(b.line(), "leader failover lead");
    rw_grant(&b.line());
    assert_eq!(b.line(), "leader elected lead");
    assert_eq!(o.line(), "leader failover lead");
    assert_eq!(o.line(), "leader elected lead");
    let (leader, observers, candidates) = election(&mut o, "lead").unwrap();
    assert!(leader > 0);
    assert_eq!((observers, candidates), (1, 0));
}

#[test]
fn waiting_on_a_lock_and_a_two_phase_enqueue() {
    let s = Server::start(&[]);
    let (mut a, mut b, mut c, mut st) = (s.client(), s.client(), s.client(), s.client());
    let ta = token_of(&a.req("l", "k", "0"));
    b.send_req("l", "k", "30");
    st.wait_lock_waiters("k", 1);
    assert_eq!(c.req("e", "k", ""), "queued");
    st.wait_lock_waiters("k", 2);
    drop(b);
    st.wait_lock_waiters("k", 1);
    drop(c);
    st.wait_lock_waiters("k", 0);
    assert_eq!(a.req("r", "k", &ta), "ok");
    let stats = st.stats();
    assert!(idle_lock(&stats, "k"), "nobody was granted: {stats:?}");
    assert!(stats.get("locks").arr().is_empty());
}

#[test]
fn waiting_on_a_semaphore() {
    let s = Server::start(&[]);
    let (mut a, mut b, mut st) = (s.client(), s.client(), s.client());
    let ta = token_of(&a.req("sl", "s", "0 1"));
    b.send_req("sl", "s", "30 1");
    st.wait_sem_waiters("s", 1);
    drop(b);
    st.wait_sem_waiters("s", 0);
    assert_eq!(a.req("sr", "s", &ta), "ok");
    assert!(st.stats().entry("idle_semaphores", "s").is_some());
}

#[test]
fn waiting_writer_leaves_and_readers_behind_it_are_granted() {
    let s = Server::start(&[]);
    let (mut a, mut w, mut r, mut st) = (s.client(), s.client(), s.client(), s.client());
    rw_grant(&a.req("rl", "k", "0"));
    w.send_req("wl", "k", "30");
    wait_rw_waiters(&mut st, "k", 1);
    r.send_req("rl", "k", "30");
    wait_rw_waiters(&mut st, "k", 2);
    let start = Instant::now();
    drop(w);
    rw_grant(&r.line());
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(rw_state(&mut st, "k"), Some((2, false, 0)));
}

#[test]
fn waiting_candidate() {
    let s = Server::start(&[]);
    let (mut a, mut b, mut st) = (s.client(), s.client(), s.client());
    rw_grant(&a.req("elect", "e", "0"));
    assert_eq!(a.line(), "leader elected e");
    b.send_req("elect", "e", "30");
    st.wait_lock_waiters("e", 1);
    assert_eq!(election(&mut st, "e").map(|e| e.2), Some(1));
    drop(b);
    st.wait_lock_waiters("e", 0);
    assert_eq!(election(&mut st, "e").map(|e| e.2), Some(0));
    a.expect_nothing_for(Duration::from_millis(50));
}

#[test]
fn waiting_in_blpop() {
    let s = Server::start(&[]);
    let (mut a, mut st) = (s.client(), s.client());
    a.send_req("blpop", "q", "30");
    wait_until("popper parked", || {
        st.stats()
            .entry("lists", "q")
            .is_some_and(|e| e.get("pop_waiters").u64() == 1)
    });
    drop(a);
    wait_until("popper gone", || st.stats().entry("lists", "q").is_none());
    assert_eq!(st.req("rpush", "q", "v"), "ok 1");
    assert_eq!(st.req("llen", "q", ""), "ok 1");
}

#[test]
fn waiting_at_a_barrier() {
    let s = Server::start(&[]);
    let (mut a, mut b, mut st) = (s.client(), s.client(), s.client());
    a.send_req("bwait", "bar", "3 30");
    b.send_req("bwait", "bar", "3 30");
    wait_until("two participants", || {
        st.stats()
            .entry("barriers", "bar")
            .is_some_and(|e| e.get("participants").u64() == 2)
    });
    drop(b);
    assert_eq!(a.line(), "timeout");
    assert!(st.stats().get("barriers").arr().is_empty());
}

#[test]
fn observing_subscribed_and_watching() {
    let s = Server::start(&[]);
    let (mut a, mut st) = (s.client(), s.client());
    assert_eq!(a.req("observe", "o", ""), "ok");
    assert_eq!(a.req("listen", "ch.>", ""), "ok");
    assert_eq!(a.req("listen", "ch.x", "g"), "ok");
    assert_eq!(a.req("watch", "w.*", ""), "ok");
    let stats = st.stats();
    assert_eq!(stats.get("elections").arr().len(), 1);
    assert_eq!(stats.get("signal_channels").arr().len(), 2);
    assert_eq!(stats.get("watch_channels").arr().len(), 1);
    assert_eq!(stats.get("connections").u64(), 2);
    drop(a);
    wait_until("every registration to go", || {
        let stats = st.stats();
        stats.get("elections").arr().is_empty()
            && stats.get("signal_channels").arr().is_empty()
            && stats.get("watch_channels").arr().is_empty()
            && stats.get("connections").u64() == 1
    });
    assert_eq!(st.req("signal", "ch.x", "p"), "ok 0");
}

#[test]
fn without_auto_release_holders_stay_until_their_lease_ends_but_waiters_go() {
    let s = Server::start(&["--no-auto-release-on-disconnect"]);
    let (mut a, mut b, mut c, mut st) = (s.client(), s.client(), s.client(), s.client());
    token_of(&a.req("l", "k", "0 1"));
    let start = Instant::now();
    c.send_req("l", "k", "30");
    st.wait_lock_waiters("k", 1);
    drop(c);
    st.wait_lock_waiters("k", 0);
    drop(a);
    b.send_req("l", "k", "30");
    st.wait_lock_waiters("k", 1);
    expect_grant(&b.line(), 33);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(1000),
        "released early: {waited:?}"
    );
}

#[test]
fn end_of_input_cancels_a_blocking_command_without_a_reply() {
    let s = Server::start(&[]);
    let (mut a, mut b, mut st) = (s.client(), s.client(), s.client());
    let ta = token_of(&a.req("l", "k", "0"));
    b.send(b"l\nk\n30\nping\n_\n\n");
    b.shutdown_write();
    b.expect_closed();
    assert_eq!(st.lock_waiters("k"), 0);
    assert_eq!(a.req("r", "k", &ta), "ok");
    assert!(idle_lock(&st.stats(), "k"));
}
