//! HTTP transport (http.md §2) over raw sockets: versions, request limits,
//! framing errors and the connection closes they cause, `Expect`, keep-alive
//! for HTTP/1.1 and 1.0, pipelining (also behind a long-poll), `HEAD`,
//! `OPTIONS`, `405`/`404`, and the 10 s request timeout.

use crate::common;
use crate::http_common;

use common::secs_since;
use http_common::{Api, Raw, Resp, request, start};
use std::thread;
use std::time::{Duration, Instant};

/// Asserts an error response that closes the connection (§2.2).
#[track_caller]
fn expect_fatal(raw: &mut Raw, status: u16, code: &str) {
    let r = raw.response();
    r.expect_error(status, code);
    assert_eq!(r.header("Connection"), Some("close"), "{r:?}");
    r.check_common_headers();
    raw.expect_closed();
}

#[test]
fn other_versions_are_505_and_close() {
    let (_s, addr) = start(&[]);
    for req in [
        &b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..],
        b"GET /health HTTP/2.0\r\n\r\n",
        b"GET /health HTTP/1.2\r\n\r\n",
        b"GET /health HTTP/3.0\r\n\r\n",
        // The version is judged before anything else in the request line.
        b"GET not-a-target HTTP/0.9\r\n\r\n",
    ] {
        let mut raw = Raw::connect(addr);
        raw.send(req);
        expect_fatal(&mut raw, 505, "http_version_not_supported");
    }
}

/// A head of exactly `len` bytes (request line, one padding field, blank line).
fn head_of_len(len: usize) -> Vec<u8> {
    let start = "GET /health HTTP/1.1\r\nX-Pad: ";
    let end = "\r\n\r\n";
    let pad = len - start.len() - end.len();
    format!("{start}{}{end}", "a".repeat(pad)).into_bytes()
}

#[test]
fn head_size_limit_is_16_kib() {
    let (_s, addr) = start(&[]);
    let mut raw = Raw::connect(addr);
    let head = head_of_len(16384);
    assert_eq!(head.len(), 16384);
    raw.roundtrip(&head).expect(200, r#"{"status":"ok"}"#);
    // One byte more.
    raw.send(&head_of_len(16385));
    expect_fatal(&mut raw, 431, "headers_too_large");
    // A head that never ends is refused once it passes the limit, without
    // waiting for the blank line.
    let mut raw = Raw::connect(addr);
    raw.send(b"GET /health HTTP/1.1\r\nX-Pad: ");
    raw.send(&vec![b'b'; 20000]);
    expect_fatal(&mut raw, 431, "headers_too_large");
}

#[test]
fn header_count_limit_is_64() {
    let (_s, addr) = start(&[]);
    let fields = |n: usize| {
        let mut h = String::from("GET /health HTTP/1.1\r\n");
        for i in 0..n {
            h.push_str(&format!("X-F{i}: v\r\n"));
        }
        h.push_str("\r\n");
        h.into_bytes()
    };
    let mut raw = Raw::connect(addr);
    raw.roundtrip(&fields(64)).expect(200, r#"{"status":"ok"}"#);
    raw.send(&fields(65));
    expect_fatal(&mut raw, 431, "headers_too_large");
}

#[test]
fn body_limit_is_checked_before_the_body_is_read() {
    let (_s, addr) = start(&[]);
    let mut raw = Raw::connect(addr);
    // No body byte is sent: the 413 must come anyway.
    raw.send(b"POST /v1/kv/k HTTP/1.1\r\nContent-Length: 1048577\r\n\r\n");
    expect_fatal(&mut raw, 413, "payload_too_large");
    let mut raw = Raw::connect(addr);
    raw.send(b"POST /v1/kv/k HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n");
    expect_fatal(&mut raw, 413, "payload_too_large");
    // Exactly 1 MiB is accepted (JSON may lead with whitespace).
    let json = r#"{"delta":3}"#;
    let mut body = " ".repeat(1_048_576 - json.len());
    body.push_str(json);
    let mut raw = Raw::connect(addr);
    raw.roundtrip(&request("POST", "/v1/counters/big/incr", &[], &body))
        .expect(200, r#"{"value":3}"#);
}

#[test]
fn transfer_encoding_is_501() {
    let (_s, addr) = start(&[]);
    for te in ["chunked", "identity", "gzip, chunked"] {
        let mut raw = Raw::connect(addr);
        raw.send(
            format!(
                "POST /v1/kv/k HTTP/1.1\r\nTransfer-Encoding: {te}\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
            )
            .as_bytes(),
        );
        expect_fatal(&mut raw, 501, "not_implemented");
    }
}

#[test]
fn bad_content_length_is_400() {
    let (_s, addr) = start(&[]);
    for cl in [
        "Content-Length: abc",
        "Content-Length: -1",
        "Content-Length: +5",
        "Content-Length: 1, 2",
        "Content-Length: 2\r\nContent-Length: 3",
        "Content-Length: ",
        "Content-Length: 0x10",
    ] {
        let mut raw = Raw::connect(addr);
        raw.send(format!("POST /v1/kv/k HTTP/1.1\r\n{cl}\r\n\r\n{{}}").as_bytes());
        expect_fatal(&mut raw, 400, "bad_request");
    }
    // Repeated equal values are one length (RFC 9110 §8.6).
    let mut raw = Raw::connect(addr);
    raw.roundtrip(
        b"POST /v1/counters/c/incr HTTP/1.1\r\nContent-Length: 11, 11\r\ncontent-length: 11\r\n\r\n{\"delta\":1}",
    )
    .expect(200, r#"{"value":1}"#);
}

#[test]
fn malformed_heads_are_400_and_close() {
    let (_s, addr) = start(&[]);
    for req in [
        &b"GET http://example.com/health HTTP/1.1\r\n\r\n"[..],
        b"GET * HTTP/1.1\r\n\r\n",
        b"GET  /health HTTP/1.1\r\n\r\n",
        b"GET /health  HTTP/1.1\r\n\r\n",
        b"GET /health\r\n\r\n",
        b"G\x01T /health HTTP/1.1\r\n\r\n",
        b"GET /hea lth HTTP/1.1\r\n\r\n",
        b"GET /health HTTP/1.1\r\nX-A: b\r\n c\r\n\r\n",
        b"GET /health HTTP/1.1\r\nNoColon\r\n\r\n",
        b"GET /health HTTP/1.1\r\nBad Name: x\r\n\r\n",
        b"GET /health HTTP/1.1\r\nX: a\x00b\r\n\r\n",
        b"GET /health HTTP/1.1\r\nX: a\rb\r\n\r\n",
        b"GET /health HTTP/1.1\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n",
        b"GET /h\xc3\xa9 HTTP/1.1\r\n\r\n",
    ] {
        let mut raw = Raw::connect(addr);
        raw.send(req);
        let r = raw.response();
        assert_eq!(
            (r.status, r.header("Connection")),
            (400, Some("close")),
            "request {:?} → {r:?} {}",
            String::from_utf8_lossy(req),
            r.text()
        );
        r.expect_error(400, "bad_request");
        raw.expect_closed();
    }
}

#[test]
fn lenient_but_valid_heads() {
    let (_s, addr) = start(&[]);
    let mut raw = Raw::connect(addr);
    // Bare LF line ends, no Host, lower-case names, empty lines before the request.
    raw.roundtrip(b"GET /health HTTP/1.1\n\n")
        .expect(200, r#"{"status":"ok"}"#);
    raw.roundtrip(b"\r\n\r\nGET /health HTTP/1.1\r\nhOsT: x\r\n\r\n")
        .expect(200, r#"{"status":"ok"}"#);
    raw.roundtrip(b"POST /v1/counters/lc/incr HTTP/1.1\ncontent-length: 11\n\n{\"delta\":4}")
        .expect(200, r#"{"value":4}"#);
    // OPTIONS * is the one non-origin target allowed.
    let r = raw.roundtrip(b"OPTIONS * HTTP/1.1\r\n\r\n");
    assert!(r.status < 500, "{r:?}");
}

#[test]
fn expect_100_continue() {
    let (_s, addr) = start(&[]);
    let mut raw = Raw::connect(addr);
    raw.send(
        b"POST /v1/counters/e/incr HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n",
    );
    // The interim response comes before any body byte is sent.
    let interim = raw.read_until(b"\r\n\r\n");
    assert_eq!(interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    raw.send(b"{\"delta\":1}");
    let r = raw.response();
    r.expect(200, r#"{"value":1}"#);
    assert!(!r.has_header("Connection"));
    // No body: no interim response either.
    raw.roundtrip(b"GET /health HTTP/1.1\r\nExpect: 100-continue\r\n\r\n")
        .expect(200, r#"{"status":"ok"}"#);
    // Any other expectation is 417.
    let r = raw.roundtrip(b"GET /health HTTP/1.1\r\nExpect: 200-ok\r\n\r\n");
    r.expect_error(417, "expectation_failed");
}

/// §2.2: the interim `100` is written only once the head passed the checks of
/// §3 up to routing; a head that fails one gets its final answer instead.
#[test]
fn expect_100_continue_not_sent_for_a_refused_head() {
    let (_s, addr) = start(&["--auth-token", "sesame"]);
    for (req, status) in [
        (
            &b"POST /v1/nowhere HTTP/1.1\r\nAuthorization: Bearer sesame\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n"[..],
            404,
        ),
        (
            b"PATCH /v1/kv/k HTTP/1.1\r\nAuthorization: Bearer sesame\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n",
            405,
        ),
        (
            b"POST /v1/kv/k HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n",
            401,
        ),
    ] {
        let mut raw = Raw::connect(addr);
        raw.send(req);
        let r = raw.response();
        assert_eq!(
            r.status,
            status,
            "{:?} → {r:?}",
            String::from_utf8_lossy(req)
        );
        // The body it held back may or may not follow: the server closes.
        assert_eq!(r.header("Connection"), Some("close"), "{r:?}");
        raw.expect_closed();
    }
    // A head that passes gets the interim response, then its answer.
    let mut raw = Raw::connect(addr);
    raw.send(b"POST /v1/kv/k HTTP/1.1\r\nAuthorization: Bearer sesame\r\nExpect: 100-continue\r\nContent-Length: 13\r\n\r\n");
    assert_eq!(
        raw.read_until(b"\r\n\r\n"),
        b"HTTP/1.1 100 Continue\r\n\r\n"
    );
    raw.send(br#"{"value":"v"}"#);
    raw.response().expect_204();
}

#[test]
fn keep_alive_http11() {
    let (_s, addr) = start(&[]);
    let mut raw = Raw::connect(addr);
    for _ in 0..3 {
        let r = raw.roundtrip(b"GET /health HTTP/1.1\r\n\r\n");
        r.expect(200, r#"{"status":"ok"}"#);
        assert!(!r.has_header("Connection"), "{r:?}");
    }
    let r = raw.roundtrip(b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n");
    r.expect(200, r#"{"status":"ok"}"#);
    assert_eq!(r.header("Connection"), Some("close"));
    raw.expect_closed();
    // Errors that do not break framing keep the connection.
    let mut raw = Raw::connect(addr);
    raw.roundtrip(b"GET /nope HTTP/1.1\r\n\r\n")
        .expect_error(404, "not_found");
    raw.roundtrip(b"GET /health HTTP/1.1\r\n\r\n")
        .expect(200, r#"{"status":"ok"}"#);
}

#[test]
fn keep_alive_http10() {
    let (_s, addr) = start(&[]);
    let mut raw = Raw::connect(addr);
    let r = raw.roundtrip(b"GET /health HTTP/1.0\r\n\r\n");
    r.expect(200, r#"{"status":"ok"}"#);
    assert_eq!(r.header("Connection"), Some("close"));
    raw.expect_closed();
    let mut raw = Raw::connect(addr);
    for _ in 0..2 {
        let r = raw.roundtrip(b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        r.expect(200, r#"{"status":"ok"}"#);
        // Responses are always HTTP/1.1 status lines; the header says keep-alive.
        assert_eq!(r.header("Connection"), Some("keep-alive"));
    }
    let r = raw.roundtrip(b"GET /health HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n");
    assert_eq!(r.header("Connection"), Some("close"));
    raw.expect_closed();
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let (_s, addr) = start(&[]);
    let mut raw = Raw::connect(addr);
    let mut batch = Vec::new();
    for i in 1..=20 {
        batch.extend(request(
            "POST",
            "/v1/counters/p/incr",
            &[],
            &format!(r#"{{"delta":{i}}}"#),
        ));
        batch.extend(request("GET", "/v1/counters/p", &[], ""));
    }
    batch.extend(request("GET", "/nope", &[], ""));
    batch.extend(request("HEAD", "/health", &[], ""));
    batch.extend(request("GET", "/health", &["Connection: close"], ""));
    raw.send(&batch);
    let mut total = 0;
    for i in 1..=20 {
        total += i;
        raw.response()
            .expect(200, &format!(r#"{{"value":{total}}}"#));
        raw.response()
            .expect(200, &format!(r#"{{"value":{total}}}"#));
    }
    raw.response().expect_error(404, "not_found");
    let head = raw.response_to(true);
    assert_eq!(head.status, 200);
    let last = raw.response();
    last.expect(200, r#"{"status":"ok"}"#);
    raw.expect_closed();
}

/// A long-poll holds its connection: what is pipelined behind it waits (§2.3).
#[test]
fn long_poll_holds_the_pipeline() {
    let (_s, addr) = start(&[]);
    let api = Api::new(addr);
    let (s1, s2) = (api.session(), api.session());
    let t = api.lock(&s1, "pipe", 0).token();
    let mut raw = Raw::connect(addr);
    let mut batch = request(
        "POST",
        "/v1/locks/pipe",
        &[&format!("X-Dflockd-Session: {s2}")],
        r#"{"acquire_timeout_s":10}"#,
    );
    batch.extend(request("GET", "/v1/counters/after", &[], ""));
    raw.send(&batch);
    api.wait_lock_waiters("pipe", 1);
    raw.expect_silence(Duration::from_millis(300));
    api.unlock(&s1, "pipe", &t);
    let t2 = raw.response().token();
    raw.response().expect(200, r#"{"value":0}"#);
    api.unlock(&s2, "pipe", &t2);
}

#[test]
fn head_has_the_headers_of_get_and_no_body() {
    let (_s, addr) = start(&[]);
    let api = Api::new(addr);
    api.post("/v1/kv/h", r#"{"value":"hello"}"#).expect_204();
    let mut raw = Raw::connect(addr);
    for path in [
        "/health",
        "/v1/kv/h",
        "/v1/stats",
        "/metrics",
        "/v1/openapi.json",
    ] {
        let get = raw.roundtrip(&request("GET", path, &[], ""));
        raw.send(&request("HEAD", path, &[], ""));
        let head = raw.response_to(true);
        assert_eq!(head.status, get.status, "{path}");
        let names = |r: &Resp| -> Vec<String> {
            r.headers
                .iter()
                .map(|(n, _)| n.to_ascii_lowercase())
                .collect()
        };
        assert_eq!(names(&head), names(&get), "{path}");
        for h in ["Content-Type", "Cache-Control"] {
            assert_eq!(head.header(h), get.header(h), "{path} {h}");
        }
        if path != "/metrics" && path != "/v1/stats" {
            // Their bodies change between two requests; the others do not.
            assert_eq!(head.header("Content-Length"), get.header("Content-Length"));
        }
    }
    // The connection is still in sync: no body followed the HEAD answers.
    raw.roundtrip(&request("GET", "/health", &[], ""))
        .expect(200, r#"{"status":"ok"}"#);
    // HEAD on an SSE endpoint is 405 (§2.4).
    raw.send(&request("HEAD", "/v1/watch?pattern=x", &[], ""));
    let r = raw.response_to(true);
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow"), Some("GET, OPTIONS"));
}

#[test]
fn method_not_allowed_lists_allow() {
    let (_s, addr) = start(&[]);
    let mut raw = Raw::connect(addr);
    for (req, allow) in [
        ("DELETE /health", "GET, HEAD, OPTIONS"),
        ("PUT /v1/kv/k", "GET, HEAD, POST, DELETE, OPTIONS"),
        ("GET /v1/locks/k", "POST, OPTIONS"),
        ("get /health", "GET, HEAD, OPTIONS"),
        ("POST /v1/signals", "GET, OPTIONS"),
    ] {
        let r = raw.roundtrip(format!("{req} HTTP/1.1\r\n\r\n").as_bytes());
        r.expect_error(405, "method_not_allowed");
        assert_eq!(r.header("Allow"), Some(allow), "{req}");
    }
}

#[test]
fn options_answers_allow() {
    let (_s, addr) = start(&[]);
    let mut raw = Raw::connect(addr);
    let r = raw.roundtrip(b"OPTIONS /v1/kv/k HTTP/1.1\r\n\r\n");
    r.expect_204();
    assert_eq!(r.header("Allow"), Some("GET, HEAD, POST, DELETE, OPTIONS"));
    assert!(
        !r.headers
            .iter()
            .any(|(n, _)| n.to_ascii_lowercase().starts_with("access-control-")),
        "{r:?}"
    );
    // Without the CORS flag, even a preflight gets only Allow (§3.3).
    let r = raw.roundtrip(
        b"OPTIONS /v1/kv/k HTTP/1.1\r\nOrigin: http://a.example\r\nAccess-Control-Request-Method: POST\r\n\r\n",
    );
    r.expect_204();
    assert!(r.has_header("Allow"));
    assert!(!r.has_header("Access-Control-Allow-Origin"));
    raw.roundtrip(b"OPTIONS /v1/nope HTTP/1.1\r\n\r\n")
        .expect_error(404, "not_found");
}

#[test]
fn unknown_paths_are_404() {
    let (_s, addr) = start(&[]);
    let api = Api::new(addr);
    for path in [
        "/",
        "/v1",
        "/health/",
        "/v1/locks",
        "/v1/locks/",
        "/v1/kv/a/b",
        "/v1/locks/k/release/x",
        "/v2/kv/k",
        "/v1/kv/k/cas/",
    ] {
        let r = api.get(path);
        r.expect_error(404, "not_found");
    }
}

#[test]
fn get_with_a_body_is_400() {
    let (_s, addr) = start(&[]);
    let mut raw = Raw::connect(addr);
    let r = raw.roundtrip(b"GET /health HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}");
    // /health is answered whatever the body? No: GET bodies are refused (§4.2).
    r.expect_error(400, "bad_request");
    raw.roundtrip(b"GET /v1/kv/x HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}")
        .expect_error(400, "bad_request");
    // Content-Length: 0 is an empty body.
    raw.roundtrip(b"GET /v1/kv/x HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        .expect(200, r#"{"status":"nil"}"#);
}

/// SLOW (~10 s): a head trickled in byte by byte, never complete, is answered
/// `408 request_timeout` 10 s after its first byte, then closed (§2.2).
#[test]
fn trickled_head_times_out_after_10s() {
    let (_s, addr) = start(&[]);
    let mut raw = Raw::connect(addr);
    raw.set_read_timeout(Duration::from_millis(900));
    let start = Instant::now();
    let trickle = b"GET /health HTTP/1.1\r\nX-Slow: ";
    let mut i = 0;
    let mut buf = [0u8; 1];
    loop {
        let byte = if i < trickle.len() { trickle[i] } else { b'a' };
        i += 1;
        if raw.try_send(&[byte]).is_err() {
            break;
        }
        // Wait for an answer (or the close) up to the read timeout between bytes.
        if raw.stream.peek(&mut buf).is_ok() {
            break;
        }
        assert!(
            secs_since(start) < 14.0,
            "no 408 after {:?}",
            start.elapsed()
        );
    }
    raw.set_read_timeout(common::READ_TIMEOUT);
    let r = raw.response();
    let took = secs_since(start);
    r.expect_error(408, "request_timeout");
    assert_eq!(r.header("Connection"), Some("close"));
    assert!((9.5..13.0).contains(&took), "408 after {took:.2} s");
    raw.expect_closed();
    // A body that stops arriving is timed out the same way; one check that
    // the connection of a complete request is not affected:
    let mut ok = Raw::connect(addr);
    thread::sleep(Duration::from_millis(100));
    ok.roundtrip(b"GET /health HTTP/1.1\r\n\r\n")
        .expect(200, r#"{"status":"ok"}"#);
}

/// The answer of a long-poll carries the `Connection` decision of its request.
#[test]
fn long_poll_answer_keeps_the_connection_header() {
    let (_s, addr) = start(&[]);
    let mut raw = Raw::connect(addr);
    let r = raw.roundtrip(&request(
        "POST",
        "/v1/lists/l/blpop",
        &["Connection: close"],
        r#"{"timeout_s":1}"#,
    ));
    r.expect(200, r#"{"status":"nil"}"#);
    assert_eq!(r.header("Connection"), Some("close"));
    raw.expect_closed();
    let mut raw = Raw::connect(addr);
    let body = r#"{"timeout_s":1}"#;
    let req = format!(
        "POST /v1/lists/l/brpop HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let r = raw.roundtrip(req.as_bytes());
    r.expect(200, r#"{"status":"nil"}"#);
    assert_eq!(r.header("Connection"), Some("keep-alive"));
    raw.roundtrip(b"GET /health HTTP/1.1\r\n\r\n")
        .expect(200, r#"{"status":"ok"}"#);
}
