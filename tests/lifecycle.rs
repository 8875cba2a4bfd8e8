//! Connection and process lifecycle against the real server: authentication,
//! connection caps, graceful drain, signals, systemd notifications, flags and
//! exit statuses (protocol.md §4; config.md §3, §5, §6, §7, §8.1, §9).

use crate::common;

use common::*;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

/// Polls until new connections are refused (the drain has started).
fn wait_until_refusing(server: &Server) {
    wait_until("listeners closed", || {
        Client::try_connect(server.addr()).is_err()
    });
}

// ---------------------------------------------------------------- auth

#[test]
fn auth_then_commands_work() {
    let server = Server::start(&["--auth-token", "s3cret"]);
    let mut c = server.client();
    assert_eq!(c.req("auth", "_", "s3cret"), "ok");
    assert_eq!(c.req("ping", "_", ""), "ok");
    expect_grant(&c.req("l", "k", "0"), 33);
    // Repeated auth is an error; the connection stays authenticated and open.
    assert_eq!(c.req("auth", "_", "s3cret"), "error");
    assert_eq!(c.req("auth", "_", "wrong"), "error");
    assert_eq!(c.req("ping", "_", ""), "ok");

    // The argument is trimmed of spaces and TABs; the key line is ignored.
    let mut c = server.client();
    assert_eq!(c.req("auth", "", " \ts3cret\t "), "ok");
    assert_eq!(c.req("ping", "_", ""), "ok");

    // auth pipelined with the requests behind it.
    let mut c = server.client();
    c.send(b"auth\n_\ns3cret\nping\n_\n\nstats\n_\n\n");
    assert_eq!(c.line(), "ok");
    assert_eq!(c.line(), "ok");
    assert!(c.line().starts_with("ok {"));
}

/// Sends `request` as the first bytes of a fresh connection and asserts the
/// delayed `reply`, then the close.
fn expect_auth_failure(server: &Server, request: &[u8], reply: &[u8]) {
    let mut c = server.client();
    let start = Instant::now();
    c.send(request);
    assert_eq!(
        String::from_utf8_lossy(&c.line_raw()),
        String::from_utf8_lossy(reply),
        "first request {:?}",
        String::from_utf8_lossy(request)
    );
    let waited = secs_since(start);
    assert!(waited >= 0.1, "auth failure answered after {waited:.3} s");
    c.expect_closed();
}

#[test]
fn auth_failures_are_delayed_closed_and_counted() {
    let server = Server::start(&["--auth-token", "s3cret"]);
    let failures: &[(&[u8], &[u8])] = &[
        (b"auth\n_\nwrong\n", b"error_auth\n"),
        (b"auth\n_\nS3CRET\n", b"error_auth\n"),
        (b"auth\n_\ns3cret2\n", b"error_auth\n"),
        (b"auth\n_\n\n", b"error_auth\n"),
        (b"ping\n_\n\n", b"error_auth\n"),
        (b"stats\n_\n\n", b"error_auth\n"),
        (b"nosuch\n_\n\n", b"error_auth\n"),
        (b"l\n\n0\n", b"error_auth\n"),
        // The server stops reading: one reply, nothing for the second ping.
        (b"ping\n_\n\nping\n_\n\n", b"error_auth\n"),
        (b"lock job 0\r\n", b"e authentication required\r\n"),
    ];
    for (request, reply) in failures {
        expect_auth_failure(&server, request, reply);
    }
    let mut c = server.client();
    assert_eq!(c.req("auth", "_", "s3cret"), "ok");
    let stats = c.stats();
    assert_eq!(stats.total("auth_failures"), failures.len() as u64);
    assert!(stats.get("locks").arr().is_empty(), "nothing was executed");
}

#[test]
fn auth_is_an_unknown_command_without_a_token() {
    let server = Server::start(&[]);
    let mut c = server.client();
    assert_eq!(c.req("auth", "_", "s3cret"), "error");
    assert_eq!(c.req("ping", "_", ""), "ok");
    assert_eq!(c.stats().total("auth_failures"), 0);
}

#[test]
fn auth_token_file_is_trimmed_and_wins_over_the_environment() {
    let dir = TempDir::new("auth");
    let path = dir.join("token.txt");
    std::fs::write(&path, " \t s3cret \r\n\n").unwrap();
    let server = Server::start_env(
        &["--auth-token-file", path.to_str().unwrap()],
        &[("DFLOCKD_AUTH_TOKEN", "from-env")],
    );
    let mut c = server.client();
    assert_eq!(c.req("auth", "_", "s3cret"), "ok");
    assert_eq!(c.req("ping", "_", ""), "ok");
    expect_auth_failure(&server, b"auth\n_\nfrom-env\n", b"error_auth\n");

    // The environment variable alone configures a token too.
    let server = Server::start_env(&[], &[("DFLOCKD_AUTH_TOKEN", "from-env")]);
    let mut c = server.client();
    assert_eq!(c.req("auth", "_", "from-env"), "ok");
}

// ---------------------------------------------------------------- connection caps

#[test]
fn max_connections_rejects_the_excess_without_reply() {
    let server = Server::start(&["--max-connections", "2"]);
    let mut a = server.client();
    let mut b = server.client();
    assert_eq!(a.req("ping", "_", ""), "ok");
    assert_eq!(b.req("ping", "_", ""), "ok");

    let mut c = server.client();
    c.expect_closed();
    let stats = a.stats();
    assert_eq!(stats.get("connections").u64(), 2);
    assert_eq!(stats.total("connections_rejected"), 1);

    drop(b);
    wait_until("the closed connection is gone", || {
        a.stats().get("connections").u64() == 1
    });
    let mut d = server.client();
    assert_eq!(d.req("ping", "_", ""), "ok");
    assert_eq!(a.stats().total("connections_rejected"), 1);
}

#[test]
fn max_connections_per_ip() {
    let server = Server::start(&["--max-connections-per-ip", "1"]);
    let mut a = server.client();
    assert_eq!(a.req("ping", "_", ""), "ok");
    let mut b = server.client();
    b.expect_closed();
    let stats = a.stats();
    assert_eq!(stats.total("connections_rejected"), 1);
    assert_eq!(stats.get("connections").u64(), 1);

    drop(a);
    // Once the first connection is gone, a new one from the same address is served.
    wait_until("a new connection is served", || {
        let mut c = server.client();
        c.try_send(b"ping\n_\n\n").is_ok()
            && matches!(c.try_line_raw(), Ok(Some(line)) if line == b"ok\n")
    });
}

// ---------------------------------------------------------------- drain and signals

#[test]
fn drain_answers_parked_then_idle_clients_and_exits_zero() {
    let mut server = Server::start(&[]);
    let mut holder = server.client();
    let mut parked = server.client();
    let mut dl_parked = server.client();
    let mut idle = server.client();
    let mut dl_idle = server.client();

    let token = expect_grant(&holder.req("l", "k", "0"), 33);
    parked.send(b"l\nk\n30\n");
    dl_parked.send(b"lock k 30000\r\n");
    assert_eq!(idle.req("ping", "_", ""), "ok");
    dl_idle.send(b"lock other 0\r\n");
    assert_eq!(dl_idle.line_raw(), b"l locked\r\n");
    {
        let mut observer = server.client();
        observer.wait_lock_waiters("k", 2);
    }
    wait_until("observer closed", || {
        holder.stats().get("connections").u64() == 5
    });

    server.signal("TERM");
    // Parked commands are answered at once, then closed.
    assert_eq!(parked.line(), "error_draining");
    parked.expect_closed();
    assert_eq!(dl_parked.line_raw(), b"e draining\r\n");
    dl_parked.expect_closed();
    // New connections are refused.
    let refused = Client::try_connect(server.addr());
    assert!(refused.is_err(), "a connection was accepted while draining");

    // Idle connections stay open until their next request.
    idle.expect_nothing_for(Duration::from_millis(200));
    assert!(server.wait_exit(Duration::from_millis(10)).is_none());
    assert_eq!(idle.req("ping", "_", ""), "error_draining");
    idle.expect_closed();
    dl_idle.send(b"unlock other\r\n");
    assert_eq!(dl_idle.line_raw(), b"e draining\r\n");
    dl_idle.expect_closed();
    assert!(server.wait_exit(Duration::from_millis(100)).is_none());
    assert_eq!(holder.req("r", "k", &token), "error_draining");
    holder.expect_closed();

    let status = server
        .wait_exit(Duration::from_secs(5))
        .expect("exit after the last client left");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn draining_comes_before_authentication() {
    let mut server = Server::start(&["--auth-token", "s3cret"]);
    let mut c = server.client();
    // Make sure the connection is established before the drain starts.
    let mut authed = server.client();
    assert_eq!(authed.req("auth", "_", "s3cret"), "ok");
    wait_until("both connections counted", || {
        authed.stats().get("connections").u64() == 2
    });
    server.signal("TERM");
    wait_until_refusing(&server);
    let start = Instant::now();
    assert_eq!(c.req("ping", "_", ""), "error_draining");
    assert!(
        secs_since(start) < 0.1,
        "no auth delay before error_draining"
    );
    c.expect_closed();
    assert_eq!(authed.req("ping", "_", ""), "error_draining");
    authed.expect_closed();
    assert_eq!(
        server.wait_exit(Duration::from_secs(5)).unwrap().code(),
        Some(0)
    );
}

#[test]
fn shutdown_timeout_closes_lingering_clients() {
    let mut server = Server::start(&["--shutdown-timeout", "1"]);
    let mut c = server.client();
    assert_eq!(c.req("ping", "_", ""), "ok");
    let start = Instant::now();
    server.signal("TERM");
    c.expect_closed();
    let closed = secs_since(start);
    let status = server.wait_exit(Duration::from_secs(5)).expect("exit");
    let exited = secs_since(start);
    assert_eq!(status.code(), Some(0));
    assert!((1.0..2.5).contains(&closed), "closed after {closed:.3} s");
    assert!(exited < 3.0, "exited after {exited:.3} s");
}

#[test]
fn second_signal_exits_at_once() {
    let mut server = Server::start(&[]);
    let mut c = server.client();
    assert_eq!(c.req("ping", "_", ""), "ok");
    server.signal("TERM");
    wait_until_refusing(&server);
    assert!(server.wait_exit(Duration::from_millis(200)).is_none());
    let start = Instant::now();
    server.signal("INT");
    let status = server.wait_exit(Duration::from_secs(5)).expect("exit");
    assert_eq!(status.code(), Some(0));
    let exited = secs_since(start);
    assert!(exited < 1.0, "exited {exited:.3} s after the second signal");
    c.expect_closed();
}

#[test]
fn sigint_drains_like_sigterm() {
    let mut server = Server::start(&[]);
    let mut c = server.client();
    expect_grant(&c.req("l", "k", "0"), 33);
    server.signal("INT");
    wait_until_refusing(&server);
    assert_eq!(c.req("ping", "_", ""), "error_draining");
    c.expect_closed();
    assert_eq!(
        server.wait_exit(Duration::from_secs(5)).unwrap().code(),
        Some(0)
    );
}

#[test]
fn sd_notify_ready_and_stopping() {
    let dir = TempDir::new("notify");
    let path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut server = Server::start_env(&[], &[("NOTIFY_SOCKET", path.to_str().unwrap())]);

    let recv = || {
        let mut buf = [0u8; 4096];
        let n = sock.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let has = |msg: &str, line: &str| msg.split('\n').any(|l| l == line);

    let ready = recv();
    assert!(has(&ready, "READY=1"), "first notification {ready:?}");
    // READY comes once the listeners are bound.
    assert_eq!(server.client().req("ping", "_", ""), "ok");

    server.signal("TERM");
    let mut stopping = recv();
    while !has(&stopping, "STOPPING=1") {
        assert!(!has(&stopping, "READY=1"), "READY=1 again: {stopping:?}");
        stopping = recv();
    }
    assert_eq!(
        server.wait_exit(Duration::from_secs(5)).unwrap().code(),
        Some(0)
    );
}

/// The watchdog (config.md §8.1): `WATCHDOG=1` every `WATCHDOG_USEC`/2 from
/// the loop, only for the process `WATCHDOG_PID` names (or any when unset).
#[test]
fn sd_notify_watchdog_at_half_the_interval() {
    let dir = TempDir::new("watchdog");
    let path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let notify = path.to_str().unwrap();
    // 400 ms → fed every 200 ms.
    let server = Server::start_env(
        &[],
        &[("NOTIFY_SOCKET", notify), ("WATCHDOG_USEC", "400000")],
    );
    let mut buf = [0u8; 4096];
    let mut feeds = Vec::new();
    let started = std::time::Instant::now();
    while feeds.len() < 6 {
        let n = sock.recv(&mut buf).expect("a notification");
        if String::from_utf8_lossy(&buf[..n])
            .split('\n')
            .any(|l| l == "WATCHDOG=1")
        {
            feeds.push(started.elapsed().as_secs_f64());
        }
    }
    // Five intervals between six feeds: about 1 s (less only by delivery jitter).
    let span = feeds[5] - feeds[0];
    assert!(
        (0.9..2.5).contains(&span),
        "six feeds over {span:.3} s: {feeds:?}"
    );
    assert_eq!(server.client().req("ping", "_", ""), "ok");
    drop(server);

    // WATCHDOG_PID naming another process: no feeding.
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    while sock.recv(&mut buf).is_ok() {}
    sock.set_read_timeout(Some(Duration::from_millis(600)))
        .unwrap();
    let _server = Server::start_env(
        &[],
        &[
            ("NOTIFY_SOCKET", notify),
            ("WATCHDOG_USEC", "200000"),
            ("WATCHDOG_PID", "1"),
        ],
    );
    let deadline = std::time::Instant::now() + Duration::from_millis(600);
    while std::time::Instant::now() < deadline {
        let Ok(n) = sock.recv(&mut buf) else { break };
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(!msg.split('\n').any(|l| l == "WATCHDOG=1"), "fed: {msg:?}");
    }
}

// ---------------------------------------------------------------- flags and exit statuses

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn version_flag() {
    for flag in ["--version", "-V"] {
        let out = run_server_cmd(&[flag], &[]);
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "dflockd 0.1.0\n");
    }
}

#[test]
fn invalid_values_exit_78_with_the_message() {
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (
            &["--port", "70000"],
            &[],
            "dflockd: invalid value \"70000\" for --port: must be an integer in 0..=65535",
        ),
        (
            &[],
            &[("DFLOCKD_PORT", "abc")],
            "dflockd: invalid value \"abc\" for --port (from DFLOCKD_PORT): must be an integer in 0..=65535",
        ),
        (
            &["--max-locks", "0"],
            &[],
            "dflockd: invalid value \"0\" for --max-locks: must be an integer in 1..=4294967295",
        ),
        (
            &["--fence-field=maybe"],
            &[],
            "dflockd: invalid value \"maybe\" for --fence-field: must be one of 1, yes, true, on, 0, no, false, off",
        ),
        (
            &["--port", "70000", "--check-config"],
            &[],
            "dflockd: invalid value \"70000\" for --port: must be an integer in 0..=65535",
        ),
    ];
    for (args, envs, message) in cases {
        let out = run_server_cmd(args, envs);
        assert_eq!(out.status.code(), Some(78), "{args:?} {envs:?}");
        assert_eq!(stderr_of(&out), format!("{message}\n"), "{args:?} {envs:?}");
    }
}

#[test]
fn invalid_fence_state_file_exits_78() {
    let dir = TempDir::new("badfence");
    let path = dir.join("fence.state");
    std::fs::write(&path, "not a number\n").unwrap();
    let p = path.to_str().unwrap();
    let out = run_server_cmd(&["--port", "0", "--fence-state-file", p], &[]);
    assert_eq!(out.status.code(), Some(78));
    assert_eq!(
        stderr_of(&out),
        format!(
            "dflockd: invalid fence state file \"{p}\" (--fence-state-file): must hold one decimal unsigned 64-bit integer\n"
        )
    );
}

#[test]
fn usage_errors_exit_64() {
    let cases: &[&[&str]] = &[
        &["--prot", "1"],
        &["--port", "1", "--port", "2"],
        &["--fence-field", "off"],
        &[
            "--auto-release-on-disconnect",
            "--no-auto-release-on-disconnect",
        ],
        &["--port"],
    ];
    for args in cases {
        let out = run_server_cmd(args, &[]);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", stderr_of(&out));
    }
    let out = run_server_cmd(&["--prot", "1"], &[]);
    assert!(stderr_of(&out).contains("--prot"), "{}", stderr_of(&out));
}

#[test]
fn check_config_prints_the_effective_configuration() {
    let out = run_server_cmd(
        &[
            "--check-config",
            "--max-locks",
            "4096",
            "--auth-token",
            "s3cret",
        ],
        &[("DFLOCKD_PORT", "7000")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.last(), Some(&"configuration ok"));
    for expected in [
        "--host=127.0.0.1 (default)",
        "--port=7000 (env DFLOCKD_PORT)",
        "--dreadlock-port=0 (default)",
        "--max-locks=4096 (flag)",
        "--auth-token=<redacted> (flag)",
    ] {
        assert!(
            lines.contains(&expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    assert!(!stdout.contains("s3cret"), "the token leaked:\n{stdout}");
    let host = lines.iter().position(|l| l.starts_with("--host=")).unwrap();
    let port = lines.iter().position(|l| l.starts_with("--port=")).unwrap();
    let locks = lines
        .iter()
        .position(|l| l.starts_with("--max-locks="))
        .unwrap();
    assert!(host < port && port < locks, "not in table order:\n{stdout}");
}

#[test]
fn startup_log_names_the_bound_port() {
    let server = Server::start(&[]);
    let port = server.addr().port();
    assert_ne!(port, 0);
    let lines = server.stderr_lines();
    let listening: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("listening on "))
        .collect();
    assert_eq!(listening.len(), 1, "{lines:?}");
    let line = listening[0];
    assert!(
        line.ends_with(&format!("listening on 127.0.0.1:{port} (tcp)")),
        "{line:?}"
    );
    assert!(line.contains("INFO"), "logged at info: {line:?}");
    assert_eq!(server.client().req("ping", "_", ""), "ok");
}
