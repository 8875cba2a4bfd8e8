//! A connection's byte stream: plain TCP or TLS, behind one interface.
//!
//! `read_into` and `write_from` return the same outcomes for both (the
//! `Io` of `conn::buffer`), so `server/dispatch.rs` never branches on TLS.
//! For TLS, "pending output" also counts the records rustls has queued
//! (`wants_write()`): a connection is not done writing, and not done closing,
//! until those are on the wire.

use super::tls::{Handshake, TlsConn};
use crate::conn::buffer::{InBuf, Io, OutBuf};
use mio::net::TcpStream;
use std::fmt;
use std::io;

#[derive(Debug)]
pub enum Transport {
    Plain(TcpStream),
    /// Boxed: rustls's connection state is ~1 KiB and plain connections
    /// should not pay for it.
    Tls(Box<TlsConn>),
}

/// Why a transport cannot go on. The connection is closed after any of these.
#[derive(Debug)]
pub enum TransportError {
    /// The socket failed.
    Io(io::Error),
    /// rustls refused the peer's bytes (its alert went out as a last gasp).
    Tls(rustls::Error),
    /// The first byte on a TLS port was not a TLS record.
    Plaintext,
}

impl TransportError {
    /// The closest `io::ErrorKind`, for close reasons in the log.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            TransportError::Io(e) => e.kind(),
            TransportError::Tls(_) | TransportError::Plaintext => io::ErrorKind::InvalidData,
        }
    }

    /// The peer went away (reset, aborted, broken pipe): worth a debug line only.
    pub fn is_disconnect(&self) -> bool {
        matches!(self, TransportError::Io(e) if matches!(
            e.kind(),
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
        ))
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::Io(e) => write!(f, "{e}"),
            TransportError::Tls(e) => write!(f, "TLS: {e}"),
            TransportError::Plaintext => f.write_str("plain text on a TLS port"),
        }
    }
}

impl From<io::Error> for TransportError {
    fn from(e: io::Error) -> Self {
        TransportError::Io(e)
    }
}

impl Transport {
    /// The socket, for (de)registration with the poller.
    pub fn socket(&mut self) -> &mut TcpStream {
        match self {
            Transport::Plain(s) => s,
            Transport::Tls(t) => t.socket(),
        }
    }

    /// True when the peer has certainly gone: the socket's next read would be
    /// the end of the stream or a reset. Looks without taking any byte
    /// (`MSG_PEEK`), so it is only for the moment before a reply that must not
    /// be lost: the loop may not have seen the hang-up event yet when the same
    /// batch of events delivers that reply (http.md §2.3). Bytes waiting (a
    /// TLS close_notify among them) count as "still there".
    pub fn peer_gone(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.socket().peek(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ),
        }
    }

    /// Read until the socket is drained, at end of stream, or `cap` bytes
    /// are buffered (see `InBuf::read_from`). `until_eof`: the peer hung up,
    /// keep reading past a short read until the end shows.
    pub fn read_into(
        &mut self,
        buf: &mut InBuf,
        cap: usize,
        until_eof: bool,
    ) -> Result<(Io, usize), TransportError> {
        match self {
            Transport::Plain(s) => Ok(buf.read_from(s, cap, until_eof)?),
            Transport::Tls(t) => t.read_into(buf, cap, until_eof),
        }
    }

    /// Write `out` until the socket would block or everything is out.
    /// Returns the outcome and the bytes the socket accepted. `Stopped` with
    /// `out` not empty: a TLS handshake is still running.
    pub fn write_from(&mut self, out: &mut OutBuf) -> Result<(Io, usize), TransportError> {
        match self {
            Transport::Plain(s) => Ok(out.write_to(s)?),
            Transport::Tls(t) => Ok(t.write_from(out)?),
        }
    }

    /// Bytes are queued below `OutBuf` (TLS records not yet written).
    pub fn wants_write(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(t) => t.wants_write(),
        }
    }

    /// A TLS handshake has not completed yet.
    pub fn is_handshaking(&self) -> bool {
        matches!(self, Transport::Tls(t) if t.is_handshaking())
    }

    /// True exactly once per TLS connection, when its handshake is done.
    pub fn take_established(&mut self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(t) => t.state() == Handshake::InProgress && t.take_established(),
        }
    }

    /// See `TlsConn::outcome_at_close`; `None` for plain connections.
    pub fn handshake_outcome_at_close(&self) -> Option<bool> {
        match self {
            Transport::Plain(_) => None,
            Transport::Tls(t) => t.outcome_at_close(),
        }
    }

    /// Before the socket is dropped: TLS sends `close_notify` (best effort).
    pub fn close(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(_) => Ok(()),
            Transport::Tls(t) => t.close(),
        }
    }
}
