//! Read-write locks (protocol.md §8.7, §7.2, §7.3): shared readers, exclusive
//! writers, writer-preferring FIFO, fences in every reply, two-phase `re`/`we`.

use crate::common;

use common::{Client, Server, assert_token_shape, fence_of, token_of};
use std::thread;
use std::time::{Duration, Instant};

/// Asserts `reply` is exactly `<status> <token> <lease> <fence>` with the fence
/// equal to the token's prefix; returns (token, fence).
fn rw_grant_as(status: &str, reply: &str, lease: u64) -> (String, u64) {
    let fields: Vec<&str> = reply.split(' ').collect();
    assert_eq!(fields.len(), 4, "read-write grant {reply:?}");
    assert_eq!(fields[0], status, "read-write grant {reply:?}");
    assert_token_shape(fields[1]);
    let fence = fence_of(fields[1]);
    assert_eq!(
        reply,
        format!("{status} {} {lease} {fence}", fields[1]),
        "read-write grant"
    );
    (fields[1].to_string(), fence)
}

fn rw_grant(reply: &str, lease: u64) -> (String, u64) {
    rw_grant_as("ok", reply, lease)
}

/// The `rw_locks` entry of `key` as (readers, writer, waiters), if listed.
fn rw_state(c: &mut Client, key: &str) -> Option<(u64, bool, u64)> {
    let stats = c.stats();
    stats.entry("rw_locks", key).map(|e| {
        (
            e.get("readers").u64(),
            e.get("writer").bool(),
            e.get("waiters").u64(),
        )
    })
}

fn wait_rw_waiters(c: &mut Client, key: &str, n: u64) {
    common::wait_until(&format!("{n} waiters on rw lock {key:?}"), || {
        rw_state(c, key).map_or(0, |s| s.2) == n
    });
}

#[test]
fn spec_example_8_7() {
    let s = Server::start(&[]);
    let (mut a, mut b, mut c, mut d, mut e) =
        (s.client(), s.client(), s.client(), s.client(), s.client());
    let mut st = s.client();

    let (ta, fa) = rw_grant(&a.req("rl", "cfg", "5"), 33);
    let (tb, fb) = rw_grant(&b.req("rl", "cfg", "5"), 33);
    assert_eq!(fb, fa + 1, "fences are consecutive");
    assert_eq!(rw_state(&mut st, "cfg"), Some((2, false, 0)));

    c.send_req("wl", "cfg", "30");
    wait_rw_waiters(&mut st, "cfg", 1);
    assert_eq!(d.req("rl", "cfg", "0"), "timeout");

    assert_eq!(a.req("rr", "cfg", &ta), "ok");
    c.expect_nothing_for(Duration::from_millis(150));
    assert_eq!(b.req("wr", "cfg", &tb), "ok");
    let (tc, fc) = rw_grant(&c.line(), 33);
    assert_eq!(fc, fb + 1, "the writer's fence follows the readers'");
    assert_eq!(rw_state(&mut st, "cfg"), Some((0, true, 0)));

    assert_eq!(
        c.req("wn", "cfg", &format!("{tc} 60")),
        format!("ok 60 {fc}")
    );
    assert_eq!(e.req("l", "cfg", "0"), "error_type_mismatch");
}

#[test]
fn readers_share_writer_excludes() {
    let s = Server::start(&[]);
    let (mut a, mut b, mut w) = (s.client(), s.client(), s.client());

    let (ta, _) = rw_grant(&a.req("rl", "k", "0"), 33);
    let (tb, _) = rw_grant(&b.req("rl", "k", "0 7"), 7);
    assert_eq!(w.req("wl", "k", "0"), "timeout");
    assert_eq!(a.req("rr", "k", &ta), "ok");
    assert_eq!(w.req("wl", "k", "0"), "timeout", "one reader still holds");
    assert_eq!(b.req("rr", "k", &tb), "ok");

    let (tw, _) = rw_grant(&w.req("wl", "k", "0 9"), 9);
    assert_eq!(a.req("rl", "k", "0"), "timeout");
    assert_eq!(b.req("wl", "k", "0"), "timeout");
    assert_eq!(w.req("wr", "k", &tw), "ok");
    rw_grant(&a.req("rl", "k", "0"), 33);
}

#[test]
fn waiting_writer_blocks_later_readers_and_readers_are_granted_as_a_batch() {
    let s = Server::start(&[]);
    let mut st = s.client();
    let mut w1 = s.client();
    let (mut r1, mut r2, mut w2, mut r3) = (s.client(), s.client(), s.client(), s.client());

    let (t1, f1) = rw_grant(&w1.req("wl", "q", "0"), 33);
    r1.send_req("rl", "q", "30");
    wait_rw_waiters(&mut st, "q", 1);
    r2.send_req("rl", "q", "30");
    wait_rw_waiters(&mut st, "q", 2);
    w2.send_req("wl", "q", "30");
    wait_rw_waiters(&mut st, "q", 3);
    r3.send_req("rl", "q", "30");
    wait_rw_waiters(&mut st, "q", 4);

    // The writer releases: both readers at the head are granted together, the
    // writer behind them and the reader behind that writer keep waiting.
    assert_eq!(w1.req("wr", "q", &t1), "ok");
    let (tr1, fr1) = rw_grant(&r1.line(), 33);
    let (tr2, fr2) = rw_grant(&r2.line(), 33);
    assert_eq!((fr1, fr2), (f1 + 1, f1 + 2), "granted in FIFO order");
    assert_eq!(rw_state(&mut st, "q"), Some((2, false, 2)));
    w2.expect_nothing_for(Duration::from_millis(100));
    r3.expect_nothing_for(Duration::from_millis(1));

    // A new try-reader does not barge past the waiting writer.
    assert_eq!(st.req("rl", "q", "0"), "timeout");

    assert_eq!(r1.req("rr", "q", &tr1), "ok");
    w2.expect_nothing_for(Duration::from_millis(100));
    assert_eq!(r2.req("rr", "q", &tr2), "ok");
    let (tw2, fw2) = rw_grant(&w2.line(), 33);
    assert_eq!(fw2, fr2 + 1);
    r3.expect_nothing_for(Duration::from_millis(100));
    assert_eq!(rw_state(&mut st, "q"), Some((0, true, 1)));

    assert_eq!(w2.req("wr", "q", &tw2), "ok");
    let (_, fr3) = rw_grant(&r3.line(), 33);
    assert_eq!(fr3, fw2 + 1);
    assert_eq!(rw_state(&mut st, "q"), Some((1, false, 0)));
}

#[test]
fn any_release_and_renew_command_works_for_either_mode() {
    let s = Server::start(&[]);
    let mut c = s.client();

    // A reader released with `r`, `wr`; a writer released with `rr`.
    let (t, _) = rw_grant(&c.req("rl", "a", "0"), 33);
    assert_eq!(c.req("r", "a", &t), "ok");
    assert_eq!(c.req("r", "a", &t), "error", "already released");
    let (t, _) = rw_grant(&c.req("rl", "a", "0"), 33);
    assert_eq!(c.req("wr", "a", &t), "ok");
    assert_eq!(c.req("rr", "a", &t), "error");
    let (t, _) = rw_grant(&c.req("wl", "a", "0"), 33);
    assert_eq!(c.req("rr", "a", &t), "ok");
    assert_eq!(c.req("wr", "a", &t), "error");

    // Renewals: `rn` on a writer, `wn` on a reader, `n` in its own form.
    let (tw, fw) = rw_grant(&c.req("wl", "b", "0 5"), 5);
    assert_eq!(c.req("rn", "b", &format!("{tw} 60")), format!("ok 60 {fw}"));
    assert_eq!(
        c.req("rn", "b", &tw),
        format!("ok 33 {fw}"),
        "default lease"
    );
    assert_eq!(c.req("n", "b", &format!("{tw} 12")), "ok 12");
    assert_eq!(c.req("wr", "b", &tw), "ok");

    let (tr, fr) = rw_grant(&c.req("rl", "b", "0 5"), 5);
    assert_eq!(c.req("wn", "b", &format!("{tr} 61")), format!("ok 61 {fr}"));
    assert_eq!(c.req("wn", "b", &tr), format!("ok 33 {fr}"));
    assert_eq!(
        c.req("rn", "b", "ffffffffffffffff0000000000000000"),
        "error",
        "unknown token"
    );
    assert_eq!(c.req("rn", "other", &tr), "error", "a token of another key");
    assert_eq!(c.req("rr", "b", &tr), "ok");
    assert_eq!(c.req("wn", "b", &tr), "error", "released token");
}

#[test]
fn renewing_an_expired_read_lease_is_lease_expired() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let (t, _) = rw_grant(&c.req("rl", "short", "0 1"), 1);
    thread::sleep(Duration::from_millis(1500));
    assert_eq!(c.req("rn", "short", &t), "error_lease_expired");
    assert_eq!(c.req("wn", "short", &t), "error_lease_expired");
    assert_eq!(c.req("rr", "short", &t), "error");
    // The key is free again: a writer gets it at once.
    rw_grant(&c.req("wl", "short", "0"), 33);
}

#[test]
fn two_phase_read_and_write() {
    let s = Server::start(&[]);
    let (mut a, mut b) = (s.client(), s.client());

    // Acquired at once; the wait returns the same token with a fresh lease.
    let (ta, fa) = rw_grant_as("acquired", &a.req("re", "doc", ""), 33);
    assert_eq!(a.req("re", "doc", ""), "error_already_enqueued");
    assert_eq!(a.req("w", "doc", "5"), "error_not_enqueued", "w after re");
    assert_eq!(a.req("ww", "doc", "5"), "error_not_enqueued", "ww after re");
    assert_eq!(a.req("rw", "doc", "5"), format!("ok {ta} 33 {fa}"));
    assert_eq!(a.req("rw", "doc", "5"), "error_not_enqueued", "consumed");

    // A writer enqueues behind the reader and is granted before its wait.
    assert_eq!(b.req("we", "doc", "60"), "queued");
    assert_eq!(b.req("we", "doc", "60"), "error_already_enqueued");
    assert_eq!(b.req("rw", "doc", "5"), "error_not_enqueued", "rw after we");
    assert_eq!(a.req("rr", "doc", &ta), "ok");
    let (tb, fb) = rw_grant(&b.req("ww", "doc", "10"), 60);
    assert_eq!(fb, fa + 1);

    // A read enqueue behind the writer; its wait parks until the release.
    assert_eq!(a.req("re", "doc", "20"), "queued");
    a.send_req("rw", "doc", "30");
    a.expect_nothing_for(Duration::from_millis(150));
    assert_eq!(b.req("wr", "doc", &tb), "ok");
    let (_, fa2) = rw_grant(&a.line(), 20);
    assert_eq!(fa2, fb + 1);

    // A write enqueue granted at once; `ww` returns the same token and fence.
    let (te, fe) = rw_grant_as("acquired", &b.req("we", "free", "7"), 7);
    assert_eq!(b.req("ww", "free", "0"), format!("ok {te} 7 {fe}"));
    assert_eq!(b.req("wr", "free", &te), "ok");

    // A queued enqueue whose wait times out with timeout 0 leaves the queue.
    assert_eq!(b.req("we", "doc", ""), "queued");
    assert_eq!(b.req("ww", "doc", "0"), "timeout");
    assert_eq!(b.req("ww", "doc", "0"), "error_not_enqueued");
    assert_eq!(rw_state(&mut b, "doc"), Some((1, false, 0)));
}

#[test]
fn type_mismatch_both_directions_while_in_use() {
    let s = Server::start(&[]);
    let (mut a, mut b) = (s.client(), s.client());

    // Exclusive in use: every read-write acquire or enqueue is refused.
    let t = token_of(&a.req("l", "k", "0"));
    for (cmd, arg) in [
        ("rl", "0"),
        ("wl", "0"),
        ("rl", "5"),
        ("re", ""),
        ("we", ""),
    ] {
        assert_eq!(b.req(cmd, "k", arg), "error_type_mismatch", "{cmd} {arg}");
    }
    assert_eq!(a.req("r", "k", &t), "ok");

    // Free again: it becomes a read-write key.
    let (tr, _) = rw_grant(&b.req("rl", "k", "0"), 33);
    for (cmd, arg) in [("l", "0"), ("l", "5"), ("e", ""), ("elect", "0")] {
        assert_eq!(a.req(cmd, "k", arg), "error_type_mismatch", "{cmd} {arg}");
    }
    a.send(b"lock k 0\r\n");
    assert_eq!(a.line(), "e type mismatch\r", "Dreadlock lock");
    assert_eq!(b.req("rr", "k", &tr), "ok");

    // Free again: exclusive once more.
    let t = token_of(&a.req("l", "k", "0"));
    assert_eq!(b.req("wl", "k", "0"), "error_type_mismatch");
    assert_eq!(a.req("r", "k", &t), "ok");

    // The type carries over a hand-over from the queue: the key never stops
    // being in use while a waiter is granted.
    let (tw, _) = rw_grant(&a.req("wl", "m", "0"), 33);
    b.send_req("rl", "m", "30");
    wait_rw_waiters(&mut a, "m", 1);
    assert_eq!(a.req("wr", "m", &tw), "ok");
    let (tr, _) = rw_grant(&b.line(), 33);
    assert_eq!(a.req("l", "m", "0"), "error_type_mismatch");
    assert_eq!(b.req("rr", "m", &tr), "ok");
    token_of(&a.req("l", "m", "0"));
}

#[test]
fn readers_behind_a_writer_that_times_out_are_granted_at_once() {
    let s = Server::start(&[]);
    let mut st = s.client();
    let (mut a, mut w, mut r1, mut r2) = (s.client(), s.client(), s.client(), s.client());

    rw_grant(&a.req("rl", "g", "0"), 33);
    let start = Instant::now();
    w.send_req("wl", "g", "1");
    wait_rw_waiters(&mut st, "g", 1);
    r1.send_req("rl", "g", "30");
    wait_rw_waiters(&mut st, "g", 2);
    r2.send_req("rl", "g", "30");
    wait_rw_waiters(&mut st, "g", 3);
    assert_eq!(st.req("rl", "g", "0"), "timeout", "a writer waits");

    assert_eq!(w.line(), "timeout");
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(1000), "early: {waited:?}");
    r1.set_read_timeout(Duration::from_millis(500));
    r2.set_read_timeout(Duration::from_millis(500));
    rw_grant(&r1.line(), 33);
    rw_grant(&r2.line(), 33);
    assert_eq!(rw_state(&mut st, "g"), Some((3, false, 0)));
    rw_grant(&st.req("rl", "g", "0"), 33);
}

#[test]
fn rw_timeout_zero_and_parked_timeout() {
    let s = Server::start(&[]);
    let (mut a, mut b) = (s.client(), s.client());
    let (_, _) = rw_grant(&a.req("wl", "t", "0"), 33);
    assert_eq!(b.req("rl", "t", "0"), "timeout");
    assert_eq!(b.req("wl", "t", "0"), "timeout");
    let start = Instant::now();
    assert_eq!(b.req("rl", "t", "1"), "timeout");
    assert!(start.elapsed() >= Duration::from_millis(1000));
    assert_eq!(rw_state(&mut b, "t"), Some((0, true, 0)));
}

#[test]
fn rw_malformed_requests() {
    let s = Server::start(&[]);
    let mut c = s.client();
    for (cmd, arg) in [
        ("rl", ""),
        ("rl", "-1"),
        ("wl", "1 0"),
        ("wl", "1 2 3"),
        ("re", "0"),
        ("we", "1 2"),
        ("rw", ""),
        ("rn", ""),
        ("wr", ""),
    ] {
        assert_eq!(c.req(cmd, "k", arg), "error", "{cmd} {arg:?}");
    }
    assert_eq!(c.req("rl", "bad key", "0"), "error");
    assert_eq!(c.req("ping", "_", ""), "ok");
}
