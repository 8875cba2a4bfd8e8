//! One client connection: its socket (plain or TLS), reused input and output
//! buffers, and the per-connection protocol state the workers drive. Also the
//! blocking setup done before the clock starts: the TLS handshake, `auth` and
//! `listen` on TCP; on HTTP (plain only), a session (`POST /v1/sessions`) or
//! an event stream (`GET /v1/signals`).

use crate::http::{self, Parsed, Response, SessionCreated};
use mio::net::TcpStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `--tls-ca` (and `--tls-server-name`): what every TLS connection uses.
#[derive(Clone)]
pub struct Tls {
    pub config: Arc<ClientConfig>,
    pub name: ServerName<'static>,
}

impl Tls {
    pub fn new(ca: &Path, name: &str) -> Result<Tls, String> {
        let bad = |e: String| format!("--tls-ca {}: {e}", ca.display());
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca).map_err(|e| bad(e.to_string()))? {
            roots
                .add(cert.map_err(|e| bad(e.to_string()))?)
                .map_err(|e| bad(e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(bad("no PEM CERTIFICATE block".into()));
        }
        let config = ClientConfig::builder_with_provider(dflockd::net::tls::crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from(name.to_owned())
            .map_err(|e| format!("TLS server name {name:?}: {e}"))?;
        Ok(Tls {
            config: Arc::new(config),
            name,
        })
    }

    /// A client connection whose handshake is done, over a blocking socket.
    pub fn handshake(&self, s: &mut std::net::TcpStream) -> io::Result<ClientConnection> {
        let mut conn = ClientConnection::new(self.config.clone(), self.name.clone())
            .map_err(io::Error::other)?;
        while conn.is_handshaking() {
            conn.complete_io(s)?;
        }
        Ok(conn)
    }
}

/// A non-blocking socket, plain or TLS, with `Read`/`Write` semantics the
/// worker loop already uses: `WouldBlock` means "wait for the next event".
pub enum Link {
    Plain(TcpStream),
    Tls {
        sock: TcpStream,
        tls: Box<ClientConnection>,
    },
}

impl Link {
    pub fn socket(&mut self) -> &mut TcpStream {
        match self {
            Link::Plain(s) => s,
            Link::Tls { sock, .. } => sock,
        }
    }

    fn is_tls(&self) -> bool {
        matches!(self, Link::Tls { .. })
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (sock, tls) = match self {
            Link::Plain(s) => return s.read(buf),
            Link::Tls { sock, tls } => (sock, tls),
        };
        loop {
            match tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            // Ok(0) is the end of stream: the reader reports it on the next turn.
            tls.read_tls(sock)?;
            tls.process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            flush_tls(sock, tls)?;
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (sock, tls) = match self {
            Link::Plain(s) => return s.write(buf),
            Link::Tls { sock, tls } => (sock, tls),
        };
        let n = tls.writer().write(buf)?;
        flush_tls(sock, tls)?;
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    /// Write queued TLS records until the socket would block.
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Link::Plain(_) => Ok(()),
            Link::Tls { sock, tls } => flush_tls(sock, tls),
        }
    }
}

fn flush_tls(sock: &mut TcpStream, tls: &mut ClientConnection) -> io::Result<()> {
    while tls.wants_write() {
        match tls.write_tls(sock) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Blocking setup IO on a socket that may carry TLS.
fn setup_write(
    s: &mut std::net::TcpStream,
    tls: Option<&mut ClientConnection>,
    bytes: &[u8],
) -> io::Result<()> {
    match tls {
        None => s.write_all(bytes),
        Some(c) => rustls::Stream::new(c, s).write_all(bytes),
    }
}

fn setup_read(
    s: &mut std::net::TcpStream,
    tls: Option<&mut ClientConnection>,
    buf: &mut [u8],
) -> io::Result<usize> {
    match tls {
        None => s.read(buf),
        Some(c) => rustls::Stream::new(c, s).read(buf),
    }
}

/// Initial input buffer; grows only for replies longer than this.
const INPUT_BUFFER: usize = 16 * 1024;
/// A reply line longer than this is an error (no dflockd reply we provoke comes close).
const MAX_LINE: usize = 4 * 1024 * 1024;

/// Which reply (or push) the connection is waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Connected, no request sent yet.
    Idle,
    /// Waiting for `ok <token> <lease>` to `l` / `sl`.
    Acquire,
    /// Waiting for `ok` to `r` / `sr`.
    Release,
    /// Waiting for `ok` to `kset`.
    Set,
    /// Waiting for `ok <value>` to `kget`.
    Get,
    /// Waiting for `ok <n>` to one `incr`.
    Incr,
    /// Waiting for the rest of a pipelined batch of `incr` replies.
    Batch,
    /// Waiting for `ok <delivered>` to `signal`.
    Signal,
    /// Waiting for `ok` to the clean-up request (`kdel`, `cset`; HTTP: also
    /// the `DELETE` of the worker's session).
    Cleanup,
    /// A subscriber: `sig` frames, and `ok` for its heartbeat pings.
    Listening,
    /// Finished, failed or closed; ignored from now on.
    Done,
}

pub enum Fill {
    /// Bytes arrived; `short` when the read did not fill the free space.
    Data {
        short: bool,
    },
    Eof,
    WouldBlock,
}

pub struct Conn {
    pub stream: Link,
    /// Global index, shown in error messages.
    pub idx: usize,
    /// A pub/sub subscriber rather than a worker.
    pub sub: bool,
    pub key: Box<[u8]>,
    pub out: Vec<u8>,
    pub out_pos: usize,
    pub inb: Vec<u8>,
    pub in_start: usize,
    pub in_end: usize,

    pub step: Step,
    /// When the awaited reply becomes overdue.
    pub deadline: Instant,
    /// When the current op's first request was written.
    pub op_start: Instant,
    /// The current op started after the warm-up and is recorded.
    pub measured: bool,
    /// Measured ops (pipeline: batches) started so far.
    pub started: u64,
    /// The token of the current grant (§6.1: 32 lowercase hex characters).
    pub token: [u8; 32],
    /// kv: the next op is a `kget`.
    pub get_next: bool,
    /// counter, pipeline: the last value seen.
    pub counter: Option<i64>,
    /// pipeline: replies still due in this batch.
    pub pending: u32,
    /// `out` holds this connection's pipelined batch.
    pub batch_ready: bool,
    /// subscriber: pings sent and not yet answered.
    pub pings: u32,
    pub next_ping: Instant,
    /// HTTP: the percent-encoded resource path of `key` (`/v1/locks/<key>`).
    pub path: Box<[u8]>,
    /// HTTP: header fields sent with every request (`Host`, `Authorization`,
    /// `X-Dflockd-Session`), each ending in CRLF.
    pub headers: Box<[u8]>,
    /// HTTP: the worker's session id, deleted at clean-up.
    pub session: Option<Box<[u8]>>,
    /// HTTP: the request body being built (reused).
    pub body: Vec<u8>,
}

/// What an HTTP connection needs from the run.
pub struct HttpSetup<'a> {
    /// `Host` and, with `--auth-token`, `Authorization` (CRLF-terminated lines).
    pub headers: &'a [u8],
    /// Create a session first (the lock and semaphore workloads).
    pub session: bool,
}

/// Resource path of a subscriber's stream or a worker's key.
pub enum HttpTarget<'a> {
    /// `GET` this path and query, expect an event stream (a subscriber).
    Stream(&'a [u8]),
    /// The path a worker's requests are built on.
    Path(&'a [u8]),
}

impl Conn {
    /// Connect and run the setup exchanges (blocking), then hand the socket to mio.
    pub fn open(
        addr: SocketAddr,
        tls: Option<&Tls>,
        idx: usize,
        sub: bool,
        key: &[u8],
        setup: &[(&[u8], &str)],
        reply_timeout: Duration,
    ) -> Result<Conn, String> {
        let mut s = connect(addr, reply_timeout)?;
        let io_err = |e: io::Error| format!("connection {idx} to {addr}: {e}");
        s.set_nodelay(true).map_err(io_err)?;
        s.set_read_timeout(Some(reply_timeout)).map_err(io_err)?;
        let mut session = match tls {
            Some(t) => Some(Box::new(t.handshake(&mut s).map_err(|e| {
                format!("connection {idx} to {addr}: TLS handshake: {e}")
            })?)),
            None => None,
        };
        let mut inb = vec![0u8; INPUT_BUFFER];
        let (mut start, mut end) = (0, 0);
        for (request, name) in setup {
            setup_write(&mut s, session.as_deref_mut(), request).map_err(io_err)?;
            let line = loop {
                if let Some((a, b)) = next_line(&inb, &mut start, end) {
                    break &inb[a..b];
                }
                if end == inb.len() {
                    return Err(format!("reply to {name} is too long"));
                }
                match setup_read(&mut s, session.as_deref_mut(), &mut inb[end..]) {
                    Ok(0) => {
                        return Err(format!(
                            "server {addr} closed the connection instead of answering {name}"
                        ));
                    }
                    Ok(n) => end += n,
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                    {
                        return Err(format!(
                            "no reply to {name} from {addr} within {reply_timeout:?}"
                        ));
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(io_err(e)),
                }
            };
            if line != b"ok" {
                let hint = match (*name, line) {
                    ("auth", b"error_auth") => " (wrong --auth-token)",
                    ("auth", b"error") => " (the server has no auth token configured)",
                    _ => "",
                };
                return Err(format!(
                    "{name} failed: server replied {}{hint}",
                    show(line)
                ));
            }
        }
        Conn::ready(s, session, idx, sub, key, inb, start, end).map_err(io_err)
    }

    /// Connect over HTTP and, for a session workload, create the worker's
    /// session; a subscriber opens its event stream (blocking).
    pub fn open_http(
        addr: SocketAddr,
        idx: usize,
        key: &[u8],
        target: HttpTarget<'_>,
        setup: &HttpSetup<'_>,
        reply_timeout: Duration,
    ) -> Result<Conn, String> {
        let mut s = connect(addr, reply_timeout)?;
        let io_err = |e: io::Error| format!("connection {idx} to {addr}: {e}");
        let mut inb = vec![0u8; INPUT_BUFFER];
        let mut end = 0;
        let mut exchange = |req: &[u8], name: &str| -> Result<(Response, usize), String> {
            s.write_all(req).map_err(io_err)?;
            loop {
                match http::parse_response(&inb[..end]) {
                    Parsed::Complete { resp, consumed } => return Ok((resp, consumed)),
                    Parsed::Invalid(e) => return Err(format!("reply to {name}: {e}")),
                    Parsed::Incomplete if end == inb.len() => {
                        return Err(format!("reply to {name} is too long"));
                    }
                    Parsed::Incomplete => {}
                }
                read_setup(&mut s, &mut inb, &mut end, addr, name, reply_timeout)
                    .map_err(|e| format!("{e} (is --server the HTTP port?)"))?;
            }
        };
        let refused = |name: &str, resp: &Response, inb: &[u8]| {
            let (a, b) = resp.body;
            let hint = match resp.status {
                401 => " (wrong or missing --auth-token)",
                404 => " (is --server the HTTP port?)",
                _ => "",
            };
            format!(
                "{name} failed: server replied {}{hint}",
                http::show_response(resp.status, &inb[a..b])
            )
        };
        let mut headers = setup.headers.to_vec();
        let mut session = None;
        let (sub, path, start) = match target {
            HttpTarget::Stream(target) => {
                let mut req = Vec::new();
                http::request(&mut req, b"GET", target, b"", setup.headers, b"");
                let name = "GET /v1/signals";
                let (resp, consumed) = exchange(&req, name)?;
                if resp.status != 200 || !resp.stream {
                    return Err(refused(name, &resp, &inb));
                }
                (true, Box::default(), consumed)
            }
            HttpTarget::Path(path) if setup.session => {
                let mut req = Vec::new();
                http::request(&mut req, b"POST", b"/v1/sessions", b"", setup.headers, b"");
                let name = "POST /v1/sessions";
                let (resp, consumed) = exchange(&req, name)?;
                let (a, b) = resp.body;
                let created = serde_json::from_slice::<SessionCreated>(&inb[a..b])
                    .ok()
                    .filter(|c| resp.status == 200 && http::is_hex32(c.session_id));
                let Some(created) = created else {
                    return Err(refused(name, &resp, &inb));
                };
                headers.extend_from_slice(b"X-Dflockd-Session: ");
                headers.extend_from_slice(created.session_id.as_bytes());
                headers.extend_from_slice(b"\r\n");
                session = Some(created.session_id.as_bytes().into());
                if resp.close {
                    return Err(format!("{name}: the server closes the connection"));
                }
                (false, path.into(), consumed)
            }
            HttpTarget::Path(path) => (false, path.into(), 0),
        };
        let mut c = Conn::ready(s, None, idx, sub, key, inb, start, end).map_err(io_err)?;
        c.path = path;
        c.headers = headers.into();
        c.session = session;
        Ok(c)
    }

    /// Hand a connected, set-up socket to mio.
    #[allow(clippy::too_many_arguments)]
    fn ready(
        s: std::net::TcpStream,
        session: Option<Box<ClientConnection>>,
        idx: usize,
        sub: bool,
        key: &[u8],
        inb: Vec<u8>,
        start: usize,
        end: usize,
    ) -> io::Result<Conn> {
        s.set_read_timeout(None)?;
        s.set_nonblocking(true)?;
        let now = Instant::now();
        let sock = TcpStream::from_std(s);
        Ok(Conn {
            stream: match session {
                Some(tls) => Link::Tls { sock, tls },
                None => Link::Plain(sock),
            },
            idx,
            sub,
            key: key.into(),
            out: Vec::with_capacity(256),
            out_pos: 0,
            inb,
            in_start: start,
            in_end: end,
            step: if sub { Step::Listening } else { Step::Idle },
            deadline: now,
            op_start: now,
            measured: false,
            started: 0,
            token: [0; 32],
            get_next: false,
            counter: None,
            pending: 0,
            batch_ready: false,
            pings: 0,
            next_ping: now,
            path: Box::default(),
            headers: Box::default(),
            session: None,
            body: Vec::new(),
        })
    }

    /// Write as much pending output as the socket takes (TLS: and the
    /// records rustls still holds).
    pub fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()?;
        while self.out_pos < self.out.len() {
            match self.stream.write(&self.out[self.out_pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Append a request on this connection's own key.
    pub fn push_request(&mut self, cmd: &[u8], arg: impl FnOnce(&mut Vec<u8>)) {
        request(&mut self.out, cmd, &self.key, arg);
    }

    /// Start a new request in `out` (keeps the allocation).
    pub fn begin(&mut self) -> &mut Vec<u8> {
        self.out.clear();
        self.out_pos = 0;
        self.batch_ready = false;
        &mut self.out
    }

    /// One read into the input buffer, compacting or growing it first if needed.
    pub fn fill(&mut self) -> io::Result<Fill> {
        if self.in_start == self.in_end {
            self.in_start = 0;
            self.in_end = 0;
        } else if self.in_end == self.inb.len() {
            if self.in_start > 0 {
                self.inb.copy_within(self.in_start..self.in_end, 0);
                self.in_end -= self.in_start;
                self.in_start = 0;
            } else if self.inb.len() < MAX_LINE {
                let n = (self.inb.len() * 2).min(MAX_LINE);
                self.inb.resize(n, 0);
            } else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "reply line longer than 4 MiB",
                ));
            }
        }
        let space = self.inb.len() - self.in_end;
        loop {
            match self.stream.read(&mut self.inb[self.in_end..]) {
                Ok(0) => return Ok(Fill::Eof),
                Ok(n) => {
                    self.in_end += n;
                    // TLS may hold more plaintext than one read returns: only the
                    // socket's WouldBlock says it is drained.
                    let short = n < space && !self.stream.is_tls();
                    return Ok(Fill::Data { short });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Fill::WouldBlock),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// A blocking connection with `TCP_NODELAY` and a read timeout for the setup.
fn connect(addr: SocketAddr, reply_timeout: Duration) -> Result<std::net::TcpStream, String> {
    let s = std::net::TcpStream::connect_timeout(&addr, reply_timeout)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    s.set_nodelay(true)
        .and_then(|()| s.set_read_timeout(Some(reply_timeout)))
        .map_err(|e| format!("connection to {addr}: {e}"))?;
    Ok(s)
}

/// One blocking read of a setup reply into `inb[*end..]`.
fn read_setup(
    s: &mut std::net::TcpStream,
    inb: &mut [u8],
    end: &mut usize,
    addr: SocketAddr,
    name: &str,
    reply_timeout: Duration,
) -> Result<(), String> {
    loop {
        match s.read(&mut inb[*end..]) {
            Ok(0) => {
                return Err(format!(
                    "server {addr} closed the connection instead of answering {name}"
                ));
            }
            Ok(n) => {
                *end += n;
                return Ok(());
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(format!(
                    "no reply to {name} from {addr} within {reply_timeout:?}"
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("connection to {addr}: {e}")),
        }
    }
}

/// Append one request: `<cmd>\n<key>\n<argument>\n`.
pub fn request(out: &mut Vec<u8>, cmd: &[u8], key: &[u8], arg: impl FnOnce(&mut Vec<u8>)) {
    out.extend_from_slice(cmd);
    out.push(b'\n');
    out.extend_from_slice(key);
    out.push(b'\n');
    arg(out);
    out.push(b'\n');
}

/// The next complete line in `buf[*start..end]` (content without the LF);
/// advances `start` past it.
pub fn next_line(buf: &[u8], start: &mut usize, end: usize) -> Option<(usize, usize)> {
    let a = *start;
    let n = buf[a..end].iter().position(|&b| b == b'\n')?;
    *start = a + n + 1;
    Some((a, a + n))
}

/// A reply for an error message: quoted, escaped, at most 120 bytes.
pub fn show(line: &[u8]) -> String {
    let cut = &line[..line.len().min(120)];
    let mut s = format!("{:?}", String::from_utf8_lossy(cut));
    if line.len() > cut.len() {
        s.push_str("...");
    }
    s
}
