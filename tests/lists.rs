//! Lists (protocol.md §8.11, §7.4, §4.4): pushes and pops at both ends, Redis
//! `lrange` rules with JSON escaping, FIFO blocking pops with hand-off.

use crate::common;

use common::{Client, Server, wait_until};
use std::time::{Duration, Instant};

/// The `lists` entry of `key` as (len, pop_waiters), if listed.
fn list(c: &mut Client, key: &str) -> Option<(u64, u64)> {
    c.stats()
        .entry("lists", key)
        .map(|e| (e.get("len").u64(), e.get("pop_waiters").u64()))
}

fn wait_poppers(c: &mut Client, key: &str, n: u64) {
    wait_until(&format!("{n} blocked poppers on {key:?}"), || {
        list(c, key).map_or(0, |l| l.1) == n
    });
}

#[test]
fn spec_examples_8_11() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let steps = [
        ("rpush", "jobs", "build 1", "ok 1"),
        ("rpush", "jobs", "build 2", "ok 2"),
        ("lpush", "jobs", "urgent", "ok 3"),
        (
            "lrange",
            "jobs",
            "0 -1",
            r#"ok ["urgent","build 1","build 2"]"#,
        ),
        ("lpop", "jobs", "", "ok urgent"),
        ("rpop", "jobs", "", "ok build 2"),
        ("llen", "jobs", "", "ok 1"),
        ("lrange", "nothing", "0 -1", "ok []"),
    ];
    for (cmd, key, arg, want) in steps {
        assert_eq!(c.req(cmd, key, arg), want, "{cmd} {key} {arg:?}");
    }

    let (mut a, mut b) = (s.client(), s.client());
    a.send_req("blpop", "tasks", "30");
    wait_poppers(&mut c, "tasks", 1);
    assert_eq!(b.req("rpush", "tasks", "resize img-7"), "ok 0");
    assert_eq!(a.line(), "ok resize img-7");
    assert_eq!(a.req("blpop", "tasks", "0"), "nil");
    assert_eq!(list(&mut c, "tasks"), None);
}

#[test]
fn lrange_index_rules() {
    let s = Server::start(&[]);
    let mut c = s.client();
    for v in ["a", "b", "c", "d", "e"] {
        c.req("rpush", "l", v);
    }
    let (min, max) = (i64::MIN, i64::MAX);
    let min_max = format!("{min} {max}");
    let cases: [(&str, &str); 16] = [
        ("0 -1", r#"["a","b","c","d","e"]"#),
        ("0 4", r#"["a","b","c","d","e"]"#),
        ("1 3", r#"["b","c","d"]"#),
        ("2 2", r#"["c"]"#),
        ("-2 -1", r#"["d","e"]"#),
        ("-5 0", r#"["a"]"#),
        ("-100 1", r#"["a","b"]"#),
        ("3 100", r#"["d","e"]"#),
        ("-100 100", r#"["a","b","c","d","e"]"#),
        (&min_max, r#"["a","b","c","d","e"]"#),
        ("5 10", "[]"),
        ("4 4", r#"["e"]"#),
        ("3 1", "[]"),
        ("-1 -2", "[]"),
        ("0 -6", "[]"),
        ("-100 -6", "[]"),
    ];
    for (arg, want) in cases {
        assert_eq!(
            c.req("lrange", "l", arg),
            format!("ok {want}"),
            "lrange {arg}"
        );
    }
    assert_eq!(c.req("lrange", "l", "  1\t 2 "), r#"ok ["b","c"]"#);
    for arg in ["", "0", "0 1 2", "a b", "0 9223372036854775808"] {
        assert_eq!(c.req("lrange", "l", arg), "error", "lrange {arg:?}");
    }
    for arg in ["0 -1", "5 1", "-3 -1"] {
        assert_eq!(c.req("lrange", "absent", arg), "ok []");
    }
}

#[test]
fn lrange_json_escaping() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(c.req("rpush", "j", r#"say "hi" \ ok"#), "ok 1");
    assert_eq!(c.req("rpush", "j", "\\\\\""), "ok 2");
    assert_eq!(c.req("rpush", "j", "ctl\u{1}x"), "ok 3");
    assert_eq!(c.req("rpush", "j", "é / ✓"), "ok 4");
    assert_eq!(c.req("rpush", "j", " [1,2] "), "ok 5");
    assert_eq!(
        c.req("lrange", "j", "0 -1"),
        r#"ok ["say \"hi\" \\ ok","\\\\\"","ctl\u0001x","é / ✓"," [1,2] "]"#
    );
    assert_eq!(c.req("lpop", "j", ""), r#"ok say "hi" \ ok"#);
    assert_eq!(c.req("rpop", "j", ""), "ok  [1,2] ");
}

#[test]
fn pops_and_lengths() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(c.req("lpop", "l", ""), "nil");
    assert_eq!(c.req("rpop", "l", ""), "nil");
    assert_eq!(c.req("llen", "l", ""), "ok 0");
    assert_eq!(c.req("lpush", "l", "1"), "ok 1");
    assert_eq!(c.req("lpush", "l", "2"), "ok 2");
    assert_eq!(c.req("rpush", "l", "3"), "ok 3");
    assert_eq!(c.req("blpop", "l", "0"), "ok 2");
    assert_eq!(c.req("brpop", "l", "0"), "ok 3");
    assert_eq!(
        c.req("brpop", "l", "5"),
        "ok 1",
        "a value is there: no parking"
    );
    assert_eq!(c.req("brpop", "l", "0"), "nil");
    assert_eq!(c.req("lpush", "l", ""), "error", "empty value");
    assert_eq!(c.req("lpush", "l", "a\tb"), "error", "TAB in a value");
    assert_eq!(c.req("blpop", "l", ""), "error");
    assert_eq!(c.req("blpop", "l", "-1"), "error");
    assert_eq!(c.req("llen", "l", ""), "ok 0");
}

#[test]
fn blocking_pops_are_served_fifo_across_ends() {
    let s = Server::start(&[]);
    let mut p = s.client();
    let (mut a, mut b, mut c) = (s.client(), s.client(), s.client());
    a.send_req("blpop", "q", "30");
    wait_poppers(&mut p, "q", 1);
    b.send_req("brpop", "q", "30");
    wait_poppers(&mut p, "q", 2);
    c.send_req("blpop", "q", "30");
    wait_poppers(&mut p, "q", 3);
    assert_eq!(list(&mut p, "q"), Some((0, 3)));

    assert_eq!(p.req("rpush", "q", "first"), "ok 0");
    assert_eq!(a.line(), "ok first");
    assert_eq!(p.req("lpush", "q", "second"), "ok 0");
    assert_eq!(b.line(), "ok second");
    assert_eq!(p.req("rpush", "q", "third"), "ok 0");
    assert_eq!(c.line(), "ok third");
    assert_eq!(list(&mut p, "q"), None, "empty and no popper: deleted");
    assert_eq!(p.req("rpush", "q", "fourth"), "ok 1");
    a.expect_nothing_for(Duration::from_millis(50));
    b.expect_nothing_for(Duration::from_millis(1));
    c.expect_nothing_for(Duration::from_millis(1));
    assert_eq!(list(&mut p, "q"), Some((1, 0)));
}

#[test]
fn blocked_pop_times_out_with_nil() {
    let s = Server::start(&[]);
    let mut a = s.client();
    let mut st = s.client();
    let start = Instant::now();
    a.send_req("brpop", "empty", "1");
    wait_poppers(&mut st, "empty", 1);
    assert_eq!(a.line(), "nil");
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(1000), "early: {waited:?}");
    assert!(waited < Duration::from_millis(3000), "late: {waited:?}");
    assert_eq!(
        list(&mut st, "empty"),
        None,
        "the list created for the popper is gone"
    );
    assert_eq!(a.req("ping", "_", ""), "ok");
}

#[test]
fn max_list_length_refuses_pushes_but_not_hand_offs() {
    let s = Server::start(&["--max-list-length", "2"]);
    let mut c = s.client();
    assert_eq!(c.req("rpush", "l", "a"), "ok 1");
    assert_eq!(c.req("lpush", "l", "b"), "ok 2");
    assert_eq!(c.req("rpush", "l", "c"), "error_list_full");
    assert_eq!(c.req("lpush", "l", "c"), "error_list_full");
    assert_eq!(c.req("lrange", "l", "0 -1"), r#"ok ["b","a"]"#);
    assert_eq!(c.req("lpop", "l", ""), "ok b");
    assert_eq!(c.req("rpush", "l", "c"), "ok 2");

    let mut a = s.client();
    a.send_req("blpop", "h", "30");
    wait_poppers(&mut c, "h", 1);
    assert_eq!(c.req("rpush", "h", "x"), "ok 0");
    assert_eq!(a.line(), "ok x");

    let s = Server::start(&["--max-list-length", "1"]);
    let mut c = s.client();
    let mut a = s.client();
    a.send_req("brpop", "h", "30");
    wait_poppers(&mut c, "h", 1);
    assert_eq!(c.req("lpush", "h", "x"), "ok 0");
    assert_eq!(a.line(), "ok x");
    assert_eq!(c.req("lpush", "h", "y"), "ok 1");
    assert_eq!(c.req("lpush", "h", "z"), "error_list_full");
}

#[test]
fn list_is_deleted_when_empty() {
    let s = Server::start(&["--max-keys", "1"]);
    let mut c = s.client();
    assert_eq!(c.req("rpush", "a", "1"), "ok 1");
    assert_eq!(list(&mut c, "a"), Some((1, 0)));
    assert_eq!(c.req("rpush", "b", "1"), "error_max_keys");
    assert_eq!(c.req("rpop", "a", ""), "ok 1");
    assert_eq!(list(&mut c, "a"), None);
    assert!(c.stats().get("lists").arr().is_empty());
    // The deleted list no longer counts toward --max-keys.
    assert_eq!(c.req("rpush", "b", "1"), "ok 1");
    // A blocking pop that would park on an absent list would create it.
    assert_eq!(c.req("blpop", "c", "5"), "error_max_keys");
    assert_eq!(c.req("blpop", "c", "0"), "nil");
}

#[test]
fn disconnect_while_blocked_removes_the_popper() {
    let s = Server::start(&[]);
    let mut p = s.client();
    let mut a = s.client();
    let mut b = s.client();
    a.send_req("blpop", "q", "30");
    wait_poppers(&mut p, "q", 1);
    b.send_req("brpop", "q", "30");
    wait_poppers(&mut p, "q", 2);
    drop(a);
    wait_poppers(&mut p, "q", 1);
    assert_eq!(
        p.req("rpush", "q", "v1"),
        "ok 0",
        "handed to the remaining popper"
    );
    assert_eq!(b.line(), "ok v1");
    drop(b);
    assert_eq!(list(&mut p, "q"), None);

    let mut a = s.client();
    a.send_req("blpop", "r", "30");
    wait_poppers(&mut p, "r", 1);
    drop(a);
    wait_until("the popper to leave", || list(&mut p, "r").is_none());
    assert_eq!(
        p.req("rpush", "r", "kept"),
        "ok 1",
        "not lost to a closed popper"
    );
    assert_eq!(p.req("llen", "r", ""), "ok 1");
    assert_eq!(list(&mut p, "r"), Some((1, 0)));
}

#[test]
fn a_list_created_for_a_blocked_popper_counts_toward_max_keys() {
    let s = Server::start(&["--max-keys", "1"]);
    let (mut a, mut c) = (s.client(), s.client());
    a.send_req("blpop", "q", "30");
    wait_poppers(&mut c, "q", 1);
    assert_eq!(c.req("incr", "n", "1"), "error_max_keys");
    assert_eq!(c.req("rpush", "other", "v"), "error_max_keys");
    assert_eq!(c.req("rpush", "q", "v"), "ok 0");
    assert_eq!(a.line(), "ok v");
    assert_eq!(c.req("incr", "n", "1"), "ok 1", "the empty list is gone");
}
