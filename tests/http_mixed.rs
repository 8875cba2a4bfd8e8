//! TCP and HTTP clients on one server: one FIFO queue per key whatever the
//! transport (http.md intro, protocol.md §7.3), session ends releasing what
//! they held (§5), long-polls cancelled by their client leaving (§2.3), and
//! draining (§8).

use crate::common;
use crate::http_common;

use common::{Client, secs_since, token_of};
use http_common::{Api, Raw, request, spawn, start};
use std::time::{Duration, Instant};

const QUIET: Duration = Duration::from_millis(300);

#[test]
fn fifo_tcp_holder_then_http_waiter_then_tcp_waiter() {
    let (srv, addr) = start(&[]);
    let api = Api::new(addr);
    let mut a = srv.client();
    let mut b = srv.client();
    let ta = token_of(&a.req("l", "k", "0"));
    let s = api.session();
    let a2 = api.clone();
    let sid = s.clone();
    let http = spawn(move || a2.lock(&sid, "k", 30));
    a.wait_lock_waiters("k", 1);
    b.send_req("l", "k", "30");
    a.wait_lock_waiters("k", 2);
    assert_eq!(a.req("r", "k", &ta), "ok");
    // The HTTP session was first in line.
    let ts = http.join().unwrap().token();
    b.expect_nothing_for(QUIET);
    api.unlock(&s, "k", &ts);
    let tb = token_of(&b.line());
    assert!(common::fence_of(&tb) > common::fence_of(&ts));
    assert!(common::fence_of(&ts) > common::fence_of(&ta));
    assert_eq!(b.req("r", "k", &tb), "ok");
}

#[test]
fn fifo_http_holder_then_tcp_waiter_then_http_waiter() {
    let (srv, addr) = start(&[]);
    let api = Api::new(addr);
    let (s1, s2) = (api.session(), api.session());
    let t1 = api.lock(&s1, "k", 0).token();
    let mut b = srv.client();
    b.send_req("l", "k", "30");
    api.wait_lock_waiters("k", 1);
    let a2 = api.clone();
    let sid = s2.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let http = spawn(move || {
        let r = a2.lock(&sid, "k", 30);
        tx.send(()).unwrap();
        r
    });
    api.wait_lock_waiters("k", 2);
    api.unlock(&s1, "k", &t1);
    let tb = token_of(&b.line());
    assert!(
        rx.recv_timeout(QUIET).is_err(),
        "the HTTP waiter was granted before the TCP waiter released"
    );
    assert_eq!(b.req("r", "k", &tb), "ok");
    let t2 = http.join().unwrap().token();
    api.unlock(&s2, "k", &t2);
}

/// Two-phase across transports: an HTTP enqueue behind a TCP holder is
/// granted while not waiting, and its wait returns that grant.
#[test]
fn http_enqueue_behind_tcp_holder() {
    let (srv, addr) = start(&[]);
    let api = Api::new(addr);
    let mut a = srv.client();
    let ta = token_of(&a.req("l", "q", "0"));
    let s = api.session();
    api.post_s("/v1/locks/q/enqueue", &s, "")
        .expect(200, r#"{"status":"queued"}"#);
    let mut b = srv.client();
    assert_eq!(b.req("e", "q", ""), "queued");
    assert_eq!(a.req("r", "q", &ta), "ok");
    let ts = api
        .post_s("/v1/locks/q/wait", &s, r#"{"timeout_s":0}"#)
        .token();
    api.unlock(&s, "q", &ts);
    let reply = b.req("w", "q", "5");
    token_of(&reply);
}

#[test]
fn deleting_a_session_releases_its_locks() {
    let (srv, addr) = start(&[]);
    let api = Api::new(addr);
    let s = api.session();
    api.lock(&s, "k", 0).token();
    api.post_s(
        "/v1/semaphores/sem",
        &s,
        r#"{"acquire_timeout_s":0,"limit":1}"#,
    )
    .token();
    let mut b = srv.client();
    let mut c = srv.client();
    b.send_req("l", "k", "30");
    c.send_req("sl", "sem", "30 1");
    let mut w = srv.client();
    w.wait_lock_waiters("k", 1);
    w.wait_sem_waiters("sem", 1);
    let start = Instant::now();
    api.delete(&format!("/v1/sessions/{s}")).expect_204();
    token_of(&b.line());
    token_of(&c.line());
    assert!(secs_since(start) < 1.0, "{:?}", start.elapsed());
}

#[test]
fn session_end_keeps_holds_without_auto_release() {
    let (srv, addr) = start(&["--no-auto-release-on-disconnect"]);
    let api = Api::new(addr);
    let s = api.session();
    let t = api.lock(&s, "k", 0).token();
    let mut b = srv.client();
    b.send_req("l", "k", "30");
    api.wait_lock_waiters("k", 1);
    api.delete(&format!("/v1/sessions/{s}")).expect_204();
    b.expect_nothing_for(QUIET);
    // Anyone with the token may release it.
    let mut c = srv.client();
    assert_eq!(c.req("r", "k", &t), "ok");
    token_of(&b.line());
}

#[test]
fn idle_session_expiry_releases_its_locks() {
    let (srv, addr) = start(&["--http-session-idle-timeout", "1"]);
    let api = Api::new(addr);
    let s = api.session();
    api.lock(&s, "k", 0).token();
    let last_activity = Instant::now();
    let mut b = srv.client();
    b.send_req("l", "k", "30");
    let tb = token_of(&b.line());
    let took = secs_since(last_activity);
    assert!(
        (1.9..4.0).contains(&took),
        "granted {took:.2} s after the session's last activity (expected 2..3 s)"
    );
    api.post(&format!("/v1/sessions/{s}/ping"), "")
        .expect_error(410, "session_gone");
    assert_eq!(b.req("r", "k", &tb), "ok");
}

/// A long-poll whose client closes its socket leaves the queue (§2.3): the
/// next waiter is granted when the holder releases.
#[test]
fn closing_the_socket_cancels_a_long_poll() {
    let (srv, addr) = start(&[]);
    let api = Api::new(addr);
    let mut a = srv.client();
    let ta = token_of(&a.req("l", "k", "0"));
    let s = api.session();
    let mut raw = Raw::connect(addr);
    raw.send(&request(
        "POST",
        "/v1/locks/k",
        &[&format!("X-Dflockd-Session: {s}")],
        r#"{"acquire_timeout_s":30}"#,
    ));
    a.wait_lock_waiters("k", 1);
    let mut b = srv.client();
    b.send_req("l", "k", "30");
    a.wait_lock_waiters("k", 2);
    drop(raw);
    a.wait_lock_waiters("k", 1);
    assert_eq!(a.req("r", "k", &ta), "ok");
    let tb = token_of(&b.line());
    // The session itself lives on; only the wait was cancelled.
    api.post(&format!("/v1/sessions/{s}/ping"), "").expect_204();
    assert_eq!(b.req("r", "k", &tb), "ok");
    // The same for a blocking pop (owned by the connection, not a session):
    // a value pushed later is not handed to the vanished client.
    let mut raw = Raw::connect(addr);
    raw.send(&request(
        "POST",
        "/v1/lists/l/blpop",
        &[],
        r#"{"timeout_s":30}"#,
    ));
    common::wait_until("a blocked popper", || {
        api.get("/metrics")
            .text()
            .lines()
            .any(|l| l == "dflockd_list_pop_waiters 1")
    });
    drop(raw);
    common::wait_until("the popper to leave", || {
        api.get("/metrics")
            .text()
            .lines()
            .any(|l| l == "dflockd_list_pop_waiters 0")
    });
    assert_eq!(a.req("rpush", "l", "v"), "ok 1");
}

#[test]
fn list_hand_off_across_transports() {
    let (srv, addr) = start(&[]);
    let api = Api::new(addr);
    let a2 = api.clone();
    let popper = spawn(move || a2.post("/v1/lists/l/blpop", r#"{"timeout_s":30}"#));
    let mut t = srv.client();
    common::wait_until("a blocked popper", || {
        api.get("/metrics")
            .text()
            .lines()
            .any(|l| l == "dflockd_list_pop_waiters 1")
    });
    assert_eq!(t.req("rpush", "l", "from tcp"), "ok 0");
    popper
        .join()
        .unwrap()
        .expect(200, r#"{"status":"ok","value":"from tcp"}"#);
    t.send_req("brpop", "m", "30");
    common::wait_until("a blocked TCP popper", || {
        api.get("/metrics")
            .text()
            .lines()
            .any(|l| l == "dflockd_list_pop_waiters 1")
    });
    api.post("/v1/lists/m/lpush", r#"{"value":"from http"}"#)
        .expect(200, r#"{"length":0}"#);
    assert_eq!(t.line(), "ok from http");
}

#[test]
fn barrier_across_transports() {
    let (srv, addr) = start(&[]);
    let api = Api::new(addr);
    let s = api.session();
    let a2 = api.clone();
    let sid = s.clone();
    let http =
        spawn(move || a2.post_s("/v1/barriers/b/wait", &sid, r#"{"count":2,"timeout_s":10}"#));
    std::thread::sleep(Duration::from_millis(200));
    let mut t = srv.client();
    assert_eq!(t.req("bwait", "b", "2 10"), "ok");
    http.join().unwrap().expect(200, r#"{"status":"ok"}"#);
}

/// §8: SIGTERM answers long-polls `503 draining` with `Connection: close`,
/// closes streams, and each still-open connection gets one last answer.
#[test]
fn draining() {
    let (mut srv, addr) = start(&[]);
    let api = Api::new(addr);
    let (s1, s2) = (api.session(), api.session());
    api.lock(&s1, "d", 0).token();
    let mut poll = Raw::connect(addr);
    poll.send(&request(
        "POST",
        "/v1/locks/d",
        &[&format!("X-Dflockd-Session: {s2}")],
        r#"{"acquire_timeout_s":30}"#,
    ));
    api.wait_lock_waiters("d", 1);
    // A request of the same session queued behind that long-poll, and a
    // blocking pop (a long-poll without a session).
    let mut queued = Raw::connect(addr);
    queued.send(&request(
        "POST",
        "/v1/locks/other",
        &[&format!("X-Dflockd-Session: {s2}")],
        r#"{"acquire_timeout_s":0}"#,
    ));
    let mut pop = Raw::connect(addr);
    pop.send(&request(
        "POST",
        "/v1/lists/l/blpop",
        &[],
        r#"{"timeout_s":30}"#,
    ));
    queued.expect_silence(Duration::from_millis(200));
    let mut stream = Raw::connect(addr);
    stream.send(b"GET /v1/watch?pattern=d HTTP/1.1\r\n\r\n");
    assert_eq!(stream.read_head().status, 200);
    assert_eq!(stream.read_until(b"\n\n"), b":ok\n\n");
    // Idle keep-alive connections, each used once before the drain.
    let mut idle: Vec<Raw> = (0..4)
        .map(|_| {
            let mut r = Raw::connect(addr);
            r.roundtrip(b"GET /health HTTP/1.1\r\n\r\n")
                .expect(200, r#"{"status":"ok"}"#);
            r
        })
        .collect();
    let mut tcp: Client = srv.client();
    assert_eq!(tcp.req("get", "x", ""), "ok 0");

    srv.signal("TERM");
    let r = poll.response();
    r.expect(503, r#"{"error":"draining"}"#);
    assert_eq!(r.header("Connection"), Some("close"));
    poll.expect_closed();
    for waiting in [&mut queued, &mut pop] {
        let r = waiting.response();
        r.expect(503, r#"{"error":"draining"}"#);
        assert_eq!(r.header("Connection"), Some("close"));
        waiting.expect_closed();
    }
    stream.expect_closed();

    let mut ready = idle.pop().unwrap();
    let r = ready.roundtrip(b"GET /ready HTTP/1.1\r\n\r\n");
    r.expect(503, r#"{"status":"draining"}"#);
    assert_eq!(r.header("Connection"), Some("close"));
    ready.expect_closed();

    let mut health = idle.pop().unwrap();
    let r = health.roundtrip(b"GET /health HTTP/1.1\r\n\r\n");
    r.expect(200, r#"{"status":"ok"}"#);
    assert_eq!(r.header("Connection"), Some("close"));
    health.expect_closed();

    let mut metrics = idle.pop().unwrap();
    let r = metrics.roundtrip(b"GET /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Connection"), Some("close"));
    assert!(
        r.text().lines().any(|l| l == "dflockd_ready 0"),
        "{}",
        r.text()
    );
    // Sessions were ended by the drain (their locks released).
    assert!(
        r.text().lines().any(|l| l == "dflockd_http_sessions 0"),
        "{}",
        r.text()
    );
    metrics.expect_closed();

    let mut other = idle.pop().unwrap();
    let r = other.roundtrip(b"GET /v1/kv/x HTTP/1.1\r\n\r\n");
    r.expect_error(503, "draining");
    assert_eq!(r.header("Connection"), Some("close"));
    other.expect_closed();

    // The listener no longer accepts: a new connection gets no answer.
    if let Ok(mut late) = std::net::TcpStream::connect(addr) {
        use std::io::{Read, Write};
        late.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let _ = late.write_all(b"GET /health HTTP/1.1\r\n\r\n");
        let mut buf = [0u8; 16];
        assert!(
            !matches!(late.read(&mut buf), Ok(n) if n > 0),
            "a connection made after the drain began was served"
        );
    }
    // The process exits once the last connection is gone (the ureq pool
    // holds idle keep-alive connections too).
    drop(tcp);
    drop(api);
    let status = srv.wait_exit(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "exit status {status:?}"
    );
}

/// §2.3: a grant produced for a long-poll whose client is found gone before
/// the response could be written is undone. Race it: the client closes and
/// the holder releases back to back, many times; the TCP waiter behind the
/// vanished HTTP waiter must always be granted promptly (never left waiting
/// for the vanished session's lease).
#[test]
fn grant_to_a_vanished_long_poll_is_undone() {
    let (srv, addr) = start(&[]);
    let api = Api::new(addr);
    let s = api.session();
    let mut a = srv.client();
    let mut b = srv.client();
    let mut w = srv.client();
    for i in 0..150 {
        let key = format!("race{i}");
        let ta = token_of(&a.req("l", &key, "0"));
        let mut raw = Raw::connect(addr);
        raw.send(&request(
            "POST",
            &format!("/v1/locks/{key}"),
            &[&format!("X-Dflockd-Session: {s}")],
            r#"{"acquire_timeout_s":30}"#,
        ));
        w.wait_lock_waiters(&key, 1);
        b.send_req("l", &key, "30");
        w.wait_lock_waiters(&key, 2);
        // Close, then release at once: both land in one loop iteration often.
        raw.hang_up();
        a.send_req("r", &key, &ta);
        assert_eq!(a.line(), "ok");
        b.set_read_timeout(Duration::from_secs(3));
        let reply = b.try_line_raw();
        let Ok(Some(line)) = reply else {
            panic!(
                "iteration {i}: the TCP waiter was not granted ({reply:?}); the vanished session kept the lock"
            );
        };
        let tb = token_of(String::from_utf8(line).unwrap().trim_end());
        assert_eq!(b.req("r", &key, &tb), "ok");
    }
}

/// §2.3, lists: a value popped for a blocking pop whose client just left is
/// put back, never lost.
#[test]
fn value_popped_for_a_vanished_client_is_put_back() {
    let (srv, addr) = start(&[]);
    let api = Api::new(addr);
    let mut t = srv.client();
    for i in 0..100 {
        let key = format!("q{i}");
        let mut raw = Raw::connect(addr);
        raw.send(&request(
            "POST",
            &format!("/v1/lists/{key}/brpop"),
            &[],
            r#"{"timeout_s":30}"#,
        ));
        common::wait_until("a blocked popper", || {
            api.get("/metrics")
                .text()
                .lines()
                .any(|l| l == "dflockd_list_pop_waiters 1")
        });
        raw.hang_up();
        t.send_req("rpush", &key, "v");
        let pushed = t.line();
        assert!(pushed == "ok 0" || pushed == "ok 1", "{pushed}");
        common::wait_until("the popper to leave", || {
            api.get("/metrics")
                .text()
                .lines()
                .any(|l| l == "dflockd_list_pop_waiters 0")
        });
        assert_eq!(
            t.req("lrange", &key, "0 -1"),
            r#"ok ["v"]"#,
            "iteration {i}: the value was lost (push answered {pushed})"
        );
    }
}

/// A request queued behind its session's long-poll runs once that
/// long-poll's client leaves (§5 serialisation, §2.3 cancellation).
#[test]
fn queued_session_request_runs_when_the_long_poll_client_leaves() {
    let (_srv, addr) = start(&[]);
    let api = Api::new(addr);
    let (holder, s) = (api.session(), api.session());
    let t = api.lock(&holder, "k", 0).token();
    let mut poll = Raw::connect(addr);
    poll.send(&request(
        "POST",
        "/v1/locks/k",
        &[&format!("X-Dflockd-Session: {s}")],
        r#"{"acquire_timeout_s":30}"#,
    ));
    api.wait_lock_waiters("k", 1);
    let a2 = api.clone();
    let sid = s.clone();
    let queued = spawn(move || a2.lock(&sid, "free", 0));
    std::thread::sleep(Duration::from_millis(200));
    drop(poll);
    let t2 = queued.join().unwrap().token();
    api.wait_lock_waiters("k", 0);
    api.unlock(&s, "free", &t2);
    api.unlock(&holder, "k", &t);
}

/// The client's end of input read together with a long-poll or stream
/// request (request, then shutdown(Write), in one go): the wait is cancelled
/// and the stream dropped at once, as when the close comes later (§2.3, §7),
/// instead of the wait running out its timeout or the stream living on.
#[test]
fn end_of_input_with_the_request_ends_a_long_poll_or_stream() {
    let (_srv, addr) = start(&["--http-sse-ping-interval", "1"]);
    let api = Api::new(addr);
    let s = api.session();
    let holder = api.session();
    let t = api.lock(&holder, "held", 0).token();
    let mut batch = request("GET", "/v1/counters/c", &[], "");
    batch.extend(request(
        "POST",
        "/v1/locks/held",
        &[&format!("X-Dflockd-Session: {s}")],
        r#"{"acquire_timeout_s":30}"#,
    ));
    for (what, bytes) in [
        (
            "blocking pop",
            request("POST", "/v1/lists/l/blpop", &[], r#"{"timeout_s":30}"#),
        ),
        ("lock long-poll", batch),
        (
            "signal stream",
            request("GET", "/v1/signals?pattern=x", &[], ""),
        ),
    ] {
        let mut raw = Raw::connect(addr);
        raw.send(&bytes);
        raw.stream.shutdown(std::net::Shutdown::Write).unwrap();
        let start = Instant::now();
        let mut got = Vec::new();
        use std::io::Read;
        let _ = raw.stream.read_to_end(&mut got);
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{what}: the server kept the connection {:?} after end of input; got {:?}",
            start.elapsed(),
            String::from_utf8_lossy(&got)
        );
    }
    assert_eq!(api.lock_waiters("held"), 0);
    let metrics = api.get("/metrics").text();
    for line in [
        "dflockd_list_pop_waiters 0",
        "dflockd_signal_subscriptions 0",
        "dflockd_http_sessions 2",
    ] {
        assert!(metrics.lines().any(|l| l == line), "no {line}:\n{metrics}");
    }
    api.unlock(&holder, "held", &t);
}

/// §5: only a session with no request in progress expires; a long-poll
/// longer than 2 × the idle timeout keeps it.
#[test]
fn a_session_in_a_long_poll_does_not_expire() {
    let (srv, addr) = start(&["--http-session-idle-timeout", "1"]);
    let api = Api::new(addr);
    let mut a = srv.client();
    let ta = token_of(&a.req("l", "k", "0"));
    let s = api.session();
    let start = Instant::now();
    api.lock(&s, "k", 4).expect(200, r#"{"status":"timeout"}"#);
    assert!(secs_since(start) >= 3.9, "{:?}", start.elapsed());
    // Its end refreshed the activity: still alive.
    api.post(&format!("/v1/sessions/{s}/ping"), "").expect_204();
    assert_eq!(a.req("r", "k", &ta), "ok");
}
