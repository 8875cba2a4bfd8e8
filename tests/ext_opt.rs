//! `opt` (protocol.md §8.15) and `PATCH /v1/sessions/{id}` (http.md §6.2a)
//! against a real server: every reply, every refusal and its log line, and
//! options that last exactly as long as their connection or session.

use crate::common;
use crate::http_common;

use common::Server;
use http_common::Api;
use std::time::Duration;

#[test]
fn opt_accepts_every_option_and_both_values() {
    let s = Server::start(&[]);
    let mut c = s.client();
    for name in ["queue_position", "lease_notices", "deadlock"] {
        for v in ["on", "off", "on", " on\t"] {
            assert_eq!(c.req("opt", name, v), "ok", "{name} {v:?}");
        }
    }
    // CRLF (telnet) works too.
    c.send(b"opt\r\ndeadlock\r\noff\r\n");
    assert_eq!(c.line(), "ok");
}

#[test]
fn opt_refuses_unknown_names_and_values_and_keeps_the_connection() {
    let s = Server::start(&["--log-level", "debug"]);
    let mut c = s.client();
    for (name, v) in [
        ("bogus", "on"),
        ("Deadlock", "on"),
        ("queue-position", "on"),
        ("", "on"),
        ("deadlock", ""),
        ("deadlock", "ON"),
        ("deadlock", "true"),
        ("deadlock", "1"),
        ("deadlock", "on off"),
    ] {
        assert_eq!(c.req("opt", name, v), "error", "{name:?} {v:?}");
    }
    assert_eq!(c.req("ping", "_", ""), "ok");
    // The refusal log explains both kinds of mistake.
    for needle in [
        "command \"opt\" key \"bogus\": error, code 8: unknown option \"bogus\" \
         (the options are queue_position, lease_notices, deadlock)",
        "command \"opt\" key \"deadlock\": error, code 8: invalid value \"true\" for option \
         \"deadlock\" (on or off)",
    ] {
        assert!(
            s.wait_for_log(needle, Duration::from_secs(5)).is_some(),
            "no log line {needle:?}: {:#?}",
            s.stderr_lines()
        );
    }
}

/// With every option off, and with `queue_position` and `deadlock` never
/// sent, the replies of a two-phase session are exactly the old bytes.
#[test]
fn options_off_change_no_reply_byte() {
    let s = Server::start(&[]);
    let mut a = s.client();
    let mut b = s.client();
    for name in ["queue_position", "lease_notices", "deadlock"] {
        assert_eq!(b.req("opt", name, "off"), "ok");
    }
    let t = common::token_of(&a.req("l", "k", "5"));
    b.send(b"e\nk\n60\n");
    assert_eq!(b.line_raw(), b"queued\n");
    b.send(b"w\nk\n0\n");
    assert_eq!(b.line_raw(), b"timeout\n");
    // A self-wait is no refusal without the option: it simply times out.
    a.send(b"l\nk\n0\n");
    assert_eq!(a.line_raw(), b"timeout\n");
    assert_eq!(a.req("r", "k", &t), "ok");
}

#[test]
fn patch_session_options() {
    let (_s, addr) = http_common::start(&[]);
    let api = Api::new(addr);
    let sid = api.session();
    let path = format!("/v1/sessions/{sid}");
    api.patch(&path, r#"{"options":{}}"#).expect(
        200,
        r#"{"options":{"queue_position":false,"lease_notices":false,"deadlock":false}}"#,
    );
    api.patch(
        &path,
        r#"{"options":{"queue_position":true,"deadlock":true}}"#,
    )
    .expect(
        200,
        r#"{"options":{"queue_position":true,"lease_notices":false,"deadlock":true}}"#,
    );
    // Unnamed options are kept.
    api.patch(
        &path,
        r#"{"options":{"lease_notices":true,"deadlock":false}}"#,
    )
    .expect(
        200,
        r#"{"options":{"queue_position":true,"lease_notices":true,"deadlock":false}}"#,
    );
    // Other sessions are unaffected.
    let other = api.session();
    api.patch(&format!("/v1/sessions/{other}"), r#"{"options":{}}"#)
        .expect(
            200,
            r#"{"options":{"queue_position":false,"lease_notices":false,"deadlock":false}}"#,
        );
    // Refusals: unknown option, wrong type, missing member, malformed id, gone.
    for bad in [
        r#"{"options":{"bogus":true}}"#,
        r#"{"options":{"deadlock":"on"}}"#,
        r#"{"options":null}"#,
        r#"{}"#,
    ] {
        api.patch(&path, bad).expect_error(400, "bad_request");
    }
    api.patch("/v1/sessions/not-hex", r#"{"options":{}}"#)
        .expect_error(400, "bad_request");
    api.delete(&path).expect_204();
    api.patch(&path, r#"{"options":{}}"#)
        .expect_error(410, "session_gone");
    api.patch(
        "/v1/sessions/00000000000000000000000000000000",
        r#"{"options":{}}"#,
    )
    .expect_error(410, "session_gone");
}
