//! Integration-test harness: runs the real `dflockd` binary and talks to it over
//! plain TCP, byte for byte.
//!
//! - [`Server`] spawns `dflockd --port 0` (plus the test's arguments), reads the
//!   bound addresses from the `listening on <addr> (<kind>)` start-up lines on
//!   standard error (never a startup sleep, never a fixed port), keeps every
//!   stderr line for assertions, and kills and reaps the process on `Drop`.
//! - [`Client`] is a blocking `TcpStream` with a 10 s read timeout, so a missing
//!   reply fails the test instead of hanging it. Replies are read line by line
//!   from its own buffer, so pipelined replies are never lost.
//! - [`Json`] is a tiny JSON reader for the `stats` document (the test suite
//!   adds no dependencies). Numbers keep their text, so 64-bit fences are exact.
//!
//! Every test starts its own server, so tests are independent and parallel-safe.
//! This module is shared by every test binary; each uses a different subset.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a server may take to log its `listening on` line.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Read timeout of every client socket: a reply that does not come fails the test.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Path of the server binary Cargo built for this test run.
pub fn server_bin() -> &'static str {
    env!("CARGO_BIN_EXE_dflockd")
}

/// Environment variables of the test process that would change the server's
/// configuration; they are removed from every child so runs are hermetic.
fn is_config_env(name: &OsStr) -> bool {
    let name = name.to_string_lossy();
    name.starts_with("DFLOCKD_")
        || name.starts_with("LISTEN_")
        || name.starts_with("WATCHDOG_")
        || name == "NOTIFY_SOCKET"
        || name == "RUST_LOG"
        || name == "JOURNAL_STREAM"
}

fn hermetic_command(args: &[&str], envs: &[(&str, &str)]) -> Command {
    hermetic_via(&[], args, envs)
}

/// The server command, run through `launcher` (a program and its arguments,
/// which end up exec'ing the server path and `args`) when it is not empty.
fn hermetic_via(launcher: &[&str], args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut cmd = match launcher.split_first() {
        Some((program, rest)) => {
            let mut cmd = Command::new(program);
            cmd.args(rest).arg(server_bin());
            cmd
        }
        None => Command::new(server_bin()),
    };
    for (name, _) in std::env::vars_os() {
        if is_config_env(&name) {
            cmd.env_remove(&name);
        }
    }
    cmd.args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd
}

/// Parses `listening on <addr> (<kind>)` out of a log line.
fn parse_listening(line: &str) -> Option<(String, SocketAddr)> {
    let rest = &line[line.find("listening on ")? + "listening on ".len()..];
    let (addr, kind) = rest.trim_end().split_once(" (")?;
    let kind = kind.strip_suffix(')')?;
    Some((kind.to_string(), addr.parse().ok()?))
}

/// Listener start-up lines: the channel fed by the stderr reader, and the
/// `(kind, address)` pairs received from it so far.
type Listeners = (Receiver<(String, SocketAddr)>, Vec<(String, SocketAddr)>);

/// A running `dflockd` process. Killed and reaped when dropped.
pub struct Server {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<Vec<String>>>,
    listeners: Mutex<Listeners>,
}

impl Server {
    /// Starts `dflockd --port 0 --log-level info <args>` and waits for its TCP
    /// listener. `--port` and `--log-level` are only added when `args` lacks them.
    pub fn start(args: &[&str]) -> Server {
        Server::start_env(args, &[])
    }

    /// As [`Server::start`], with extra environment variables for the child.
    pub fn start_env(args: &[&str], envs: &[(&str, &str)]) -> Server {
        Server::try_start_env(args, envs).unwrap_or_else(|e| panic!("{e}"))
    }

    /// As [`Server::start_env`], but a server that exits or never logs its TCP
    /// listener is an `Err` (with its stderr) instead of a panic.
    pub fn try_start_env(args: &[&str], envs: &[(&str, &str)]) -> Result<Server, String> {
        Server::try_start_via(&[], args, envs)
    }

    /// As [`Server::try_start_env`], with the server started by `launcher`
    /// (see `hermetic_via`), which must exec it in the same process.
    pub fn try_start_via(
        launcher: &[&str],
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> Result<Server, String> {
        let mut full: Vec<&str> = Vec::new();
        let has = |flag: &str| {
            args.iter()
                .any(|a| *a == flag || a.starts_with(&format!("{flag}=")))
        };
        if !has("--port") {
            full.extend(["--port", "0"]);
        }
        if !has("--log-level") && !has("--debug") {
            full.extend(["--log-level", "info"]);
        }
        full.extend_from_slice(args);

        let mut cmd = hermetic_via(launcher, &full, envs);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot spawn {}: {e}", server_bin()))?;

        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let pipe = child.stderr.take().expect("stderr is piped");
        let lines = Arc::clone(&stderr);
        thread::spawn(move || {
            for line in BufReader::new(pipe).split(b'\n') {
                let Ok(line) = line else { break };
                let line = String::from_utf8_lossy(&line).into_owned();
                let listener = parse_listening(&line);
                // Store the line first: whoever receives the address may
                // look for the line at once.
                lines.lock().unwrap().push(line);
                if let Some(listener) = listener {
                    let _ = tx.send(listener);
                }
            }
        });

        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let mut seen = Vec::new();
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((kind, addr)) if kind == "tcp" => {
                    seen.push((kind, addr));
                    break addr;
                }
                Ok(other) => seen.push(other),
                Err(err) => {
                    let _ = child.kill();
                    let status = child.wait().ok();
                    // Give the reader thread a moment to collect the last lines.
                    thread::sleep(Duration::from_millis(50));
                    let why = match err {
                        RecvTimeoutError::Timeout => "did not log its tcp listener in time",
                        RecvTimeoutError::Disconnected => "exited before listening",
                    };
                    return Err(format!(
                        "dflockd {full:?} {why} (status {status:?}); stderr:\n{}",
                        stderr.lock().unwrap().join("\n")
                    ));
                }
            }
        };
        Ok(Server {
            child,
            addr,
            stderr,
            listeners: Mutex::new((rx, seen)),
        })
    }

    /// Address of the main TCP listener.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Address of a listener of the given kind (`tcp`, `dreadlock`, `http`), from
    /// its start-up line; waits for that line up to [`STARTUP_TIMEOUT`].
    pub fn listener(&self, kind: &str) -> SocketAddr {
        let mut guard = self.listeners.lock().unwrap();
        let (rx, seen) = &mut *guard;
        if let Some((_, addr)) = seen.iter().find(|(k, _)| k == kind) {
            return *addr;
        }
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((k, addr)) => {
                    seen.push((k.clone(), addr));
                    if k == kind {
                        return addr;
                    }
                }
                Err(_) => panic!(
                    "no `listening on … ({kind})` line; stderr:\n{}",
                    self.stderr_lines().join("\n")
                ),
            }
        }
    }

    /// Address of the `--dreadlock-port` listener.
    pub fn dreadlock_addr(&self) -> SocketAddr {
        self.listener("dreadlock")
    }

    /// Opens a client on the main port.
    pub fn client(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Every line the server wrote to standard error so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits up to `timeout` for a stderr line containing `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.stderr_lines().into_iter().find(|l| l.contains(needle)) {
                return Some(line);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`TERM`, `INT`, `HUP`) with kill(1).
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill(1)");
        assert!(status.success(), "kill -{sig} {} failed", self.pid());
    }

    /// Waits up to `timeout` for the process to exit; `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the binary to completion (for flag and configuration tests) with a
/// hermetic environment plus `envs`; panics if it runs longer than 10 s.
pub fn run_server_cmd(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = hermetic_command(args, envs);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn dflockd");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_t = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("dflockd {args:?} did not exit within 10 s");
        }
        thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    }
}

/// A blocking protocol client with a 10 s read timeout.
pub struct Client {
    stream: TcpStream,
    pending: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        Client::try_connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"))
    }

    pub fn try_connect(addr: SocketAddr) -> io::Result<Client> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Client {
            stream,
            pending: Vec::new(),
        })
    }

    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Writes raw bytes (one `write_all`).
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("write {:?}: {e}", String::from_utf8_lossy(bytes)));
    }

    /// Writes raw bytes, returning the error instead of panicking (for sockets
    /// the server may already have closed).
    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Writes `cmd\nkey\narg\n` without reading the reply.
    pub fn send_req(&mut self, cmd: &str, key: &str, arg: &str) {
        self.send(format!("{cmd}\n{key}\n{arg}\n").as_bytes());
    }

    /// Writes `cmd\nkey\narg\n` and returns the reply line without its LF.
    pub fn req(&mut self, cmd: &str, key: &str, arg: &str) -> String {
        self.send_req(cmd, key, arg);
        self.line()
    }

    /// Shuts down the sending side (end of input for the server).
    pub fn shutdown_write(&self) {
        self.stream
            .shutdown(Shutdown::Write)
            .expect("shutdown(Write)");
    }

    pub fn set_read_timeout(&self, timeout: Duration) {
        self.stream.set_read_timeout(Some(timeout)).unwrap();
    }

    /// Reads one line including its LF; `Ok(None)` at end of stream with no
    /// partial line buffered. A partial line at end of stream is an error.
    pub fn try_line_raw(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(pos) = self.pending.iter().position(|&b| b == b'\n') {
                let rest = self.pending.split_off(pos + 1);
                return Ok(Some(std::mem::replace(&mut self.pending, rest)));
            }
            let mut buf = [0u8; 65536];
            match self.stream.read(&mut buf) {
                Ok(0) if self.pending.is_empty() => return Ok(None),
                Ok(0) => {
                    return Err(io::Error::new(
                        ErrorKind::UnexpectedEof,
                        format!(
                            "end of stream after a partial line {:?}",
                            String::from_utf8_lossy(&self.pending)
                        ),
                    ));
                }
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads one line including its terminator; panics on timeout or close.
    pub fn line_raw(&mut self) -> Vec<u8> {
        match self.try_line_raw() {
            Ok(Some(line)) => line,
            Ok(None) => panic!("connection closed while a reply line was expected"),
            Err(e) => panic!(
                "no reply line ({e}); buffered so far: {:?}",
                String::from_utf8_lossy(&self.pending)
            ),
        }
    }

    /// Reads one reply line and returns it without its LF (a CR before the LF
    /// is kept, so CRLF replies are visible).
    pub fn line(&mut self) -> String {
        let mut line = self.line_raw();
        line.pop();
        String::from_utf8(line).unwrap_or_else(|e| panic!("reply is not UTF-8: {e}"))
    }

    /// Asserts the server closes the connection (EOF or reset) within the read
    /// timeout without sending anything more.
    pub fn expect_closed(&mut self) {
        assert!(
            self.pending.is_empty(),
            "unexpected bytes before close: {:?}",
            String::from_utf8_lossy(&self.pending)
        );
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => panic!(
                    "expected close, got bytes {:?}",
                    String::from_utf8_lossy(&buf[..n])
                ),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                    ) =>
                {
                    return;
                }
                Err(e) => panic!("expected close, got {e}"),
            }
        }
    }

    /// Asserts that nothing arrives and the connection stays open for `d`.
    pub fn expect_nothing_for(&mut self, d: Duration) {
        assert!(
            self.pending.is_empty(),
            "unexpected buffered bytes: {:?}",
            String::from_utf8_lossy(&self.pending)
        );
        let deadline = Instant::now() + d;
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.stream.read(&mut buf) {
                Ok(0) => panic!("connection closed during a quiet period"),
                Ok(n) => panic!(
                    "expected silence, got {:?}",
                    String::from_utf8_lossy(&buf[..n])
                ),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("expected silence, got {e}"),
            }
        }
        self.stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    }

    /// `stats\n_\n\n`, parsed.
    pub fn stats(&mut self) -> Json {
        let reply = self.req("stats", "_", "");
        let json = reply
            .strip_prefix("ok ")
            .unwrap_or_else(|| panic!("stats reply {reply:?}"));
        Json::parse(json)
    }

    /// Waiters of the exclusive lock-space key `key` (0 when not listed).
    pub fn lock_waiters(&mut self, key: &str) -> u64 {
        self.stats()
            .entry("locks", key)
            .map_or(0, |e| e.get("waiters").u64())
    }

    /// Waiters of the semaphore `key` (0 when not listed).
    pub fn sem_waiters(&mut self, key: &str) -> u64 {
        self.stats()
            .entry("semaphores", key)
            .map_or(0, |e| e.get("waiters").u64())
    }

    /// Polls `stats` until the lock `key` has exactly `n` waiters.
    pub fn wait_lock_waiters(&mut self, key: &str, n: u64) {
        wait_until(&format!("{n} waiters on lock {key:?}"), || {
            self.lock_waiters(key) == n
        });
    }

    /// Polls `stats` until the semaphore `key` has exactly `n` waiters.
    pub fn wait_sem_waiters(&mut self, key: &str, n: u64) {
        wait_until(&format!("{n} waiters on semaphore {key:?}"), || {
            self.sem_waiters(key) == n
        });
    }
}

/// Polls `cond` every 5 ms for up to 10 s; panics naming `what` on timeout.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// The token of a grant reply (`ok <token> <lease>…` or `acquired <token> …`),
/// checked to be 32 lowercase hex characters.
pub fn token_of(reply: &str) -> String {
    let fields: Vec<&str> = reply.split(' ').collect();
    assert!(
        fields.len() >= 3 && (fields[0] == "ok" || fields[0] == "acquired"),
        "not a grant reply: {reply:?}"
    );
    assert_token_shape(fields[1]);
    fields[1].to_string()
}

/// Asserts `token` is exactly 32 lowercase hex characters.
pub fn assert_token_shape(token: &str) {
    assert!(
        token.len() == 32
            && token
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "token {token:?} is not 32 lowercase hex characters"
    );
}

/// The fence of a token: its first 16 hex characters.
pub fn fence_of(token: &str) -> u64 {
    u64::from_str_radix(&token[..16], 16).unwrap_or_else(|e| panic!("fence of {token:?}: {e}"))
}

/// Asserts `reply` is exactly `ok <token> <lease>` and returns the token.
pub fn expect_grant(reply: &str, lease: u64) -> String {
    let token = token_of(reply);
    assert_eq!(reply, format!("ok {token} {lease}"), "grant reply");
    token
}

/// A free TCP port on 127.0.0.1, for flags that cannot take 0 (e.g.
/// `--http-port`, where 0 means off). The port is bound and released at once,
/// so it must stay free until the server binds it. Two things could take it
/// meanwhile, and neither can:
/// - another test of this process (the suite runs 12 at a time): ports come
///   from one process-wide sequence, never handed out twice;
/// - an outgoing connection, which gets an ephemeral port (32768–60999 by
///   default): these ports are below that range, 20000–31999.
pub fn free_port() -> u16 {
    const BASE: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU64 = AtomicU64::new(0);
    // Start each process elsewhere in the span: test binaries of two
    // checkouts on one machine then rarely probe the same ports.
    let start = std::process::id() % SPAN;
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed) as u32;
        let port = (BASE + (start + n) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {BASE}..{}", BASE + SPAN);
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "dflockd-itest-{}-{tag}-{}-{nanos}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Seconds elapsed since `t` as f64 (for readable timing assertions).
pub fn secs_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

/// A parsed JSON value. Numbers keep their source text so 64-bit integers are exact.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// Parses one complete JSON document; panics (showing the input) if invalid.
    pub fn parse(text: &str) -> Json {
        let mut p = JsonParser {
            s: text.as_bytes(),
            i: 0,
        };
        let value = p.value();
        p.ws();
        match value {
            Some(v) if p.i == p.s.len() => v,
            _ => panic!("invalid JSON at byte {}: {text}", p.i),
        }
    }

    pub fn field(&self, name: &str) -> Option<&Json> {
        match self {
            Json::Obj(members) => members.iter().find(|(k, _)| k == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The member `name` of an object; panics if absent.
    pub fn get(&self, name: &str) -> &Json {
        self.field(name)
            .unwrap_or_else(|| panic!("no member {name:?} in {self:?}"))
    }

    pub fn arr(&self) -> &[Json] {
        match self {
            Json::Arr(items) => items,
            other => panic!("not an array: {other:?}"),
        }
    }

    pub fn u64(&self) -> u64 {
        match self {
            Json::Num(n) => n.parse().unwrap_or_else(|_| panic!("not a u64: {n}")),
            other => panic!("not a number: {other:?}"),
        }
    }

    pub fn f64(&self) -> f64 {
        match self {
            Json::Num(n) => n.parse().unwrap(),
            other => panic!("not a number: {other:?}"),
        }
    }

    pub fn str(&self) -> &str {
        match self {
            Json::Str(s) => s,
            other => panic!("not a string: {other:?}"),
        }
    }

    pub fn bool(&self) -> bool {
        match self {
            Json::Bool(b) => *b,
            other => panic!("not a boolean: {other:?}"),
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }

    /// In the array member `array` of this object, the element whose `key` is `key`.
    pub fn entry(&self, array: &str, key: &str) -> Option<&Json> {
        self.get(array)
            .arr()
            .iter()
            .find(|e| e.field("key").is_some_and(|k| k.str() == key))
    }

    /// The `key` members of the elements of the array member `array`.
    pub fn keys(&self, array: &str) -> Vec<String> {
        self.get(array)
            .arr()
            .iter()
            .map(|e| e.get("key").str().to_string())
            .collect()
    }

    /// `server.totals.<name>`.
    pub fn total(&self, name: &str) -> u64 {
        self.get("server").get("totals").get(name).u64()
    }
}

struct JsonParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn eat(&mut self, lit: &str) -> bool {
        if self.s[self.i..].starts_with(lit.as_bytes()) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Option<Json> {
        self.ws();
        match *self.s.get(self.i)? {
            b'n' => self.eat("null").then_some(Json::Null),
            b't' => self.eat("true").then_some(Json::Bool(true)),
            b'f' => self.eat("false").then_some(Json::Bool(false)),
            b'"' => self.string().map(Json::Str),
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.eat("]") {
                    return Some(Json::Arr(items));
                }
                loop {
                    items.push(self.value()?);
                    self.ws();
                    if self.eat("]") {
                        return Some(Json::Arr(items));
                    }
                    if !self.eat(",") {
                        return None;
                    }
                }
            }
            b'{' => {
                self.i += 1;
                let mut members = Vec::new();
                self.ws();
                if self.eat("}") {
                    return Some(Json::Obj(members));
                }
                loop {
                    self.ws();
                    let k = self.string()?;
                    self.ws();
                    if !self.eat(":") {
                        return None;
                    }
                    members.push((k, self.value()?));
                    self.ws();
                    if self.eat("}") {
                        return Some(Json::Obj(members));
                    }
                    if !self.eat(",") {
                        return None;
                    }
                }
            }
            b'-' | b'0'..=b'9' => {
                let start = self.i;
                while self.i < self.s.len()
                    && matches!(
                        self.s[self.i],
                        b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                    )
                {
                    self.i += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.i]).ok()?;
                text.parse::<f64>().ok()?;
                Some(Json::Num(text.to_string()))
            }
            _ => None,
        }
    }

    fn string(&mut self) -> Option<String> {
        if !self.eat("\"") {
            return None;
        }
        let mut out = Vec::new();
        loop {
            let b = *self.s.get(self.i)?;
            self.i += 1;
            match b {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    let e = *self.s.get(self.i)?;
                    self.i += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hex = std::str::from_utf8(self.s.get(self.i..self.i + 4)?).ok()?;
                            self.i += 4;
                            let mut code = u32::from_str_radix(hex, 16).ok()?;
                            if (0xD800..0xDC00).contains(&code) && self.eat("\\u") {
                                let hex =
                                    std::str::from_utf8(self.s.get(self.i..self.i + 4)?).ok()?;
                                self.i += 4;
                                let low = u32::from_str_radix(hex, 16).ok()?;
                                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                            }
                            char::from_u32(code)?
                        }
                        _ => return None,
                    };
                    let mut tmp = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                }
                _ => out.push(b),
            }
        }
    }
}

/// Closes `s` abortively: SO_LINGER {on, 0} makes close() send RST and
/// discard unsent data (std has no stable `set_linger`).
pub fn reset_stream(s: TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `s` owns a valid socket fd for the call; `linger` is a valid,
    // initialised `struct linger` and its size is the option length.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(
        rc,
        0,
        "setsockopt(SO_LINGER): {}",
        io::Error::last_os_error()
    );
    drop(s);
}

/// A real ClientHello, as rustls's client writes it for `localhost`.
pub fn client_hello(config: &std::sync::Arc<rustls::ClientConfig>) -> Vec<u8> {
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut conn = rustls::ClientConnection::new(config.clone(), name).expect("client");
    let mut hello = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut hello).expect("write hello");
    }
    hello
}
