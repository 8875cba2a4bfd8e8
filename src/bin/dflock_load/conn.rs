//! One client connection: its socket, reused input and output buffers, and
//! the per-connection protocol state the workers drive. Also the blocking
//! setup (connect, `auth`, `listen`) done before the clock starts.

use mio::net::TcpStream;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

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
    /// Waiting for `ok` to the clean-up request (`kdel`, `cset`).
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
    pub stream: TcpStream,
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
}

impl Conn {
    /// Connect and run the setup exchanges (blocking), then hand the socket to mio.
    pub fn open(
        addr: SocketAddr,
        idx: usize,
        sub: bool,
        key: &[u8],
        setup: &[(&[u8], &str)],
        reply_timeout: Duration,
    ) -> Result<Conn, String> {
        let mut s = std::net::TcpStream::connect_timeout(&addr, reply_timeout)
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let io_err = |e: io::Error| format!("connection {idx} to {addr}: {e}");
        s.set_nodelay(true).map_err(io_err)?;
        s.set_read_timeout(Some(reply_timeout)).map_err(io_err)?;
        let mut inb = vec![0u8; INPUT_BUFFER];
        let (mut start, mut end) = (0, 0);
        for (request, name) in setup {
            s.write_all(request).map_err(io_err)?;
            let line = loop {
                if let Some((a, b)) = next_line(&inb, &mut start, end) {
                    break &inb[a..b];
                }
                if end == inb.len() {
                    return Err(format!("reply to {name} is too long"));
                }
                match s.read(&mut inb[end..]) {
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
        s.set_read_timeout(None).map_err(io_err)?;
        s.set_nonblocking(true).map_err(io_err)?;
        let now = Instant::now();
        Ok(Conn {
            stream: TcpStream::from_std(s),
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
        })
    }

    /// Write as much pending output as the socket takes.
    pub fn flush(&mut self) -> io::Result<()> {
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
                    return Ok(Fill::Data { short: n < space });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Fill::WouldBlock),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
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
