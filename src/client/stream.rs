//! The client's byte stream: plain TCP, or TLS over it (rustls's client).
//!
//! A `Stream` can be cloned into a second handle on the same connection
//! ([`Stream::try_clone`]), because push-receiving connections read on one
//! thread and write on others. For TLS both handles share the one
//! `ClientConnection` behind a mutex, and the reading handle never holds the
//! mutex while it blocks on the socket: it reads raw bytes first, then locks
//! only to decrypt them. So a heartbeat `ping` can always be written while a
//! reader thread waits for frames.

use super::error::{Error, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// TLS settings of a client: the CAs it trusts, optionally a client
/// certificate (for servers started with `--tls-client-ca`), and the name the
/// server's certificate must carry (by default the host part of each address).
#[derive(Clone)]
pub struct TlsOptions {
    config: Arc<ClientConfig>,
    server_name: Option<String>,
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl TlsOptions {
    /// Trust the CA certificates in the PEM file `ca_file` (TLS 1.2 and 1.3).
    ///
    /// Errors: `Invalid` naming the file when it cannot be read or holds no
    /// usable certificate.
    pub fn from_ca_file(ca_file: impl AsRef<Path>) -> Result<TlsOptions> {
        let config = builder(ca_file.as_ref())?.with_no_client_auth();
        Ok(TlsOptions::from_config(Arc::new(config)))
    }

    /// As [`TlsOptions::from_ca_file`], presenting the client certificate
    /// chain in `cert_file` with its key in `key_file` (mutual TLS).
    pub fn with_client_cert(
        ca_file: impl AsRef<Path>,
        cert_file: impl AsRef<Path>,
        key_file: impl AsRef<Path>,
    ) -> Result<TlsOptions> {
        let (cert_file, key_file) = (cert_file.as_ref(), key_file.as_ref());
        let chain = certs(cert_file)?;
        let key = PrivateKeyDer::from_pem_file(key_file)
            .map_err(|e| invalid(key_file, format!("no usable private key: {e}")))?;
        let config = builder(ca_file.as_ref())?
            .with_client_auth_cert(chain, key)
            .map_err(|e| invalid(key_file, e.to_string()))?;
        Ok(TlsOptions::from_config(Arc::new(config)))
    }

    /// Use a rustls configuration built elsewhere.
    pub fn from_config(config: Arc<ClientConfig>) -> TlsOptions {
        TlsOptions {
            config,
            server_name: None,
        }
    }

    /// Verify the server's certificate against `name` instead of the host
    /// part of the address (for addresses that are IPs or aliases).
    pub fn server_name(mut self, name: impl Into<String>) -> TlsOptions {
        self.server_name = Some(name.into());
        self
    }
}

fn invalid(path: &Path, what: String) -> Error {
    Error::Invalid(format!("TLS file {:?}: {what}", path.display().to_string()))
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| invalid(path, e.to_string()))?;
    if certs.is_empty() {
        return Err(invalid(path, "no PEM CERTIFICATE block".into()));
    }
    Ok(certs)
}

fn builder(
    ca_file: &Path,
) -> Result<rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert>> {
    let mut roots = RootCertStore::empty();
    for cert in certs(ca_file)? {
        roots
            .add(cert)
            .map_err(|e| invalid(ca_file, e.to_string()))?;
    }
    Ok(
        ClientConfig::builder_with_provider(crate::net::tls::crypto_provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| Error::Invalid(e.to_string()))?
            .with_root_certificates(roots),
    )
}

/// One connection's byte stream (see the module docs).
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(TlsStream),
}

pub(crate) struct TlsStream {
    sock: TcpStream,
    tls: Arc<Mutex<ClientConnection>>,
}

fn lock(tls: &Mutex<ClientConnection>) -> MutexGuard<'_, ClientConnection> {
    tls.lock().unwrap_or_else(|p| p.into_inner())
}

impl Stream {
    /// Wrap a connected socket; with TLS, run the handshake now (bounded by
    /// the socket's timeouts) so certificate errors show up at connect.
    pub fn open(sock: TcpStream, addr: &str, tls: Option<&TlsOptions>) -> Result<Stream> {
        let Some(opts) = tls else {
            return Ok(Stream::Plain(sock));
        };
        let name = match &opts.server_name {
            Some(n) => n.clone(),
            None => host_of(addr).to_owned(),
        };
        let name = ServerName::try_from(name)
            .map_err(|e| Error::Invalid(format!("TLS server name for {addr}: {e}")))?;
        let mut conn = ClientConnection::new(opts.config.clone(), name)
            .map_err(|e| Error::Invalid(format!("TLS: {e}")))?;
        let mut sock = sock;
        while conn.is_handshaking() {
            conn.complete_io(&mut sock)?;
        }
        Ok(Stream::Tls(TlsStream {
            sock,
            tls: Arc::new(Mutex::new(conn)),
        }))
    }

    fn sock(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => &t.sock,
        }
    }

    /// A second handle on the same connection.
    pub fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Plain(s) => Stream::Plain(s.try_clone()?),
            Stream::Tls(t) => Stream::Tls(TlsStream {
                sock: t.sock.try_clone()?,
                tls: t.tls.clone(),
            }),
        })
    }

    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.sock().set_read_timeout(t)
    }

    /// Nothing has arrived unasked and the peer has not closed: no buffered
    /// plaintext in rustls, and nothing readable on the socket.
    pub fn is_quiet(&self) -> bool {
        if let Stream::Tls(t) = self {
            let mut tls = lock(&t.tls);
            let mut byte = [0u8; 1];
            if !matches!(tls.reader().read(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            {
                return false;
            }
        }
        let sock = self.sock();
        let mut byte = [0u8; 1];
        let quiet = sock.set_nonblocking(true).is_ok()
            && matches!(sock.peek(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
        sock.set_nonblocking(false).is_ok() && quiet
    }

    /// Close both directions (TLS: `close_notify` first, best effort); a
    /// reader blocked on another handle then sees the end of stream.
    pub fn shutdown(&self) {
        if let Stream::Tls(t) = self {
            let mut tls = lock(&t.tls);
            tls.send_close_notify();
            let mut sock = &t.sock;
            tls.write_tls(&mut sock).ok();
        }
        self.sock().shutdown(Shutdown::Both).ok();
    }
}

/// `host` of `host:port` (`[v6]:port` without the brackets).
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(_) => Ok(()),
        }
    }
}

/// Raw bytes read per socket read before decryption (one TLS read chunk).
const RAW_READ: usize = 4096;

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut raw = [0u8; RAW_READ];
        loop {
            {
                let mut tls = lock(&self.tls);
                match tls.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                    Err(e) => return Err(e),
                }
            }
            // Block on the socket without the lock, so writers are never stuck
            // behind a reader waiting for frames.
            let n = (&self.sock).read(&mut raw)?;
            let mut tls = lock(&self.tls);
            if n == 0 {
                // Let rustls see the end (it then reports clean or unclean EOF).
                tls.read_tls(&mut io::empty())?;
                continue;
            }
            let mut rest = &raw[..n];
            while !rest.is_empty() {
                if tls.read_tls(&mut rest)? == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "TLS: record buffer full",
                    ));
                }
                tls.process_new_packets()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            }
            // Alerts or key-update replies rustls wants sent.
            let mut sock = &self.sock;
            while tls.wants_write() {
                tls.write_tls(&mut sock)?;
            }
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut tls = lock(&self.tls);
        let n = tls.writer().write(buf)?;
        let mut sock = &self.sock;
        while tls.wants_write() {
            tls.write_tls(&mut sock)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn hosts() {
        assert_eq!(host_of("db.example:6388"), "db.example");
        assert_eq!(host_of("127.0.0.1:6388"), "127.0.0.1");
        assert_eq!(host_of("[::1]:6388"), "::1");
        assert_eq!(host_of("noport"), "noport");
    }
}
