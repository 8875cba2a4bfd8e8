//! Connections that receive push frames: the shared machinery of `Subscriber`,
//! `Watcher` and `Observer`.
//!
//! Each connection gets a reader thread that owns the socket's read half and sorts
//! lines: push frames (`sig `, `watch `, `leader `; no reply starts with those,
//! protocol.md §2.3) go to the hub's event channel, everything else to that
//! connection's reply channel, where `request` waits for it. So frames are never lost
//! while a request is in flight, and a request never mistakes a frame for its reply.
//!
//! A heartbeat thread sends `ping` on every open connection every 15 s, because a
//! connection that only receives frames must still send something more often than the
//! server's idle timeout (§2.8). When a connection ends, its reader thread reports it
//! once through the event channel; the hub's `recv` then returns `Err(Closed)` — its
//! registrations are gone with it, so the owner must start afresh.

use super::conn::{encode_request, read_line};
use super::error::{Error, Result};
use super::reply::{Push, expect_bare_ok, parse_push};
use super::stream::Stream;
use super::{Client, HEARTBEAT};
use std::io::{self, BufReader, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// What reader threads report to the hub.
enum Incoming {
    Push(Push),
    Closed(String),
}

/// One push-receiving connection: the write half plus its reader thread.
struct PushConn {
    writer: Stream,
    replies: mpsc::Receiver<String>,
    reader: Option<JoinHandle<()>>,
    closing: Arc<AtomicBool>,
    io_timeout: Option<Duration>,
    broken: bool,
}

impl PushConn {
    fn open(client: &Client, index: usize, events: mpsc::Sender<Incoming>) -> Result<PushConn> {
        let conn = client.connect_server(index)?;
        let (reader, writer, addr) = conn.into_parts();
        // Frames may be minutes apart: the reader blocks until data or a close.
        reader.get_ref().set_read_timeout(None)?;
        let (reply_tx, replies) = mpsc::channel();
        let closing = Arc::new(AtomicBool::new(false));
        let flag = closing.clone();
        let handle = thread::Builder::new()
            .name(format!("dflockd-push {addr}"))
            .spawn(move || read_loop(reader, reply_tx, events, flag, addr))?;
        Ok(PushConn {
            writer,
            replies,
            reader: Some(handle),
            closing,
            io_timeout: client.options().io_timeout,
            broken: false,
        })
    }

    fn request(&mut self, cmd: &str, key: &str, arg: &str) -> Result<String> {
        let bytes = encode_request(cmd, key, arg)?;
        if self.broken {
            return Err(Error::Closed);
        }
        let result = self.exchange(&bytes);
        if result.is_err() {
            // Replies may now be out of step: close, so the reader thread reports
            // the end to the owner's `recv` instead of leaving it waiting.
            self.broken = true;
            self.writer.shutdown();
        }
        result
    }

    fn exchange(&mut self, bytes: &[u8]) -> Result<String> {
        self.writer.write_all(bytes)?;
        match self.io_timeout {
            None => self.replies.recv().map_err(|_| Error::Closed),
            Some(limit) => self.replies.recv_timeout(limit).map_err(|e| match e {
                RecvTimeoutError::Timeout => Error::Io(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no reply within the io timeout",
                )),
                RecvTimeoutError::Disconnected => Error::Closed,
            }),
        }
    }
}

impl Drop for PushConn {
    fn drop(&mut self) {
        self.closing.store(true, Ordering::SeqCst);
        // Wakes the reader thread with end-of-stream; failure means it is closed.
        self.writer.shutdown();
        if let Some(handle) = self.reader.take() {
            handle.join().ok();
        }
    }
}

fn read_loop(
    mut reader: BufReader<Stream>,
    replies: mpsc::Sender<String>,
    events: mpsc::Sender<Incoming>,
    closing: Arc<AtomicBool>,
    addr: String,
) {
    let why = loop {
        match read_line(&mut reader) {
            Ok(Some(line)) => {
                let delivered = match parse_push(&line) {
                    Some(push) => events.send(Incoming::Push(push)).is_ok(),
                    None => replies.send(line).is_ok(),
                };
                if !delivered {
                    return; // the owner is gone
                }
            }
            Ok(None) => break format!("{addr}: connection closed by the server"),
            Err(e) => break format!("{addr}: {e}"),
        }
    };
    if !closing.load(Ordering::SeqCst) {
        // The hub may be gone too; then nobody needs to know.
        events.send(Incoming::Closed(why)).ok();
    }
}

type Conns = Arc<Mutex<Vec<Option<PushConn>>>>;

fn lock(conns: &Conns) -> MutexGuard<'_, Vec<Option<PushConn>>> {
    conns.lock().unwrap_or_else(|p| p.into_inner())
}

/// The heartbeat thread; dropping it stops and joins it.
struct Heartbeat {
    stop: Option<mpsc::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.handle.take() {
            h.join().ok();
        }
    }
}

/// Connections to the servers (opened on first use), one event stream for all.
pub(crate) struct PushHub {
    client: Client,
    // Declared before `conns`: the heartbeat thread must stop before they close.
    heartbeat: Option<Heartbeat>,
    conns: Conns,
    events_tx: mpsc::Sender<Incoming>,
    events: mpsc::Receiver<Incoming>,
    closed: Option<String>,
}

impl PushHub {
    pub fn new(client: Client) -> PushHub {
        let servers = client.options().servers.len();
        let (events_tx, events) = mpsc::channel();
        PushHub {
            client,
            heartbeat: None,
            conns: Arc::new(Mutex::new((0..servers).map(|_| None).collect())),
            events_tx,
            events,
            closed: None,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Sends a request that must be answered `ok` on `servers[index]`, connecting
    /// first if needed.
    pub fn request_ok(&mut self, index: usize, cmd: &str, key: &str, arg: &str) -> Result<()> {
        if self.closed.is_some() {
            return Err(Error::Closed);
        }
        encode_request(cmd, key, arg)?;
        self.start_heartbeat()?;
        let mut conns = lock(&self.conns);
        let slot = conns
            .get_mut(index)
            .ok_or_else(|| Error::Invalid(format!("no server #{index}")))?;
        if slot.is_none() {
            *slot = Some(PushConn::open(&self.client, index, self.events_tx.clone())?);
        }
        let conn = slot.as_mut().ok_or(Error::Closed)?;
        let line = conn.request(cmd, key, arg)?;
        expect_bare_ok(&line)
    }

    /// `request_ok` on every server, in order; stops at the first failure.
    pub fn request_all(&mut self, cmd: &str, key: &str, arg: &str) -> Result<()> {
        for index in 0..self.client.options().servers.len() {
            self.request_ok(index, cmd, key, arg)?;
        }
        Ok(())
    }

    /// Pings every open connection now.
    pub fn ping(&mut self) -> Result<()> {
        ping_all(&self.conns)
    }

    fn start_heartbeat(&mut self) -> Result<()> {
        if self.heartbeat.is_some() {
            return Ok(());
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let conns = self.conns.clone();
        let handle = thread::Builder::new()
            .name("dflockd-heartbeat".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(HEARTBEAT) {
                    // A failed ping is reported by the reader thread's close event.
                    ping_all(&conns).ok();
                }
            })?;
        self.heartbeat = Some(Heartbeat {
            stop: Some(stop),
            handle: Some(handle),
        });
        Ok(())
    }

    /// The next push frame. `timeout` `None` blocks; `Ok(None)` when the timeout
    /// passed. `Err(Closed)` once any of the connections ended (and from then on).
    pub fn recv(&mut self, timeout: Option<Duration>) -> Result<Option<Push>> {
        if self.closed.is_some() {
            return Err(Error::Closed);
        }
        let incoming = match timeout {
            None => self.events.recv().map_err(|_| Error::Closed)?,
            Some(t) => match self.events.recv_timeout(t) {
                Ok(item) => item,
                Err(RecvTimeoutError::Timeout) => return Ok(None),
                Err(RecvTimeoutError::Disconnected) => return Err(Error::Closed),
            },
        };
        match incoming {
            Incoming::Push(push) => Ok(Some(push)),
            Incoming::Closed(why) => {
                self.closed = Some(why);
                Err(Error::Closed)
            }
        }
    }

    /// Why the hub's connection ended, once `recv` returned `Err(Closed)`.
    pub fn close_reason(&self) -> Option<&str> {
        self.closed.as_deref()
    }
}

fn ping_all(conns: &Conns) -> Result<()> {
    let mut conns = lock(conns);
    let mut first_error = None;
    for conn in conns.iter_mut().flatten() {
        let outcome = conn
            .request("ping", "_", "")
            .and_then(|l| expect_bare_ok(&l));
        if let Err(e) = outcome {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}
