//! `dflockctl top` against a real server: the live view under a
//! pseudo-terminal (`script(1)` from util-linux, which allocates one), one
//! plain snapshot into a pipe, and `--json` for scripts.

use crate::common;

use common::{Server, token_of};
use serde_json::Value;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A server where `hot` has a holder and one parked waiter, after a wait
/// that completed (so it is in `contention`), plus the clients keeping it so.
fn contended() -> (Server, Vec<common::Client>) {
    let s = Server::start(&[]);
    let mut a = s.client();
    let t = token_of(&a.req("l", "hot", "10 30"));
    let mut b = s.client();
    b.send_req("l", "hot", "10 30");
    a.wait_lock_waiters("hot", 1);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(a.req("r", "hot", &t), "ok");
    token_of(&b.line());
    let mut c = s.client();
    c.send_req("l", "hot", "20 30");
    a.wait_lock_waiters("hot", 1);
    (s, vec![a, b, c])
}

fn ctl() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dflockctl"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("DFLOCKD_") {
            cmd.env_remove(&name);
        }
    }
    cmd.stdin(Stdio::null());
    cmd
}

fn run(mut cmd: Command) -> (Output, Duration) {
    let t = Instant::now();
    let out = cmd.output().expect("run");
    (out, t.elapsed())
}

#[test]
fn a_pipe_gets_one_plain_snapshot() {
    let (s, _keep) = contended();
    let mut cmd = ctl();
    cmd.args(["--server", &s.addr().to_string(), "top"]);
    let (out, took) = run(cmd);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains('\x1b'), "escapes in a pipe: {text:?}");
    assert_eq!(text.matches("connections ").count(), 1, "{text}");
    assert!(text.contains("(average since start)"), "{text}");
    let row = text
        .lines()
        .find(|l| l.starts_with("hot "))
        .unwrap_or_else(|| panic!("no row for hot: {text}"));
    // KEY TYPE p99 p50 WAITERS HOLDER-AGE WAITS TOTAL
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!((cols[1], cols[4], cols[6]), ("lock", "1", "1"), "{row}");
    assert!(
        took < Duration::from_secs(5),
        "a snapshot waits for nothing"
    );
}

#[test]
fn json_is_one_parseable_line_per_server() {
    let (s, _keep) = contended();
    let mut cmd = ctl();
    cmd.args(["--server", &s.addr().to_string(), "top", "--json"]);
    let (out, _) = run(cmd);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    let f: Value = serde_json::from_str(text.trim()).expect("JSON");
    // The three clients above and top's own connection.
    assert_eq!(f["connections"].as_u64(), Some(4));
    let hot = &f["keys"][0];
    assert_eq!(hot["key"], "hot");
    assert_eq!(hot["waiters"].as_u64(), Some(1));
    assert!(hot["wait_p99_s"].as_f64().unwrap() >= 0.2);
    assert!(hot["holder_age_s"].as_f64().is_some());
    assert!(f["grants_per_s"].as_f64().is_some());
}

#[test]
fn a_terminal_gets_a_live_view_redrawn_every_interval() {
    let (s, _keep) = contended();
    // script(1) runs the command on a new pseudo-terminal and copies what
    // it writes; -e returns its exit status, /dev/null drops the typescript.
    let inner = format!(
        "{} --server {} top --iterations 2 --interval 1",
        env!("CARGO_BIN_EXE_dflockctl"),
        s.addr()
    );
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c", &inner, "/dev/null"])
        .stdin(Stdio::null())
        .env_remove("DFLOCKD_SERVERS");
    let (out, took) = run(cmd);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.matches("\x1b[H\x1b[2J").count(),
        2,
        "two frames: {text:?}"
    );
    assert_eq!(text.matches("\x1b[7mKEY").count(), 2, "{text:?}");
    assert!(text.contains("hot"), "{text:?}");
    // The second frame's rates cover the last interval, not the uptime.
    let second = text.rsplit("\x1b[H\x1b[2J").next().unwrap();
    assert!(!second.contains("average since start"), "{second:?}");
    assert!(
        took >= Duration::from_secs(1),
        "frames are an interval apart"
    );
}
