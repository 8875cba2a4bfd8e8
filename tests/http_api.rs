//! The endpoint families of http.md §6 over a real server and a real HTTP
//! client (`ureq`): success shapes byte for byte where the spec gives them,
//! and every error code of each row that the server can be made to produce.

mod common;
mod http_common;

use common::{Json, secs_since};
use http_common::{Api, Resp, spawn, start};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The text of a JSON number member (so negative and 64-bit values compare exactly).
fn num(j: &Json, name: &str) -> String {
    match j.get(name) {
        Json::Num(n) => n.clone(),
        other => panic!("{name} is not a number: {other:?}"),
    }
}

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

// ---- §6.3 locks ----

#[test]
fn lock_acquire_release_renew() {
    let (_s, addr) = start(&[]);
    let api = Api::new(addr);
    let (s1, s2) = (api.session(), api.session());
    let r = api.post_s(
        "/v1/locks/deploy",
        &s1,
        r#"{"acquire_timeout_s":10,"lease_ttl_s":60}"#,
    );
    let t = r.token();
    r.expect(200, &grant_body(&t, 60));
    // Try-lock on a held key, then a 1 s wait that times out.
    api.lock(&s2, "deploy", 0)
        .expect(200, r#"{"status":"timeout"}"#);
    let start = Instant::now();
    api.lock(&s2, "deploy", 1)
        .expect(200, r#"{"status":"timeout"}"#);
    assert!(secs_since(start) >= 0.9, "{:?}", start.elapsed());
    // Renew: the given lease, else the default (33).
    api.post_s(
        "/v1/locks/deploy/renew",
        &s1,
        &format!(r#"{{"token":"{t}","lease_ttl_s":120}}"#),
    )
    .expect(200, r#"{"remaining_s":120}"#);
    api.post_s(
        "/v1/locks/deploy/renew",
        &s2,
        &format!(r#"{{"token":"{t}","lease_ttl_s":null}}"#),
    )
    .expect(200, r#"{"remaining_s":33}"#);
    api.unlock(&s1, "deploy", &t);
    api.post_s(
        "/v1/locks/deploy/release",
        &s1,
        &format!(r#"{{"token":"{t}"}}"#),
    )
    .expect(404, r#"{"error":"not_held"}"#);
    api.post_s(
        "/v1/locks/deploy/renew",
        &s1,
        &format!(r#"{{"token":"{t}"}}"#),
    )
    .expect_error(404, "not_held");
    // No lease: the default applies.
    let r = api.lock(&s2, "deploy", 0);
    let t2 = r.token();
    r.expect(200, &grant_body(&t2, 33));
    // Fences go up (the token's first 16 hex digits).
    assert!(common::fence_of(&t2) > common::fence_of(&t));
    // Malformed tokens and bodies are 400.
    for body in [
        r#"{"token":"xyz"}"#,
        r#"{"token":"0123456789ABCDEF0123456789ABCDEF"}"#,
        r#"{}"#,
        "",
        r#"{"token":null}"#,
    ] {
        api.post_s("/v1/locks/deploy/release", &s2, body)
            .expect_error(400, "bad_request");
    }
    api.unlock(&s2, "deploy", &t2);
}

#[test]
fn lock_type_mismatch_and_lease_expiry() {
    let (_s, addr) = start(&[]);
    let api = Api::new(addr);
    let (s1, s2) = (api.session(), api.session());
    let r = api.post_s(
        "/v1/rwlocks/shared",
        &s1,
        r#"{"mode":"read","acquire_timeout_s":0}"#,
    );
    r.token();
    api.lock(&s2, "shared", 0)
        .expect(409, r#"{"error":"type_mismatch"}"#);
    api.post_s("/v1/locks/shared/enqueue", &s2, "")
        .expect_error(409, "type_mismatch");

    let t = api
        .post_s(
            "/v1/locks/short",
            &s1,
            r#"{"acquire_timeout_s":0,"lease_ttl_s":1}"#,
        )
        .token();
    thread::sleep(Duration::from_millis(1600));
    api.post_s(
        "/v1/locks/short/renew",
        &s1,
        &format!(r#"{{"token":"{t}"}}"#),
    )
    .expect(409, r#"{"error":"lease_expired"}"#);
    api.post_s(
        "/v1/locks/short/release",
        &s1,
        &format!(r#"{{"token":"{t}"}}"#),
    )
    .expect_error(404, "not_held");
}

#[test]
fn lock_two_phase_enqueue_and_wait() {
    let (_s, addr) = start(&[]);
    let api = Api::new(addr);
    let (s1, s2, s3) = (api.session(), api.session(), api.session());
    let r = api.post_s("/v1/locks/job/enqueue", &s1, "");
    let t1 = r.token();
    r.expect(
        200,
        &format!(r#"{{"status":"acquired","token":"{t1}","lease_ttl_s":33}}"#),
    );
    api.post_s("/v1/locks/job/enqueue", &s1, "{}")
        .expect(409, r#"{"error":"already_enqueued"}"#);
    api.post_s("/v1/locks/job/enqueue", &s2, "{}")
        .expect(200, r#"{"status":"queued"}"#);
    // Wait 0 while still queued: timeout, the state is consumed.
    api.post_s("/v1/locks/job/wait", &s2, r#"{"timeout_s":0}"#)
        .expect(200, r#"{"status":"timeout"}"#);
    api.post_s("/v1/locks/job/wait", &s2, r#"{"timeout_s":0}"#)
        .expect(409, r#"{"error":"not_enqueued"}"#);
    api.post_s("/v1/locks/job/enqueue", &s2, r#"{"lease_ttl_s":5}"#)
        .expect(200, r#"{"status":"queued"}"#);
    // The acquired enqueue's wait returns its token at once.
    let r = api.post_s("/v1/locks/job/wait", &s1, r#"{"timeout_s":5}"#);
    r.expect(200, &grant_body(&t1, 33));
    // s2 waits (long-poll) and gets the lock when s1 releases.
    let a = api.clone();
    let sid = s2.clone();
    let w = spawn(move || a.post_s("/v1/locks/job/wait", &sid, r#"{"timeout_s":10}"#));
    thread::sleep(Duration::from_millis(200));
    api.unlock(&s1, "job", &t1);
    let r = w.join().unwrap();
    let t2 = r.token();
    r.expect(200, &grant_body(&t2, 5));
    api.unlock(&s2, "job", &t2);

    // A granted enqueue whose lease ran out before the wait.
    api.post_s("/v1/locks/quick/enqueue", &s3, r#"{"lease_ttl_s":1}"#)
        .token();
    thread::sleep(Duration::from_millis(1600));
    api.post_s("/v1/locks/quick/wait", &s3, r#"{"timeout_s":1}"#)
        .expect(409, r#"{"error":"lease_expired"}"#);
}

// ---- §6.4 semaphores ----

#[test]
fn semaphores() {
    let (_s, addr) = start(&[]);
    let api = Api::new(addr);
    let s: Vec<String> = (0..4).map(|_| api.session()).collect();
    let body = r#"{"acquire_timeout_s":0,"limit":2}"#;
    let ta = api.post_s("/v1/semaphores/pool", &s[0], body).token();
    let tb = api.post_s("/v1/semaphores/pool", &s[1], body).token();
    api.post_s("/v1/semaphores/pool", &s[2], body)
        .expect(200, r#"{"status":"timeout"}"#);
    api.post_s(
        "/v1/semaphores/pool",
        &s[2],
        r#"{"acquire_timeout_s":0,"limit":3}"#,
    )
    .expect(409, r#"{"error":"limit_mismatch"}"#);
    api.post_s("/v1/semaphores/pool/enqueue", &s[2], r#"{"limit":3}"#)
        .expect_error(409, "limit_mismatch");
    api.post_s(
        "/v1/semaphores/pool/release",
        &s[0],
        &format!(r#"{{"token":"{ta}"}}"#),
    )
    .expect_204();
    api.post_s(
        "/v1/semaphores/pool/release",
        &s[0],
        &format!(r#"{{"token":"{ta}"}}"#),
    )
    .expect_error(404, "not_held");
    let r = api.post_s(
        "/v1/semaphores/pool",
        &s[2],
        r#"{"acquire_timeout_s":0,"limit":2,"lease_ttl_s":60}"#,
    );
    let tc = r.token();
    r.expect(200, &grant_body(&tc, 60));
    api.post_s(
        "/v1/semaphores/pool/renew",
        &s[2],
        &format!(r#"{{"token":"{tc}","lease_ttl_s":7}}"#),
    )
    .expect(200, r#"{"remaining_s":7}"#);
    // Two-phase: queued, then granted when a permit frees.
    api.post_s("/v1/semaphores/pool/enqueue", &s[3], r#"{"limit":2}"#)
        .expect(200, r#"{"status":"queued"}"#);
    api.post_s("/v1/semaphores/pool/enqueue", &s[3], r#"{"limit":2}"#)
        .expect_error(409, "already_enqueued");
    api.post_s(
        "/v1/semaphores/pool/release",
        &s[1],
        &format!(r#"{{"token":"{tb}"}}"#),
    )
    .expect_204();
    let td = api
        .post_s("/v1/semaphores/pool/wait", &s[3], r#"{"timeout_s":5}"#)
        .token();
    api.post_s("/v1/semaphores/pool/wait", &s[3], r#"{"timeout_s":0}"#)
        .expect_error(409, "not_enqueued");
    api.post_s(
        "/v1/semaphores/pool/renew",
        &s[3],
        &format!(r#"{{"token":"{td}"}}"#),
    )
    .expect(200, r#"{"remaining_s":33}"#);
    for body in [
        r#"{"acquire_timeout_s":0,"limit":0}"#,
        r#"{"acquire_timeout_s":0,"limit":1048577}"#,
        r#"{"acquire_timeout_s":0}"#,
    ] {
        api.post_s("/v1/semaphores/other", &s[0], body)
            .expect_error(400, "bad_request");
    }
}

// ---- §6.5 read-write locks ----

#[test]
fn rwlocks() {
    let (_s, addr) = start(&[]);
    let api = Api::new(addr);
    let s: Vec<String> = (0..3).map(|_| api.session()).collect();
    let read = r#"{"mode":"read","acquire_timeout_s":5}"#;
    let r1 = api.post_s("/v1/rwlocks/cfg", &s[0], read);
    let t1 = r1.token();
    r1.expect(200, &grant_body(&t1, 33));
    let t2 = api.post_s("/v1/rwlocks/cfg", &s[1], read).token();
    api.post_s(
        "/v1/rwlocks/cfg",
        &s[2],
        r#"{"mode":"write","acquire_timeout_s":0}"#,
    )
    .expect(200, r#"{"status":"timeout"}"#);
    api.post_s("/v1/rwlocks/cfg/enqueue", &s[2], r#"{"mode":"write"}"#)
        .expect(200, r#"{"status":"queued"}"#);
    api.post_s("/v1/rwlocks/cfg/enqueue", &s[2], r#"{"mode":"read"}"#)
        .expect_error(409, "already_enqueued");
    api.post_s(
        "/v1/rwlocks/cfg/renew",
        &s[0],
        &format!(r#"{{"token":"{t1}","lease_ttl_s":9}}"#),
    )
    .expect(200, r#"{"remaining_s":9}"#);
    for (sid, t) in [(&s[0], &t1), (&s[1], &t2)] {
        api.post_s(
            "/v1/rwlocks/cfg/release",
            sid,
            &format!(r#"{{"token":"{t}"}}"#),
        )
        .expect_204();
    }
    api.post_s(
        "/v1/rwlocks/cfg/release",
        &s[0],
        &format!(r#"{{"token":"{t1}"}}"#),
    )
    .expect_error(404, "not_held");
    let t3 = api
        .post_s("/v1/rwlocks/cfg/wait", &s[2], r#"{"timeout_s":5}"#)
        .token();
    api.post_s("/v1/rwlocks/cfg/wait", &s[2], r#"{"timeout_s":0}"#)
        .expect(409, r#"{"error":"not_enqueued"}"#);
    // A lock-space key in use as read-write refuses exclusive enqueues.
    api.post_s("/v1/locks/cfg/enqueue", &s[0], "")
        .expect_error(409, "type_mismatch");
    api.post_s(
        "/v1/rwlocks/cfg",
        &s[0],
        r#"{"mode":"exclusive","acquire_timeout_s":0}"#,
    )
    .expect_error(400, "bad_request");
    api.post_s(
        "/v1/rwlocks/cfg/release",
        &s[2],
        &format!(r#"{{"token":"{t3}"}}"#),
    )
    .expect_204();
}

// ---- §6.6 elections ----

#[test]
fn elections() {
    let (_s, addr) = start(&[]);
    let api = Api::new(addr);
    let (s1, s2) = (api.session(), api.session());
    let r = api.post_s(
        "/v1/elections/leader-job",
        &s1,
        r#"{"acquire_timeout_s":5,"lease_ttl_s":10}"#,
    );
    let t = r.token();
    r.expect(200, &grant_body(&t, 10));
    api.post_s(
        "/v1/elections/leader-job",
        &s2,
        r#"{"acquire_timeout_s":0}"#,
    )
    .expect(200, r#"{"status":"timeout"}"#);
    api.post_s(
        "/v1/elections/leader-job/renew",
        &s1,
        &format!(r#"{{"token":"{t}"}}"#),
    )
    .expect(200, r#"{"remaining_s":33}"#);
    // s2 campaigns (long-poll) and wins when s1 resigns.
    let a = api.clone();
    let sid = s2.clone();
    let campaign = spawn(move || {
        a.post_s(
            "/v1/elections/leader-job",
            &sid,
            r#"{"acquire_timeout_s":10}"#,
        )
    });
    api.wait_lock_waiters("leader-job", 1);
    api.post_s(
        "/v1/elections/leader-job/resign",
        &s1,
        &format!(r#"{{"token":"{t}"}}"#),
    )
    .expect_204();
    api.post_s(
        "/v1/elections/leader-job/resign",
        &s1,
        &format!(r#"{{"token":"{t}"}}"#),
    )
    .expect(404, r#"{"error":"not_held"}"#);
    let t2 = campaign.join().unwrap().token();
    api.post_s(
        "/v1/elections/leader-job/renew",
        &s1,
        &format!(r#"{{"token":"{t}"}}"#),
    )
    .expect_error(404, "not_held");
    api.post_s(
        "/v1/elections/leader-job/resign",
        &s2,
        &format!(r#"{{"token":"{t2}"}}"#),
    )
    .expect_204();
}

// ---- §6.7 barriers ----

#[test]
fn barriers() {
    let (_s, addr) = start(&[]);
    let api = Api::new(addr);
    let s: Vec<String> = (0..3).map(|_| api.session()).collect();
    let a = api.clone();
    let sid = s[0].clone();
    let first = spawn(move || {
        a.post_s(
            "/v1/barriers/stage/wait",
            &sid,
            r#"{"count":2,"timeout_s":10}"#,
        )
    });
    thread::sleep(Duration::from_millis(200));
    api.post_s(
        "/v1/barriers/stage/wait",
        &s[1],
        r#"{"count":3,"timeout_s":10}"#,
    )
    .expect(409, r#"{"error":"barrier_count_mismatch"}"#);
    api.post_s(
        "/v1/barriers/stage/wait",
        &s[1],
        r#"{"count":2,"timeout_s":10}"#,
    )
    .expect(200, r#"{"status":"ok"}"#);
    first.join().unwrap().expect(200, r#"{"status":"ok"}"#);
    // Nobody else comes.
    let start = Instant::now();
    api.post_s(
        "/v1/barriers/alone/wait",
        &s[2],
        r#"{"count":2,"timeout_s":1}"#,
    )
    .expect(200, r#"{"status":"timeout"}"#);
    assert!(secs_since(start) >= 0.9);
    // Count 1 completes at once.
    api.post_s(
        "/v1/barriers/one/wait",
        &s[2],
        r#"{"count":1,"timeout_s":0}"#,
    )
    .expect(200, r#"{"status":"ok"}"#);
    api.post_s(
        "/v1/barriers/one/wait",
        &s[2],
        r#"{"count":0,"timeout_s":0}"#,
    )
    .expect_error(400, "bad_request");
}

// ---- §6.8 counters ----

#[test]
fn counters() {
    let (_s, addr) = start(&[]);
    let api = Api::new(addr);
    api.get("/v1/counters/hits").expect(200, r#"{"value":0}"#);
    api.post("/v1/counters/hits/incr", r#"{"delta":5}"#)
        .expect(200, r#"{"value":5}"#);
    api.post("/v1/counters/hits/incr", r#"{"delta":42}"#)
        .expect(200, r#"{"value":47}"#);
    let r = api.post("/v1/counters/hits/decr", r#"{"delta":50}"#);
    assert_eq!(num(&r.json(), "value"), "-3");
    api.post("/v1/counters/hits/decr", r#"{"delta":-5}"#)
        .expect(200, r#"{"value":2}"#);
    api.post("/v1/counters/hits/set", r#"{"value":9223372036854775807}"#)
        .expect_204();
    api.post("/v1/counters/hits/incr", r#"{"delta":1}"#)
        .expect(409, r#"{"error":"overflow"}"#);
    api.get("/v1/counters/hits")
        .expect(200, r#"{"value":9223372036854775807}"#);
    api.post("/v1/counters/low/set", r#"{"value":-9223372036854775808}"#)
        .expect_204();
    api.post("/v1/counters/low/decr", r#"{"delta":1}"#)
        .expect_error(409, "overflow");
    for body in [
        r#"{"delta":1.0}"#,
        r#"{"delta":1e1}"#,
        r#"{"delta":"5"}"#,
        r#"{}"#,
        r#"{"delta":1,"x":2}"#,
        r#"{"delta":1} x"#,
        r#"{"delta":9223372036854775808}"#,
        r#"[1]"#,
        "",
    ] {
        api.post("/v1/counters/hits/incr", body)
            .expect_error(400, "bad_request");
    }
}

// ---- §6.9 key-value store ----

#[test]
fn kv_set_get_delete_cas() {
    let (_s, addr) = start(&[]);
    let api = Api::new(addr);
    api.post("/v1/kv/greeting", r#"{"value":"hello world","ttl_s":60}"#)
        .expect_204();
    api.get("/v1/kv/greeting")
        .expect(200, r#"{"status":"ok","value":"hello world"}"#);
    api.post(
        "/v1/kv/greeting/cas",
        r#"{"old":"hello world","new":"bonjour"}"#,
    )
    .expect(200, r#"{"status":"ok"}"#);
    api.post(
        "/v1/kv/greeting/cas",
        r#"{"old":"hello world","new":"bonjour"}"#,
    )
    .expect(200, r#"{"status":"cas_conflict"}"#);
    api.delete("/v1/kv/greeting").expect_204();
    api.delete("/v1/kv/greeting").expect_204();
    api.get("/v1/kv/greeting")
        .expect(200, r#"{"status":"nil"}"#);
    // Create only if absent: `old` omitted, null or "".
    api.post("/v1/kv/fresh/cas", r#"{"new":"first"}"#)
        .expect(200, r#"{"status":"ok"}"#);
    api.post("/v1/kv/fresh/cas", r#"{"old":null,"new":"second"}"#)
        .expect(200, r#"{"status":"cas_conflict"}"#);
    api.post("/v1/kv/fresh/cas", r#"{"old":"","new":"second"}"#)
        .expect(200, r#"{"status":"cas_conflict"}"#);
    // Values are JSON strings; escapes and UTF-8 survive the round trip.
    api.post("/v1/kv/u", r#"{"value":"caf\u00e9 \"q\" \\ /"}"#)
        .expect_204();
    api.get("/v1/kv/u")
        .expect(200, r#"{"status":"ok","value":"café \"q\" \\ /"}"#);
    // A key with `/` travels as %2F; a key with a space as %20 is invalid.
    api.post("/v1/kv/a%2Fb", r#"{"value":"slash"}"#)
        .expect_204();
    api.get("/v1/kv/a%2Fb")
        .expect(200, r#"{"status":"ok","value":"slash"}"#);
    api.get("/v1/kv/a%20b").expect_error(400, "bad_request");
    api.get("/v1/kv/%zz").expect_error(400, "bad_request");
    // TTL: gone after it passes.
    api.post("/v1/kv/temp", r#"{"value":"x","ttl_s":1}"#)
        .expect_204();
    thread::sleep(Duration::from_millis(1500));
    api.get("/v1/kv/temp").expect(200, r#"{"status":"nil"}"#);
    for body in [
        r#"{"value":"a\tb"}"#,
        r#"{"value":"a\nb"}"#,
        r#"{"value":""}"#,
        r#"{"value":5}"#,
        r#"{"value":"x","ttl_s":-1}"#,
    ] {
        api.post("/v1/kv/bad", body)
            .expect_error(400, "bad_request");
    }
    api.post("/v1/kv/bad/cas", r#"{"old":"a"}"#)
        .expect_error(400, "bad_request");
    // DELETE with a body is 400 (§4.2).
    let mut raw = http_common::Raw::connect(addr);
    raw.roundtrip(b"DELETE /v1/kv/fresh HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}")
        .expect_error(400, "bad_request");
}

// ---- §6.10 lists ----

#[test]
fn lists() {
    let (_s, addr) = start(&[]);
    let api = Api::new(addr);
    api.post("/v1/lists/jobs/rpush", r#"{"value":"build 1"}"#)
        .expect(200, r#"{"length":1}"#);
    api.post("/v1/lists/jobs/rpush", r#"{"value":"build 2"}"#)
        .expect(200, r#"{"length":2}"#);
    api.post("/v1/lists/jobs/lpush", r#"{"value":"urgent"}"#)
        .expect(200, r#"{"length":3}"#);
    api.get("/v1/lists/jobs/range?start=0&stop=-1")
        .expect(200, r#"{"values":["urgent","build 1","build 2"]}"#);
    api.get("/v1/lists/jobs/range")
        .expect(200, r#"{"values":["urgent","build 1","build 2"]}"#);
    api.get("/v1/lists/jobs/range?start=1&stop=1&other=x")
        .expect(200, r#"{"values":["build 1"]}"#);
    api.get("/v1/lists/jobs/range?start=-2")
        .expect(200, r#"{"values":["build 1","build 2"]}"#);
    api.get("/v1/lists/jobs/range?start=5")
        .expect(200, r#"{"values":[]}"#);
    api.get("/v1/lists/jobs/range?start=x")
        .expect_error(400, "bad_request");
    api.get("/v1/lists/jobs/range?start=0&start=1")
        .expect_error(400, "bad_request");
    api.get("/v1/lists/jobs").expect(200, r#"{"length":3}"#);
    api.post("/v1/lists/jobs/lpop", "")
        .expect(200, r#"{"status":"ok","value":"urgent"}"#);
    api.post("/v1/lists/jobs/rpop", "{}")
        .expect(200, r#"{"status":"ok","value":"build 2"}"#);
    api.post("/v1/lists/jobs/rpop", "")
        .expect(200, r#"{"status":"ok","value":"build 1"}"#);
    api.post("/v1/lists/jobs/lpop", "")
        .expect(200, r#"{"status":"nil"}"#);
    api.get("/v1/lists/nothing/range")
        .expect(200, r#"{"values":[]}"#);
    api.get("/v1/lists/nothing").expect(200, r#"{"length":0}"#);
    // Blocking pop: timeout 0 is a try, otherwise nil after the timeout.
    api.post("/v1/lists/tasks/blpop", r#"{"timeout_s":0}"#)
        .expect(200, r#"{"status":"nil"}"#);
    let start = Instant::now();
    api.post("/v1/lists/tasks/brpop", r#"{"timeout_s":1}"#)
        .expect(200, r#"{"status":"nil"}"#);
    let took = secs_since(start);
    assert!((0.9..5.0).contains(&took), "brpop 1 s took {took}");
    // Wake-up: a push hands the value to the blocked popper.
    let a = api.clone();
    let popper = spawn(move || a.post("/v1/lists/tasks/blpop", r#"{"timeout_s":10}"#));
    common::wait_until("a blocked popper", || {
        api.get("/metrics")
            .text()
            .lines()
            .any(|l| l == "dflockd_list_pop_waiters 1")
    });
    api.post("/v1/lists/tasks/rpush", r#"{"value":"resize img-7"}"#)
        .expect(200, r#"{"length":0}"#);
    popper
        .join()
        .unwrap()
        .expect(200, r#"{"status":"ok","value":"resize img-7"}"#);
    api.post("/v1/lists/tasks/rpush", r#"{"value":"a\tb"}"#)
        .expect_error(400, "bad_request");
}

#[test]
fn list_full_is_409() {
    let (_s, addr) = start(&["--max-list-length", "1"]);
    let api = Api::new(addr);
    api.post("/v1/lists/q/rpush", r#"{"value":"1"}"#)
        .expect(200, r#"{"length":1}"#);
    api.post("/v1/lists/q/lpush", r#"{"value":"2"}"#)
        .expect(409, r#"{"error":"list_full"}"#);
}

#[test]
fn max_keys_and_max_locks_are_503() {
    let (_s, addr) = start(&["--max-keys", "1", "--max-locks", "1"]);
    let api = Api::new(addr);
    api.post("/v1/kv/a", r#"{"value":"1"}"#).expect_204();
    api.post("/v1/kv/b", r#"{"value":"1"}"#)
        .expect(503, r#"{"error":"max_keys"}"#);
    api.post("/v1/counters/c/incr", r#"{"delta":1}"#)
        .expect_error(503, "max_keys");
    let s = api.session();
    let t = api.lock(&s, "l1", 0).token();
    api.lock(&s, "l2", 0)
        .expect(503, r#"{"error":"max_locks"}"#);
    api.unlock(&s, "l1", &t);
}

#[test]
fn max_waiters_is_503() {
    let (_s, addr) = start(&["--max-waiters", "1"]);
    let api = Api::new(addr);
    let (s1, s2, s3) = (api.session(), api.session(), api.session());
    let t = api.lock(&s1, "w", 0).token();
    api.post_s("/v1/locks/w/enqueue", &s2, "")
        .expect(200, r#"{"status":"queued"}"#);
    api.lock(&s3, "w", 5)
        .expect(503, r#"{"error":"max_waiters"}"#);
    api.unlock(&s1, "w", &t);
}

// ---- §6.11 signals (publishing; streams are in http_sse.rs) ----

#[test]
fn signal_publish() {
    let (_s, addr) = start(&[]);
    let api = Api::new(addr);
    api.post("/v1/signals/orders.created", r#"{"payload":"{\"id\":7}"}"#)
        .expect(200, r#"{"delivered":0}"#);
    api.post("/v1/signals/orders.*", r#"{"payload":"x"}"#)
        .expect_error(400, "bad_request");
    api.post("/v1/signals/orders.%3E", r#"{"payload":"x"}"#)
        .expect_error(400, "bad_request");
    for body in [r#"{"payload":"   "}"#, r#"{"payload":""}"#, "{}", ""] {
        api.post("/v1/signals/c", body)
            .expect_error(400, "bad_request");
    }
    // A TCP listener receives an HTTP publish.
    let (srv, addr) = start(&[]);
    let api = Api::new(addr);
    let mut tcp = srv.client();
    assert_eq!(tcp.req("listen", "orders.>", ""), "ok");
    api.post("/v1/signals/orders.eu.new", r#"{"payload":"p 1"}"#)
        .expect(200, r#"{"delivered":1}"#);
    assert_eq!(tcp.line(), "sig orders.eu.new p 1");
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
