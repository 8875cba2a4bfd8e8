//! The setting table and the report: every setting's flag and variables in §3 order
//! ([`flags::ALL`], also the `--check-config` order), where a value came from
//! ([`Origin`]), one report [`Line`] per resolved setting, and [`render_report`].

use std::fmt;
use std::path::PathBuf;

use super::ConfigError;

/// One setting's flag and environment variables (§3 tables).
pub(super) struct Setting {
    pub flag: &'static str,
    pub env: &'static str,
    /// A deprecated variable, consulted after `env`; using it adds a warning.
    pub alias: Option<&'static str>,
}

impl Setting {
    const fn new(flag: &'static str, env: &'static str) -> Setting {
        Setting {
            flag,
            env,
            alias: None,
        }
    }

    const fn with_alias(flag: &'static str, env: &'static str, alias: &'static str) -> Setting {
        Setting {
            flag,
            env,
            alias: Some(alias),
        }
    }
}

/// Every setting, named as its flag.
pub(super) mod flags {
    use super::Setting;

    pub const HOST: Setting = Setting::new("--host", "DFLOCKD_HOST");
    pub const PORT: Setting = Setting::new("--port", "DFLOCKD_PORT");
    pub const DREADLOCK_PORT: Setting = Setting::new("--dreadlock-port", "DFLOCKD_DREADLOCK_PORT");
    pub const HTTP_PORT: Setting = Setting::new("--http-port", "DFLOCKD_HTTP_PORT");
    pub const HTTP_HOST: Setting = Setting::new("--http-host", "DFLOCKD_HTTP_HOST");
    pub const DEFAULT_LEASE_TTL: Setting =
        Setting::new("--default-lease-ttl", "DFLOCKD_DEFAULT_LEASE_TTL_S");
    pub const LEASE_SWEEP_INTERVAL: Setting =
        Setting::new("--lease-sweep-interval", "DFLOCKD_LEASE_SWEEP_INTERVAL_S");
    pub const GC_INTERVAL: Setting = Setting::with_alias(
        "--gc-interval",
        "DFLOCKD_GC_INTERVAL_S",
        "DFLOCKD_GC_LOOP_SLEEP",
    );
    pub const GC_MAX_IDLE: Setting = Setting::with_alias(
        "--gc-max-idle",
        "DFLOCKD_GC_MAX_IDLE_S",
        "DFLOCKD_GC_MAX_UNUSED_TIME",
    );
    pub const AUTO_RELEASE: Setting = Setting::new(
        "--auto-release-on-disconnect",
        "DFLOCKD_AUTO_RELEASE_ON_DISCONNECT",
    );
    pub const MAX_LOCKS: Setting = Setting::new("--max-locks", "DFLOCKD_MAX_LOCKS");
    pub const MAX_WAITERS: Setting = Setting::new("--max-waiters", "DFLOCKD_MAX_WAITERS");
    pub const MAX_KEYS: Setting = Setting::new("--max-keys", "DFLOCKD_MAX_KEYS");
    pub const MAX_LIST_LENGTH: Setting =
        Setting::new("--max-list-length", "DFLOCKD_MAX_LIST_LENGTH");
    pub const MAX_VALUE_BYTES: Setting =
        Setting::new("--max-value-bytes", "DFLOCKD_MAX_VALUE_BYTES");
    pub const MAX_MEMORY: Setting = Setting::new("--max-memory", "DFLOCKD_MAX_MEMORY");
    pub const MAX_OUTPUT_BYTES: Setting =
        Setting::new("--max-output-bytes", "DFLOCKD_MAX_OUTPUT_BYTES");
    pub const MAX_SUBSCRIPTIONS: Setting =
        Setting::new("--max-subscriptions", "DFLOCKD_MAX_SUBSCRIPTIONS");
    pub const MAX_CONNECTIONS: Setting =
        Setting::new("--max-connections", "DFLOCKD_MAX_CONNECTIONS");
    pub const MAX_CONNECTIONS_PER_IP: Setting =
        Setting::new("--max-connections-per-ip", "DFLOCKD_MAX_CONNECTIONS_PER_IP");
    pub const MAX_UNAUTHENTICATED: Setting = Setting::new(
        "--max-unauthenticated-connections",
        "DFLOCKD_MAX_UNAUTHENTICATED_CONNECTIONS",
    );
    pub const READ_TIMEOUT: Setting = Setting::new("--read-timeout", "DFLOCKD_READ_TIMEOUT_S");
    pub const WRITE_TIMEOUT: Setting = Setting::new("--write-timeout", "DFLOCKD_WRITE_TIMEOUT_S");
    pub const SHUTDOWN_TIMEOUT: Setting =
        Setting::new("--shutdown-timeout", "DFLOCKD_SHUTDOWN_TIMEOUT_S");
    pub const BUSY_POLL: Setting = Setting::new("--busy-poll-us", "DFLOCKD_BUSY_POLL_US");
    pub const TLS_CERT: Setting = Setting::new("--tls-cert", "DFLOCKD_TLS_CERT");
    pub const TLS_KEY: Setting = Setting::new("--tls-key", "DFLOCKD_TLS_KEY");
    pub const TLS_CLIENT_CA: Setting = Setting::new("--tls-client-ca", "DFLOCKD_TLS_CLIENT_CA");
    pub const AUTH_TOKEN: Setting = Setting::new("--auth-token", "DFLOCKD_AUTH_TOKEN");
    pub const AUTH_TOKEN_FILE: Setting =
        Setting::new("--auth-token-file", "DFLOCKD_AUTH_TOKEN_FILE");
    pub const FENCE_FIELD: Setting = Setting::new("--fence-field", "DFLOCKD_FENCE_FIELD");
    pub const FENCE_STATE_FILE: Setting =
        Setting::new("--fence-state-file", "DFLOCKD_FENCE_STATE_FILE");
    pub const HTTP_SESSION_IDLE: Setting =
        Setting::new("--http-session-idle-timeout", "DFLOCKD_HTTP_SESSION_IDLE_S");
    pub const HTTP_MAX_SESSIONS: Setting =
        Setting::new("--http-max-sessions", "DFLOCKD_HTTP_MAX_SESSIONS");
    pub const HTTP_MAX_SESSIONS_PER_IP: Setting = Setting::new(
        "--http-max-sessions-per-ip",
        "DFLOCKD_HTTP_MAX_SESSIONS_PER_IP",
    );
    pub const HTTP_MAX_CONNECTIONS_PER_IP: Setting = Setting::new(
        "--http-max-connections-per-ip",
        "DFLOCKD_HTTP_MAX_CONNECTIONS_PER_IP",
    );
    pub const HTTP_RATE_LIMIT: Setting =
        Setting::new("--http-rate-limit-per-ip", "DFLOCKD_HTTP_RATE_LIMIT_PER_IP");
    pub const HTTP_RATE_BURST: Setting =
        Setting::new("--http-rate-limit-burst", "DFLOCKD_HTTP_RATE_LIMIT_BURST");
    pub const HTTP_CORS: Setting = Setting::new(
        "--http-cors-allowed-origins",
        "DFLOCKD_HTTP_CORS_ALLOWED_ORIGINS",
    );
    pub const HTTP_SSE_PING: Setting =
        Setting::new("--http-sse-ping-interval", "DFLOCKD_HTTP_SSE_PING_S");
    pub const LOG_LEVEL: Setting = Setting::new("--log-level", "DFLOCKD_LOG_LEVEL");
    pub const DEBUG: Setting = Setting::new("--debug", "DFLOCKD_DEBUG");

    /// All settings in §3 table order: the order of the `--check-config` report.
    pub const ALL: [&Setting; 42] = [
        &HOST,
        &PORT,
        &DREADLOCK_PORT,
        &HTTP_PORT,
        &HTTP_HOST,
        &DEFAULT_LEASE_TTL,
        &LEASE_SWEEP_INTERVAL,
        &GC_INTERVAL,
        &GC_MAX_IDLE,
        &AUTO_RELEASE,
        &MAX_LOCKS,
        &MAX_WAITERS,
        &MAX_KEYS,
        &MAX_LIST_LENGTH,
        &MAX_VALUE_BYTES,
        &MAX_MEMORY,
        &MAX_OUTPUT_BYTES,
        &MAX_SUBSCRIPTIONS,
        &MAX_CONNECTIONS,
        &MAX_CONNECTIONS_PER_IP,
        &MAX_UNAUTHENTICATED,
        &READ_TIMEOUT,
        &WRITE_TIMEOUT,
        &SHUTDOWN_TIMEOUT,
        &BUSY_POLL,
        &TLS_CERT,
        &TLS_KEY,
        &TLS_CLIENT_CA,
        &AUTH_TOKEN,
        &AUTH_TOKEN_FILE,
        &FENCE_FIELD,
        &FENCE_STATE_FILE,
        &HTTP_SESSION_IDLE,
        &HTTP_MAX_SESSIONS,
        &HTTP_MAX_SESSIONS_PER_IP,
        &HTTP_MAX_CONNECTIONS_PER_IP,
        &HTTP_RATE_LIMIT,
        &HTTP_RATE_BURST,
        &HTTP_CORS,
        &HTTP_SSE_PING,
        &LOG_LEVEL,
        &DEBUG,
    ];
}

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    Flag,
    /// The environment variable actually used (the deprecated alias if that was it).
    Env(&'static str),
    Default,
}

impl Origin {
    /// ` (from VAR)` for a value from the environment, else nothing (§5).
    pub fn source_note(self) -> String {
        match self {
            Origin::Env(var) => format!(" (from {var})"),
            Origin::Flag | Origin::Default => String::new(),
        }
    }
}

/// The `--check-config` spelling: `flag`, `env VAR` or `default`.
impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag => f.write_str("flag"),
            Origin::Env(var) => write!(f, "env {var}"),
            Origin::Default => f.write_str("default"),
        }
    }
}

/// One resolved setting, for the report and the cross-field messages.
pub(super) struct Line {
    pub flag: &'static str,
    /// The effective value as printed by `--check-config`.
    pub shown: String,
    pub origin: Origin,
    /// The text as given (for messages that quote the rejected value); `shown` for defaults.
    pub given: String,
}

/// A file named by a path setting, with where the path came from (for messages).
pub(super) struct NamedPath {
    pub path: PathBuf,
    pub flag: &'static str,
    pub origin: Origin,
}

impl NamedPath {
    /// `--flag "path"` plus ` (from VAR)` when it came from the environment.
    pub fn describe(&self) -> String {
        format!(
            "{} {:?}{}",
            self.flag,
            self.path.display().to_string(),
            self.origin.source_note()
        )
    }
}

/// Renders the `--check-config` report: `<flag>=<value> (<source>)` per setting in §3
/// order, then `configuration ok`.
pub(super) fn render_report(lines: &[Line]) -> String {
    let mut out = String::new();
    for line in lines {
        out.push_str(&format!("{}={} ({})\n", line.flag, line.shown, line.origin));
    }
    out.push_str("configuration ok\n");
    out
}

/// `dflockd: invalid value "<text>" for <flag>[ (from VAR)]: <rule>` (§5). The value is
/// quoted with `{:?}` so control characters cannot break the one-line message.
pub(super) fn invalid(flag: &str, text: &str, origin: Origin, rule: &str) -> ConfigError {
    ConfigError::Invalid(format!(
        "dflockd: invalid value {text:?} for {flag}{}: {rule}",
        origin.source_note()
    ))
}
