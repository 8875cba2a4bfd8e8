//! A recording client: every request is logged with the time just before it
//! was written and the time just after its reply was read, so the recorded
//! interval contains the server's real one (what the checkers rely on).
//! Faults live here too: dropping the socket (a killed client) and resetting
//! it with SO_LINGER 0 (an abortive close, RST instead of FIN).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

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
    epoch: Instant,
    pub id: usize,
    pub log: Vec<Event>,
}

impl Client {
    pub fn connect(addr: SocketAddr, epoch: Instant, id: usize) -> io::Result<Client> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        // Longer than any wait in a history (≤ 5 s) plus a server stop (2 s).
        stream.set_read_timeout(Some(Duration::from_secs(15)))?;
        Ok(Client {
            stream: Some(stream),
            pending: Vec::new(),
            epoch,
            id,
            log: Vec::new(),
        })
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
        let bytes = format!("{cmd}\n{key}\n{arg}\n");
        self.stream()?.write_all(bytes.as_bytes())?;
        Ok(self.log.len() - 1)
    }

    /// Reads the reply of event `i`, sent earlier with [`Client::send`].
    pub fn recv(&mut self, i: usize) -> io::Result<String> {
        let line = self.line()?;
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

    fn line(&mut self) -> io::Result<String> {
        loop {
            if let Some(p) = self.pending.iter().position(|&b| b == b'\n') {
                let rest = self.pending.split_off(p + 1);
                let mut line = std::mem::replace(&mut self.pending, rest);
                line.pop();
                return String::from_utf8(line)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e));
            }
            let mut buf = [0u8; 4096];
            let n = self.stream()?.read(&mut buf)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "server closed",
                ));
            }
            self.pending.extend_from_slice(&buf[..n]);
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
            let linger = libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            // SAFETY: `s` owns a valid socket fd for the duration of the call,
            // and `linger` is a properly initialised `struct linger` whose size
            // is passed as the option length.
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
        t
    }
}
