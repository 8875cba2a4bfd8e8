//! Unit tests of [`super`] (translation to commands) and of `outcome`
//! (replies to responses): every route's action, every reply mapping.

use super::*;
use crate::http::body::parse;
use crate::http::path::split_target;
use crate::http::route::{ROUTES, RouteMatch, match_route};
use crate::protocol::command::{CommandLimits, TokenArg};

const LIM: CommandLimits = CommandLimits {
    max_value_bytes: 64,
};
const TOKEN: &str = "18ea9db47e590001d433357e6ef5d88b";
const SID: &str = "3f0c8d2a9b7e41c6a5d4e3f2b1a09876";

/// Runs a request through the whole pure pipeline, in the order of §3.1.
fn run(method: &str, target_str: &str, body: &str) -> Result<Action, ApiError> {
    let (path, query) = split_target(target_str);
    let (route, param) = match match_route(method, path) {
        RouteMatch::Found { route, param } => (route, param),
        other => panic!("{method} {target_str}: {other:?}"),
    };
    let t = target(route, param.as_deref(), &Query::new(query))?;
    let b = parse(route.body, body.as_bytes(), &LIM)?;
    to_command(route, t, b)
}

fn cmd(method: &str, target_str: &str, body: &str) -> Command {
    match run(method, target_str, body) {
        Ok(Action::Command(c)) => c,
        other => panic!("{method} {target_str}: {other:?}"),
    }
}

fn k(s: &str) -> Key {
    s.into()
}

fn tok() -> TokenArg {
    TOKEN.as_bytes().into()
}

fn sid() -> SessionId {
    SessionId::parse(SID.as_bytes()).unwrap()
}

#[test]
fn builtins() {
    assert_eq!(run("GET", "/health", ""), Ok(Action::Health));
    assert_eq!(run("HEAD", "/ready", ""), Ok(Action::Ready));
    assert_eq!(run("GET", "/metrics", ""), Ok(Action::Metrics));
    assert_eq!(run("GET", "/v1/openapi.json", ""), Ok(Action::OpenApi));
    assert_eq!(cmd("GET", "/v1/stats", ""), Command::Stats);
    assert_eq!(run("POST", "/v1/sessions", ""), Ok(Action::CreateSession));
    assert_eq!(run("POST", "/v1/sessions", "{}"), Ok(Action::CreateSession));
    let ping = format!("/v1/sessions/{SID}/ping");
    assert_eq!(run("POST", &ping, ""), Ok(Action::PingSession(sid())));
    let s = format!("/v1/sessions/{SID}");
    assert_eq!(run("DELETE", &s, ""), Ok(Action::DeleteSession(sid())));
    assert_eq!(
        run("PATCH", &s, r#"{"options":{"deadlock":true}}"#),
        Ok(Action::PatchSession(
            sid(),
            OptionsPatch {
                deadlock: Some(true),
                ..OptionsPatch::default()
            }
        ))
    );
    let ev = format!("/v1/sessions/{SID}/events");
    assert_eq!(run("GET", &ev, ""), Ok(Action::SessionEvents(sid())));
    assert_eq!(
        run("GET", "/v1/keys/a%2Fb/who", ""),
        Ok(Action::Who { key: k("a/b") })
    );
    assert_eq!(
        run("GET", "/v1/keys/job/position", ""),
        Ok(Action::Position { key: k("job") })
    );
    // Malformed session ids in the path.
    for bad in ["3F0C8D2A9B7E41C6A5D4E3F2B1A09876", "3f0c", "x"] {
        let e = run("DELETE", &format!("/v1/sessions/{bad}"), "").unwrap_err();
        assert_eq!((e.status, e.code), (400, "bad_request"), "{bad}");
    }
}

#[test]
fn locks() {
    let lk = |timeout, lease| Command::Lock {
        key: k("deploy"),
        timeout,
        lease,
    };
    assert_eq!(
        cmd(
            "POST",
            "/v1/locks/deploy",
            r#"{"acquire_timeout_s":10,"lease_ttl_s":60}"#
        ),
        lk(10, Some(60))
    );
    assert_eq!(
        cmd(
            "POST",
            "/v1/locks/deploy",
            r#"{"acquire_timeout_s":0,"lease_ttl_s":0}"#
        ),
        lk(0, None)
    );
    let rel = format!(r#"{{"token":"{TOKEN}"}}"#);
    assert_eq!(
        cmd("POST", "/v1/locks/deploy/release", &rel),
        Command::Release {
            key: k("deploy"),
            token: tok()
        }
    );
    assert_eq!(
        cmd(
            "POST",
            "/v1/locks/deploy/renew",
            &format!(r#"{{"token":"{TOKEN}","lease_ttl_s":5}}"#)
        ),
        Command::Renew {
            key: k("deploy"),
            token: tok(),
            lease: Some(5)
        }
    );
    assert_eq!(
        cmd("POST", "/v1/locks/job/enqueue", ""),
        Command::Enqueue {
            key: k("job"),
            lease: None
        }
    );
    assert_eq!(
        cmd("POST", "/v1/locks/job/enqueue", r#"{"lease_ttl_s":60}"#),
        Command::Enqueue {
            key: k("job"),
            lease: Some(60)
        }
    );
    assert_eq!(
        cmd("POST", "/v1/locks/job/wait", r#"{"timeout_s":30}"#),
        Command::Wait {
            key: k("job"),
            timeout: 30
        }
    );
}

#[test]
fn semaphores() {
    assert_eq!(
        cmd(
            "POST",
            "/v1/semaphores/pool",
            r#"{"acquire_timeout_s":0,"limit":2}"#
        ),
        Command::SemLock {
            key: k("pool"),
            timeout: 0,
            limit: 2,
            lease: None
        }
    );
    let rel = format!(r#"{{"token":"{TOKEN}"}}"#);
    assert_eq!(
        cmd("POST", "/v1/semaphores/pool/release", &rel),
        Command::SemRelease {
            key: k("pool"),
            token: tok()
        }
    );
    assert_eq!(
        cmd("POST", "/v1/semaphores/pool/renew", &rel),
        Command::SemRenew {
            key: k("pool"),
            token: tok(),
            lease: None
        }
    );
    assert_eq!(
        cmd(
            "POST",
            "/v1/semaphores/pool/enqueue",
            r#"{"limit":3,"lease_ttl_s":9}"#
        ),
        Command::SemEnqueue {
            key: k("pool"),
            limit: 3,
            lease: Some(9)
        }
    );
    assert_eq!(
        cmd("POST", "/v1/semaphores/pool/wait", r#"{"timeout_s":1}"#),
        Command::SemWait {
            key: k("pool"),
            timeout: 1
        }
    );
}

#[test]
fn rwlocks() {
    assert_eq!(
        cmd(
            "POST",
            "/v1/rwlocks/cfg",
            r#"{"mode":"read","acquire_timeout_s":5}"#
        ),
        Command::RwLock {
            mode: RwMode::Read,
            key: k("cfg"),
            timeout: 5,
            lease: None
        }
    );
    let rel = format!(r#"{{"token":"{TOKEN}"}}"#);
    assert!(matches!(
        cmd("POST", "/v1/rwlocks/cfg/release", &rel),
        Command::RwRelease { ref key, ref token, .. } if **key == *"cfg" && *token == tok()
    ));
    assert!(matches!(
        cmd(
            "POST",
            "/v1/rwlocks/cfg/renew",
            &format!(r#"{{"token":"{TOKEN}","lease_ttl_s":60}}"#)
        ),
        Command::RwRenew {
            lease: Some(60),
            ..
        }
    ));
    assert_eq!(
        cmd("POST", "/v1/rwlocks/cfg/enqueue", r#"{"mode":"write"}"#),
        Command::RwEnqueue {
            mode: RwMode::Write,
            key: k("cfg"),
            lease: None
        }
    );
    assert_eq!(
        run("POST", "/v1/rwlocks/cfg/wait", r#"{"timeout_s":3}"#),
        Ok(Action::RwWait {
            key: k("cfg"),
            timeout: 3
        })
    );
    assert_eq!(
        rw_wait(k("cfg"), 3, Some(RwMode::Write)),
        Command::RwWait {
            mode: RwMode::Write,
            key: k("cfg"),
            timeout: 3
        }
    );
    assert!(matches!(
        rw_wait(k("cfg"), 3, None),
        Command::RwWait {
            mode: RwMode::Read,
            ..
        }
    ));
}

#[test]
fn elections_and_barriers() {
    assert_eq!(
        cmd(
            "POST",
            "/v1/elections/leader-job",
            r#"{"acquire_timeout_s":5,"lease_ttl_s":10}"#
        ),
        Command::Elect {
            key: k("leader-job"),
            timeout: 5,
            lease: Some(10)
        }
    );
    let rel = format!(r#"{{"token":"{TOKEN}"}}"#);
    assert_eq!(
        cmd("POST", "/v1/elections/leader-job/resign", &rel),
        Command::Resign {
            key: k("leader-job"),
            token: tok()
        }
    );
    assert_eq!(
        cmd("POST", "/v1/elections/leader-job/renew", &rel),
        Command::Renew {
            key: k("leader-job"),
            token: tok(),
            lease: None
        }
    );
    assert_eq!(
        run("GET", "/v1/elections/leader-job/events", ""),
        Ok(Action::Subscribe(Command::Observe {
            key: k("leader-job")
        }))
    );
    assert_eq!(
        cmd(
            "POST",
            "/v1/barriers/stage-2/wait",
            r#"{"count":3,"timeout_s":30}"#
        ),
        Command::BWait {
            key: k("stage-2"),
            count: 3,
            timeout: 30
        }
    );
}

#[test]
fn counters_and_kv() {
    assert_eq!(
        cmd("GET", "/v1/counters/hits", ""),
        Command::Get { key: k("hits") }
    );
    assert_eq!(
        cmd("POST", "/v1/counters/hits/incr", r#"{"delta":5}"#),
        Command::Incr {
            key: k("hits"),
            delta: 5
        }
    );
    assert_eq!(
        cmd("POST", "/v1/counters/hits/decr", r#"{"delta":-5}"#),
        Command::Decr {
            key: k("hits"),
            delta: -5
        }
    );
    assert_eq!(
        cmd(
            "POST",
            "/v1/counters/hits/set",
            r#"{"value":9223372036854775807}"#
        ),
        Command::CSet {
            key: k("hits"),
            value: i64::MAX
        }
    );
    assert_eq!(
        cmd("GET", "/v1/kv/greeting", ""),
        Command::KGet { key: k("greeting") }
    );
    assert_eq!(
        cmd(
            "POST",
            "/v1/kv/greeting",
            r#"{"value":"hello world","ttl_s":60}"#
        ),
        Command::KSet {
            key: k("greeting"),
            value: "hello world".into(),
            ttl: 60
        }
    );
    assert_eq!(
        cmd("DELETE", "/v1/kv/greeting", ""),
        Command::KDel { key: k("greeting") }
    );
    let cas = |old: &str| Command::KCas {
        key: k("greeting"),
        old: old.into(),
        new: "bonjour".into(),
        ttl: 0,
    };
    assert_eq!(
        cmd(
            "POST",
            "/v1/kv/greeting/cas",
            r#"{"old":"hello world","new":"bonjour"}"#
        ),
        cas("hello world")
    );
    for body in [
        r#"{"new":"bonjour"}"#,
        r#"{"old":null,"new":"bonjour"}"#,
        r#"{"old":"","new":"bonjour","ttl_s":0}"#,
    ] {
        assert_eq!(cmd("POST", "/v1/kv/greeting/cas", body), cas(""), "{body}");
    }
}

#[test]
fn lists() {
    assert_eq!(
        cmd("GET", "/v1/lists/jobs", ""),
        Command::LLen { key: k("jobs") }
    );
    let range = |start, stop| Command::LRange {
        key: k("jobs"),
        start,
        stop,
    };
    assert_eq!(cmd("GET", "/v1/lists/jobs/range", ""), range(0, -1));
    assert_eq!(
        cmd("GET", "/v1/lists/jobs/range?start=1&stop=-2", ""),
        range(1, -2)
    );
    assert_eq!(
        cmd("GET", "/v1/lists/jobs/range?stop=5&other=x&x=%zz", ""),
        range(0, 5)
    );
    assert_eq!(
        cmd(
            "GET",
            "/v1/lists/jobs/range?start=%2B3&stop=-9223372036854775808",
            ""
        ),
        range(3, i64::MIN)
    );
    for q in [
        "start=1&start=2",
        "start=x",
        "stop=1.5",
        "stop=",
        "start=9223372036854775808",
        "start=+1",
        "stop=%",
    ] {
        let e = run("GET", &format!("/v1/lists/jobs/range?{q}"), "").unwrap_err();
        assert_eq!(e.status, 400, "{q}");
    }
    let push = |end| Command::Push {
        end,
        key: k("jobs"),
        value: "build 1".into(),
    };
    assert_eq!(
        cmd("POST", "/v1/lists/jobs/lpush", r#"{"value":"build 1"}"#),
        push(End::Left)
    );
    assert_eq!(
        cmd("POST", "/v1/lists/jobs/rpush", r#"{"value":"build 1"}"#),
        push(End::Right)
    );
    let pop = |end| Command::Pop {
        end,
        key: k("jobs"),
    };
    assert_eq!(cmd("POST", "/v1/lists/jobs/lpop", ""), pop(End::Left));
    assert_eq!(cmd("POST", "/v1/lists/jobs/rpop", "{}"), pop(End::Right));
    let bpop = |end| Command::BPop {
        end,
        key: k("jobs"),
        timeout: 4,
    };
    assert_eq!(
        cmd("POST", "/v1/lists/jobs/blpop", r#"{"timeout_s":4}"#),
        bpop(End::Left)
    );
    assert_eq!(
        cmd("POST", "/v1/lists/jobs/brpop", r#"{"timeout_s":4}"#),
        bpop(End::Right)
    );
}

#[test]
fn signals_and_watches() {
    assert_eq!(
        cmd(
            "POST",
            "/v1/signals/orders.created",
            r#"{"payload":"{\"id\":7}"}"#
        ),
        Command::Signal {
            channel: k("orders.created"),
            payload: "{\"id\":7}".into()
        }
    );
    for ch in ["orders.*", "orders.%3E", "a%20b"] {
        let e = run("POST", &format!("/v1/signals/{ch}"), r#"{"payload":"x"}"#).unwrap_err();
        assert_eq!(e.status, 400, "{ch}");
    }
    let listen = |p: &str, g: Option<&str>| {
        Ok(Action::Subscribe(Command::Listen {
            pattern: k(p),
            group: g.map(Into::into),
        }))
    };
    assert_eq!(
        run("GET", "/v1/signals?pattern=orders.*", ""),
        listen("orders.*", None)
    );
    assert_eq!(
        run("GET", "/v1/signals?pattern=orders.%3E&group=billing", ""),
        listen("orders.>", Some("billing"))
    );
    assert_eq!(
        run("GET", "/v1/signals?pattern=%3E&group=", ""),
        listen(">", None)
    );
    for q in [
        "",
        "group=x",
        "pattern=fo*",
        "pattern=a.%3E.b",
        "pattern=a+b",
        "pattern=",
        "pattern=a&pattern=b",
        "pattern=a&group=a+b",
        "pattern=a&group=%0A",
    ] {
        let e = run("GET", &format!("/v1/signals?{q}"), "").unwrap_err();
        assert_eq!(e.status, 400, "{q}");
    }
    let long_group = "g".repeat(257);
    assert!(
        run(
            "GET",
            &format!("/v1/signals?pattern=a&group={long_group}"),
            ""
        )
        .is_err()
    );
    assert_eq!(
        run("GET", "/v1/watch?pattern=session.*", ""),
        Ok(Action::Subscribe(Command::Watch {
            pattern: k("session.*")
        }))
    );
    let e = run("GET", "/v1/watch", "").unwrap_err();
    assert_eq!(
        e.detail.as_deref(),
        Some("query parameter pattern is required")
    );
}

#[test]
fn keys_follow_tcp_rules() {
    let long = "k".repeat(257);
    for key in ["a%20b", "a%09b", "a%0Ab", "a%0D", long.as_str()] {
        let e = run("GET", &format!("/v1/kv/{key}"), "").unwrap_err();
        assert_eq!((e.status, e.code), (400, "bad_request"), "{key}");
    }
    assert_eq!(
        cmd("GET", &format!("/v1/kv/{}", "k".repeat(256)), ""),
        Command::KGet {
            key: "k".repeat(256).into()
        }
    );
    assert_eq!(cmd("GET", "/v1/kv/x*", ""), Command::KGet { key: k("x*") });
}

#[test]
fn every_route_translates() {
    // One valid request per route; the translation must not fail.
    for route in ROUTES.iter() {
        let param = match route.param_name() {
            Some("id") => Some(SID),
            Some(_) => Some("k"),
            None => None,
        };
        let mut query = String::new();
        for q in route.query.iter().filter(|q| q.required) {
            query.push_str(q.param.name());
            query.push_str("=x&");
        }
        let t = target(route, param, &Query::new(Some(&query))).unwrap();
        let mut body = serde_json::Map::new();
        for f in route.body.fields().iter().filter(|f| f.required) {
            use crate::http::route::Field as F;
            let v = match f.field {
                F::Mode => serde_json::json!("read"),
                F::Token => serde_json::json!(TOKEN),
                F::Value | F::New | F::Payload => serde_json::json!("v"),
                F::Options => serde_json::json!({}),
                _ => serde_json::json!(1),
            };
            body.insert(f.field.name().into(), v);
        }
        let bytes = if body.is_empty() {
            String::new()
        } else {
            serde_json::Value::Object(body).to_string()
        };
        let b = parse(route.body, bytes.as_bytes(), &LIM).unwrap();
        assert!(to_command(route, t, b).is_ok(), "{}", route.template);
    }
}

#[test]
fn session_headers() {
    assert_eq!(session_header(Some(SID.as_bytes())), Ok(sid()));
    assert_eq!(
        session_header(Some(format!(" {SID}\t").as_bytes())),
        Ok(sid())
    );
    let e = session_header(None).unwrap_err();
    assert_eq!((e.status, e.code), (400, "bad_request"));
    assert_eq!(
        e.detail.as_deref(),
        Some("X-Dflockd-Session header required")
    );
    for bad in [
        "",
        "3F0C8D2A9B7E41C6A5D4E3F2B1A09876",
        "3f0c8d2a9b7e41c6a5d4e3f2b1a0987",
        "3f0c8d2a9b7e41c6a5d4e3f2b1a098760",
    ] {
        assert_eq!(
            session_header(Some(bad.as_bytes())).unwrap_err().status,
            400,
            "{bad}"
        );
    }
    assert_eq!(sid().to_string(), SID);
    assert_eq!(SessionId(1).to_string(), "00000000000000000000000000000001");
}
