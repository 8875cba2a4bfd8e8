//! TLS: loading the PEM files into rustls configurations, and [`TlsConn`], a
//! non-blocking rustls server connection driven by the mio loop.
//!
//! Call order (rustls's `tlsserver-mio` example at 0.23):
//! - reading: `read_tls` from the socket, `process_new_packets` after **every**
//!   successful `read_tls`, then drain `reader()` into the connection's `InBuf`.
//!   On a `process_new_packets` error, one last `write_tls` sends the alert
//!   rustls queued, then the connection closes.
//! - writing: plaintext from the `OutBuf` into `writer()` (bounded by
//!   `set_buffer_limit`), then `write_tls` until the socket would block or
//!   rustls has nothing left (`wants_write()`).
//! - closing: `send_close_notify`, one best-effort `write_tls`, drop.
//!
//! Invariants:
//! - rustls's buffers are capped per connection ([`TLS_BUFFER_LIMIT_BYTES`]),
//!   so rustls's 64 KiB default does not decide our memory per connection.
//! - A connection whose first byte is not a TLS handshake record (0x16) is
//!   plaintext on a TLS port: it is closed without reaching rustls (the HTTP
//!   listener first answers `400`), so the log names the real problem.
//! - Session resumption is off (no cache, no tickets): dflockd clients keep
//!   their connections, and a server that never sends post-handshake messages
//!   keeps an idle connection's TLS state small and its socket quiet.

use super::transport::TransportError;
use crate::config::TlsFiles;
use crate::conn::buffer::{InBuf, Io, OutBuf};
use mio::net::TcpStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig, ServerConnection};
use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A TLS handshake must complete within this long (protocol.md §4.1).
pub const HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
/// rustls's per-connection cap on queued plaintext and queued TLS records
/// (`set_buffer_limit`): one full record (16 KiB of plaintext) in flight. Our
/// own `OutBuf` holds the rest, under `--max-output-bytes`.
pub const TLS_BUFFER_LIMIT_BYTES: usize = 16 * 1024;
/// Largest PEM file read (a long chain is a few KiB; this only stops `/dev/zero`).
const MAX_PEM_BYTES: u64 = 16 << 20;
/// The first byte of every TLS handshake record (content type 22).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;
/// ALPN offered on the HTTP listener (http.md §1).
pub const ALPN_HTTP: &[u8] = b"http/1.1";

/// A TLS file that could not be used. Always names the flag and the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsLoadError {
    pub flag: &'static str,
    pub path: PathBuf,
    pub reason: String,
}

impl fmt::Display for TlsLoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {} {:?}: {}",
            self.flag,
            self.path.display().to_string(),
            self.reason
        )
    }
}

impl std::error::Error for TlsLoadError {}

/// What the loaded files give the server: one configuration per listener
/// kind (they differ only in ALPN) and the facts `stats` reports.
#[derive(Debug, Clone)]
pub struct TlsMaterial {
    /// The TCP and Dreadlock listeners.
    pub line: Arc<ServerConfig>,
    /// The HTTP listener: ALPN `http/1.1`.
    pub http: Arc<ServerConfig>,
    /// The leaf certificate's notAfter, seconds since 1970 (`None`: unreadable).
    pub not_after: Option<i64>,
    /// Client certificates are required (`--tls-client-ca`).
    pub client_auth: bool,
}

/// Read and check the certificate chain, the key (against the leaf) and the
/// optional client CA bundle, and build the server configurations.
pub fn load(files: &TlsFiles) -> Result<TlsMaterial, TlsLoadError> {
    let err = |flag: &'static str, path: &Path, reason: String| TlsLoadError {
        flag,
        path: path.to_path_buf(),
        reason,
    };
    let cert_pem = read_pem(&files.cert).map_err(|r| err("--tls-cert", &files.cert, r))?;
    let chain = parse_certs(&cert_pem).map_err(|r| err("--tls-cert", &files.cert, r))?;
    let key_pem = read_pem(&files.key).map_err(|r| err("--tls-key", &files.key, r))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        let reason = match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no PEM private key found (PKCS#8, PKCS#1 or SEC1)".to_owned()
            }
            e => format!("not a PEM private key: {e}"),
        };
        err("--tls-key", &files.key, reason)
    })?;
    let provider = crypto_provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| err("--tls-cert", &files.cert, e.to_string()))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let pem = read_pem(ca).map_err(|r| err("--tls-client-ca", ca, r))?;
            let mut roots = RootCertStore::empty();
            for (i, cert) in parse_certs(&pem)
                .map_err(|r| err("--tls-client-ca", ca, r))?
                .into_iter()
                .enumerate()
            {
                roots.add(cert).map_err(|e| {
                    err(
                        "--tls-client-ca",
                        ca,
                        format!("certificate #{}: {e}", i + 1),
                    )
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| err("--tls-client-ca", ca, e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let not_after = chain
        .first()
        .and_then(|leaf| super::x509::not_after_unix(leaf));
    let mut line = builder.with_single_cert(chain, key).map_err(|e| {
        let reason = format!(
            "{e} (the certificate is {:?})",
            files.cert.display().to_string()
        );
        err("--tls-key", &files.key, reason)
    })?;
    line.session_storage = Arc::new(NoServerSessionStorage {});
    line.send_tls13_tickets = 0;
    let mut http = line.clone();
    http.alpn_protocols = vec![ALPN_HTTP.to_vec()];
    Ok(TlsMaterial {
        line: Arc::new(line),
        http: Arc::new(http),
        not_after,
        client_auth: files.client_ca.is_some(),
    })
}

/// The one crypto provider of the server and the client: *ring*, with
/// X25519 as the preferred key exchange.
///
/// rustls 0.23.48 marks `ring::default_provider` deprecated because *ring*
/// has no post-quantum key exchange (X25519MLKEM768). We keep *ring* on
/// purpose (no cmake/NASM, smaller binary; see Cargo.toml); its classical
/// suites and groups (X25519, P-256, P-384) are fully supported in 0.23.
///
/// The same release lists P-384 first, and a rustls server follows the
/// client's group order, so two rustls peers would agree on P-384, whose
/// *ring* code is generic bignum arithmetic: it made a handshake cost the
/// server about 1.1 ms of CPU here instead of about 0.24 ms with X25519.
/// X25519, then P-256, then P-384 is the order browsers and OpenSSL use.
#[allow(deprecated)]
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    use rustls::crypto::ring::kx_group;
    let mut provider = rustls::crypto::ring::default_provider();
    provider.kx_groups = vec![kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1];
    Arc::new(provider)
}

fn read_pem(path: &Path) -> Result<Vec<u8>, String> {
    let mut content = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_PEM_BYTES + 1).read_to_end(&mut content))
        .map_err(|e| format!("cannot read it: {}", crate::config::io_reason(&e)))?;
    if content.len() as u64 > MAX_PEM_BYTES {
        return Err(format!("larger than {MAX_PEM_BYTES} bytes"));
    }
    Ok(content)
}

/// A PEM error in words (the library's own text shows marker bytes as numbers).
fn pem_reason(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error as E;
    match e {
        E::MissingSectionEnd { end_marker } => format!(
            "a block has no \"-----END {}-----\" line",
            String::from_utf8_lossy(end_marker)
        ),
        E::IllegalSectionStart { line } => {
            format!("malformed BEGIN line {:?}", String::from_utf8_lossy(line))
        }
        other => other.to_string(),
    }
}

/// Every `CERTIFICATE` block, in file order (leaf first for a chain).
fn parse_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM certificate file: {}", pem_reason(&e)))?;
    if certs.is_empty() {
        return Err("no PEM CERTIFICATE block found".to_owned());
    }
    Ok(certs)
}

/// Where a connection's handshake is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    /// No byte received yet.
    Fresh,
    /// The first byte was a TLS record; the handshake runs.
    InProgress,
    /// Done and flushed (and reported once through `take_established`).
    Established,
    /// A TLS error or plain text before the handshake completed.
    Failed,
}

/// A rustls server connection over a non-blocking socket.
pub struct TlsConn {
    sock: TcpStream,
    tls: ServerConnection,
    state: Handshake,
    /// A fatal error was seen: no `close_notify` after the alert.
    broken: bool,
    /// Written to a plaintext client before the close (the HTTP port's 400).
    plaintext_reply: Option<&'static [u8]>,
}

impl fmt::Debug for TlsConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConn")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// A socket reader that notes whether the last read came back short (the
/// kernel queue is empty), so a drained socket costs no extra EAGAIN read.
struct ShortReads<'a> {
    sock: &'a mut TcpStream,
    short: bool,
}

impl Read for ShortReads<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.sock.read(buf)?;
        self.short = n < buf.len();
        Ok(n)
    }
}

impl TlsConn {
    pub fn new(
        sock: TcpStream,
        config: Arc<ServerConfig>,
        plaintext_reply: Option<&'static [u8]>,
    ) -> Result<TlsConn, rustls::Error> {
        let mut tls = ServerConnection::new(config)?;
        tls.set_buffer_limit(Some(TLS_BUFFER_LIMIT_BYTES));
        Ok(TlsConn {
            sock,
            tls,
            state: Handshake::Fresh,
            broken: false,
            plaintext_reply,
        })
    }

    pub fn socket(&mut self) -> &mut TcpStream {
        &mut self.sock
    }

    pub fn state(&self) -> Handshake {
        self.state
    }

    /// The handshake has not completed (and has not failed).
    pub fn is_handshaking(&self) -> bool {
        matches!(self.state, Handshake::Fresh | Handshake::InProgress) && self.tls.is_handshaking()
    }

    /// How the handshake ended, for a connection being closed: `Some(true)`
    /// completed (possibly not yet reported), `Some(false)` failed or cut
    /// short, `None` never started (no byte arrived) or already reported.
    pub fn outcome_at_close(&self) -> Option<bool> {
        match self.state {
            Handshake::InProgress => Some(!self.tls.is_handshaking()),
            Handshake::Failed => Some(false),
            Handshake::Fresh | Handshake::Established => None,
        }
    }

    /// TLS records are queued for the socket.
    pub fn wants_write(&self) -> bool {
        self.tls.wants_write()
    }

    /// True exactly once: when the handshake has completed and our side of it
    /// is flushed (sozu's definition of established).
    pub fn take_established(&mut self) -> bool {
        if self.state == Handshake::InProgress
            && !self.tls.is_handshaking()
            && !self.tls.wants_write()
        {
            self.state = Handshake::Established;
            return true;
        }
        false
    }

    /// Decrypt what the socket has into `buf`, up to `cap` bytes buffered.
    /// Outcomes as `InBuf::read_from`: `WouldBlock` once the socket is
    /// drained and rustls holds no plaintext, `Stopped` when `buf` is full
    /// (rustls may still hold plaintext: stay readable), `Eof` after the
    /// peer's close (with or without `close_notify`).
    pub fn read_into(
        &mut self,
        buf: &mut InBuf,
        cap: usize,
        until_eof: bool,
    ) -> Result<(Io, usize), TransportError> {
        let mut total = 0;
        let mut drained = false;
        loop {
            // Plaintext rustls already holds goes first: it is older than
            // anything still in the socket.
            if buf.len() < cap {
                // rustls's reader hands over everything it holds in one read, so
                // a short read means it is empty (no `until_eof` re-read needed).
                match buf.read_from(&mut self.tls.reader(), cap, false) {
                    Ok((Io::Eof, n)) => return Ok((Io::Eof, total + n)),
                    Ok((_, n)) => total += n,
                    // No close_notify before the TCP close: still an end of stream.
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        return Ok((Io::Eof, total));
                    }
                    Err(e) => return Err(TransportError::Io(e)),
                }
            }
            if buf.len() >= cap {
                return Ok((Io::Stopped, total));
            }
            if drained {
                return Ok((Io::WouldBlock, total));
            }
            if self.state == Handshake::Fresh {
                match self.check_first_byte() {
                    Ok(Some(io)) => return Ok((io, total)),
                    Ok(None) => {}
                    Err(e) => return Err(e),
                }
            }
            let mut src = ShortReads {
                sock: &mut self.sock,
                short: false,
            };
            match self.tls.read_tls(&mut src) {
                Ok(0) => return Ok((Io::Eof, total)),
                Ok(_) => {
                    drained = src.short && !until_eof;
                    if let Err(e) = self.tls.process_new_packets() {
                        self.fail();
                        // Last gasp: send the alert rustls queued for the peer.
                        if let Err(we) = self.tls.write_tls(&mut self.sock) {
                            log::trace!("TLS alert not sent: {we}");
                        }
                        return Err(TransportError::Tls(e));
                    }
                }
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock => return Ok((Io::WouldBlock, total)),
                    io::ErrorKind::Interrupted => {}
                    // rustls's plaintext buffer is full: `buf` took all it could.
                    io::ErrorKind::Other if !self.tls.wants_read() => {
                        return Ok((Io::Stopped, total));
                    }
                    _ => return Err(TransportError::Io(e)),
                },
            }
        }
    }

    /// The first byte decides: a TLS record goes on to rustls, anything else
    /// is plain text on a TLS port. `Ok(Some(io))` stops the read.
    fn check_first_byte(&mut self) -> Result<Option<Io>, TransportError> {
        let mut first = [0u8; 1];
        loop {
            match self.sock.peek(&mut first) {
                Ok(0) => return Ok(Some(Io::Eof)),
                Ok(_) if first[0] == TLS_HANDSHAKE_RECORD => {
                    self.state = Handshake::InProgress;
                    return Ok(None);
                }
                Ok(_) => {
                    self.fail();
                    self.answer_plaintext();
                    return Err(TransportError::Plaintext);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Some(Io::WouldBlock)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(TransportError::Io(e)),
            }
        }
    }

    /// A fatal error: a handshake still running has failed.
    fn fail(&mut self) {
        self.broken = true;
        if self.state != Handshake::Established {
            self.state = Handshake::Failed;
        }
    }

    /// Best effort, on a fresh socket whose send buffer is empty: write the
    /// plaintext reply, read what the client sent (closing with unread input
    /// would reset the connection and could destroy the reply before the
    /// client reads it), then half-close.
    fn answer_plaintext(&mut self) {
        let Some(reply) = self.plaintext_reply else {
            return;
        };
        if let Err(e) = self.sock.write_all(reply) {
            log::trace!("plaintext reply not sent: {e}");
            return;
        }
        let mut sink = [0u8; 4096];
        for _ in 0..16 {
            match self.sock.read(&mut sink) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
        if let Err(e) = self.sock.shutdown(std::net::Shutdown::Write) {
            log::trace!("half-close failed: {e}");
        }
    }

    /// Hand `out`'s plaintext to rustls and write TLS records to the socket
    /// until it would block or nothing is left. Returns the outcome and the
    /// bytes the socket accepted. Plaintext waits in `out` during the handshake.
    pub fn write_from(&mut self, out: &mut OutBuf) -> io::Result<(Io, usize)> {
        let mut total = 0;
        loop {
            if !out.is_empty() && !self.tls.is_handshaking() {
                let n = self.tls.writer().write(out.data())?;
                out.consume(n);
            }
            if !self.tls.wants_write() {
                return Ok((Io::Stopped, total));
            }
            match self.tls.write_tls(&mut self.sock) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => total += n,
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock => return Ok((Io::WouldBlock, total)),
                    io::ErrorKind::Interrupted => {}
                    _ => return Err(e),
                },
            }
        }
    }

    /// `close_notify` and one best-effort write, before the socket is dropped.
    pub fn close(&mut self) -> io::Result<()> {
        if self.broken || matches!(self.state, Handshake::Fresh | Handshake::Failed) {
            return Ok(());
        }
        self.tls.send_close_notify();
        self.tls.write_tls(&mut self.sock).map(drop)
    }
}
