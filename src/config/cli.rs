//! The command line as clap sees it (config.md §3), in the order of the §3 tables.
//!
//! Every setting is an `Option<String>`: `None` means "not on the command line", so the
//! resolver can fall back to the environment and then the default, and every value is
//! validated by `resolve.rs` so the messages are exactly those of §5. clap itself only
//! reports usage errors (exit 64): unknown flags, missing values, unexpected arguments,
//! a repeated flag (clap's default for `ArgAction::Set`), and
//! `--auto-release-on-disconnect` together with `--no-auto-release-on-disconnect`.
//!
//! The environment is deliberately not wired into clap (no `env = …`): it is read
//! through the caller's closure so tests are hermetic. The `[env: …]` and
//! `[default: …]` notes in the help texts are written by hand; a test checks them
//! against the resolver.
//!
//! Boolean flags take `num_args = 0..=1` with `require_equals`: bare means `true`,
//! `--fence-field=off` gives another value, and `--fence-field off` leaves `off` as an
//! unexpected argument (§2).

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "dflockd",
    version,
    about = "Distributed lock and coordination server",
    // clap's default usage line in an error echoes the arguments given, so
    // `--check-config` would change the message of a usage error; a fixed line
    // keeps the check's refusal byte-identical to the start's.
    override_usage = "dflockd [OPTIONS]",
    after_help = "Every setting can also be given by its environment variable; an explicit flag \
                  beats the variable, which beats the default. An empty variable counts as unset.\n\
                  Boolean flags given bare mean true; give another value with '=' \
                  (--fence-field=off). Values: 1, yes, true, on, 0, no, false, off.\n\
                  Exit statuses: 0 ok, 1 failure after start, 64 usage error, 78 configuration error."
)]
pub(super) struct Cli {
    // ---- 3.1 Listeners ----
    /// Address (or host name) of the TCP and Dreadlock listeners; default for --http-host [env: DFLOCKD_HOST] [default: 127.0.0.1]
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,

    /// TCP protocol port; 0 binds an ephemeral port [env: DFLOCKD_PORT] [default: 6388]
    #[arg(long, value_name = "PORT")]
    pub port: Option<String>,

    /// Extra listener on --host serving the same protocols (Dreadlock's port is 6001); 0 = off [env: DFLOCKD_DREADLOCK_PORT] [default: 0]
    #[arg(long, value_name = "PORT")]
    pub dreadlock_port: Option<String>,

    /// HTTP API port; 0 = off [env: DFLOCKD_HTTP_PORT] [default: 0]
    #[arg(long, value_name = "PORT")]
    pub http_port: Option<String>,

    /// Address (or host name) of the HTTP listener [env: DFLOCKD_HTTP_HOST] [default: value of --host]
    #[arg(long, value_name = "HOST")]
    pub http_host: Option<String>,

    // ---- 3.2 Leases and garbage collection ----
    /// Lease in seconds when a grant or renewal names none (1..=9223372036) [env: DFLOCKD_DEFAULT_LEASE_TTL_S] [default: 33]
    #[arg(long, value_name = "SECONDS")]
    pub default_lease_ttl: Option<String>,

    /// Accepted for compatibility; has no effect (1..=3600) [env: DFLOCKD_LEASE_SWEEP_INTERVAL_S] [default: 1]
    #[arg(long, value_name = "SECONDS")]
    pub lease_sweep_interval: Option<String>,

    /// Seconds between idle garbage-collection passes (1..=86400) [env: DFLOCKD_GC_INTERVAL_S, deprecated DFLOCKD_GC_LOOP_SLEEP] [default: 5]
    #[arg(long, value_name = "SECONDS")]
    pub gc_interval: Option<String>,

    /// Seconds an unused key is kept; 0 = until the next pass [env: DFLOCKD_GC_MAX_IDLE_S, deprecated DFLOCKD_GC_MAX_UNUSED_TIME] [default: 60]
    #[arg(long, value_name = "SECONDS")]
    pub gc_max_idle: Option<String>,

    /// Release a connection's or session's slots when it ends [env: DFLOCKD_AUTO_RELEASE_ON_DISCONNECT] [default: true]
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        conflicts_with = "no_auto_release_on_disconnect"
    )]
    pub auto_release_on_disconnect: Option<String>,

    /// Same as --auto-release-on-disconnect=false
    #[arg(long)]
    pub no_auto_release_on_disconnect: bool,

    // ---- 3.3 Limits ----
    /// Keys in the lock and semaphore key spaces together (1..=4294967295) [env: DFLOCKD_MAX_LOCKS] [default: 1024]
    #[arg(long, value_name = "N")]
    pub max_locks: Option<String>,

    /// Waiters per key; 0 = no limit [env: DFLOCKD_MAX_WAITERS] [default: 0]
    #[arg(long, value_name = "N")]
    pub max_waiters: Option<String>,

    /// Counters + KV entries + lists + barriers; 0 = no limit [env: DFLOCKD_MAX_KEYS] [default: 65536]
    #[arg(long, value_name = "N")]
    pub max_keys: Option<String>,

    /// Items per list; 0 = no limit [env: DFLOCKD_MAX_LIST_LENGTH] [default: 0]
    #[arg(long, value_name = "N")]
    pub max_list_length: Option<String>,

    /// Bytes per value; also the argument-line limit (1..=1048576) [env: DFLOCKD_MAX_VALUE_BYTES] [default: 65536]
    #[arg(long, value_name = "BYTES")]
    pub max_value_bytes: Option<String>,

    /// Bytes of client data and subscriptions the server holds before writes are refused; 0 = no budget [env: DFLOCKD_MAX_MEMORY] [default: the smaller of 1 GiB and a quarter of the cgroup's memory.max, else of MemTotal]
    #[arg(long, value_name = "BYTES")]
    pub max_memory: Option<String>,

    /// Pending output per connection or SSE stream (4096..=1073741824, at least --max-value-bytes + 1024) [env: DFLOCKD_MAX_OUTPUT_BYTES] [default: 1048576]
    #[arg(long, value_name = "BYTES")]
    pub max_output_bytes: Option<String>,

    /// listen + watch + observe registrations per connection; 0 = no limit [env: DFLOCKD_MAX_SUBSCRIPTIONS] [default: 1024]
    #[arg(long, value_name = "N")]
    pub max_subscriptions: Option<String>,

    /// Open connections across all listeners; 0 = no limit [env: DFLOCKD_MAX_CONNECTIONS] [default: 0]
    #[arg(long, value_name = "N")]
    pub max_connections: Option<String>,

    /// TCP and Dreadlock connections per client IP; 0 = no limit [env: DFLOCKD_MAX_CONNECTIONS_PER_IP] [default: 0]
    #[arg(long, value_name = "N")]
    pub max_connections_per_ip: Option<String>,

    /// TCP and Dreadlock connections that have not authenticated yet (auth on); 0 = no limit [env: DFLOCKD_MAX_UNAUTHENTICATED_CONNECTIONS] [default: 1024]
    #[arg(long, value_name = "N")]
    pub max_unauthenticated_connections: Option<String>,

    // ---- 3.4 Timeouts ----
    /// Idle and request timeout of TCP connections; 0 = off [env: DFLOCKD_READ_TIMEOUT_S] [default: 23]
    #[arg(long, value_name = "SECONDS")]
    pub read_timeout: Option<String>,

    /// Close a connection whose output makes no progress this long; 0 = off [env: DFLOCKD_WRITE_TIMEOUT_S] [default: 5]
    #[arg(long, value_name = "SECONDS")]
    pub write_timeout: Option<String>,

    /// How long a drain waits for connections; 0 = forever [env: DFLOCKD_SHUTDOWN_TIMEOUT_S] [default: 30]
    #[arg(long, value_name = "SECONDS")]
    pub shutdown_timeout: Option<String>,

    /// After a loop iteration that saw traffic, keep polling without sleeping for up to this many µs; 0 = off (0..=10000) [env: DFLOCKD_BUSY_POLL_US] [default: 25]
    #[arg(long, value_name = "MICROSECONDS")]
    pub busy_poll_us: Option<String>,

    // ---- 3.5 TLS and authentication ----
    /// PEM certificate chain (leaf first); enables TLS on every listener; requires --tls-key; re-read on SIGHUP [env: DFLOCKD_TLS_CERT]
    #[arg(long, value_name = "PATH")]
    pub tls_cert: Option<String>,

    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of the leaf certificate; requires --tls-cert [env: DFLOCKD_TLS_KEY]
    #[arg(long, value_name = "PATH")]
    pub tls_key: Option<String>,

    /// PEM CA bundle: require client certificates signed by it (mutual TLS); requires --tls-cert [env: DFLOCKD_TLS_CLIENT_CA]
    #[arg(long, value_name = "PATH")]
    pub tls_client_ca: Option<String>,

    /// Shared secret for auth (1..=65536 bytes, no CR/LF, no leading/trailing space or TAB) [env: DFLOCKD_AUTH_TOKEN]
    #[arg(long, value_name = "TOKEN")]
    pub auth_token: Option<String>,

    /// File holding the shared secret (trimmed of whitespace; re-read on SIGHUP) [env: DFLOCKD_AUTH_TOKEN_FILE]
    #[arg(long, value_name = "PATH")]
    pub auth_token_file: Option<String>,

    // ---- 3.6 Fencing ----
    /// Append the fence to grant and renew replies (breaks clients expecting 3/2 fields) [env: DFLOCKD_FENCE_FIELD] [default: false]
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub fence_field: Option<String>,

    /// Persist a fence ceiling here so fences never repeat across restarts [env: DFLOCKD_FENCE_STATE_FILE]
    #[arg(long, value_name = "PATH")]
    pub fence_state_file: Option<String>,

    // ---- 3.7 HTTP ----
    /// Advertised session idle timeout; sessions idle twice this are ended (1..=86400) [env: DFLOCKD_HTTP_SESSION_IDLE_S] [default: 20]
    #[arg(long, value_name = "SECONDS")]
    pub http_session_idle_timeout: Option<String>,

    /// Live HTTP sessions, SSE streams included; 0 = no limit [env: DFLOCKD_HTTP_MAX_SESSIONS] [default: 0]
    #[arg(long, value_name = "N")]
    pub http_max_sessions: Option<String>,

    /// Live HTTP sessions per client IP; 0 = no limit [env: DFLOCKD_HTTP_MAX_SESSIONS_PER_IP] [default: 0]
    #[arg(long, value_name = "N")]
    pub http_max_sessions_per_ip: Option<String>,

    /// HTTP connections per client IP; 0 = no limit [env: DFLOCKD_HTTP_MAX_CONNECTIONS_PER_IP] [default: 0]
    #[arg(long, value_name = "N")]
    pub http_max_connections_per_ip: Option<String>,

    /// Requests per second per client IP; 0 = off (0..=1000000) [env: DFLOCKD_HTTP_RATE_LIMIT_PER_IP] [default: 0]
    #[arg(long, value_name = "N")]
    pub http_rate_limit_per_ip: Option<String>,

    /// Rate-limit bucket size; 0 = the rate (0..=1000000) [env: DFLOCKD_HTTP_RATE_LIMIT_BURST] [default: 0]
    #[arg(long, value_name = "N")]
    pub http_rate_limit_burst: Option<String>,

    /// Comma-separated CORS origins: * or http(s)://host[:port] [env: DFLOCKD_HTTP_CORS_ALLOWED_ORIGINS]
    #[arg(long, value_name = "LIST")]
    pub http_cors_allowed_origins: Option<String>,

    /// Seconds of silence before an SSE :ping comment; 0 = off (0..=86400) [env: DFLOCKD_HTTP_SSE_PING_S] [default: 15]
    #[arg(long, value_name = "SECONDS")]
    pub http_sse_ping_interval: Option<String>,

    // ---- 3.8 Logging ----
    /// off, error, warn, info, debug or trace (otherwise RUST_LOG applies) [env: DFLOCKD_LOG_LEVEL] [default: info]
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,

    /// Shorthand for --log-level debug [env: DFLOCKD_DEBUG] [default: false]
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub debug: Option<String>,

    // ---- 3.9 Actions ----
    /// Validate the configuration (reading the TLS, token and fence state files), print it and exit
    #[arg(long)]
    pub check_config: bool,
}

/// The clap definition, for completion scripts.
pub(super) fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
