//! The data families of http.md §6 over a real server and a real HTTP client
//! (`ureq`): counters (§6.8), the key-value store (§6.9), lists (§6.10) and
//! signal publishing (§6.11; streams are in http_sse.rs), with the key and
//! list limits.

use crate::common;
use crate::http_common;

use common::{Json, secs_since};
use http_common::{Api, spawn, start};
use std::thread;
use std::time::{Duration, Instant};

/// The text of a JSON number member (so negative and 64-bit values compare exactly).
fn num(j: &Json, name: &str) -> String {
    match j.get(name) {
        Json::Num(n) => n.clone(),
        other => panic!("{name} is not a number: {other:?}"),
    }
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
