//! The coordination families of http.md §6 over a real server and a real
//! HTTP client (`ureq`): locks (§6.3), semaphores (§6.4), read-write locks
//! (§6.5), elections (§6.6) and barriers (§6.7), with their success shapes
//! byte for byte and every error of their rows the server can be made to
//! produce.

use crate::common;
use crate::http_common;

use common::secs_since;
use http_common::{Api, spawn, start};
use std::thread;
use std::time::{Duration, Instant};

fn grant_body(token: &str, lease: u64) -> String {
    format!(r#"{{"status":"ok","token":"{token}","lease_ttl_s":{lease}}}"#)
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
