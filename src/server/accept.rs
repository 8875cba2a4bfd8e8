//! Accepting connections: a bounded batch per iteration, the global and per-IP
//! caps (protocol.md §4.1: over a cap the connection is closed right after
//! accept, without a reply, and counted as rejected), and the TLS wrapping
//! with its handshake deadline when TLS is on.

use super::Server;
use super::refusal_log::ListenerTag;
use super::tokens::conn_token;
use crate::conn::Conn;
use crate::owner::OwnerId;
use crate::stats::LISTENER_LABELS;
use crate::timer::deadline_after;
use mio::Interest;
use std::io;
use std::net::SocketAddr;

/// Connections accepted per listener per loop iteration, so a connect storm
/// cannot starve established clients.
const ACCEPT_BATCH: usize = 256;

impl Server {
    pub(super) fn accept_pending(&mut self) {
        for i in 0..self.listeners.len() {
            let mut budget = ACCEPT_BATCH;
            while budget > 0 {
                let Some(Some(l)) = self.listeners.get_mut(i) else {
                    break;
                };
                if !l.ready {
                    break;
                }
                budget -= 1;
                match l.sock.accept() {
                    Ok((stream, peer)) => self.admit(stream, peer, i),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => l.ready = false,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        // EMFILE and friends: keep `ready`, retry next iteration
                        // (the poll timeout stays short while the ready list is busy).
                        log::warn!("accept on {} failed: {e}", l.addr);
                        break;
                    }
                }
            }
        }
    }

    fn admit(&mut self, stream: mio::net::TcpStream, peer: SocketAddr, listener: usize) {
        let ip = peer.ip();
        let kind = match self.listeners.get(listener) {
            Some(Some(l)) => l.kind,
            _ => "tcp",
        };
        let http = kind == "http";
        let listener = u8::try_from(listener).unwrap_or(u8::MAX);
        let over_global =
            self.net.max_connections > 0 && self.conns.len() as u64 >= self.net.max_connections;
        // The per-IP caps: --max-connections-per-ip for the TCP and Dreadlock
        // listeners, --http-max-connections-per-ip for the HTTP one (plain or TLS alike).
        let (per_ip, ip_cap, ip_flag) = if http {
            let cap = self.http_cfg.max_connections_per_ip;
            (&self.http_per_ip, cap, "--http-max-connections-per-ip")
        } else {
            let cap = self.net.max_connections_per_ip;
            (&self.per_ip, cap, "--max-connections-per-ip")
        };
        let here = per_ip.get(&ip).copied().unwrap_or(0);
        let over_ip = ip_cap > 0 && u64::from(here) >= ip_cap;
        // Only line connections authenticate (HTTP checks a bearer token per request).
        let needs_auth = !http && self.net.auth_token.is_some();
        let unauth_cap = self.net.max_unauthenticated;
        let over_unauth = needs_auth && unauth_cap > 0 && self.unauthed >= unauth_cap;
        if over_global || over_ip || over_unauth {
            self.state.totals.connections_rejected += 1;
            // Indexes into stats::REJECT_LABELS.
            let (flag, cap, reason) = if over_global {
                ("--max-connections", self.net.max_connections, 0)
            } else if over_ip {
                (ip_flag, ip_cap, if http { 2 } else { 1 })
            } else {
                ("--max-unauthenticated-connections", unauth_cap, 3)
            };
            self.state.totals.by_label.rejected[reason] += 1;
            let on = ListenerTag::of(&self.listeners, listener);
            let now = self.clock.now();
            self.refusals
                .connection_cap(now, peer.into(), on, flag, cap);
            return; // dropping the stream closes it
        }
        if let Err(e) = stream.set_nodelay(true) {
            log::debug!("set_nodelay failed for {ip}: {e}");
        }
        let Some(mut transport) = self.wrap(stream, http) else {
            return;
        };
        let entry = self.conns.vacant_entry();
        let slot = entry.key();
        if self.gens.len() <= slot {
            self.gens.resize(slot + 1, 0);
        }
        let id = OwnerId::conn(slot, self.gens[slot]);
        // Register R|W once; interest is gated in user space (TLS included:
        // pending records are flushed on the writable edge).
        if let Err(e) = self.poll.registry().register(
            transport.socket(),
            conn_token(id),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            log::warn!("cannot register connection from {ip}: {e}");
            return;
        }
        let serial = self.next_serial;
        self.next_serial += 1;
        let now = self.clock.now();
        let mut conn = Conn::new(id, serial, transport, ip, now);
        conn.peer_port = peer.port();
        conn.listener = listener;
        if http {
            conn.http = Some(Box::default());
            *self.http_per_ip.entry(ip).or_insert(0) += 1;
            self.http_conns += 1;
        }
        entry.insert(conn);
        if !http {
            *self.per_ip.entry(ip).or_insert(0) += 1;
        }
        if needs_auth {
            self.unauthed += 1;
        }
        self.state.on_connect_from(id, serial, peer.into());
        self.state.totals.connections_accepted += 1;
        if let Some(i) = LISTENER_LABELS.iter().position(|l| *l == kind) {
            self.state.totals.by_label.accepted[i] += 1;
        }
        self.refresh_connection_view();
        self.arm_handshake(id, now);
        if http {
            self.arm_idle(id, deadline_after(now, super::http::REQUEST_TIMEOUT_MS));
        } else if self.net.read_timeout_ms > 0 {
            self.arm_idle(id, deadline_after(now, self.net.read_timeout_ms));
        }
        log::debug!(
            "conn {serial} from {peer} accepted on {}",
            ListenerTag::of(&self.listeners, listener)
        );
    }
}
