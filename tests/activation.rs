//! systemd socket activation without systemd (config.md §8.2): a small
//! python3 launcher binds listening sockets, moves them to descriptors 3, 4,
//! 5, sets LISTEN_FDS / LISTEN_PID (its own pid, which exec keeps) /
//! LISTEN_FDNAMES, and execs the server, as systemd does.

use crate::common;

use common::{Server, TempDir, server_bin};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// argv: <specs> <pid: self|other> <port file> <server> <args…>. A spec is
/// `name` (a listening TCP socket) or `udp:name` / `idle:name` (a UDP socket,
/// a TCP socket that is not listening) — each named `name` in LISTEN_FDNAMES.
const LAUNCHER: &str = r#"
import os, socket, sys
specs, pid_mode, port_file, server = sys.argv[1].split(","), sys.argv[2], sys.argv[3], sys.argv[4]
held, names, ports = [], [], []
for spec in specs:
    shape, _, name = spec.rpartition(":")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if shape == "udp" else socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    if shape == "":
        s.listen(128)
    held.append(s)
    names.append(name)
    ports.append("%s %d" % (name, s.getsockname()[1]))
# Park every socket far above 3.. first, then move it into place.
high = [os.dup(s.fileno()) for s in held]
for i, fd in enumerate(high):
    os.dup2(fd, 3 + i, inheritable=True)
with open(port_file, "w") as f:
    f.write("\n".join(ports) + "\n")
env = dict(os.environ)
env["LISTEN_FDS"] = str(len(specs))
env["LISTEN_PID"] = str(os.getpid()) if pid_mode == "self" else "1"
env["LISTEN_FDNAMES"] = ":".join(names)
os.execve(server, [server] + sys.argv[5:], env)
"#;

/// The launcher as a command prefix (the test passes the server and its args).
fn launcher<'a>(dir: &'a TempDir, specs: &'a str, pid: &'a str) -> Vec<String> {
    let script = dir.join("launch.py");
    std::fs::write(&script, LAUNCHER).expect("write launcher");
    let ports = dir.join("ports");
    vec![
        "python3".into(),
        script.to_str().expect("utf-8").into(),
        specs.into(),
        pid.into(),
        ports.to_str().expect("utf-8").into(),
    ]
}

/// The ports the launcher bound, by name.
fn launcher_ports(path: &Path) -> HashMap<String, u16> {
    let text = std::fs::read_to_string(path).expect("port file");
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(name, port)| (name.to_owned(), port.parse().expect("port")))
        .collect()
}

fn ping(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    s.write_all(b"ping\n_\n\n").expect("send");
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).expect("reply");
    line
}

fn http_health(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).expect("status");
    line
}

fn start(dir: &TempDir, specs: &str, pid: &str, args: &[&str]) -> Server {
    let launch = launcher(dir, specs, pid);
    let launch: Vec<&str> = launch.iter().map(String::as_str).collect();
    Server::try_start_via(&launch, args, &[]).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_server_answers_on_inherited_sockets() {
    let dir = TempDir::new("activation-ok");
    // Names in another order than the listeners: matched by name, not place.
    // --http-port and --dreadlock-port stay 0: inherited sockets enable them.
    let server = start(&dir, "http,dreadlock,tcp", "self", &[]);
    let ports = launcher_ports(&dir.join("ports"));
    let at = |kind: &str| SocketAddr::from(([127, 0, 0, 1], ports[kind]));
    assert_eq!(
        server.addr(),
        at("tcp"),
        "the tcp listener is the inherited one"
    );
    assert_eq!(server.listener("dreadlock"), at("dreadlock"));
    assert_eq!(server.listener("http"), at("http"));
    assert_eq!(ping(at("tcp")), "ok\n");
    assert_eq!(ping(at("dreadlock")), "ok\n");
    assert!(http_health(at("http")).starts_with("HTTP/1.1 200"));
    let lines = server.stderr_lines();
    let inherited = lines
        .iter()
        .filter(|l| l.contains("inherited from the service manager"));
    assert_eq!(inherited.count(), 3, "{lines:#?}");
}

#[test]
fn one_inherited_socket_and_the_others_bound() {
    let dir = TempDir::new("activation-one");
    let server = start(&dir, "tcp", "self", &["--dreadlock-port", "0"]);
    let ports = launcher_ports(&dir.join("ports"));
    assert_eq!(server.addr().port(), ports["tcp"]);
    assert_eq!(ping(server.addr()), "ok\n");
}

#[test]
fn another_pid_is_ignored_and_the_server_binds() {
    let dir = TempDir::new("activation-other");
    let server = start(&dir, "tcp", "other", &[]);
    let ports = launcher_ports(&dir.join("ports"));
    // --port 0 was bound afresh; the launcher's socket is not used.
    assert_ne!(server.addr().port(), ports["tcp"]);
    assert_eq!(ping(server.addr()), "ok\n");
    let lines = server.stderr_lines();
    assert!(!lines.iter().any(|l| l.contains("inherited")), "{lines:#?}");
}

/// Runs the launcher to completion; returns (exit code, stderr).
fn refused(specs: &str) -> (Option<i32>, String) {
    let dir = TempDir::new("activation-bad");
    let launch = launcher(&dir, specs, "self");
    let out = Command::new(&launch[0])
        .args(&launch[1..])
        .arg(server_bin())
        .args(["--port", "0"])
        .env_remove("DFLOCKD_PORT")
        .stdin(Stdio::null())
        .output()
        .expect("run launcher");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_descriptors_refuse_start_with_78() {
    for (specs, why) in [
        ("udp:tcp", "not a stream socket"),
        ("idle:tcp", "not listening"),
        ("tcp,tcp", "used twice"),
        ("tcp,web", "unknown descriptor name \"web\""),
        ("tcp,http,dreadlock,tcp", "at most 3"),
    ] {
        let (code, stderr) = refused(specs);
        assert_eq!(code, Some(78), "{specs}: {stderr}");
        assert!(stderr.contains(why), "{specs}: {stderr}");
    }
}
