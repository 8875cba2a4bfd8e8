//! `--check-config` agrees with the start (config.md §3.9, §9): every configuration the
//! server refuses at start, `--check-config` refuses with the same message on standard
//! error and the same exit status, and prints no report.
//!
//! The walk has two parts:
//! - generated: every flag and every environment variable that `dflockd --help` lists
//!   gets an invalid value of its kind (by value name: `<PORT>`, `<SECONDS>`, …). A new
//!   flag is covered without touching this file; a new kind of value fails the test
//!   until it gets a bad value in [`bad_value`];
//! - by hand: the refusals a single bad value cannot show — out-of-range numbers, the
//!   §4 cross-field rules, unreadable and invalid files, features this build does not
//!   have (TLS, HTTP), and usage errors (64).
//!
//! What only a start can find — a port in use, a fence reservation that cannot be
//! written — exits 1, and `--check-config` does not look for it: it binds and writes
//! nothing. [`check_config_binds_and_writes_nothing`] pins that boundary.

use crate::common;

use common::{TempDir, run_server_cmd};
use std::net::TcpListener;
use std::process::Output;

/// One configuration that must be refused.
struct Case {
    args: Vec<String>,
    envs: Vec<(String, String)>,
    /// 78 (configuration) or 64 (usage).
    code: i32,
    /// Text the message must contain (the flag or variable it is about).
    names: String,
}

impl Case {
    fn new(args: &[&str], envs: &[(&str, &str)], code: i32, names: &str) -> Case {
        Case {
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            envs: envs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            code,
            names: names.to_owned(),
        }
    }

    fn describe(&self) -> String {
        format!("args {:?} env {:?}", self.args, self.envs)
    }
}

/// A flag as `--help` shows it: `--name`, its value name (`PORT`, `BOOL`, …; `None`
/// for a switch) and the variables that can set it.
struct Flag {
    name: String,
    value: Option<String>,
    envs: Vec<String>,
}

/// Parses `dflockd --help`: an option line (`      --port <PORT>`) followed by its
/// description, which ends with `[env: A, deprecated B] [default: …]`.
fn flags_from_help() -> Vec<Flag> {
    let out = run_server_cmd(&["--help"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8(out.stdout).expect("UTF-8 help");
    let mut flags: Vec<Flag> = Vec::new();
    for line in help.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if (2..=6).contains(&indent) && trimmed.starts_with('-') {
            let spec = trimmed.rsplit(", ").next().unwrap_or(trimmed);
            let (name, rest) = spec.split_once([' ', '[']).unwrap_or((spec, ""));
            let value = rest
                .split_once('<')
                .and_then(|(_, v)| v.split_once('>'))
                .map(|(v, _)| v.to_owned());
            flags.push(Flag {
                name: name.to_owned(),
                value,
                envs: Vec::new(),
            });
        } else if let (Some(flag), Some(at)) = (flags.last_mut(), line.find("[env: ")) {
            let list = &line[at + "[env: ".len()..];
            let list = &list[..list.find(']').expect("closing ] of [env: …]")];
            flag.envs = list
                .split(", ")
                .map(|v| v.trim_start_matches("deprecated ").to_owned())
                .collect();
        }
    }
    assert!(
        flags.len() >= 40,
        "parsed only {} flags from:\n{help}",
        flags.len()
    );
    flags
}

/// An invalid value for every kind of value `--help` names. Env-safe: none is empty
/// (an empty variable counts as unset), and the host name is refused by the resolver
/// without a DNS query (a 64-byte label cannot be encoded).
fn bad_value(kind: &str) -> String {
    match kind {
        "PORT" => "65536".to_owned(),
        "SECONDS" | "N" | "BYTES" | "MICROSECONDS" => "12x".to_owned(),
        "BOOL" => "maybe".to_owned(),
        "HOST" => format!("{}.invalid", "a".repeat(64)),
        "PATH" => "/nonexistent-dflockd-check/file".to_owned(),
        "TOKEN" => " padded".to_owned(),
        "LIST" => "ftp://example.com".to_owned(),
        "LEVEL" => "loud".to_owned(),
        other => panic!("no bad value for <{other}>: add one to bad_value()"),
    }
}

/// Every flag with `--flag=<bad>`, every variable with `VAR=<bad>`.
fn generated_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut variables = 0;
    for flag in flags_from_help() {
        let Some(kind) = &flag.value else {
            continue;
        };
        let bad = bad_value(kind);
        let arg = format!("{}={bad}", flag.name);
        cases.push(Case::new(&[&arg], &[], 78, &flag.name));
        for var in &flag.envs {
            cases.push(Case::new(&[], &[(var, &bad)], 78, var));
            variables += 1;
        }
    }
    assert!(variables >= 40, "only {variables} variables in --help");
    cases
}

/// The refusals one bad value per setting does not reach.
fn hand_cases(dir: &TempDir) -> Vec<Case> {
    let file = |name: &str, content: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, content).expect("write test file");
        path.to_str().expect("UTF-8 temp path").to_owned()
    };
    let cert = file("cert.pem", b"-----BEGIN CERTIFICATE-----\n");
    let key = file("key.pem", b"-----BEGIN PRIVATE KEY-----\n");
    let empty = file("empty", b"");
    let blank = file("blank", b" \t\r\n");
    let cr_token = file("cr-token", b"a\rb\n");
    let garbage = file("fence-garbage", b"12 apples\n");
    let signed = file("fence-signed", b"-5\n");
    let too_big = file("fence-too-big", b"18446744073709551616\n");
    let directory = dir.path().to_str().expect("UTF-8 temp path").to_owned();
    let missing = dir.join("missing").to_str().expect("UTF-8").to_owned();
    let orphan = dir.join("no-dir/fence").to_str().expect("UTF-8").to_owned();

    let c = Case::new;
    vec![
        // Out of range (the generated values are not integers at all).
        c(&["--max-locks=0"], &[], 78, "--max-locks"),
        c(
            &[],
            &[("DFLOCKD_MAX_LOCKS", "4294967296")],
            78,
            "DFLOCKD_MAX_LOCKS",
        ),
        c(&["--max-value-bytes=1048577"], &[], 78, "--max-value-bytes"),
        c(&["--max-output-bytes=4095"], &[], 78, "--max-output-bytes"),
        c(&["--gc-interval=86401"], &[], 78, "--gc-interval"),
        c(
            &["--lease-sweep-interval=0"],
            &[],
            78,
            "--lease-sweep-interval",
        ),
        c(
            &["--default-lease-ttl=9223372037"],
            &[],
            78,
            "--default-lease-ttl",
        ),
        c(
            &["--http-rate-limit-per-ip=1000001"],
            &[],
            78,
            "--http-rate-limit-per-ip",
        ),
        c(&["--read-timeout=-1"], &[], 78, "--read-timeout"),
        c(&["--port=+1"], &[], 78, "--port"),
        c(&["--host="], &[], 78, "--host"),
        c(&["--auth-token="], &[], 78, "--auth-token"),
        c(
            &[],
            &[("DFLOCKD_AUTH_TOKEN", "a\nb")],
            78,
            "DFLOCKD_AUTH_TOKEN",
        ),
        c(
            &["--http-cors-allowed-origins=*,"],
            &[],
            78,
            "--http-cors-allowed-origins",
        ),
        c(
            &["--http-cors-allowed-origins=https://a.example/"],
            &[],
            78,
            "--http-cors-allowed-origins",
        ),
        // §4 cross-field rules.
        c(
            &["--port=7000", "--dreadlock-port=7000"],
            &[],
            78,
            "--dreadlock-port",
        ),
        c(
            &["--port=7000"],
            &[("DFLOCKD_HTTP_PORT", "7000")],
            78,
            "DFLOCKD_HTTP_PORT",
        ),
        c(
            &["--http-port=7001", "--dreadlock-port=7001"],
            &[],
            78,
            "--dreadlock-port",
        ),
        c(
            &["--dreadlock-port=6388"],
            &[("DFLOCKD_PORT", "6388")],
            78,
            "DFLOCKD_PORT",
        ),
        c(
            &["--max-value-bytes=65536", "--max-output-bytes=65536"],
            &[],
            78,
            "--max-output-bytes",
        ),
        c(&["--tls-cert", &cert], &[], 78, "--tls-key"),
        c(&[], &[("DFLOCKD_TLS_KEY", &key)], 78, "--tls-cert"),
        // Files: the auth token file, the TLS files, the fence state file.
        c(
            &["--auth-token-file", &missing],
            &[],
            78,
            "--auth-token-file",
        ),
        c(&["--auth-token-file", &empty], &[], 78, "--auth-token-file"),
        c(&["--auth-token-file", &blank], &[], 78, "--auth-token-file"),
        c(
            &["--auth-token-file", &cr_token],
            &[],
            78,
            "--auth-token-file",
        ),
        c(
            &["--auth-token-file", &directory],
            &[],
            78,
            "--auth-token-file",
        ),
        c(
            &[],
            &[("DFLOCKD_AUTH_TOKEN_FILE", &missing)],
            78,
            "DFLOCKD_AUTH_TOKEN_FILE",
        ),
        c(
            &["--tls-cert", &cert, "--tls-key", &missing],
            &[],
            78,
            "--tls-key",
        ),
        c(
            &["--tls-cert", &directory, "--tls-key", &key],
            &[],
            78,
            "--tls-cert",
        ),
        c(
            &["--fence-state-file", &garbage],
            &[],
            78,
            "--fence-state-file",
        ),
        c(
            &["--fence-state-file", &signed],
            &[],
            78,
            "--fence-state-file",
        ),
        c(
            &["--fence-state-file", &too_big],
            &[],
            78,
            "--fence-state-file",
        ),
        c(
            &["--fence-state-file", &empty],
            &[],
            78,
            "--fence-state-file",
        ),
        c(
            &["--fence-state-file", &directory],
            &[],
            78,
            "--fence-state-file",
        ),
        c(
            &["--fence-state-file", &orphan],
            &[],
            78,
            "--fence-state-file",
        ),
        c(&["--fence-state-file=/"], &[], 78, "--fence-state-file"),
        c(
            &[],
            &[("DFLOCKD_FENCE_STATE_FILE", &garbage)],
            78,
            "DFLOCKD_FENCE_STATE_FILE",
        ),
        // TLS files that do not hold what they must.
        c(
            &["--tls-cert", &cert, "--tls-key", &key],
            &[],
            78,
            "has no \"-----END CERTIFICATE-----\" line",
        ),
        c(
            &[],
            &[("DFLOCKD_TLS_CERT", &cert), ("DFLOCKD_TLS_KEY", &key)],
            78,
            "has no \"-----END CERTIFICATE-----\" line",
        ),
        // Usage errors.
        c(&["--prot=1"], &[], 64, "--prot"),
        c(&["--port"], &[], 64, "--port"),
        c(&["--port=1", "--port=2"], &[], 64, "--port"),
        c(
            &[
                "--auto-release-on-disconnect",
                "--no-auto-release-on-disconnect",
            ],
            &[],
            64,
            "--no-auto-release-on-disconnect",
        ),
        c(&["--fence-field", "off"], &[], 64, "off"),
        c(&["stray"], &[], 64, "stray"),
    ]
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs the case as a start and as `--check-config`; the start gets `DFLOCKD_PORT=0` as
/// a fallback so a refusal that goes missing binds an ephemeral port, not 6388 (the
/// case's own flags and variables come later and win).
fn run_both(case: &Case) -> (Output, Output) {
    let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
    let mut envs: Vec<(&str, &str)> = vec![("DFLOCKD_PORT", "0")];
    envs.retain(|(k, _)| !case.envs.iter().any(|(ck, _)| ck == k));
    envs.extend(case.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let start = run_server_cmd(&args, &envs);
    let mut check_args = vec!["--check-config"];
    check_args.extend(&args);
    let check = run_server_cmd(&check_args, &envs);
    (start, check)
}

fn assert_same_refusal(case: &Case) {
    let what = case.describe();
    let (start, check) = run_both(case);
    let (start_err, check_err) = (text(&start.stderr), text(&check.stderr));
    assert_eq!(
        start.status.code(),
        Some(case.code),
        "{what}: start exit status; stderr:\n{start_err}"
    );
    assert_eq!(
        check.status.code(),
        start.status.code(),
        "{what}: --check-config exit status; stderr:\n{check_err}"
    );
    assert_eq!(check_err, start_err, "{what}: messages differ");
    assert!(
        check.stdout.is_empty() && start.stdout.is_empty(),
        "{what}: a refusal prints no report:\n{}",
        text(&check.stdout)
    );
    assert!(
        start_err.contains(&case.names),
        "{what}: the message does not name {:?}:\n{start_err}",
        case.names
    );
    if case.code == 78 {
        assert!(
            start_err.starts_with("dflockd: ") && start_err.ends_with('\n'),
            "{what}: {start_err:?}"
        );
        assert_eq!(
            start_err.lines().count(),
            1,
            "{what}: one line: {start_err:?}"
        );
    } else {
        assert!(start_err.starts_with("error: "), "{what}: {start_err:?}");
    }
}

#[test]
fn every_flag_and_variable_with_a_bad_value_is_refused_alike() {
    let cases = generated_cases();
    for case in &cases {
        assert_same_refusal(case);
    }
}

#[test]
fn every_other_refusal_is_refused_alike() {
    let dir = TempDir::new("check-config");
    for case in &hand_cases(&dir) {
        assert_same_refusal(case);
    }
}

/// The exact message when a TLS file holds no certificate: `--check-config`
/// reads the files as a start does.
#[test]
fn bad_tls_files_are_refused_by_check_config() {
    let dir = TempDir::new("check-config-tls");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, "x").expect("write cert");
    std::fs::write(&key, "x").expect("write key");
    let (cert, key) = (cert.to_str().expect("UTF-8"), key.to_str().expect("UTF-8"));
    let args = ["--check-config", "--tls-cert", cert, "--tls-key", key];
    let message =
        format!("dflockd: invalid --tls-cert \"{cert}\": no PEM CERTIFICATE block found\n");
    let out = run_server_cmd(&args, &[]);
    assert_eq!(out.status.code(), Some(78), "{args:?}");
    assert_eq!(text(&out.stderr), message, "{args:?}");
    assert!(!text(&out.stdout).contains("configuration ok"), "{args:?}");
}

/// The boundary: a port in use and a fence file that does not exist yet are not
/// configuration errors. A start fails on the port with 1 (config.md §9); the check
/// binds nothing and creates nothing, so it passes and leaves no file behind.
#[test]
fn check_config_binds_and_writes_nothing() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind a port to occupy");
    let port = taken.local_addr().expect("local addr").port().to_string();
    let dir = TempDir::new("check-config-boundary");
    let fence = dir.join("fence");
    let fence = fence.to_str().expect("UTF-8");
    let args = ["--port", &port, "--fence-state-file", fence];

    let start = run_server_cmd(&args, &[]);
    assert_eq!(start.status.code(), Some(1), "{}", text(&start.stderr));
    assert!(
        text(&start.stderr).contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{}",
        text(&start.stderr)
    );

    std::fs::remove_file(fence).ok();
    let mut check_args = vec!["--check-config"];
    check_args.extend(args);
    let check = run_server_cmd(&check_args, &[]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));
    assert!(text(&check.stdout).ends_with("configuration ok\n"));
    assert!(
        !std::path::Path::new(fence).exists(),
        "--check-config created the fence state file"
    );
}
