//! [`Raw`]: a bare `TcpStream` speaking HTTP by hand.

use super::common::READ_TIMEOUT;
use super::{Resp, find, parse_head};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

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

    /// Hangs up now: the FIN leaves before this returns. A plain drop only
    /// closes this process's descriptor, and while another test thread is
    /// spawning a process, the child holds a copy of every descriptor until
    /// its exec; the FIN then leaves later, after whatever this thread sends
    /// next. Tests that race a hang-up against another request use this.
    pub fn hang_up(self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
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
