//! Leader election (protocol.md §8.8, §2.10 item 3 and 5, §4.4): grants with
//! fences, `leader elected|resigned|failover` pushes, observers, stats.

use crate::common;

use common::{Client, Server, assert_token_shape, fence_of, wait_until};
use std::time::{Duration, Instant};

/// Asserts `reply` is exactly `ok <token> <lease> <fence>`; returns (token, fence).
fn elect_grant(reply: &str, lease: u64) -> (String, u64) {
    let fields: Vec<&str> = reply.split(' ').collect();
    assert_eq!(fields.len(), 4, "elect grant {reply:?}");
    assert_token_shape(fields[1]);
    let fence = fence_of(fields[1]);
    assert_eq!(reply, format!("ok {} {lease} {fence}", fields[1]));
    (fields[1].to_string(), fence)
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

#[test]
fn spec_example_8_8() {
    let s = Server::start(&[]);
    let (mut o, mut a, mut b) = (s.client(), s.client(), s.client());
    let mut st = s.client();

    assert_eq!(o.req("observe", "leader-job", ""), "ok");
    o.expect_nothing_for(Duration::from_millis(50));

    let (ta, fa) = elect_grant(&a.req("elect", "leader-job", "5 10"), 10);
    assert_eq!(a.line(), "leader elected leader-job");
    assert_eq!(o.line(), "leader elected leader-job");

    b.send_req("elect", "leader-job", "60 10");
    wait_until("B queued", || st.lock_waiters("leader-job") == 1);
    b.expect_nothing_for(Duration::from_millis(50));

    assert_eq!(a.req("n", "leader-job", &ta), "ok 33");
    assert_eq!(a.req("resign", "leader-job", &ta), "ok");

    assert_eq!(o.line(), "leader resigned leader-job");
    assert_eq!(o.line(), "leader failover leader-job");
    assert_eq!(b.line(), "leader resigned leader-job");
    assert_eq!(b.line(), "leader failover leader-job");
    let (tb, fb) = elect_grant(&b.line(), 10);
    assert_eq!(fb, fa + 1);
    assert_eq!(b.line(), "leader elected leader-job");
    assert_eq!(o.line(), "leader elected leader-job");
    // The resigning leader's candidacy ended: it hears nothing of this.
    a.expect_nothing_for(Duration::from_millis(100));
    o.expect_nothing_for(Duration::from_millis(1));
    b.expect_nothing_for(Duration::from_millis(1));

    assert_eq!(b.req("resign", "leader-job", &tb), "ok");
    assert_eq!(o.line(), "leader resigned leader-job");
    b.expect_nothing_for(Duration::from_millis(100));
    assert_eq!(
        b.req("resign", "leader-job", &tb),
        "error",
        "not held any more"
    );
}

#[test]
fn lease_expiry_with_nobody_queued_is_failover_to_candidate_and_observer() {
    let s = Server::start(&[]);
    let (mut o, mut a) = (s.client(), s.client());
    assert_eq!(o.req("observe", "lj", ""), "ok");
    let start = Instant::now();
    let (ta, _) = elect_grant(&a.req("elect", "lj", "5 1"), 1);
    assert_eq!(a.line(), "leader elected lj");
    assert_eq!(o.line(), "leader elected lj");

    assert_eq!(
        a.line(),
        "leader failover lj",
        "the expired leader stays a candidate"
    );
    assert_eq!(o.line(), "leader failover lj");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(1000),
        "early expiry: {waited:?}"
    );
    assert!(
        waited < Duration::from_millis(3000),
        "late expiry: {waited:?}"
    );

    assert_eq!(a.req("n", "lj", &ta), "error_lease_expired");
    assert_eq!(election(&mut o, "lj"), Some((0, 1, 1)));
    a.expect_nothing_for(Duration::from_millis(50));
    o.expect_nothing_for(Duration::from_millis(1));
}

#[test]
fn leader_disconnect_is_failover() {
    let s = Server::start(&[]);
    let (mut o, mut b) = (s.client(), s.client());
    assert_eq!(o.req("observe", "x", ""), "ok");

    // Nobody queued: observers see a failover.
    let mut a = s.client();
    elect_grant(&a.req("elect", "x", "0"), 33);
    assert_eq!(a.line(), "leader elected x");
    assert_eq!(o.line(), "leader elected x");
    drop(a);
    assert_eq!(o.line(), "leader failover x");
    o.expect_nothing_for(Duration::from_millis(50));

    // A candidate queued: it gets the failover, then its grant, then elected.
    let mut a = s.client();
    let (_, fa) = elect_grant(&a.req("elect", "x", "0"), 33);
    assert_eq!(a.line(), "leader elected x");
    assert_eq!(o.line(), "leader elected x");
    b.send_req("elect", "x", "30 20");
    wait_until("B queued", || o.lock_waiters("x") == 1);
    drop(a);
    assert_eq!(b.line(), "leader failover x");
    let (_, fb) = elect_grant(&b.line(), 20);
    assert!(fb > fa);
    assert_eq!(b.line(), "leader elected x");
    assert_eq!(o.line(), "leader failover x");
    assert_eq!(o.line(), "leader elected x");
    o.expect_nothing_for(Duration::from_millis(50));
}

#[test]
fn repeated_observe_is_ok_and_repeats_the_elected_push() {
    let s = Server::start(&[]);
    let (mut o, mut a) = (s.client(), s.client());

    assert_eq!(o.req("observe", "k", ""), "ok");
    assert_eq!(o.req("observe", "k", ""), "ok");
    o.expect_nothing_for(Duration::from_millis(100));

    let (ta, _) = elect_grant(&a.req("elect", "k", "0"), 33);
    assert_eq!(a.line(), "leader elected k");
    assert_eq!(o.line(), "leader elected k");
    o.expect_nothing_for(Duration::from_millis(50));

    for _ in 0..2 {
        assert_eq!(o.req("observe", "k", ""), "ok");
        assert_eq!(o.line(), "leader elected k");
        o.expect_nothing_for(Duration::from_millis(50));
    }
    let (leader, observers, candidates) = election(&mut o, "k").expect("elections entry");
    assert!(leader > 0);
    assert_eq!(
        (observers, candidates),
        (1, 0),
        "the leader is not a waiting candidate"
    );

    assert_eq!(o.req("unobserve", "k", ""), "ok");
    assert_eq!(o.req("unobserve", "k", ""), "ok");
    assert_eq!(o.req("unobserve", "never", ""), "ok");
    assert_eq!(a.req("resign", "k", &ta), "ok");
    o.expect_nothing_for(Duration::from_millis(150));
    a.expect_nothing_for(Duration::from_millis(1));
}

#[test]
fn observe_counts_toward_max_subscriptions() {
    let s = Server::start(&["--max-subscriptions", "1"]);
    let mut o = s.client();
    assert_eq!(o.req("observe", "a", ""), "ok");
    assert_eq!(
        o.req("observe", "a", ""),
        "ok",
        "repeat allowed at the limit"
    );
    assert_eq!(o.req("observe", "b", ""), "error_max_subscriptions");
    // Candidacies do not count.
    elect_grant(&o.req("elect", "c", "0"), 33);
    assert_eq!(o.line(), "leader elected c");
    assert_eq!(o.req("unobserve", "a", ""), "ok");
    assert_eq!(o.req("observe", "b", ""), "ok");
    assert_eq!(o.req("observe", "a", ""), "error_max_subscriptions");
}

#[test]
fn stats_elections_entry() {
    let s = Server::start(&[]);
    let (mut o, mut a, mut b, mut c) = (s.client(), s.client(), s.client(), s.client());
    let mut st = s.client();

    assert_eq!(o.req("observe", "e", ""), "ok");
    assert_eq!(election(&mut st, "e"), Some((0, 1, 0)));

    let (ta, _) = elect_grant(&a.req("elect", "e", "0"), 33);
    assert_eq!(a.line(), "leader elected e");
    assert_eq!(o.line(), "leader elected e");
    b.send_req("elect", "e", "30");
    wait_until("B queued", || st.lock_waiters("e") == 1);
    c.send_req("elect", "e", "30");
    wait_until("C queued", || st.lock_waiters("e") == 2);

    let stats = st.stats();
    let owner = stats
        .entry("locks", "e")
        .expect("locks entry")
        .get("owner_conn_id")
        .u64();
    assert!(owner > 0);
    assert_eq!(
        election(&mut st, "e"),
        Some((owner, 1, 2)),
        "candidates: waiting only"
    );

    // A try that is refused does not make a candidate; a parked elect that times
    // out stops being one.
    let mut d = s.client();
    assert_eq!(d.req("elect", "e", "0"), "timeout");
    assert_eq!(election(&mut st, "e"), Some((owner, 1, 2)));

    assert_eq!(a.req("resign", "e", &ta), "ok");
    assert_eq!(b.line(), "leader resigned e");
    assert_eq!(b.line(), "leader failover e");
    elect_grant(&b.line(), 33);
    assert_eq!(b.line(), "leader elected e");
    assert_eq!(o.line(), "leader resigned e");
    assert_eq!(o.line(), "leader failover e");
    assert_eq!(o.line(), "leader elected e");
    let stats = st.stats();
    let owner_b = stats
        .entry("locks", "e")
        .unwrap()
        .get("owner_conn_id")
        .u64();
    assert_ne!(owner_b, owner);
    assert_eq!(election(&mut st, "e"), Some((owner_b, 1, 1)));

    drop(c);
    wait_until("C gone", || election(&mut st, "e") == Some((owner_b, 1, 0)));
    assert_eq!(o.req("unobserve", "e", ""), "ok");
    assert_eq!(election(&mut st, "e"), Some((owner_b, 0, 0)));
    drop(b);
    wait_until("election gone", || election(&mut st, "e").is_none());
    assert!(st.stats().get("elections").arr().is_empty());
}

#[test]
fn parked_elect_that_times_out_ends_its_candidacy() {
    let s = Server::start(&[]);
    let (mut a, mut b) = (s.client(), s.client());
    let (ta, _) = elect_grant(&a.req("elect", "t", "0"), 33);
    assert_eq!(a.line(), "leader elected t");
    assert_eq!(b.req("elect", "t", "1"), "timeout");
    assert_eq!(election(&mut b, "t").map(|e| e.2), Some(0));
    assert_eq!(a.req("resign", "t", &ta), "ok");
    b.expect_nothing_for(Duration::from_millis(150));
}

#[test]
fn release_by_another_connection_is_resigned_to_all_but_the_sender() {
    let s = Server::start(&[]);
    let (mut o, mut a, mut x) = (s.client(), s.client(), s.client());
    assert_eq!(o.req("observe", "r", ""), "ok");
    assert_eq!(x.req("observe", "r", ""), "ok");
    let (ta, _) = elect_grant(&a.req("elect", "r", "0"), 33);
    assert_eq!(a.line(), "leader elected r");
    assert_eq!(o.line(), "leader elected r");
    assert_eq!(x.line(), "leader elected r");

    assert_eq!(x.req("r", "r", &ta), "ok");
    assert_eq!(a.line(), "leader resigned r");
    assert_eq!(o.line(), "leader resigned r");
    x.expect_nothing_for(Duration::from_millis(150));
    a.expect_nothing_for(Duration::from_millis(1));
    o.expect_nothing_for(Duration::from_millis(1));
}

#[test]
fn elect_malformed_and_type_mismatch() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(c.req("elect", "m", ""), "error");
    assert_eq!(c.req("elect", "m", "5 0"), "error");
    assert_eq!(c.req("resign", "m", ""), "error");
    assert_eq!(
        c.req("resign", "m", "00000000000000000000000000000000"),
        "error"
    );
    assert_eq!(c.req("observe", "bad key", ""), "error");
    let t = c.req("rl", "m", "0");
    assert!(t.starts_with("ok "), "{t}");
    assert_eq!(c.req("elect", "m", "0"), "error_type_mismatch");
}

#[test]
fn failover_for_any_kind_of_waiter_and_holder() {
    let s = Server::start(&[]);
    let (mut o, mut a, mut b) = (s.client(), s.client(), s.client());
    assert_eq!(o.req("observe", "k", ""), "ok");

    // An elected leader resigns; a plain `l` waiter takes the key: resigned,
    // failover, and no `elected` (the grant is not through `elect`).
    let (ta, _) = elect_grant(&a.req("elect", "k", "0"), 33);
    assert_eq!(a.line(), "leader elected k");
    assert_eq!(o.line(), "leader elected k");
    b.send_req("l", "k", "30");
    wait_until("B queued", || o.lock_waiters("k") == 1);
    assert_eq!(a.req("resign", "k", &ta), "ok");
    let tb = common::expect_grant(&b.line(), 33);
    assert_eq!(o.line(), "leader resigned k");
    assert_eq!(o.line(), "leader failover k");
    o.expect_nothing_for(Duration::from_millis(100));
    b.expect_nothing_for(Duration::from_millis(1));

    // A plain holder releases; a queued candidate takes the key: failover, then
    // elected (no `resigned`: the holder was not granted through `elect`).
    a.send_req("elect", "k", "30");
    wait_until("A queued", || o.lock_waiters("k") == 1);
    assert_eq!(b.req("r", "k", &tb), "ok");
    assert_eq!(a.line(), "leader failover k");
    elect_grant(&a.line(), 33);
    assert_eq!(a.line(), "leader elected k");
    assert_eq!(o.line(), "leader failover k");
    assert_eq!(o.line(), "leader elected k");
    o.expect_nothing_for(Duration::from_millis(100));
    b.expect_nothing_for(Duration::from_millis(1));
}

#[test]
fn observer_that_is_also_a_candidate_receives_each_event_once() {
    let s = Server::start(&[]);
    let (mut a, mut b) = (s.client(), s.client());
    assert_eq!(b.req("observe", "d", ""), "ok");
    let (ta, _) = elect_grant(&a.req("elect", "d", "0"), 33);
    assert_eq!(a.line(), "leader elected d");
    assert_eq!(b.line(), "leader elected d");
    b.send_req("elect", "d", "30");
    wait_until("B queued", || a.lock_waiters("d") == 1);
    assert_eq!(a.req("resign", "d", &ta), "ok");
    assert_eq!(b.line(), "leader resigned d");
    assert_eq!(b.line(), "leader failover d");
    elect_grant(&b.line(), 33);
    assert_eq!(b.line(), "leader elected d");
    b.expect_nothing_for(Duration::from_millis(100));
    a.expect_nothing_for(Duration::from_millis(1));
}

#[test]
fn expired_leader_with_a_queued_candidate() {
    let s = Server::start(&[]);
    let (mut o, mut a, mut b) = (s.client(), s.client(), s.client());
    assert_eq!(o.req("observe", "x", ""), "ok");
    let start = Instant::now();
    let (ta, fa) = elect_grant(&a.req("elect", "x", "0 1"), 1);
    assert_eq!(a.line(), "leader elected x");
    assert_eq!(o.line(), "leader elected x");
    b.send_req("elect", "x", "30");
    // At the lease's end B is granted from the queue: failover, then elected.
    assert_eq!(b.line(), "leader failover x");
    let (_, fb) = elect_grant(&b.line(), 33);
    assert!(start.elapsed() >= Duration::from_millis(1000));
    assert_eq!(fb, fa + 1);
    assert_eq!(b.line(), "leader elected x");
    assert_eq!(o.line(), "leader failover x");
    assert_eq!(o.line(), "leader elected x");
    // The expired leader is still a candidate: it hears both.
    assert_eq!(a.line(), "leader failover x");
    assert_eq!(a.line(), "leader elected x");
    assert_eq!(a.req("n", "x", &ta), "error_lease_expired");
}

#[test]
fn unobserve_ends_a_candidacy() {
    let s = Server::start(&[]);
    let (mut o, mut a) = (s.client(), s.client());
    assert_eq!(o.req("observe", "u", ""), "ok");
    elect_grant(&a.req("elect", "u", "0 1"), 1);
    assert_eq!(a.line(), "leader elected u");
    assert_eq!(o.line(), "leader elected u");
    assert_eq!(a.req("unobserve", "u", ""), "ok");
    // The lease ends: the observer hears the failover, the former candidate not.
    assert_eq!(o.line(), "leader failover u");
    a.expect_nothing_for(Duration::from_millis(100));
    assert_eq!(election(&mut o, "u"), Some((0, 1, 0)));
}

#[test]
fn leader_events_reach_a_parked_candidate() {
    let s = Server::start(&[]);
    let (mut a, mut b, mut c) = (s.client(), s.client(), s.client());
    let (ta, _) = elect_grant(&a.req("elect", "p", "0"), 33);
    assert_eq!(a.line(), "leader elected p");
    b.send_req("elect", "p", "30");
    wait_until("B queued", || a.lock_waiters("p") == 1);
    c.send_req("elect", "p", "30");
    wait_until("C queued", || a.lock_waiters("p") == 2);
    assert_eq!(a.req("resign", "p", &ta), "ok");
    // B is granted; C, still parked, hears every event.
    assert_eq!(c.line(), "leader resigned p");
    assert_eq!(c.line(), "leader failover p");
    assert_eq!(c.line(), "leader elected p");
    assert_eq!(b.line(), "leader resigned p");
    assert_eq!(b.line(), "leader failover p");
    elect_grant(&b.line(), 33);
    assert_eq!(b.line(), "leader elected p");
}
