//! Lease notices (protocol.md §8.15) against a real server: `lease expiring`
//! at 80% of a lease and `lease expired` when it ran out, over TCP with
//! `opt lease_notices on` and over HTTP on `GET /v1/sessions/{id}/events`;
//! none with the option off, none after a release, and a renewal moving
//! the notice to the next period.
//!
//! Leases are 2 s (1 s where only expiry matters); every bound below has
//! hundreds of ms of margin on the side that a slow machine could cross.

use crate::common;
use crate::http_common;

use common::{Client, Server, token_of};
use http_common::{Api, Raw, start};
use std::time::{Duration, Instant};

fn noticed(s: &Server) -> Client {
    let mut c = s.client();
    assert_eq!(c.req("opt", "lease_notices", "on"), "ok");
    c
}

/// `lease expiring <key> <fence> <remaining_s>`: the remaining seconds.
#[track_caller]
fn expiring(line: &str, key: &str, token: &str) -> f64 {
    let f: Vec<&str> = line.split(' ').collect();
    assert_eq!(f.len(), 5, "{line:?}");
    assert_eq!(
        (f[0], f[1], f[2], f[3]),
        ("lease", "expiring", key, &token[..16]),
        "{line:?}"
    );
    let (_, ms) = f[4].split_once(".").expect("seconds with a point");
    assert_eq!(ms.len(), 3, "millisecond precision: {line:?}");
    f[4].parse::<f64>().unwrap()
}

#[test]
fn expiring_at_eighty_percent_then_expired() {
    let s = Server::start(&[]);
    let mut c = noticed(&s);
    let t0 = Instant::now();
    let token = token_of(&c.req("l", "job", "0 2"));
    let line = c.line();
    let at = t0.elapsed();
    let remaining = expiring(&line, "job", &token);
    assert!(at >= Duration::from_millis(1600), "never early: {at:?}");
    assert!((0.0..=0.4).contains(&remaining), "{line:?}");
    assert_eq!(c.line(), format!("lease expired job {}", &token[..16]));
    assert!(t0.elapsed() >= Duration::from_secs(2));
    // The slot really is free, and the token answers as expired.
    assert_eq!(c.req("n", "job", &token), "error_lease_expired");
    let mut other = s.client();
    token_of(&other.req("l", "job", "0 30"));
}

#[test]
fn nothing_without_the_option_or_after_it_is_switched_off() {
    let s = Server::start(&[]);
    let mut plain = s.client();
    let token = token_of(&plain.req("l", "a", "0 1"));
    let mut off = noticed(&s);
    assert_eq!(off.req("opt", "lease_notices", "off"), "ok");
    let t2 = token_of(&off.req("l", "b", "0 1"));
    plain.expect_nothing_for(Duration::from_millis(1800));
    off.expect_nothing_for(Duration::from_millis(200));
    // Both leases did run out meanwhile: the silence was not for lack of expiry.
    assert_eq!(plain.req("n", "a", &token), "error_lease_expired");
    assert_eq!(off.req("n", "b", &t2), "error_lease_expired");
}

#[test]
fn a_renewal_moves_the_notice_to_the_next_period_and_a_release_ends_it() {
    let s = Server::start(&[]);
    let mut c = noticed(&s);
    let t0 = Instant::now();
    let token = token_of(&c.req("l", "k", "0 2"));
    std::thread::sleep(Duration::from_millis(1000));
    let renewed = Instant::now();
    assert_eq!(c.req("n", "k", &format!("{token} 2")), "ok 2");
    // The first period's notice (due at 1.6 s) must not come.
    c.expect_nothing_for(Duration::from_millis(1300).saturating_sub(renewed.elapsed()));
    let line = c.line();
    assert!(
        renewed.elapsed() >= Duration::from_millis(1600),
        "{:?}",
        t0.elapsed()
    );
    assert!((0.0..=0.4).contains(&expiring(&line, "k", &token)));
    assert_eq!(c.req("r", "k", &token), "ok");
    // Released before expiry: no `lease expired`.
    c.expect_nothing_for(Duration::from_millis(1200));
}

#[test]
fn a_release_before_eighty_percent_sends_nothing() {
    let s = Server::start(&[]);
    let mut c = noticed(&s);
    let token = token_of(&c.req("l", "k", "0 1"));
    assert_eq!(c.req("r", "k", &token), "ok");
    // A semaphore permit and a read lock get notices too.
    let p = token_of(&c.req("sl", "pool", "0 2 1"));
    let line = c.line();
    expiring(&line, "pool", &p);
    assert_eq!(c.req("sr", "pool", &p), "ok");
    c.expect_nothing_for(Duration::from_millis(900));
}

#[test]
fn a_session_gets_its_notices_on_its_event_stream() {
    let (_s, http) = start(&[]);
    let api = Api::new(http);
    let sid = api.session();
    let mut raw = Raw::connect(http);
    raw.send(format!("GET /v1/sessions/{sid}/events HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    let head = raw.read_head();
    assert_eq!(head.status, 200, "{head:?}");
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    assert_eq!(raw.read_until(b"\n\n"), b":ok\n\n");
    let t0 = Instant::now();
    let r = api.post_s(
        "/v1/locks/job",
        &sid,
        r#"{"acquire_timeout_s":0,"lease_ttl_s":1}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let token = r.token();
    let fence = &token[..16];
    let ev = String::from_utf8(raw.read_until(b"\n\n")).unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(800));
    let prefix = format!(
        "event: lease_expiring\ndata: {{\"key\":\"job\",\"fence\":\"{fence}\",\"remaining_s\":"
    );
    assert!(ev.starts_with(&prefix), "{ev:?}");
    let ev = String::from_utf8(raw.read_until(b"\n\n")).unwrap();
    assert_eq!(
        ev,
        format!("event: lease_expired\ndata: {{\"key\":\"job\",\"fence\":\"{fence}\"}}\n\n")
    );
    // The stream ends with its session.
    api.delete(&format!("/v1/sessions/{sid}")).expect_204();
    raw.expect_closed();
}

#[test]
fn event_streams_of_unknown_sessions_are_gone_and_caps_apply() {
    let (_s, http) = start(&["--http-max-sessions", "1"]);
    let api = Api::new(http);
    api.get("/v1/sessions/0123456789abcdef0123456789abcdef/events")
        .expect_error(410, "session_gone");
    api.get("/v1/sessions/nothex/events")
        .expect_error(400, "bad_request");
    // The one session allowed exists, so its stream would be a second.
    let sid = api.session();
    api.get(&format!("/v1/sessions/{sid}/events"))
        .expect_error(503, "max_sessions");
}

#[test]
fn the_client_guard_offers_notices_and_marks_the_grant_lost() {
    use dflockd::client::{Client as Lib, ClientOptions, LeaseNoticeKind};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let s = Server::start(&[]);
    let client = Lib::new(ClientOptions {
        servers: vec![s.addr().to_string()],
        // No renewal: the lease is left to run out.
        renew_ratio: 0.0,
        ..ClientOptions::default()
    })
    .unwrap();
    let t0 = Instant::now();
    let guard = client
        .lock("job")
        .lease(Duration::from_secs(2))
        .lease_notices()
        .acquire(Duration::ZERO)
        .unwrap();
    let notices = guard.lease_notices().expect("asked for");
    assert!(guard.lease_notices().is_none(), "one receiver");
    let called = Arc::new(AtomicBool::new(false));
    let flag = called.clone();
    guard.on_lost(move |_| flag.store(true, Ordering::SeqCst));
    let n = notices.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(1600));
    assert_eq!((n.key.as_str(), n.fence), ("job", guard.fence()));
    match n.kind {
        LeaseNoticeKind::Expiring { remaining } => {
            assert!(remaining <= Duration::from_millis(400), "{remaining:?}")
        }
        other => panic!("expected expiring, got {other:?}"),
    }
    assert!(!guard.is_lost());
    let n = notices.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(n.kind, LeaseNoticeKind::Expired);
    assert!(guard.is_lost() && called.load(Ordering::SeqCst));
    // A guard without notices has no channel.
    let plain = client.lock("other").acquire(Duration::ZERO).unwrap();
    assert!(plain.lease_notices().is_none());
}
