//! What people get wrong at a keyboard (telnet, nc), typed over a real socket
//! into a real server started with `--log-level debug`: every step asserts the
//! exact reply bytes — the same bytes as before the log explained anything —
//! and the exact log line the step produces (issue 16, item 2). Plus: the
//! rate limit of the `info` lines (many failed auths, many refusals at a
//! limit) and the `owner_peer` / `fence_hex` members of `stats` (item 5).
//!
//! Each step uses its own connection, so its log lines are found by the
//! client's own address: every per-connection line reads
//! `conn <id> from 127.0.0.1:<port>…`.

use crate::common;

use common::{Client, Server, expect_grant, token_of};
use std::time::{Duration, Instant};

/// How long a log line may take to show up after the reply that caused it.
const LOG_WAIT: Duration = Duration::from_secs(5);

/// The message part of a log line: what follows `] ` in env_logger's
/// `[<time> <LEVEL> <target>] <message>`.
fn message(line: &str) -> &str {
    line.split_once("] ").map_or(line, |(_, m)| m)
}

/// The level of a log line (`DEBUG`, `INFO`, …).
fn level(line: &str) -> &str {
    line.split_whitespace().nth(1).unwrap_or("")
}

/// A connection and the prefix its log lines carry.
struct Step {
    client: Client,
    /// `from 127.0.0.1:<port>`, matched after `conn <id> `.
    from: String,
}

impl Step {
    fn open(server: &Server) -> Step {
        let client = server.client();
        let from = format!("from {}", client.stream().local_addr().unwrap());
        Step { client, from }
    }

    /// Sends `input` and asserts the reply is exactly `reply` (whole lines).
    fn says(&mut self, input: &[u8], reply: &[u8]) {
        self.client.send(input);
        let mut got = Vec::new();
        while got.len() < reply.len() {
            got.extend(self.client.line_raw());
        }
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(reply),
            "reply to {:?}",
            String::from_utf8_lossy(input)
        );
    }

    /// This connection's log messages so far, with the `conn <id> ` prefix cut.
    fn logged(&self, server: &Server) -> Vec<(String, String)> {
        server
            .stderr_lines()
            .iter()
            .filter_map(|l| {
                let m = message(l);
                let (_, rest) = m.split_once(' ')?; // "conn"
                let (_, rest) = rest.split_once(' ')?; // "<id>"
                let text = rest.strip_prefix(&self.from)?;
                // `from 127.0.0.1:4000` must not match port 40001.
                (text.starts_with(':') || text.starts_with(' '))
                    .then(|| (level(l).to_string(), text.to_string()))
            })
            .collect()
    }

    /// Waits for this connection's log line `text` (after `from <peer>`) at
    /// `level`, and returns the full line.
    fn log_line(&self, server: &Server, lvl: &str, text: &str) {
        let deadline = Instant::now() + LOG_WAIT;
        loop {
            let lines = self.logged(server);
            if lines.iter().any(|(l, t)| l == lvl && t == text) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no {lvl} line {text:?} for {}; its lines: {lines:#?}",
                self.from
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Asserts this connection has logged nothing but its accept line.
    fn no_refusal_logged(&self, server: &Server) {
        let lines = self.logged(server);
        assert!(
            lines.iter().all(|(_, t)| t.starts_with(" accepted on ")),
            "unexpected lines for {}: {lines:#?}",
            self.from
        );
    }
}

fn debug_server(args: &[&str]) -> Server {
    let mut all = vec!["--log-level", "debug"];
    all.extend_from_slice(args);
    Server::start(&all)
}

#[test]
fn transcript_of_common_mistakes() {
    let server = debug_server(&[]);

    // A stray Enter shifts the framing: `ping` becomes the key of an empty
    // command. Enter until a reply comes back, and the next request is in step.
    let mut s = Step::open(&server);
    s.says(b"\nping\n_\n\n", b"error\n");
    s.log_line(
        &server,
        "DEBUG",
        ": command \"\" key \"ping\": error, code 3: unknown command \"\" (an empty command \
         line: a stray newline shifts the three-line framing; send empty lines until a reply \
         comes back, then the next request is in step)",
    );
    s.says(b"\n\n", b"error\n");
    s.log_line(
        &server,
        "DEBUG",
        ": command \"\" key \"\": error, code 3: unknown command \"\" (an empty command \
         line: a stray newline shifts the three-line framing; send empty lines until a reply \
         comes back, then the next request is in step)",
    );
    s.says(b"ping\n_\n\n", b"ok\n");

    // An unknown command.
    let mut s = Step::open(&server);
    s.says(b"L\nmy-key\n10\n", b"error\n");
    s.log_line(
        &server,
        "DEBUG",
        ": command \"L\" key \"my-key\": error, code 3: unknown command \"L\" (command names are lowercase)",
    );

    // A key with a space.
    let mut s = Step::open(&server);
    s.says(b"l\nmy key\n10\n", b"error\n");
    s.log_line(
        &server,
        "DEBUG",
        ": command \"l\" key \"my key\": error, code 5: invalid key \"my key\" (contains a space)",
    );

    // Timeouts are whole seconds: not words, not fractions.
    let mut s = Step::open(&server);
    s.says(b"l\nmy-key\nten\n", b"error\n");
    s.log_line(
        &server,
        "DEBUG",
        ": command \"l\" key \"my-key\": error, code 4: invalid integer \"ten\" in argument \
         (<timeout>; l takes <timeout> [<lease>])",
    );
    s.says(b"l\nmy-key\n1.5\n", b"error\n");
    s.log_line(
        &server,
        "DEBUG",
        ": command \"l\" key \"my-key\": error, code 4: invalid integer \"1.5\" in argument \
         (<timeout>; l takes <timeout> [<lease>])",
    );

    // CRLF line ends (telnet) just work, and log no refusal.
    let mut s = Step::open(&server);
    s.says(b"ping\r\n_\r\n\r\n", b"ok\n");
    s.client.send(b"l\r\ncrlf-key\r\n0\r\n");
    let token = expect_grant(&s.client.line(), 33);
    s.says(format!("r\r\ncrlf-key\r\n{token}\r\n").as_bytes(), b"ok\n");
    s.no_refusal_logged(&server);

    // A trailing space: after the command name, after the key, after a number.
    let mut s = Step::open(&server);
    s.says(b"ping \n_\n\n", b"error\n");
    s.log_line(
        &server,
        "DEBUG",
        ": command \"ping \" key \"_\": error, code 3: unknown command \"ping \" (trailing blank after the command name)",
    );
    s.says(b"l\nmy-key \n0\n", b"error\n");
    s.log_line(
        &server,
        "DEBUG",
        ": command \"l\" key \"my-key \": error, code 5: invalid key \"my-key \" (contains a space)",
    );
    s.client.send(b"l\ntrailing\n0 \n");
    let reply = s.client.line();
    expect_grant(&reply, 33);

    // telnet's Ctrl-C: IAC IP IAC DO TIMING-MARK, then Enter three times.
    let mut s = Step::open(&server);
    s.client.send(b"\xff\xf4\xff\xfd\x06");
    s.says(b"\r\n\r\n\r\n", b"error\n");
    s.log_line(
        &server,
        "DEBUG",
        ": command \"\\xff\\xf4\\xff\\xfd\\x06\" key \"\": error, code 3: unknown command \
         \"\\xff\\xf4\\xff\\xfd\\x06\" (telnet control bytes, e.g. from Ctrl-C; send empty lines \
         until a reply comes back, then the next request is in step)",
    );
    s.says(b"ping\r\n_\r\n\r\n", b"ok\n");

    // A release with a token that is not held.
    let mut s = Step::open(&server);
    s.says(b"r\nmy-key\n0123456789abcdef0123456789abcdef\n", b"error\n");
    s.log_line(
        &server,
        "DEBUG",
        ": command \"r\" key \"my-key\": error: the token is not held on this key \
         (wrong token or key, already released, or its lease expired)",
    );

    // `auth` on a server without a token is an unknown command.
    let mut s = Step::open(&server);
    s.says(b"auth\n_\nsecret\n", b"error\n");
    s.log_line(
        &server,
        "DEBUG",
        ": command \"auth\": error, code 3: unknown command \"auth\" (no auth token is \
         configured, so auth is an unknown command)",
    );

    // `lock my-key 1000` in the Dreadlock dialect: '-' is not a Dreadlock key
    // byte, so the connection is closed without a reply — and the log says why.
    let mut s = Step::open(&server);
    s.client.send(b"lock my-key 1000\r\n");
    s.client.expect_closed();
    s.log_line(
        &server,
        "INFO",
        ": malformed Dreadlock line \"lock my-key 1000\": code 17, key \"my-key\" may hold \
         only A-Z a-z 0-9 (not \"-\"); closing without a reply",
    );
    s.log_line(
        &server,
        "DEBUG",
        " closed: code 17, malformed Dreadlock line",
    );

    // Another malformed Dreadlock line: the timeout is missing.
    let mut s = Step::open(&server);
    s.client.send(b"lock build42\r\n");
    s.client.expect_closed();
    s.log_line(
        &server,
        "INFO",
        ": malformed Dreadlock line \"lock build42\": code 17, missing timeout in \
         milliseconds (lock <key> <ms> or unlock <key>); closing without a reply",
    );

    // A well-formed Dreadlock session; unlocking twice is refused.
    let mut s = Step::open(&server);
    s.says(b"lock build42 1000\r\n", b"l locked\r\n");
    s.says(b"unlock build42\r\n", b"u unlocked\r\n");
    s.says(b"unlock build42\r\n", b"e not locked\r\n");
    s.log_line(
        &server,
        "DEBUG",
        ": command \"unlock\" key \"build42\": e not locked: nobody holds the key",
    );

    // An HTTP request on the protocol port: closed without a reply, a warning.
    let mut s = Step::open(&server);
    s.client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    s.client.expect_closed();
    let on = format!(" on {} (tcp)", server.addr());
    s.log_line(
        &server,
        "WARN",
        &format!(
            "{on}: HTTP request \"GET / HTTP/1.1\" on the protocol port, closing without a reply (code 16)"
        ),
    );
    s.log_line(
        &server,
        "DEBUG",
        " closed: code 16, HTTP request on the TCP port",
    );

    // A TLS ClientHello on the plain-text port: closed without a reply, a
    // warning saying why.
    let mut s = Step::open(&server);
    s.client.send(b"\x16\x03\x01\x00\xf1\x01\n\n\n");
    s.client.expect_closed();
    s.log_line(
        &server,
        "WARN",
        &format!(
            "{on}: the first bytes are a TLS ClientHello, but this listener speaks plain \
             text (TLS is off); closing without a reply"
        ),
    );
    s.log_line(
        &server,
        "DEBUG",
        " closed: TLS ClientHello on a plain-text port",
    );

    // Every close is logged with its reason.
    let s = Step::open(&server);
    let from = s.from.clone();
    drop(s);
    let closed = server
        .wait_for_log(&format!("{from} closed: "), LOG_WAIT)
        .expect("a close line");
    assert!(
        message(&closed).ends_with(" closed: code 11, the client closed the connection"),
        "{closed}"
    );

    // The log never carries a raw control character, whatever was typed.
    // (`cargo test --profile ci --test all transcript:: -- --nocapture` shows it all.)
    for line in server.stderr_lines() {
        println!("{line}");
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert!(
            !line.contains("UnknownCommand") && !line.contains("BadInteger"),
            "{line}"
        );
    }
}

#[test]
fn startup_line_names_version_listeners_auth_tls_and_limits() {
    let server = Server::start(&["--max-locks", "4096"]);
    let line = server
        .wait_for_log(" starting: ", LOG_WAIT)
        .expect("a start-up line");
    assert_eq!(level(&line), "INFO", "{line}");
    let expected = format!(
        "dflockd {} starting: tcp {}; auth off; tls off; ",
        env!("CARGO_PKG_VERSION"),
        server.addr()
    );
    assert!(message(&line).starts_with(&expected), "{line}");
    assert!(line.contains("--max-locks 4096"), "{line}");
    assert!(line.contains("--max-connections 0 (no limit)"), "{line}");
    assert!(line.contains("--read-timeout 23 s"), "{line}");
}

#[test]
fn bind_failure_is_one_clean_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = common::run_server_cmd(&["--port", &port], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("cannot listen"))
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with(&format!("dflockd: cannot listen on 127.0.0.1:{port}: ")),
        "{stderr}"
    );
}

/// `(lines logged, events reported as suppressed)` among `lines` for one kind.
fn logged_and_suppressed(lines: &[String], needle: &str, label: &str) -> (u64, u64) {
    let logged = lines.iter().filter(|l| l.contains(needle)).count() as u64;
    let suppressed = lines
        .iter()
        .filter_map(|l| {
            let m = message(l).strip_prefix(label)?.strip_prefix(": ")?;
            m.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum();
    (logged, suppressed)
}

/// Waits until `logged + suppressed` reaches `total` for the kind.
fn wait_accounted(server: &Server, needle: &str, label: &str, total: u64) -> (u64, u64) {
    let deadline = Instant::now() + LOG_WAIT;
    loop {
        let (logged, suppressed) = logged_and_suppressed(&server.stderr_lines(), needle, label);
        if logged + suppressed >= total || Instant::now() >= deadline {
            return (logged, suppressed);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn failed_auths_are_rate_limited() {
    let server = Server::start(&["--auth-token", "s3cret"]);
    const N: u64 = 40;
    let start = Instant::now();
    let mut clients: Vec<Client> = (0..N)
        .map(|_| {
            let mut c = server.client();
            c.send(b"auth\n_\nwrong\n");
            c
        })
        .collect();
    for c in &mut clients {
        assert_eq!(c.line(), "error_auth");
    }
    let spread = start.elapsed().as_secs_f64();
    let (logged, suppressed) = wait_accounted(
        &server,
        "authentication failed (wrong token)",
        "authentication failures",
        N,
    );
    // At most 10 lines per second, and every failure accounted for.
    let windows = spread.ceil() as u64 + 1;
    assert!(
        logged >= 10 && logged <= 10 * windows,
        "{logged} lines over {spread:.3} s"
    );
    assert_eq!(
        logged + suppressed,
        N,
        "{logged} logged + {suppressed} suppressed"
    );
    assert!(suppressed > 0);
    let line = server
        .wait_for_log("authentication failed", LOG_WAIT)
        .unwrap();
    assert_eq!(level(&line), "INFO", "{line}");
    assert!(
        line.contains(&format!(" on {} (tcp): ", server.addr())),
        "{line}"
    );
    assert!(
        !line.contains("wrong\"") && !line.contains("s3cret"),
        "{line}"
    );
    let summary = server
        .wait_for_log("similar line(s) suppressed", LOG_WAIT)
        .unwrap();
    assert_eq!(level(&summary), "INFO", "{summary}");
}

#[test]
fn refusals_at_a_limit_are_rate_limited() {
    let server = Server::start(&["--max-locks", "1"]);
    let mut c = server.client();
    expect_grant(&c.req("l", "first", "0"), 33);
    // 49 more keys in one write: handled in one loop iteration, one window.
    let requests: String = (0..49).map(|i| format!("l\nk{i}\n0\n")).collect();
    c.send(requests.as_bytes());
    for _ in 0..49 {
        assert_eq!(c.line(), "error_max_locks");
    }
    let (logged, suppressed) = wait_accounted(
        &server,
        "error_max_locks: --max-locks 1 reached",
        "refusals at --max-locks",
        49,
    );
    assert_eq!((logged, suppressed), (10, 39));
    let from = format!("from {}", c.stream().local_addr().unwrap());
    let line = server.wait_for_log("error_max_locks", LOG_WAIT).unwrap();
    assert_eq!(level(&line), "INFO");
    assert!(
        message(&line).ends_with(&format!(
            "{from}: error_max_locks: --max-locks 1 reached, no new lock or semaphore key can be created"
        )),
        "{line}"
    );
}

#[test]
fn refusal_at_a_limit_names_command_and_key_at_debug() {
    let server = debug_server(&["--max-waiters", "1"]);
    let mut a = server.client();
    expect_grant(&a.req("l", "job", "0"), 33);
    let mut b = server.client();
    b.send_req("l", "job", "30");
    a.wait_lock_waiters("job", 1);
    let mut c = server.client();
    let from = format!("from {}", c.stream().local_addr().unwrap());
    assert_eq!(c.req("l", "job", "30"), "error_max_waiters");
    let line = server
        .wait_for_log(&format!("{from}: command"), LOG_WAIT)
        .unwrap();
    assert_eq!(level(&line), "INFO", "{line}");
    assert!(
        message(&line).ends_with(&format!(
            "{from}: command \"l\" key \"job\": error_max_waiters: --max-waiters 1 reached, the key's queue is full"
        )),
        "{line}"
    );
}

#[test]
fn a_holder_closed_by_the_request_timeout_is_logged_at_info() {
    let server = Server::start(&["--read-timeout", "1"]);
    let mut c = server.client();
    let from = format!("from {}", c.stream().local_addr().unwrap());
    expect_grant(&c.req("l", "held", "0 60"), 60);
    c.send(b"l\nhe"); // a request that never completes
    assert_eq!(c.line(), "error");
    c.expect_closed();
    let line = server
        .wait_for_log(&format!("{from}: code 10, request timeout"), LOG_WAIT)
        .unwrap();
    assert_eq!(level(&line), "INFO", "{line}");
    assert!(
        message(&line).ends_with(
            "code 10, request timeout (--read-timeout 1 s) while holding 1 slot(s), \
             sending error; closing (disconnect cleanup follows)"
        ),
        "{line}"
    );
}

#[test]
fn stats_names_each_holder_by_peer_and_hex_fence() {
    let server = Server::start(&[]);
    let mut a = server.client();
    let a_peer = a.stream().local_addr().unwrap().to_string();
    let token = expect_grant(&a.req("l", "deploy", "0"), 33);
    let mut b = server.client();
    let b_peer = b.stream().local_addr().unwrap().to_string();
    let reply = b.req("wl", "cfg", "0");
    let rw_token = token_of(&reply);
    let reply = b.req("elect", "leader", "0");
    assert!(reply.starts_with("ok "), "{reply}");

    let stats = a.stats();
    let lock = stats.entry("locks", "deploy").expect("deploy in locks");
    // Existing members unchanged...
    assert_ne!(lock.get("owner_conn_id").u64(), 0);
    assert_eq!(lock.get("fence").u64(), common::fence_of(&token));
    // ...and beside them, the peer and the fence as the token spells it.
    assert_eq!(lock.get("owner_peer").str(), a_peer);
    assert_eq!(lock.get("fence_hex").str(), &token[..16]);

    let rw = stats.entry("rw_locks", "cfg").expect("cfg in rw_locks");
    assert_eq!(rw.get("fence_hex").str(), &rw_token[..16]);

    let election = stats.entry("elections", "leader").expect("an election");
    assert_eq!(election.get("leader_peer").str(), b_peer);
    let leader_lock = stats.entry("locks", "leader").expect("leader in locks");
    assert_eq!(leader_lock.get("owner_peer").str(), b_peer);

    // After a hand-over, the new holder is the one named.
    let t = expect_grant(&a.req("l", "gone", "0"), 33);
    let mut w = server.client();
    w.send_req("l", "gone", "30");
    a.wait_lock_waiters("gone", 1);
    assert_eq!(a.req("r", "gone", &t), "ok");
    let reply = w.line();
    let w_token = token_of(&reply);
    let stats = a.stats();
    let gone = stats.entry("locks", "gone").unwrap();
    assert_eq!(gone.get("fence_hex").str(), &w_token[..16]);
    assert_eq!(
        gone.get("owner_peer").str(),
        w.stream().local_addr().unwrap().to_string()
    );
}

#[test]
fn a_connection_over_a_cap_is_logged_at_info() {
    let server = Server::start(&["--max-connections-per-ip", "1"]);
    let mut first = server.client();
    assert_eq!(first.req("ping", "_", ""), "ok");
    let mut second = server.client();
    let from = second.stream().local_addr().unwrap();
    second.expect_closed();
    let line = server
        .wait_for_log(&format!("refused connection from {from} "), LOG_WAIT)
        .expect("a refusal line");
    assert_eq!(level(&line), "INFO", "{line}");
    assert_eq!(
        message(&line),
        format!(
            "refused connection from {from} on {} (tcp): --max-connections-per-ip 1 reached; \
             closed without a reply",
            server.addr()
        )
    );
}
