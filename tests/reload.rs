//! SIGHUP reload (config.md §7): the auth token file is re-read; new
//! authentications use the new token, authenticated connections stay, and a
//! bad file keeps the old token. The process survives the signal. Also: the
//! not-yet-built TLS and HTTP listeners refuse to start instead of degrading.

mod common;

use common::{Server, TempDir};
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

/// TLS is not built yet: configuring it must fail loudly, never fall back to
/// plain text.
#[test]
fn unsupported_tls_refuses_to_start() {
    let dir = TempDir::new("unsupported");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, "x").unwrap();
    std::fs::write(&key, "x").unwrap();
    let out = common::run_server_cmd(
        &[
            "--port",
            "0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TLS is not supported"));
    // The HTTP API is built now (tests/http_*.rs); --http-port starts it.
}
