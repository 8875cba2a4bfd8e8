//! One blocking TCP connection speaking the three-line protocol (protocol.md §2).
//!
//! `Conn::request` writes `<cmd>\n<key>\n<arg>\n` and reads lines until the reply:
//! push frames (`sig `, `watch `, `leader `) that arrive first are kept in a small
//! bounded queue (`take_pushes`) instead of being mistaken for the reply. After any
//! socket error, read timeout or unparsable line the connection is marked broken —
//! its replies could be out of step — and every later request fails with `Closed`.
//! With [`ClientOptions::tls`] set the bytes go through TLS (`stream.rs`); nothing
//! else changes.

use super::ClientOptions;
use super::error::{Error, Result};
use super::reply::{Push, expect_bare_ok, parse_push};
use super::stream::Stream;
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Longest reply line accepted. Replies have no protocol limit (`stats`, `lrange`);
/// this only stops a broken peer from growing memory without bound.
pub const MAX_REPLY_BYTES: usize = 64 * 1024 * 1024;
/// Longest key the server accepts (protocol.md §3.1); longer ones would close the
/// connection, so they are refused before sending.
pub const MAX_KEY_BYTES: usize = 256;
/// Push frames kept while waiting for a reply on a non-subscriber connection.
const MAX_KEPT_PUSHES: usize = 256;
/// Read timeouts above this are treated as "no timeout" (some platforms reject huge
/// socket timeouts; a blocking call with a timeout this long waits anyway).
const MAX_SOCKET_TIMEOUT: Duration = Duration::from_secs(30 * 24 * 3600);

/// A blocking connection to one server.
pub struct Conn {
    addr: String,
    reader: BufReader<Stream>,
    writer: Stream,
    io_timeout: Option<Duration>,
    broken: bool,
    pushes: VecDeque<Push>,
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("addr", &self.addr)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl Conn {
    /// Connects to `addr` (`host:port`) with the options' connect timeout, applies the
    /// IO timeout, completes the TLS handshake when TLS is set, and authenticates
    /// first when an auth token is set.
    ///
    /// Errors: `Io` for resolve/connect failures and TLS handshake failures (an
    /// untrusted or expired certificate, a name mismatch), `Auth` when the token is
    /// refused.
    pub fn connect(addr: &str, opts: &ClientOptions) -> Result<Conn> {
        let sock = connect_stream(addr, opts.connect_timeout)?;
        sock.set_nodelay(true)?;
        sock.set_write_timeout(opts.io_timeout)?;
        // The handshake is bounded by the connect timeout, the rest by the IO timeout.
        let handshake_limit = (!opts.connect_timeout.is_zero()).then_some(opts.connect_timeout);
        sock.set_read_timeout(handshake_limit.or(opts.io_timeout))?;
        let stream = Stream::open(sock, addr, opts.tls.as_ref())?;
        stream.set_read_timeout(opts.io_timeout)?;
        let writer = stream.try_clone()?;
        let mut conn = Conn {
            addr: addr.to_owned(),
            reader: BufReader::new(stream),
            writer,
            io_timeout: opts.io_timeout,
            broken: false,
            pushes: VecDeque::new(),
        };
        if let Some(token) = &opts.auth_token {
            let token = token.trim_matches([' ', '\t']);
            let reply = conn.request("auth", "_", token)?;
            expect_bare_ok(&reply)?;
        }
        Ok(conn)
    }

    /// The address this connection was opened to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends one request and returns its reply line (without the LF), whatever its
    /// status word. The read waits at most the IO timeout.
    ///
    /// Errors: `Invalid` (nothing sent) when a line cannot be carried; `Io`,
    /// `Protocol` or `Closed` when the connection failed (it is then broken).
    pub fn request(&mut self, cmd: &str, key: &str, arg: &str) -> Result<String> {
        self.request_timed(cmd, key, arg, self.io_timeout)
    }

    /// As `request`, for a blocking command whose server-side timeout is `wait`: the
    /// read waits up to the IO timeout plus `wait`.
    pub fn request_wait(
        &mut self,
        cmd: &str,
        key: &str,
        arg: &str,
        wait: Duration,
    ) -> Result<String> {
        let limit = self.io_timeout.map(|t| t.saturating_add(wait));
        self.request_timed(cmd, key, arg, limit)
    }

    /// Push frames that arrived while this connection waited for replies, oldest
    /// first (at most 256 are kept; older ones are dropped).
    pub fn take_pushes(&mut self) -> Vec<Push> {
        self.pushes.drain(..).collect()
    }

    /// True when the connection can carry another request: not broken, and nothing
    /// unsolicited is waiting to be read. A server closes idle connections with a
    /// final `error` line (protocol.md §2.8); that line or the close shows up here, so
    /// a cached connection can be replaced before it answers the wrong request.
    pub fn is_reusable(&mut self) -> bool {
        if self.broken || !self.reader.buffer().is_empty() {
            return false;
        }
        if !self.reader.get_ref().is_quiet() {
            self.broken = true;
        }
        !self.broken
    }

    fn request_timed(
        &mut self,
        cmd: &str,
        key: &str,
        arg: &str,
        limit: Option<Duration>,
    ) -> Result<String> {
        let bytes = encode_request(cmd, key, arg)?;
        if self.broken {
            return Err(Error::Closed);
        }
        let result = self.exchange(&bytes, limit);
        if matches!(&result, Err(e) if e.is_connection_error()) {
            self.broken = true;
        }
        if let Ok(line) = &result {
            if line == "error_auth" || line == "error_draining" {
                // The server closes the connection after these.
                self.broken = true;
            }
        }
        result
    }

    fn exchange(&mut self, bytes: &[u8], limit: Option<Duration>) -> Result<String> {
        self.writer.write_all(bytes)?;
        let limit = limit.filter(|d| *d <= MAX_SOCKET_TIMEOUT && !d.is_zero());
        self.reader.get_ref().set_read_timeout(limit)?;
        loop {
            let line = read_line(&mut self.reader)?.ok_or(Error::Closed)?;
            match parse_push(&line) {
                Some(push) => {
                    if self.pushes.len() == MAX_KEPT_PUSHES {
                        self.pushes.pop_front();
                    }
                    self.pushes.push_back(push);
                }
                None => return Ok(line),
            }
        }
    }

    /// Push frames that arrived while nobody asked, without sending anything:
    /// reads whole lines for as long as bytes are waiting (the server writes
    /// a frame in one piece, so a started line completes within the IO
    /// timeout), then returns every push kept so far. A line that is not a
    /// push means the connection is out of step: it is then broken.
    pub(crate) fn poll_pushes(&mut self) -> Result<Vec<Push>> {
        if self.broken {
            return Err(Error::Closed);
        }
        while !self.reader.buffer().is_empty() || !self.reader.get_ref().is_quiet() {
            let limit = self
                .io_timeout
                .filter(|d| *d <= MAX_SOCKET_TIMEOUT && !d.is_zero());
            let read = self
                .reader
                .get_ref()
                .set_read_timeout(limit)
                .map_err(Error::from)
                .and_then(|()| read_line(&mut self.reader))
                .and_then(|l| l.ok_or(Error::Closed));
            let push = read.and_then(|line| {
                parse_push(&line)
                    .ok_or_else(|| Error::Protocol(format!("unexpected line {line:?}")))
            });
            match push {
                Ok(p) => {
                    if self.pushes.len() == MAX_KEPT_PUSHES {
                        self.pushes.pop_front();
                    }
                    self.pushes.push_back(p);
                }
                Err(e) => {
                    self.broken = true;
                    return Err(e);
                }
            }
        }
        Ok(self.take_pushes())
    }

    /// Splits the connection for a reader thread: the buffered reader (keeping any
    /// bytes already read) and a writer handle.
    pub(crate) fn into_parts(self) -> (BufReader<Stream>, Stream, String) {
        (self.reader, self.writer, self.addr)
    }
}

/// Resolves `addr` and tries each address in turn with the connect timeout.
fn connect_stream(addr: &str, timeout: Duration) -> Result<TcpStream> {
    let mut last = None;
    for sa in addr.to_socket_addrs()? {
        let attempt = if timeout.is_zero() {
            TcpStream::connect(sa)
        } else {
            TcpStream::connect_timeout(&sa, timeout)
        };
        match attempt {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(Error::Io(last.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, format!("{addr}: no address found"))
    })))
}

/// Checks a key (protocol.md §3.1): 1 to 256 bytes, no space, TAB, CR or LF.
pub(crate) fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(Error::Invalid(format!(
            "key must be 1 to {MAX_KEY_BYTES} bytes"
        )));
    }
    if key
        .bytes()
        .any(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
    {
        return Err(Error::Invalid(format!(
            "key {key:?} contains a space, TAB, CR or LF"
        )));
    }
    Ok(())
}

/// Checks a value (protocol.md §3.4): non-empty, no TAB, CR or LF.
pub(crate) fn check_value(value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::Invalid("value must not be empty".into()));
    }
    if value.bytes().any(|b| matches!(b, b'\t' | b'\r' | b'\n')) {
        return Err(Error::Invalid("value contains a TAB, CR or LF".into()));
    }
    Ok(())
}

/// Builds the three request lines. The key line is checked as a key unless the
/// command ignores it (`ping`, `auth`, `stats`); no line may carry CR or LF.
pub(crate) fn encode_request(cmd: &str, key: &str, arg: &str) -> Result<Vec<u8>> {
    if cmd.is_empty() || cmd.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err(Error::Invalid(format!("command {cmd:?}")));
    }
    if !matches!(cmd, "ping" | "auth" | "stats") {
        check_key(key)?;
    }
    if arg.bytes().any(|b| matches!(b, b'\r' | b'\n'))
        || key.bytes().any(|b| matches!(b, b'\r' | b'\n'))
    {
        return Err(Error::Invalid("argument contains CR or LF".into()));
    }
    let mut out = Vec::with_capacity(cmd.len() + key.len() + arg.len() + 3);
    for line in [cmd, key, arg] {
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    Ok(out)
}

/// Reads one line, without its LF (and a CR before it). `Ok(None)` at end of stream.
/// Lines over `MAX_REPLY_BYTES` or not valid UTF-8 are `InvalidData` errors, mapped to
/// `Error::Protocol`.
pub(crate) fn read_line(reader: &mut BufReader<Stream>) -> Result<Option<String>> {
    let mut line = Vec::new();
    loop {
        let available = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // A read timeout shows up as WouldBlock on Unix: name it for what it is.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(Error::Io(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no reply within the io timeout",
                )));
            }
            Err(e) => return Err(Error::Io(e)),
        };
        if available.is_empty() {
            return if line.is_empty() {
                Ok(None)
            } else {
                Err(Error::Protocol(
                    "connection closed in the middle of a line".into(),
                ))
            };
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        if line.len() + chunk.len() > MAX_REPLY_BYTES {
            return Err(Error::Protocol(format!(
                "reply line over {MAX_REPLY_BYTES} bytes"
            )));
        }
        line.extend_from_slice(chunk);
        let used = done.unwrap_or(chunk.len());
        reader.consume(used);
        if done.is_some() {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return String::from_utf8(line)
                .map(Some)
                .map_err(|_| Error::Protocol("reply is not valid UTF-8".into()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_three_lines() {
        assert_eq!(
            encode_request("l", "job", "10 60").ok(),
            Some(b"l\njob\n10 60\n".to_vec())
        );
        assert_eq!(
            encode_request("ping", "_", "").ok(),
            Some(b"ping\n_\n\n".to_vec())
        );
        assert!(encode_request("l", "my key", "1").is_err());
        assert!(encode_request("l", "", "1").is_err());
        assert!(encode_request("l", &"k".repeat(257), "1").is_err());
        assert!(encode_request("l", &"k".repeat(256), "1").is_ok());
        assert!(encode_request("kset", "k", "a\nb").is_err());
        assert!(encode_request("kset", "k", "a\rb").is_err());
        assert!(encode_request("bad cmd", "k", "").is_err());
        assert!(encode_request("stats", "a\nb", "").is_err());
    }

    #[test]
    fn values() {
        assert!(check_value(" spaced ").is_ok());
        assert!(check_value("").is_err());
        assert!(check_value("a\tb").is_err());
    }
}
