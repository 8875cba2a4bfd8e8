//! The service-manager files under `packaging/`: the systemd unit can reload,
//! and the runit scripts are POSIX sh that run the server and its logger as the
//! unprivileged `_dflockd` user. The reload itself (SIGHUP under the notify
//! protocol) is tested against the real server in `reload.rs`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn packaging(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("packaging")
        .join(rel)
}

fn read(rel: &str) -> String {
    let path = packaging(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The unit's `[Service]` lines as `(key, value)`, comments and blanks dropped.
fn service_settings(unit: &str) -> Vec<(String, String)> {
    unit.lines()
        .skip_while(|l| l.trim() != "[Service]")
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with('['))
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

#[test]
fn systemd_unit_reloads_with_sighup_under_notify() {
    let unit = read("systemd/dflockd.service");
    let settings = service_settings(&unit);
    let get = |key: &str| -> Vec<&str> {
        settings
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!(get("Type"), ["notify"], "{unit}");
    assert_eq!(get("ExecReload"), ["/bin/kill -HUP $MAINPID"], "{unit}");
    assert_eq!(get("ExecStart"), ["/usr/bin/dflockd"], "{unit}");
}

/// Every runit script: executable, `#!/bin/sh`, and accepted by `sh -n` (and by
/// dash and busybox sh when installed, the shells that enforce POSIX most).
#[test]
fn runit_scripts_are_posix_sh() {
    for rel in ["runit/dflockd/run", "runit/dflockd/log/run"] {
        let path = packaging(rel);
        let text = read(rel);
        assert!(text.starts_with("#!/bin/sh\n"), "{rel}: not #!/bin/sh");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o111, 0o111, "{rel}: not executable ({mode:o})");
        let shells: [&[&str]; 3] = [&["sh"], &["dash"], &["busybox", "sh"]];
        let mut checked = 0;
        for shell in shells {
            let status = Command::new(shell[0])
                .args(&shell[1..])
                .arg("-n")
                .arg(&path)
                .status();
            match status {
                Ok(s) => {
                    assert!(s.success(), "{shell:?} -n {rel}: {s}");
                    checked += 1;
                }
                // dash and busybox are optional; sh is not.
                Err(e) if shell[0] != "sh" && e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => panic!("{shell:?}: {e}"),
            }
        }
        assert!(checked >= 1);
    }
}

#[test]
fn runit_runs_server_and_logger_as_dflockd_user() {
    let last_exec = |rel: &str| -> String {
        read(rel)
            .lines()
            .rfind(|l| l.trim_start().starts_with("exec chpst"))
            .unwrap_or_else(|| panic!("{rel}: no `exec chpst` line"))
            .to_owned()
    };
    let run = last_exec("runit/dflockd/run");
    assert!(run.contains(" -u _dflockd:_dflockd "), "{run}");
    assert!(run.contains(" -e ./env "), "{run}");
    assert!(run.ends_with(" /usr/bin/dflockd"), "{run}");
    assert!(
        read("runit/dflockd/run").contains("exec 2>&1"),
        "stderr goes to the log service"
    );
    let log = last_exec("runit/dflockd/log/run");
    assert!(log.contains(" -u _dflockd:_dflockd svlogd "), "{log}");
    // The fence state file the env dir names lives in the directory run creates.
    let fence = read("runit/dflockd/env/DFLOCKD_FENCE_STATE_FILE");
    assert_eq!(fence.trim_end(), "/var/lib/dflockd/fence");
}

/// The socket units: one per listener (systemd gives every socket of a unit
/// the same FileDescriptorName=), named as the server expects, for the
/// service, and the protocol port at the server's default address.
#[test]
fn systemd_socket_units_name_each_listener() {
    for (rel, name, listen) in [
        ("systemd/dflockd.socket", "tcp", "127.0.0.1:6388"),
        ("systemd/dflockd-http.socket", "http", "127.0.0.1:6389"),
        (
            "systemd/dflockd-dreadlock.socket",
            "dreadlock",
            "127.0.0.1:6001",
        ),
    ] {
        let unit = read(rel);
        let settings: Vec<(String, String)> = unit
            .lines()
            .skip_while(|l| l.trim() != "[Socket]")
            .skip(1)
            .take_while(|l| !l.trim_start().starts_with('['))
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let get = |key: &str| -> Vec<&str> {
            settings
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        assert_eq!(get("ListenStream"), [listen], "{rel}");
        assert_eq!(get("FileDescriptorName"), [name], "{rel}");
        assert_eq!(get("Service"), ["dflockd.service"], "{rel}");
    }
}
