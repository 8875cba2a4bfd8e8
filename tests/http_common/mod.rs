//! HTTP side of the integration-test harness (http.md): starts `dflockd` with
//! its HTTP listener, and talks to it two ways.
//!
//! - [`Api`] wraps a `ureq` agent (a real HTTP/1.1 client with keep-alive
//!   pooling) for ordinary requests; 4xx/5xx are answers, not errors.
//! - [`Raw`] is a bare `TcpStream` for what a well-behaved client never sends:
//!   malformed, oversized, pipelined and trickled heads, and SSE framing read
//!   byte for byte. Every read has a 10 s timeout, so a missing answer fails
//!   the test instead of stalling it.
//!
//! `--http-port 0` means "off" (http.md §2.1), so [`start`] picks a free port
//! and retries with another one if it was taken in between.
//!
//! Used by every `tests/http_*.rs` binary; each uses a subset.
#![allow(dead_code)]

use crate::common::{Json, READ_TIMEOUT, Server, free_port};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

/// Starts `dflockd --http-port <free port> <args>`; returns the server and the
/// bound HTTP address (read from its `listening on … (http)` line).
pub fn start(args: &[&str]) -> (Server, SocketAddr) {
    let mut last = String::new();
    for _ in 0..8 {
        let port = free_port().to_string();
        let mut full = vec!["--http-port", &port];
        full.extend_from_slice(args);
        match Server::try_start_env(&full, &[]) {
            Ok(server) => {
                let http = server.listener("http");
                return (server, http);
            }
            // Most likely the port was taken meanwhile: try another one.
            Err(e) => last = e,
        }
    }
    panic!("could not start dflockd with an HTTP port: {last}");
}

/// A response read by [`Api`] or [`Raw`].
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    /// Header names as sent (case kept), values trimmed.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    /// The value of header `name` (case-insensitive); `None` when absent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn has_header(&self, name: &str) -> bool {
        self.header(name).is_some()
    }

    /// Number of header fields named `name`.
    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone())
            .unwrap_or_else(|e| panic!("body is not UTF-8 ({e}): {:?}", self.body))
    }

    pub fn json(&self) -> Json {
        Json::parse(&self.text())
    }

    /// Asserts the status and the exact body bytes.
    #[track_caller]
    pub fn expect(&self, status: u16, body: &str) {
        assert_eq!(
            (self.status, self.text().as_str()),
            (status, body),
            "response {self:?}"
        );
    }

    /// Asserts an error response (§4.4): this status and `error` code.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) {
        assert_eq!(
            self.status,
            status,
            "status of {self:?} (body {})",
            self.text()
        );
        assert_eq!(
            self.header("Content-Type"),
            Some("application/json"),
            "{self:?}"
        );
        let json = self.json();
        assert_eq!(json.get("error").str(), code, "error body {}", self.text());
    }

    /// Asserts `204` with no body and no `Content-Length`/`Content-Type`.
    #[track_caller]
    pub fn expect_204(&self) {
        assert_eq!(self.status, 204, "{self:?} body {:?}", self.text());
        assert!(self.body.is_empty(), "{self:?}");
        assert!(!self.has_header("Content-Length"), "{self:?}");
    }

    /// The token of a `200 {"status":"ok"|"acquired","token",…}` grant.
    #[track_caller]
    pub fn token(&self) -> String {
        assert_eq!(
            self.status,
            200,
            "not a grant: {} {}",
            self.status,
            self.text()
        );
        let json = self.json();
        let status = json.get("status").str();
        assert!(
            status == "ok" || status == "acquired",
            "not a grant: {}",
            self.text()
        );
        let token = json.get("token").str().to_string();
        crate::common::assert_token_shape(&token);
        token
    }

    /// Asserts the headers every response carries (§2.4).
    #[track_caller]
    pub fn check_common_headers(&self) {
        let date = self
            .header("Date")
            .unwrap_or_else(|| panic!("no Date: {self:?}"));
        assert!(
            date.ends_with(" GMT") && date.len() == 29,
            "Date {date:?} is not an IMF-fixdate"
        );
        assert_eq!(self.header("Server"), Some("dflockd/0.1.0"), "{self:?}");
        assert_eq!(self.header_count("Date"), 1);
    }
}

/// A `ureq` client for one server: keep-alive pool, 4xx/5xx returned as
/// responses, a 30 s overall timeout per call (longer than any wait a test
/// asks the server for).
#[derive(Clone)]
pub struct Api {
    agent: ureq::Agent,
    pub base: String,
    /// `Authorization` sent with every request, if any.
    pub bearer: Option<String>,
}

impl Api {
    pub fn new(addr: SocketAddr) -> Api {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build();
        Api {
            agent: config.into(),
            base: format!("http://{addr}"),
            bearer: None,
        }
    }

    /// A client whose requests all carry `Authorization: Bearer <token>`.
    pub fn with_bearer(addr: SocketAddr, token: &str) -> Api {
        Api {
            bearer: Some(format!("Bearer {token}")),
            ..Api::new(addr)
        }
    }

    fn finish(resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>, what: &str) -> Resp {
        let mut resp = resp.unwrap_or_else(|e| panic!("{what}: {e}"));
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        resp.body_mut()
            .as_reader()
            .read_to_end(&mut body)
            .unwrap_or_else(|e| panic!("{what}: reading the body: {e}"));
        Resp {
            status,
            headers,
            body,
        }
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Resp {
        self.get_with(path, &[])
    }

    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(b) = &self.bearer {
            req = req.header("Authorization", b);
        }
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        Api::finish(req.call(), &format!("GET {path}"))
    }

    pub fn head(&self, path: &str) -> Resp {
        let mut req = self.agent.head(format!("{}{path}", self.base));
        if let Some(b) = &self.bearer {
            req = req.header("Authorization", b);
        }
        Api::finish(req.call(), &format!("HEAD {path}"))
    }

    pub fn delete(&self, path: &str) -> Resp {
        self.delete_with(path, &[])
    }

    pub fn delete_with(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        let mut req = self.agent.delete(format!("{}{path}", self.base));
        if let Some(b) = &self.bearer {
            req = req.header("Authorization", b);
        }
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        Api::finish(req.call(), &format!("DELETE {path}"))
    }

    /// `POST path` with `body` (an empty string sends `Content-Length: 0`).
    pub fn post(&self, path: &str, body: &str) -> Resp {
        self.post_with(path, body, &[])
    }

    /// `POST path` with the session header.
    pub fn post_s(&self, path: &str, session: &str, body: &str) -> Resp {
        self.post_with(path, body, &[("X-Dflockd-Session", session)])
    }

    pub fn post_with(&self, path: &str, body: &str, headers: &[(&str, &str)]) -> Resp {
        let mut req = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/json");
        if let Some(b) = &self.bearer {
            req = req.header("Authorization", b);
        }
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        let what = format!("POST {path} {body}");
        if body.is_empty() {
            Api::finish(req.send_empty(), &what)
        } else {
            Api::finish(req.send(body), &what)
        }
    }

    /// `POST /v1/sessions` → the new session id (checked to be 32 hex chars).
    pub fn session(&self) -> String {
        let r = self.post("/v1/sessions", "");
        assert_eq!(r.status, 200, "create session: {} {}", r.status, r.text());
        let id = r.json().get("session_id").str().to_string();
        crate::common::assert_token_shape(&id);
        id
    }

    /// `POST /v1/locks/{key}` for `session` → the response.
    pub fn lock(&self, session: &str, key: &str, timeout_s: u64) -> Resp {
        self.post_s(
            &format!("/v1/locks/{key}"),
            session,
            &format!(r#"{{"acquire_timeout_s":{timeout_s}}}"#),
        )
    }

    /// Releases `token` of lock `key` and asserts `204`.
    #[track_caller]
    pub fn unlock(&self, session: &str, key: &str, token: &str) {
        self.post_s(
            &format!("/v1/locks/{key}/release"),
            session,
            &format!(r#"{{"token":"{token}"}}"#),
        )
        .expect_204();
    }

    /// `GET /v1/stats` as JSON.
    pub fn stats(&self) -> Json {
        let r = self.get("/v1/stats");
        assert_eq!(r.status, 200, "stats: {}", r.text());
        r.json()
    }

    /// Waiters on the exclusive lock `key` (0 when not listed).
    pub fn lock_waiters(&self, key: &str) -> u64 {
        self.stats()
            .entry("locks", key)
            .map_or(0, |e| e.get("waiters").u64())
    }

    /// Polls stats until the lock `key` has exactly `n` waiters.
    pub fn wait_lock_waiters(&self, key: &str, n: u64) {
        crate::common::wait_until(&format!("{n} waiters on lock {key:?}"), || {
            self.lock_waiters(key) == n
        });
    }
}

/// Runs `f` on a new thread (a long-poll, usually); join the handle for its result.
pub fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> thread::JoinHandle<T> {
    thread::spawn(f)
}

/// A raw HTTP connection: bytes out, responses parsed by hand.
pub struct Raw {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    pub fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn set_read_timeout(&self, t: Duration) {
        self.stream.set_read_timeout(Some(t)).unwrap();
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("write {:?}: {e}", String::from_utf8_lossy(bytes)));
    }

    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads more bytes into the buffer; `Ok(0)` at end of stream.
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 65536];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Bytes received and not consumed yet.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Reads until `needle` is buffered; returns everything up to and
    /// including it (consumed). Panics on timeout or end of stream.
    #[track_caller]
    pub fn read_until(&mut self, needle: &[u8]) -> Vec<u8> {
        loop {
            if let Some(i) = find(&self.buf, needle) {
                let rest = self.buf.split_off(i + needle.len());
                return std::mem::replace(&mut self.buf, rest);
            }
            match self.fill() {
                Ok(0) => panic!(
                    "end of stream before {:?}; got {:?}",
                    String::from_utf8_lossy(needle),
                    String::from_utf8_lossy(&self.buf)
                ),
                Ok(_) => {}
                Err(e) => panic!(
                    "no {:?} ({e}); got {:?}",
                    String::from_utf8_lossy(needle),
                    String::from_utf8_lossy(&self.buf)
                ),
            }
        }
    }

    /// Reads exactly `n` more bytes.
    #[track_caller]
    pub fn read_exact_n(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            match self.fill() {
                Ok(0) => panic!(
                    "end of stream after {} of {n} bytes: {:?}",
                    self.buf.len(),
                    String::from_utf8_lossy(&self.buf)
                ),
                Ok(_) => {}
                Err(e) => panic!("reading {n} bytes: {e}"),
            }
        }
        let rest = self.buf.split_off(n);
        std::mem::replace(&mut self.buf, rest)
    }

    /// Reads a response head (status line and headers); the body is left unread.
    #[track_caller]
    pub fn read_head(&mut self) -> Resp {
        let head = self.read_until(b"\r\n\r\n");
        parse_head(&head).unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&head)))
    }

    /// Reads one whole response to a non-`HEAD` request (body per
    /// `Content-Length`; none for `1xx`, `204` and event streams).
    #[track_caller]
    pub fn response(&mut self) -> Resp {
        self.response_to(false)
    }

    /// Reads one response; `head_request` says the request was `HEAD`.
    #[track_caller]
    pub fn response_to(&mut self, head_request: bool) -> Resp {
        let mut r = self.read_head();
        let len = match r.header("Content-Length") {
            _ if head_request => 0,
            Some(v) => v
                .parse::<usize>()
                .unwrap_or_else(|_| panic!("bad Content-Length {v:?}")),
            None => 0,
        };
        r.body = self.read_exact_n(len);
        r
    }

    /// Sends a request and reads its response.
    #[track_caller]
    pub fn roundtrip(&mut self, request: &[u8]) -> Resp {
        self.send(request);
        self.response()
    }

    /// Asserts the server closes the connection (EOF or reset) within the read
    /// timeout with no further bytes.
    #[track_caller]
    pub fn expect_closed(&mut self) {
        let start = Instant::now();
        loop {
            match self.fill() {
                Ok(0) => break,
                Ok(_) => {}
                Err(e)
                    if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) =>
                {
                    break;
                }
                Err(e) => panic!(
                    "connection not closed after {:?} ({e}); buffered {:?}",
                    start.elapsed(),
                    String::from_utf8_lossy(&self.buf)
                ),
            }
        }
        assert!(
            self.buf.is_empty(),
            "bytes before the close: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
    }

    /// Asserts nothing arrives for `d` (the connection stays open and silent).
    #[track_caller]
    pub fn expect_silence(&mut self, d: Duration) {
        self.set_read_timeout(d);
        let r = self.fill();
        self.set_read_timeout(READ_TIMEOUT);
        match r {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Ok(0) => panic!("connection closed during a quiet period"),
            Ok(_) => panic!(
                "expected silence, got {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
            Err(e) => panic!("expected silence, got {e}"),
        }
        assert!(
            self.buf.is_empty(),
            "unexpected bytes {:?}",
            String::from_utf8_lossy(&self.buf)
        );
    }

    /// Reads the next SSE event (`event: <name>\ndata: <json>\n\n`), skipping
    /// comments (`:ping`); returns `(name, data)`.
    #[track_caller]
    pub fn event(&mut self) -> (String, String) {
        loop {
            let frame = self.read_until(b"\n\n");
            let frame = String::from_utf8(frame).expect("SSE frame is UTF-8");
            if frame.starts_with(':') {
                continue;
            }
            let mut lines = frame.trim_end_matches('\n').split('\n');
            let name = lines
                .next()
                .and_then(|l| l.strip_prefix("event: "))
                .unwrap_or_else(|| panic!("no event line in {frame:?}"));
            let data = lines
                .next()
                .and_then(|l| l.strip_prefix("data: "))
                .unwrap_or_else(|| panic!("no data line in {frame:?}"));
            assert!(lines.next().is_none(), "extra lines in {frame:?}");
            return (name.to_string(), data.to_string());
        }
    }
}

/// Position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses `HTTP/1.1 NNN reason\r\n(name: value\r\n)*\r\n`, strictly: the
/// status line must be HTTP/1.1 with a 3-digit code and a space after it, and
/// every line must end with CRLF.
pub fn parse_head(head: &[u8]) -> Result<Resp, String> {
    let text = std::str::from_utf8(head).map_err(|e| format!("head is not UTF-8: {e}"))?;
    let text = text
        .strip_suffix("\r\n\r\n")
        .ok_or("head does not end with CRLF CRLF")?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().ok_or("empty head")?;
    let status = status_code(status_line.as_bytes())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut headers = Vec::new();
    for line in lines {
        if line.contains('\n') || line.contains('\r') {
            return Err(format!("bare CR or LF in header line {line:?}"));
        }
        let (n, v) = line
            .split_once(':')
            .ok_or_else(|| format!("header line without a colon: {line:?}"))?;
        if n.is_empty() || n.contains(' ') {
            return Err(format!("bad header name in {line:?}"));
        }
        headers.push((n.to_string(), v.trim().to_string()));
    }
    Ok(Resp {
        status,
        headers,
        body: Vec::new(),
    })
}

/// The status of a line starting `HTTP/1.1 NNN ` (NNN in 100..=599), if it does.
pub fn status_code(line: &[u8]) -> Option<u16> {
    let rest = line.strip_prefix(b"HTTP/1.1 ")?;
    if rest.len() < 4 || rest[3] != b' ' || !rest[..3].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code = std::str::from_utf8(&rest[..3]).ok()?.parse().ok()?;
    (100..=599).contains(&code).then_some(code)
}

/// `curl` on this machine, if any (SSE tests that shell out skip without it).
pub fn curl_available() -> bool {
    std::process::Command::new("curl")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A minimal request: `<method> <target> HTTP/1.1`, the extra header lines
/// given, `Content-Length` when `body` is not empty.
pub fn request(method: &str, target: &str, headers: &[&str], body: &str) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\nHost: t\r\n");
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    if !body.is_empty() {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    out.push_str(body);
    out.into_bytes()
}

/// VmRSS of a process in KiB, from `/proc/<pid>/status`.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}
