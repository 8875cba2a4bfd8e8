//! TLS in the loop: wrapping accepted sockets, the handshake deadline, the
//! handshake counters of `stats`, and SIGHUP reloads of the TLS files.
//!
//! Reload keeps every open connection as it is: each rustls connection holds
//! its own `Arc` of the configuration it started with, so swapping the
//! server's `Arc`s only changes what new handshakes use.

use super::{Server, live};
use crate::config::TlsFiles;
use crate::conn::Phase;
use crate::net::tls::{self, HANDSHAKE_TIMEOUT_MS, TlsConn, TlsMaterial};
use crate::net::transport::Transport;
use crate::owner::OwnerId;
use crate::state::TlsView;
use crate::timer::{Timer, deadline_after};
use mio::net::TcpStream;

/// The files (re-read on SIGHUP) and what was built from them.
pub(super) struct TlsRuntime {
    pub files: TlsFiles,
    pub material: TlsMaterial,
}

impl TlsRuntime {
    pub fn view(&self) -> TlsView {
        TlsView {
            cert_not_after: self.material.not_after,
            client_auth: self.material.client_auth,
            ..TlsView::default()
        }
    }
}

/// The status line and body a plain-text request on the HTTPS port gets.
const PLAIN_HTTP_ON_TLS_PORT: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Length: 42\r\n\
Connection: close\r\n\
\r\n\
This port speaks HTTPS: use https:// URLs\n";

impl Server {
    /// The transport for an accepted socket: plain, or a fresh rustls server
    /// connection on the current configuration. `None`: it could not be made
    /// (logged; the socket is dropped).
    pub(super) fn wrap(&self, stream: TcpStream, http: bool) -> Option<Transport> {
        let Some(rt) = &self.tls else {
            return Some(Transport::Plain(stream));
        };
        let (config, reply) = if http {
            (rt.material.http.clone(), Some(PLAIN_HTTP_ON_TLS_PORT))
        } else {
            (rt.material.line.clone(), None)
        };
        match TlsConn::new(stream, config, reply) {
            Ok(t) => Some(Transport::Tls(Box::new(t))),
            Err(e) => {
                log::warn!("cannot start a TLS connection: {e}");
                None
            }
        }
    }

    /// Start the handshake deadline of a new TLS connection.
    pub(super) fn arm_handshake(&mut self, id: OwnerId, now: u64) {
        if self.tls.is_some() {
            let at = deadline_after(now, HANDSHAKE_TIMEOUT_MS);
            self.wheel.insert(at, Timer::Handshake { conn: id });
        }
    }

    /// The deadline passed: a connection still handshaking is closed.
    pub(super) fn handshake_deadline(&mut self, id: OwnerId) {
        let Some(c) = live(&mut self.conns, id) else {
            return;
        };
        if c.transport.is_handshaking() && c.phase != Phase::Dead {
            log::debug!(
                "conn {} from {}: TLS handshake not done within {} s, closing",
                c.serial,
                c.peer,
                HANDSHAKE_TIMEOUT_MS / 1000
            );
            c.phase = Phase::Dead;
            self.dead.push(id);
        }
    }

    /// Count a handshake the moment it is done (and flushed).
    pub(super) fn note_established(&mut self, id: OwnerId) {
        let Some(c) = live(&mut self.conns, id) else {
            return;
        };
        if c.transport.take_established() {
            log::trace!("conn {} from {}: TLS established", c.serial, c.peer);
            if let Some(v) = &mut self.state.view.tls {
                v.handshakes_completed += 1;
            }
        }
    }

    /// A TLS connection is being closed: `close_notify`, and the handshake
    /// counters for one that never got to be established.
    pub(super) fn close_transport(&mut self, transport: &mut Transport, serial: u64) {
        if let (Some(done), Some(v)) = (
            transport.handshake_outcome_at_close(),
            &mut self.state.view.tls,
        ) {
            if done {
                v.handshakes_completed += 1;
            } else {
                v.handshakes_failed += 1;
            }
        }
        if let Err(e) = transport.close() {
            log::trace!("conn {serial}: close_notify not sent: {e}");
        }
    }

    /// SIGHUP: re-read the certificate, key and client CA. New handshakes use
    /// them; on any failure the old configuration stays. Returns whether TLS
    /// is configured at all.
    pub(super) fn reload_tls(&mut self) -> bool {
        let Some(rt) = &mut self.tls else {
            return false;
        };
        match tls::load(&rt.files) {
            Ok(material) => {
                let until = material
                    .not_after
                    .map_or_else(|| "unknown".to_owned(), crate::net::x509::rfc3339);
                log::info!(
                    "reload: TLS certificate and key re-read from {} and {} (valid until {until})",
                    rt.files.cert.display(),
                    rt.files.key.display()
                );
                rt.material = material;
                if let Some(v) = &mut self.state.view.tls {
                    v.cert_not_after = rt.material.not_after;
                    v.client_auth = rt.material.client_auth;
                }
            }
            Err(e) => log::error!("reload failed, keeping the old TLS configuration: {e}"),
        }
        true
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn plaintext_reply_is_a_complete_response() {
        let text = std::str::from_utf8(super::PLAIN_HTTP_ON_TLS_PORT).expect("ascii");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 400 "));
        assert!(head.contains(&format!("\r\nContent-Length: {}\r\n", body.len())));
    }
}
