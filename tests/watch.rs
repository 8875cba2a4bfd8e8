//! Key watches (protocol.md §8.13, §2.6, §3.5): every event of the table, no
//! events for reads, renewals or failed commands, ordering and de-duplication.

use crate::common;

use common::{Client, Server, token_of, wait_until};
use std::time::{Duration, Instant};

/// Asserts the next line of `w` is exactly `watch <event> <key>`.
#[track_caller]
fn ev(w: &mut Client, event: &str, key: &str) {
    assert_eq!(w.line(), format!("watch {event} {key}"));
}

/// Asserts the token of a read-write or election grant (`ok <token> <lease> <fence>`).
fn rw_token(reply: &str) -> String {
    let fields: Vec<&str> = reply.split(' ').collect();
    assert_eq!(fields.len(), 4, "{reply:?}");
    token_of(reply)
}

fn watcher(s: &Server, pattern: &str) -> Client {
    let mut w = s.client();
    assert_eq!(w.req("watch", pattern, ""), "ok");
    w
}

#[test]
fn spec_example_8_13() {
    let s = Server::start(&[]);
    let (mut w, mut a) = (s.client(), s.client());
    assert_eq!(w.req("watch", "session.*", ""), "ok");
    let start = Instant::now();
    assert_eq!(a.req("kset", "session.42", "alice\t1"), "ok");
    ev(&mut w, "kset", "session.42");
    ev(&mut w, "expire", "session.42");
    assert!(
        start.elapsed() >= Duration::from_millis(1000),
        "early expiry"
    );
    let t = a.req("l", "session.lock", "0");
    common::expect_grant(&t, 33);
    ev(&mut w, "acquire", "session.lock");
    assert_eq!(w.req("watch", "session:*", ""), "error");
    assert_eq!(w.req("unwatch", "session.*", ""), "ok");
    assert_eq!(a.req("kset", "session.43", "bob"), "ok");
    w.expect_nothing_for(Duration::from_millis(100));
}

#[test]
fn lock_semaphore_and_rw_events() {
    let s = Server::start(&[]);
    let mut w = watcher(&s, ">");
    let (mut a, mut b, mut st) = (s.client(), s.client(), s.client());

    // Exclusive lock: on the spot, then from the queue.
    let ta = token_of(&a.req("l", "k", "0"));
    ev(&mut w, "acquire", "k");
    b.send_req("l", "k", "30");
    st.wait_lock_waiters("k", 1);
    assert_eq!(a.req("r", "k", &ta), "ok");
    ev(&mut w, "release", "k");
    ev(&mut w, "acquire", "k");
    let tb = token_of(&b.line());
    assert_eq!(b.req("r", "k", &tb), "ok");
    ev(&mut w, "release", "k");

    // Semaphore.
    let t1 = token_of(&a.req("sl", "s", "0 2"));
    ev(&mut w, "acquire", "s");
    let t2 = token_of(&b.req("sl", "s", "0 2"));
    ev(&mut w, "acquire", "s");
    assert_eq!(a.req("sr", "s", &t1), "ok");
    ev(&mut w, "release", "s");
    assert_eq!(b.req("sr", "s", &t2), "ok");
    ev(&mut w, "release", "s");

    // Read-write: readers, a queued writer granted on release.
    let r1 = rw_token(&a.req("rl", "rw", "0"));
    ev(&mut w, "acquire", "rw");
    b.send_req("wl", "rw", "30");
    wait_until("writer queued", || {
        st.stats()
            .entry("rw_locks", "rw")
            .is_some_and(|e| e.get("waiters").u64() == 1)
    });
    assert_eq!(a.req("rr", "rw", &r1), "ok");
    ev(&mut w, "release", "rw");
    ev(&mut w, "acquire", "rw");
    let wt = rw_token(&b.line());
    assert_eq!(b.req("wr", "rw", &wt), "ok");
    ev(&mut w, "release", "rw");

    // Two-phase: the grant is the event; the wait that collects it is not.
    let te = token_of(&a.req("e", "tp", ""));
    ev(&mut w, "acquire", "tp");
    assert_eq!(a.req("w", "tp", "5"), format!("ok {te} 33"));
    assert_eq!(a.req("r", "tp", &te), "ok");
    ev(&mut w, "release", "tp");
    w.expect_nothing_for(Duration::from_millis(50));
}

#[test]
fn dreadlock_events() {
    let s = Server::start(&[]);
    let mut w = watcher(&s, "dk");
    let (mut d, mut a, mut st) = (s.client(), s.client(), s.client());
    d.send(b"lock dk 0\r\n");
    assert_eq!(d.line(), "l locked\r");
    ev(&mut w, "acquire", "dk");
    a.send_req("l", "dk", "30");
    st.wait_lock_waiters("dk", 1);
    d.send(b"unlock dk\r\n");
    assert_eq!(d.line(), "u unlocked\r");
    ev(&mut w, "release", "dk");
    ev(&mut w, "acquire", "dk");
    let t = token_of(&a.line());
    assert_eq!(a.req("r", "dk", &t), "ok");
    ev(&mut w, "release", "dk");
    d.send(b"lock dk 0\r\n");
    assert_eq!(d.line(), "l locked\r");
    ev(&mut w, "acquire", "dk");
    drop(d);
    ev(&mut w, "release", "dk");
}

#[test]
fn lease_expiry_and_disconnect_are_release() {
    let s = Server::start(&[]);
    let mut w = watcher(&s, ">");
    let mut a = s.client();
    let start = Instant::now();
    token_of(&a.req("l", "short", "0 1"));
    ev(&mut w, "acquire", "short");
    ev(&mut w, "release", "short");
    assert!(
        start.elapsed() >= Duration::from_millis(1000),
        "early expiry"
    );

    let mut x = s.client();
    token_of(&x.req("l", "held", "0"));
    ev(&mut w, "acquire", "held");
    rw_token(&x.req("wl", "held-rw", "0"));
    ev(&mut w, "acquire", "held-rw");
    drop(x);
    let mut got = [w.line(), w.line()];
    got.sort();
    assert_eq!(got, ["watch release held", "watch release held-rw"]);
    w.expect_nothing_for(Duration::from_millis(50));
}

#[test]
fn election_events() {
    let s = Server::start(&[]);
    let mut w = watcher(&s, "el");
    let mut a = s.client();
    let t = rw_token(&a.req("elect", "el", "0"));
    assert_eq!(a.line(), "leader elected el");
    ev(&mut w, "elect", "el");
    assert_eq!(a.req("resign", "el", &t), "ok");
    ev(&mut w, "resign", "el");

    let t = rw_token(&a.req("elect", "el", "0"));
    assert_eq!(a.line(), "leader elected el");
    ev(&mut w, "elect", "el");
    assert_eq!(a.req("r", "el", &t), "ok");
    ev(&mut w, "release", "el");
    w.expect_nothing_for(Duration::from_millis(50));
}

#[test]
fn counter_and_kv_events() {
    let s = Server::start(&[]);
    let mut w = watcher(&s, ">");
    let mut a = s.client();
    assert_eq!(a.req("incr", "c", "2"), "ok 2");
    ev(&mut w, "incr", "c");
    assert_eq!(a.req("decr", "c", "5"), "ok -3");
    ev(&mut w, "decr", "c");
    assert_eq!(a.req("cset", "c", "9"), "ok");
    ev(&mut w, "cset", "c");

    assert_eq!(a.req("kset", "kv", "v"), "ok");
    ev(&mut w, "kset", "kv");
    assert_eq!(a.req("kcas", "kv", "v\tw\t"), "ok");
    ev(&mut w, "kcas", "kv");
    assert_eq!(a.req("kcas", "new", "\tx\t1"), "ok");
    ev(&mut w, "kcas", "new");
    assert_eq!(a.req("kdel", "kv", ""), "ok");
    ev(&mut w, "kdel", "kv");
    assert_eq!(a.req("kdel", "absent", ""), "ok");
    ev(&mut w, "kdel", "absent");
    ev(&mut w, "expire", "new");
    w.expect_nothing_for(Duration::from_millis(50));
}

#[test]
fn list_events_including_hand_off_order() {
    let s = Server::start(&[]);
    let mut w = watcher(&s, ">");
    let (mut a, mut p) = (s.client(), s.client());
    assert_eq!(p.req("lpush", "l", "1"), "ok 1");
    ev(&mut w, "lpush", "l");
    assert_eq!(p.req("rpush", "l", "2"), "ok 2");
    ev(&mut w, "rpush", "l");
    assert_eq!(p.req("rpush", "l", "3"), "ok 3");
    ev(&mut w, "rpush", "l");
    assert_eq!(p.req("rpush", "l", "4"), "ok 4");
    ev(&mut w, "rpush", "l");
    assert_eq!(p.req("lpop", "l", ""), "ok 1");
    ev(&mut w, "lpop", "l");
    assert_eq!(p.req("rpop", "l", ""), "ok 4");
    ev(&mut w, "rpop", "l");
    assert_eq!(p.req("blpop", "l", "0"), "ok 2");
    ev(&mut w, "blpop", "l");
    assert_eq!(p.req("brpop", "l", "5"), "ok 3");
    ev(&mut w, "brpop", "l");

    // Hand-offs: the push event, then the blocking-pop event.
    a.send_req("blpop", "q", "30");
    wait_until("popper parked", || {
        p.stats()
            .entry("lists", "q")
            .is_some_and(|e| e.get("pop_waiters").u64() == 1)
    });
    assert_eq!(p.req("rpush", "q", "x"), "ok 0");
    ev(&mut w, "rpush", "q");
    ev(&mut w, "blpop", "q");
    assert_eq!(a.line(), "ok x");

    a.send_req("brpop", "q", "30");
    wait_until("popper parked", || {
        p.stats()
            .entry("lists", "q")
            .is_some_and(|e| e.get("pop_waiters").u64() == 1)
    });
    assert_eq!(p.req("lpush", "q", "y"), "ok 0");
    ev(&mut w, "lpush", "q");
    ev(&mut w, "brpop", "q");
    assert_eq!(a.line(), "ok y");
    w.expect_nothing_for(Duration::from_millis(50));
}

#[test]
fn no_events_for_reads_renewals_and_failed_commands() {
    let s = Server::start(&["--max-list-length", "1"]);
    let mut w = watcher(&s, ">");
    let (mut a, mut b) = (s.client(), s.client());

    // Set-up, with its events consumed.
    let t = token_of(&a.req("l", "k", "0"));
    ev(&mut w, "acquire", "k");
    let st = token_of(&a.req("sl", "s", "0 1"));
    ev(&mut w, "acquire", "s");
    let rt = rw_token(&a.req("rl", "rw", "0"));
    ev(&mut w, "acquire", "rw");
    assert_eq!(a.req("cset", "c", &i64::MAX.to_string()), "ok");
    ev(&mut w, "cset", "c");
    assert_eq!(a.req("kset", "kv", "v"), "ok");
    ev(&mut w, "kset", "kv");
    assert_eq!(a.req("rpush", "full", "v"), "ok 1");
    ev(&mut w, "rpush", "full");

    let quiet: &[(&str, &str, &str, &str)] = &[
        // Renewals.
        ("n", "k", &format!("{t} 60"), "ok 60"),
        ("sn", "s", &st, "ok 33"),
        ("rn", "rw", &rt, "PREFIX ok 33 "),
        ("wn", "rw", &rt, "PREFIX ok 33 "),
        // Reads.
        ("get", "c", "", "PREFIX ok "),
        ("kget", "kv", "", "ok v"),
        ("llen", "full", "", "ok 1"),
        ("lrange", "full", "0 -1", r#"ok ["v"]"#),
        ("stats", "_", "", "PREFIX ok {"),
        ("ping", "_", "", "ok"),
        ("signal", "k", "hello", "ok 0"),
        ("bwait", "bar", "1 5", "ok"),
        ("bwait", "bar", "2 0", "timeout"),
        ("listen", "k", "", "ok"),
        // Failures.
        ("l", "k", "0", "timeout"),
        ("sl", "s", "0 1", "timeout"),
        ("wl", "rw", "0", "timeout"),
        ("elect", "k", "0", "timeout"),
        ("r", "k", "00000000000000000000000000000000", "error"),
        ("rr", "rw", "00000000000000000000000000000000", "error"),
        ("resign", "k", "00000000000000000000000000000000", "error"),
        ("w", "k", "1", "error_not_enqueued"),
        ("incr", "c", "1", "error"),
        ("cset", "c", "x", "error"),
        ("kset", "kv", "", "error"),
        ("kcas", "kv", "nope\tx\t", "cas_conflict"),
        ("kcas", "kv", "\tx\t", "cas_conflict"),
        ("rpush", "full", "w", "error_list_full"),
        ("lpush", "full", "w", "error_list_full"),
        ("lpop", "empty", "", "nil"),
        ("rpop", "empty", "", "nil"),
        ("blpop", "empty", "0", "nil"),
        ("l", "bad key", "0", "error"),
    ];
    for (cmd, key, arg, want) in quiet {
        let got = b.req(cmd, key, arg);
        match want.strip_prefix("PREFIX ") {
            Some(prefix) => assert!(got.starts_with(prefix), "{cmd} {key}: {got:?}"),
            None => assert_eq!(got, *want, "{cmd} {key} {arg:?}"),
        }
    }
    // A sentinel change: it must be the very next event.
    assert_eq!(b.req("incr", "sentinel", "1"), "ok 1");
    ev(&mut w, "incr", "sentinel");
    w.expect_nothing_for(Duration::from_millis(50));
}

#[test]
fn own_write_event_follows_its_reply() {
    let s = Server::start(&[]);
    let mut w = s.client();
    assert_eq!(w.req("watch", "mine", ""), "ok");
    w.send_req("kset", "mine", "v");
    assert_eq!(w.line(), "ok");
    ev(&mut w, "kset", "mine");
    w.send_req("incr", "mine", "1");
    assert_eq!(w.line(), "ok 1");
    ev(&mut w, "incr", "mine");
    w.send_req("l", "mine", "0");
    token_of(&w.line());
    ev(&mut w, "acquire", "mine");
}

#[test]
fn several_matching_patterns_give_one_event() {
    let s = Server::start(&[]);
    let mut w = s.client();
    for pat in ["a.b", "a.*", "a.>", ">", "*.b"] {
        assert_eq!(w.req("watch", pat, ""), "ok");
    }
    assert_eq!(w.req("watch", "a.b", ""), "ok", "repeat is ok");
    let mut a = s.client();
    assert_eq!(a.req("incr", "a.b", "1"), "ok 1");
    ev(&mut w, "incr", "a.b");
    assert_eq!(a.req("kset", "a.b", "v"), "ok");
    ev(&mut w, "kset", "a.b");
    w.expect_nothing_for(Duration::from_millis(100));

    let stats = a.stats();
    let chans: Vec<(String, u64)> = stats
        .get("watch_channels")
        .arr()
        .iter()
        .map(|e| (e.get("pattern").str().to_string(), e.get("watchers").u64()))
        .collect();
    let mut want: Vec<(String, u64)> = ["a.b", "a.*", "a.>", ">", "*.b"]
        .iter()
        .map(|p| (p.to_string(), 1))
        .collect();
    want.sort_by(|x, y| x.0.as_bytes().cmp(y.0.as_bytes()));
    assert_eq!(chans, want);
}

#[test]
fn one_key_name_in_every_key_space() {
    let s = Server::start(&[]);
    let mut w = watcher(&s, "job");
    let mut a = s.client();
    token_of(&a.req("l", "job", "0"));
    ev(&mut w, "acquire", "job");
    token_of(&a.req("sl", "job", "0 1"));
    ev(&mut w, "acquire", "job");
    assert_eq!(a.req("incr", "job", "1"), "ok 1");
    ev(&mut w, "incr", "job");
    assert_eq!(a.req("rpush", "job", "x"), "ok 1");
    ev(&mut w, "rpush", "job");
    assert_eq!(a.req("kset", "job.x", "x"), "ok");
    assert_eq!(a.req("kset", "jobs", "x"), "ok");
    w.expect_nothing_for(Duration::from_millis(100));
}

#[test]
fn invalid_patterns_and_unwatch() {
    let s = Server::start(&[]);
    let mut w = s.client();
    for pat in ["session:*", "fo*", ">x", "a.>.b", "a.b*", "x y"] {
        assert_eq!(w.req("watch", pat, ""), "error", "watch {pat:?}");
    }
    assert_eq!(w.req("watch", "u.*", ""), "ok");
    assert_eq!(w.req("watch", "u.>", ""), "ok");
    let mut a = s.client();
    assert_eq!(a.req("incr", "u.1", "1"), "ok 1");
    ev(&mut w, "incr", "u.1");
    assert_eq!(w.req("unwatch", "u.*", ""), "ok");
    assert_eq!(a.req("incr", "u.1", "1"), "ok 2");
    ev(&mut w, "incr", "u.1");
    assert_eq!(w.req("unwatch", "u.>", ""), "ok");
    assert_eq!(w.req("unwatch", "never", ""), "ok");
    assert_eq!(a.req("incr", "u.1", "1"), "ok 3");
    w.expect_nothing_for(Duration::from_millis(100));
    assert!(a.stats().get("watch_channels").arr().is_empty());
}

#[test]
fn watch_counts_toward_max_subscriptions_and_disconnect_removes_it() {
    let s = Server::start(&["--max-subscriptions", "1"]);
    let mut w = s.client();
    assert_eq!(w.req("watch", "a", ""), "ok");
    assert_eq!(w.req("watch", "a", ""), "ok");
    assert_eq!(w.req("watch", "b", ""), "error_max_subscriptions");
    assert_eq!(w.req("listen", "b", ""), "error_max_subscriptions");
    let mut st = s.client();
    assert_eq!(st.stats().get("watch_channels").arr().len(), 1);
    drop(w);
    wait_until("watch_channels to be empty", || {
        st.stats().get("watch_channels").arr().is_empty()
    });
}

#[test]
fn acquire_is_emitted_at_the_grant_not_at_the_wait() {
    let s = Server::start(&[]);
    let (mut a, mut b) = (s.client(), s.client());
    let ta = token_of(&a.req("l", "k", "0"));
    assert_eq!(b.req("e", "k", "20"), "queued");
    let mut w = watcher(&s, "k");
    assert_eq!(a.req("r", "k", &ta), "ok");
    ev(&mut w, "release", "k");
    ev(&mut w, "acquire", "k");
    let tb = token_of(&b.req("w", "k", "5"));
    assert_eq!(b.req("r", "k", &tb), "ok");
    ev(&mut w, "release", "k");
    w.expect_nothing_for(Duration::from_millis(50));
}

#[test]
fn events_reach_a_parked_connection_before_its_reply() {
    let s = Server::start(&[]);
    let (mut a, mut w) = (s.client(), s.client());
    let ta = token_of(&a.req("l", "busy", "0"));
    assert_eq!(w.req("watch", "x*", ""), "error", "not a valid pattern");
    assert_eq!(w.req("watch", ">", ""), "ok");
    w.send_req("l", "busy", "30");
    w.send_req("ping", "_", "");
    a.wait_lock_waiters("busy", 1);
    assert_eq!(a.req("incr", "x*", "1"), "ok 1");
    ev(&mut w, "incr", "x*");
    assert_eq!(a.req("r", "busy", &ta), "ok");
    ev(&mut w, "release", "busy");
    ev(&mut w, "acquire", "busy");
    common::expect_grant(&w.line(), 33);
    assert_eq!(w.line(), "ok", "the pipelined ping, after the grant");
}
