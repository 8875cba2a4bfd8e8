//! The byte stream under the protocol layers: plain TCP or TLS.
//!
//! [`transport::Transport`] is what a connection reads from and writes to;
//! the parsers, the HTTP layer and the state only ever see plaintext, and
//! `server/dispatch.rs` never branches on TLS. [`tls`] loads the PEM files
//! into rustls configurations (and reloads them on SIGHUP); [`x509`] reads
//! the one certificate field `stats` reports, its not-after date.

pub mod tls;
#[cfg(test)]
mod tls_fuzz;
pub mod transport;
pub mod x509;
