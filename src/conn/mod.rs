//! One client connection: transport (plain or TLS socket), buffers, readiness
//! and protocol phase. Plain data plus small methods; the server drives it.
//!
//! Lifecycle: accepted (a TLS connection starts its handshake, with a 10 s
//! deadline) → `Open` ⇄ `Parked` → `Closing` (flush what is pending, TLS
//! records included) → `Dead` → closed after the loop iteration (TLS sends
//! `close_notify` first).

pub mod buffer;
pub mod http;

use crate::net::transport::Transport;
use crate::owner::OwnerId;
use crate::peer::PeerAddr;
use crate::protocol::explain::CloseReason;
use crate::protocol::reply::{DreadReply, Reply, Status};
use crate::timer::wheel::TimerKey;
use buffer::{InBuf, OutBuf};
use std::net::IpAddr;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading and executing requests.
    Open,
    /// A blocking command waits; later requests stay buffered (protocol.md §2.5).
    Parked,
    /// Authentication failed: nothing more is read; `error_auth` follows after 100 ms.
    AuthFailing,
    /// Flush what is pending, then close.
    Closing,
    /// Close at the end of this loop iteration, without flushing.
    Dead,
}

#[derive(Debug)]
pub struct Conn {
    pub id: OwnerId,
    pub serial: u64,
    pub transport: Transport,
    pub peer: IpAddr,
    /// The peer's port (with `peer`, the `ip:port` the log and `stats` show).
    pub peer_port: u16,
    /// Index of the listener that accepted the connection.
    pub listener: u8,
    /// Why the connection is closing, logged when it is closed.
    pub close_reason: CloseReason,
    pub inbuf: InBuf,
    pub outbuf: OutBuf,
    pub phase: Phase,
    /// Readiness seen and not yet drained to WouldBlock (user-space readiness).
    pub readable: bool,
    pub writable: bool,
    /// Reads returned end of stream.
    pub read_closed: bool,
    /// The poller reported a hang-up or error; seen even while not reading.
    pub hup: bool,
    /// The cross-protocol guard (§4.2) has looked at the first line.
    pub first_line_checked: bool,
    pub authed: bool,
    /// The most recent request was a Dreadlock line (affects timeout notices).
    pub last_dread: bool,
    /// On the ready list.
    pub queued: bool,
    /// On the end-of-iteration flush list.
    pub flush_queued: bool,
    /// Reading paused by back-pressure (full input or output over the limit).
    pub paused: bool,
    /// Last byte received (ms).
    pub last_rx: u64,
    /// First byte of the request currently arriving (ms); meaningful while `inbuf` is non-empty.
    pub req_start: u64,
    /// Last time the socket accepted output bytes (ms).
    pub last_tx: u64,
    pub idle_timer: Option<TimerKey>,
    pub write_timer: Option<TimerKey>,
    /// HTTP connections only (the HTTP port): what the connection is doing.
    pub http: Option<Box<http::HttpState>>,
}

impl Conn {
    pub fn new(id: OwnerId, serial: u64, transport: Transport, peer: IpAddr, now: u64) -> Self {
        Conn {
            id,
            serial,
            transport,
            peer,
            peer_port: 0,
            listener: 0,
            close_reason: CloseReason::default(),
            inbuf: InBuf::default(),
            outbuf: OutBuf::default(),
            phase: Phase::Open,
            readable: false,
            writable: false,
            read_closed: false,
            hup: false,
            first_line_checked: false,
            authed: false,
            last_dread: false,
            queued: false,
            flush_queued: false,
            paused: false,
            last_rx: now,
            req_start: now,
            last_tx: now,
            idle_timer: None,
            write_timer: None,
            http: None,
        }
    }

    /// A notice in the dialect of the connection's most recent request:
    /// the Dreadlock line after a Dreadlock request, else the status word.
    pub fn notice(&self, dread: DreadReply, plain: Status) -> Reply {
        if self.last_dread {
            Reply::Dread(dread)
        } else {
            Reply::Status(plain)
        }
    }

    /// The peer's `ip:port`.
    pub fn peer_addr(&self) -> PeerAddr {
        PeerAddr {
            ip: self.peer,
            port: self.peer_port,
        }
    }

    /// Close after flushing pending output, for `reason`.
    pub fn close_for(&mut self, reason: CloseReason) {
        self.phase = Phase::Closing;
        self.close_reason = reason;
    }

    /// Close at the end of this loop iteration without flushing, for `reason`.
    pub fn drop_for(&mut self, reason: CloseReason) {
        self.phase = Phase::Dead;
        self.close_reason = reason;
    }

    /// Output not yet on the wire: replies in `outbuf`, or TLS records queued
    /// in rustls (`wants_write()`, which also covers handshake messages and alerts).
    pub fn has_pending_output(&self) -> bool {
        !self.outbuf.is_empty() || self.transport.wants_write()
    }

    pub fn is_closing(&self) -> bool {
        matches!(self.phase, Phase::Closing | Phase::Dead)
    }
}

#[cfg(test)]
mod tests {
    /// Memory per connection is a budget (embedded hosts, 10,000 idle
    /// connections in ~12 MiB): an idle connection is this struct, its
    /// coordination state, and no buffers.
    #[test]
    fn connection_memory_budget() {
        assert!(
            size_of::<super::Conn>() <= 192,
            "{}",
            size_of::<super::Conn>()
        );
        // 168: the peer's `ip:port` for `stats` (`owner_peer`) took 16 bytes
        // (20, four of them in former padding); 10,000 idle connections
        // measured 6.1 MB before it, so +160 kB keeps well inside the budget.
        // 176: the one-byte `opt` options (§8.15) found no padding left, so
        // the record grew by its alignment, 8 bytes: +80 kB at 10,000.
        let state = size_of::<Option<crate::state::owner::ConnState>>();
        assert!(state <= 176, "{state}");
    }
}
