//! `dflock-load` against the real `dflockd` (and against fake servers that
//! answer wrongly or not at all): every mode runs clean and reports, wrong
//! replies and unreachable servers make it exit non-zero.

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
}

impl Server {
    fn start(extra: &[&str]) -> Server {
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
        let addr = loop {
            let line = lines
                .next()
                .expect("dflockd exited before listening")
                .expect("read dflockd stderr");
            if let Some(rest) = line.split("listening on ").nth(1) {
                if let Some(addr) = rest.strip_suffix(" (tcp)") {
                    break addr.to_string();
                }
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server { child, addr }
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
    let mut args = vec![
        "--server",
        server.addr.as_str(),
        "--connections",
        "4",
        "--rounds",
        "200",
    ];
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
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
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
}
