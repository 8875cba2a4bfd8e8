//! `packaging/debian/dflockd.default`, installed as the conffile
//! `/etc/default/dflockd`, lists every setting of `dflockd --help` as its
//! environment variable, commented out at its default. It is generated from the
//! clap definitions here, so a new flag or a changed default cannot drift:
//! the test fails and `DFLOCKD_BLESS=1 cargo test --profile ci --test
//! defaults_file` rewrites the file. (The help texts' `[env: …]` and
//! `[default: …]` notes are themselves checked against the resolver by the
//! config unit tests.) The file is also sourced by the runit `run` script, so
//! every line must be valid for both systemd's EnvironmentFile= and `sh`.

use std::path::Path;
use std::process::Command;

const HEADER: &str = "\
# Settings for dflockd(8), read by its systemd unit (EnvironmentFile=) and by
# its runit service. Every setting is listed commented out at its built-in
# default: uncomment a line and change the value, then restart the service.
# An empty value counts as unset; a command-line flag beats a variable.
# `dflockd --check-config` prints what the server would run with.
#
# Under systemd and runit the fence state file defaults to
# /var/lib/dflockd/fence (set DFLOCKD_FENCE_STATE_FILE to change it).
# This file is world-readable: keep the auth token and TLS keys out of it
# (README, \"Running under systemd\": LoadCredential=).
#
# Generated from `dflockd --help`; tests/defaults_file.rs keeps it in sync.
";

/// One setting: its flag, variable, help sentence and default (`None` when the
/// default is not a literal value, e.g. "value of --host").
struct Entry {
    flag: String,
    var: String,
    help: String,
    default: Option<String>,
    note: Option<String>,
}

/// The text between `[<tag>: ` and the next `]`, and the help without it.
fn take_note(help: &str, tag: &str) -> (String, Option<String>) {
    let open = format!("[{tag}: ");
    let Some(start) = help.find(&open) else {
        return (help.to_owned(), None);
    };
    let rest = &help[start + open.len()..];
    let end = rest.find(']').expect("closed note");
    let rest_of_help = format!("{}{}", &help[..start], &rest[end + 1..]);
    (rest_of_help, Some(rest[..end].to_owned()))
}

fn entries() -> Vec<Entry> {
    let cmd = dflockd::config::command();
    let mut out = Vec::new();
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        let Some(long) = arg.get_long() else { continue };
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        let (help, env) = take_note(&help, "env");
        // Flags without a variable (--check-config, --no-auto-release-…) are not settings.
        let Some(env) = env else { continue };
        // The current variable only, never a deprecated alias.
        let var = env.split(',').next().expect("a variable").trim().to_owned();
        let (help, default) = take_note(&help, "default");
        let literal = default.as_deref().filter(|d| !d.contains(' '));
        out.push(Entry {
            flag: format!("--{long}"),
            var,
            help: help.trim().to_owned(),
            default: literal.map(str::to_owned),
            note: default.filter(|d| d.contains(' ')),
        });
    }
    out
}

/// Wraps `text` as `# ` comment lines of at most 78 columns.
fn comment(text: &str) -> String {
    let mut out = String::new();
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() + 1 + word.len() > 78 && line != "#" {
            out.push_str(&line);
            out.push('\n');
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
    out
}

fn expected() -> String {
    let mut out = String::from(HEADER);
    for e in entries() {
        out.push('\n');
        let mut text = format!("{}: {}", e.flag, e.help);
        if let Some(note) = &e.note {
            text.push_str(&format!(". Default: {note}."));
        }
        out.push_str(&comment(&text));
        out.push_str(&format!("#{}={}\n", e.var, e.default.unwrap_or_default()));
    }
    out
}

fn path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/debian/dflockd.default")
}

/// The file's text; with `DFLOCKD_BLESS` set, first (once) rewritten from clap.
fn read_file() -> String {
    static BLESS: std::sync::Once = std::sync::Once::new();
    if std::env::var_os("DFLOCKD_BLESS").is_some() {
        BLESS.call_once(|| std::fs::write(path(), expected()).expect("write defaults file"));
    }
    std::fs::read_to_string(path()).expect("packaging/debian/dflockd.default")
}

#[test]
fn defaults_file_matches_the_clap_definitions() {
    let want = expected();
    let have = read_file();
    assert!(
        have == want,
        "packaging/debian/dflockd.default is out of date; regenerate it with \
         DFLOCKD_BLESS=1 cargo test --profile ci --test all defaults_file::\n--- expected:\n{want}"
    );
}

#[test]
fn defaults_file_lists_every_setting_once() {
    let have = read_file();
    let vars: Vec<&str> = have
        .lines()
        .filter_map(|l| l.strip_prefix("#DFLOCKD_"))
        .collect();
    // config.md §3: one variable per setting (42 when this was written).
    assert_eq!(vars.len(), entries().len(), "{have}");
    assert!(vars.len() >= 42, "{have}");
    assert!(have.contains("\n#DFLOCKD_PORT=6388\n"), "{have}");
    assert!(have.contains("\n#DFLOCKD_HOST=127.0.0.1\n"), "{have}");
    assert!(have.contains("\n#DFLOCKD_HTTP_HOST=\n"), "{have}");
    assert!(
        !have.contains("DFLOCKD_GC_LOOP_SLEEP="),
        "deprecated alias listed"
    );
    // Nothing is set: every non-blank line is a comment.
    assert!(have.lines().all(|l| l.is_empty() || l.starts_with('#')));
}

/// Every setting uncommented at its default: `sh` accepts the file, and the
/// server started with exactly that environment accepts every value.
#[test]
fn defaults_file_uncommented_is_a_valid_configuration() {
    let have = read_file();
    let active: String = have
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .filter(|l| l.starts_with("DFLOCKD_"))
        .map(|l| format!("{l}\n"))
        .collect();
    let script = format!("set -a\n{active}set +a\nexec \"$0\" --check-config",);
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_dflockd"))
        .env_clear()
        .output()
        .expect("sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The values were read from the variables (non-empty ones), not defaulted.
    assert!(
        stdout.contains("--port=6388 (env DFLOCKD_PORT)"),
        "{stdout}"
    );
}
