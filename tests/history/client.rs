//! A recording client: every request is logged with the time just before it
//! was written and the time just after its reply was read, so the recorded
//! interval contains the server's real one (what the checkers rely on).
//! Faults live here too: dropping the socket (a killed client) and resetting
//! it with SO_LINGER 0 (an abortive close, RST instead of FIN).
//!
//! A client speaks TCP or, with a session, the HTTP API: the workloads issue
//! TCP requests either way and `http.rs` translates both directions.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::http;

/// Nanoseconds since the run's epoch: the one timeline of every history.
pub type Ns = u64;

/// One request as the client saw it.
#[derive(Debug, Clone)]
pub struct Event {
    pub client: usize,
    pub cmd: String,
    pub key: String,
    pub arg: String,
    pub t_inv: Ns,
    /// `None`: no reply (the client was killed or reset first).
    pub t_ret: Option<Ns>,
    pub reply: Option<String>,
}

pub struct Client {
    stream: Option<TcpStream>,
    pending: Vec<u8>,
    /// The HTTP session of an HTTP client; `None` for TCP.
    session: Option<String>,
    epoch: Instant,
    pub id: usize,
    pub log: Vec<Event>,
}

impl Client {
    pub fn connect(addr: SocketAddr, epoch: Instant, id: usize) -> io::Result<Client> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        // Longer than any wait in a history (≤ 5 s) plus a server stop
        // (2.5 s); a missing reply fails the history instead of hanging it.
        stream.set_read_timeout(Some(Duration::from_secs(15)))?;
        Ok(Client {
            stream: Some(stream),
            pending: Vec::new(),
            session: None,
            epoch,
            id,
            log: Vec::new(),
        })
    }

    /// An HTTP API client with a fresh session (`POST /v1/sessions`).
    pub fn connect_http(addr: SocketAddr, epoch: Instant, id: usize) -> io::Result<Client> {
        let mut c = Client::connect(addr, epoch, id)?;
        c.stream()?.write_all(
            b"POST /v1/sessions HTTP/1.1\r\nHost: dflockd\r\nContent-Length: 0\r\n\r\n",
        )?;
        let (status, body) = c.response()?;
        match http::member(&body, "session_id") {
            Some(id) if status == 200 => c.session = Some(id.to_string()),
            _ => {
                return Err(io::Error::other(format!(
                    "session not created: {status} {body}"
                )));
            }
        }
        Ok(c)
    }

    pub fn is_http(&self) -> bool {
        self.session.is_some()
    }

    /// Ends an HTTP client's session (`DELETE`); a no-op for TCP.
    pub fn end_session(&mut self) -> io::Result<()> {
        let Some(id) = self.session.clone() else {
            return Ok(());
        };
        let head = format!("DELETE /v1/sessions/{id} HTTP/1.1\r\nHost: dflockd\r\n\r\n");
        self.stream()?.write_all(head.as_bytes())?;
        match self.response()? {
            (204, _) => Ok(()),
            (status, body) => Err(io::Error::other(format!("session end: {status} {body}"))),
        }
    }

    /// Ends this HTTP client's session from another connection (`DELETE`)
    /// while this one may have a request in flight; returns the time just
    /// before the `DELETE` was sent.
    pub fn end_session_elsewhere(&mut self) -> io::Result<Ns> {
        let id = self
            .session
            .clone()
            .ok_or_else(|| io::Error::other("not an HTTP client"))?;
        let peer = self.stream()?.peer_addr()?;
        let mut other = Client::connect(peer, self.epoch, self.id)?;
        let t = self.now();
        let head = format!("DELETE /v1/sessions/{id} HTTP/1.1\r\nHost: dflockd\r\n\r\n");
        other.stream()?.write_all(head.as_bytes())?;
        match other.response()? {
            (204, _) => Ok(t),
            (status, body) => Err(io::Error::other(format!("session end: {status} {body}"))),
        }
    }

    pub fn now(&self) -> Ns {
        self.epoch.elapsed().as_nanos() as Ns
    }

    fn stream(&mut self) -> io::Result<&mut TcpStream> {
        self.stream
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "closed"))
    }

    /// Sends one request and waits for its reply line; logs both ends.
    /// Returns the reply and the index of its event.
    pub fn req(&mut self, cmd: &str, key: &str, arg: &str) -> io::Result<(String, usize)> {
        let i = self.send(cmd, key, arg)?;
        Ok((self.recv(i)?, i))
    }

    /// Writes one request without reading; returns its event index.
    pub fn send(&mut self, cmd: &str, key: &str, arg: &str) -> io::Result<usize> {
        let t_inv = self.now();
        self.log.push(Event {
            client: self.id,
            cmd: cmd.into(),
            key: key.into(),
            arg: arg.into(),
            t_inv,
            t_ret: None,
            reply: None,
        });
        let bytes = match &self.session {
            Some(session) => http::encode(&http::request(cmd, key, arg)?, session),
            None => format!("{cmd}\n{key}\n{arg}\n").into_bytes(),
        };
        self.stream()?.write_all(&bytes)?;
        Ok(self.log.len() - 1)
    }

    /// Reads the reply of event `i`, sent earlier with [`Client::send`].
    pub fn recv(&mut self, i: usize) -> io::Result<String> {
        let line = if self.session.is_some() {
            let (status, body) = self.response()?;
            let ev = &self.log[i];
            http::reply(&ev.cmd, &ev.arg, status, &body)
        } else {
            self.line()?
        };
        let t = self.now();
        let ev = &mut self.log[i];
        ev.t_ret = Some(t);
        ev.reply = Some(line.clone());
        Ok(line)
    }

    /// Writes raw bytes (a partial request for the reset fault).
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream()?.write_all(bytes)
    }

    fn fill(&mut self) -> io::Result<()> {
        let mut buf = [0u8; 4096];
        let n = self.stream()?.read(&mut buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed",
            ));
        }
        self.pending.extend_from_slice(&buf[..n]);
        Ok(())
    }

    /// One HTTP response: status code and body (Content-Length framed).
    fn response(&mut self) -> io::Result<(u16, String)> {
        let head_end = loop {
            if let Some(p) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            self.fill()?;
        };
        let head = String::from_utf8_lossy(&self.pending[..head_end]).into_owned();
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "bad response head");
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)?;
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or(0);
        while self.pending.len() < head_end + len {
            self.fill()?;
        }
        let body = String::from_utf8_lossy(&self.pending[head_end..head_end + len]).into_owned();
        self.pending.drain(..head_end + len);
        Ok((status, body))
    }

    fn line(&mut self) -> io::Result<String> {
        loop {
            if let Some(p) = self.pending.iter().position(|&b| b == b'\n') {
                let rest = self.pending.split_off(p + 1);
                let mut line = std::mem::replace(&mut self.pending, rest);
                line.pop();
                return String::from_utf8(line)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e));
            }
            self.fill()?;
        }
    }

    /// Closes the socket normally (FIN), like a killed process's kernel does.
    /// Returns the time just before the close.
    pub fn kill(&mut self) -> Ns {
        let t = self.now();
        self.stream = None;
        t
    }

    /// Closes the socket abortively: SO_LINGER {on, 0} makes close() send RST
    /// and discard unsent data. Returns the time just before the close.
    pub fn reset(&mut self) -> Ns {
        let t = self.now();
        if let Some(s) = self.stream.take() {
            super::common::reset_stream(s);
        }
        t
    }
}
