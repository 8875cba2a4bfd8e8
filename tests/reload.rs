//! SIGHUP reload (config.md §7): the auth token file is re-read; new
//! authentications use the new token, authenticated connections stay, and a
//! bad file keeps the old token. The process survives the signal. (TLS reloads
//! are tested in tls.rs.)

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
