//! SIGHUP reload (config.md §7): the auth token file is re-read; new
//! authentications use the new token, authenticated connections stay, and a
//! bad file keeps the old token. The process survives the signal. (TLS reloads
//! are tested in tls.rs.)

use crate::common;

use common::{Server, TempDir};
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

#[test]
fn sighup_rereads_the_token_file() {
    let dir = TempDir::new("reload");
    let token_file = dir.join("token");
    std::fs::write(&token_file, "one\n").unwrap();
    let path = token_file.to_str().unwrap();
    let server = Server::start(&["--auth-token-file", path]);

    let mut old = server.client();
    assert_eq!(old.req("auth", "_", "one"), "ok");

    std::fs::write(&token_file, "two\n").unwrap();
    server.signal("HUP");
    assert!(
        server
            .wait_for_log("auth token re-read", Duration::from_secs(10))
            .is_some(),
        "reload logged"
    );
    assert_eq!(
        old.req("ping", "_", ""),
        "ok",
        "authenticated connections stay"
    );
    let mut new = server.client();
    assert_eq!(new.req("auth", "_", "two"), "ok");
    let mut stale = server.client();
    assert_eq!(stale.req("auth", "_", "one"), "error_auth");

    // An empty file is invalid: the old token stays in use.
    std::fs::write(&token_file, "").unwrap();
    server.signal("HUP");
    assert!(
        server
            .wait_for_log("reload failed", Duration::from_secs(10))
            .is_some()
    );
    let mut after = server.client();
    assert_eq!(after.req("auth", "_", "two"), "ok");
}

/// `systemctl reload` under the notify protocol (config.md §8.1; the unit's
/// `ExecReload=/bin/kill -HUP $MAINPID`): `READY=1` at start, then per SIGHUP
/// `RELOADING=1` with `MONOTONIC_USEC=` and `READY=1` again when the reload has
/// ended, for a reload that succeeds and for one that fails (old token kept).
#[test]
fn sighup_reload_under_the_notify_protocol() {
    let dir = TempDir::new("notify-reload");
    let sock_path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let token_file = dir.join("token");
    std::fs::write(&token_file, "one\n").unwrap();
    let server = Server::start_env(
        &["--auth-token-file", token_file.to_str().unwrap()],
        &[("NOTIFY_SOCKET", sock_path.to_str().unwrap())],
    );
    let recv = || {
        let mut buf = [0u8; 4096];
        let n = sock.recv(&mut buf).expect("a notification within 10 s");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let fields = |msg: &str| -> Vec<String> { msg.split('\n').map(str::to_owned).collect() };

    let ready = recv();
    assert_eq!(fields(&ready)[0], "READY=1", "first notification {ready:?}");

    for (content, log) in [("two\n", "auth token re-read"), ("", "reload failed")] {
        std::fs::write(&token_file, content).unwrap();
        server.signal("HUP");
        let reloading = fields(&recv());
        assert_eq!(reloading[0], "RELOADING=1", "{reloading:?}");
        let usec = reloading
            .iter()
            .find_map(|f| f.strip_prefix("MONOTONIC_USEC="))
            .unwrap_or_else(|| panic!("no MONOTONIC_USEC in {reloading:?}"));
        assert!(
            !usec.is_empty() && usec.bytes().all(|b| b.is_ascii_digit()),
            "MONOTONIC_USEC must be decimal microseconds: {usec:?}"
        );
        let done = fields(&recv());
        assert_eq!(done, ["READY=1"], "after RELOADING=1");
        assert!(
            server.wait_for_log(log, Duration::from_secs(10)).is_some(),
            "no {log:?} in the log"
        );
    }
    // The failed reload kept the token of the successful one.
    assert_eq!(server.client().req("auth", "_", "two"), "ok");
}

#[test]
fn sighup_without_a_token_file_changes_nothing() {
    let server = Server::start(&[]);
    let mut c = server.client();
    server.signal("HUP");
    assert!(
        server
            .wait_for_log("nothing to reload", Duration::from_secs(10))
            .is_some()
    );
    assert_eq!(c.req("ping", "_", ""), "ok", "the server survives SIGHUP");
}
