//! The `dflockctl` binary against the real server: exit statuses, the `lock` runner
//! (status pass-through, timeout, loss), the one-shot commands and the streams.

use crate::common;

use common::{Server, TempDir, wait_until};
use dflockd::client::Client;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Longest any single dflockctl run may take before the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(20);

/// `dflockctl` with a hermetic environment, talking to `addr`.
fn ctl(addr: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dflockctl"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("DFLOCKD_") {
            cmd.env_remove(&name);
        }
    }
    cmd.arg("--server").arg(addr).stdin(Stdio::null());
    cmd
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs to completion (killing it after `RUN_LIMIT`).
fn run(mut cmd: Command) -> Run {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dflockctl");
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let status = wait_with_limit(&mut child, RUN_LIMIT);
    Run {
        code: status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut p) = pipe {
            p.read_to_string(&mut s).ok();
        }
        s
    })
}

fn wait_with_limit(child: &mut Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status.code();
        }
        if Instant::now() >= deadline {
            child.kill().ok();
            child.wait().ok();
            panic!("dflockctl did not finish within {limit:?}");
        }
        thread::sleep(Duration::from_millis(10));
    }
}

fn ok(r: &Run) -> &str {
    assert_eq!(
        r.code,
        Some(0),
        "stdout {:?} stderr {:?}",
        r.stdout,
        r.stderr
    );
    &r.stdout
}

#[test]
fn lock_returns_the_command_status() {
    let server = Server::start(&[]);
    let addr = server.addr().to_string();
    let mut cmd = ctl(&addr);
    cmd.args(["lock", "k", "--", "sh", "-c", "exit 7"]);
    assert_eq!(run(cmd).code, Some(7));

    // While the command runs the lock is held: a nested try gets status 1.
    let mut cmd = ctl(&addr);
    cmd.args(["lock", "k", "--", "sh", "-c"])
        .arg("\"$CTL\" --server \"$ADDR\" lock k --timeout 0 -- true; echo nested=$?")
        .env("CTL", env!("CARGO_BIN_EXE_dflockctl"))
        .env("ADDR", &addr);
    let r = run(cmd);
    assert_eq!(ok(&r).trim(), "nested=1");
    // And released afterwards.
    let mut cmd = ctl(&addr);
    cmd.args(["lock", "k", "--timeout", "0", "--", "true"]);
    ok(&run(cmd));
}

#[test]
fn lock_held_elsewhere_times_out_with_status_1() {
    let server = Server::start(&[]);
    let addr = server.addr().to_string();
    let client = Client::single(&addr).expect("client");
    let _held = client
        .lock("busy")
        .acquire(Duration::from_secs(1))
        .expect("hold");
    let start = Instant::now();
    let mut cmd = ctl(&addr);
    cmd.args(["lock", "busy", "--timeout", "1", "--", "true"]);
    let r = run(cmd);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("not acquired"), "{}", r.stderr);
    assert!(start.elapsed() >= Duration::from_millis(950));

    // A semaphore with a free permit is a different resource.
    let _permit = client
        .semaphore("busy", 2)
        .acquire(Duration::from_secs(1))
        .expect("permit");
    let mut cmd = ctl(&addr);
    cmd.args([
        "lock",
        "busy",
        "--semaphore",
        "2",
        "--timeout",
        "0",
        "--",
        "true",
    ]);
    ok(&run(cmd));
}

#[test]
fn lost_lock_signals_the_command() {
    let server = Server::start(&[]);
    let addr = server.addr().to_string();
    let mut cmd = ctl(&addr);
    // The trap proves the command got SIGTERM; the lease of 2 s renews every 1 s.
    cmd.args(["lock", "doomed", "--lease", "2", "--", "sh", "-c"])
        .arg("trap 'kill $pid; echo got-term; exit 0' TERM; sleep 10 & pid=$!; echo started; wait")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    assert_eq!(lines.next().expect("a line").expect("read"), "started");
    // Killing the server breaks the holding connection: the next renewal fails.
    drop(server);
    let code = wait_with_limit(&mut child, Duration::from_secs(10));
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .ok();
    assert_eq!(code, Some(4), "stderr {err:?}");
    assert_eq!(rest, ["got-term"], "stderr {err:?}");
    assert!(err.contains("lost"), "{err}");
}

#[test]
fn elect_runs_the_command_while_leader() {
    let server = Server::start(&[]);
    let addr = server.addr().to_string();
    let mut cmd = ctl(&addr);
    cmd.args([
        "elect", "leader", "--lease", "5", "--", "sh", "-c", "exit 3",
    ]);
    assert_eq!(run(cmd).code, Some(3));
    let client = Client::single(&addr).expect("client");
    let _leader = client
        .election("leader")
        .campaign(Duration::ZERO)
        .expect("resigned afterwards");
    let mut cmd = ctl(&addr);
    cmd.args(["elect", "leader", "--timeout", "0", "--", "true"]);
    assert_eq!(run(cmd).code, Some(1));
}

#[test]
fn kv_counter_and_list_roundtrips() {
    let server = Server::start(&[]);
    let addr = server.addr().to_string();
    let call = |args: &[&str]| {
        let mut cmd = ctl(&addr);
        cmd.args(args);
        run(cmd)
    };
    ok(&call(&["kv", "set", "greeting", "hello world"]));
    assert_eq!(ok(&call(&["kv", "get", "greeting"])), "hello world\n");
    assert_eq!(call(&["kv", "get", "missing"]).code, Some(1));
    assert_eq!(call(&["kv", "cas", "greeting", "nope", "x"]).code, Some(1));
    ok(&call(&["kv", "cas", "greeting", "hello world", "bonjour"]));
    ok(&call(&["kv", "cas", "fresh", "", "first", "--ttl", "30"]));
    ok(&call(&["kv", "del", "greeting"]));
    assert_eq!(call(&["kv", "get", "greeting"]).code, Some(1));

    assert_eq!(ok(&call(&["counter", "incr", "hits"])), "1\n");
    assert_eq!(ok(&call(&["counter", "incr", "hits", "41"])), "42\n");
    assert_eq!(ok(&call(&["counter", "decr", "hits", "-8"])), "50\n");
    ok(&call(&["counter", "set", "hits", "-3"]));
    assert_eq!(ok(&call(&["counter", "get", "hits"])), "-3\n");
    ok(&call(&["counter", "set", "hits", &i64::MAX.to_string()]));
    assert_eq!(
        call(&["counter", "incr", "hits"]).code,
        Some(3),
        "overflow is refused"
    );

    assert_eq!(ok(&call(&["list", "push", "jobs", "a", "b c"])), "2\n");
    assert_eq!(ok(&call(&["list", "push", "jobs", "--left", "z"])), "3\n");
    assert_eq!(ok(&call(&["list", "range", "jobs"])), "z\na\nb c\n");
    assert_eq!(ok(&call(&["list", "len", "jobs"])), "3\n");
    assert_eq!(ok(&call(&["list", "pop", "jobs", "--right"])), "b c\n");
    assert_eq!(ok(&call(&["list", "pop", "jobs"])), "z\n");
    assert_eq!(ok(&call(&["list", "pop", "jobs", "--timeout", "1"])), "a\n");
    assert_eq!(call(&["list", "pop", "jobs"]).code, Some(1));

    assert_eq!(
        ok(&call(&["signal", "nobody.listens", "hi", "there"])),
        "0\n"
    );
    assert!(ok(&call(&["ping"])).starts_with(&format!("{addr} ok ")));
}

#[test]
fn stats_json_parses_and_the_table_renders() {
    let server = Server::start(&[]);
    let addr = server.addr().to_string();
    let client = Client::single(&addr).expect("client");
    let _held = client
        .lock("shown")
        .acquire(Duration::from_secs(1))
        .expect("hold");
    let mut cmd = ctl(&addr);
    cmd.args(["stats", "--json"]);
    let r = run(cmd);
    let doc: serde_json::Value = serde_json::from_str(ok(&r).trim()).expect("one JSON document");
    assert_eq!(doc["locks"][0]["key"], "shown");
    assert!(doc["server"]["version"].is_string());

    let mut cmd = ctl(&addr);
    cmd.arg("stats");
    let r = run(cmd);
    let text = ok(&r);
    assert!(
        text.starts_with(&format!("server {addr}: version ")),
        "{text}"
    );
    assert!(text.contains("\nlocks (1)\n"), "{text}");
    assert!(
        text.lines().any(|l| l.trim_start().starts_with("shown ")),
        "{text}"
    );
}

#[test]
fn listen_and_watch_print_as_events_arrive() {
    let server = Server::start(&[]);
    let addr = server.addr().to_string();
    let client = Client::single(&addr).expect("client");
    let spawn = |args: &[&str]| {
        let mut cmd = ctl(&addr);
        cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::null());
        let mut child = cmd.spawn().expect("spawn");
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        (child, rx)
    };
    let (mut listener, signals) = spawn(&["listen", "orders.*"]);
    let (mut watcher, events) = spawn(&["watch", "orders.>"]);
    let mut raw = server.client();
    wait_until("listen and watch registered", || {
        let stats = raw.stats();
        !stats.get("signal_channels").arr().is_empty()
            && !stats.get("watch_channels").arr().is_empty()
    });
    let mut s = client.session();
    assert_eq!(
        s.signal("orders.created", "hello  world").expect("signal"),
        1
    );
    s.kv_set("orders.42", "paid").expect("kset");
    let line = signals
        .recv_timeout(Duration::from_secs(5))
        .expect("a signal line");
    assert_eq!(line, "orders.created hello  world");
    let line = events
        .recv_timeout(Duration::from_secs(5))
        .expect("an event line");
    assert_eq!(line, "kset orders.42");
    for child in [&mut listener, &mut watcher] {
        child.kill().ok();
        child.wait().ok();
    }
}

#[test]
fn environment_and_auth_token() {
    let server = Server::start(&["--auth-token", "s3cret"]);
    let addr = server.addr().to_string();
    let dir = TempDir::new("dflockctl-token");
    let file = dir.join("token");
    std::fs::write(&file, "s3cret\n").expect("write token file");

    let mut cmd = ctl("127.0.0.1:1");
    cmd.arg("ping")
        .env("DFLOCKD_AUTH_TOKEN", "s3cret")
        .env("DFLOCKD_SERVERS", &addr);
    // --server on the command line wins over DFLOCKD_SERVERS.
    assert_eq!(run(cmd).code, Some(3));

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dflockctl"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("DFLOCKD_") {
            cmd.env_remove(&name);
        }
    }
    cmd.args(["kv", "set", "k", "v"])
        .env("DFLOCKD_SERVERS", format!("{addr},"))
        .env("DFLOCKD_AUTH_TOKEN", "s3cret");
    ok(&run(cmd));

    let mut cmd = ctl(&addr);
    cmd.args(["kv", "get", "k", "--auth-token-file"]).arg(&file);
    assert_eq!(ok(&run(cmd)), "v\n");

    let mut cmd = ctl(&addr);
    cmd.args(["ping"]);
    let r = run(cmd);
    assert_eq!(r.code, Some(3), "no token: refused");
    assert!(r.stderr.contains("error_auth"), "{}", r.stderr);
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["lock", "k"][..],
        &["lock", "k", "true"],
        &["bogus"],
        &["kv"],
        &["lock", "k", "--lease", "0", "--", "true"],
        &["lock", "k", "--signal", "FOO", "--", "true"],
        &["kv", "set", "bad key", "v"],
    ] {
        let mut cmd = ctl("127.0.0.1:1");
        cmd.args(args);
        let r = run(cmd);
        assert_eq!(r.code, Some(2), "{args:?}: {}", r.stderr);
    }
    let mut cmd = ctl("127.0.0.1:1");
    cmd.arg("--help");
    let r = run(cmd);
    assert!(ok(&r).contains("Exit status:"), "{}", r.stdout);
}

/// clap prints `[env: NAME=<value>]` for a variable whose value is not hidden, so an
/// unset `DFLOCKD_SERVERS` used to show as `[env: DFLOCKD_SERVERS=]`, as if it were set
/// to nothing. Every variable is named without a value, set or not (tokens must never
/// be echoed anyway).
#[test]
fn help_names_variables_without_values() {
    for servers in [None, Some(""), Some("10.9.8.7:6388")] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dflockctl"));
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("DFLOCKD_") {
                cmd.env_remove(&name);
            }
        }
        if let Some(v) = servers {
            cmd.env("DFLOCKD_SERVERS", v);
        }
        cmd.env("DFLOCKD_AUTH_TOKEN", "s3cret").arg("--help");
        let r = run(cmd);
        let help = ok(&r);
        for var in [
            "DFLOCKD_SERVERS",
            "DFLOCKD_AUTH_TOKEN",
            "DFLOCKD_AUTH_TOKEN_FILE",
        ] {
            assert!(
                help.contains(&format!("[env: {var}]")),
                "{servers:?}: {var} not named plainly in:\n{help}"
            );
        }
        assert!(!help.contains("DFLOCKD_SERVERS="), "{servers:?}:\n{help}");
        assert!(!help.contains("s3cret"), "the token leaked:\n{help}");
        assert!(!help.contains("10.9.8.7"), "{help}");
    }
}

#[test]
fn unreachable_server_exits_3() {
    for args in [
        &["ping"][..],
        &["kv", "get", "k"],
        &["lock", "k", "--", "true"],
        &["stats"],
    ] {
        let mut cmd = ctl("127.0.0.1:1");
        cmd.args(args);
        let r = run(cmd);
        assert_eq!(r.code, Some(3), "{args:?}: {}", r.stderr);
    }
}

#[test]
fn a_command_that_cannot_start_exits_127() {
    let server = Server::start(&[]);
    let addr = server.addr().to_string();
    let mut cmd = ctl(&addr);
    cmd.args(["lock", "k", "--", "/nonexistent/dflockctl-test-command"]);
    assert_eq!(run(cmd).code, Some(127));
    // The lock was released.
    let mut cmd = ctl(&addr);
    cmd.args(["lock", "k", "--timeout", "0", "--", "true"]);
    ok(&run(cmd));
}

#[test]
fn man_page_names_every_subcommand_and_flag() {
    let man = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/man/dflockctl.1"))
        .expect("man/dflockctl.1");
    let help = |args: &[&str]| {
        let mut cmd = ctl("127.0.0.1:1");
        cmd.args(args).arg("--help");
        let r = run(cmd);
        ok(&r).to_owned()
    };
    let top = help(&[]);
    let commands: Vec<String> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() >= 10, "{commands:?}");
    let mut pages = vec![top.clone()];
    for c in &commands {
        pages.push(help(&[c]));
    }
    for sub in [
        ["kv", "set"],
        ["kv", "cas"],
        ["list", "push"],
        ["list", "pop"],
    ] {
        pages.push(help(&sub));
    }
    for c in &commands {
        assert!(
            man.contains(&format!(".B {c}\n")) || man.contains(&format!(".BI \"{c} ")),
            "command {c} not in the man page"
        );
    }
    for page in &pages {
        for word in page.split(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '-')) {
            let Some(flag) = word.strip_prefix("--").filter(|f| !f.is_empty()) else {
                continue;
            };
            if flag == "help" || flag == "version" {
                continue;
            }
            let roff = format!("\\-\\-{}", flag.replace('-', "\\-"));
            assert!(man.contains(&roff), "--{flag} not in the man page");
        }
    }
}
