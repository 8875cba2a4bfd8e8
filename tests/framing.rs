//! Framing against the real server: requests and replies, pipelining, parked
//! connections, end of input, malformed input, line limits, idle and request
//! timeouts, the cross-protocol guard and the Dreadlock dialect
//! (protocol.md §2, §3, §4.2, §9).

use crate::common;

use common::*;
use std::io::Write;
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Writes `bytes` one at a time, `every` apart, from a thread; stops at the
/// first write error (the server may close the connection meanwhile).
fn trickle(stream: &TcpStream, bytes: &'static [u8], every: Duration) -> thread::JoinHandle<()> {
    let mut stream = stream.try_clone().unwrap();
    thread::spawn(move || {
        for b in bytes {
            if stream.write_all(std::slice::from_ref(b)).is_err() {
                return;
            }
            thread::sleep(every);
        }
    })
}

#[test]
fn thousand_pipelined_pings_in_one_write() {
    let server = Server::start(&[]);
    let mut c = server.client();
    c.send(&b"ping\n_\n\n".repeat(1000));
    for i in 0..1000 {
        assert_eq!(c.line(), "ok", "reply {i}");
    }
    c.expect_nothing_for(Duration::from_millis(50));
}

#[test]
fn pipelined_mix_is_answered_in_order() {
    let server = Server::start(&[]);
    let mut c = server.client();
    let mut batch = Vec::new();
    batch.extend_from_slice(b"ping\n_\n\n");
    batch.extend_from_slice(b"l\nk\n0\n");
    batch.extend_from_slice(b"l\nk\n0\n"); // not re-entrant: a try on one's own lock
    batch.extend_from_slice(b"nosuch\n_\n\n");
    batch.extend_from_slice(b"stats\n_\n\n");
    batch.extend_from_slice(b"e\nq\n5\n");
    batch.extend_from_slice(b"r\nk\nffffffffffffffff0000000000000000\n");
    batch.extend_from_slice(b"w\nq\n0\n");
    for i in 0..20 {
        batch.extend_from_slice(format!("l\nkey{i}\n0 {}\n", i + 1).as_bytes());
    }
    batch.extend_from_slice(b"ping\n_\n\n");
    c.send(&batch);

    assert_eq!(c.line(), "ok");
    let k_token = expect_grant(&c.line(), 33);
    assert_eq!(c.line(), "timeout");
    assert_eq!(c.line(), "error");
    let stats = c.line();
    let json = Json::parse(stats.strip_prefix("ok ").expect("stats reply"));
    // stats ran after the grant and before the enqueue.
    assert_eq!(json.keys("locks"), vec!["k"]);
    let reply = c.line();
    let q_token = token_of(&reply);
    assert_eq!(reply, format!("acquired {q_token} 5"));
    assert_eq!(c.line(), "error");
    assert_eq!(c.line(), format!("ok {q_token} 5"));
    let q_fence = fence_of(&q_token);
    assert_eq!(q_fence, fence_of(&k_token) + 1);
    for i in 0..20 {
        let token = expect_grant(&c.line(), i + 1);
        assert_eq!(fence_of(&token), q_fence + 1 + i, "grant {i} out of order");
    }
    assert_eq!(c.line(), "ok");
}

#[test]
fn parked_connection_buffers_requests_behind_it() {
    let server = Server::start(&[]);
    let mut a = server.client();
    let mut b = server.client();
    let mut observer = server.client();

    let token = expect_grant(&a.req("l", "job", "0"), 33);
    let other = expect_grant(&a.req("l", "other", "0"), 33);
    // B parks on `job`; its ping and a 1 s try on `other` wait behind it.
    b.send(b"l\njob\n30\nping\n_\n\nl\nother\n1\n");
    observer.wait_lock_waiters("job", 1);
    b.expect_nothing_for(Duration::from_millis(1200));

    let released = Instant::now();
    assert_eq!(a.req("r", "job", &token), "ok");
    let b_token = expect_grant(&b.line(), 33);
    assert_eq!(fence_of(&b_token), fence_of(&other) + 1);
    assert_eq!(b.line(), "ok");
    // The buffered acquire's clock started when it was executed, not when it
    // arrived more than a second earlier.
    assert_eq!(b.line(), "timeout");
    let waited = secs_since(released);
    assert!(
        waited >= 1.0,
        "buffered 1 s acquire timed out after {waited:.3} s"
    );
}

#[test]
fn crlf_requests_get_bare_lf_replies() {
    let server = Server::start(&[]);
    let mut c = server.client();

    c.send(b"ping\r\n_\r\n\r\n");
    assert_eq!(c.line_raw(), b"ok\n");
    c.send(b"l\r\nk\r\n0 5\r\n");
    let reply = String::from_utf8(c.line_raw()).unwrap();
    let token = token_of(reply.trim_end_matches('\n'));
    assert_eq!(reply, format!("ok {token} 5\n"));
    c.send(format!("n\r\nk\r\n{token}\r\n").as_bytes());
    assert_eq!(c.line_raw(), b"ok 33\n");
    c.send(format!("r\r\nk\r\n{token}\r\n").as_bytes());
    assert_eq!(c.line_raw(), b"ok\n");
    c.send(b"stats\r\n_\r\n\r\n");
    let stats = c.line_raw();
    assert!(stats.starts_with(b"ok {") && stats.ends_with(b"}\n"));
    assert!(!stats.contains(&b'\r'));

    // Only one CR right before the LF is removed; any other CR is a byte of the line.
    c.send(b"l\r\nk\r\n0\r\r\n");
    assert_eq!(c.line_raw(), b"error\n");
    c.send(b"l\r\na\rb\r\n0\r\n");
    assert_eq!(c.line_raw(), b"error\n");
    c.send(b"ping\r\r\n_\r\n\r\n");
    assert_eq!(c.line_raw(), b"error\n");
    // Mixed line ends within one request.
    c.send(b"ping\n_\r\n\n");
    assert_eq!(c.line_raw(), b"ok\n");
}

#[test]
fn end_of_input_answers_complete_requests_then_closes() {
    let server = Server::start(&[]);

    // printf 'ping\n_\n\n' | nc -N
    let mut c = server.client();
    c.send(b"ping\n_\n\n");
    c.shutdown_write();
    assert_eq!(c.line(), "ok");
    c.expect_closed();

    let mut c = server.client();
    c.send(b"ping\n_\n\nl\nfree\n0\nstats\n_\n\n");
    c.shutdown_write();
    assert_eq!(c.line(), "ok");
    expect_grant(&c.line(), 33);
    assert!(c.line().starts_with("ok {"));
    c.expect_closed();

    // The closed connection's lock was released by the disconnect cleanup.
    let mut observer = server.client();
    wait_until("lock of the closed connection released", || {
        observer.req("l", "free", "0").starts_with("ok ")
    });
}

#[test]
fn end_of_input_cancels_a_command_that_would_park() {
    let server = Server::start(&[]);
    let mut holder = server.client();
    let mut observer = server.client();
    expect_grant(&holder.req("l", "k", "0"), 33);

    let mut c = server.client();
    c.send(b"ping\n_\n\nl\nk\n30\nping\n_\n\n");
    c.shutdown_write();
    assert_eq!(c.line(), "ok");
    c.expect_closed();
    assert_eq!(observer.lock_waiters("k"), 0);

    // A blocking command that completes at once is not cancelled.
    let mut c = server.client();
    c.send(b"l\nfree\n30\nping\n_\n\n");
    c.shutdown_write();
    expect_grant(&c.line(), 33);
    assert_eq!(c.line(), "ok");
    c.expect_closed();

    // A partial request at end of input gets no reply.
    let mut c = server.client();
    c.send(b"ping\n_\n\nping\n_\n");
    c.shutdown_write();
    assert_eq!(c.line(), "ok");
    c.expect_closed();
}

#[test]
fn malformed_requests_get_error_and_keep_the_connection() {
    let server = Server::start(&[]);
    let mut c = server.client();
    let steps: &[&[u8]] = &[
        b"foo\n_\n\n",
        b"L\nk\n0\n",
        b"PING\n_\n\n",
        b"\n\n\n",
        b"l\nk\n1_0\n",
        b"l\nk\n0x1\n",
        b"l\nk\n+\n",
        b"l\nk\n1.5\n",
        b"l\nk\n1e3\n",
        b"l\nk\n-1\n",
        b"l\nk\n-0\n",
        b"l\nk\n+-1\n",
        b"l\nk\n10 0\n",
        b"l\nk\n10 -5\n",
        b"l\nk\n9223372037\n",
        b"l\nk\n0 9223372037\n",
        b"l\nk\n18446744073709551616\n",
        b"l\nk\n10 60 5\n",
        b"l\nk\n\n",
        b"l\nk\n \t \n",
        b"l\nk\n1 0 x\n",
        b"l\n\n0\n",
        b"l\nmy key\n10\n",
        b"l\nk\tx\n0\n",
        b"l\n\xff\xfe\n0\n",
        b"\xff\xfe\n_\n\n",
        b"\x00\x01\x02\n\x03\x04\n\x05\n",
        b"l\nk\n\xff\n",
        b"r\nk\n\n",
        b"r\nk\n  \t \n",
        b"r\nk\na b\n",
        b"n\nk\n\n",
        b"n\nk\nabc 0\n",
        b"n\nk\nabc 1 2\n",
        b"e\nk\n0\n",
        b"e\nk\n1 2\n",
        b"e\nk\nx\n",
        b"w\nk\n\n",
        b"w\nk\n-1\n",
        b"w\nk\n1 2\n",
    ];
    for step in steps {
        c.send(step);
        assert_eq!(
            c.line(),
            "error",
            "request {:?}",
            String::from_utf8_lossy(step)
        );
    }
    assert_eq!(c.req("ping", "_", ""), "ok");

    // Accepted spellings right at the edges of the syntax.
    expect_grant(&c.req("l", "k1", "+0 +0010"), 10);
    expect_grant(&c.req("l", "k2", " \t0\t 5 "), 5);
    expect_grant(&c.req("l", "k3", "9223372036 9223372036"), 9223372036);
    let long_key = "x".repeat(256);
    expect_grant(&c.req("l", &long_key, "0"), 33);
    expect_grant(&c.req("l", "kéy/a:b.*>", "0"), 33);
    assert_eq!(c.req("ping", "", ""), "ok");
    assert_eq!(c.req("ping", "any thing", "at all"), "ok");
    assert!(c.req("stats", "_", "_").starts_with("ok {"));

    // Nothing of a failed request was executed: no key `k` was ever created.
    let stats = c.stats();
    let mut keys = stats.keys("locks");
    keys.sort();
    let mut expected = vec![
        "k1".to_string(),
        "k2".to_string(),
        "k3".to_string(),
        long_key,
        "kéy/a:b.*>".to_string(),
    ];
    expected.sort();
    assert_eq!(keys, expected);
    assert!(stats.get("idle_locks").arr().is_empty());
    assert!(stats.get("semaphores").arr().is_empty());
}

#[test]
fn over_long_lines_get_error_and_close() {
    let server = Server::start(&[]);
    let long = |n: usize| "x".repeat(n);

    // 256 bytes of content is fine, also with a CRLF ending.
    let mut c = server.client();
    c.send(format!("l\r\n{}\r\n0\r\n", long(256)).as_bytes());
    expect_grant(&c.line(), 33);

    let cases = [
        format!("l\n{}\n0\n", long(257)),
        format!("{}\n_\n\n", long(257)),
        format!("l\nk\n{}\n", long(257)),
        format!("ping\n_\n{}\n", long(257)),
        format!("stats\n{}\n\n", long(257)),
    ];
    for case in &cases {
        let mut c = server.client();
        // Earlier pipelined requests are still answered first.
        c.send(b"ping\n_\n\n");
        c.send(case.as_bytes());
        assert_eq!(c.line(), "ok");
        assert_eq!(c.line(), "error", "request {case:?}");
        c.expect_closed();
    }

    // The limit is enforced while the line is still arriving: no LF needed.
    let mut c = server.client();
    c.send(format!("l\n{}", long(300)).as_bytes());
    assert_eq!(c.line(), "error");
    c.expect_closed();
}

#[test]
fn ten_megabyte_line_is_refused_promptly() {
    let server = Server::start(&[]);
    let mut c = server.client();
    let mut writer = c.stream().try_clone().unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    let start = Instant::now();
    thread::spawn(move || {
        let mut line = b"l\n".to_vec();
        line.resize(10 * 1024 * 1024, b'a');
        // EPIPE or a reset is expected once the server closes.
        let result = writer.write_all(&line);
        let _ = done_tx.send(result.is_ok());
    });
    assert_eq!(c.line(), "error");
    c.expect_closed();
    let took = secs_since(start);
    assert!(took < 3.0, "refusal took {took:.3} s");
    done_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the writer never finished: the server neither read nor closed");
    // The server is fine afterwards.
    assert_eq!(server.client().req("ping", "_", ""), "ok");
}

#[test]
fn request_timeout_on_half_request_and_trickle() {
    let server = Server::start(&["--read-timeout", "1"]);

    // Half a request, then silence.
    let mut half = server.client();
    let start = Instant::now();
    half.send(b"l\nk\n");

    // A request trickled one byte every 200 ms never lets the idle clock run
    // out; the whole request must still arrive within the timeout.
    let mut slow = server.client();
    let trickle_start = Instant::now();
    let writer = trickle(
        slow.stream(),
        b"l\nkkkkkkkkkkkkkkkkkkkk",
        Duration::from_millis(200),
    );

    assert_eq!(half.line(), "error");
    let waited = secs_since(start);
    assert!(
        (1.0..3.0).contains(&waited),
        "half request: error after {waited:.3} s"
    );
    half.expect_closed();

    assert_eq!(slow.line(), "error");
    let waited = secs_since(trickle_start);
    assert!(
        (1.0..1.9).contains(&waited),
        "trickled request: error after {waited:.3} s"
    );
    slow.expect_closed();
    writer.join().unwrap();
}

#[test]
fn idle_timeout_and_its_clock() {
    let server = Server::start(&["--read-timeout", "1"]);

    // The server accepts after `silent_start`, so its idle deadline is at
    // least 1 s after it.
    let silent_start = Instant::now();
    let mut silent = server.client();
    let mut talker = server.client();
    thread::sleep(Duration::from_millis(600));
    // Every request restarts the clock.
    let talked = Instant::now();
    assert_eq!(talker.req("ping", "_", ""), "ok");

    assert_eq!(silent.line(), "error");
    let waited = secs_since(silent_start);
    assert!(
        (1.0..2.5).contains(&waited),
        "idle error after {waited:.3} s"
    );
    silent.expect_closed();

    assert_eq!(talker.line(), "error");
    let waited = secs_since(talked);
    assert!(
        (1.0..2.5).contains(&waited),
        "idle error {waited:.3} s after a ping"
    );
    talker.expect_closed();
}

#[test]
fn parked_connection_is_exempt_from_the_idle_timeout() {
    let server = Server::start(&["--read-timeout", "1"]);
    let mut c = server.client();
    // A blocking pop on an empty list parks without holding anything (a lease
    // holder would be exempt from the idle timeout on its own account).
    let start = Instant::now();
    assert_eq!(c.req("blpop", "empty", "3"), "nil");
    let waited = secs_since(start);
    assert!((3.0..4.0).contains(&waited), "parked for {waited:.3} s");
    // Still open, and the idle clock restarted when the park ended.
    let pinged = Instant::now();
    assert_eq!(c.req("ping", "_", ""), "ok");
    assert_eq!(c.line(), "error");
    assert!(secs_since(pinged) >= 1.0);
    c.expect_closed();
}

#[test]
fn read_timeout_zero_disables_both_timeouts() {
    let server = Server::start(&["--read-timeout", "0"]);
    let mut silent = server.client();
    let mut half = server.client();
    half.send(b"l\nk\n");
    silent.expect_nothing_for(Duration::from_millis(1500));
    half.expect_nothing_for(Duration::from_millis(10));
    half.send(b"0\n");
    expect_grant(&half.line(), 33);
    assert_eq!(silent.req("ping", "_", ""), "ok");
}

#[test]
fn http_request_as_first_line_is_closed_without_reply() {
    let server = Server::start(&[]);
    for method in [
        "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE",
    ] {
        let mut c = server.client();
        c.send(
            format!(
                "{method} / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 8\r\n\r\nping\n_\n\n"
            )
            .as_bytes(),
        );
        c.expect_closed();
    }
    // The first line alone decides, before the rest of the request arrives.
    let mut c = server.client();
    c.send(b"POST /lock HTTP/1.1\r\n");
    c.expect_closed();

    // Only the first line, and only the exact uppercase method, is checked.
    let mut c = server.client();
    c.send(b"get / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.line(), "error");
    assert_eq!(c.req("ping", "_", ""), "ok");
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.line(), "error");
    assert_eq!(c.req("ping", "_", ""), "ok");
}

#[test]
fn dreadlock_basics() {
    let server = Server::start(&[]);
    let mut c = server.client();
    let steps: &[(&[u8], &[u8])] = &[
        (b"lock build42 5000\r\n", b"l locked\r\n"),
        (b"lock build42 5000\r\n", b"e already locked\r\n"),
        (b"unlock build42\r\n", b"u unlocked\r\n"),
        (b"unlock build42\r\n", b"e not locked\r\n"),
        (b"LOCK  build42   0 \r\n", b"l locked\r\n"),
        (b"UnLock   build42 \r\n", b"u unlocked\r\n"),
        (b"lock lfonly 0\n", b"l locked\r\n"),
        (b"unlock lfonly\n", b"u unlocked\r\n"),
        (b"lock X9 9223372036000\r\n", b"l locked\r\n"),
    ];
    for (req, reply) in steps {
        c.send(req);
        assert_eq!(
            String::from_utf8_lossy(&c.line_raw()),
            String::from_utf8_lossy(reply),
            "request {:?}",
            String::from_utf8_lossy(req)
        );
    }
    // A Dreadlock hold has no lease.
    let stats = c.stats();
    let entry = stats.entry("locks", "X9").expect("X9 listed");
    assert!(entry.get("lease_expires_in_s").is_null());
    assert_ne!(entry.get("fence").u64(), 0);

    // Another connection: timeout, not owner; a dflockd try contends too.
    let mut d = server.client();
    d.send(b"lock X9 0\r\n");
    assert_eq!(d.line_raw(), b"t timeout\r\n");
    let start = Instant::now();
    d.send(b"lock X9 300\r\n");
    assert_eq!(d.line_raw(), b"t timeout\r\n");
    assert!(secs_since(start) >= 0.3);
    d.send(b"unlock X9\r\n");
    assert_eq!(d.line_raw(), b"e not owner\r\n");
    assert_eq!(d.req("l", "X9", "0"), "timeout");

    // A key held through a token command.
    let token = expect_grant(&d.req("l", "tok", "0"), 33);
    d.send(b"lock tok 0\r\n");
    assert_eq!(d.line_raw(), b"e already locked\r\n");
    d.send(b"unlock tok\r\n");
    assert_eq!(d.line_raw(), b"e not owner\r\n");
    c.send(b"unlock tok\r\n");
    assert_eq!(c.line_raw(), b"e not owner\r\n");
    assert_eq!(d.req("r", "tok", &token), "ok");

    // Read-write keys are another type.
    expect_grant_rw(&d.req("rl", "cfg", "0"));
    c.send(b"lock cfg 0\r\n");
    assert_eq!(c.line_raw(), b"e type mismatch\r\n");

    // The longest line (256 bytes) is fine.
    let key = "a".repeat(249);
    c.send(format!("lock {key} 0\r\n").as_bytes());
    assert_eq!(c.line_raw(), b"l locked\r\n");
}

/// `ok <token> <lease> <fence>` of a read-write grant.
fn expect_grant_rw(reply: &str) {
    let token = token_of(reply);
    assert_eq!(reply, format!("ok {token} 33 {}", fence_of(&token)));
}

#[test]
fn dreadlock_mixed_with_dflockd_protocol() {
    let server = Server::start(&[]);
    let mut a = server.client();
    let mut b = server.client();
    let mut observer = server.client();

    a.send(b"lock job 0\r\n");
    assert_eq!(a.line_raw(), b"l locked\r\n");
    b.send(b"l\njob\n0\n");
    assert_eq!(b.line_raw(), b"timeout\n");
    b.send(b"l\njob\n10\n");
    observer.wait_lock_waiters("job", 1);
    a.send(b"unlock job\r\n");
    assert_eq!(a.line_raw(), b"u unlocked\r\n");
    let reply = b.line();
    expect_grant(&reply, 33);

    // One connection may mix both dialects; the Dreadlock lock parks too.
    a.send(b"ping\n_\n\nlock job 5000\r\nping\n_\n\n");
    assert_eq!(a.line_raw(), b"ok\n");
    observer.wait_lock_waiters("job", 1);
    assert_eq!(b.req("r", "job", &token_of(&reply)), "ok");
    assert_eq!(a.line_raw(), b"l locked\r\n");
    assert_eq!(a.line_raw(), b"ok\n");
}

#[test]
fn malformed_dreadlock_lines_close_without_reply() {
    let server = Server::start(&[]);
    let cases: &[&[u8]] = &[
        b"lock bad-key 100\r\n",
        b"lock k\r\n",
        b"lock k \r\n",
        b"lock k x\r\n",
        b"lock k 1 2\r\n",
        b"lock k -1\r\n",
        b"lock k +1\r\n",
        b"lock k 1.5\r\n",
        b"lock k 12345678901234\r\n",
        b"lock k 9223372036001\r\n",
        b"lock k\xc3\xa9 1\r\n",
        b"unlock k extra\r\n",
        b"unlock bad.key\r\n",
        b"lock \r\n",
    ];
    for case in cases {
        let mut c = server.client();
        c.send(b"ping\n_\n\n");
        assert_eq!(c.line(), "ok");
        c.send(case);
        c.expect_closed();
    }
    // An over-long Dreadlock line (257 bytes) is malformed too: no reply.
    let mut c = server.client();
    c.send(format!("lock {} 0\r\n", "a".repeat(250)).as_bytes());
    c.expect_closed();
    // Nothing was locked by any of them.
    let stats = server.client().stats();
    assert!(stats.get("locks").arr().is_empty());
    assert!(stats.get("idle_locks").arr().is_empty());
}

#[test]
fn dreadlock_hold_released_on_disconnect_even_without_auto_release() {
    let server = Server::start(&["--no-auto-release-on-disconnect"]);
    let mut a = server.client();
    let mut b = server.client();
    a.send(b"lock job 0\r\n");
    assert_eq!(a.line_raw(), b"l locked\r\n");
    b.send(b"lock job 10000\r\n");
    server.client().wait_lock_waiters("job", 1);
    drop(a);
    assert_eq!(b.line_raw(), b"l locked\r\n");
}

#[test]
fn dreadlock_hold_exempts_from_idle_timeout() {
    let server = Server::start(&["--read-timeout", "1"]);
    let mut c = server.client();
    c.send(b"lock job 0\r\n");
    assert_eq!(c.line_raw(), b"l locked\r\n");
    c.expect_nothing_for(Duration::from_millis(1500));
    let unlocked = Instant::now();
    c.send(b"unlock job\r\n");
    assert_eq!(c.line_raw(), b"u unlocked\r\n");
    // The most recent request was a Dreadlock command: Dreadlock notice.
    assert_eq!(c.line_raw(), b"e idle timeout\r\n");
    let waited = secs_since(unlocked);
    assert!(
        (1.0..2.5).contains(&waited),
        "idle notice after {waited:.3} s"
    );
    c.expect_closed();
}

#[test]
fn dreadlock_port_serves_both_dialects() {
    // Without the flag (or with 0) there is no Dreadlock listener.
    let server = Server::start(&["--dreadlock-port", "0"]);
    assert!(
        server
            .wait_for_log("(dreadlock)", Duration::from_millis(300))
            .is_none()
    );
    drop(server);

    // The port must be chosen up front; retry if another process takes it.
    let mut attempt = 0;
    let (server, port) = loop {
        let port = free_port();
        let port_arg = port.to_string();
        match Server::try_start_env(&["--dreadlock-port", &port_arg], &[]) {
            Ok(server) => break (server, port),
            Err(e) if attempt < 3 => {
                attempt += 1;
                eprintln!("retrying with another port: {e}");
            }
            Err(e) => panic!("{e}"),
        }
    };
    let dl = server.dreadlock_addr();
    assert_eq!(dl.port(), port);
    assert!(
        server
            .stderr_lines()
            .iter()
            .any(|l| l.ends_with(&format!("listening on 127.0.0.1:{port} (dreadlock)")))
    );

    let mut d = Client::connect(dl);
    d.send(b"lock shared 0\r\n");
    assert_eq!(d.line_raw(), b"l locked\r\n");
    assert_eq!(d.req("ping", "_", ""), "ok");
    expect_grant(&d.req("l", "mine", "0"), 33);
    // Both listeners share one lock space.
    let mut m = server.client();
    assert_eq!(m.req("l", "shared", "0"), "timeout");
    m.send(b"lock mine 0\r\n");
    assert_eq!(m.line_raw(), b"t timeout\r\n");
}
