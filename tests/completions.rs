//! The hidden `--completions <SHELL>` flag of the three binaries (src/completions.rs):
//! each prints a non-empty script that completes a flag the program really has,
//! never the hidden flag itself, and that the shell itself accepts (`bash -n`;
//! `zsh -n` and `fish --no-execute` when those shells are installed). A shell
//! clap_complete does not know is each program's usage error.

use std::path::Path;
use std::process::{Command, Output};

/// (binary, a long flag it has, its usage-error exit status)
const PROGRAMS: [(&str, &str, i32); 3] = [
    (env!("CARGO_BIN_EXE_dflockd"), "--check-config", 64),
    (env!("CARGO_BIN_EXE_dflockctl"), "--server", 2),
    (env!("CARGO_BIN_EXE_dflock-load"), "--connections", 64),
];

fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        // A broken environment must not stop a packaging step: no setting is read.
        .env("DFLOCKD_PORT", "not-a-port")
        .output()
        .unwrap_or_else(|e| panic!("{bin}: {e}"))
}

fn name(bin: &str) -> &str {
    Path::new(bin)
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name")
}

/// Runs `shell args… <script>` if `shell` is installed; `None` if it is not.
fn syntax_check(shell: &str, args: &[&str], script: &str) -> Option<Output> {
    let dir = std::env::temp_dir().join(format!("dflockd-completions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join(format!("script.{shell}"));
    std::fs::write(&file, script).expect("write script");
    let out = Command::new(shell).args(args).arg(&file).output();
    let _ = std::fs::remove_file(&file);
    match out {
        Ok(out) => Some(out),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("{shell}: {e}"),
    }
}

#[test]
fn every_program_prints_a_script_per_shell() {
    for (bin, flag, _) in PROGRAMS {
        for shell in ["bash", "zsh", "fish"] {
            let out = run(bin, &["--completions", shell]);
            let script = String::from_utf8(out.stdout).expect("UTF-8 script");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "{bin} {shell}: {stderr}");
            assert!(stderr.is_empty(), "{bin} {shell}: {stderr}");
            // fish and zsh spell flags without their dashes in places; the long
            // name appears in every dialect.
            let long = flag.trim_start_matches("--");
            assert!(script.contains(long), "{bin} {shell}: no {flag}\n{script}");
            assert!(script.contains(name(bin)), "{bin} {shell}: no program name");
            assert!(
                !script.contains("completions"),
                "{bin} {shell}: completes the hidden flag"
            );
        }
    }
}

#[test]
fn scripts_are_valid_for_their_shell() {
    let checks: [(&str, &str, &[&str]); 3] = [
        ("bash", "bash", &["-n"]),
        ("zsh", "zsh", &["-n"]),
        ("fish", "fish", &["--no-execute"]),
    ];
    let mut checked = 0;
    for (bin, _, _) in PROGRAMS {
        for (shell, program, args) in checks {
            let out = run(bin, &["--completions", shell]);
            let script = String::from_utf8(out.stdout).expect("UTF-8 script");
            // bash is required; zsh and fish only when installed.
            let Some(check) = syntax_check(program, args, &script) else {
                assert_ne!(shell, "bash", "bash not installed");
                continue;
            };
            assert!(
                check.status.success(),
                "{bin} {shell}: {}",
                String::from_utf8_lossy(&check.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= PROGRAMS.len(), "checked only {checked} scripts");
}

#[test]
fn unknown_shell_is_a_usage_error() {
    for (bin, _, usage) in PROGRAMS {
        let out = run(bin, &["--completions", "tcsh"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(usage), "{bin}: {stderr}");
        assert!(stderr.contains("invalid value 'tcsh'"), "{bin}: {stderr}");
        assert!(out.stdout.is_empty(), "{bin}");
    }
}

#[test]
fn hidden_flag_stays_out_of_help() {
    for (bin, _, _) in PROGRAMS {
        let out = run(bin, &["--help"]);
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("--help"), "{bin}: {help}");
        assert!(!help.contains("--completions"), "{bin}: {help}");
    }
}
