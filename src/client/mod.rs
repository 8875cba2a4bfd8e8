//! # `dflockd::client` — a blocking Rust client
//!
//! std::net only: no async runtime. Like the Python, TypeScript and Go clients, every
//! lock-like object gets **its own connection**: a [`Guard`] owns the connection its
//! grant was made on, so the server's release-on-disconnect (protocol.md §4.4) frees
//! the lock if the process dies, and a parked acquire never blocks anything else.
//!
//! ```text
//!  Client (servers + options, cheap to clone)
//!   ├─ lock / semaphore / rwlock / election ── acquire ──▶ Guard ── owns ──▶ Arc<Mutex<Conn>>
//!   │                                                        └─ renewal thread ─┘ (same conn)
//!   ├─ barrier ─────────── one connection per wait
//!   ├─ session ─────────── counters, KV, lists, signal, ping, stats: ≤ 1 conn per server
//!   └─ subscriber / watcher / observer ── one conn per server + a reader thread each,
//!                                         push frames demultiplexed from replies
//! ```
//!
//! * **Sharding.** A key lives on server `crc32(key) % servers.len()` ([`shard`]),
//!   the placement of the other dflockd clients. Pub/sub patterns and watch patterns
//!   can match keys on any server, so subscribers and watchers register on every
//!   server; a signal is published on its channel's server.
//! * **Renewal.** A guard renews its lease on a background thread every
//!   `lease × renew_ratio` (default 0.5), and at least every 15 s so the holding
//!   connection never reaches the server's idle timeout (§2.8). The thread uses the
//!   guard's own connection (shared through a mutex), not a second one: renewal
//!   traffic is what keeps the holding connection alive, and a second connection
//!   would leave the holder idle and released after `--read-timeout`. A renewal
//!   answered `error_lease_expired` or `error`, or a failed connection, marks the
//!   guard lost ([`Guard::is_lost`], [`LostHandle`], [`Guard::on_lost`]).
//! * **Drop releases.** Dropping a guard stops its renewal thread, releases the grant
//!   (best effort) and closes the connection.
//! * **TLS.** [`ClientOptions::tls`] ([`TlsOptions`]: trusted CAs, optionally a client
//!   certificate) makes every connection TLS 1.2/1.3 with rustls; the handshake runs
//!   at connect, so an untrusted or expired certificate fails there.
//! * **Time.** The protocol counts whole seconds: timeouts and leases given as
//!   `Duration` are rounded up to whole seconds; `Duration::ZERO` as a timeout is a
//!   non-blocking try.

mod acquire;
mod barrier;
mod conn;
mod counter;
mod election;
mod error;
mod guard;
mod kv;
mod lease_events;
mod list;
mod lock;
mod lost;
mod push;
mod renew;
mod reply;
mod rwlock;
mod semaphore;
mod session;
pub mod shard;
mod stream;
mod subscriber;
mod watcher;

pub use acquire::{Enqueued, Pending};
pub use barrier::Barrier;
pub use conn::Conn;
pub use election::{Election, LeaderEvents, Observer};
pub use error::{Error, Result};
pub use guard::Guard;
pub use lock::Lock;
pub use lost::{LostHandle, LostReason};
pub use reply::{
    LeaderEvent, LeaderEventKind, LeaseNotice, LeaseNoticeKind, Push, Signal, WatchEvent,
    fence_from_token,
};
pub use rwlock::RwLock;
pub use semaphore::Semaphore;
pub use session::Session;
pub use stream::TlsOptions;
pub use subscriber::{Signals, Subscriber};
pub use watcher::{WatchEvents, Watcher};

use std::sync::Arc;
use std::time::Duration;

/// The server address used when none is given.
pub const DEFAULT_SERVER: &str = "127.0.0.1:6388";
/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default IO timeout: how long a reply may take beyond a blocking command's own
/// timeout.
pub const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Default fraction of the lease after which a guard renews.
pub const DEFAULT_RENEW_RATIO: f64 = 0.5;
/// Heartbeat for connections that would otherwise be idle (protocol.md §2.8's
/// convention: a `ping` every 15 s stays under the default 23 s idle timeout).
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// Largest timeout, lease or TTL the protocol accepts, in seconds (§3.2).
pub const MAX_SECONDS: u64 = 9_223_372_036;

/// Connection settings shared by every object a [`Client`] creates.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// `host:port` of each server. Keys are placed by CRC-32 modulo this list's
    /// length, so every client of a fleet must list the servers in the same order.
    pub servers: Vec<String>,
    /// Shared secret sent with `auth` as the first request of every connection.
    pub auth_token: Option<String>,
    /// Limit on establishing one TCP connection (`ZERO` = the OS default).
    pub connect_timeout: Duration,
    /// Limit on each socket write and on each reply (added to a blocking command's
    /// own timeout). `None` waits forever.
    pub io_timeout: Option<Duration>,
    /// Renew a held lease after `lease × renew_ratio`. Must be in `0.0..1.0`; `0.0`
    /// turns automatic renewal off (renew by hand with [`Guard::renew`]). Without
    /// renewal the holding connection sends nothing, so the server's idle timeout
    /// (`--read-timeout`, 23 s by default) closes it and releases the grant.
    pub renew_ratio: f64,
    /// Speak TLS to every server (servers started with `--tls-cert`). `None`: plain TCP.
    pub tls: Option<TlsOptions>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            servers: vec![DEFAULT_SERVER.to_owned()],
            auth_token: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            io_timeout: Some(DEFAULT_IO_TIMEOUT),
            renew_ratio: DEFAULT_RENEW_RATIO,
            tls: None,
        }
    }
}

impl ClientOptions {
    /// Default options for the given servers.
    pub fn with_servers<I, S>(servers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ClientOptions {
            servers: servers.into_iter().map(Into::into).collect(),
            ..ClientOptions::default()
        }
    }
}

/// Entry point: holds the server list and options; cheap to clone and share between
/// threads. It opens no connection by itself.
#[derive(Clone, Debug)]
pub struct Client {
    opts: Arc<ClientOptions>,
}

impl Client {
    /// Checks the options. Errors with `Invalid` for an empty server list, an empty
    /// address, a zero IO timeout or a renew ratio outside `0.0..1.0`.
    pub fn new(opts: ClientOptions) -> Result<Client> {
        if opts.servers.is_empty() {
            return Err(Error::Invalid("no servers given".into()));
        }
        if opts.servers.iter().any(|s| s.trim().is_empty()) {
            return Err(Error::Invalid("empty server address".into()));
        }
        if opts.io_timeout.is_some_and(|t| t.is_zero()) {
            return Err(Error::Invalid(
                "io timeout must be above zero (or None)".into(),
            ));
        }
        if !(opts.renew_ratio.is_finite() && (0.0..1.0).contains(&opts.renew_ratio)) {
            return Err(Error::Invalid(format!(
                "renew ratio {} is not in 0.0..1.0",
                opts.renew_ratio
            )));
        }
        if let Some(t) = &opts.auth_token {
            if t.trim_matches([' ', '\t']).is_empty() || t.contains(['\r', '\n']) {
                return Err(Error::Invalid(
                    "auth token is empty or contains CR/LF".into(),
                ));
            }
        }
        Ok(Client {
            opts: Arc::new(opts),
        })
    }

    /// A client for one server with default options.
    pub fn single(addr: &str) -> Result<Client> {
        Client::new(ClientOptions::with_servers([addr]))
    }

    /// The options this client was built with.
    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    /// Index in `servers` of the server that owns `key`.
    pub fn server_index(&self, key: &str) -> usize {
        shard::shard_index(key, self.opts.servers.len())
    }

    /// Address of the server that owns `key`.
    pub fn server_for(&self, key: &str) -> &str {
        &self.opts.servers[self.server_index(key)]
    }

    /// Opens an (authenticated) connection to the server that owns `key`.
    pub fn connect(&self, key: &str) -> Result<Conn> {
        self.connect_server(self.server_index(key))
    }

    /// Opens an (authenticated) connection to `servers[index]`; `Invalid` when out
    /// of range.
    pub fn connect_server(&self, index: usize) -> Result<Conn> {
        let addr = self
            .opts
            .servers
            .get(index)
            .ok_or_else(|| Error::Invalid(format!("no server #{index}")))?;
        Conn::connect(addr, &self.opts)
    }

    /// An exclusive lock on `key` (`l r n e w`).
    pub fn lock(&self, key: &str) -> Lock {
        Lock::new(self.clone(), key)
    }

    /// A semaphore with `limit` permits on `key` (`sl sr sn se sw`).
    pub fn semaphore(&self, key: &str, limit: u32) -> Semaphore {
        Semaphore::new(self.clone(), key, limit)
    }

    /// A read-write lock on `key` (`rl wl rr wr rn wn re we rw ww`).
    pub fn rwlock(&self, key: &str) -> RwLock {
        RwLock::new(self.clone(), key)
    }

    /// Leader election on `key` (`elect resign`, renewal with `n`).
    pub fn election(&self, key: &str) -> Election {
        Election::new(self.clone(), key)
    }

    /// An observer of leader events; call [`Observer::observe`] per key.
    pub fn observer(&self) -> Observer {
        Observer::new(self.clone())
    }

    /// An N-party barrier on `key` (`bwait`).
    pub fn barrier(&self, key: &str, count: u32) -> Barrier {
        Barrier::new(self.clone(), key, count)
    }

    /// A session for counters, KV, lists, `signal`, `ping` and `stats`.
    pub fn session(&self) -> Session {
        Session::new(self.clone())
    }

    /// A pub/sub subscriber (registers its patterns on every server).
    pub fn subscriber(&self) -> Subscriber {
        Subscriber::new(self.clone())
    }

    /// A key watcher (registers its patterns on every server).
    pub fn watcher(&self) -> Watcher {
        Watcher::new(self.clone())
    }
}

/// Whole seconds for a timeout: rounded up, capped at the protocol maximum.
pub(crate) fn timeout_secs(d: Duration) -> u64 {
    let secs = d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0));
    secs.min(MAX_SECONDS)
}

/// Whole seconds for a lease or TTL: rounded up, at least 1, capped.
pub(crate) fn lease_secs(d: Duration) -> u64 {
    timeout_secs(d).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding() {
        assert_eq!(timeout_secs(Duration::ZERO), 0);
        assert_eq!(timeout_secs(Duration::from_millis(1)), 1);
        assert_eq!(timeout_secs(Duration::from_millis(1500)), 2);
        assert_eq!(timeout_secs(Duration::from_secs(7)), 7);
        assert_eq!(timeout_secs(Duration::MAX), MAX_SECONDS);
        assert_eq!(lease_secs(Duration::ZERO), 1);
    }

    #[test]
    fn options_are_checked() {
        assert!(Client::new(ClientOptions::default()).is_ok());
        assert!(Client::new(ClientOptions::with_servers(Vec::<String>::new())).is_err());
        let mut o = ClientOptions {
            renew_ratio: 1.0,
            ..ClientOptions::default()
        };
        assert!(Client::new(o.clone()).is_err());
        o.renew_ratio = f64::NAN;
        assert!(Client::new(o.clone()).is_err());
        o.renew_ratio = 0.0;
        assert!(Client::new(o.clone()).is_ok());
        o.io_timeout = Some(Duration::ZERO);
        assert!(Client::new(o).is_err());
    }

    #[test]
    fn handles_cross_threads() {
        fn send<T: Send>() {}
        fn sync<T: Sync>() {}
        send::<Client>();
        sync::<Client>();
        send::<Guard>();
        sync::<Guard>();
        send::<Session>();
        send::<Subscriber>();
        send::<Watcher>();
        send::<Observer>();
        send::<Pending>();
        send::<Error>();
        sync::<LostHandle>();
    }

    #[test]
    fn placement() {
        let c = Client::new(ClientOptions::with_servers(["a:1", "b:2"])).expect("client");
        let i = (shard::crc32(b"123456789") % 2) as usize;
        assert_eq!(c.server_index("123456789"), i);
        assert_eq!(c.server_for("123456789"), ["a:1", "b:2"][i]);
    }
}
