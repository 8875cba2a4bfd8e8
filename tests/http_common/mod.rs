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

mod api;
mod raw;

// Each test binary uses a subset.
#[allow(unused_imports)]
pub use api::Api;
#[allow(unused_imports)]
pub use raw::Raw;

use super::common::{self, Json, Server, free_port};
use std::net::SocketAddr;
use std::thread;

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
        common::assert_token_shape(&token);
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
/// Runs `f` on a new thread (a long-poll, usually); join the handle for its result.
pub fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> thread::JoinHandle<T> {
    thread::spawn(f)
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
