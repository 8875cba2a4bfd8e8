//! Unit tests of [`super`] (the body validator): one case per rule of http.md §4.2.

use super::*;
use crate::http::route::{Op, route_of};

const LIM: CommandLimits = CommandLimits {
    max_value_bytes: 16,
};

fn kind(op: Op) -> BodyKind {
    route_of(op).map(|r| r.body).unwrap_or(BodyKind::Empty)
}

fn p(op: Op, body: &str) -> Result<ValidatedBody, BodyError> {
    parse(kind(op), body.as_bytes(), &LIM)
}

fn bad(op: Op, body: &str) -> String {
    match p(op, body) {
        Err(e) => e.detail,
        Ok(b) => panic!("{op:?} {body}: accepted as {b:?}"),
    }
}

const TOKEN: &str = "18ea9db47e590001d433357e6ef5d88b";

#[test]
fn empty_bodies() {
    assert_eq!(p(Op::GetKv, ""), Ok(ValidatedBody::default()));
    assert_eq!(p(Op::DeleteKv, ""), Ok(ValidatedBody::default()));
    assert!(bad(Op::GetKv, "{}").contains("no request body"));
    assert!(bad(Op::DeleteKv, " ").contains("no request body"));
    // "empty or {}"
    for op in [
        Op::CreateSession,
        Op::PingSession,
        Op::LPop,
        Op::RPop,
        Op::EnqueueLock,
    ] {
        assert_eq!(p(op, ""), Ok(ValidatedBody::default()), "{op:?}");
        assert_eq!(p(op, "{}"), Ok(ValidatedBody::default()), "{op:?}");
        assert_eq!(p(op, " {\n}\r\n"), Ok(ValidatedBody::default()), "{op:?}");
    }
    assert!(bad(Op::CreateSession, r#"{"lease_ttl_s":5}"#).contains("not accepted"));
    // An object is required elsewhere.
    assert!(bad(Op::AcquireLock, "").contains("required"));
    assert!(bad(Op::SetKv, "").contains("required"));
}

#[test]
fn only_one_object() {
    for body in [
        "[]",
        "[10, null]",
        "null",
        "10",
        "\"x\"",
        "{",
        "{}{}",
        "{} x",
        "{\"acquire_timeout_s\":1}}",
        "\u{feff}{}",
        "{'acquire_timeout_s':1}",
    ] {
        bad(Op::AcquireLock, body);
    }
    // Whitespace around the object is fine.
    assert!(p(Op::AcquireLock, " \t{\"acquire_timeout_s\":1}\r\n ").is_ok());
}

#[test]
fn members_checked_against_the_route() {
    assert!(bad(Op::AcquireLock, r#"{"acquire_timeout_s":1,"bogus":1}"#).contains("bogus"));
    assert!(bad(Op::AcquireLock, r#"{"acquire_timeout_s":1,"token":"x"}"#).contains("token"));
    assert!(bad(Op::AcquireLock, r#"{"lease_ttl_s":5}"#).contains("acquire_timeout_s is required"));
    assert!(
        bad(
            Op::AcquireLock,
            r#"{"acquire_timeout_s":1,"acquire_timeout_s":2}"#
        )
        .contains("duplicate")
    );
    // null counts as omitted: fine for an optional member or one not accepted here,
    // but a required one given as null is missing.
    assert!(
        p(
            Op::AcquireLock,
            r#"{"acquire_timeout_s":1,"lease_ttl_s":null,"token":null}"#
        )
        .is_ok()
    );
    assert!(bad(Op::AcquireLock, r#"{"acquire_timeout_s":null}"#).contains("required"));
    assert!(bad(Op::WaitLock, r#"{"acquire_timeout_s":1}"#).contains("not accepted"));
    assert!(bad(Op::AcquireLock, r#"{"timeout_s":1}"#).contains("not accepted"));
}

#[test]
fn integers() {
    let b = p(
        Op::AcquireLock,
        r#"{"acquire_timeout_s":10,"lease_ttl_s":60}"#,
    )
    .unwrap();
    assert_eq!((b.timeout, b.lease), (Some(10), Some(60)));
    let b = p(
        Op::AcquireLock,
        r#"{"acquire_timeout_s":0,"lease_ttl_s":0}"#,
    )
    .unwrap();
    assert_eq!((b.timeout, b.lease), (Some(0), None), "lease 0 = default");
    let b = p(
        Op::AcquireLock,
        r#"{"acquire_timeout_s":9223372036,"lease_ttl_s":9223372036}"#,
    )
    .unwrap();
    assert_eq!(
        (b.timeout, b.lease),
        (Some(9_223_372_036), Some(9_223_372_036))
    );
    for body in [
        r#"{"acquire_timeout_s":10.0}"#,
        r#"{"acquire_timeout_s":1e1}"#,
        r#"{"acquire_timeout_s":1.5}"#,
        r#"{"acquire_timeout_s":-1}"#,
        r#"{"acquire_timeout_s":"10"}"#,
        r#"{"acquire_timeout_s":true}"#,
        r#"{"acquire_timeout_s":9223372037}"#,
        r#"{"acquire_timeout_s":18446744073709551616}"#,
        r#"{"acquire_timeout_s":1,"lease_ttl_s":9223372037}"#,
        r#"{"acquire_timeout_s":1,"lease_ttl_s":-5}"#,
    ] {
        bad(Op::AcquireLock, body);
    }
    assert_eq!(
        p(Op::WaitLock, r#"{"timeout_s":30}"#).unwrap().timeout,
        Some(30)
    );
    assert!(bad(Op::WaitLock, r#"{"timeout_s":9223372037}"#).contains("timeout_s"));
}

#[test]
fn limits_and_counts() {
    let sem = |l: &str| {
        p(
            Op::AcquireSem,
            &format!(r#"{{"acquire_timeout_s":0,"limit":{l}}}"#),
        )
    };
    assert_eq!(sem("1").unwrap().limit, Some(1));
    assert_eq!(sem("1048576").unwrap().limit, Some(1_048_576));
    for l in ["0", "1048577", "-1", "4294967297", "2.0"] {
        assert!(sem(l).is_err(), "{l}");
    }
    let bw = |c: &str| {
        p(
            Op::WaitBarrier,
            &format!(r#"{{"count":{c},"timeout_s":5}}"#),
        )
    };
    assert_eq!(bw("3").unwrap().count, Some(3));
    assert!(bw("0").is_err());
    assert!(bw("1048577").is_err());
    assert!(bad(Op::WaitBarrier, r#"{"count":3}"#).contains("timeout_s is required"));
}

#[test]
fn mode_and_token() {
    let b = p(Op::AcquireRw, r#"{"mode":"read","acquire_timeout_s":5}"#).unwrap();
    assert_eq!(b.mode, Some(RwMode::Read));
    let b = p(Op::EnqueueRw, r#"{"mode":"write"}"#).unwrap();
    assert_eq!(b.mode, Some(RwMode::Write));
    for m in [r#""Read""#, r#""""#, r#""rw""#, "1"] {
        bad(Op::EnqueueRw, &format!(r#"{{"mode":{m}}}"#));
    }
    let b = p(Op::ReleaseLock, &format!(r#"{{"token":"{TOKEN}"}}"#)).unwrap();
    assert_eq!(b.token.as_deref(), Some(TOKEN.as_bytes()));
    for t in [
        "18EA9DB47E590001D433357E6EF5D88B",
        "18ea9db47e590001d433357e6ef5d88",
        "18ea9db47e590001d433357e6ef5d88b0",
        " 18ea9db47e590001d433357e6ef5d88b",
        "18ea9db47e590001d433357e6ef5d88g",
        "",
    ] {
        assert!(
            bad(Op::ReleaseLock, &format!(r#"{{"token":"{t}"}}"#)).contains("token"),
            "{t}"
        );
    }
    let b = p(
        Op::RenewLock,
        &format!(r#"{{"token":"{TOKEN}","lease_ttl_s":120}}"#),
    )
    .unwrap();
    assert_eq!(b.lease, Some(120));
}

#[test]
fn counters() {
    assert_eq!(
        p(Op::IncrCounter, r#"{"delta":-5}"#).unwrap().delta,
        Some(-5)
    );
    assert_eq!(
        p(Op::IncrCounter, r#"{"delta":-9223372036854775808}"#)
            .unwrap()
            .delta,
        Some(i64::MIN)
    );
    bad(Op::IncrCounter, r#"{"delta":9223372036854775808}"#);
    bad(Op::IncrCounter, r#"{"delta":5.0}"#);
    bad(Op::DecrCounter, r#"{"delta":"5"}"#);
    let v = |s: &str| p(Op::SetCounter, &format!(r#"{{"value":{s}}}"#));
    assert_eq!(
        v("9223372036854775807").unwrap().counter_value,
        Some(i64::MAX)
    );
    assert_eq!(v("-1").unwrap().counter_value, Some(-1));
    assert_eq!(v("0").unwrap().value, None);
    for s in ["9223372036854775808", "1.0", "1e3", r#""1""#, "true", "[]"] {
        assert!(v(s).is_err(), "{s}");
    }
}

#[test]
fn string_values() {
    let b = p(Op::SetKv, r#"{"value":" hello world ","ttl_s":60}"#).unwrap();
    assert_eq!((b.value.as_deref(), b.ttl), (Some(" hello world "), 60));
    assert_eq!(b.counter_value, None);
    assert_eq!(p(Op::SetKv, r#"{"value":"x"}"#).unwrap().ttl, 0);
    assert_eq!(
        p(Op::SetKv, r#"{"value":"x","ttl_s":null}"#).unwrap().ttl,
        0
    );
    assert!(p(Op::SetKv, &format!(r#"{{"value":"{}"}}"#, "x".repeat(16))).is_ok());
    for v in [
        r#""""#,
        r#""a\tb""#,
        r#""a\rb""#,
        r#""a\nb""#,
        r#""\ud800""#,
        "5",
        "null",
    ] {
        bad(Op::SetKv, &format!(r#"{{"value":{v}}}"#));
    }
    bad(Op::SetKv, &format!(r#"{{"value":"{}"}}"#, "x".repeat(17)));
    // 16 bytes of two-byte characters is fine, 18 is not.
    assert!(p(Op::RPush, &format!(r#"{{"value":"{}"}}"#, "é".repeat(8))).is_ok());
    bad(Op::RPush, &format!(r#"{{"value":"{}"}}"#, "é".repeat(9)));
    bad(Op::SetKv, r#"{"value":"x","ttl_s":9223372037}"#);
    // A JSON escape for NUL is a value byte like any other (§3.4 forbids only TAB, CR, LF).
    assert_eq!(
        p(Op::LPush, r#"{"value":"a\u0000b"}"#)
            .unwrap()
            .value
            .as_deref(),
        Some("a\0b")
    );
}

#[test]
fn cas() {
    let b = p(Op::CasKv, r#"{"old":"hello","new":"bonjour","ttl_s":30}"#).unwrap();
    assert_eq!(
        (b.old.as_deref(), b.new.as_deref(), b.ttl),
        (Some("hello"), Some("bonjour"), 30)
    );
    let b = p(Op::CasKv, r#"{"old":"","new":"first"}"#).unwrap();
    assert_eq!(b.old.as_deref(), Some(""));
    let b = p(Op::CasKv, r#"{"old":null,"new":"first"}"#).unwrap();
    assert_eq!(b.old, None);
    bad(Op::CasKv, r#"{"old":"x"}"#);
    bad(Op::CasKv, r#"{"new":""}"#);
    bad(Op::CasKv, r#"{"old":"a\tb","new":"x"}"#);
}

#[test]
fn payloads() {
    let b = p(Op::PublishSignal, r#"{"payload":"{\"id\":7}"}"#).unwrap();
    assert_eq!(b.payload.as_deref(), Some("{\"id\":7}"));
    assert_eq!(
        p(Op::PublishSignal, r#"{"payload":"  x  "}"#)
            .unwrap()
            .payload
            .as_deref(),
        Some("  x  ")
    );
    for pl in [r#"" ""#, r#""   ""#, r#""""#, r#""a\nb""#, "7"] {
        bad(Op::PublishSignal, &format!(r#"{{"payload":{pl}}}"#));
    }
}

#[test]
fn session_options() {
    let b = p(
        Op::PatchSession,
        r#"{"options":{"queue_position":true,"deadlock":false}}"#,
    )
    .unwrap();
    let patch = b.options.unwrap();
    assert_eq!(patch.queue_position, Some(true));
    assert_eq!(patch.lease_notices, None);
    let mut o = SessionOptions {
        lease_notices: true,
        deadlock: true,
        ..SessionOptions::default()
    };
    o.apply(&patch);
    assert_eq!(
        o,
        SessionOptions {
            queue_position: true,
            lease_notices: true,
            deadlock: false
        }
    );
    assert_eq!(
        p(Op::PatchSession, r#"{"options":{}}"#).unwrap().options,
        Some(OptionsPatch::default())
    );
    assert!(bad(Op::PatchSession, r#"{"options":{"bogus":true}}"#).contains("bogus"));
    bad(Op::PatchSession, r#"{"options":{"deadlock":"on"}}"#);
    bad(Op::PatchSession, r#"{"options":[]}"#);
    bad(Op::PatchSession, r#"{}"#);
    bad(Op::PatchSession, r#"{"options":null}"#);
    bad(Op::PatchSession, "");
}

#[test]
fn details_are_short() {
    let long = format!(r#"{{"{}":1}}"#, "é".repeat(500));
    let d = bad(Op::AcquireLock, &long);
    assert!(d.len() <= MAX_DETAIL_BYTES + '…'.len_utf8(), "{}", d.len());
}

#[test]
fn random_bodies_never_panic() {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let pieces: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"",
        "null",
        "1",
        "-1",
        "1.0",
        "1e3",
        "\"value\"",
        "\"limit\"",
        "\"token\"",
        "\"options\"",
        "\"mode\"",
        "\"read\"",
        "\\u0000",
        " ",
        "é",
    ];
    for route in crate::http::route::ROUTES.iter() {
        for _ in 0..300 {
            let mut body = String::new();
            for _ in 0..(state % 12) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                body.push_str(pieces[(state % pieces.len() as u64) as usize]);
            }
            if let Ok(b) = parse(route.body, body.as_bytes(), &LIM) {
                for f in route.body.fields().iter().filter(|f| f.required) {
                    assert!(
                        !matches!(f.field, Field::Token) || b.token.is_some(),
                        "{body}"
                    );
                }
            }
        }
    }
}
