//! Key-value store (protocol.md §8.10, §3.4, §2.9, §10): verbatim values, TAB
//! separated TTLs, timer expiry, compare-and-set, value size limit, stats.

use crate::common;

use common::{Client, Server};
use std::thread;
use std::time::{Duration, Instant};

/// The `kv_entries` entry of `key` as (value_len, ttl or None for null).
fn kv_entry(c: &mut Client, key: &str) -> Option<(u64, Option<f64>)> {
    c.stats().entry("kv_entries", key).map(|e| {
        let ttl = e.get("ttl");
        (
            e.get("value_len").u64(),
            (!ttl.is_null()).then(|| ttl.f64()),
        )
    })
}

#[test]
fn spec_example_8_10() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let steps = [
        ("kset", "greeting", "hello world", "ok"),
        ("kget", "greeting", "", "ok hello world"),
        ("kset", "session:42", "alice\t60", "ok"),
        ("kcas", "greeting", "hello world\tbonjour\t", "ok"),
        ("kcas", "greeting", "hello world\tciao\t", "cas_conflict"),
        ("kcas", "fresh", "\tfirst\t30", "ok"),
        ("kcas", "fresh", "\tsecond\t30", "cas_conflict"),
        ("kdel", "greeting", "", "ok"),
        ("kget", "greeting", "", "nil"),
        ("kset", "bad", "x\t10\t5", "error"),
    ];
    for (cmd, key, arg, want) in steps {
        assert_eq!(c.req(cmd, key, arg), want, "{cmd} {key} {arg:?}");
    }
    assert_eq!(c.req("kget", "session:42", ""), "ok alice");
    assert_eq!(c.req("kget", "fresh", ""), "ok first");
    assert_eq!(c.req("kget", "bad", ""), "nil");
}

#[test]
fn values_are_verbatim() {
    let s = Server::start(&[]);
    let mut c = s.client();
    for value in [
        "  padded both  ",
        " lead",
        "trail ",
        " ",
        "a  b",
        "é ✓ 日本",
    ] {
        assert_eq!(c.req("kset", "v", value), "ok", "{value:?}");
        assert_eq!(c.req("kget", "v", ""), format!("ok {value}"), "{value:?}");
    }
    // A value with spaces and a TTL.
    assert_eq!(c.req("kset", "v", "  x  \t100"), "ok");
    assert_eq!(c.req("kget", "v", ""), "ok   x  ");
    assert_eq!(kv_entry(&mut c, "v").map(|e| e.0), Some(5));
}

#[test]
fn ttl_expiry_by_timer() {
    let s = Server::start(&[]);
    let (mut c, mut w) = (s.client(), s.client());
    assert_eq!(w.req("watch", "t", ""), "ok");
    let start = Instant::now();
    assert_eq!(c.req("kset", "t", "v\t1"), "ok");
    assert_eq!(w.line(), "watch kset t");
    thread::sleep(Duration::from_millis(700).saturating_sub(start.elapsed()));
    assert_eq!(c.req("kget", "t", ""), "ok v", "still there at 0.7 s");
    let ttl = kv_entry(&mut c, "t").unwrap().1.expect("a numeric ttl");
    assert!(ttl > 0.0 && ttl <= 0.31, "ttl {ttl}");

    // The timer removes it (observable through the watch event) never early.
    assert_eq!(w.line(), "watch expire t");
    let at = start.elapsed();
    assert!(at >= Duration::from_millis(1000), "early expiry at {at:?}");
    thread::sleep(Duration::from_millis(1200).saturating_sub(start.elapsed()));
    assert_eq!(c.req("kget", "t", ""), "nil");
    let stats = c.stats();
    assert!(stats.entry("kv_entries", "t").is_none());
    assert_eq!(stats.total("kv_expirations"), 1);
}

#[test]
fn kset_without_ttl_removes_an_earlier_ttl() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(c.req("kset", "a", "one\t1"), "ok");
    assert_eq!(c.req("kset", "a", "two"), "ok");
    assert_eq!(c.req("kset", "b", "one\t1"), "ok");
    assert_eq!(c.req("kset", "b", "two\t0"), "ok", "TTL 0: no expiry");
    assert_eq!(c.req("kset", "c", "one\t100"), "ok");
    assert_eq!(
        c.req("kset", "c", "two\t1"),
        "ok",
        "a shorter TTL replaces a longer one"
    );
    assert_eq!(kv_entry(&mut c, "a"), Some((3, None)));
    assert_eq!(kv_entry(&mut c, "b"), Some((3, None)));
    thread::sleep(Duration::from_millis(1300));
    assert_eq!(c.req("kget", "a", ""), "ok two");
    assert_eq!(c.req("kget", "b", ""), "ok two");
    assert_eq!(c.req("kget", "c", ""), "nil");
}

#[test]
fn kcas_rules() {
    let s = Server::start(&[]);
    let mut c = s.client();
    // Create only if absent.
    assert_eq!(
        c.req("kcas", "k", "x\ty\t"),
        "cas_conflict",
        "absent, old given"
    );
    assert_eq!(c.req("kget", "k", ""), "nil");
    assert_eq!(c.req("kcas", "k", "\tfirst\t"), "ok");
    assert_eq!(
        kv_entry(&mut c, "k"),
        Some((5, None)),
        "empty TTL means none"
    );
    assert_eq!(c.req("kcas", "k", "\tagain\t"), "cas_conflict", "exists");
    // Byte-for-byte comparison of the old value.
    assert_eq!(c.req("kcas", "k", "First\tz\t"), "cas_conflict");
    assert_eq!(c.req("kcas", "k", "first \tz\t"), "cas_conflict");
    assert_eq!(c.req("kget", "k", ""), "ok first");
    assert_eq!(c.req("kcas", "k", "first\t second \t60"), "ok");
    assert_eq!(c.req("kget", "k", ""), "ok  second ");
    let ttl = kv_entry(&mut c, "k").unwrap().1.expect("ttl set by kcas");
    assert!(ttl > 59.0 && ttl <= 60.01, "ttl {ttl}");
    // A successful kcas replaces the TTL (here: removes it).
    assert_eq!(c.req("kcas", "k", " second \tthird\t0"), "ok");
    assert_eq!(kv_entry(&mut c, "k"), Some((5, None)));
    // Malformed.
    for arg in [
        "a\tb",
        "a",
        "a\t\t",
        "a\tb\tc",
        "a\tb\t1\t",
        "a\tb\t-1",
        "\t\t",
    ] {
        assert_eq!(c.req("kcas", "k", arg), "error", "{arg:?}");
    }
    assert_eq!(c.req("kget", "k", ""), "ok third");
    // A kcas with a 1 s TTL expires like a kset.
    assert_eq!(c.req("kcas", "k", "third\tfourth\t1"), "ok");
    thread::sleep(Duration::from_millis(1300));
    assert_eq!(c.req("kget", "k", ""), "nil");
}

#[test]
fn value_size_limit_keeps_the_connection_open() {
    let s = Server::start(&["--max-value-bytes", "16"]);
    let mut c = s.client();
    let v16 = "0123456789abcdef";
    let v17 = "0123456789abcdefg";
    assert_eq!(c.req("kset", "k", v16), "ok");
    assert_eq!(c.req("kget", "k", ""), format!("ok {v16}"));
    assert_eq!(c.req("kset", "k", v17), "error");
    assert_eq!(c.req("kset", "k", &format!("{v17}\t5")), "error");
    assert_eq!(c.req("kcas", "k", &format!("{v16}\t{v17}\t")), "error");
    assert_eq!(c.req("kcas", "k", &format!("{v17}\tx\t")), "error");
    assert_eq!(c.req("ping", "_", ""), "ok", "the connection stays open");
    assert_eq!(c.req("kget", "k", ""), format!("ok {v16}"), "unchanged");
    // Multi-byte characters count in bytes: 8 × 'é' = 16 bytes, 9 = 18.
    assert_eq!(c.req("kset", "u", &"é".repeat(8)), "ok");
    assert_eq!(c.req("kset", "u", &"é".repeat(9)), "error");
}

#[test]
fn tabs_and_empty_values() {
    let s = Server::start(&[]);
    let mut c = s.client();
    for arg in [
        "",
        "\t5",
        "v\t",
        "v\tx",
        "v\t-1",
        "v\t+1",
        "v\t 1",
        "v\t1 ",
        "v\t1.5",
        "v\t9223372037",
        "a\tb\tc",
        "x\ry",
    ] {
        assert_eq!(c.req("kset", "k", arg), "error", "kset {arg:?}");
    }
    assert_eq!(c.req("kget", "k", ""), "nil", "nothing was stored");
    assert_eq!(
        c.req("kset", "k", "v\t007"),
        "ok",
        "leading zeros are digits"
    );
    assert!(kv_entry(&mut c, "k").unwrap().1.is_some());
    assert_eq!(c.req("kset", "bad key", "v"), "error");
    assert_eq!(c.req("kget", "absent", ""), "nil");
    assert_eq!(c.req("kdel", "absent", ""), "ok");
    assert_eq!(c.req("kget", "k", ""), "ok v");
}

#[test]
fn stats_kv_entries() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert!(c.stats().get("kv_entries").arr().is_empty());
    assert_eq!(c.req("kset", "b.ttl", "vvv\t60"), "ok");
    assert_eq!(c.req("kset", "a.plain", "hello"), "ok");
    let stats = c.stats();
    assert_eq!(stats.keys("kv_entries"), ["a.plain", "b.ttl"]);
    let a = stats.entry("kv_entries", "a.plain").unwrap();
    assert_eq!(a.get("value_len").u64(), 5);
    assert!(a.get("ttl").is_null(), "no TTL is null: {a:?}");
    assert!(a.get("idle_s").f64() >= 0.0);
    let b = stats.entry("kv_entries", "b.ttl").unwrap();
    assert_eq!(b.get("value_len").u64(), 3);
    let ttl = b.get("ttl").f64();
    assert!(ttl > 59.0 && ttl <= 60.01, "ttl {ttl}");
    assert_eq!(c.req("kdel", "a.plain", ""), "ok");
    assert_eq!(c.stats().keys("kv_entries"), ["b.ttl"]);
}

#[test]
fn no_command_observes_an_entry_past_its_deadline() {
    let s = Server::start(&[]);
    let mut c = s.client();
    for round in 0..3 {
        assert_eq!(c.req("kset", "d", "v\t1"), "ok");
        // The deadline is at most 1 s (+1 ms) after this reply arrived.
        let replied = Instant::now();
        thread::sleep(Duration::from_millis(1005 + 5 * round));
        assert!(replied.elapsed() >= Duration::from_millis(1002));
        assert_eq!(c.req("kget", "d", ""), "nil", "round {round}");
    }
}
