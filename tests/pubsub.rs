//! Pub/sub (protocol.md §8.12, §3.5, §2.6, §2.7, §2.10 item 4): wildcard
//! patterns, queue groups, delivery counts, slow consumers, limits, cleanup.

use crate::common;

use common::{Client, Server, wait_until};
use std::io::ErrorKind;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// `signal_channels` as (pattern, group, listeners), in document order.
fn channels(c: &mut Client) -> Vec<(String, Option<String>, u64)> {
    c.stats()
        .get("signal_channels")
        .arr()
        .iter()
        .map(|e| {
            (
                e.get("pattern").str().to_string(),
                e.field("group").map(|g| g.str().to_string()),
                e.get("listeners").u64(),
            )
        })
        .collect()
}

#[test]
fn spec_example_8_12() {
    let s = Server::start(&[]);
    let (mut a, mut b, mut c, mut p) = (s.client(), s.client(), s.client(), s.client());
    assert_eq!(a.req("listen", "orders.*", ""), "ok");
    assert_eq!(b.req("listen", "orders.>", "billing"), "ok");
    assert_eq!(c.req("listen", "orders.>", "billing"), "ok");

    let payload = r#"{"id":7, "total": 12.5}"#;
    assert_eq!(p.req("signal", "orders.created", payload), "ok 2");
    assert_eq!(a.line(), format!("sig orders.created {payload}"));
    assert_eq!(b.line(), format!("sig orders.created {payload}"));
    c.expect_nothing_for(Duration::from_millis(100));

    assert_eq!(p.req("signal", "orders.created", "second"), "ok 2");
    assert_eq!(a.line(), "sig orders.created second");
    assert_eq!(c.line(), "sig orders.created second");
    b.expect_nothing_for(Duration::from_millis(100));

    assert_eq!(p.req("signal", "orders.*", "x"), "error");
    assert_eq!(a.req("listen", "fo*", ""), "error");

    // The rotation goes on: back to B.
    assert_eq!(p.req("signal", "orders.eu.x", "third"), "ok 1");
    assert_eq!(b.line(), "sig orders.eu.x third");
    c.expect_nothing_for(Duration::from_millis(100));
    a.expect_nothing_for(Duration::from_millis(1));

    let stats = p.stats();
    assert_eq!(stats.total("signals_published"), 3);
    assert_eq!(stats.total("signals_delivered"), 5);
    assert_eq!(
        channels(&mut p),
        [
            ("orders.*".to_string(), None, 1),
            ("orders.>".to_string(), Some("billing".to_string()), 2)
        ]
    );
}

#[test]
fn group_rotation_when_a_member_leaves() {
    let s = Server::start(&[]);
    let (mut g1, mut g2, mut g3, mut p) = (s.client(), s.client(), s.client(), s.client());
    for g in [&mut g1, &mut g2, &mut g3] {
        assert_eq!(g.req("listen", "jobs", "workers"), "ok");
    }
    assert_eq!(p.req("signal", "jobs", "1"), "ok 1");
    assert_eq!(g1.line(), "sig jobs 1");
    assert_eq!(p.req("signal", "jobs", "2"), "ok 1");
    assert_eq!(g2.line(), "sig jobs 2");
    assert_eq!(g2.req("unlisten", "jobs", "workers"), "ok");
    assert_eq!(p.req("signal", "jobs", "3"), "ok 1");
    assert_eq!(g3.line(), "sig jobs 3");
    assert_eq!(p.req("signal", "jobs", "4"), "ok 1");
    assert_eq!(g1.line(), "sig jobs 4");
    assert_eq!(
        g2.req("listen", "jobs", "workers"),
        "ok",
        "rejoins at the end"
    );
    assert_eq!(p.req("signal", "jobs", "5"), "ok 1");
    assert_eq!(g3.line(), "sig jobs 5");
    assert_eq!(p.req("signal", "jobs", "6"), "ok 1");
    assert_eq!(g2.line(), "sig jobs 6");
    for g in [&mut g1, &mut g2, &mut g3] {
        g.expect_nothing_for(Duration::from_millis(30));
    }
}

#[test]
fn overlapping_patterns_deliver_once_per_connection() {
    let s = Server::start(&[]);
    let (mut a, mut p) = (s.client(), s.client());
    for pat in ["a.b", "a.*", "a.>", ">", "*.b"] {
        assert_eq!(a.req("listen", pat, ""), "ok");
    }
    assert_eq!(p.req("signal", "a.b", "x"), "ok 1");
    assert_eq!(a.line(), "sig a.b x");
    a.expect_nothing_for(Duration::from_millis(100));

    // A group is independent of the ungrouped delivery, even on one connection.
    assert_eq!(a.req("listen", "a.>", "g"), "ok");
    assert_eq!(a.req("listen", ">", "h"), "ok");
    assert_eq!(p.req("signal", "a.b", "y"), "ok 3");
    for _ in 0..3 {
        assert_eq!(a.line(), "sig a.b y");
    }
    a.expect_nothing_for(Duration::from_millis(100));
}

#[test]
fn pattern_matching_table() {
    let s = Server::start(&[]);
    let mut p = s.client();
    let table: &[(&str, &[&str], &[&str])] = &[
        (
            "orders.created",
            &["orders.created"],
            &["orders.created.eu", "orders"],
        ),
        (
            "orders.*",
            &["orders.created", "orders.x"],
            &["orders", "orders.a.b"],
        ),
        ("orders.>", &["orders.a", "orders.a.b.c"], &["orders"]),
        ("*.eu", &["orders.eu", "users.eu"], &["eu", "a.b.eu"]),
        ("*", &["orders", "deploy-lock", "job:42"], &["orders.a"]),
        (">", &["orders", "a.b.c", "job:42"], &[]),
        ("a.*.b", &["a..b", "a.x.b"], &["a.b", "a.x.y.b"]),
        ("a..b", &["a..b"], &["a.x.b"]),
    ];
    for (pattern, matches, misses) in table {
        let mut l = s.client();
        assert_eq!(l.req("listen", pattern, ""), "ok", "listen {pattern}");
        for ch in *matches {
            assert_eq!(
                p.req("signal", ch, "m"),
                "ok 1",
                "{pattern} should match {ch}"
            );
            assert_eq!(l.line(), format!("sig {ch} m"));
        }
        for ch in *misses {
            assert_eq!(
                p.req("signal", ch, "m"),
                "ok 0",
                "{pattern} must not match {ch}"
            );
        }
        l.expect_nothing_for(Duration::from_millis(20));
        // Unsubscribe synchronously (a dropped socket is noticed asynchronously).
        assert_eq!(l.req("unlisten", pattern, ""), "ok");
    }
}

#[test]
fn publisher_receives_its_own_frame_after_its_reply() {
    let s = Server::start(&[]);
    let mut p = s.client();
    assert_eq!(p.req("listen", "self.*", ""), "ok");
    p.send_req("signal", "self.echo", "hi there");
    assert_eq!(p.line(), "ok 1");
    assert_eq!(p.line(), "sig self.echo hi there");
    assert_eq!(p.req("ping", "_", ""), "ok");
}

#[test]
fn unlisten_removes_exactly_the_pair() {
    let s = Server::start(&[]);
    let (mut a, mut p) = (s.client(), s.client());
    assert_eq!(a.req("listen", "x", ""), "ok");
    assert_eq!(a.req("listen", "x", ""), "ok", "repeat changes nothing");
    assert_eq!(a.req("listen", "x", "g"), "ok");
    assert_eq!(a.req("listen", "x.>", ""), "ok");
    assert_eq!(p.req("signal", "x", "1"), "ok 2");
    assert_eq!(a.line(), "sig x 1");
    assert_eq!(a.line(), "sig x 1");

    assert_eq!(a.req("unlisten", "x", "g"), "ok");
    assert_eq!(p.req("signal", "x", "2"), "ok 1");
    assert_eq!(a.line(), "sig x 2");
    assert_eq!(
        a.req("unlisten", "x", "other"),
        "ok",
        "not subscribed: still ok"
    );
    assert_eq!(a.req("unlisten", "x.*", ""), "ok");
    assert_eq!(a.req("unlisten", "x", ""), "ok");
    assert_eq!(p.req("signal", "x", "3"), "ok 0");
    assert_eq!(p.req("signal", "x.y", "4"), "ok 1", "x.> is still there");
    assert_eq!(a.line(), "sig x.y 4");
    assert_eq!(a.req("unlisten", "x.>", ""), "ok");
    assert_eq!(channels(&mut p), []);
    a.expect_nothing_for(Duration::from_millis(50));
}

#[test]
fn invalid_patterns_channels_and_groups() {
    let s = Server::start(&[]);
    let mut c = s.client();
    for pat in ["fo*", ">x", "a.>.b", "*a", "a.b*", "a.>>", "> ", "x y"] {
        assert_eq!(c.req("listen", pat, ""), "error", "listen {pat:?}");
    }
    for ch in ["a.*", "a.>", "*", ">", "x*y", "a.b>"] {
        assert_eq!(c.req("signal", ch, "p"), "error", "signal {ch:?}");
    }
    assert_eq!(c.req("listen", "ok.pattern", "two words"), "error");
    assert_eq!(c.req("signal", "ch", ""), "error", "empty payload");
    assert_eq!(c.req("signal", "ch", "   "), "error", "spaces only");
    assert_eq!(c.req("signal", "ch", "a\tb"), "error", "TAB");
    assert_eq!(channels(&mut c), []);
    assert_eq!(c.req("signal", "nobody.listens", "p"), "ok 0");
}

#[test]
fn payload_is_verbatim() {
    let s = Server::start(&[]);
    let (mut a, mut p) = (s.client(), s.client());
    assert_eq!(a.req("listen", "ch", ""), "ok");
    for payload in ["  lead and trail  ", "a  b   c", " x", "é ✓", "sig x y"] {
        assert_eq!(p.req("signal", "ch", payload), "ok 1");
        assert_eq!(a.line(), format!("sig ch {payload}"));
    }
}

#[test]
fn slow_consumer_is_disconnected_and_no_longer_counted() {
    let s = Server::start(&["--max-output-bytes", "4096", "--max-value-bytes", "1024"]);
    let (mut sub, mut p, mut fast) = (s.client(), s.client(), s.client());
    assert_eq!(sub.req("listen", "flood", ""), "ok");
    assert_eq!(fast.req("listen", "other", ""), "ok");
    let payload = "x".repeat(1000);

    // `sub` never reads; its kernel buffers fill, then its pending output.
    let mut sent = 0;
    loop {
        let reply = p.req("signal", "flood", &payload);
        sent += 1;
        if reply == "ok 0" {
            break;
        }
        assert_eq!(reply, "ok 1", "signal #{sent}");
        assert!(sent < 200_000, "the slow consumer was never disconnected");
    }
    let stats = p.stats();
    assert!(stats.total("slow_consumer_disconnects") >= 1);
    assert_eq!(
        channels(&mut p),
        [("other".to_string(), None, 1)],
        "its subscription is gone"
    );
    assert_eq!(p.req("signal", "flood", &payload), "ok 0");
    // Other connections are unaffected.
    assert_eq!(p.req("signal", "other", "still here"), "ok 1");
    assert_eq!(fast.line(), "sig other still here");

    // What reached `sub` is frames, then end of stream. (Output still pending
    // at the close is discarded, so the last frame may be cut short.)
    let mut frames = 0;
    loop {
        match sub.try_line_raw() {
            Ok(Some(line)) => {
                assert_eq!(line, format!("sig flood {payload}\n").as_bytes());
                frames += 1;
            }
            Ok(None) => break,
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => break,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("reading the backlog: {e}"),
        }
    }
    assert!(frames < sent, "{frames} frames of {sent} signals");
}

#[test]
fn slow_member_of_a_group_is_skipped_then_closed_when_nobody_can_take_the_frame() {
    let s = Server::start(&["--max-output-bytes", "4096", "--max-value-bytes", "1024"]);
    let (mut slow, mut fast, mut p) = (s.client(), s.client(), s.client());
    assert_eq!(slow.req("listen", "g.flood", "grp"), "ok");
    assert_eq!(fast.req("listen", "g.flood", "grp"), "ok");
    assert_eq!(fast.req("listen", "sync", ""), "ok");

    // `fast` reads everything in a thread; on `sig sync <n>` it reports how many
    // group frames it has read so far (frames to one connection keep their order).
    let (tx, rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        let mut frames = 0u64;
        loop {
            let line = fast.line();
            if line.starts_with("sig g.flood ") {
                frames += 1;
            } else if line == "sig sync stop" {
                return fast;
            } else if line.starts_with("sig sync ") {
                tx.send(frames).unwrap();
            } else {
                panic!("unexpected line {line:?}");
            }
        }
    });

    // Phase 1: `slow` never reads. Once its output is full it is skipped and
    // every frame of the group goes to `fast`; nobody is disconnected.
    let payload = "y".repeat(1000);
    let mut previous = 0;
    let mut batches = 0;
    loop {
        for _ in 0..100 {
            assert_eq!(p.req("signal", "g.flood", &payload), "ok 1");
        }
        assert_eq!(p.req("signal", "sync", &batches.to_string()), "ok 1");
        let frames = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let got = frames - previous;
        previous = frames;
        batches += 1;
        if got == 100 {
            break;
        }
        assert!(batches < 200, "the slow member was never skipped");
    }
    assert_eq!(
        s_disconnects(&mut p),
        0,
        "a member that can take the frame exists"
    );
    assert_eq!(
        channels(&mut p),
        [
            ("g.flood".to_string(), Some("grp".to_string()), 2),
            ("sync".to_string(), None, 1)
        ]
    );

    // Phase 2: `fast` stops reading too. When no member can take a frame, the
    // member first chosen is closed and the group delivers nothing.
    assert_eq!(p.req("signal", "sync", "stop"), "ok 1");
    let _fast = reader.join().unwrap();
    let mut sent = 0;
    loop {
        let reply = p.req("signal", "g.flood", &payload);
        if reply == "ok 0" {
            break;
        }
        assert_eq!(reply, "ok 1");
        sent += 1;
        assert!(sent < 200_000, "nobody was ever disconnected");
    }
    assert_eq!(s_disconnects(&mut p), 1);
    let left = channels(&mut p);
    assert_eq!(left[0], ("g.flood".to_string(), Some("grp".to_string()), 1));
    drop(slow);
}

fn s_disconnects(p: &mut Client) -> u64 {
    p.stats().total("slow_consumer_disconnects")
}

#[test]
fn max_subscriptions_two() {
    let s = Server::start(&["--max-subscriptions", "2"]);
    let mut c = s.client();
    assert_eq!(c.req("listen", "a", ""), "ok");
    assert_eq!(
        c.req("listen", "a", "g"),
        "ok",
        "another (pattern, group) pair"
    );
    assert_eq!(c.req("listen", "b", ""), "error_max_subscriptions");
    assert_eq!(c.req("listen", "a", "h"), "error_max_subscriptions");
    assert_eq!(
        c.req("listen", "a", ""),
        "ok",
        "repeat allowed at the limit"
    );
    assert_eq!(c.req("listen", "a", "g"), "ok");
    assert_eq!(c.req("watch", "w", ""), "error_max_subscriptions");
    assert_eq!(c.req("observe", "o", ""), "error_max_subscriptions");
    assert_eq!(c.req("unlisten", "a", "g"), "ok");
    assert_eq!(c.req("listen", "b", ""), "ok");
    // The limit is per connection.
    let mut d = s.client();
    assert_eq!(d.req("listen", "b", ""), "ok");
    assert_eq!(d.req("listen", "c", ""), "ok");
}

#[test]
fn disconnect_removes_subscriptions() {
    let s = Server::start(&[]);
    let (mut a, mut b, mut p) = (s.client(), s.client(), s.client());
    assert_eq!(a.req("listen", "x.>", ""), "ok");
    assert_eq!(a.req("listen", "y", "g"), "ok");
    assert_eq!(b.req("listen", "y", "g"), "ok");
    assert_eq!(
        channels(&mut p),
        [
            ("x.>".to_string(), None, 1),
            ("y".to_string(), Some("g".to_string()), 2)
        ]
    );
    drop(a);
    wait_until("A's subscriptions to go", || {
        channels(&mut p) == [("y".to_string(), Some("g".to_string()), 1)]
    });
    for n in 0..3 {
        assert_eq!(p.req("signal", "y", &n.to_string()), "ok 1");
        assert_eq!(b.line(), format!("sig y {n}"));
    }
    assert_eq!(p.req("signal", "x.z", "gone"), "ok 0");
    drop(b);
    wait_until("signal_channels to be empty", || {
        channels(&mut p).is_empty()
    });
}

#[test]
fn signal_channels_are_sorted_by_pattern_then_group() {
    let s = Server::start(&[]);
    let mut a = s.client();
    for (pat, grp) in [("b", "z"), ("b", ""), ("a.>", "g"), ("b", "a"), ("a.*", "")] {
        assert_eq!(a.req("listen", pat, grp), "ok");
    }
    let got: Vec<(String, Option<String>)> = channels(&mut a)
        .into_iter()
        .map(|(p, g, _)| (p, g))
        .collect();
    let want = [
        ("a.*", None),
        ("a.>", Some("g")),
        ("b", None),
        ("b", Some("a")),
        ("b", Some("z")),
    ];
    let want: Vec<(String, Option<String>)> = want
        .iter()
        .map(|(p, g)| (p.to_string(), g.map(str::to_string)))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn signals_reach_a_parked_subscriber() {
    let s = Server::start(&[]);
    let (mut a, mut p) = (s.client(), s.client());
    assert_eq!(a.req("listen", "news", ""), "ok");
    a.send_req("blpop", "inbox", "30");
    wait_until("A parked", || {
        p.stats()
            .entry("lists", "inbox")
            .is_some_and(|e| e.get("pop_waiters").u64() == 1)
    });
    assert_eq!(p.req("signal", "news", "while parked"), "ok 1");
    assert_eq!(a.line(), "sig news while parked");
    assert_eq!(p.req("rpush", "inbox", "mail"), "ok 0");
    assert_eq!(a.line(), "ok mail");
}
