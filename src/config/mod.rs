//! Server configuration: command line + `DFLOCKD_*` environment → a plain [`Config`].
//!
//! This module owns config.md §1–§5 and §9's exit statuses 64/78: which source wins
//! (explicit flag > environment variable > built-in default; an empty variable counts as
//! unset), the value syntax, every range, the cross-field rules, the exact refusal
//! messages, and the `--check-config` / `--help` / `--version` actions.
//!
//! Invariants:
//! - A returned [`Config`] is fully valid: every range, the §4 cross-field rules, a
//!   resolved host, TLS files that load (PEM content, key matching the certificate,
//!   client CA bundle; checked by `net::tls::load`, so `--check-config` checks them too),
//!   a token that satisfies the token rules and a fence state file that is absent or
//!   well formed. Nothing else is checked later, except the fence reservation.
//! - Nothing here creates, writes or binds anything, and nothing here reads the process
//!   environment: every variable goes through the caller's `env` closure, so tests are
//!   hermetic. clap only sees the command line, and every value is a `String` we
//!   validate ourselves so the messages are exactly those of §5.
//! - The auth token is never printed (`<redacted>` in `--check-config` and in messages).
//!
//! Layout: `cli.rs` is the clap flag table; `settings.rs` the setting table (flags,
//! variables, §3 order) and the `--check-config` report; `resolve.rs` walks the settings
//! (source, syntax, range) and builds the `Config`; `rules.rs` holds the §4 cross-field
//! rules; `values.rs` the pure value parsers; `read.rs` the host lookup and file reads.
//!
//! `--check-config` and a start share every check: [`load`] validates once, then either
//! prints the report or returns the configuration to run. What only a start can find
//! (a port in use, a fence reservation that cannot be written) exits 1, not 78, and is
//! not checked here: `--check-config` binds and writes nothing (config.md §3.9).
//!
//! Not here: socket activation (§8.2) and SIGHUP reloads (§7), which re-read
//! [`Config::tls`] and [`Config::auth_token_file`].

mod cli;
mod host;
mod read;
mod resolve;
mod rules;
mod settings;
mod values;

#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::fmt;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use clap::FromArgMatches;
use clap::error::ErrorKind;

use crate::completions;

pub use read::io_reason;
pub use values::parse_fence_state;

// ---- Exit statuses (config.md §9, sysexits.h) ----

/// Usage error: unknown flag, missing value, unexpected argument, repeated flag,
/// mutually exclusive flags.
pub const EX_USAGE: i32 = 64;
/// Configuration error: an invalid value, a broken cross-field rule, an unreadable or
/// invalid file, a host name that does not resolve.
pub const EX_CONFIG: i32 = 78;

// ---- Defaults (config.md §3) ----

/// `--host`: loopback only, so a default start exposes nothing.
pub const DEFAULT_HOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// `--port`: the TCP protocol port.
pub const DEFAULT_PORT: u16 = 6388;
/// `--dreadlock-port`: 0 = no Dreadlock listener (its traditional port is 6001).
pub const DEFAULT_DREADLOCK_PORT: u16 = 0;
/// `--http-port`: 0 = no HTTP listener.
pub const DEFAULT_HTTP_PORT: u16 = 0;
/// `--default-lease-ttl`, seconds, when a grant or renewal names none.
pub const DEFAULT_LEASE_TTL_S: u64 = 33;
/// `--lease-sweep-interval`, seconds; accepted for compatibility, has no effect.
pub const DEFAULT_LEASE_SWEEP_INTERVAL_S: u64 = 1;
/// `--gc-interval`, seconds between idle garbage-collection passes.
pub const DEFAULT_GC_INTERVAL_S: u64 = 5;
/// `--gc-max-idle`, seconds an unused key is kept.
pub const DEFAULT_GC_MAX_IDLE_S: u64 = 60;
/// `--auto-release-on-disconnect`.
pub const DEFAULT_AUTO_RELEASE_ON_DISCONNECT: bool = true;
/// `--max-locks`, keys in the lock and semaphore key spaces together.
pub const DEFAULT_MAX_LOCKS: u64 = 1024;
/// `--max-waiters` per key; 0 = no limit.
pub const DEFAULT_MAX_WAITERS: u64 = 0;
/// `--max-keys` (counters + KV entries + lists + barriers); 0 = no limit.
pub const DEFAULT_MAX_KEYS: u64 = 65536;
/// `--max-list-length`, items per list; 0 = no limit.
pub const DEFAULT_MAX_LIST_LENGTH: u64 = 0;
/// `--max-value-bytes`, bytes per value; also the argument-line limit.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 65536;
/// `--max-memory` when the host's memory cannot be read; otherwise the default is
/// the smaller of this and a quarter of the memory available ([`host`]).
pub const DEFAULT_MAX_MEMORY: u64 = host::MAX_MEMORY_CAP;
/// `--max-output-bytes`, pending output per connection or SSE stream.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 1_048_576;
/// `--max-subscriptions` per connection; 0 = no limit.
pub const DEFAULT_MAX_SUBSCRIPTIONS: u64 = 1024;
/// `--max-connections` across all listeners; 0 = no limit.
pub const DEFAULT_MAX_CONNECTIONS: u64 = 0;
/// `--max-connections-per-ip` (TCP and Dreadlock); 0 = no limit.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: u64 = 0;
/// `--max-unauthenticated-connections`: TCP and Dreadlock connections that
/// have not yet sent a good `auth`, when auth is on; 0 = no limit. An honest
/// client is unauthenticated for one round trip, so 1024 is far above what a
/// reconnect storm keeps open at once, while a client without the token can
/// hold at most 1024 sockets (for `--read-timeout` each) however many
/// addresses it has.
pub const DEFAULT_MAX_UNAUTHENTICATED_CONNECTIONS: u64 = 1024;
/// `--read-timeout`, seconds; 0 = off.
pub const DEFAULT_READ_TIMEOUT_S: u64 = 23;
/// `--write-timeout`, seconds; 0 = off.
pub const DEFAULT_WRITE_TIMEOUT_S: u64 = 5;
/// `--shutdown-timeout`, seconds; 0 = wait forever.
pub const DEFAULT_SHUTDOWN_TIMEOUT_S: u64 = 30;
/// `--busy-poll-us`, microseconds the loop keeps polling without sleeping
/// after an iteration that saw traffic; 0 = off (`server/busy.rs`). 25, by
/// measurement (benches/hotkey.sh, README Operating): on an idle 2-vCPU VM
/// it got the same hot-key hand-offs/s as 50 and 100 µs (1.3–3.5× off), at
/// a third of 50 µs's extra CPU at 1,000 hand-offs/s; 10 µs lost some.
pub const DEFAULT_BUSY_POLL_US: u64 = 25;
/// `--fence-field`: off, because it breaks clients that expect exactly 3/2 fields.
pub const DEFAULT_FENCE_FIELD: bool = false;
/// `--http-session-idle-timeout`, seconds.
pub const DEFAULT_HTTP_SESSION_IDLE_TIMEOUT_S: u64 = 20;
/// `--http-max-sessions`; 0 = no limit.
pub const DEFAULT_HTTP_MAX_SESSIONS: u64 = 0;
/// `--http-max-sessions-per-ip`; 0 = no limit.
pub const DEFAULT_HTTP_MAX_SESSIONS_PER_IP: u64 = 0;
/// `--http-max-connections-per-ip`; 0 = no limit.
pub const DEFAULT_HTTP_MAX_CONNECTIONS_PER_IP: u64 = 0;
/// `--http-rate-limit-per-ip`, requests per second; 0 = off.
pub const DEFAULT_HTTP_RATE_LIMIT_PER_IP: u64 = 0;
/// `--http-rate-limit-burst`; 0 = the rate.
pub const DEFAULT_HTTP_RATE_LIMIT_BURST: u64 = 0;
/// `--http-sse-ping-interval`, seconds; 0 = off.
pub const DEFAULT_HTTP_SSE_PING_INTERVAL_S: u64 = 15;
/// `--log-level` when nothing in the §3.8 chain applies.
pub const DEFAULT_LOG_FILTER: &str = "info";
/// `--debug`.
pub const DEFAULT_DEBUG: bool = false;

// ---- Range bounds (config.md §3) ----

/// Largest number of seconds: `i64::MAX` nanoseconds, so any duration fits a timer.
pub const MAX_SECONDS: u64 = 9_223_372_036;
/// Largest count limit (`--max-locks`, `--max-waiters`, …): `u32::MAX`.
pub const MAX_COUNT: u64 = 4_294_967_295;
/// Upper bound of `--max-value-bytes` (1 MiB).
pub const MAX_VALUE_BYTES_LIMIT: u64 = 1_048_576;
/// Lower bound of `--max-output-bytes`.
pub const MIN_OUTPUT_BYTES: u64 = 4096;
/// Upper bound of `--max-output-bytes` (1 GiB).
pub const MAX_OUTPUT_BYTES_LIMIT: u64 = 1_073_741_824;
/// Framing bytes of the largest push on top of its value: `--max-output-bytes` must be
/// at least `--max-value-bytes` + this, so one largest push frame always fits.
pub const PUSH_FRAME_OVERHEAD_BYTES: usize = 1024;
/// Largest auth token, bytes.
pub const MAX_AUTH_TOKEN_BYTES: usize = 65536;
/// Upper bound of `--gc-interval`, `--http-session-idle-timeout` and
/// `--http-sse-ping-interval` (one day).
pub const MAX_DAY_S: u64 = 86_400;
/// Upper bound of `--lease-sweep-interval` (one hour).
pub const MAX_LEASE_SWEEP_INTERVAL_S: u64 = 3600;
/// Upper bound of `--busy-poll-us` (10 ms): beyond that a spin is just a
/// burnt core, never a faster wake-up.
pub const MAX_BUSY_POLL_US: u64 = 10_000;
/// Upper bound of `--http-rate-limit-per-ip` and `--http-rate-limit-burst`.
pub const MAX_HTTP_RATE: u64 = 1_000_000;

/// Per-connection and global limits (config.md §3.3). "0 = none" means no limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Keys in the lock and semaphore key spaces together (≥ 1).
    pub max_locks: u64,
    /// Waiters per key; 0 = none.
    pub max_waiters: u64,
    /// Counters + KV entries + lists + barriers; 0 = none.
    pub max_keys: u64,
    /// Items per list; 0 = none.
    pub max_list_length: u64,
    /// Bytes per value (1 ..= 1 MiB); also the argument-line limit.
    pub max_value_bytes: usize,
    /// Bytes of client data and subscriptions (protocol.md §7.4a); 0 = no budget.
    pub max_memory: u64,
    /// Pending output per connection or SSE stream; ≥ `max_value_bytes` + 1024.
    pub max_output_bytes: usize,
    /// `listen` + `watch` + `observe` registrations per connection; 0 = none.
    pub max_subscriptions: u64,
    /// Open connections across all listeners; 0 = none.
    pub max_connections: u64,
    /// TCP and Dreadlock connections per client IP; 0 = none.
    pub max_connections_per_ip: u64,
    /// TCP and Dreadlock connections not yet authenticated (auth on); 0 = none.
    pub max_unauthenticated_connections: u64,
}

/// The TLS files. At start they were read and checked by the TLS module
/// (`net::tls::load`: PEM content, the key against the certificate, the CA bundle);
/// SIGHUP re-reads all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// The leaf's private key.
    pub key: PathBuf,
    /// CA bundle for client certificates; `Some` = mutual TLS (certificates required).
    pub client_ca: Option<PathBuf>,
}

/// HTTP API settings (config.md §3.7); unused while `Config::http_port` is 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Advertised `idle_timeout_s`; sessions idle for twice this are ended.
    pub session_idle_timeout_s: u64,
    /// Live sessions (SSE streams included); 0 = no limit.
    pub max_sessions: u64,
    /// Live sessions per client IP; 0 = no limit.
    pub max_sessions_per_ip: u64,
    /// HTTP connections per client IP; 0 = no limit.
    pub max_connections_per_ip: u64,
    /// Requests per second per client IP; 0 = off.
    pub rate_limit_per_ip: u64,
    /// Token-bucket size; 0 = the rate. Ignored while the rate is 0.
    pub rate_limit_burst: u64,
    /// `*` or origins `http(s)://host[:port]`, ASCII-lowercased; empty = CORS off.
    pub cors_allowed_origins: Vec<String>,
    /// Seconds of silence before an SSE `:ping`; 0 = off.
    pub sse_ping_interval_s: u64,
}

/// The resolved, validated configuration. Build it with [`load`]; `Default` gives the
/// built-in defaults (handy for tests of other modules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Address of the TCP and Dreadlock listeners (a host name resolved once, first address).
    pub host: IpAddr,
    /// TCP protocol port; 0 = ephemeral.
    pub port: u16,
    /// Dreadlock listener port; 0 = off.
    pub dreadlock_port: u16,
    /// HTTP listener port; 0 = off.
    pub http_port: u16,
    /// Address of the HTTP listener (defaults to `host`).
    pub http_host: IpAddr,
    /// Lease in seconds when a grant or renewal names none.
    pub default_lease_s: u64,
    /// Seconds between idle garbage-collection passes.
    pub gc_interval_s: u64,
    /// Seconds an unused key is kept; 0 = removed at the next pass.
    pub gc_max_idle_s: u64,
    /// Release a connection's or session's slots when it ends.
    pub auto_release_on_disconnect: bool,
    pub limits: Limits,
    /// Idle and request timeout of TCP connections, seconds; 0 = off.
    pub read_timeout_s: u64,
    /// Close a connection whose pending output makes no progress this long; 0 = off.
    pub write_timeout_s: u64,
    /// How long a drain waits, seconds; 0 = forever.
    pub shutdown_timeout_s: u64,
    /// Microseconds to keep polling without sleeping after traffic; 0 = off.
    pub busy_poll_us: u64,
    /// TLS on every listener when set.
    pub tls: Option<TlsFiles>,
    /// Shared secret (§3.5 chain; from a file: trimmed content). `None` = auth off.
    pub auth_token: Option<Vec<u8>>,
    /// Set when the token came from a file, so SIGHUP can re-read it.
    pub auth_token_file: Option<PathBuf>,
    /// Append the fence to grant and renew replies.
    pub fence_field: bool,
    /// Persistent fence ceiling; absent or well formed at start (never created here).
    pub fence_state_file: Option<PathBuf>,
    pub http: HttpConfig,
    /// Effective `env_logger` filter (§3.8 chain), e.g. `info`, `debug` or RUST_LOG's content.
    pub log_filter: String,
    /// Warnings to log once logging is up (deprecated variable used, no-op flag set).
    pub warnings: Vec<String>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_locks: DEFAULT_MAX_LOCKS,
            max_waiters: DEFAULT_MAX_WAITERS,
            max_keys: DEFAULT_MAX_KEYS,
            max_list_length: DEFAULT_MAX_LIST_LENGTH,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
            max_memory: DEFAULT_MAX_MEMORY,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            max_subscriptions: DEFAULT_MAX_SUBSCRIPTIONS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            max_unauthenticated_connections: DEFAULT_MAX_UNAUTHENTICATED_CONNECTIONS,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            session_idle_timeout_s: DEFAULT_HTTP_SESSION_IDLE_TIMEOUT_S,
            max_sessions: DEFAULT_HTTP_MAX_SESSIONS,
            max_sessions_per_ip: DEFAULT_HTTP_MAX_SESSIONS_PER_IP,
            max_connections_per_ip: DEFAULT_HTTP_MAX_CONNECTIONS_PER_IP,
            rate_limit_per_ip: DEFAULT_HTTP_RATE_LIMIT_PER_IP,
            rate_limit_burst: DEFAULT_HTTP_RATE_LIMIT_BURST,
            cors_allowed_origins: Vec::new(),
            sse_ping_interval_s: DEFAULT_HTTP_SSE_PING_INTERVAL_S,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: DEFAULT_HOST,
            port: DEFAULT_PORT,
            dreadlock_port: DEFAULT_DREADLOCK_PORT,
            http_port: DEFAULT_HTTP_PORT,
            http_host: DEFAULT_HOST,
            default_lease_s: DEFAULT_LEASE_TTL_S,
            gc_interval_s: DEFAULT_GC_INTERVAL_S,
            gc_max_idle_s: DEFAULT_GC_MAX_IDLE_S,
            auto_release_on_disconnect: DEFAULT_AUTO_RELEASE_ON_DISCONNECT,
            limits: Limits::default(),
            read_timeout_s: DEFAULT_READ_TIMEOUT_S,
            write_timeout_s: DEFAULT_WRITE_TIMEOUT_S,
            shutdown_timeout_s: DEFAULT_SHUTDOWN_TIMEOUT_S,
            busy_poll_us: DEFAULT_BUSY_POLL_US,
            tls: None,
            auth_token: None,
            auth_token_file: None,
            fence_field: DEFAULT_FENCE_FIELD,
            fence_state_file: None,
            http: HttpConfig::default(),
            log_filter: DEFAULT_LOG_FILTER.to_owned(),
            warnings: Vec::new(),
        }
    }
}

/// What `main` does next.
// Built once per process, so the size difference between the variants costs nothing;
// `Run(Config)` stays unboxed because it is the API `main` matches on.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Action {
    /// Start the server with this configuration.
    Run(Config),
    /// `--help`, `--version` or `--check-config` already printed their output; exit with
    /// this status (0, or 1 if standard output could not be written).
    Exit(i32),
}

/// A refusal to start. `main` prints [`ConfigError::message`] and a newline to standard
/// error and exits with [`ConfigError::exit_code`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// Exit 64: clap's rendered usage message (`error: unexpected argument …`, usage line,
    /// hint), without a trailing newline.
    Usage(String),
    /// Exit 78: one line starting `dflockd: ` that names the flag (and variable) and the rule.
    Invalid(String),
}

impl ConfigError {
    /// [`EX_USAGE`] (64) or [`EX_CONFIG`] (78).
    pub fn exit_code(&self) -> i32 {
        match self {
            ConfigError::Usage(_) => EX_USAGE,
            ConfigError::Invalid(_) => EX_CONFIG,
        }
    }

    /// The text for standard error, without a trailing newline.
    pub fn message(&self) -> &str {
        match self {
            ConfigError::Usage(m) | ConfigError::Invalid(m) => m,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for ConfigError {}

/// Parses the command line, resolves every setting against `env` and validates it.
///
/// `args` includes `argv[0]`. `env` looks up an environment variable (`main` passes
/// `|k| std::env::var(k).ok()`, tests a map); an empty value counts as unset.
///
/// Returns `Ok(Action::Run(config))` to start; `Ok(Action::Exit(status))` after printing
/// help, `dflockd <version>`, a `--completions` script or the `--check-config` report to standard output;
/// `Err(ConfigError::Usage)` for a malformed command line (64) and
/// `Err(ConfigError::Invalid)` for an invalid value, file or cross-field rule, or a
/// feature this build does not have (78). `--check-config` and a start refuse exactly the
/// same configurations with the same message: both go through this one function.
pub fn load<I, S>(args: I, env: &dyn Fn(&str) -> Option<String>) -> Result<Action, ConfigError>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString> + Clone,
{
    let loaded = match parse(args, env)? {
        Parsed::Print(text) => return Ok(Action::Exit(write_stdout(&text))),
        Parsed::Loaded(loaded) => loaded,
    };
    match *loaded {
        Loaded {
            check_config: true,
            config,
            report,
        } => {
            // Logging is not set up for --check-config, so warnings go straight to stderr;
            // if stderr is gone there is nobody left to tell.
            let mut stderr = std::io::stderr().lock();
            for warning in &config.warnings {
                let _ = writeln!(stderr, "dflockd: warning: {warning}");
            }
            Ok(Action::Exit(write_stdout(&report)))
        }
        Loaded { config, .. } => Ok(Action::Run(config)),
    }
}

/// The outcome of [`parse`]: text to print, or a validated configuration.
enum Parsed {
    /// `--help` or `--version` output.
    Print(String),
    Loaded(Box<Loaded>),
}

struct Loaded {
    config: Config,
    /// The rendered `--check-config` report (every setting, then `configuration ok`).
    report: String,
    check_config: bool,
}

/// [`load`] without the printing, so tests see every output as a value.
fn parse<I, S>(args: I, env: &dyn Fn(&str) -> Option<String>) -> Result<Parsed, ConfigError>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    if let Some(script) = completions::requested(&cli::command(), &args) {
        return Ok(Parsed::Print(script));
    }
    let parsed = cli::command()
        .arg(completions::arg())
        .try_get_matches_from(&args)
        .and_then(|m| cli::Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            return match e.kind() {
                ErrorKind::DisplayHelp => Ok(Parsed::Print(e.to_string())),
                ErrorKind::DisplayVersion => Ok(Parsed::Print(version_line())),
                _ => Err(ConfigError::Usage(e.to_string().trim_end().to_owned())),
            };
        }
    };
    let check_config = cli.check_config;
    let (config, lines) = resolve::build(cli, env)?;
    Ok(Parsed::Loaded(Box::new(Loaded {
        config,
        report: settings::render_report(&lines),
        check_config,
    })))
}

/// The clap definition of the command line (for completion scripts and for
/// the defaults-file check in tests/packaging.rs).
pub fn command() -> clap::Command {
    cli::command()
}

/// Exactly `dflockd <version>` and a newline (config.md §3.9), whatever `argv[0]` is.
fn version_line() -> String {
    format!("dflockd {}\n", env!("CARGO_PKG_VERSION"))
}

/// Writes `text` to standard output; returns the exit status (1 if it could not be
/// written, e.g. a closed pipe: `print!` would panic there).
fn write_stdout(text: &str) -> i32 {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

/// Re-read the auth token file on SIGHUP (config.md §7), with the same
/// validation as at start. `Err` is a one-line message for the log.
pub fn reload_auth_token(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let file = settings::NamedPath {
        path: path.to_path_buf(),
        flag: "--auth-token-file",
        origin: settings::Origin::Flag,
    };
    read::read_token_file(&file).map_err(|e| e.message().to_owned())
}
