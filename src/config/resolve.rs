//! Turns the parsed command line plus the environment into a [`Config`], in the order
//! of config.md §6: resolve and validate every setting in §3 table order (§1–§3), then
//! the §4 cross-field rules, then read the files. The first failure is returned.
//!
//! Each resolved setting also leaves one report [`Line`] (value and source), which is
//! the `--check-config` output (§3.9) and what the cross-field messages quote.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::cli::Cli;
use super::read;
use super::rules;
use super::settings::{Line, NamedPath, Origin, Setting, flags, invalid};
use super::values::{
    BOOL_RULE, LOG_LEVEL_RULE, ORIGINS_RULE, check_token, parse_bool, parse_log_level,
    parse_origins, parse_uint,
};
use super::*;

/// A value given on the command line or in the environment, before validation.
struct Given {
    text: String,
    origin: Origin,
}

/// Shown for a setting without a value.
const UNSET: &str = "(unset)";
/// Shown instead of the auth token.
const REDACTED: &str = "<redacted>";

/// Walks the settings; collects report lines and warnings on the way.
struct Resolver<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    lines: Vec<Line>,
    warnings: Vec<String>,
}

impl Resolver<'_> {
    /// A variable's value; empty counts as unset (§1).
    fn var(&self, name: &str) -> Option<String> {
        (self.env)(name).filter(|value| !value.is_empty())
    }

    /// The first of: the flag, the variable, the deprecated alias (with a warning).
    fn given(&mut self, s: &Setting, flag: Option<String>) -> Option<Given> {
        if let Some(text) = flag {
            return Some(Given {
                text,
                origin: Origin::Flag,
            });
        }
        if let Some(text) = self.var(s.env) {
            return Some(Given {
                text,
                origin: Origin::Env(s.env),
            });
        }
        let alias = s.alias?;
        let text = self.var(alias)?;
        self.warnings.push(format!(
            "{alias} is deprecated; use {} (or {}) instead",
            s.env, s.flag
        ));
        Some(Given {
            text,
            origin: Origin::Env(alias),
        })
    }

    /// Resolves and parses one setting; `Ok(None)` when nothing was given.
    fn parsed<T>(
        &mut self,
        s: &Setting,
        flag: Option<String>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<(T, Given)>, ConfigError> {
        let Some(given) = self.given(s, flag) else {
            return Ok(None);
        };
        match parse(&given.text) {
            Ok(value) => Ok(Some((value, given))),
            Err(rule) => Err(invalid(s.flag, &given.text, given.origin, &rule)),
        }
    }

    fn record(&mut self, s: &Setting, shown: String, given: Option<Given>) {
        let (origin, text) = match given {
            Some(g) => (g.origin, g.text),
            None => (Origin::Default, shown.clone()),
        };
        self.lines.push(Line {
            flag: s.flag,
            shown,
            origin,
            given: text,
        });
    }

    fn line(&self, s: &Setting) -> Option<&Line> {
        self.lines.iter().find(|line| line.flag == s.flag)
    }

    /// An integer in `min..=max` (§2).
    fn uint(
        &mut self,
        s: &Setting,
        flag: Option<String>,
        (min, max): (u64, u64),
        default: u64,
    ) -> Result<u64, ConfigError> {
        let parsed = self.parsed(s, flag, |text| {
            parse_uint(text)
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| format!("must be an integer in {min}..={max}"))
        })?;
        let (value, given) = parsed.map_or((default, None), |(v, g)| (v, Some(g)));
        self.record(s, value.to_string(), given);
        Ok(value)
    }

    fn port(
        &mut self,
        s: &Setting,
        flag: Option<String>,
        default: u16,
    ) -> Result<u16, ConfigError> {
        let value = self.uint(s, flag, (0, u64::from(u16::MAX)), u64::from(default))?;
        Ok(u16::try_from(value).unwrap_or(default))
    }

    /// A byte count that must fit `usize` (it always does for our ranges, even on 32 bits).
    fn bytes(
        &mut self,
        s: &Setting,
        flag: Option<String>,
        range: (u64, u64),
        default: usize,
    ) -> Result<usize, ConfigError> {
        let value = self.uint(s, flag, range, default as u64)?;
        usize::try_from(value).map_err(|_| {
            ConfigError::Invalid(format!(
                "dflockd: invalid value \"{value}\" for {}: too large for this platform",
                s.flag
            ))
        })
    }

    /// A boolean (§2); also returns where it came from (the log chain needs it).
    fn boolean(
        &mut self,
        s: &Setting,
        flag: Option<String>,
        default: bool,
    ) -> Result<(bool, Origin), ConfigError> {
        let parsed = self.parsed(s, flag, |text| {
            parse_bool(text).ok_or_else(|| BOOL_RULE.to_owned())
        })?;
        let (value, given) = parsed.map_or((default, None), |(v, g)| (v, Some(g)));
        let origin = given.as_ref().map_or(Origin::Default, |g| g.origin);
        self.record(s, value.to_string(), given);
        Ok((value, origin))
    }

    /// A host (§2), resolved now.
    fn host(
        &mut self,
        s: &Setting,
        flag: Option<String>,
        default: IpAddr,
    ) -> Result<IpAddr, ConfigError> {
        let parsed = self.parsed(s, flag, read::resolve_host)?;
        let (value, given) = parsed.map_or((default, None), |(v, g)| (v, Some(g)));
        self.record(s, value.to_string(), given);
        Ok(value)
    }

    /// An optional path (§2: any non-empty path), plus `check` for the setting's own rule.
    fn path(
        &mut self,
        s: &Setting,
        flag: Option<String>,
        check: impl FnOnce(&Path) -> Result<(), String>,
    ) -> Result<Option<NamedPath>, ConfigError> {
        let given = self.given(s, flag);
        self.path_given(s, given, check)
    }

    /// [`Resolver::path`] for a value already taken from its source.
    fn path_given(
        &mut self,
        s: &Setting,
        given: Option<Given>,
        check: impl FnOnce(&Path) -> Result<(), String>,
    ) -> Result<Option<NamedPath>, ConfigError> {
        let Some(given) = given else {
            self.record(s, UNSET.to_owned(), None);
            return Ok(None);
        };
        let path = PathBuf::from(&given.text);
        let checked = if given.text.is_empty() {
            Err("must be a non-empty path".to_owned())
        } else {
            check(&path)
        };
        if let Err(rule) = checked {
            return Err(invalid(s.flag, &given.text, given.origin, &rule));
        }
        let origin = given.origin;
        self.record(s, path.display().to_string(), Some(given));
        Ok(Some(NamedPath {
            path,
            flag: s.flag,
            origin,
        }))
    }
}

/// `--fence-state-file`: the directory must exist (the file itself may not).
fn in_existing_directory(path: &Path) -> Result<(), String> {
    let dir = match path.parent() {
        Some(dir) if dir.as_os_str().is_empty() => Path::new("."),
        Some(dir) => dir,
        None => return Err("must name a file, not a root directory".to_owned()),
    };
    if dir.is_dir() {
        Ok(())
    } else {
        Err(format!(
            "directory {:?} does not exist",
            dir.display().to_string()
        ))
    }
}

/// Resolves, validates and reads everything (config.md §6 steps 2–3).
pub(super) fn build(
    cli: Cli,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Config, Vec<Line>), ConfigError> {
    use flags as f;
    let mut r = Resolver {
        env,
        lines: Vec::with_capacity(f::ALL.len()),
        warnings: Vec::new(),
    };
    let count = (0, MAX_COUNT);
    let count_min1 = (1, MAX_COUNT);
    let seconds = (0, MAX_SECONDS);

    // 3.1 Listeners
    let host = r.host(&f::HOST, cli.host, DEFAULT_HOST)?;
    let port = r.port(&f::PORT, cli.port, DEFAULT_PORT)?;
    let dreadlock_port = r.port(
        &f::DREADLOCK_PORT,
        cli.dreadlock_port,
        DEFAULT_DREADLOCK_PORT,
    )?;
    let http_port = r.port(&f::HTTP_PORT, cli.http_port, DEFAULT_HTTP_PORT)?;
    let http_host = r.host(&f::HTTP_HOST, cli.http_host, host)?;

    // 3.2 Leases and garbage collection
    let default_lease_s = r.uint(
        &f::DEFAULT_LEASE_TTL,
        cli.default_lease_ttl,
        (1, MAX_SECONDS),
        DEFAULT_LEASE_TTL_S,
    )?;
    r.uint(
        &f::LEASE_SWEEP_INTERVAL,
        cli.lease_sweep_interval,
        (1, MAX_LEASE_SWEEP_INTERVAL_S),
        DEFAULT_LEASE_SWEEP_INTERVAL_S,
    )?;
    if let Some(line) = r.line(&f::LEASE_SWEEP_INTERVAL) {
        if line.origin != Origin::Default {
            let warning = format!(
                "{}{} has no effect: leases expire by timer",
                line.flag,
                line.origin.source_note()
            );
            r.warnings.push(warning);
        }
    }
    let gc_interval_s = r.uint(
        &f::GC_INTERVAL,
        cli.gc_interval,
        (1, MAX_DAY_S),
        DEFAULT_GC_INTERVAL_S,
    )?;
    let gc_max_idle_s = r.uint(
        &f::GC_MAX_IDLE,
        cli.gc_max_idle,
        seconds,
        DEFAULT_GC_MAX_IDLE_S,
    )?;
    // `--no-auto-release-on-disconnect` is `--auto-release-on-disconnect=false`; clap
    // refuses the two together (64).
    let auto_release_flag = cli.auto_release_on_disconnect.or_else(|| {
        cli.no_auto_release_on_disconnect
            .then(|| "false".to_owned())
    });
    let (auto_release_on_disconnect, _) = r.boolean(
        &f::AUTO_RELEASE,
        auto_release_flag,
        DEFAULT_AUTO_RELEASE_ON_DISCONNECT,
    )?;

    // 3.3 Limits
    let max_value_range = (1, MAX_VALUE_BYTES_LIMIT);
    let max_output_range = (MIN_OUTPUT_BYTES, MAX_OUTPUT_BYTES_LIMIT);
    let limits = Limits {
        max_locks: r.uint(&f::MAX_LOCKS, cli.max_locks, count_min1, DEFAULT_MAX_LOCKS)?,
        max_waiters: r.uint(&f::MAX_WAITERS, cli.max_waiters, count, DEFAULT_MAX_WAITERS)?,
        max_keys: r.uint(&f::MAX_KEYS, cli.max_keys, count, DEFAULT_MAX_KEYS)?,
        max_list_length: r.uint(
            &f::MAX_LIST_LENGTH,
            cli.max_list_length,
            count,
            DEFAULT_MAX_LIST_LENGTH,
        )?,
        max_value_bytes: r.bytes(
            &f::MAX_VALUE_BYTES,
            cli.max_value_bytes,
            max_value_range,
            DEFAULT_MAX_VALUE_BYTES,
        )?,
        max_memory: r.uint(
            &f::MAX_MEMORY,
            cli.max_memory,
            (0, u64::MAX),
            host::default_max_memory(host::available_memory(Path::new("/"))),
        )?,
        max_output_bytes: r.bytes(
            &f::MAX_OUTPUT_BYTES,
            cli.max_output_bytes,
            max_output_range,
            DEFAULT_MAX_OUTPUT_BYTES,
        )?,
        max_subscriptions: r.uint(
            &f::MAX_SUBSCRIPTIONS,
            cli.max_subscriptions,
            count,
            DEFAULT_MAX_SUBSCRIPTIONS,
        )?,
        max_connections: r.uint(
            &f::MAX_CONNECTIONS,
            cli.max_connections,
            count,
            DEFAULT_MAX_CONNECTIONS,
        )?,
        max_connections_per_ip: r.uint(
            &f::MAX_CONNECTIONS_PER_IP,
            cli.max_connections_per_ip,
            count,
            DEFAULT_MAX_CONNECTIONS_PER_IP,
        )?,
        max_unauthenticated_connections: r.uint(
            &f::MAX_UNAUTHENTICATED,
            cli.max_unauthenticated_connections,
            count,
            DEFAULT_MAX_UNAUTHENTICATED_CONNECTIONS,
        )?,
    };

    // 3.4 Timeouts
    let read_timeout_s = r.uint(
        &f::READ_TIMEOUT,
        cli.read_timeout,
        seconds,
        DEFAULT_READ_TIMEOUT_S,
    )?;
    let write_timeout_s = r.uint(
        &f::WRITE_TIMEOUT,
        cli.write_timeout,
        seconds,
        DEFAULT_WRITE_TIMEOUT_S,
    )?;
    let shutdown_timeout_s = r.uint(
        &f::SHUTDOWN_TIMEOUT,
        cli.shutdown_timeout,
        seconds,
        DEFAULT_SHUTDOWN_TIMEOUT_S,
    )?;
    let busy_poll_us = r.uint(
        &f::BUSY_POLL,
        cli.busy_poll_us,
        (0, MAX_BUSY_POLL_US),
        DEFAULT_BUSY_POLL_US,
    )?;

    // 3.5 TLS and authentication
    let tls_cert = r.path(&f::TLS_CERT, cli.tls_cert, |_| Ok(()))?;
    let tls_key = r.path(&f::TLS_KEY, cli.tls_key, |_| Ok(()))?;
    let tls_client_ca = r.path(&f::TLS_CLIENT_CA, cli.tls_client_ca, |_| Ok(()))?;
    let token = resolve_token(&mut r, cli.auth_token, cli.auth_token_file)?;

    // 3.6 Fencing
    let (fence_field, _) = r.boolean(&f::FENCE_FIELD, cli.fence_field, DEFAULT_FENCE_FIELD)?;
    let fence_state_file = r.path(
        &f::FENCE_STATE_FILE,
        cli.fence_state_file,
        in_existing_directory,
    )?;

    // 3.7 HTTP
    let http = HttpConfig {
        session_idle_timeout_s: r.uint(
            &f::HTTP_SESSION_IDLE,
            cli.http_session_idle_timeout,
            (1, MAX_DAY_S),
            DEFAULT_HTTP_SESSION_IDLE_TIMEOUT_S,
        )?,
        max_sessions: r.uint(
            &f::HTTP_MAX_SESSIONS,
            cli.http_max_sessions,
            count,
            DEFAULT_HTTP_MAX_SESSIONS,
        )?,
        max_sessions_per_ip: r.uint(
            &f::HTTP_MAX_SESSIONS_PER_IP,
            cli.http_max_sessions_per_ip,
            count,
            DEFAULT_HTTP_MAX_SESSIONS_PER_IP,
        )?,
        max_connections_per_ip: r.uint(
            &f::HTTP_MAX_CONNECTIONS_PER_IP,
            cli.http_max_connections_per_ip,
            count,
            DEFAULT_HTTP_MAX_CONNECTIONS_PER_IP,
        )?,
        rate_limit_per_ip: r.uint(
            &f::HTTP_RATE_LIMIT,
            cli.http_rate_limit_per_ip,
            (0, MAX_HTTP_RATE),
            DEFAULT_HTTP_RATE_LIMIT_PER_IP,
        )?,
        rate_limit_burst: r.uint(
            &f::HTTP_RATE_BURST,
            cli.http_rate_limit_burst,
            (0, MAX_HTTP_RATE),
            DEFAULT_HTTP_RATE_LIMIT_BURST,
        )?,
        cors_allowed_origins: resolve_origins(&mut r, cli.http_cors_allowed_origins)?,
        sse_ping_interval_s: r.uint(
            &f::HTTP_SSE_PING,
            cli.http_sse_ping_interval,
            (0, MAX_DAY_S),
            DEFAULT_HTTP_SSE_PING_INTERVAL_S,
        )?,
    };

    // 3.8 Logging
    let log_filter = resolve_log_filter(&mut r, cli.log_level, cli.debug)?;

    // §4 cross-field rules, then §6 step 3: read the files.
    let ports = [port, http_port, dreadlock_port];
    rules::check_cross_fields(
        &r.lines,
        [tls_cert.as_ref(), tls_key.as_ref(), tls_client_ca.as_ref()],
        ports,
        &limits,
    )?;
    let tls = match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => Some(load_tls(cert, key, tls_client_ca)?),
        _ => None,
    };
    let (auth_token, auth_token_file) = match token {
        Some(Token::Literal(token)) => (Some(token), None),
        Some(Token::File(file)) => (Some(read::read_token_file(&file)?), Some(file.path)),
        None => (None, None),
    };
    if let Some(file) = &fence_state_file {
        read::check_fence_state(file)?;
    }

    let config = Config {
        host,
        port,
        dreadlock_port,
        http_port,
        http_host,
        default_lease_s,
        gc_interval_s,
        gc_max_idle_s,
        auto_release_on_disconnect,
        limits,
        read_timeout_s,
        write_timeout_s,
        shutdown_timeout_s,
        busy_poll_us,
        tls,
        auth_token,
        auth_token_file,
        fence_field,
        fence_state_file: fence_state_file.map(|file| file.path),
        http,
        log_filter,
        warnings: r.warnings,
    };
    Ok((config, r.lines))
}

/// Reads the TLS files and builds the server configuration once, so a start (and
/// `--check-config`) fails on anything the server would fail on: PEM content, a key
/// that does not match the certificate, an unusable client CA bundle.
fn load_tls(
    cert: NamedPath,
    key: NamedPath,
    client_ca: Option<NamedPath>,
) -> Result<TlsFiles, ConfigError> {
    read::check_readable(&cert)?;
    read::check_readable(&key)?;
    if let Some(ca) = &client_ca {
        read::check_readable(ca)?;
    }
    let files = TlsFiles {
        cert: cert.path.clone(),
        key: key.path.clone(),
        client_ca: client_ca.as_ref().map(|ca| ca.path.clone()),
    };
    crate::net::tls::load(&files).map_err(|e| {
        let file = [Some(&cert), Some(&key), client_ca.as_ref()]
            .into_iter()
            .flatten()
            .find(|f| f.flag == e.flag);
        let name = file.map_or_else(|| e.flag.to_owned(), NamedPath::describe);
        ConfigError::Invalid(format!("dflockd: invalid {name}: {}", e.reason))
    })?;
    Ok(files)
}

/// Where the auth token comes from; a file is read after the cross-field rules.
enum Token {
    Literal(Vec<u8>),
    File(NamedPath),
}

/// The §3.5 chain: `--auth-token` > `--auth-token-file` > `DFLOCKD_AUTH_TOKEN` >
/// `DFLOCKD_AUTH_TOKEN_FILE`; the first one set wins and the others are ignored (not
/// even validated). The report shows the winner on its own line and `(unset)` on the
/// other, matching `Config::auth_token_file`. The token itself is never shown.
fn resolve_token(
    r: &mut Resolver<'_>,
    token_flag: Option<String>,
    file_flag: Option<String>,
) -> Result<Option<Token>, ConfigError> {
    let literal = r.given(&flags::AUTH_TOKEN, token_flag);
    let file = r.given(&flags::AUTH_TOKEN_FILE, file_flag);
    let use_file = match (&literal, &file) {
        (Some(lit), _) if lit.origin == Origin::Flag => false,
        (_, Some(f)) if f.origin == Origin::Flag => true,
        (Some(_), _) => false,
        (None, Some(_)) => true,
        (None, None) => {
            r.record(&flags::AUTH_TOKEN, UNSET.to_owned(), None);
            r.record(&flags::AUTH_TOKEN_FILE, UNSET.to_owned(), None);
            return Ok(None);
        }
    };
    if use_file {
        r.record(&flags::AUTH_TOKEN, UNSET.to_owned(), None);
        let file = r.path_given(&flags::AUTH_TOKEN_FILE, file, |_| Ok(()))?;
        return Ok(file.map(Token::File));
    }
    let Some(literal) = literal else {
        return Ok(None);
    };
    if let Err(rule) = check_token(literal.text.as_bytes()) {
        return Err(ConfigError::Invalid(format!(
            "dflockd: invalid value {REDACTED} for {}{}: {rule}",
            flags::AUTH_TOKEN.flag,
            literal.origin.source_note()
        )));
    }
    let token = literal.text.clone().into_bytes();
    r.record(&flags::AUTH_TOKEN, REDACTED.to_owned(), Some(literal));
    r.record(&flags::AUTH_TOKEN_FILE, UNSET.to_owned(), None);
    Ok(Some(Token::Literal(token)))
}

/// `--http-cors-allowed-origins`: unset = CORS off (an empty list).
fn resolve_origins(r: &mut Resolver<'_>, flag: Option<String>) -> Result<Vec<String>, ConfigError> {
    let parsed = r.parsed(&flags::HTTP_CORS, flag, |text| {
        parse_origins(text).ok_or_else(|| ORIGINS_RULE.to_owned())
    })?;
    match parsed {
        Some((origins, given)) => {
            r.record(&flags::HTTP_CORS, origins.join(","), Some(given));
            Ok(origins)
        }
        None => {
            r.record(&flags::HTTP_CORS, UNSET.to_owned(), None);
            Ok(Vec::new())
        }
    }
}

/// The §3.8 chain: `--log-level`, `--debug=true`, `DFLOCKD_LOG_LEVEL`,
/// `DFLOCKD_DEBUG=true`, `RUST_LOG`, `info`. Both settings are resolved first (flag
/// beats variable, so `--debug=false` also hides `DFLOCKD_DEBUG=true`) and validated
/// even when the other one wins. The `--log-level` line shows the effective filter
/// and where it came from (`flag` for `--debug` too); the `--debug` line its own value.
fn resolve_log_filter(
    r: &mut Resolver<'_>,
    level_flag: Option<String>,
    debug_flag: Option<String>,
) -> Result<String, ConfigError> {
    let level = r.parsed(&flags::LOG_LEVEL, level_flag, |text| {
        parse_log_level(text).ok_or_else(|| LOG_LEVEL_RULE.to_owned())
    })?;
    let debug = r.parsed(&flags::DEBUG, debug_flag, |text| {
        parse_bool(text).ok_or_else(|| BOOL_RULE.to_owned())
    })?;
    let level = level.map(|(level, given)| (level.to_owned(), given.origin));
    let (debug_on, debug_origin) =
        debug.map_or((DEFAULT_DEBUG, Origin::Default), |(d, g)| (d, g.origin));
    let debug = debug_on.then(|| ("debug".to_owned(), debug_origin));

    let by_flag = |c: &(String, Origin)| c.1 == Origin::Flag;
    let by_env = |c: &(String, Origin)| matches!(c.1, Origin::Env(_));
    let chain = [
        level.clone().filter(by_flag),
        debug.clone().filter(by_flag),
        level.filter(by_env),
        debug.filter(by_env),
        r.var("RUST_LOG").map(|v| (v, Origin::Env("RUST_LOG"))),
    ];
    let (filter, origin) = chain
        .into_iter()
        .flatten()
        .next()
        .unwrap_or_else(|| (DEFAULT_LOG_FILTER.to_owned(), Origin::Default));
    r.lines.push(Line {
        flag: flags::LOG_LEVEL.flag,
        shown: filter.clone(),
        origin,
        given: filter.clone(),
    });
    r.lines.push(Line {
        flag: flags::DEBUG.flag,
        shown: debug_on.to_string(),
        origin: debug_origin,
        given: debug_on.to_string(),
    });
    Ok(filter)
}
