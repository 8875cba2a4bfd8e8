//! Server-Sent Events (http.md §7) read byte for byte from raw sockets:
//! the stream head, `:ok`, `sig` events with `*`/`>` wildcards and queue
//! groups, `watch` and `leader` events, `:ping`, validation errors, the
//! subscription leaving with its client, slow consumers, and `curl -N`.

use crate::common;
use crate::http_common;

use common::wait_until;
use http_common::{Api, Raw, curl_available, start};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Opens a stream on `target` and reads its head and `:ok`.
#[track_caller]
fn open(addr: SocketAddr, target: &str) -> Raw {
    let mut raw = Raw::connect(addr);
    raw.send(format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    let head = raw.read_head();
    assert_eq!(head.status, 200, "{target}: {head:?}");
    assert_eq!(raw.read_until(b"\n\n"), b":ok\n\n", "{target}");
    raw
}

fn publish(api: &Api, channel: &str, payload: &str) -> u64 {
    let body = format!(r#"{{"payload":{}}}"#, json_string(payload));
    let r = api.post(&format!("/v1/signals/{channel}"), &body);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json().get("delivered").u64()
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[test]
fn stream_head_and_sig_events_byte_for_byte() {
    let (_s, addr) = start(&[]);
    let api = Api::new(addr);
    let mut raw = Raw::connect(addr);
    raw.send(b"GET /v1/signals?pattern=orders.* HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = raw.read_head();
    assert_eq!(head.status, 200);
    let names: Vec<&str> = head.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "Date",
            "Server",
            "Content-Type",
            "Cache-Control",
            "X-Accel-Buffering",
            "Connection"
        ]
    );
    assert_eq!(head.header("Content-Type"), Some("text/event-stream"));
    assert_eq!(head.header("Cache-Control"), Some("no-cache"));
    assert_eq!(head.header("X-Accel-Buffering"), Some("no"));
    assert_eq!(head.header("Connection"), Some("close"));
    assert_eq!(raw.read_until(b"\n\n"), b":ok\n\n");
    // Anything the client sends after the request is ignored (§7).
    raw.send(b"GET /health HTTP/1.1\r\n\r\ngarbage\r\n");
    assert_eq!(publish(&api, "orders.created", r#"{"id":7}"#), 1);
    let frame = raw.read_until(b"\n\n");
    assert_eq!(
        String::from_utf8(frame).unwrap(),
        "event: sig\ndata: {\"channel\":\"orders.created\",\"payload\":\"{\\\"id\\\":7}\"}\n\n"
    );
    // `*` is one token: orders.eu.created does not match orders.*.
    assert_eq!(publish(&api, "orders.eu.created", "x"), 0);
    // Spaces and non-ASCII survive; the data is one line of JSON.
    assert_eq!(publish(&api, "orders.x", "a b  c é \\ \""), 1);
    let (name, data) = raw.event();
    assert_eq!(name, "sig");
    assert_eq!(data, r#"{"channel":"orders.x","payload":"a b  c é \\ \""}"#);
    raw.expect_silence(Duration::from_millis(200));
}

#[test]
fn wildcards_and_queue_groups() {
    let (srv, addr) = start(&[]);
    let api = Api::new(addr);
    let mut tail = open(addr, "/v1/signals?pattern=orders.%3E");
    let mut star = open(addr, "/v1/signals?pattern=*.created");
    let mut g1 = open(addr, "/v1/signals?pattern=orders.>&group=billing");
    let mut g2 = open(addr, "/v1/signals?pattern=orders.>&group=billing");
    let mut tcp = srv.client();
    assert_eq!(tcp.req("listen", "orders.>", "billing"), "ok");
    // tail + star + one of the three billing members.
    assert_eq!(publish(&api, "orders.created", "1"), 3);
    assert_eq!(publish(&api, "orders.created", "2"), 3);
    assert_eq!(publish(&api, "orders.created", "3"), 3);
    assert_eq!(publish(&api, "orders.eu.paid", "4"), 2);
    let data = |n: &str, ch: &str| format!(r#"{{"channel":"{ch}","payload":"{n}"}}"#);
    for n in ["1", "2", "3"] {
        assert_eq!(tail.event().1, data(n, "orders.created"));
        assert_eq!(star.event().1, data(n, "orders.created"));
    }
    assert_eq!(tail.event().1, data("4", "orders.eu.paid"));
    // Round-robin in join order: g1, g2, the TCP member, g1 again.
    assert_eq!(g1.event().1, data("1", "orders.created"));
    assert_eq!(g2.event().1, data("2", "orders.created"));
    assert_eq!(tcp.line(), "sig orders.created 3");
    assert_eq!(g1.event().1, data("4", "orders.eu.paid"));
    star.expect_silence(Duration::from_millis(100));
    g2.expect_silence(Duration::from_millis(100));
    // A closed stream leaves its group and the ungrouped set.
    drop(g1);
    drop(tail);
    wait_until("closed streams to unsubscribe", || {
        publish(&api, "orders.created", "x") == 2
    });
}

#[test]
fn stream_validation_errors_are_ordinary_responses() {
    let (_s, addr) = start(&[]);
    let mut raw = Raw::connect(addr);
    for target in [
        "/v1/signals",
        "/v1/signals?pattern=",
        "/v1/signals?pattern=fo*",
        "/v1/signals?pattern=a.>.b",
        "/v1/signals?pattern=a&pattern=b",
        "/v1/signals?pattern=a&group=x%20y",
        "/v1/signals?pattern=%ZZ",
        "/v1/watch",
        "/v1/watch?pattern=session:*",
        "/v1/elections/a%20b/events",
    ] {
        let r = raw.roundtrip(format!("GET {target} HTTP/1.1\r\n\r\n").as_bytes());
        assert_eq!(r.status, 400, "{target}: {}", r.text());
        r.expect_error(400, "bad_request");
    }
    // The connection is still an ordinary one.
    raw.roundtrip(b"GET /health HTTP/1.1\r\n\r\n")
        .expect(200, r#"{"status":"ok"}"#);
}

#[test]
fn watch_stream() {
    let (srv, addr) = start(&[]);
    let api = Api::new(addr);
    let mut w = open(addr, "/v1/watch?pattern=cfg.*");
    let ev = |event: &str, key: &str| {
        (
            "watch".to_string(),
            format!(r#"{{"event":"{event}","key":"{key}"}}"#),
        )
    };
    api.post("/v1/kv/cfg.a", r#"{"value":"1","ttl_s":1}"#)
        .expect_204();
    assert_eq!(w.event(), ev("kset", "cfg.a"));
    api.post("/v1/counters/cfg.n/incr", r#"{"delta":1}"#);
    assert_eq!(w.event(), ev("incr", "cfg.n"));
    let mut tcp = srv.client();
    let reply = tcp.req("l", "cfg.lock", "0");
    let token = common::token_of(&reply);
    assert_eq!(w.event(), ev("acquire", "cfg.lock"));
    assert_eq!(tcp.req("r", "cfg.lock", &token), "ok");
    assert_eq!(w.event(), ev("release", "cfg.lock"));
    let s = api.session();
    let t = api.lock(&s, "cfg.http", 0).token();
    assert_eq!(w.event(), ev("acquire", "cfg.http"));
    api.unlock(&s, "cfg.http", &t);
    assert_eq!(w.event(), ev("release", "cfg.http"));
    // Not watched; and reads emit nothing.
    api.post("/v1/kv/other", r#"{"value":"1"}"#).expect_204();
    api.get("/v1/kv/cfg.a");
    // The TTL passes.
    assert_eq!(w.event(), ev("expire", "cfg.a"));
    api.post("/v1/lists/cfg.q/rpush", r#"{"value":"v"}"#);
    assert_eq!(w.event(), ev("rpush", "cfg.q"));
    api.delete("/v1/kv/cfg.gone").expect_204();
    assert_eq!(w.event(), ev("kdel", "cfg.gone"));
    w.expect_silence(Duration::from_millis(100));
}

#[test]
fn leader_events_stream() {
    let (_s, addr) = start(&[]);
    let api = Api::new(addr);
    let ev = |event: &str| {
        (
            "leader".to_string(),
            format!(r#"{{"event":"{event}","key":"job"}}"#),
        )
    };
    let mut o = open(addr, "/v1/elections/job/events");
    let (s1, s2) = (api.session(), api.session());
    let t1 = api
        .post_s(
            "/v1/elections/job",
            &s1,
            r#"{"acquire_timeout_s":0,"lease_ttl_s":30}"#,
        )
        .token();
    assert_eq!(o.event(), ev("elected"));
    // A stream opened while the key has a holder starts with `elected`.
    let mut late = open(addr, "/v1/elections/job/events");
    assert_eq!(late.event(), ev("elected"));
    let a = api.clone();
    let sid = s2.clone();
    let campaign = http_common::spawn(move || {
        a.post_s(
            "/v1/elections/job",
            &sid,
            r#"{"acquire_timeout_s":10,"lease_ttl_s":1}"#,
        )
    });
    api.wait_lock_waiters("job", 1);
    api.post_s(
        "/v1/elections/job/resign",
        &s1,
        &format!(r#"{{"token":"{t1}"}}"#),
    )
    .expect_204();
    for stream in [&mut o, &mut late] {
        assert_eq!(stream.event(), ev("resigned"));
        assert_eq!(stream.event(), ev("failover"));
        assert_eq!(stream.event(), ev("elected"));
    }
    campaign.join().unwrap().token();
    // s2 lets its 1 s lease run out with nobody queued: failover.
    let start = Instant::now();
    assert_eq!(o.event(), ev("failover"));
    assert!(start.elapsed() < Duration::from_secs(3));
    assert_eq!(late.event(), ev("failover"));
}

#[test]
fn ping_comments() {
    let (_s, addr) = start(&["--http-sse-ping-interval", "1"]);
    let api = Api::new(addr);
    let mut raw = open(addr, "/v1/watch?pattern=p");
    let opened = Instant::now();
    assert_eq!(raw.read_until(b"\n\n"), b":ping\n\n");
    let took = opened.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "first ping after {took:?}"
    );
    // Output resets the silence clock: an event, then a ping a second later.
    api.post("/v1/kv/p", r#"{"value":"1"}"#).expect_204();
    let t = Instant::now();
    assert_eq!(raw.event().0, "watch");
    assert_eq!(raw.read_until(b"\n\n"), b":ping\n\n");
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );

    let (_s, addr) = start(&["--http-sse-ping-interval", "0"]);
    let mut raw = open(addr, "/v1/watch?pattern=p");
    raw.expect_silence(Duration::from_millis(1500));
}

#[test]
fn streams_count_as_subscribers_and_leave_with_their_client() {
    let (_s, addr) = start(&[]);
    let api = Api::new(addr);
    let metric = |name: &str| -> String {
        api.get("/metrics")
            .text()
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ').map(str::to_string))
            .unwrap_or_default()
    };
    let a = open(addr, "/v1/signals?pattern=x");
    let b = open(addr, "/v1/watch?pattern=x");
    let c = open(addr, "/v1/elections/x/events");
    assert_eq!(metric("dflockd_signal_subscriptions"), "1");
    assert_eq!(metric("dflockd_watch_subscriptions"), "1");
    assert_eq!(metric("dflockd_election_observers"), "1");
    assert_eq!(metric("dflockd_http_sessions"), "3");
    drop((a, b, c));
    wait_until("streams to end with their clients", || {
        metric("dflockd_http_sessions") == "0"
            && metric("dflockd_signal_subscriptions") == "0"
            && metric("dflockd_watch_subscriptions") == "0"
            && metric("dflockd_election_observers") == "0"
    });
}

/// A stream whose pending output passes `--max-output-bytes` is closed as a
/// slow consumer (§7) instead of buffering without bound.
#[test]
fn slow_stream_is_closed() {
    let (srv, addr) = start(&["--max-value-bytes", "2048", "--max-output-bytes", "4096"]);
    let mut slow = open(addr, "/v1/signals?pattern=flood");
    // Publish over TCP, pipelined, until the stream is dropped (delivered 0).
    let mut tcp = srv.client();
    let payload = "x".repeat(2000);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut batch = Vec::new();
        for _ in 0..200 {
            batch.extend(format!("signal\nflood\n{payload}\n").as_bytes());
        }
        tcp.send(&batch);
        let mut dropped = false;
        for _ in 0..200 {
            let line = tcp.line();
            dropped |= line == "ok 0";
        }
        if dropped {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the slow stream was never closed"
        );
    }
    let stats = tcp.stats();
    assert!(stats.total("slow_consumer_disconnects") >= 1, "{stats:?}");
    // The stream ends: whatever was buffered, then the close.
    slow.set_read_timeout(Duration::from_secs(10));
    let mut sink = Vec::new();
    use std::io::Read;
    let _ = slow.stream.read_to_end(&mut sink);
}

/// A real SSE client: `curl -N` (skipped when curl is not installed).
#[test]
fn curl_reads_the_stream() {
    if !curl_available() {
        eprintln!("SKIPPED: curl not installed");
        return;
    }
    let (_s, addr) = start(&[]);
    let api = Api::new(addr);
    let mut child = Command::new("curl")
        .args([
            "-sN",
            "--max-time",
            "20",
            &format!("http://{addr}/v1/signals?pattern=c.*"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn curl");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, ":ok\n");
    wait_until("curl's subscription", || publish(&api, "c.1", "hello") == 1);
    let mut lines = Vec::new();
    loop {
        line.clear();
        out.read_line(&mut line).unwrap();
        if line.starts_with("event:") || line.starts_with("data:") {
            lines.push(line.clone());
        }
        if line.starts_with("data:") {
            break;
        }
    }
    assert_eq!(
        lines,
        [
            "event: sig\n",
            "data: {\"channel\":\"c.1\",\"payload\":\"hello\"}\n"
        ]
    );
    let _ = child.kill();
    let _ = child.wait();
    std::io::stdout().flush().ok();
}
