//! Deadlock detection (protocol.md §8.15, http.md §6.2a) against a real
//! server: a request that would close a wait-for cycle is refused at once
//! with `error_deadlock` (HTTP `409 deadlock`) when its owner turned
//! `opt deadlock on`, changes nothing, and is counted in `stats`; without
//! the option, or without a cycle, it waits as before.

use crate::common;
use crate::http_common;

use common::{Client, Server, token_of};
use http_common::Api;
use std::time::{Duration, Instant};

fn detecting(s: &Server) -> Client {
    let mut c = s.client();
    assert_eq!(c.req("opt", "deadlock", "on"), "ok");
    c
}

fn refused(c: &mut Client) -> u64 {
    c.stats()
        .get("server")
        .get("totals")
        .get("deadlocks_refused")
        .u64()
}

#[test]
fn two_cycle_is_refused_at_once_and_changes_nothing() {
    let s = Server::start(&[]);
    let mut a = s.client();
    let mut b = detecting(&s);
    let ta = token_of(&a.req("l", "k1", "0"));
    let tb = token_of(&b.req("l", "k2", "0"));
    // A waits for B (parked): no cycle yet.
    a.send_req("l", "k2", "30");
    b.wait_lock_waiters("k2", 1);
    // B asking for k1 would wait for A, which waits for B.
    let start = Instant::now();
    assert_eq!(b.req("l", "k1", "30"), "error_deadlock");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(
        b.lock_waiters("k1"),
        0,
        "the refused request joined a queue"
    );
    assert_eq!(refused(&mut b), 1);
    // B still holds k2 and its connection is fine; releasing it lets A in.
    assert_eq!(b.req("r", "k2", &tb), "ok");
    let t2 = token_of(&a.line());
    assert_eq!(a.req("r", "k2", &t2), "ok");
    assert_eq!(a.req("r", "k1", &ta), "ok");
}

#[test]
fn without_the_option_a_cycle_waits_until_its_timeout() {
    let s = Server::start(&[]);
    let mut a = s.client();
    let mut b = s.client();
    token_of(&a.req("l", "k1", "0"));
    token_of(&b.req("l", "k2", "0"));
    a.send_req("l", "k2", "30");
    b.wait_lock_waiters("k2", 1);
    let start = Instant::now();
    assert_eq!(b.req("l", "k1", "1"), "timeout");
    assert!(start.elapsed() >= Duration::from_millis(900));
    assert_eq!(refused(&mut b), 0);
}

#[test]
fn no_cycle_no_refusal() {
    let s = Server::start(&[]);
    let mut a = s.client();
    let mut b = s.client();
    let mut c = detecting(&s);
    token_of(&a.req("l", "k1", "0"));
    let tb = token_of(&b.req("l", "k2", "0"));
    // A waits for B; C (holding nothing) waits for A: a chain, no cycle.
    a.send_req("l", "k2", "30");
    b.wait_lock_waiters("k2", 1);
    c.send_req("l", "k1", "30");
    b.wait_lock_waiters("k1", 1);
    assert_eq!(refused(&mut b), 0);
    assert_eq!(b.req("r", "k2", &tb), "ok");
    let t = token_of(&a.line());
    assert_eq!(a.req("r", "k2", &t), "ok");
    // Asking again for a key one holds is the shortest cycle.
    let mut d = detecting(&s);
    token_of(&d.req("l", "mine", "0"));
    assert_eq!(d.req("l", "mine", "5"), "error_deadlock");
    // A try-lock never waits, so it is never refused.
    assert_eq!(d.req("l", "mine", "0"), "timeout");
}

/// A holds an exclusive lock, B a semaphore permit, C a write lock; A waits
/// for the semaphore, B for a read lock (parked or two-phase queued), and C
/// asking for A's lock closes a 3-cycle across the three lock types.
#[test]
fn three_cycle_across_lock_semaphore_and_rw_lock() {
    for two_phase in [false, true] {
        let s = Server::start(&[]);
        let mut a = s.client();
        let mut b = s.client();
        let mut c = detecting(&s);
        let ta = token_of(&a.req("l", "x", "0"));
        token_of(&b.req("sl", "s", "0 1"));
        let tc = token_of(&c.req("wl", "rw", "0"));
        a.send_req("sl", "s", "30 1");
        b.wait_sem_waiters("s", 1);
        if two_phase {
            assert_eq!(b.req("re", "rw", ""), "queued");
        } else {
            b.send_req("rl", "rw", "30");
            common::wait_until("B parked on rw", || {
                c.stats()
                    .entry("rw_locks", "rw")
                    .map(|e| e.get("waiters").u64())
                    == Some(1)
            });
        }
        assert_eq!(
            c.req("l", "x", "30"),
            "error_deadlock",
            "two_phase {two_phase}"
        );
        // Two-phase: the wait of an enqueue that closes the cycle is refused
        // too, and the enqueue stays queued.
        let mut d = detecting(&s);
        assert_eq!(d.req("e", "x", ""), "queued");
        assert_eq!(d.req("pos", "x", ""), "ok 1");
        assert_eq!(refused(&mut d), 1);
        // C lets go: B gets its read lock, then nothing is stuck.
        assert_eq!(c.req("wr", "rw", &tc), "ok");
        if two_phase {
            token_of(&b.req("rw", "rw", "5"));
        } else {
            token_of(&b.line());
        }
        // B leaves, releasing its permit: A, parked on it, gets it.
        drop(b);
        token_of(&a.line());
        assert_eq!(a.req("r", "x", &ta), "ok");
        assert_eq!(d.req("pos", "x", ""), "ok 0");
    }
}

#[test]
fn wait_after_enqueue_is_refused_when_it_closes_a_cycle() {
    let s = Server::start(&[]);
    let mut a = s.client();
    let mut b = detecting(&s);
    token_of(&a.req("l", "k1", "0"));
    let tb = token_of(&b.req("l", "k2", "0"));
    // Both enqueue on the other's key: the cycle exists among queued
    // enqueues; B's wait is what would block on it.
    assert_eq!(a.req("e", "k2", ""), "queued");
    assert_eq!(b.req("e", "k1", ""), "queued");
    assert_eq!(b.req("w", "k1", "30"), "error_deadlock");
    // Nothing changed: B is still queued on k1 (position 1).
    assert_eq!(b.req("pos", "k1", ""), "ok 1");
    // Without the option the wait just waits (here: times out at once).
    assert_eq!(b.req("opt", "deadlock", "off"), "ok");
    assert_eq!(b.req("w", "k1", "0"), "timeout");
    assert_eq!(b.req("r", "k2", &tb), "ok");
    assert_eq!(a.req("pos", "k2", ""), "ok 0");
}

#[test]
fn http_deadlock_is_409() {
    let (s, addr) = http_common::start(&[]);
    let api = Api::new(addr);
    let sid = api.session();
    api.patch(
        &format!("/v1/sessions/{sid}"),
        r#"{"options":{"deadlock":true}}"#,
    )
    .expect(
        200,
        r#"{"options":{"queue_position":false,"lease_notices":false,"deadlock":true}}"#,
    );
    let t = api.lock(&sid, "k1", 0).token();
    let mut a = s.client();
    token_of(&a.req("l", "k2", "0"));
    a.send_req("l", "k1", "30");
    a_wait(&mut s.client(), "k1");
    api.lock(&sid, "k2", 30).expect_error(409, "deadlock");
    // Two-phase: enqueue, then the wait is refused.
    api.post_s("/v1/locks/k2/enqueue", &sid, "")
        .expect(200, r#"{"status":"queued"}"#);
    api.post_s("/v1/locks/k2/wait", &sid, r#"{"timeout_s":30}"#)
        .expect_error(409, "deadlock");
    api.unlock(&sid, "k1", &t);
    token_of(&a.line());
}

fn a_wait(c: &mut Client, key: &str) {
    c.wait_lock_waiters(key, 1);
}
