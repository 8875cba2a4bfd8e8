//! Tests of `load`'s behaviour through `parse` (no stdout capture needed), hermetic: the
//! environment is a map and files live in per-test directories under the temp dir.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::settings::flags;
use super::*;

// ---- helpers ----

fn parse_with(args: &[&str], env: &[(&str, &str)]) -> Result<Parsed, ConfigError> {
    let vars: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let lookup = move |name: &str| vars.get(name).cloned();
    let argv = std::iter::once("dflockd").chain(args.iter().copied());
    parse(argv, &lookup)
}

fn loaded(args: &[&str], env: &[(&str, &str)]) -> Loaded {
    match parse_with(args, env) {
        Ok(Parsed::Loaded(loaded)) => *loaded,
        Ok(Parsed::Print(text)) => panic!("{args:?}: printed {text:?}"),
        Err(e) => panic!("{args:?} {env:?}: {}", e.message()),
    }
}

fn config(args: &[&str], env: &[(&str, &str)]) -> Config {
    loaded(args, env).config
}

fn error(args: &[&str], env: &[(&str, &str)]) -> ConfigError {
    match parse_with(args, env) {
        Ok(_) => panic!("{args:?} {env:?}: accepted"),
        Err(e) => e,
    }
}

/// The exact message of an exit-78 refusal.
fn invalid(args: &[&str], env: &[(&str, &str)]) -> String {
    let e = error(args, env);
    assert_eq!(e.exit_code(), 78, "{args:?}: {}", e.message());
    e.message().to_owned()
}

fn assert_usage(args: &[&str]) {
    let e = error(args, &[]);
    assert_eq!(e.exit_code(), 64, "{args:?}: {}", e.message());
    assert!(matches!(e, ConfigError::Usage(_)));
    assert!(e.message().starts_with("error: "), "{}", e.message());
    assert!(!e.message().ends_with('\n'));
}

fn report(args: &[&str], env: &[(&str, &str)]) -> Vec<String> {
    loaded(args, env)
        .report
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The report line of one flag, e.g. `--port=7000 (env DFLOCKD_PORT)`.
fn line(args: &[&str], env: &[(&str, &str)], flag: &str) -> String {
    let prefix = format!("{flag}=");
    report(args, env)
        .into_iter()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no line for {flag}"))
}

/// A fresh directory under the temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "dflockd-config-test-{}-{tag}-{n}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn file(&self, name: &str, content: &[u8]) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, content).expect("write temp file");
        path_str(&path)
    }

    fn path(&self, name: &str) -> String {
        path_str(&self.0.join(name))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn path_str(path: &Path) -> String {
    path.to_str().expect("temp paths are UTF-8").to_owned()
}

// ---- sources and precedence (§1) ----

#[test]
fn defaults() {
    let c = config(&[], &[]);
    assert_eq!(c, Config::default());
    assert_eq!(c.host, IpAddr::from([127, 0, 0, 1]));
    assert_eq!(c.http_host, c.host);
    assert_eq!(c.port, 6388);
    assert_eq!((c.dreadlock_port, c.http_port), (0, 0));
    assert_eq!(c.default_lease_s, 33);
    assert_eq!((c.gc_interval_s, c.gc_max_idle_s), (5, 60));
    assert!(c.auto_release_on_disconnect);
    assert_eq!(c.limits.max_locks, 1024);
    assert_eq!(c.limits.max_keys, 65536);
    assert_eq!(c.limits.max_value_bytes, 65536);
    assert_eq!(c.limits.max_output_bytes, 1_048_576);
    assert_eq!(c.limits.max_subscriptions, 1024);
    assert_eq!(
        (c.read_timeout_s, c.write_timeout_s, c.shutdown_timeout_s),
        (23, 5, 30)
    );
    assert_eq!(c.busy_poll_us, 25);
    assert_eq!((c.tls, c.auth_token, c.auth_token_file), (None, None, None));
    assert!(!c.fence_field);
    assert_eq!(c.fence_state_file, None);
    assert_eq!(c.http.session_idle_timeout_s, 20);
    assert_eq!(c.http.sse_ping_interval_s, 15);
    assert!(c.http.cors_allowed_origins.is_empty());
    assert_eq!(c.log_filter, "info");
    assert!(c.warnings.is_empty());
    assert!(!loaded(&[], &[]).check_config);
}

#[test]
fn flag_beats_env_beats_default() {
    let env = [("DFLOCKD_PORT", "7000")];
    assert_eq!(config(&["--port", "7001"], &env).port, 7001);
    assert_eq!(config(&["--port=7001"], &env).port, 7001);
    assert_eq!(config(&[], &env).port, 7000);
    assert_eq!(config(&[], &[]).port, 6388);
    // An explicit flag wins even when it equals the default.
    assert_eq!(config(&["--port", "6388"], &env).port, 6388);
    assert_eq!(
        line(&["--port", "6388"], &env, "--port"),
        "--port=6388 (flag)"
    );
    assert_eq!(line(&[], &env, "--port"), "--port=7000 (env DFLOCKD_PORT)");
    assert_eq!(line(&[], &[], "--port"), "--port=6388 (default)");
    // An invalid variable is ignored when the flag wins.
    assert_eq!(config(&["--port", "1"], &[("DFLOCKD_PORT", "abc")]).port, 1);
}

#[test]
fn env_reaches_every_kind_of_setting() {
    let c = config(
        &[],
        &[
            ("DFLOCKD_HOST", "0.0.0.0"),
            ("DFLOCKD_HTTP_PORT", "6389"),
            ("DFLOCKD_MAX_CONNECTIONS", "10000"),
            ("DFLOCKD_FENCE_FIELD", "On"),
            ("DFLOCKD_AUTO_RELEASE_ON_DISCONNECT", "no"),
            ("DFLOCKD_HTTP_CORS_ALLOWED_ORIGINS", "https://a.example, *"),
            ("DFLOCKD_MAX_VALUE_BYTES", "1000"),
        ],
    );
    assert_eq!(c.host, IpAddr::from([0, 0, 0, 0]));
    assert_eq!(c.http_host, c.host);
    assert_eq!(c.http_port, 6389);
    assert_eq!(c.limits.max_connections, 10000);
    assert!(c.fence_field);
    assert!(!c.auto_release_on_disconnect);
    assert_eq!(c.http.cors_allowed_origins, ["https://a.example", "*"]);
    assert_eq!(c.limits.max_value_bytes, 1000);
}

#[test]
fn empty_env_counts_as_unset() {
    let env = [
        ("DFLOCKD_PORT", ""),
        ("DFLOCKD_HOST", ""),
        ("DFLOCKD_FENCE_FIELD", ""),
        ("DFLOCKD_AUTH_TOKEN", ""),
        ("DFLOCKD_TLS_CERT", ""),
        ("DFLOCKD_LOG_LEVEL", ""),
        ("RUST_LOG", ""),
        ("DFLOCKD_GC_INTERVAL_S", ""),
    ];
    assert_eq!(config(&[], &env), Config::default());
    assert_eq!(line(&[], &env, "--port"), "--port=6388 (default)");
}

// ---- §5 messages ----

#[test]
fn spec_example_messages() {
    assert_eq!(
        invalid(&[], &[("DFLOCKD_PORT", "abc")]),
        r#"dflockd: invalid value "abc" for --port (from DFLOCKD_PORT): must be an integer in 0..=65535"#
    );
    assert_eq!(
        invalid(&["--port", "70000"], &[]),
        r#"dflockd: invalid value "70000" for --port: must be an integer in 0..=65535"#
    );
    assert_eq!(
        invalid(&["--max-locks", "0"], &[]),
        r#"dflockd: invalid value "0" for --max-locks: must be an integer in 1..=4294967295"#
    );
    assert_eq!(
        invalid(&["--fence-field=maybe"], &[]),
        r#"dflockd: invalid value "maybe" for --fence-field: must be one of 1, yes, true, on, 0, no, false, off"#
    );
    let dir = TempDir::new("msg");
    let cert = dir.file("cert.pem", b"cert");
    assert_eq!(
        invalid(&["--tls-cert", &cert], &[]),
        "dflockd: --tls-cert is set but --tls-key is not: give both or neither"
    );
    assert_eq!(
        invalid(&["--max-output-bytes", "65536"], &[]),
        r#"dflockd: invalid value "65536" for --max-output-bytes: must be at least --max-value-bytes + 1024 (66560)"#
    );
    // Relative path, as in the spec; the crate root holds no token.txt.
    assert_eq!(
        invalid(&["--auth-token-file", "token.txt"], &[]),
        r#"dflockd: cannot read --auth-token-file "token.txt": No such file or directory"#
    );
    let fence = dir.file("fence.state", b"not a number\n");
    assert_eq!(
        invalid(&["--fence-state-file", &fence], &[]),
        format!(
            "dflockd: invalid fence state file {fence:?} (--fence-state-file): must hold one decimal unsigned 64-bit integer"
        )
    );
}

#[test]
fn messages_name_the_variable_and_stay_on_one_line() {
    assert_eq!(
        invalid(&[], &[("DFLOCKD_FENCE_FIELD", "maybe")]),
        r#"dflockd: invalid value "maybe" for --fence-field (from DFLOCKD_FENCE_FIELD): must be one of 1, yes, true, on, 0, no, false, off"#
    );
    assert_eq!(
        invalid(&["--max-keys=1\n2"], &[]),
        r#"dflockd: invalid value "1\n2" for --max-keys: must be an integer in 0..=4294967295"#
    );
    assert_eq!(
        invalid(&[], &[("DFLOCKD_AUTH_TOKEN_FILE", "token.txt")]),
        r#"dflockd: cannot read --auth-token-file "token.txt" (from DFLOCKD_AUTH_TOKEN_FILE): No such file or directory"#
    );
    assert_eq!(
        invalid(&["--log-level", "loud"], &[]),
        r#"dflockd: invalid value "loud" for --log-level: must be one of off, error, warn, info, debug, trace"#
    );
    assert_eq!(
        invalid(&["--tls-cert="], &[]),
        r#"dflockd: invalid value "" for --tls-cert: must be a non-empty path"#
    );
}

// ---- exit statuses and command-line syntax ----

#[test]
fn usage_errors_exit_64() {
    assert_usage(&["--prot", "6388"]);
    assert_usage(&["--port", "1", "--port", "2"]);
    assert_usage(&["--port=1", "--port=1"]);
    assert_usage(&["--fence-field", "--fence-field=off"]);
    assert_usage(&["--check-config", "--check-config"]);
    assert_usage(&["--port"]);
    assert_usage(&["stray"]);
    assert_usage(&[
        "--auto-release-on-disconnect",
        "--no-auto-release-on-disconnect",
    ]);
    assert_usage(&[
        "--no-auto-release-on-disconnect",
        "--auto-release-on-disconnect=true",
    ]);
    assert_usage(&["--no-auto-release-on-disconnect=false"]);
    assert_usage(&["--port", "-1"]);
    let e = error(&["--prot", "6388"], &[]);
    assert!(
        e.message()
            .starts_with("error: unexpected argument '--prot' found"),
        "{}",
        e.message()
    );
    let e = error(&["--port", "1", "--port", "2"], &[]);
    assert!(e.message().contains("cannot be used multiple times"));
}

#[test]
fn invalid_values_exit_78() {
    for args in [
        &["--port=-1"][..],
        &["--port", "+1"],
        &["--port", ""],
        &["--max-locks", "1_000"],
        &["--max-locks", "1k"],
        &["--read-timeout", "99999999999999999999999"],
        &["--debug=2"],
        &["--host", ""],
    ] {
        let e = error(args, &[]);
        assert_eq!(e.exit_code(), 78, "{args:?}");
        assert!(matches!(e, ConfigError::Invalid(_)));
        assert!(e.message().starts_with("dflockd: "));
    }
}

#[test]
fn exit_code_and_message_accessors() {
    let usage = ConfigError::Usage("error: x".to_owned());
    let invalid = ConfigError::Invalid("dflockd: y".to_owned());
    assert_eq!((usage.exit_code(), usage.message()), (64, "error: x"));
    assert_eq!((invalid.exit_code(), invalid.message()), (78, "dflockd: y"));
    assert_eq!(invalid.to_string(), "dflockd: y");
}

#[test]
fn boolean_syntax() {
    assert!(config(&["--fence-field"], &[]).fence_field);
    assert!(!config(&["--fence-field=off"], &[]).fence_field);
    assert!(config(&["--fence-field=YES"], &[]).fence_field);
    assert!(!config(&["--fence-field=0"], &[]).fence_field);
    // A bare flag beats the variable.
    assert!(config(&["--fence-field"], &[("DFLOCKD_FENCE_FIELD", "off")]).fence_field);
    // `--fence-field off`: `off` is an unexpected argument.
    assert_usage(&["--fence-field", "off"]);
    assert!(!config(&["--no-auto-release-on-disconnect"], &[]).auto_release_on_disconnect);
    assert!(!config(&["--auto-release-on-disconnect=false"], &[]).auto_release_on_disconnect);
    assert!(config(&["--auto-release-on-disconnect"], &[]).auto_release_on_disconnect);
    let env = [("DFLOCKD_AUTO_RELEASE_ON_DISCONNECT", "bogus")];
    assert!(!config(&["--no-auto-release-on-disconnect"], &env).auto_release_on_disconnect);
    assert_eq!(
        line(
            &["--no-auto-release-on-disconnect"],
            &[],
            "--auto-release-on-disconnect"
        ),
        "--auto-release-on-disconnect=false (flag)"
    );
}

#[test]
fn help_and_version_print_and_exit_0() {
    let version = format!("dflockd {}\n", env!("CARGO_PKG_VERSION"));
    for flag in ["--version", "-V"] {
        match parse_with(&[flag], &[]) {
            Ok(Parsed::Print(text)) => assert_eq!(text, version),
            _ => panic!("{flag}"),
        }
    }
    for flag in ["--help", "-h"] {
        match parse_with(&[flag], &[]) {
            Ok(Parsed::Print(text)) => {
                assert!(text.contains("Usage: dflockd"), "{text}");
                assert!(text.contains("--fence-state-file"), "{text}");
            }
            _ => panic!("{flag}"),
        }
    }
}

#[test]
fn help_names_every_variable_and_default() {
    use clap::CommandFactory;
    let command = cli::Cli::command();
    let defaults = loaded(&[], &[]);
    for setting in flags::ALL {
        let long = setting.flag.trim_start_matches("--");
        let arg = command
            .get_arguments()
            .find(|a| a.get_long() == Some(long))
            .unwrap_or_else(|| panic!("no clap flag {}", setting.flag));
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        assert!(help.contains(&format!("[env: {}", setting.env)), "{help}");
        if let Some(alias) = setting.alias {
            assert!(help.contains(&format!("deprecated {alias}")), "{help}");
        }
        let prefix = format!("{}=", setting.flag);
        let default_line = defaults
            .report
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no report line for {}", setting.flag));
        let shown = default_line
            .trim_start_matches(&prefix)
            .trim_end_matches(" (default)");
        // `--http-host` follows `--host`; `--max-memory` follows the host's memory.
        let derived = ["--http-host", "--max-memory"].contains(&setting.flag);
        if shown != "(unset)" && !derived {
            assert!(help.contains(&format!("[default: {shown}]")), "{help}");
        }
    }
}

// ---- ranges (§3) ----

#[test]
fn busy_poll_us() {
    let flag = "--busy-poll-us";
    assert_eq!(config(&[flag, "0"], &[]).busy_poll_us, 0);
    assert_eq!(config(&[flag, "10000"], &[]).busy_poll_us, 10_000);
    assert_eq!(
        config(&[], &[("DFLOCKD_BUSY_POLL_US", "0")]).busy_poll_us,
        0
    );
    assert_eq!(
        config(&[flag, "7"], &[("DFLOCKD_BUSY_POLL_US", "0")]).busy_poll_us,
        7
    );
    assert_eq!(
        config(&[], &[("DFLOCKD_BUSY_POLL_US", "")]).busy_poll_us,
        DEFAULT_BUSY_POLL_US
    );
    assert_eq!(
        invalid(&[flag, "10001"], &[]),
        r#"dflockd: invalid value "10001" for --busy-poll-us: must be an integer in 0..=10000"#
    );
    assert_eq!(
        invalid(&[], &[("DFLOCKD_BUSY_POLL_US", "-1")]),
        r#"dflockd: invalid value "-1" for --busy-poll-us (from DFLOCKD_BUSY_POLL_US): must be an integer in 0..=10000"#
    );
    assert_eq!(
        line(&[], &[("DFLOCKD_BUSY_POLL_US", "0")], flag),
        "--busy-poll-us=0 (env DFLOCKD_BUSY_POLL_US)"
    );
    assert_eq!(line(&[], &[], flag), "--busy-poll-us=25 (default)");
}

#[test]
fn range_edges() {
    let accepts = |args: &[&str]| config(args, &[]);
    let refuses = |args: &[&str]| invalid(args, &[]);
    assert_eq!(accepts(&["--port", "65535"]).port, 65535);
    assert_eq!(accepts(&["--port", "0"]).port, 0);
    refuses(&["--port", "65536"]);
    assert_eq!(accepts(&["--max-locks", "1"]).limits.max_locks, 1);
    refuses(&["--max-locks", "0"]);
    assert_eq!(
        accepts(&["--max-locks", "4294967295"]).limits.max_locks,
        4_294_967_295
    );
    refuses(&["--max-locks", "4294967296"]);
    assert_eq!(accepts(&["--max-waiters", "0"]).limits.max_waiters, 0);
    let max_value = accepts(&[
        "--max-value-bytes",
        "1048576",
        "--max-output-bytes",
        "1049600",
    ]);
    assert_eq!(max_value.limits.max_value_bytes, 1_048_576);
    assert_eq!(
        refuses(&[
            "--max-value-bytes",
            "1048577",
            "--max-output-bytes",
            "1073741824"
        ]),
        r#"dflockd: invalid value "1048577" for --max-value-bytes: must be an integer in 1..=1048576"#
    );
    refuses(&["--max-value-bytes", "0"]);
    let small = accepts(&["--max-value-bytes", "3072", "--max-output-bytes", "4096"]);
    assert_eq!(small.limits.max_output_bytes, 4096);
    refuses(&["--max-value-bytes", "3072", "--max-output-bytes", "4095"]);
    assert_eq!(
        accepts(&["--max-output-bytes", "1073741824"])
            .limits
            .max_output_bytes,
        1_073_741_824
    );
    refuses(&["--max-output-bytes", "1073741825"]);
    refuses(&["--default-lease-ttl", "0"]);
    assert_eq!(accepts(&["--default-lease-ttl", "1"]).default_lease_s, 1);
    assert_eq!(
        accepts(&["--default-lease-ttl", "9223372036"]).default_lease_s,
        9_223_372_036
    );
    refuses(&["--default-lease-ttl", "9223372037"]);
    assert_eq!(accepts(&["--read-timeout", "0"]).read_timeout_s, 0);
    refuses(&["--shutdown-timeout", "9223372037"]);
    accepts(&["--lease-sweep-interval", "3600"]);
    refuses(&["--lease-sweep-interval", "3601"]);
    refuses(&["--lease-sweep-interval", "0"]);
    assert_eq!(accepts(&["--gc-interval", "86400"]).gc_interval_s, 86400);
    refuses(&["--gc-interval", "86401"]);
    refuses(&["--gc-interval", "0"]);
    assert_eq!(accepts(&["--gc-max-idle", "0"]).gc_max_idle_s, 0);
    refuses(&["--http-session-idle-timeout", "0"]);
    refuses(&["--http-session-idle-timeout", "86401"]);
    assert_eq!(
        accepts(&["--http-rate-limit-per-ip", "1000000"])
            .http
            .rate_limit_per_ip,
        1_000_000
    );
    refuses(&["--http-rate-limit-per-ip", "1000001"]);
    refuses(&["--http-rate-limit-burst", "1000001"]);
    assert_eq!(
        accepts(&["--http-sse-ping-interval", "0"])
            .http
            .sse_ping_interval_s,
        0
    );
    refuses(&["--http-sse-ping-interval", "86401"]);
    // Leading zeros are fine (§2), and the report shows the number.
    assert_eq!(accepts(&["--port", "007000"]).port, 7000);
    assert_eq!(
        line(&["--port", "007000"], &[], "--port"),
        "--port=7000 (flag)"
    );
}

#[test]
fn hosts() {
    let c = config(&["--host", "::1"], &[]);
    assert_eq!(c.host, "::1".parse::<IpAddr>().expect("literal"));
    assert_eq!(c.http_host, c.host, "--http-host defaults to --host");
    let c = config(&["--host", "0.0.0.0", "--http-host", "127.0.0.1"], &[]);
    assert_eq!(c.host, IpAddr::from([0, 0, 0, 0]));
    assert_eq!(c.http_host, IpAddr::from([127, 0, 0, 1]));
    assert!(config(&["--host", "localhost"], &[]).host.is_loopback());
    assert_eq!(
        line(&["--host", "0.0.0.0"], &[], "--http-host"),
        "--http-host=0.0.0.0 (default)"
    );
    assert_eq!(
        invalid(&["--host="], &[]),
        r#"dflockd: invalid value "" for --host: must be an IP address or a host name that resolves"#
    );
}

#[test]
fn cors_origins() {
    let c = config(
        &[
            "--http-cors-allowed-origins",
            " https://a.example , HTTPS://B.example:8443",
        ],
        &[],
    );
    assert_eq!(
        c.http.cors_allowed_origins,
        ["https://a.example", "https://b.example:8443"]
    );
    for bad in [
        "https://a.example/",
        "https://a.example,,https://b.example",
        "a.example",
        "",
    ] {
        let message = invalid(&["--http-cors-allowed-origins", bad], &[]);
        assert!(
            message.starts_with(&format!(
                "dflockd: invalid value {bad:?} for --http-cors-allowed-origins: must be"
            )),
            "{message}"
        );
    }
}

// ---- TLS and authentication (§3.5) ----

/// A CA, a server certificate it signed (with its key) and a second key, as PEM.
fn test_pki() -> (String, String, String, String) {
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .expect("params")
        .signed_by(&key, &issuer)
        .expect("cert");
    let other = rcgen::KeyPair::generate().expect("other key");
    (
        ca_cert.pem(),
        cert.pem(),
        key.serialize_pem(),
        other.serialize_pem(),
    )
}

#[test]
fn tls_needs_both_readable_files() {
    let dir = TempDir::new("tls");
    let (ca_pem, cert_pem, key_pem, other_key_pem) = test_pki();
    let cert = dir.file("cert.pem", cert_pem.as_bytes());
    let key = dir.file("key.pem", key_pem.as_bytes());
    let c = config(&["--tls-cert", &cert, "--tls-key", &key], &[]);
    let tls = c.tls.expect("tls on");
    assert_eq!(
        (tls.cert, tls.key, tls.client_ca),
        (PathBuf::from(&cert), PathBuf::from(&key), None)
    );
    assert_eq!(
        invalid(&[], &[("DFLOCKD_TLS_KEY", key.as_str())]),
        "dflockd: --tls-key (from DFLOCKD_TLS_KEY) is set but --tls-cert is not: give both or neither"
    );
    let missing = dir.path("missing.pem");
    assert_eq!(
        invalid(&["--tls-cert", &cert, "--tls-key", &missing], &[]),
        format!("dflockd: cannot read --tls-key {missing:?}: No such file or directory")
    );
    let directory = path_str(&dir.0);
    assert_eq!(
        invalid(&["--tls-cert", &directory, "--tls-key", &key], &[]),
        format!("dflockd: cannot read --tls-cert {directory:?}: Is a directory")
    );

    // The content is checked too: PEM blocks, the key against the certificate.
    let garbage = dir.file("garbage.pem", b"-----BEGIN CERTIFICATE-----\n");
    assert!(
        invalid(&["--tls-cert", &garbage, "--tls-key", &key], &[])
            .starts_with(&format!("dflockd: invalid --tls-cert {garbage:?}: "))
    );
    let empty = dir.file("empty.pem", b"no pem here\n");
    assert_eq!(
        invalid(&["--tls-cert", &empty, "--tls-key", &key], &[]),
        format!("dflockd: invalid --tls-cert {empty:?}: no PEM CERTIFICATE block found")
    );
    assert_eq!(
        invalid(&["--tls-cert", &cert, "--tls-key", &cert], &[]),
        format!(
            "dflockd: invalid --tls-key {cert:?}: no PEM private key found (PKCS#8, PKCS#1 or SEC1)"
        )
    );
    let other = dir.file("other.pem", other_key_pem.as_bytes());
    let env = [("DFLOCKD_TLS_KEY", other.as_str())];
    assert!(
        invalid(&["--tls-cert", &cert], &env).starts_with(&format!(
            "dflockd: invalid --tls-key {other:?} (from DFLOCKD_TLS_KEY): "
        )),
        "a key that does not match the certificate is refused"
    );

    // --tls-client-ca: mutual TLS, only together with --tls-cert/--tls-key.
    let ca = dir.file("ca.pem", ca_pem.as_bytes());
    let c = config(
        &["--tls-cert", &cert, "--tls-key", &key],
        &[("DFLOCKD_TLS_CLIENT_CA", ca.as_str())],
    );
    assert_eq!(c.tls.and_then(|t| t.client_ca), Some(PathBuf::from(&ca)));
    assert_eq!(
        invalid(&["--tls-client-ca", &ca], &[]),
        "dflockd: --tls-client-ca is set but --tls-cert is not: client certificates need TLS (give --tls-cert and --tls-key too)"
    );
    assert_eq!(
        invalid(
            &[
                "--tls-cert",
                &cert,
                "--tls-key",
                &key,
                "--tls-client-ca",
                &empty
            ],
            &[]
        ),
        format!("dflockd: invalid --tls-client-ca {empty:?}: no PEM CERTIFICATE block found")
    );
    assert!(
        report(
            &[
                "--tls-cert",
                &cert,
                "--tls-key",
                &key,
                "--tls-client-ca",
                &ca
            ],
            &[]
        )
        .contains(&format!("--tls-client-ca={ca} (flag)"))
    );
}

#[test]
fn auth_token_rules() {
    let c = config(&["--auth-token", "s3cret"], &[]);
    assert_eq!(c.auth_token.as_deref(), Some(&b"s3cret"[..]));
    assert_eq!(c.auth_token_file, None);
    let longest = "a".repeat(MAX_AUTH_TOKEN_BYTES);
    assert_eq!(
        config(&["--auth-token", &longest], &[])
            .auth_token
            .map(|t| t.len()),
        Some(65536)
    );
    let too_long = "a".repeat(MAX_AUTH_TOKEN_BYTES + 1);
    assert_eq!(
        invalid(&["--auth-token", &too_long], &[]),
        "dflockd: invalid value <redacted> for --auth-token: must be at most 65536 bytes"
    );
    for bad in ["", "a\nb", "a\rb", " secret", "secret\t"] {
        let message = invalid(&[&format!("--auth-token={bad}")], &[]);
        assert!(message.starts_with("dflockd: invalid value <redacted> for --auth-token: "));
        assert!(bad.is_empty() || !message.contains(bad), "{message}");
    }
    assert_eq!(
        invalid(&[], &[("DFLOCKD_AUTH_TOKEN", " padded")]),
        "dflockd: invalid value <redacted> for --auth-token (from DFLOCKD_AUTH_TOKEN): must not start or end with a space or TAB"
    );
}

#[test]
fn auth_token_file_is_trimmed() {
    let dir = TempDir::new("token");
    let file = dir.file("token.txt", b" \t secret value \r\n");
    let c = config(&["--auth-token-file", &file], &[]);
    assert_eq!(c.auth_token.as_deref(), Some(&b"secret value"[..]));
    assert_eq!(c.auth_token_file, Some(PathBuf::from(&file)));
    let c = config(&[], &[("DFLOCKD_AUTH_TOKEN_FILE", file.as_str())]);
    assert_eq!(c.auth_token.as_deref(), Some(&b"secret value"[..]));
    for (name, content, rule) in [
        ("empty", &b""[..], "must not be empty"),
        ("blank", b" \r\n\t\n", "must not be empty"),
        ("two-lines", b"one\ntwo\n", "must not contain CR or LF"),
    ] {
        let path = dir.file(name, content);
        assert_eq!(
            invalid(&["--auth-token-file", &path], &[]),
            format!("dflockd: invalid auth token in --auth-token-file {path:?}: the token {rule}")
        );
    }
}

#[test]
fn auth_token_chain() {
    let dir = TempDir::new("chain");
    let file = dir.file("flag-file", b"from-flag-file\n");
    let env_file = dir.file("env-file", b"from-env-file\n");
    let all_env = [
        ("DFLOCKD_AUTH_TOKEN", "from-env"),
        ("DFLOCKD_AUTH_TOKEN_FILE", env_file.as_str()),
    ];
    let token = |args: &[&str], env: &[(&str, &str)]| {
        let c = config(args, env);
        let text = c.auth_token.map(|t| String::from_utf8(t).expect("utf-8"));
        (text, c.auth_token_file)
    };
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(
        token(
            &["--auth-token", "from-flag", "--auth-token-file", &file],
            &all_env
        ),
        (some("from-flag"), None)
    );
    assert_eq!(
        token(&["--auth-token-file", &file], &all_env),
        (some("from-flag-file"), Some(PathBuf::from(&file)))
    );
    assert_eq!(token(&[], &all_env), (some("from-env"), None));
    assert_eq!(
        token(&[], &all_env[1..]),
        (some("from-env-file"), Some(PathBuf::from(&env_file)))
    );
    assert_eq!(token(&[], &[]), (None, None));
    // The losers are ignored, not validated.
    let bad_env = [
        ("DFLOCKD_AUTH_TOKEN", " bad"),
        ("DFLOCKD_AUTH_TOKEN_FILE", "/nonexistent/token"),
    ];
    assert_eq!(token(&["--auth-token", "ok"], &bad_env), (some("ok"), None));
    // The report shows the winner and never the token.
    let lines = report(&["--auth-token-file", &file], &all_env);
    assert!(lines.contains(&"--auth-token=(unset) (default)".to_owned()));
    assert!(lines.contains(&format!("--auth-token-file={file} (flag)")));
    let lines = report(&[], &all_env);
    assert!(lines.contains(&"--auth-token=<redacted> (env DFLOCKD_AUTH_TOKEN)".to_owned()));
    assert!(lines.contains(&"--auth-token-file=(unset) (default)".to_owned()));
    assert!(lines.iter().all(|l| !l.contains("from-")));
}

// ---- fencing (§3.6) ----

#[test]
fn fence_state_file() {
    let dir = TempDir::new("fence");
    for (name, content) in [
        ("lf", &b"42\n"[..]),
        ("no-lf", b"42"),
        ("max", b"18446744073709551615\n"),
    ] {
        let path = dir.file(name, content);
        assert_eq!(
            config(&["--fence-state-file", &path], &[]).fence_state_file,
            Some(PathBuf::from(&path))
        );
    }
    // Missing is fine (created at start, never here).
    let missing = dir.path("not-yet");
    assert!(
        config(&["--fence-state-file", &missing], &[])
            .fence_state_file
            .is_some()
    );
    assert!(
        !Path::new(&missing).exists(),
        "config must not create the file"
    );
    for (name, content) in [
        ("empty", &b""[..]),
        ("text", b"abc\n"),
        ("two-lf", b"42\n\n"),
        ("crlf", b"42\r\n"),
        ("negative", b"-1\n"),
        ("overflow", b"18446744073709551616\n"),
        ("huge", &[b'0'; 100]),
    ] {
        let path = dir.file(name, content);
        assert_eq!(
            invalid(&[], &[("DFLOCKD_FENCE_STATE_FILE", path.as_str())]),
            format!(
                "dflockd: invalid fence state file {path:?} (--fence-state-file from DFLOCKD_FENCE_STATE_FILE): must hold one decimal unsigned 64-bit integer"
            ),
            "{name}"
        );
    }
    let no_dir = dir.path("no-such-dir/fence.state");
    let parent = dir.path("no-such-dir");
    assert_eq!(
        invalid(&["--fence-state-file", &no_dir], &[]),
        format!(
            "dflockd: invalid value {no_dir:?} for --fence-state-file: directory {parent:?} does not exist"
        )
    );
    let directory = path_str(&dir.0);
    assert_eq!(
        invalid(&["--fence-state-file", &directory], &[]),
        format!("dflockd: cannot read --fence-state-file {directory:?}: Is a directory")
    );
}

// ---- cross-field rules (§4) ----

#[test]
fn ports_must_differ() {
    assert_eq!(
        invalid(&["--http-port", "6388"], &[]),
        "dflockd: --port and --http-port are both 6388: the non-zero ports must be pairwise different"
    );
    assert_eq!(
        invalid(
            &["--http-port", "7000"],
            &[("DFLOCKD_DREADLOCK_PORT", "7000")]
        ),
        "dflockd: --http-port and --dreadlock-port (from DFLOCKD_DREADLOCK_PORT) are both 7000: the non-zero ports must be pairwise different"
    );
    assert!(
        invalid(&["--dreadlock-port", "6388"], &[])
            .starts_with("dflockd: --port and --dreadlock-port")
    );
    let zeros = config(
        &["--port", "0", "--http-port", "0", "--dreadlock-port", "0"],
        &[],
    );
    assert_eq!(
        (zeros.port, zeros.http_port, zeros.dreadlock_port),
        (0, 0, 0)
    );
    let distinct = config(&["--http-port", "6389", "--dreadlock-port", "6001"], &[]);
    assert_eq!((distinct.http_port, distinct.dreadlock_port), (6389, 6001));
}

#[test]
fn output_must_fit_largest_push() {
    let exact = config(
        &["--max-value-bytes", "8192", "--max-output-bytes", "9216"],
        &[],
    );
    assert_eq!(exact.limits.max_output_bytes, 9216);
    assert_eq!(
        invalid(
            &["--max-value-bytes", "8192"],
            &[("DFLOCKD_MAX_OUTPUT_BYTES", "09215")]
        ),
        r#"dflockd: invalid value "09215" for --max-output-bytes (from DFLOCKD_MAX_OUTPUT_BYTES): must be at least --max-value-bytes + 1024 (9216)"#
    );
}

#[test]
fn cross_field_rules_follow_single_values() {
    // A bad single value is reported before a cross-field rule it would also break.
    assert_eq!(
        invalid(&["--http-port", "6388", "--max-locks", "0"], &[]),
        r#"dflockd: invalid value "0" for --max-locks: must be an integer in 1..=4294967295"#
    );
    // And the TLS pairing is checked before the files are read.
    assert_eq!(
        invalid(&["--tls-cert", "/nonexistent/cert.pem"], &[]),
        "dflockd: --tls-cert is set but --tls-key is not: give both or neither"
    );
}

#[test]
fn max_memory_default_is_derived_and_any_u64_is_valid() {
    let derived = host::default_max_memory(host::available_memory(Path::new("/")));
    assert!(derived > 0 && derived <= DEFAULT_MAX_MEMORY, "{derived}");
    assert_eq!(config(&[], &[]).limits.max_memory, derived);
    assert_eq!(
        line(&[], &[], "--max-memory"),
        format!("--max-memory={derived} (default)")
    );
    assert_eq!(config(&["--max-memory", "0"], &[]).limits.max_memory, 0);
    let max = config(&["--max-memory", "18446744073709551615"], &[]);
    assert_eq!(max.limits.max_memory, u64::MAX);
    let env = [("DFLOCKD_MAX_MEMORY", "67108864")];
    assert_eq!(config(&[], &env).limits.max_memory, 64 << 20);
    assert_eq!(
        line(&[], &env, "--max-memory"),
        "--max-memory=67108864 (env DFLOCKD_MAX_MEMORY)"
    );
    assert_eq!(
        invalid(&["--max-memory", "18446744073709551616"], &[]),
        r#"dflockd: invalid value "18446744073709551616" for --max-memory: must be an integer in 0..=18446744073709551615"#
    );
}

// ---- --check-config (§3.9) ----

#[test]
fn check_config_report() {
    let loaded = loaded(
        &["--check-config", "--max-locks", "4096"],
        &[("DFLOCKD_PORT", "7000")],
    );
    assert!(loaded.check_config);
    let lines: Vec<&str> = loaded.report.lines().collect();
    assert_eq!(
        lines[..6],
        [
            "--host=127.0.0.1 (default)",
            "--port=7000 (env DFLOCKD_PORT)",
            "--dreadlock-port=0 (default)",
            "--http-port=0 (default)",
            "--http-host=127.0.0.1 (default)",
            "--default-lease-ttl=33 (default)",
        ]
    );
    assert!(lines.contains(&"--max-locks=4096 (flag)"));
    assert!(lines.contains(&"--auth-token=(unset) (default)"));
    assert!(lines.contains(&"--tls-cert=(unset) (default)"));
    assert!(lines.contains(&"--tls-client-ca=(unset) (default)"));
    assert!(lines.contains(&"--http-cors-allowed-origins=(unset) (default)"));
    assert!(lines.contains(&"--log-level=info (default)"));
    assert_eq!(lines.last(), Some(&"configuration ok"));
    assert!(loaded.report.ends_with("configuration ok\n"));
    // One line per setting, in §3 table order.
    let flags_in_report: Vec<&str> = lines[..lines.len() - 1]
        .iter()
        .map(|l| l.split('=').next().unwrap_or_default())
        .collect();
    let expected: Vec<&str> = flags::ALL.iter().map(|s| s.flag).collect();
    assert_eq!(flags_in_report, expected);
    for l in &lines[..lines.len() - 1] {
        assert!(
            l.ends_with(" (default)") || l.ends_with(" (flag)") || l.contains(" (env "),
            "{l}"
        );
    }
}

#[test]
fn check_config_fails_like_a_start() {
    let e = error(&["--check-config", "--port", "70000"], &[]);
    assert_eq!(e.exit_code(), 78);
}

#[test]
fn report_renders_values_not_raw_text() {
    let dir = TempDir::new("report");
    let fence = dir.path("fence.state");
    let args = [
        "--fence-field",
        "--auto-release-on-disconnect=OFF",
        "--http-cors-allowed-origins=https://A.example, *",
        "--fence-state-file",
        fence.as_str(),
        "--auth-token",
        "hunter2",
    ];
    let lines = report(&args, &[]);
    for expected in [
        "--fence-field=true (flag)".to_owned(),
        "--auto-release-on-disconnect=false (flag)".to_owned(),
        "--http-cors-allowed-origins=https://a.example,* (flag)".to_owned(),
        format!("--fence-state-file={fence} (flag)"),
        "--auth-token=<redacted> (flag)".to_owned(),
    ] {
        assert!(lines.contains(&expected), "{expected} not in {lines:#?}");
    }
    assert!(lines.iter().all(|l| !l.contains("hunter2")));
}

// ---- warnings ----

#[test]
fn deprecated_aliases_warn() {
    let c = config(&[], &[("DFLOCKD_GC_LOOP_SLEEP", "7")]);
    assert_eq!(c.gc_interval_s, 7);
    assert_eq!(c.warnings.len(), 1);
    assert!(c.warnings[0].contains("DFLOCKD_GC_LOOP_SLEEP"));
    assert!(c.warnings[0].contains("DFLOCKD_GC_INTERVAL_S"));
    assert_eq!(
        line(&[], &[("DFLOCKD_GC_LOOP_SLEEP", "7")], "--gc-interval"),
        "--gc-interval=7 (env DFLOCKD_GC_LOOP_SLEEP)"
    );
    let c = config(&[], &[("DFLOCKD_GC_MAX_UNUSED_TIME", "0")]);
    assert_eq!(c.gc_max_idle_s, 0);
    assert!(c.warnings[0].contains("DFLOCKD_GC_MAX_IDLE_S"));
    // The current name beats the alias, and then the alias is not used: no warning.
    let c = config(
        &[],
        &[
            ("DFLOCKD_GC_INTERVAL_S", "9"),
            ("DFLOCKD_GC_LOOP_SLEEP", "7"),
        ],
    );
    assert_eq!((c.gc_interval_s, c.warnings.len()), (9, 0));
    let c = config(
        &["--gc-max-idle", "3"],
        &[("DFLOCKD_GC_MAX_UNUSED_TIME", "x")],
    );
    assert_eq!((c.gc_max_idle_s, c.warnings.len()), (3, 0));
    assert_eq!(
        invalid(&[], &[("DFLOCKD_GC_LOOP_SLEEP", "0")]),
        r#"dflockd: invalid value "0" for --gc-interval (from DFLOCKD_GC_LOOP_SLEEP): must be an integer in 1..=86400"#
    );
}

#[test]
fn lease_sweep_interval_warns_only_when_set() {
    assert!(config(&[], &[]).warnings.is_empty());
    let c = config(&["--lease-sweep-interval", "1"], &[]);
    assert_eq!(
        c.warnings,
        ["--lease-sweep-interval has no effect: leases expire by timer"]
    );
    let c = config(&[], &[("DFLOCKD_LEASE_SWEEP_INTERVAL_S", "2")]);
    assert_eq!(
        c.warnings,
        [
            "--lease-sweep-interval (from DFLOCKD_LEASE_SWEEP_INTERVAL_S) has no effect: leases expire by timer"
        ]
    );
}

// ---- logging (§3.8) ----

#[test]
fn log_filter_chain() {
    let filter = |args: &[&str], env: &[(&str, &str)]| config(args, env).log_filter;
    assert_eq!(filter(&[], &[]), "info");
    assert_eq!(
        filter(&[], &[("RUST_LOG", "dflockd=trace")]),
        "dflockd=trace"
    );
    assert_eq!(
        filter(
            &[],
            &[("RUST_LOG", "dflockd=trace"), ("DFLOCKD_DEBUG", "1")]
        ),
        "debug"
    );
    assert_eq!(
        filter(
            &[],
            &[("DFLOCKD_DEBUG", "1"), ("DFLOCKD_LOG_LEVEL", "WARN")]
        ),
        "warn"
    );
    assert_eq!(
        filter(&["--debug"], &[("DFLOCKD_LOG_LEVEL", "warn")]),
        "debug"
    );
    assert_eq!(filter(&["--log-level", "error", "--debug"], &[]), "error");
    assert_eq!(filter(&["--log-level=Trace"], &[]), "trace");
    // DFLOCKD_DEBUG=false does not apply; RUST_LOG does.
    assert_eq!(
        filter(&[], &[("DFLOCKD_DEBUG", "false"), ("RUST_LOG", "warn")]),
        "warn"
    );
    // --debug=false is an explicit flag and hides DFLOCKD_DEBUG=true.
    assert_eq!(
        filter(&["--debug=false"], &[("DFLOCKD_DEBUG", "true")]),
        "info"
    );
    // Every setting is validated, even when another one wins.
    invalid(&["--debug"], &[("DFLOCKD_LOG_LEVEL", "loud")]);
    let env = [("RUST_LOG", "dflockd=debug")];
    assert_eq!(
        line(&[], &env, "--log-level"),
        "--log-level=dflockd=debug (env RUST_LOG)"
    );
    assert_eq!(
        line(&["--debug"], &[], "--log-level"),
        "--log-level=debug (flag)"
    );
    assert_eq!(line(&["--debug"], &[], "--debug"), "--debug=true (flag)");
    assert_eq!(line(&[], &[], "--debug"), "--debug=false (default)");
}

// ---- robustness ----

#[test]
fn odd_values_never_panic() {
    // A fixed-seed xorshift feeds odd strings to every setting except the hosts (which
    // would query DNS); each must give Ok or a clean error.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let alphabet: Vec<char> = "0123456789 -+_,:/.*\n\r\tabcxyzé\u{0}[]".chars().collect();
    for round in 0..40 {
        for setting in flags::ALL {
            if setting.flag.ends_with("host") {
                continue;
            }
            let len = (next() % 24) as usize;
            let value: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let value = if round == 0 { "9".repeat(40) } else { value };
            let arg = format!("{}={value}", setting.flag);
            let _ = parse_with(&[&arg], &[]);
            let _ = parse_with(&[], &[(setting.env, value.as_str())]);
        }
    }
}
