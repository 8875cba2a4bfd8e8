//! Semaphores (`sl sr sn se sw`) against the real server: protocol.md §7.2,
//! §7.3, §8.5, §8.6 and the `semaphores` member of `stats` (§10).

use crate::common;

use common::*;
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn limit_admits_exactly_n_and_queues_the_rest() {
    let server = Server::start(&[]);
    let mut observer = server.client();
    let mut holders: Vec<Client> = (0..3).map(|_| server.client()).collect();
    let mut tokens = Vec::new();
    for h in &mut holders {
        tokens.push(expect_grant(&h.req("sl", "pool", "0 3"), 33));
    }
    for pair in tokens.windows(2) {
        assert_eq!(fence_of(&pair[1]), fence_of(&pair[0]) + 1);
    }

    let mut d = server.client();
    assert_eq!(d.req("sl", "pool", "0 3"), "timeout");
    let stats = observer.stats();
    let entry = stats.entry("semaphores", "pool").expect("pool listed");
    assert_eq!(entry.get("limit").u64(), 3);
    assert_eq!(entry.get("holders").u64(), 3);
    assert_eq!(entry.get("waiters").u64(), 0);

    d.send(b"sl\npool\n10 3 60\n");
    observer.wait_sem_waiters("pool", 1);
    let mut e = server.client();
    assert_eq!(e.req("sl", "pool", "0 3"), "timeout");

    // A release and a try in one write: the freed permit goes to the queued
    // waiter D, never to the try behind the release (no barging).
    holders[1].send(format!("sr\npool\n{}\nsl\npool\n0 3\n", tokens[1]).as_bytes());
    assert_eq!(holders[1].line(), "ok");
    assert_eq!(holders[1].line(), "timeout");
    let d_token = expect_grant(&d.line(), 60);
    assert_eq!(fence_of(&d_token), fence_of(&tokens[2]) + 1);
    let stats = observer.stats();
    let entry = stats.entry("semaphores", "pool").expect("pool listed");
    assert_eq!(entry.get("holders").u64(), 3);
    assert_eq!(entry.get("waiters").u64(), 0);
    assert_eq!(e.req("sl", "pool", "0 3"), "timeout");

    // A parked waiter that times out leaves the queue.
    let start = Instant::now();
    assert_eq!(e.req("sl", "pool", "1 3"), "timeout");
    assert!(secs_since(start) >= 1.0);
    assert_eq!(observer.sem_waiters("pool"), 0);
}

#[test]
fn spec_example_with_limit_mismatch() {
    let server = Server::start(&[]);
    let mut a = server.client();
    let mut b = server.client();
    let mut c = server.client();

    let a_token = expect_grant(&a.req("sl", "pool", "0 2"), 33);
    expect_grant(&b.req("sl", "pool", "0 2"), 33);
    assert_eq!(c.req("sl", "pool", "0 2"), "timeout");
    assert_eq!(c.req("sl", "pool", "0 3"), "error_limit_mismatch");
    assert_eq!(c.req("sl", "pool", "5 1"), "error_limit_mismatch");
    assert_eq!(c.req("se", "pool", "3"), "error_limit_mismatch");
    assert_eq!(a.req("sr", "pool", &a_token), "ok");
    // Still in use by B: the limit is still 2.
    assert_eq!(c.req("sl", "pool", "0 3"), "error_limit_mismatch");
    expect_grant(&c.req("sl", "pool", "0 2 60"), 60);
}

#[test]
fn limit_is_fixed_only_while_in_use() {
    let server = Server::start(&[]);
    let mut c = server.client();

    let t1 = expect_grant(&c.req("sl", "s", "0 2"), 33);
    let t2 = expect_grant(&c.req("sl", "s", "0 2"), 33);
    assert_eq!(c.req("sl", "s", "0 5"), "error_limit_mismatch");
    assert_eq!(c.req("sr", "s", &t1), "ok");
    assert_eq!(c.req("sr", "s", &t2), "ok");

    let stats = c.stats();
    assert!(stats.entry("semaphores", "s").is_none());
    assert_eq!(stats.keys("idle_semaphores"), vec!["s"]);

    // Not in use: the next acquirer's limit becomes the limit.
    expect_grant(&c.req("sl", "s", "0 5"), 33);
    let stats = c.stats();
    let entry = stats.entry("semaphores", "s").expect("s listed");
    assert_eq!(entry.get("limit").u64(), 5);
    assert_eq!(entry.get("holders").u64(), 1);
    assert_eq!(c.req("sl", "s", "0 2"), "error_limit_mismatch");
}

#[test]
fn limit_one_is_listed_under_semaphores() {
    let server = Server::start(&[]);
    let mut c = server.client();

    let token = expect_grant(&c.req("sl", "solo", "0 1"), 33);
    assert_eq!(c.req("sl", "solo", "0 1"), "timeout");
    let stats = c.stats();
    let entry = stats.entry("semaphores", "solo").expect("solo listed");
    assert_eq!(entry.get("limit").u64(), 1);
    assert_eq!(entry.get("holders").u64(), 1);
    assert!(stats.entry("locks", "solo").is_none());
    assert!(stats.get("idle_locks").arr().is_empty());

    assert_eq!(c.req("sr", "solo", &token), "ok");
    let stats = c.stats();
    assert!(stats.get("semaphores").arr().is_empty());
    assert_eq!(stats.keys("idle_semaphores"), vec!["solo"]);
    assert!(stats.get("idle_locks").arr().is_empty());
}

#[test]
fn two_phase_semaphore_enqueue_and_wait() {
    let server = Server::start(&[]);
    let mut a = server.client();
    let mut b = server.client();
    let mut c = server.client();
    let mut observer = server.client();

    let reply = a.req("se", "p", "2");
    let a_token = token_of(&reply);
    assert_eq!(reply, format!("acquired {a_token} 33"));
    assert_eq!(a.req("se", "p", "2"), "error_already_enqueued");
    let reply = b.req("se", "p", "2 60");
    let b_token = token_of(&reply);
    assert_eq!(reply, format!("acquired {b_token} 60"));
    assert_eq!(c.req("se", "p", "2 45"), "queued");
    assert_eq!(c.req("se", "p", "2 45"), "error_already_enqueued");
    assert_eq!(observer.sem_waiters("p"), 1);

    // The waits of acquired enqueues return their own tokens.
    assert_eq!(a.req("sw", "p", "5"), format!("ok {a_token} 33"));
    assert_eq!(a.req("sw", "p", "5"), "error_not_enqueued");
    // An exclusive wait does not complete a semaphore enqueue, and leaves it alone.
    assert_eq!(b.req("w", "p", "5"), "error_not_enqueued");
    assert_eq!(b.req("sw", "p", "0"), format!("ok {b_token} 60"));

    // C parks in its wait and is granted by A's release.
    c.send(b"sw\np\n10\n");
    c.expect_nothing_for(Duration::from_millis(100));
    assert_eq!(a.req("sr", "p", &a_token), "ok");
    let c_token = expect_grant(&c.line(), 45);
    assert!(fence_of(&c_token) > fence_of(&b_token));
    assert_eq!(observer.sem_waiters("p"), 0);

    assert_eq!(observer.req("sw", "never", "1"), "error_not_enqueued");
}

#[test]
fn semaphore_wait_timeout_zero_leaves_the_queue() {
    let server = Server::start(&[]);
    let mut a = server.client();
    let mut b = server.client();

    let token = expect_grant(&a.req("sl", "s", "0 1"), 33);
    assert_eq!(b.req("se", "s", "1"), "queued");
    assert_eq!(a.sem_waiters("s"), 1);
    assert_eq!(b.req("sw", "s", "0"), "timeout");
    assert_eq!(a.sem_waiters("s"), 0);
    assert_eq!(b.req("sw", "s", "0"), "error_not_enqueued");
    assert_eq!(a.req("sr", "s", &token), "ok");
    let stats = a.stats();
    assert!(stats.get("semaphores").arr().is_empty(), "nobody holds s");
}

#[test]
fn renew_and_release() {
    let server = Server::start(&[]);
    let mut a = server.client();
    let mut b = server.client();

    let token = expect_grant(&a.req("sl", "s", "0 2 10"), 10);
    assert_eq!(a.req("sn", "s", &token), "ok 33");
    assert_eq!(a.req("sn", "s", &format!("{token} 7")), "ok 7");
    // Any connection may renew and release.
    assert_eq!(b.req("sn", "s", &format!("{token} 8")), "ok 8");
    // The lock commands do not see semaphore tokens.
    assert_eq!(b.req("n", "s", &token), "error");
    assert_eq!(b.req("r", "s", &token), "error");
    assert_eq!(b.req("sr", "s", &token), "ok");
    assert_eq!(b.req("sr", "s", &token), "error");
    assert_eq!(b.req("sn", "s", &token), "error");
    assert_eq!(
        b.req("sn", "s", "ffffffffffffffff0000000000000000"),
        "error"
    );
    assert_eq!(
        b.req("sr", "nokey", "ffffffffffffffff0000000000000000"),
        "error"
    );

    // An expired permit: renew reports it, release is an error, the slot is free.
    let short = expect_grant(&a.req("sl", "t", "0 1 1"), 1);
    assert_eq!(b.req("sl", "t", "0 1"), "timeout");
    thread::sleep(Duration::from_millis(1200));
    assert_eq!(a.req("sn", "t", &short), "error_lease_expired");
    assert_eq!(a.req("sr", "t", &short), "error");
    expect_grant(&b.req("sl", "t", "0 1"), 33);
}

#[test]
fn semaphore_argument_validation() {
    let server = Server::start(&[]);
    let mut c = server.client();
    for arg in [
        "0",
        "",
        "0 0",
        "0 1048577",
        "0 1 0",
        "0 1 1 1",
        "-1 1",
        "0 x",
    ] {
        assert_eq!(c.req("sl", "s", arg), "error", "sl argument {arg:?}");
    }
    for arg in ["", "0", "1048577", "1 0", "1 1 1"] {
        assert_eq!(c.req("se", "s", arg), "error", "se argument {arg:?}");
    }
    assert_eq!(c.req("sr", "s", ""), "error");
    assert_eq!(c.req("sn", "s", ""), "error");
    assert_eq!(c.req("sw", "s", ""), "error");
    expect_grant(&c.req("sl", "s", "0 1048576"), 33);
    assert_eq!(c.req("ping", "_", ""), "ok");
}

#[test]
fn fence_field_on_semaphore_replies() {
    let server = Server::start(&["--fence-field"]);
    let mut a = server.client();
    let mut b = server.client();

    let reply = a.req("sl", "s", "0 1 20");
    let token = token_of(&reply);
    let fence = fence_of(&token);
    assert_eq!(reply, format!("ok {token} 20 {fence}"));
    assert_eq!(a.req("sn", "s", &token), format!("ok 33 {fence}"));

    let reply = b.req("se", "p", "1");
    let p_token = token_of(&reply);
    assert_eq!(
        reply,
        format!("acquired {p_token} 33 {}", fence_of(&p_token))
    );
    assert_eq!(
        b.req("sw", "p", "1"),
        format!("ok {p_token} 33 {}", fence_of(&p_token))
    );
}
