//! Errors that stop the server from starting. Each names the address or file.

use std::fmt;
use std::net::SocketAddr;

#[derive(Debug)]
pub enum StartupError {
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    Fence(String),
    /// A TLS file could not be used (names the flag and the path). Exit 78.
    Tls(crate::net::tls::TlsLoadError),
    Io(std::io::Error),
}

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartupError::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            StartupError::Fence(msg) => write!(f, "{msg}"),
            StartupError::Tls(e) => write!(f, "{e}"),
            StartupError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StartupError {}
