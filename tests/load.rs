//! `dflock-load` against the real `dflockd` (and against fake servers that
//! answer wrongly or not at all): every mode runs clean and reports, over the
//! TCP protocol and over the HTTP API; wrong replies and unreachable servers
//! make it exit non-zero.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const LOAD: &str = env!("CARGO_BIN_EXE_dflock-load");
const SERVER: &str = env!("CARGO_BIN_EXE_dflockd");

/// A `dflockd --port 0` child, killed on drop.
struct Server {
    child: Child,
    addr: String,
    /// The HTTP listener, when started with [`Server::start_http`].
    http: String,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        Server::spawn(extra, false).expect("dflockd exited before listening")
    }

    /// With an HTTP listener too. `--http-port 0` means "off", so a port the
    /// kernel just handed out is passed; should another process take it
    /// first, the server exits and another port is tried.
    fn start_http(extra: &[&str]) -> Server {
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port()
                .to_string();
            let mut args = vec!["--http-port", port.as_str()];
            args.extend_from_slice(extra);
            if let Some(s) = Server::spawn(&args, true) {
                return s;
            }
        }
        panic!("dflockd did not start with an HTTP listener in 5 tries");
    }

    /// Start and wait for the `listening on` lines; `None` if it exits first.
    fn spawn(extra: &[&str], http: bool) -> Option<Server> {
        let mut child = Command::new(SERVER)
            .args(["--port", "0"])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dflockd");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let (mut addr, mut http_addr) = (None, None);
        while addr.is_none() || (http && http_addr.is_none()) {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            };
            if let Some(rest) = line.split("listening on ").nth(1) {
                if let Some(a) = rest.strip_suffix(" (tcp)") {
                    addr = Some(a.to_string());
                } else if let Some(a) = rest.strip_suffix(" (http)") {
                    http_addr = Some(a.to_string());
                }
            }
        }
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Some(Server {
            child,
            addr: addr.unwrap_or_default(),
            http: http_addr.unwrap_or_default(),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn load(args: &[&str]) -> Output {
    Command::new(LOAD)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run dflock-load")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Run a mode twice, as text and as JSON; check the echo, the exit status
/// and the numbers; return the JSON report.
fn run_mode(server: &Server, mode_args: &[&str], expected_ops: u64) -> Value {
    run_at(&server.addr, mode_args, expected_ops)
}

/// [`run_mode`] over the HTTP API.
fn run_http(server: &Server, mode_args: &[&str], expected_ops: u64) -> Value {
    let mut args = vec!["--transport", "http"];
    args.extend_from_slice(mode_args);
    let v = run_at(&server.http, &args, expected_ops);
    assert_eq!(v["transport"], "http", "{v}");
    v
}

fn run_at(addr: &str, mode_args: &[&str], expected_ops: u64) -> Value {
    let mut args = vec!["--server", addr, "--connections", "4", "--rounds", "200"];
    args.extend_from_slice(mode_args);

    let text = load(&args);
    let out = stdout(&text);
    assert!(
        text.status.success(),
        "{args:?} failed:\n{out}\n{}",
        stderr(&text)
    );
    assert_eq!(
        out.lines().next(),
        Some(format!("$ {LOAD} {}", args.join(" ")).as_str())
    );
    assert!(
        out.contains(&format!("\nops          {expected_ops} (")),
        "{out}"
    );
    for field in [
        "latency µs   mean ",
        "errors       0\n",
        "timeouts     0\n",
        "client CPU   ",
    ] {
        assert!(out.contains(field), "missing {field:?} in:\n{out}");
    }

    args.push("--json");
    let json = load(&args);
    assert!(
        json.status.success(),
        "{args:?} failed:\n{}\n{}",
        stdout(&json),
        stderr(&json)
    );
    let v: Value = serde_json::from_slice(&json.stdout).expect("--json prints one JSON object");
    assert_eq!(v["command"], format!("{LOAD} {}", args.join(" ")));
    assert_eq!(v["ops"], expected_ops, "{v}");
    assert_eq!(v["errors"], 0, "{v}");
    assert_eq!(v["timeouts"], 0, "{v}");
    assert_eq!(v["passed"], true, "{v}");
    assert!(
        v["p99_us"].as_u64().unwrap() >= v["p50_us"].as_u64().unwrap(),
        "{v}"
    );
    assert!(
        v["max_us"].as_u64().unwrap() >= v["p999_us"].as_u64().unwrap(),
        "{v}"
    );
    assert!(v["ops_per_sec"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["cpu_us_per_op"].as_f64().unwrap() >= 0.0, "{v}");
    v
}

#[test]
fn lock_mode() {
    let s = Server::start(&[]);
    run_mode(&s, &["lock"], 800);
    run_mode(&s, &["--lease", "60", "lock"], 800);
}

#[test]
fn contended_mode() {
    let s = Server::start(&[]);
    run_mode(&s, &["contended"], 800);
}

#[test]
fn semaphore_mode() {
    let s = Server::start(&[]);
    let v = run_mode(&s, &["--limit", "2", "semaphore"], 800);
    assert_eq!(v["limit"], 2);
}

#[test]
fn kv_mode() {
    let s = Server::start(&[]);
    run_mode(&s, &["kv"], 800);
}

#[test]
fn counter_mode() {
    let s = Server::start(&[]);
    run_mode(&s, &["counter"], 800);
}

#[test]
fn pipeline_mode() {
    let s = Server::start(&[]);
    let v = run_mode(&s, &["pipeline", "--depth", "8"], 4 * 200 * 8);
    assert_eq!(v["depth"], 8);
}

#[test]
fn pubsub_mode_counts_deliveries() {
    let s = Server::start(&[]);
    let v = run_mode(&s, &["--subscribers", "3", "pubsub"], 800);
    assert_eq!(v["subscribers"], 3);
    assert_eq!(v["deliveries"], 3 * 800, "{v}");
    assert_eq!(v["expected_deliveries"], 3 * 800, "{v}");
    assert!(v["deliveries_per_sec"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["delivery_p99_us"].as_u64().unwrap() >= v["delivery_p50_us"].as_u64().unwrap());
}

/// `--threads-per-connection`: a blocking thread per connection (the
/// upstream clients' shape) runs the hot-key modes and pub/sub clean.
#[test]
fn thread_per_connection_client() {
    let s = Server::start(&[]);
    let tpc = "--threads-per-connection";
    let v = run_mode(&s, &[tpc, "contended"], 800);
    assert_eq!(v["client"], "thread-per-connection", "{v}");
    assert_eq!(v["threads"], 4, "{v}");
    run_mode(&s, &[tpc, "--limit", "2", "semaphore"], 800);
    let v = run_mode(&s, &[tpc, "--subscribers", "3", "pubsub"], 800);
    assert_eq!(v["threads"], 4 + 3, "{v}");
    assert_eq!(v["deliveries"], 3 * 800, "{v}");
}

/// `--rate`: each connection starts its ops on a schedule, so 2 × 20 ops at
/// 200 ops/s take about 0.2 s.
#[test]
fn rate_paces_the_run() {
    let s = Server::start(&[]);
    let o = load(&[
        "--server",
        &s.addr,
        "-c",
        "2",
        "-n",
        "20",
        "--threads-per-connection",
        "--rate",
        "200",
        "--json",
        "contended",
    ]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["ops"].as_u64(), v["errors"].as_u64()),
        (Some(40), Some(0))
    );
    assert_eq!(v["rate"], 200);
    let elapsed = v["elapsed_s"].as_f64().unwrap();
    assert!((0.17..3.0).contains(&elapsed), "{v}");
}

#[test]
fn http_lock_mode() {
    let s = Server::start_http(&[]);
    run_http(&s, &["--lease", "60", "lock"], 800);
    // Each worker deleted its session at the end.
    let stats = load_stats(&s);
    assert!(stats.contains("\"http_sessions\":0"), "{stats}");
}

#[test]
fn http_contended_mode() {
    let s = Server::start_http(&[]);
    run_http(&s, &["contended"], 800);
}

#[test]
fn http_other_modes() {
    let s = Server::start_http(&[]);
    run_http(&s, &["--limit", "2", "semaphore"], 800);
    run_http(&s, &["kv"], 800);
    run_http(&s, &["counter"], 800);
    run_http(&s, &["pipeline", "--depth", "8"], 4 * 200 * 8);
    let v = run_http(&s, &["--subscribers", "3", "pubsub"], 800);
    assert_eq!(v["deliveries"], 3 * 800, "{v}");
}

#[test]
fn http_auth() {
    let s = Server::start_http(&["--auth-token", "s3cret"]);
    let http = s.http.as_str();
    let o = load(&[
        "--transport",
        "http",
        "--server",
        http,
        "--auth-token",
        "s3cret",
        "-c",
        "2",
        "-n",
        "50",
        "--json",
        "lock",
    ]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["ops"].as_u64(), v["errors"].as_u64()),
        (Some(100), Some(0)),
        "{v}"
    );
    assert!(!stdout(&o).contains("s3cret"));
    // Without the token the session cannot be created: a setup failure.
    let o = load(&["--transport", "http", "--server", http, "-c", "2", "lock"]);
    assert_eq!(o.status.code(), Some(69), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("POST /v1/sessions failed: server replied 401"),
        "{}",
        stderr(&o)
    );
    // Without a session every request is an error of the run.
    let o = load(&[
        "--transport",
        "http",
        "--server",
        http,
        "-c",
        "2",
        "-n",
        "5",
        "kv",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("expected 204, got 401"),
        "{}",
        stdout(&o)
    );
}

/// The server's `stats` document, over the HTTP API.
fn load_stats(s: &Server) -> String {
    let mut c = std::net::TcpStream::connect(&s.http).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"GET /v1/stats HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).expect("read the response");
    out
}

#[test]
fn duration_mode_with_warmup() {
    let s = Server::start(&[]);
    let o = load(&[
        "--server",
        &s.addr,
        "-c",
        "2",
        "--duration",
        "0.5",
        "--warmup",
        "0.2",
        "--json",
        "counter",
    ]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["ops"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["rounds"], Value::Null);
    let elapsed = v["elapsed_s"].as_f64().unwrap();
    assert!((0.45..3.0).contains(&elapsed), "{v}");
}

#[test]
fn auth_token_is_sent_and_not_echoed() {
    let s = Server::start(&["--auth-token", "s3cret"]);
    let o = load(&[
        "--server",
        &s.addr,
        "-c",
        "2",
        "-n",
        "50",
        "--auth-token",
        "s3cret",
        "kv",
    ]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}\n{}", stderr(&o));
    assert!(out.starts_with(&format!(
        "$ {LOAD} --server {} -c 2 -n 50 --auth-token *** kv\n",
        s.addr
    )));
    assert!(!out.contains("s3cret"));
}

#[test]
fn missing_auth_is_reported_as_errors_and_fails() {
    let s = Server::start(&["--auth-token", "x"]);
    let o = load(&[
        "--server",
        &s.addr,
        "--connections",
        "4",
        "--rounds",
        "200",
        "lock",
    ]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("errors       4\n"), "{out}");
    assert!(
        out.contains(r#"reply to l: expected "ok <token> <lease>", got "error_auth""#),
        "{out}"
    );
    assert!(stderr(&o).contains("FAILED"), "{}", stderr(&o));

    let o = load(&[
        "--server", &s.addr, "-c", "4", "-n", "200", "--json", "lock",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["errors"], 4, "{v}");
    assert_eq!(v["passed"], false);
    assert!(
        v["error_samples"][0]
            .as_str()
            .unwrap()
            .contains("error_auth"),
        "{v}"
    );

    // A wrong token fails during setup, before anything is measured.
    let o = load(&["--server", &s.addr, "-c", "4", "--auth-token", "y", "lock"]);
    assert_eq!(o.status.code(), Some(69));
    assert!(stderr(&o).contains("auth failed"), "{}", stderr(&o));
}

/// A fake server: answers every three-line request with `reply`, or never.
fn fake_server(reply: Option<&'static [u8]>) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut lines = 0;
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    lines += buf[..n].iter().filter(|&&b| b == b'\n').count();
                    while lines >= 3 {
                        lines -= 3;
                        if let Some(r) = reply {
                            let _ = s.write_all(r);
                        }
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn unexpected_replies_are_errors() {
    let addr = fake_server(Some(b"ok\n"));
    let o = load(&["--server", &addr, "-c", "2", "-n", "10", "counter"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("errors       2\n"), "{out}");
    assert!(
        out.contains(r#"reply to incr: expected "ok <value>", got "ok""#),
        "{out}"
    );
}

#[test]
fn missing_replies_time_out() {
    let addr = fake_server(None);
    let o = load(&[
        "--server",
        &addr,
        "-c",
        "2",
        "-n",
        "10",
        "--reply-timeout",
        "0.3",
        "kv",
    ]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("no reply to kset within 300ms"), "{out}");
}

#[test]
fn lock_timeouts_fail_the_run() {
    let s = Server::start(&[]);
    // Try-locks (timeout 0) on one key: some find it held and get `timeout`.
    let o = load(&[
        "--server",
        &s.addr,
        "-c",
        "4",
        "-n",
        "200",
        "--timeout",
        "0",
        "--json",
        "contended",
    ]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["errors"], 0, "{v}");
    assert!(v["timeouts"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn unreachable_server_fails_clearly() {
    // Nothing listens there: free_port never hands a port out twice, and no
    // `--port 0` server or outgoing connection gets one of its range.
    let port = crate::common::free_port();
    let addr = format!("127.0.0.1:{port}");
    let start = std::time::Instant::now();
    let o = load(&["--server", &addr, "-c", "4", "-n", "200", "lock"]);
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(o.status.code(), Some(69));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("dflock-load: cannot connect to {addr}: ")),
        "{err}"
    );
    assert!(
        stdout(&o).starts_with("$ "),
        "the command line is still echoed"
    );
}

/// `-s/--server`, as in `dflockctl`; `--server=ADDR` and `-sADDR` too.
#[test]
fn server_flag_spellings() {
    let s = Server::start(&[]);
    let long_eq = format!("--server={}", s.addr);
    let short_glued = format!("-s{}", s.addr);
    for spelling in [
        vec!["-s", s.addr.as_str()],
        vec!["--server", s.addr.as_str()],
        vec![long_eq.as_str()],
        vec![short_glued.as_str()],
    ] {
        let mut args = spelling.clone();
        args.extend(["-c", "1", "-n", "10", "--json", "counter"]);
        let o = load(&args);
        assert_eq!(o.status.code(), Some(0), "{spelling:?}: {}", stderr(&o));
        let v: Value = serde_json::from_str(&stdout(&o)).expect("JSON report");
        assert_eq!(v["ops"], 10, "{spelling:?}: {v}");
        assert_eq!(v["passed"], true, "{spelling:?}: {v}");
    }
    let o = load(&["--help"]);
    assert!(
        stdout(&o).contains("-s, --server <HOST:PORT>"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn usage_errors() {
    let o = load(&["--depth", "4", "lock"]);
    assert_eq!(o.status.code(), Some(64));
    assert!(stderr(&o).contains("--depth only applies to pipeline mode"));
    let o = load(&["--rounds", "5", "--duration", "1", "lock"]);
    assert_eq!(o.status.code(), Some(64));
    let o = load(&["--connections", "0", "lock"]);
    assert_eq!(o.status.code(), Some(64));
    let o = load(&["--lease", "5", "kv"]);
    assert_eq!(o.status.code(), Some(64));
    assert!(stderr(&o).contains("--lease only applies to lock, contended and semaphore modes"));
    let o = load(&["--transport", "udp", "lock"]);
    assert_eq!(o.status.code(), Some(64));
    let o = load(&["--threads-per-connection", "-t", "2", "lock"]);
    assert_eq!(o.status.code(), Some(64));
    let o = load(&["--threads-per-connection", "-c", "4097", "lock"]);
    assert_eq!(o.status.code(), Some(64));
    assert!(stderr(&o).contains("at most 4096 connections"));
    let o = load(&["--rate", "100", "lock"]);
    assert_eq!(
        o.status.code(),
        Some(64),
        "--rate needs --threads-per-connection"
    );
}
