//! Admission (http.md §3) and the HTTP limits: bearer authentication, CORS,
//! the per-IP rate limit, connection caps and session caps (SSE streams
//! included).

use crate::common;
use crate::http_common;

use common::{secs_since, wait_until};
use http_common::{Api, Raw, request, start};
use std::io::Read;
use std::thread;
use std::time::{Duration, Instant};

const TOKEN: &str = "s3cret-token";

/// The value of a metric sample line `name` (exact, labels included).
fn metric(api: &Api, name: &str) -> Option<f64> {
    let text = api.get("/metrics").text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

// ---- §3.2 bearer authentication ----

#[test]
fn bearer_auth_refuses_after_a_delay_and_keeps_the_connection() {
    let (_s, addr) = start(&["--auth-token", TOKEN]);
    let mut raw = Raw::connect(addr);
    for auth in [
        None,
        Some("Bearer wrong"),
        Some(&format!("Basic {TOKEN}")[..]),
        Some(&format!("Bearer{TOKEN}")[..]),
        Some("Bearer"),
        Some(&format!("Bearer {TOKEN}x")[..]),
    ] {
        let header = auth.map(|a| format!("Authorization: {a}"));
        let headers: Vec<&str> = header.iter().map(String::as_str).collect();
        let start = Instant::now();
        let r = raw.roundtrip(&request("GET", "/v1/stats", &headers, ""));
        let took = start.elapsed();
        r.expect(401, r#"{"error":"unauthorized"}"#);
        assert_eq!(
            r.header("WWW-Authenticate"),
            Some(r#"Bearer realm="dflockd""#),
            "{auth:?}"
        );
        assert!(!r.has_header("Connection"), "{r:?}");
        assert!(took >= Duration::from_millis(100), "401 after {took:?}");
    }
    // The same connection is still usable.
    for auth in [
        format!("Bearer {TOKEN}"),
        format!("bearer {TOKEN}"),
        format!("BEARER    {TOKEN} \t "),
        format!("bEaReR \t{TOKEN}"),
    ] {
        let r = raw.roundtrip(&request(
            "GET",
            "/v1/counters/a",
            &[&format!("Authorization: {auth}")],
            "",
        ));
        assert_eq!(r.status, 200, "{auth:?}: {r:?}");
    }
    // Exempt: /health, /ready, /v1/openapi.json; not /metrics.
    let api = Api::new(addr);
    api.get("/health").expect(200, r#"{"status":"ok"}"#);
    api.get("/ready").expect(200, r#"{"status":"ok"}"#);
    assert_eq!(api.get("/v1/openapi.json").status, 200);
    api.get("/metrics").expect_error(401, "unauthorized");
    api.post("/v1/sessions", "")
        .expect_error(401, "unauthorized");
    // A 404 needs authentication first (§3.1: auth before routing).
    api.get("/nope").expect_error(401, "unauthorized");
    let authed = Api::with_bearer(addr, TOKEN);
    authed.get("/nope").expect_error(404, "not_found");
    let s = authed.session();
    authed.lock(&s, "k", 0).token();
    // Streams need it too (EventSource cannot send it, §3.2).
    let mut stream = Raw::connect(addr);
    stream
        .roundtrip(b"GET /v1/watch?pattern=x HTTP/1.1\r\n\r\n")
        .expect_error(401, "unauthorized");
    stream.send(
        format!("GET /v1/watch?pattern=x HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(stream.read_head().status, 200);
    assert_eq!(stream.read_until(b"\n\n"), b":ok\n\n");
    // Failures are counted for the http listener.
    let failures = metric(&authed, r#"dflockd_auth_failures_total{listener="http"}"#);
    assert_eq!(failures, Some(10.0));
    let text = authed.get("/metrics").text();
    for line in [
        r#"dflockd_http_requests_total{method="GET",path="/v1/stats",status="401"} 6"#,
        r#"dflockd_http_requests_total{method="GET",path="unmatched",status="401"} 1"#,
        r#"dflockd_http_requests_total{method="GET",path="unmatched",status="404"} 1"#,
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no {line} (401s are HTTP responses too, §9):\n{text}"
        );
    }
}

/// A 401 to a `Connection: close` request closes, as every response saying
/// `Connection: close` does.
#[test]
fn unauthorized_with_connection_close_closes() {
    let (_s, addr) = start(&["--auth-token", TOKEN]);
    let mut raw = Raw::connect(addr);
    let r = raw.roundtrip(b"GET /v1/stats HTTP/1.1\r\nConnection: close\r\n\r\n");
    r.expect_error(401, "unauthorized");
    assert_eq!(r.header("Connection"), Some("close"));
    raw.expect_closed();
}

/// TCP clients still authenticate with `auth`; HTTP clients with the header.
#[test]
fn bearer_auth_shares_the_token_with_tcp() {
    let (srv, addr) = start(&["--auth-token", TOKEN]);
    let mut tcp = srv.client();
    assert_eq!(tcp.req("auth", "_", TOKEN), "ok");
    assert_eq!(tcp.req("incr", "shared", "2"), "ok 2");
    Api::with_bearer(addr, TOKEN)
        .get("/v1/counters/shared")
        .expect(200, r#"{"value":2}"#);
}

// ---- §3.3 CORS ----

fn access_control_headers(r: &http_common::Resp) -> Vec<String> {
    r.headers
        .iter()
        .filter(|(n, _)| n.to_ascii_lowercase().starts_with("access-control-"))
        .map(|(n, v)| format!("{n}: {v}"))
        .collect()
}

#[test]
fn cors_allowed_origins() {
    let (_s, addr) = start(&[
        "--http-cors-allowed-origins",
        "http://a.example,https://B.example:8443",
        "--auth-token",
        TOKEN,
    ]);
    let api = Api::with_bearer(addr, TOKEN);
    let r = api.get_with("/health", &[("Origin", "http://a.example")]);
    assert_eq!(
        r.header("Access-Control-Allow-Origin"),
        Some("http://a.example")
    );
    assert_eq!(r.header("Vary"), Some("Origin"));
    assert!(!r.has_header("Access-Control-Allow-Credentials"));
    // ASCII case-insensitive match; the request's origin is echoed.
    let r = api.get_with("/v1/counters/c", &[("Origin", "https://b.EXAMPLE:8443")]);
    assert_eq!(
        r.header("Access-Control-Allow-Origin"),
        Some("https://b.EXAMPLE:8443")
    );
    // Error responses carry it too.
    let r = api.get_with("/nope", &[("Origin", "http://a.example")]);
    assert_eq!(r.status, 404);
    assert_eq!(
        r.header("Access-Control-Allow-Origin"),
        Some("http://a.example")
    );
    // Not allowed, or no Origin: no Access-Control-* header at all.
    for origin in [
        Some("http://evil.example"),
        Some("http://a.example:80"),
        None,
    ] {
        let headers: Vec<(&str, &str)> = origin.iter().map(|o| ("Origin", *o)).collect();
        let r = api.get_with("/health", &headers);
        assert!(access_control_headers(&r).is_empty(), "{origin:?}: {r:?}");
        assert!(!r.has_header("Vary"), "{origin:?}: {r:?}");
    }
    // Preflights need no authentication.
    let mut raw = Raw::connect(addr);
    let r = raw.roundtrip(
        b"OPTIONS /v1/locks/k HTTP/1.1\r\nOrigin: http://a.example\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: x-dflockd-session\r\n\r\n",
    );
    r.expect_204();
    assert_eq!(
        access_control_headers(&r),
        [
            "Access-Control-Allow-Origin: http://a.example",
            "Access-Control-Allow-Methods: GET, POST, DELETE, OPTIONS",
            "Access-Control-Allow-Headers: Authorization, Content-Type, X-Dflockd-Session",
            "Access-Control-Max-Age: 300",
        ]
    );
    assert_eq!(r.header("Vary"), Some("Origin"));
    // A preflight from another origin: 204 without any Access-Control-*.
    let r = raw.roundtrip(
        b"OPTIONS /v1/locks/k HTTP/1.1\r\nOrigin: http://evil.example\r\nAccess-Control-Request-Method: POST\r\n\r\n",
    );
    r.expect_204();
    assert!(access_control_headers(&r).is_empty(), "{r:?}");
    // A plain OPTIONS (no Access-Control-Request-Method) is not a preflight:
    // it needs authentication like any request (§3.2 exempts only preflights
    // and /health, /ready, /v1/openapi.json)… and answers with Allow.
    let r = raw.roundtrip(b"OPTIONS /v1/locks/k HTTP/1.1\r\nOrigin: http://a.example\r\n\r\n");
    r.expect_error(401, "unauthorized");
    let r = raw.roundtrip(b"OPTIONS /health HTTP/1.1\r\n\r\n");
    r.expect_204();
    assert_eq!(r.header("Allow"), Some("GET, HEAD, OPTIONS"));
    let r = raw.roundtrip(
        format!("OPTIONS /v1/locks/k HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n").as_bytes(),
    );
    r.expect_204();
    assert_eq!(r.header("Allow"), Some("POST, OPTIONS"));
}

#[test]
fn cors_wildcard() {
    let (_s, addr) = start(&["--http-cors-allowed-origins", "*"]);
    let api = Api::new(addr);
    let r = api.get_with("/health", &[("Origin", "http://anything.example")]);
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"));
    assert!(!r.has_header("Access-Control-Allow-Credentials"));
    let r = api.get("/health");
    assert!(access_control_headers(&r).is_empty(), "no Origin: {r:?}");
    let mut raw = Raw::connect(addr);
    let r = raw.roundtrip(
        b"OPTIONS /v1/kv/k HTTP/1.1\r\nOrigin: http://x.example\r\nAccess-Control-Request-Method: DELETE\r\n\r\n",
    );
    r.expect_204();
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"));
    assert_eq!(r.header("Access-Control-Max-Age"), Some("300"));
    // An SSE stream's head carries it as well.
    raw.send(b"GET /v1/watch?pattern=k HTTP/1.1\r\nOrigin: http://x.example\r\n\r\n");
    let head = raw.read_head();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("Access-Control-Allow-Origin"), Some("*"));
}

// ---- §3.4 rate limit ----

#[test]
fn rate_limit_per_ip() {
    let (_s, addr) = start(&["--http-rate-limit-per-ip", "5"]);
    let mut raw = Raw::connect(addr);
    // Ten requests in one write: the bucket holds 5, refilled at 5/s.
    let mut batch = Vec::new();
    for _ in 0..10 {
        batch.extend(request("GET", "/v1/counters/r", &[], ""));
    }
    raw.send(&batch);
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let r = raw.response();
        if r.status == 429 {
            r.expect(429, r#"{"error":"rate_limited"}"#);
            assert_eq!(r.header("Retry-After"), Some("1"));
        } else {
            r.expect(200, r#"{"value":0}"#);
        }
        statuses.push(r.status);
    }
    assert_eq!(&statuses[..5], &[200; 5], "{statuses:?}");
    let limited = statuses.iter().filter(|&&s| s == 429).count();
    assert!(limited >= 3, "{statuses:?}");
    // Exempt: /health, /ready, /metrics, even with an empty bucket.
    for path in ["/health", "/ready", "/metrics"] {
        let r = raw.roundtrip(&request("GET", path, &[], ""));
        assert_eq!(r.status, 200, "{path}");
    }
    // Refilled after a second; the connection stayed open.
    thread::sleep(Duration::from_millis(1100));
    raw.roundtrip(&request("GET", "/v1/counters/r", &[], ""))
        .expect(200, r#"{"value":0}"#);
    let api = Api::new(addr);
    let n = metric(&api, "dflockd_http_rate_limited_total").unwrap();
    assert!(n >= 3.0, "{n}");
}

// ---- §3.5 connection caps ----

/// True when the server closed `raw` without a response (read gives EOF or a reset).
fn closed_without_response(raw: &mut Raw) -> bool {
    raw.set_read_timeout(Duration::from_secs(5));
    let _ = raw.try_send(b"GET /health HTTP/1.1\r\n\r\n");
    let mut buf = [0u8; 64];
    match raw.stream.read(&mut buf) {
        Ok(0) => true,
        Ok(n) => panic!("got a response: {:?}", String::from_utf8_lossy(&buf[..n])),
        Err(e) => matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        ),
    }
}

#[test]
fn http_max_connections_per_ip() {
    let (srv, addr) = start(&["--http-max-connections-per-ip", "2"]);
    let mut a = Raw::connect(addr);
    let mut b = Raw::connect(addr);
    for c in [&mut a, &mut b] {
        c.roundtrip(b"GET /health HTTP/1.1\r\n\r\n")
            .expect(200, r#"{"status":"ok"}"#);
    }
    let mut c = Raw::connect(addr);
    assert!(closed_without_response(&mut c));
    // TCP connections are not capped by the HTTP flag.
    let mut tcp = srv.client();
    assert_eq!(tcp.req("get", "x", ""), "ok 0");
    drop(a);
    wait_until("a free HTTP slot", || {
        let mut d = Raw::connect(addr);
        d.set_read_timeout(Duration::from_secs(2));
        d.try_send(b"GET /health HTTP/1.1\r\n\r\n").is_ok()
            && d.stream.read(&mut [0u8; 16]).is_ok_and(|n| n > 0)
    });
    let stats = tcp.stats();
    assert!(stats.total("connections_rejected") >= 1);
}

#[test]
fn max_connections_spans_listeners() {
    let (srv, addr) = start(&["--max-connections", "1"]);
    let mut tcp = srv.client();
    assert_eq!(tcp.req("get", "x", ""), "ok 0");
    let mut raw = Raw::connect(addr);
    assert!(closed_without_response(&mut raw));
}

// ---- §5 session caps ----

#[test]
fn max_sessions_counts_sse_streams() {
    let (_s, addr) = start(&["--http-max-sessions", "2"]);
    let api = Api::new(addr);
    let a = api.session();
    let _b = api.session();
    api.post("/v1/sessions", "")
        .expect(503, r#"{"error":"max_sessions"}"#);
    // A stream over the cap is refused with an ordinary error response.
    let mut raw = Raw::connect(addr);
    raw.roundtrip(b"GET /v1/signals?pattern=x HTTP/1.1\r\n\r\n")
        .expect_error(503, "max_sessions");
    api.delete(&format!("/v1/sessions/{a}")).expect_204();
    // A stream takes the freed place…
    let mut stream = Raw::connect(addr);
    stream.send(b"GET /v1/watch?pattern=w HTTP/1.1\r\n\r\n");
    assert_eq!(stream.read_head().status, 200);
    assert_eq!(stream.read_until(b"\n\n"), b":ok\n\n");
    api.post("/v1/sessions", "")
        .expect_error(503, "max_sessions");
    raw.roundtrip(b"GET /v1/elections/e/events HTTP/1.1\r\n\r\n")
        .expect_error(503, "max_sessions");
    assert_eq!(api.stats().get("server").get("http_sessions").u64(), 2);
    // …and gives it back when the client goes.
    drop(stream);
    wait_until("the stream's place freed", || {
        api.post("/v1/sessions", "").status == 200
    });
}

#[test]
fn max_sessions_per_ip() {
    let (_s, addr) = start(&["--http-max-sessions-per-ip", "1"]);
    let api = Api::new(addr);
    let a = api.session();
    api.post("/v1/sessions", "")
        .expect(503, r#"{"error":"max_sessions_per_ip"}"#);
    let mut raw = Raw::connect(addr);
    raw.roundtrip(b"GET /v1/watch?pattern=x HTTP/1.1\r\n\r\n")
        .expect_error(503, "max_sessions_per_ip");
    api.delete(&format!("/v1/sessions/{a}")).expect_204();
    api.session();
}

/// §5: a session with no request in progress is ended within a second
/// after 2 × the idle timeout; pings keep it alive.
#[test]
fn idle_sessions_expire_after_twice_the_timeout() {
    let (_s, addr) = start(&["--http-session-idle-timeout", "1"]);
    let api = Api::new(addr);
    let r = api.post("/v1/sessions", "");
    assert_eq!(r.json().get("idle_timeout_s").u64(), 1);
    let s = r.json().get("session_id").str().to_string();
    // Kept alive by pings every 0.5 s for 3.5 s (longer than 2 × 1 s).
    for _ in 0..7 {
        thread::sleep(Duration::from_millis(500));
        api.post(&format!("/v1/sessions/{s}/ping"), "").expect_204();
    }
    let last = Instant::now();
    let sessions = || api.stats().get("server").get("http_sessions").u64();
    assert_eq!(sessions(), 1);
    wait_until("the idle session to end", || {
        thread::sleep(Duration::from_millis(20));
        sessions() == 0
    });
    let took = secs_since(last);
    assert!(
        (1.9..4.0).contains(&took),
        "idle session ended {took:.2} s after its last activity (expected 2..3 s)"
    );
    api.post(&format!("/v1/sessions/{s}/ping"), "")
        .expect_error(410, "session_gone");
}
