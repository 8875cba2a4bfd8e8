//! Counters (protocol.md §8.9, §7.1, §7.4, §10): signed 64-bit values, overflow
//! refused without change, `--max-keys` across counters, KV entries and lists.

use crate::common;

use common::{Client, Json, Server};

fn counter(c: &mut Client, key: &str) -> Option<Json> {
    c.stats()
        .entry("counters", key)
        .map(|e| e.get("value").clone())
}

fn num(n: i64) -> Option<Json> {
    Some(Json::Num(n.to_string()))
}

#[test]
fn spec_example_8_9() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let steps = [
        ("incr", "hits", "1", "ok 1"),
        ("incr", "hits", "41", "ok 42"),
        ("decr", "hits", "50", "ok -8"),
        ("get", "hits", "", "ok -8"),
        ("cset", "hits", "9223372036854775807", "ok"),
        ("incr", "hits", "1", "error"),
        ("get", "never-set", "", "ok 0"),
    ];
    for (cmd, key, arg, want) in steps {
        assert_eq!(c.req(cmd, key, arg), want, "{cmd} {key} {arg}");
    }
    assert_eq!(c.req("get", "hits", ""), "ok 9223372036854775807");
}

#[test]
fn overflow_in_both_directions_leaves_the_value_unchanged() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let (max, min) = (i64::MAX.to_string(), i64::MIN.to_string());

    assert_eq!(c.req("cset", "k", &max), "ok");
    assert_eq!(c.req("incr", "k", "1"), "error");
    assert_eq!(c.req("decr", "k", "-1"), "error");
    assert_eq!(c.req("incr", "k", &max), "error");
    assert_eq!(c.req("get", "k", ""), format!("ok {max}"));
    assert_eq!(c.req("decr", "k", &max), "ok 0");

    assert_eq!(c.req("cset", "k", &min), "ok");
    assert_eq!(c.req("decr", "k", "1"), "error");
    assert_eq!(c.req("incr", "k", "-1"), "error");
    assert_eq!(c.req("incr", "k", &min), "error");
    assert_eq!(c.req("get", "k", ""), format!("ok {min}"));
    assert_eq!(c.req("incr", "k", &max), "ok -1");

    // 0 − i64::MIN does not fit either; the counter is not created.
    assert_eq!(c.req("decr", "fresh", &min), "error");
    assert_eq!(c.req("get", "fresh", ""), "ok 0");
    assert_eq!(counter(&mut c, "fresh"), None);
    assert_eq!(c.req("incr", "fresh", &min), format!("ok {min}"));
}

#[test]
fn negative_deltas_and_integer_syntax() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(c.req("decr", "k", "-5"), "ok 5");
    assert_eq!(c.req("incr", "k", "-7"), "ok -2");
    assert_eq!(c.req("incr", "k", "+3"), "ok 1");
    assert_eq!(c.req("incr", "k", "  007\t"), "ok 8");
    assert_eq!(c.req("cset", "k", "-0"), "ok");
    assert_eq!(c.req("get", "k", ""), "ok 0");
    for (cmd, arg) in [
        ("incr", ""),
        ("incr", "1.5"),
        ("incr", "0x10"),
        ("incr", "1 2"),
        ("incr", "1_000"),
        ("decr", "9223372036854775808"),
        ("cset", ""),
        ("cset", "abc"),
        ("cset", "-9223372036854775809"),
    ] {
        assert_eq!(c.req(cmd, "k", arg), "error", "{cmd} {arg:?}");
    }
    assert_eq!(c.req("incr", "bad key", "1"), "error");
    assert_eq!(
        c.req("get", "k", ""),
        "ok 0",
        "failed commands change nothing"
    );
}

#[test]
fn max_keys_counts_counters_kv_and_lists_together() {
    let s = Server::start(&["--max-keys", "1"]);
    let mut c = s.client();
    assert_eq!(c.req("incr", "a", "1"), "ok 1", "key N (= 1) is allowed");
    assert_eq!(c.req("kset", "b", "v"), "error_max_keys");
    assert_eq!(c.req("incr", "b", "1"), "error_max_keys");
    assert_eq!(c.req("decr", "b", "1"), "error_max_keys");
    assert_eq!(c.req("cset", "b", "1"), "error_max_keys");
    assert_eq!(c.req("lpush", "b", "v"), "error_max_keys");
    assert_eq!(c.req("kcas", "b", "\tv\t"), "error_max_keys");
    assert_eq!(c.req("get", "b", ""), "ok 0", "get creates nothing");
    assert_eq!(c.req("incr", "a", "1"), "ok 2", "an existing key is fine");
    assert_eq!(c.req("cset", "a", "0"), "ok");

    let s = Server::start(&["--max-keys", "2"]);
    let mut c = s.client();
    assert_eq!(c.req("cset", "a", "5"), "ok");
    assert_eq!(c.req("kset", "b", "v"), "ok");
    assert_eq!(c.req("rpush", "c", "v"), "error_max_keys");
    assert_eq!(c.req("incr", "c", "1"), "error_max_keys");
    // Deleting the KV entry frees a slot.
    assert_eq!(c.req("kdel", "b", ""), "ok");
    assert_eq!(c.req("incr", "c", "1"), "ok 1");
    assert_eq!(c.req("kset", "b", "v"), "error_max_keys");
}

#[test]
fn stats_counters() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert!(c.stats().get("counters").arr().is_empty());
    assert_eq!(c.req("incr", "zeta", "3"), "ok 3");
    assert_eq!(c.req("decr", "alpha", "8"), "ok -8");
    assert_eq!(c.req("cset", "mid", "0"), "ok");
    assert_eq!(c.req("get", "absent", ""), "ok 0");
    let stats = c.stats();
    assert_eq!(stats.keys("counters"), ["alpha", "mid", "zeta"]);
    let alpha = stats.entry("counters", "alpha").unwrap();
    assert_eq!(alpha.get("value"), &Json::Num("-8".into()));
    assert!(alpha.get("idle_s").f64() >= 0.0);
    assert_eq!(counter(&mut c, "zeta"), num(3));
    assert_eq!(counter(&mut c, "mid"), num(0));
}
