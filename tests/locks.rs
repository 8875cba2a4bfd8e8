//! Exclusive locks (`l r n e w`) and two-phase enqueue/wait against the real
//! server: protocol.md §6, §7, §8.4, §8.6 and the lock-related flags of
//! config.md §3.2, §3.3, §3.6.

use crate::common;

use common::*;
use std::thread;
use std::time::{Duration, Instant};

/// A fresh, unknown but well-formed token.
const UNKNOWN_TOKEN: &str = "ffffffffffffffff0000000000000000";

#[test]
fn grant_reply_shape_and_default_lease() {
    let server = Server::start(&[]);
    let mut c = server.client();

    let reply = c.req("l", "build", "10");
    let token = expect_grant(&reply, 33);
    let reply = c.req("l", "my-key", "10 60");
    let other = expect_grant(&reply, 60);
    assert_ne!(token[16..], other[16..], "salts must differ");
    assert!(fence_of(&other) > fence_of(&token));

    // Renewals: explicit lease, then the default (not the original lease).
    assert_eq!(c.req("n", "my-key", &format!("{other} 120")), "ok 120");
    assert_eq!(c.req("n", "my-key", &other), "ok 33");

    assert_eq!(c.req("r", "my-key", &other), "ok");
    assert_eq!(c.req("r", "my-key", &other), "error");
    assert_eq!(c.req("r", "build", &token), "ok");

    // A custom default lease applies to grants and renewals that name none.
    let server = Server::start(&["--default-lease-ttl", "7"]);
    let mut c = server.client();
    let token = expect_grant(&c.req("l", "k", "0"), 7);
    assert_eq!(c.req("n", "k", &format!("{token} 9")), "ok 9");
    assert_eq!(c.req("n", "k", &token), "ok 7");
}

#[test]
fn try_lock_on_held_key_times_out_and_parked_waiter_times_out() {
    let server = Server::start(&[]);
    let mut a = server.client();
    let mut b = server.client();
    expect_grant(&a.req("l", "job", "0"), 33);
    assert_eq!(b.req("l", "job", "0"), "timeout");

    let start = Instant::now();
    assert_eq!(b.req("l", "job", "1"), "timeout");
    let waited = secs_since(start);
    // Never before the deadline (§2.9); the clock starts after our write.
    assert!((1.0..2.0).contains(&waited), "parked for {waited:.3} s");
    // The timed-out waiter left the queue.
    assert_eq!(a.lock_waiters("job"), 0);
}

#[test]
fn fifo_order_with_fifty_waiters() {
    const N: usize = 50;
    let server = Server::start(&[]);
    let mut observer = server.client();
    let mut holder = server.client();
    let first = expect_grant(&holder.req("l", "k", "0"), 33);

    let mut waiters = Vec::new();
    for i in 0..N {
        let mut w = server.client();
        w.send(b"l\nk\n30\n");
        // Arrival order is deterministic: the next waiter connects only once
        // this one is visibly queued.
        observer.wait_lock_waiters("k", i as u64 + 1);
        waiters.push(w);
    }

    assert_eq!(holder.req("r", "k", &first), "ok");
    let mut last_fence = fence_of(&first);
    for (i, w) in waiters.iter_mut().enumerate() {
        // The head of the queue, and only it, is granted.
        let reply = w.line();
        let token = expect_grant(&reply, 33);
        let fence = fence_of(&token);
        assert_eq!(fence, last_fence + 1, "waiter {i}: fences are consecutive");
        last_fence = fence;
        assert_eq!(observer.lock_waiters("k"), (N - 1 - i) as u64);
        assert_eq!(w.req("r", "k", &token), "ok");
    }
    // Nobody got a second reply.
    for w in &mut waiters {
        w.expect_nothing_for(Duration::from_millis(1));
    }
}

#[test]
fn no_barging_while_waiters_queue() {
    let server = Server::start(&[]);
    let mut a = server.client();
    let mut b = server.client();
    let mut c = server.client();
    let mut observer = server.client();

    let token = expect_grant(&a.req("l", "k", "0"), 33);
    b.send(b"l\nk\n30\n");
    observer.wait_lock_waiters("k", 1);
    assert_eq!(c.req("l", "k", "0"), "timeout");

    // Release and an immediate try-lock in one write: the freed slot goes to
    // the queued waiter B, never to the try-lock behind the release.
    a.send(format!("r\nk\n{token}\nl\nk\n0\n").as_bytes());
    assert_eq!(a.line(), "ok");
    assert_eq!(a.line(), "timeout");
    let b_token = expect_grant(&b.line(), 33);
    assert!(fence_of(&b_token) > fence_of(&token));

    // A queued two-phase enqueue blocks try-locks too.
    c.send(b"e\nk\n\n");
    assert_eq!(c.line(), "queued");
    b.send(format!("r\nk\n{b_token}\n").as_bytes());
    assert_eq!(b.line(), "ok");
    assert_eq!(a.req("l", "k", "0"), "timeout", "C was granted, not A");
    let c_reply = c.req("w", "k", "0");
    expect_grant(&c_reply, 33);
}

#[test]
fn lease_expiry_hands_over_never_early() {
    let server = Server::start(&[]);
    let mut a = server.client();
    let mut b = server.client();

    // The server grants after `sent` and before `granted`, so a lease that
    // never expires early hands over at least 1 s after `sent`.
    let sent = Instant::now();
    let reply = a.req("l", "k", "0 1");
    let granted = Instant::now();
    let token = expect_grant(&reply, 1);
    b.send(b"l\nk\n10\n");
    let b_token = expect_grant(&b.line(), 33);
    let since_sent = secs_since(sent);
    let since_granted = secs_since(granted);
    assert!(
        since_sent >= 1.0 && since_granted >= 0.9,
        "waiter granted {since_sent:.3} s after the 1 s lease was requested"
    );
    assert!(
        since_granted <= 1.5,
        "waiter granted {since_granted:.3} s after a 1 s lease was granted"
    );
    assert_eq!(fence_of(&b_token), fence_of(&token) + 1);

    // The expired token is remembered: renew says so, release is a plain error.
    assert_eq!(a.req("n", "k", &token), "error_lease_expired");
    assert_eq!(a.req("r", "k", &token), "error");
    assert_eq!(a.req("n", "k", &b_token), "ok 33");
}

#[test]
fn renew_keeps_a_short_lease_alive_then_expires() {
    let server = Server::start(&[]);
    let mut a = server.client();
    let mut b = server.client();

    let token = expect_grant(&a.req("l", "k", "0 1"), 1);
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(2500) {
        thread::sleep(Duration::from_millis(400));
        assert_eq!(a.req("n", "k", &format!("{token} 1")), "ok 1");
        assert_eq!(
            b.req("l", "k", "0"),
            "timeout",
            "lease lapsed while renewed"
        );
    }
    let stats = b.stats();
    let entry = stats.entry("locks", "k").expect("lock listed");
    assert_eq!(entry.get("fence").u64(), fence_of(&token));
    let left = entry.get("lease_expires_in_s").f64();
    assert!(left > 0.0 && left <= 1.05, "lease_expires_in_s {left}");

    thread::sleep(Duration::from_millis(1300));
    assert_eq!(
        a.req("n", "k", &format!("{token} 1")),
        "error_lease_expired"
    );
    assert_eq!(a.req("n", "k", &token), "error_lease_expired");
    expect_grant(&b.req("l", "k", "0"), 33);
}

#[test]
fn unknown_tokens_are_errors() {
    let server = Server::start(&[]);
    let mut c = server.client();

    // No such key.
    assert_eq!(c.req("n", "nokey", UNKNOWN_TOKEN), "error");
    assert_eq!(c.req("r", "nokey", UNKNOWN_TOKEN), "error");

    let token = expect_grant(&c.req("l", "k", "0"), 33);
    let other = expect_grant(&c.req("l", "other", "0"), 33);
    // Existing key, token never issued.
    assert_eq!(c.req("n", "k", UNKNOWN_TOKEN), "error");
    assert_eq!(c.req("r", "k", UNKNOWN_TOKEN), "error");
    // Uppercase spelling of a real token never matches.
    assert_eq!(c.req("r", "k", &token.to_uppercase()), "error");
    // A token of another key.
    assert_eq!(c.req("r", "k", &other), "error");
    assert_eq!(c.req("n", "k", &other), "error");
    // A released token is unknown, not expired.
    assert_eq!(c.req("r", "k", &token), "ok");
    assert_eq!(c.req("n", "k", &token), "error");
    assert_eq!(c.req("r", "k", &token), "error");
}

#[test]
fn release_and_renew_from_another_connection() {
    let server = Server::start(&[]);
    let mut a = server.client();
    let mut b = server.client();
    let mut c = server.client();

    let token = expect_grant(&a.req("l", "k", "0"), 33);
    assert_eq!(b.req("n", "k", &format!("{token} 50")), "ok 50");
    assert_eq!(b.req("r", "k", &token), "ok");
    expect_grant(&c.req("l", "k", "0"), 33);
    assert_eq!(a.req("r", "k", &token), "error");
}

#[test]
fn two_phase_example_of_the_spec() {
    let server = Server::start(&[]);
    let mut a = server.client();
    let mut b = server.client();
    let mut observer = server.client();

    let reply = a.req("e", "job", "");
    let a_token = token_of(&reply);
    assert_eq!(reply, format!("acquired {a_token} 33"));
    assert_eq!(b.req("e", "job", "60"), "queued");
    assert_eq!(b.req("e", "job", "60"), "error_already_enqueued");
    assert_eq!(a.req("w", "job", "5"), format!("ok {a_token} 33"));
    assert_eq!(a.req("w", "job", "5"), "error_not_enqueued");
    assert_eq!(observer.lock_waiters("job"), 1);

    assert_eq!(a.req("r", "job", &a_token), "ok");
    // B is the holder now, before its wait: no waiters, a holder with a fence.
    let stats = observer.stats();
    let entry = stats.entry("locks", "job").expect("job listed");
    assert_eq!(entry.get("waiters").u64(), 0);
    let b_fence = entry.get("fence").u64();
    assert!(b_fence > fence_of(&a_token));
    assert_ne!(entry.get("owner_conn_id").u64(), 0);
    // B's lease already runs (60 s).
    let left = entry.get("lease_expires_in_s").f64();
    assert!(left > 55.0 && left <= 60.05, "lease_expires_in_s {left}");
    assert_eq!(observer.req("l", "job", "0"), "timeout");

    let reply = b.req("w", "job", "10");
    let b_token = expect_grant(&reply, 60);
    assert_eq!(fence_of(&b_token), b_fence);
    assert_ne!(b_token, a_token);

    assert_eq!(
        observer.req("w", "never-enqueued", "5"),
        "error_not_enqueued"
    );
}

#[test]
fn wait_with_timeout_zero_while_queued_leaves_the_queue() {
    let server = Server::start(&[]);
    let mut a = server.client();
    let mut b = server.client();
    let mut c = server.client();

    let token = expect_grant(&a.req("l", "k", "0"), 33);
    assert_eq!(b.req("e", "k", ""), "queued");
    assert_eq!(c.lock_waiters("k"), 1);
    assert_eq!(b.req("w", "k", "0"), "timeout");
    assert_eq!(c.lock_waiters("k"), 0);
    assert_eq!(b.req("w", "k", "0"), "error_not_enqueued");

    // With nobody queued, the release leaves the key free.
    assert_eq!(a.req("r", "k", &token), "ok");
    expect_grant(&c.req("l", "k", "0"), 33);

    // A parked wait that times out also leaves the queue.
    assert_eq!(b.req("e", "k", ""), "queued");
    let start = Instant::now();
    assert_eq!(b.req("w", "k", "1"), "timeout");
    assert!(secs_since(start) >= 1.0);
    assert_eq!(c.lock_waiters("k"), 0);
    // A new enqueue is possible again.
    assert_eq!(b.req("e", "k", ""), "queued");
}

#[test]
fn parked_wait_is_granted_on_release() {
    let server = Server::start(&[]);
    let mut a = server.client();
    let mut b = server.client();
    let mut observer = server.client();

    let token = expect_grant(&a.req("l", "k", "0"), 33);
    assert_eq!(b.req("e", "k", "7"), "queued");
    b.send(b"w\nk\n10\n");
    observer.wait_lock_waiters("k", 1);
    assert_eq!(a.req("r", "k", &token), "ok");
    let b_token = expect_grant(&b.line(), 7);
    assert_eq!(fence_of(&b_token), fence_of(&token) + 1);
}

#[test]
fn enqueue_after_a_lapsed_grant() {
    let server = Server::start(&[]);
    let mut a = server.client();

    let reply = a.req("e", "k", "1");
    let first = token_of(&reply);
    assert_eq!(reply, format!("acquired {first} 1"));
    let reply = a.req("e", "k2", "1");
    let lapsed = token_of(&reply);
    assert_eq!(reply, format!("acquired {lapsed} 1"));
    thread::sleep(Duration::from_millis(1300));

    // The old state's grant lost its lease: the enqueue starts over.
    let reply = a.req("e", "k", "1");
    let second = token_of(&reply);
    assert_eq!(reply, format!("acquired {second} 1"));
    assert!(fence_of(&second) > fence_of(&first));
    assert_eq!(a.req("w", "k", "5"), format!("ok {second} 1"));

    // A wait on a lapsed grant reports it and consumes the state.
    assert_eq!(a.req("w", "k2", "5"), "error_lease_expired");
    assert_eq!(a.req("w", "k2", "5"), "error_not_enqueued");
}

#[test]
fn disconnect_releases_locks_and_cancels_waiters() {
    let server = Server::start(&[]);
    let mut observer = server.client();
    let mut a = server.client();
    let mut b = server.client();
    let mut c = server.client();
    let mut d = server.client();

    let token = expect_grant(&a.req("l", "k", "0"), 33);
    expect_grant(&a.req("l", "k2", "0"), 33);
    b.send(b"l\nk\n30\n");
    observer.wait_lock_waiters("k", 1);
    assert_eq!(c.req("e", "k", ""), "queued");
    assert_eq!(observer.lock_waiters("k"), 2);
    d.send(b"l\nk2\n30\n");
    observer.wait_lock_waiters("k2", 1);

    // A parked waiter and a queued enqueue leave when their connections close.
    drop(b);
    drop(c);
    observer.wait_lock_waiters("k", 0);

    // The holder's locks are released: the waiter on k2 gets it, k is free.
    drop(a);
    let d_reply = d.line();
    expect_grant(&d_reply, 33);
    let reply = observer.req("l", "k", "0");
    let new = expect_grant(&reply, 33);
    assert!(fence_of(&new) > fence_of(&token));
    assert_eq!(observer.req("r", "k", &token), "error");
}

#[test]
fn no_auto_release_keeps_holds_but_cancels_waiters() {
    let server = Server::start(&["--no-auto-release-on-disconnect"]);
    let mut observer = server.client();
    let mut a = server.client();
    let mut b = server.client();

    let b_token = expect_grant(&b.req("l", "busy", "0"), 33);
    let granted = Instant::now();
    let reply = a.req("l", "k", "0 2");
    let token = expect_grant(&reply, 2);
    let kept = expect_grant(&a.req("l", "kept", "0"), 33);
    assert_eq!(a.req("e", "busy", ""), "queued");
    assert_eq!(observer.lock_waiters("busy"), 1);

    drop(a);
    // Its queued enqueue is cancelled anyway…
    observer.wait_lock_waiters("busy", 0);
    // …but its holds stay until their lease expires.
    assert!(granted.elapsed() < Duration::from_millis(1500));
    assert_eq!(observer.req("l", "k", "0"), "timeout");
    let stats = observer.stats();
    assert_eq!(
        stats
            .entry("locks", "k")
            .expect("k held")
            .get("fence")
            .u64(),
        fence_of(&token)
    );
    let reply = observer.req("l", "k", "5");
    expect_grant(&reply, 33);
    let waited = secs_since(granted);
    assert!((2.0..3.0).contains(&waited), "granted after {waited:.3} s");
    assert_eq!(observer.req("n", "k", &token), "error_lease_expired");

    // Someone else may still release the orphaned hold with its token.
    assert_eq!(observer.req("r", "kept", &kept), "ok");
    expect_grant(&observer.req("l", "kept", "0"), 33);
    // B's release of the key A was queued on leaves it free.
    assert_eq!(b.req("r", "busy", &b_token), "ok");
    expect_grant(&observer.req("l", "busy", "0"), 33);
}

#[test]
fn max_locks_counts_idle_keys() {
    let server = Server::start(&["--max-locks", "2"]);
    let mut c = server.client();

    let a = expect_grant(&c.req("l", "a", "0"), 33);
    expect_grant(&c.req("l", "b", "0"), 33);
    assert_eq!(c.req("l", "c", "0"), "error_max_locks");
    assert_eq!(c.req("l", "c", "5"), "error_max_locks");
    assert_eq!(c.req("e", "c", ""), "error_max_locks");
    assert_eq!(c.req("sl", "c", "0 1"), "error_max_locks");

    // A released key is idle but still exists and still counts.
    assert_eq!(c.req("r", "a", &a), "ok");
    let stats = c.stats();
    assert_eq!(stats.keys("idle_locks"), vec!["a"]);
    assert_eq!(c.req("l", "c", "0"), "error_max_locks");
    // Existing keys are not affected by the limit.
    expect_grant(&c.req("l", "a", "0"), 33);
    assert_eq!(c.req("l", "b", "0"), "timeout");
}

#[test]
fn max_waiters_limits_the_queue() {
    let server = Server::start(&["--max-waiters", "2"]);
    let mut observer = server.client();
    let mut a = server.client();
    let mut b = server.client();
    let mut c = server.client();
    let mut d = server.client();

    expect_grant(&a.req("l", "k", "0"), 33);
    b.send(b"l\nk\n30\n");
    observer.wait_lock_waiters("k", 1);
    assert_eq!(c.req("e", "k", ""), "queued");
    assert_eq!(observer.lock_waiters("k"), 2);

    assert_eq!(d.req("l", "k", "5"), "error_max_waiters");
    assert_eq!(d.req("e", "k", ""), "error_max_waiters");
    // A try never queues, so it is a timeout, not error_max_waiters.
    assert_eq!(d.req("l", "k", "0"), "timeout");
    assert_eq!(observer.lock_waiters("k"), 2);

    // Room again once a waiter leaves.
    assert_eq!(c.req("w", "k", "0"), "timeout");
    d.send(b"l\nk\n30\n");
    observer.wait_lock_waiters("k", 2);
}

#[test]
fn lock_and_semaphore_with_the_same_key_do_not_contend() {
    let server = Server::start(&[]);
    let mut c = server.client();
    let lock = expect_grant(&c.req("l", "job", "0"), 33);
    let sem = expect_grant(&c.req("sl", "job", "0 1"), 33);
    assert_eq!(fence_of(&sem), fence_of(&lock) + 1);
    // Tokens stay in their own key space.
    assert_eq!(c.req("r", "job", &sem), "error");
    assert_eq!(c.req("sr", "job", &lock), "error");
    assert_eq!(c.req("r", "job", &lock), "ok");
    assert_eq!(c.req("sr", "job", &sem), "ok");
}

#[test]
fn fence_field_on_lock_replies() {
    let server = Server::start(&["--fence-field"]);
    let mut a = server.client();
    let mut b = server.client();

    let reply = a.req("l", "my-key", "10 60");
    let token = token_of(&reply);
    let fence = fence_of(&token);
    assert_eq!(reply, format!("ok {token} 60 {fence}"));
    assert_eq!(
        a.req("n", "my-key", &format!("{token} 60")),
        format!("ok 60 {fence}")
    );
    assert_eq!(a.req("n", "my-key", &token), format!("ok 33 {fence}"));

    let reply = a.req("e", "job", "");
    let e_token = token_of(&reply);
    let e_fence = fence_of(&e_token);
    assert_eq!(e_fence, fence + 1);
    assert_eq!(reply, format!("acquired {e_token} 33 {e_fence}"));
    assert_eq!(a.req("w", "job", "1"), format!("ok {e_token} 33 {e_fence}"));

    assert_eq!(b.req("e", "job", "5"), "queued");
    assert_eq!(a.req("r", "job", &e_token), "ok");
    let reply = b.req("w", "job", "1");
    let b_token = token_of(&reply);
    assert_eq!(reply, format!("ok {b_token} 5 {}", fence_of(&b_token)));

    // Without the flag, exactly three fields.
    let plain = Server::start(&["--fence-field=off"]);
    let mut c = plain.client();
    let reply = c.req("l", "k", "0");
    assert_eq!(reply.split(' ').count(), 3, "{reply:?}");
}

#[test]
fn fences_are_consecutive_over_ten_thousand_grants() {
    const N: usize = 10_000;
    const BATCH: usize = 1_000;
    let server = Server::start(&["--max-locks", "10000"]);
    let mut c = server.client();

    let mut fences = Vec::with_capacity(N);
    let mut salts = std::collections::HashSet::new();
    for batch in 0..N / BATCH {
        let mut req = Vec::new();
        for i in 0..BATCH {
            req.extend_from_slice(format!("l\nf{}\n0\n", batch * BATCH + i).as_bytes());
        }
        c.send(&req);
        let mut tokens = Vec::with_capacity(BATCH);
        for _ in 0..BATCH {
            let token = expect_grant(&c.line(), 33);
            fences.push(fence_of(&token));
            assert!(salts.insert(token[16..].to_string()), "salt repeated");
            tokens.push(token);
        }
        // Release the batch, pipelined as well.
        let mut req = Vec::new();
        for (i, token) in tokens.iter().enumerate() {
            req.extend_from_slice(format!("r\nf{}\n{token}\n", batch * BATCH + i).as_bytes());
        }
        c.send(&req);
        for _ in 0..BATCH {
            assert_eq!(c.line(), "ok");
        }
    }
    for pair in fences.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "fences must be consecutive");
    }
    // The counter is seeded above the wall clock (nanoseconds since the epoch).
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    assert!(
        fences[0] > now_ns - 3_600_000_000_000,
        "first fence {} is far below the wall clock {now_ns}",
        fences[0]
    );
}

#[test]
fn fences_survive_restart_with_a_state_file() {
    let dir = TempDir::new("fence");
    let path = dir.join("fence.state");
    let path_str = path.to_str().unwrap();
    // A ceiling far above the wall clock, so only the file can explain fences above it.
    let ceiling: u64 = 5_000_000_000_000_000_000;
    std::fs::write(&path, format!("{ceiling}\n")).unwrap();

    let mut first_run = Vec::new();
    {
        let mut server = Server::start(&["--fence-state-file", path_str]);
        let mut c = server.client();
        for i in 0..5 {
            first_run.push(fence_of(&token_of(&c.req("l", &format!("k{i}"), "0"))));
        }
        assert_eq!(first_run[0], ceiling + 1, "the first grant is ceiling + 1");
        drop(c);
        server.signal("TERM");
        let status = server.wait_exit(Duration::from_secs(10)).expect("exit");
        assert_eq!(status.code(), Some(0));
    }
    let stored = std::fs::read_to_string(&path).unwrap();
    let stored_ceiling: u64 = stored
        .strip_suffix('\n')
        .unwrap_or(&stored)
        .parse()
        .unwrap_or_else(|_| panic!("state file holds {stored:?}"));
    let max_first = *first_run.iter().max().unwrap();
    assert!(
        stored_ceiling >= max_first,
        "ceiling {stored_ceiling} < {max_first}"
    );

    let server = Server::start(&["--fence-state-file", path_str]);
    let mut c = server.client();
    let fence = fence_of(&token_of(&c.req("l", "k0", "0")));
    assert!(fence > max_first, "fence {fence} went back after a restart");
    assert_eq!(fence, stored_ceiling + 1);
}

#[test]
fn idle_keys_are_garbage_collected() {
    let server = Server::start(&[
        "--gc-interval",
        "1",
        "--gc-max-idle",
        "1",
        "--max-locks",
        "2",
    ]);
    let mut c = server.client();

    let a = expect_grant(&c.req("l", "a", "0"), 33);
    assert_eq!(c.req("r", "a", &a), "ok");
    let x = expect_grant(&c.req("l", "x", "0 1"), 1);
    let stats = c.stats();
    assert_eq!(stats.keys("idle_locks"), vec!["a"]);
    assert!(stats.entry("locks", "a").is_none());
    assert_eq!(c.req("l", "c", "0"), "error_max_locks");

    // x expires after 1 s and its expired token is remembered until GC.
    thread::sleep(Duration::from_millis(1100));
    assert_eq!(c.req("n", "x", &x), "error_lease_expired");

    wait_until("idle keys collected", || {
        c.stats().get("idle_locks").arr().is_empty()
    });
    // GC forgot x and its expired tokens; the keys no longer count.
    assert_eq!(c.req("n", "x", &x), "error");
    expect_grant(&c.req("l", "c", "0"), 33);
    expect_grant(&c.req("l", "d", "0"), 33);
    assert_eq!(c.req("l", "e", "0"), "error_max_locks");
}
