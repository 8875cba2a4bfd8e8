//! The HTTP API's own endpoints over a real server and a real HTTP client
//! (`ureq`): operational and introspection (http.md §6.1), sessions (§5,
//! §6.2), body rules (§4.2), the check order (§3.1) and the session counts
//! in `stats`. The coordination families are in http_locks.rs, the data
//! families in http_data.rs.

use crate::common;
use crate::http_common;

use common::{Json, secs_since};
use http_common::{Api, Resp, spawn, start};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

fn grant_body(token: &str, lease: u64) -> String {
    format!(r#"{{"status":"ok","token":"{token}","lease_ttl_s":{lease}}}"#)
}

// ---- §6.1 operational and introspection ----

#[test]
fn health_ready_stats_and_headers() {
    let (_s, addr) = start(&[]);
    let api = Api::new(addr);
    let r = api.get("/health");
    r.expect(200, r#"{"status":"ok"}"#);
    r.check_common_headers();
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(r.header("Content-Length"), Some("15"));
    assert_eq!(r.header("Cache-Control"), Some("no-store"));
    assert_eq!(r.header("X-Content-Type-Options"), Some("nosniff"));
    api.get("/ready").expect(200, r#"{"status":"ok"}"#);

    let session = api.session();
    let r = api.get("/v1/stats");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Cache-Control"), Some("no-store"));
    let stats = r.json();
    // The JSON object alone, without the TCP reply's `ok ` (§6.1).
    assert!(r.text().starts_with('{'), "{}", r.text());
    assert_eq!(
        stats.get("server").get("http_sessions").u64(),
        1,
        "{stats:?}"
    );
    let _ = session;
}

#[test]
fn metrics_are_prometheus_text() {
    let (_s, addr) = start(&[]);
    let api = Api::new(addr);
    let s = api.session();
    let t = api.lock(&s, "m", 0).token();
    let r = api.get("/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert_eq!(r.header("Cache-Control"), Some("no-store"));
    assert!(!r.has_header("X-Content-Type-Options"), "{r:?}");
    let text = r.text();
    for line in [
        "# TYPE dflockd_locks_held gauge",
        "dflockd_locks_held 1",
        "dflockd_ready 1",
        "dflockd_http_sessions 1",
        "# TYPE dflockd_http_requests_total counter",
        r#"dflockd_http_requests_total{method="POST",path="/v1/locks/{key}",status="200"} 1"#,
        r#"dflockd_http_requests_total{method="POST",path="/v1/sessions",status="200"} 1"#,
        r#"dflockd_build_info{version="0.1.0"} 1"#,
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no line {line:?} in:\n{text}"
        );
    }
    for name in [
        "dflockd_uptime_seconds",
        "dflockd_http_connections",
        "dflockd_grants_total",
        "dflockd_http_request_duration_seconds_sum",
        "dflockd_http_request_duration_seconds_count",
        "dflockd_connections_accepted_total",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "no {name} sample in:\n{text}"
        );
    }
    // A 404 is counted under `unmatched`, never the concrete path (§9).
    api.get("/nope/x").expect_error(404, "not_found");
    let text = api.get("/metrics").text();
    assert!(
        text.lines()
            .any(|l| l
                == r#"dflockd_http_requests_total{method="GET",path="unmatched",status="404"} 1"#),
        "{text}"
    );
    assert!(!text.contains("/nope/x"), "{text}");
    api.unlock(&s, "m", &t);
}

/// The labelled counters of §9 count what happened on each listener, per
/// command, per grant kind and per push-frame kind.
#[test]
fn metrics_counters_carry_their_labels() {
    let (server, addr) = start(&[]);
    let api = Api::new(addr);
    let mut tcp = server.client();
    assert!(tcp.req("l", "mk", "0").starts_with("ok "));
    assert!(tcp.req("sl", "ms", "0 2").starts_with("ok "));
    let mut listener = server.client();
    assert_eq!(listener.req("listen", "ch", ""), "ok");
    assert_eq!(tcp.req("signal", "ch", "hello"), "ok 1");
    assert_eq!(listener.line(), "sig ch hello");
    tcp.send(b"nosuchcommand\nk\n\n");
    assert_eq!(tcp.line(), "error");
    let s = api.session();
    api.lock(&s, "mh", 0).token();
    let text = api.get("/metrics").text();
    for line in [
        r#"dflockd_connections_accepted_total{listener="tcp"} 2"#,
        r#"dflockd_connections_rejected_total{reason="max_connections"} 0"#,
        r#"dflockd_commands_total{command="l"} 1"#,
        r#"dflockd_commands_total{command="listen"} 1"#,
        r#"dflockd_commands_total{command="invalid"} 1"#,
        r#"dflockd_grants_total{kind="lock"} 2"#,
        r#"dflockd_grants_total{kind="semaphore"} 1"#,
        r#"dflockd_grants_total{kind="write"} 0"#,
        r#"dflockd_push_frames_total{kind="sig"} 1"#,
        r#"dflockd_push_frames_total{kind="leader"} 0"#,
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no line {line:?} in:\n{text}"
        );
    }
    // This request's own connection is at least the second HTTP one.
    let http_accepted = text
        .lines()
        .find_map(|l| l.strip_prefix(r#"dflockd_connections_accepted_total{listener="http"} "#))
        .and_then(|v| v.parse::<u64>().ok());
    assert!(http_accepted.is_some_and(|n| n >= 1), "{text}");
}

#[test]
fn openapi_document_is_served_cacheable() {
    let (_s, addr) = start(&[]);
    let api = Api::new(addr);
    let r = api.get("/v1/openapi.json");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Cache-Control"), Some("public, max-age=60"));
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    let doc = r.json();
    assert_eq!(doc.get("openapi").str(), "3.1.0");
    assert_eq!(doc.get("info").get("title").str(), "dflockd HTTP API");
    assert_eq!(doc.get("info").get("version").str(), "0.1.0");
    let Json::Obj(paths) = doc.get("paths") else {
        panic!("paths is not an object");
    };
    let mut ids = Vec::new();
    for (_, item) in paths {
        let Json::Obj(ops) = item else { continue };
        for (_, op) in ops {
            if let Some(id) = op.field("operationId") {
                ids.push(id.str().to_string());
            }
        }
    }
    // Every operationId §10 names.
    for id in [
        "getHealth",
        "getReady",
        "getMetrics",
        "getOpenAPI",
        "getStats",
        "createSession",
        "pingSession",
        "deleteSession",
        "acquireLock",
        "releaseLock",
        "renewLock",
        "enqueueLock",
        "waitLock",
        "acquireSem",
        "releaseSem",
        "renewSem",
        "enqueueSem",
        "waitSem",
        "acquireRWLock",
        "releaseRWLock",
        "renewRWLock",
        "enqueueRWLock",
        "waitRWLock",
        "elect",
        "resign",
        "renewLeader",
        "streamLeaderEvents",
        "waitBarrier",
        "getCounter",
        "incrCounter",
        "decrCounter",
        "setCounter",
        "getKV",
        "setKV",
        "deleteKV",
        "casKV",
        "getListLength",
        "getListRange",
        "lpush",
        "rpush",
        "lpop",
        "rpop",
        "blpop",
        "brpop",
        "publishSignal",
        "streamSignals",
        "streamWatch",
    ] {
        assert!(ids.iter().any(|i| i == id), "operationId {id} missing");
    }
    // Served without authentication even when a token is configured (§3.2).
    let (_s2, addr2) = start(&["--auth-token", "sesame"]);
    let r = Api::new(addr2).get("/v1/openapi.json");
    assert_eq!(r.status, 200);
}

// ---- §5, §6.2 sessions ----

#[test]
fn session_create_ping_delete() {
    let (_s, addr) = start(&[]);
    let api = Api::new(addr);
    let r = api.post("/v1/sessions", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Cache-Control"), Some("no-store"));
    let j = r.json();
    let id = j.get("session_id").str().to_string();
    common::assert_token_shape(&id);
    assert_eq!(
        r.text(),
        format!(r#"{{"session_id":"{id}","idle_timeout_s":20}}"#)
    );
    // "empty or {}" (§6.2).
    assert_eq!(api.post("/v1/sessions", "{}").status, 200);
    api.post("/v1/sessions", r#"{"x":1}"#)
        .expect_error(400, "bad_request");

    api.post(&format!("/v1/sessions/{id}/ping"), "")
        .expect_204();
    api.post(&format!("/v1/sessions/{id}/ping"), "{}")
        .expect_204();
    api.delete(&format!("/v1/sessions/{id}")).expect_204();
    api.delete(&format!("/v1/sessions/{id}"))
        .expect_error(410, "session_gone");
    api.post(&format!("/v1/sessions/{id}/ping"), "")
        .expect_error(410, "session_gone");
    // A malformed id in the path is 400, an unknown well-formed one 410.
    api.post("/v1/sessions/xyz/ping", "")
        .expect_error(400, "bad_request");
    api.delete(&format!("/v1/sessions/{}", id.to_uppercase()))
        .expect_error(400, "bad_request");
    api.post(&format!("/v1/sessions/{}/ping", "0".repeat(32)), "")
        .expect_error(410, "session_gone");
}

#[test]
fn session_header_missing_malformed_or_gone() {
    let (_s, addr) = start(&[]);
    let api = Api::new(addr);
    let body = r#"{"acquire_timeout_s":0}"#;
    api.post("/v1/locks/k", body).expect(
        400,
        r#"{"error":"bad_request","detail":"X-Dflockd-Session header required"}"#,
    );
    for bad in ["abc", "0123456789ABCDEF0123456789ABCDEF", &"0".repeat(33)] {
        api.post_s("/v1/locks/k", bad, body)
            .expect_error(400, "bad_request");
    }
    api.post_s("/v1/locks/k", &"1".repeat(32), body)
        .expect_error(410, "session_gone");
    let s = api.session();
    api.delete(&format!("/v1/sessions/{s}")).expect_204();
    api.post_s("/v1/locks/k", &s, body)
        .expect_error(410, "session_gone");
    // Endpoints without the S column ignore the header (§5).
    api.post_with(
        "/v1/counters/c/incr",
        r#"{"delta":1}"#,
        &[("X-Dflockd-Session", "junk")],
    )
    .expect(200, r#"{"value":1}"#);
}

/// §5: `DELETE` ends the session at once; its in-progress long-poll and the
/// request queued behind it are answered `410 session_gone`.
#[test]
fn deleting_a_session_answers_its_waiting_requests_410() {
    let (_s, addr) = start(&[]);
    let api = Api::new(addr);
    let holder = api.session();
    let t = api.lock(&holder, "busy", 0).token();
    let s = api.session();
    let a = api.clone();
    let sid = s.clone();
    let poll = spawn(move || a.lock(&sid, "busy", 30));
    api.wait_lock_waiters("busy", 1);
    // A second request of the same session waits behind the long-poll.
    let a = api.clone();
    let sid = s.clone();
    let queued = spawn(move || a.post_s("/v1/counters/x/incr", &sid, r#"{"delta":1}"#));
    let a = api.clone();
    let sid = s.clone();
    let queued_lock = spawn(move || a.lock(&sid, "other", 0));
    thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    api.delete(&format!("/v1/sessions/{s}")).expect_204();
    poll.join().unwrap().expect_error(410, "session_gone");
    queued_lock
        .join()
        .unwrap()
        .expect_error(410, "session_gone");
    assert!(secs_since(start) < 2.0, "410s took {:?}", start.elapsed());
    // The counter endpoint has no session: it ran at once.
    queued.join().unwrap().expect(200, r#"{"value":1}"#);
    assert_eq!(api.lock_waiters("busy"), 0);
    api.unlock(&holder, "busy", &t);
}

/// §5: requests naming one session run one at a time, in arrival order, even
/// over different connections.
#[test]
fn requests_of_one_session_are_serialised() {
    let (_s, addr) = start(&[]);
    let api = Api::new(addr);
    let holder = api.session();
    let t = api.lock(&holder, "a", 0).token();
    let s = api.session();
    let a = api.clone();
    let sid = s.clone();
    let first = spawn(move || a.lock(&sid, "a", 30));
    api.wait_lock_waiters("a", 1);
    let (tx, rx) = mpsc::channel();
    let a = api.clone();
    let sid = s.clone();
    let second = spawn(move || {
        let r = a.lock(&sid, "b", 0);
        tx.send(()).unwrap();
        r
    });
    assert!(
        rx.recv_timeout(Duration::from_millis(500)).is_err(),
        "the second request ran while the first was in progress"
    );
    // Ping never waits.
    api.post(&format!("/v1/sessions/{s}/ping"), "").expect_204();
    api.unlock(&holder, "a", &t);
    let ta = first.join().unwrap().token();
    let tb = second.join().unwrap().token();
    api.unlock(&s, "a", &ta);
    api.unlock(&s, "b", &tb);
}

// ---- §4.2 bodies ----

#[test]
fn body_rules() {
    let (_s, addr) = start(&[]);
    let api = Api::new(addr);
    let s = api.session();
    // Optional members given as null count as omitted.
    let r = api.post_s(
        "/v1/locks/b",
        &s,
        r#"{"acquire_timeout_s":0,"lease_ttl_s":null}"#,
    );
    let t = r.token();
    r.expect(200, &grant_body(&t, 33));
    api.unlock(&s, "b", &t);
    for body in [
        r#"{"acquire_timeout_s":0,"lease_ttl_s":60,"extra":1}"#,
        r#"{"acquire_timeout_s":10.0}"#,
        r#"{"acquire_timeout_s":-1}"#,
        r#"{"acquire_timeout_s":9223372037}"#,
        r#"{"acquire_timeout_s":null}"#,
        r#"{"acquire_timeout_s":0}{"#,
        r#"{"acquire_timeout_s":0,"acquire_timeout_s":1}"#,
        "null",
        "not json",
        "",
    ] {
        let r = api.post_s("/v1/locks/b", &s, body);
        assert_eq!(r.status, 400, "body {body:?} → {} {}", r.status, r.text());
        r.expect_error(400, "bad_request");
    }
    // Whatever the Content-Type (§4.2).
    let r = api.post_with(
        "/v1/counters/ct/incr",
        r#"{"delta":2}"#,
        &[("Content-Type", "text/plain")],
    );
    r.expect(200, r#"{"value":2}"#);
}

/// The §3.1 order for one request failing several checks: 404 before 400 for
/// the session header; session header (400) before the body (400 of its own);
/// 410 before the body.
#[test]
fn check_order() {
    let (_s, addr) = start(&[]);
    let api = Api::new(addr);
    api.post("/v1/locks/k/nope", "garbage")
        .expect_error(404, "not_found");
    api.get("/v1/locks/k")
        .expect_error(405, "method_not_allowed");
    // Bad key (step 7) before the missing session header (step 8).
    let r = api.post("/v1/locks/a%20b", r#"{"acquire_timeout_s":0}"#);
    r.expect_error(400, "bad_request");
    assert!(
        !r.text().contains("X-Dflockd-Session"),
        "path checked first: {}",
        r.text()
    );
    // Gone session (step 8) before a bad body (step 9).
    api.post_s("/v1/locks/k", &"2".repeat(32), "garbage")
        .expect_error(410, "session_gone");
}

/// §5: sessions count in `stats` `connections` and `server.http_sessions`;
/// protocol.md §10: `connections` is open TCP connections plus live HTTP
/// sessions (SSE streams included), not HTTP connections.
#[test]
fn http_stats_count_sessions() {
    let (srv, addr) = start(&[]);
    let api = Api::new(addr);
    let a = api.session();
    let _b = api.session();
    let stats = api.stats();
    assert_eq!(stats.get("server").get("http_sessions").u64(), 2);
    assert_eq!(stats.get("connections").u64(), 2, "{stats:?}");
    let mut tcp = srv.client();
    assert_eq!(tcp.stats().get("connections").u64(), 3);
    let mut stream = http_common::Raw::connect(addr);
    stream.send(b"GET /v1/watch?pattern=x HTTP/1.1\r\n\r\n");
    stream.read_until(b":ok\n\n");
    let stats = tcp.stats();
    assert_eq!(stats.get("server").get("http_sessions").u64(), 3);
    assert_eq!(stats.get("connections").u64(), 4);
    api.delete(&format!("/v1/sessions/{a}")).expect_204();
    let stats = api.stats();
    assert_eq!(stats.get("server").get("http_sessions").u64(), 2);
    assert_eq!(stats.get("connections").u64(), 3);
}

/// Responses list their members in the documented order (§4.3).
#[test]
fn member_order_of_grants() {
    let (_s, addr) = start(&[]);
    let api = Api::new(addr);
    let s = api.session();
    let r: Resp = api.post_s("/v1/locks/o/enqueue", &s, r#"{"lease_ttl_s":4}"#);
    let text = r.text();
    assert!(
        text.starts_with(r#"{"status":"acquired","token":""#)
            && text.ends_with(r#","lease_ttl_s":4}"#),
        "{text}"
    );
}
