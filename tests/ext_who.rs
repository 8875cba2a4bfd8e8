//! `who` (protocol.md §8.15), `GET /v1/keys/{key}/who` (http.md §6.2a) and
//! `dflockctl who` against a real server: holders by fence (never a token)
//! with owner ids and peers as `stats` shows them, waiters in queue order,
//! for keys of every type and for none.

use crate::common;
use crate::http_common;

use common::{Client, Server, fence_of, token_of};
use http_common::Api;
use serde_json::Value;
use std::process::Command;

fn who(c: &mut Client, key: &str) -> Value {
    let line = c.req("who", key, "");
    let json = line
        .strip_prefix("ok ")
        .unwrap_or_else(|| panic!("who reply {line:?}"));
    assert!(!json.contains('\n'));
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"))
}

fn peer(c: &Client) -> String {
    c.stream().local_addr().unwrap().to_string()
}

/// The connection id `stats` shows for the holder of lock `key`.
fn owner_id(c: &mut Client, key: &str) -> u64 {
    c.stats()
        .entry("locks", key)
        .expect("listed")
        .get("owner_conn_id")
        .u64()
}

#[test]
fn who_on_an_exclusive_lock_with_waiters() {
    let s = Server::start(&[]);
    let mut h = s.client();
    let t = token_of(&h.req("l", "deploy", "5 60"));
    let mut w1 = s.client();
    assert_eq!(w1.req("e", "deploy", ""), "queued");
    let mut w2 = s.client();
    w2.send_req("l", "deploy", "30");
    h.wait_lock_waiters("deploy", 2);
    let mut q = s.client();
    let doc = who(&mut q, "deploy");
    let text = doc.to_string();
    assert!(!text.contains(&t), "a token leaked: {text}");
    assert!(!text.contains(&t[16..]), "a token's salt leaked: {text}");
    assert_eq!(doc["key"], "deploy");
    assert_eq!(doc["type"], "lock");
    assert_eq!(doc["limit"], 1);
    let holders = doc["holders"].as_array().unwrap();
    assert_eq!(holders.len(), 1);
    let hd = &holders[0];
    assert_eq!(hd["fence"], t[..16]);
    assert_eq!(
        u64::from_str_radix(hd["fence"].as_str().unwrap(), 16).unwrap(),
        fence_of(&t)
    );
    assert_eq!(hd["owner"].as_u64(), Some(owner_id(&mut q, "deploy")));
    assert_eq!(hd["peer"], peer(&h));
    assert_eq!(hd["mode"], "exclusive");
    let held = hd["held_s"].as_f64().unwrap();
    assert!((0.0..5.0).contains(&held), "{held}");
    let left = hd["lease_remaining_s"].as_f64().unwrap();
    assert!(left > 55.0 && left <= 60.0, "{left}");
    let waiters = doc["waiters"].as_array().unwrap();
    assert_eq!(waiters.len(), 2);
    for (i, (w, c)) in waiters.iter().zip([&w1, &w2]).enumerate() {
        assert_eq!(w["position"], i + 1);
        assert_eq!(w["peer"], peer(c));
        assert_eq!(w["mode"], "exclusive");
        assert!(w["waited_s"].as_f64().unwrap() >= 0.0);
        assert!(w["owner"].as_u64().unwrap() > 0);
    }
    assert_ne!(waiters[0]["owner"], waiters[1]["owner"]);
    // The head leaves: positions move up.
    drop(w1);
    h.wait_lock_waiters("deploy", 1);
    let doc = who(&mut q, "deploy");
    assert_eq!(doc["waiters"][0]["position"], 1);
    assert_eq!(doc["waiters"][0]["peer"], peer(&w2));
    assert_eq!(h.req("r", "deploy", &t), "ok");
    token_of(&w2.line());
}

#[test]
fn who_on_semaphores_rw_locks_elections_and_unused_keys() {
    let s = Server::start(&[]);
    let mut a = s.client();
    let mut b = s.client();
    let ta = token_of(&a.req("sl", "pool", "0 2"));
    let tb = token_of(&b.req("sl", "pool", "0 2"));
    let mut c = s.client();
    assert_eq!(c.req("se", "pool", "2"), "queued");
    let doc = who(&mut c, "pool");
    assert_eq!(doc["type"], "semaphore");
    assert_eq!(doc["limit"], 2);
    let fences: Vec<&str> = doc["holders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            assert_eq!(h["mode"], "permit");
            h["fence"].as_str().unwrap()
        })
        .collect();
    assert_eq!(fences, [&ta[..16], &tb[..16]]);
    assert_eq!(doc["waiters"][0]["mode"], "permit");

    token_of(&a.req("rl", "cfg", "0"));
    token_of(&b.req("rl", "cfg", "0"));
    assert_eq!(c.req("we", "cfg", ""), "queued");
    let mut d = s.client();
    assert_eq!(d.req("re", "cfg", ""), "queued");
    let doc = who(&mut d, "cfg");
    assert_eq!(doc["type"], "rw");
    assert_eq!(doc["limit"], Value::Null);
    assert_eq!(doc["holders"][0]["mode"], "read");
    assert_eq!(doc["holders"][1]["mode"], "read");
    assert_eq!(doc["waiters"][0]["mode"], "write");
    assert_eq!(doc["waiters"][1]["mode"], "read");
    assert_eq!(doc["waiters"][1]["position"], 2);

    // A candidate gets `leader` push frames: its own connection.
    let mut e = s.client();
    token_of(&e.req("elect", "leader", "0"));
    let doc = who(&mut d, "leader");
    assert_eq!(doc["type"], "election");
    assert_eq!(doc["holders"][0]["mode"], "exclusive");

    assert_eq!(a.req("kset", "kv", "x"), "ok");
    assert_eq!(a.req("incr", "n", "1"), "ok 1");
    for key in ["kv", "n", "never-used"] {
        assert_eq!(
            c.req("who", key, ""),
            format!(r#"ok {{"key":"{key}","type":"none","limit":null,"holders":[],"waiters":[]}}"#)
        );
    }
    // An idle key (released, not yet collected) is not in use either.
    let t = token_of(&a.req("l", "idle", "0"));
    assert_eq!(a.req("r", "idle", &t), "ok");
    assert_eq!(who(&mut a, "idle")["type"], "none");
    // A bad key is a syntax error.
    assert_eq!(a.req("who", "a b", ""), "error");
}

#[test]
fn who_over_http_and_dflockctl() {
    let (s, addr) = http_common::start(&[]);
    let api = Api::new(addr);
    let sid = api.session();
    let t = api.lock(&sid, "job", 0).token();
    let mut c = s.client();
    assert_eq!(c.req("e", "job", ""), "queued");
    let r = api.get("/v1/keys/job/who");
    assert_eq!(r.status, 200, "{}", r.text());
    let doc: Value = serde_json::from_str(&r.text()).unwrap();
    assert_eq!(doc["holders"][0]["peer"], "http-session");
    assert_eq!(doc["holders"][0]["fence"], t[..16]);
    assert_eq!(doc["waiters"][0]["peer"], peer(&c));
    // The same document as over TCP, timings aside.
    let tcp = who(&mut c, "job");
    assert_eq!(tcp["holders"][0]["owner"], doc["holders"][0]["owner"]);
    assert_eq!(tcp["waiters"][0]["owner"], doc["waiters"][0]["owner"]);
    api.get("/v1/keys/none-such/who").expect(
        200,
        r#"{"key":"none-such","type":"none","limit":null,"holders":[],"waiters":[]}"#,
    );

    let ctl = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_dflockctl"))
            .env_remove("DFLOCKD_SERVERS")
            .arg("--server")
            .arg(s.addr().to_string())
            .args(args)
            .output()
            .expect("run dflockctl");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let json: Value = serde_json::from_str(ctl(&["who", "job", "--json"]).trim()).unwrap();
    assert_eq!(json["holders"][0]["fence"], t[..16]);
    let text = ctl(&["who", "job"]);
    assert!(
        text.starts_with("key job: lock, limit 1\nholders (1)\n"),
        "{text}"
    );
    assert!(
        text.contains(&t[..16]) && !text.contains(&t[16..]),
        "{text}"
    );
    assert!(text.contains("http-session"), "{text}");
    assert!(text.contains(&peer(&c)), "{text}");
    assert!(text.contains("waiters (1)\n  POSITION"), "{text}");
}
