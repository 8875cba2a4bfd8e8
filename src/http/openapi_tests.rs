//! Unit tests of [`super`] (the OpenAPI document): completeness against the route
//! table and §10, and the responses `outcome` produces checked against the
//! document's own schemas with a small validator for the keywords it uses.

use super::*;
use crate::http::api::{
    ApiError, ApiResponse, SessionId, health, ready, session_created, session_options, to_response,
};
use crate::http::body::SessionOptions;
use crate::http::route::{Method, Op, route_of};
use crate::protocol::reply::{GrantWord, Reply, Status};
use crate::state::fence::Token;

const LIM: CommandLimits = CommandLimits {
    max_value_bytes: 65536,
};

fn doc() -> Value {
    document("0.1.0", &LIM)
}

const OPERATION_IDS: [&str; 51] = [
    "getHealth",
    "getReady",
    "getMetrics",
    "getOpenAPI",
    "getStats",
    "createSession",
    "pingSession",
    "deleteSession",
    "acquireLock",
    "releaseLock",
    "renewLock",
    "enqueueLock",
    "waitLock",
    "acquireSem",
    "releaseSem",
    "renewSem",
    "enqueueSem",
    "waitSem",
    "acquireRWLock",
    "releaseRWLock",
    "renewRWLock",
    "enqueueRWLock",
    "waitRWLock",
    "elect",
    "resign",
    "renewLeader",
    "streamLeaderEvents",
    "waitBarrier",
    "getCounter",
    "incrCounter",
    "decrCounter",
    "setCounter",
    "getKV",
    "setKV",
    "deleteKV",
    "casKV",
    "getListLength",
    "getListRange",
    "lpush",
    "rpush",
    "lpop",
    "rpop",
    "blpop",
    "brpop",
    "publishSignal",
    "streamSignals",
    "streamWatch",
    // §6.2a
    "patchSession",
    "streamSessionEvents",
    "getWho",
    "getPosition",
];

fn operation_of<'a>(d: &'a Value, route: &Route) -> &'a Value {
    &d["paths"][route.template][route.method.openapi_name()]
}

#[test]
fn header_and_servers() {
    let d = doc();
    assert_eq!(d["openapi"], "3.1.0");
    assert_eq!(d["info"]["title"], "dflockd HTTP API");
    assert_eq!(d["info"]["version"], "0.1.0");
    assert_eq!(d["servers"][0]["url"], "http://{host}:{port}");
    assert_eq!(d["servers"][0]["variables"]["host"]["default"], "127.0.0.1");
    assert_eq!(d["servers"][0]["variables"]["port"]["default"], "6389");
    assert_eq!(
        d["components"]["securitySchemes"]["bearerAuth"],
        json!({"type": "http", "scheme": "bearer"})
    );
    assert_eq!(d["security"], json!([{"bearerAuth": []}]));
    // Valid JSON that survives a round trip.
    let text = document_json("0.1.0", &LIM);
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), d);
}

#[test]
fn every_route_and_operation_id() {
    let d = doc();
    let mut seen = Vec::new();
    let mut count = 0;
    for (path, item) in d["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(
                matches!(method.as_str(), "get" | "post" | "delete" | "patch"),
                "{path} {method}"
            );
            seen.push(op["operationId"].as_str().unwrap().to_string());
            count += 1;
        }
    }
    assert_eq!(count, ROUTES.len());
    for route in ROUTES.iter() {
        assert_eq!(operation_of(&d, route)["operationId"], route.operation_id);
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), seen.len(), "duplicate operationId");
    for id in OPERATION_IDS {
        assert!(seen.iter().any(|s| s == id), "{id} missing");
    }
    assert_eq!(seen.len(), OPERATION_IDS.len());
}

#[test]
fn security_parameters_and_bodies() {
    let d = doc();
    for route in ROUTES.iter() {
        let op = operation_of(&d, route);
        if ["/health", "/ready", "/v1/openapi.json"].contains(&route.template) {
            assert_eq!(op["security"], json!([]), "{}", route.template);
        } else {
            assert!(op.get("security").is_none(), "{}", route.template);
            assert!(op["responses"].get("401").is_some());
        }
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        let has = |r: &str| {
            params
                .iter()
                .any(|p| p["$ref"] == format!("#/components/parameters/{r}"))
        };
        assert_eq!(has("SessionHeader"), route.session, "{}", route.template);
        assert_eq!(has("Key"), route.param_name() == Some("key"));
        assert_eq!(has("SessionIdPath"), route.param_name() == Some("id"));
        assert_eq!(has("Channel"), route.param_name() == Some("channel"));
        for q in route.query {
            assert!(
                params
                    .iter()
                    .any(|p| p["name"] == q.param.name() && p["in"] == "query")
            );
        }
        match route.body {
            BodyKind::Empty => assert!(op.get("requestBody").is_none()),
            kind => {
                let rb = &op["requestBody"];
                assert_eq!(rb["required"], matches!(kind, BodyKind::Object(_)));
                let s = &rb["content"]["application/json"]["schema"];
                assert_eq!(s["additionalProperties"], false);
                assert_eq!(
                    s["properties"].as_object().unwrap().len(),
                    kind.fields().len()
                );
            }
        }
        let responses = op["responses"].as_object().unwrap();
        for status in ["400", "404", "405", "408", "413", "431"] {
            assert!(
                responses.contains_key(status),
                "{} {status}",
                route.template
            );
        }
        assert_eq!(responses.contains_key("410"), route.is_session_endpoint());
        assert_eq!(responses.contains_key("429"), !route.operational);
        for (status, r) in responses {
            assert!(r["description"].is_string());
            if status == "204" {
                assert!(r.get("content").is_none());
            }
        }
        let ok = &responses.get("200").or(responses.get("204")).unwrap()["content"];
        if route.is_sse() {
            assert!(ok.get("text/event-stream").is_some());
        }
    }
    let metrics = route_of(Op::Metrics).unwrap();
    assert!(operation_of(&d, metrics)["responses"]["200"]["content"]["text/plain"].is_object());
    let lock = operation_of(&d, route_of(Op::AcquireLock).unwrap());
    let s = &lock["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(s["required"], json!(["acquire_timeout_s"]));
    assert_eq!(
        s["properties"]["acquire_timeout_s"]["maximum"],
        9_223_372_036u64
    );
    assert_eq!(
        s["properties"]["lease_ttl_s"]["type"],
        json!(["integer", "null"])
    );
    assert!(
        lock["responses"]["409"]["description"]
            .as_str()
            .unwrap()
            .contains("type_mismatch")
    );
}

#[test]
fn every_ref_resolves() {
    fn walk(v: &Value, root: &Value) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    let ptr = r.strip_prefix('#').unwrap();
                    assert!(root.pointer(ptr).is_some(), "{r}");
                }
                m.values().for_each(|x| walk(x, root));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, root)),
            _ => {}
        }
    }
    let d = doc();
    walk(&d, &d);
}

/// A validator for the JSON Schema keywords this document uses (`pattern` aside).
fn valid(v: &Value, s: &Value, root: &Value) -> bool {
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        return valid(v, root.pointer(&r[1..]).unwrap(), root);
    }
    if let Some(alts) = s.get("oneOf").and_then(Value::as_array) {
        return alts.iter().filter(|a| valid(v, a, root)).count() == 1;
    }
    let type_ok = |t: &str| match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => false,
    };
    let ok = match s.get("type") {
        None => true,
        Some(Value::String(t)) => type_ok(t),
        Some(Value::Array(ts)) => ts.iter().any(|t| type_ok(t.as_str().unwrap())),
        Some(_) => false,
    };
    if !ok || s.get("const").is_some_and(|c| c != v) {
        return false;
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            return false;
        }
    }
    if let (Some(n), Some(min)) = (v.as_i64(), s.get("minimum").and_then(Value::as_i64)) {
        if n < min {
            return false;
        }
    }
    if let (Some(n), Some(max)) = (v.as_u64(), s.get("maximum").and_then(Value::as_u64)) {
        if n > max {
            return false;
        }
    }
    if let Some(obj) = v.as_object() {
        let req = s
            .get("required")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if !req.iter().all(|r| obj.contains_key(r.as_str().unwrap())) {
            return false;
        }
        if let Some(props) = s.get("properties").and_then(Value::as_object) {
            for (k, x) in obj {
                match props.get(k) {
                    Some(ps) if !valid(x, ps, root) => return false,
                    None if s.get("additionalProperties") == Some(&json!(false)) => return false,
                    _ => {}
                }
            }
        }
    }
    if let (Some(items), Some(arr)) = (s.get("items"), v.as_array()) {
        return arr.iter().all(|x| valid(x, items, root));
    }
    true
}

/// Asserts that `r` is documented for `route`, with a schema its body satisfies.
fn conforms(d: &Value, route: &Route, r: &ApiResponse) {
    let doc_r = &operation_of(d, route)["responses"][r.status.to_string()];
    assert!(
        doc_r.is_object(),
        "{} {} undocumented",
        route.template,
        r.status
    );
    match &r.body {
        None => assert!(
            doc_r.get("content").is_none(),
            "{} {}",
            route.template,
            r.status
        ),
        Some(b) => {
            let v: Value = serde_json::from_str(b).unwrap();
            let s = &doc_r["content"]["application/json"]["schema"];
            assert!(
                valid(&v, s, d),
                "{} {} {b} vs {s}",
                route.template,
                r.status
            );
        }
    }
}

#[test]
fn responses_match_their_schemas() {
    let d = doc();
    let token = Token::parse(b"18ea9db47e590001d433357e6ef5d88b").unwrap();
    let grant = |word| Reply::Grant {
        word,
        token,
        lease_s: 33,
        with_fence: true,
    };
    let mut replies = vec![
        Reply::OK,
        Reply::ERROR,
        grant(GrantWord::Ok),
        grant(GrantWord::Acquired),
        Reply::Lease {
            lease_s: 33,
            fence: Some(1),
        },
        Reply::Int(0),
        Reply::Int(7),
        Reply::Text("hello world".into()),
        Reply::Text(r#"["a","b"]"#.into()),
    ];
    for s in [
        Status::Queued,
        Status::Timeout,
        Status::Nil,
        Status::CasConflict,
        Status::ErrorMaxLocks,
        Status::ErrorMaxKeys,
        Status::ErrorMaxWaiters,
        Status::ErrorMaxMemory,
        Status::ErrorLimitMismatch,
        Status::ErrorTypeMismatch,
        Status::ErrorNotEnqueued,
        Status::ErrorAlreadyEnqueued,
        Status::ErrorLeaseExpired,
        Status::ErrorListFull,
        Status::ErrorBarrierCountMismatch,
        Status::ErrorDraining,
    ] {
        replies.push(s.into());
    }
    let mut checked = 0;
    // Stats and who pass the state's JSON document through; checked below.
    let generic = |r: &&Route| !r.is_sse() && !matches!(r.op, Op::Stats | Op::Who);
    for route in ROUTES.iter().filter(generic) {
        for reply in &replies {
            let r = to_response(route.op, reply);
            // A 500 is the "cannot happen" answer; every other status must be documented.
            if r.status == 500 {
                continue;
            }
            // Error words a route cannot get from the state need not be in its row;
            // those it can get (its row, and the general ones) must be documented.
            if r.status >= 400 {
                let v = serde_json::from_str::<Value>(r.body.as_deref().unwrap()).unwrap();
                let general = ["bad_request", "draining"].contains(&v["error"].as_str().unwrap());
                if !general && !route.errors.iter().any(|(_, c)| *c == v["error"]) {
                    continue;
                }
                if route.operational && v["error"] == "draining" {
                    continue;
                }
            }
            conforms(&d, route, &r);
            checked += 1;
        }
    }
    assert!(checked > 200, "{checked}");
    // The builders of the server's own endpoints.
    let r = |op| route_of(op).unwrap();
    conforms(&d, r(Op::Health), &health());
    conforms(&d, r(Op::Ready), &ready(false));
    conforms(&d, r(Op::Ready), &ready(true));
    let sid = SessionId::parse(b"3f0c8d2a9b7e41c6a5d4e3f2b1a09876").unwrap();
    conforms(&d, r(Op::CreateSession), &session_created(sid, 20));
    conforms(
        &d,
        r(Op::PatchSession),
        &session_options(&SessionOptions::default()),
    );
    conforms(
        &d,
        r(Op::AcquireLock),
        &ApiError::bad_request("X-Dflockd-Session header required").to_response(),
    );
    conforms(
        &d,
        r(Op::AcquireLock),
        &ApiError::new(410, "session_gone").to_response(),
    );
    conforms(
        &d,
        r(Op::CreateSession),
        &ApiError::new(503, "max_sessions").to_response(),
    );
    let stats = r#"{"connections":0,"locks":[],"semaphores":[],"idle_locks":[],"idle_semaphores":[],"rw_locks":[],"elections":[],"counters":[],"kv_entries":[],"lists":[],"signal_channels":[],"watch_channels":[],"barriers":[],"server":{}}"#;
    conforms(
        &d,
        r(Op::Stats),
        &to_response(Op::Stats, &Reply::Text(stats.into())),
    );
    // And what must not validate.
    let timeout_with_token = json!({"status": "timeout", "token": "x", "lease_ttl_s": 1});
    let acquire = schema_ref("AcquireOutcome");
    assert!(
        valid(&timeout_with_token, &acquire, &d),
        "extra members are allowed"
    );
    assert!(!valid(&json!({"status": "ok"}), &acquire, &d));
    assert!(!valid(&json!({"status": "queued"}), &acquire, &d));
    assert!(!valid(
        &json!({"status": "ok"}),
        &schema_ref("ValueOutcome"),
        &d
    ));
    assert!(!valid(
        &json!({"status": "timeout", "lease_ttl_s": 0}),
        &schema_ref("Granted"),
        &d
    ));
}

#[test]
fn no_head_or_options() {
    let text = document_json("x", &LIM);
    assert!(!text.contains("\"head\""));
    assert!(!text.contains("\"options\":{\"operationId"));
    assert!(
        ROUTES
            .iter()
            .all(|r| r.method != Method::Get || !r.template.is_empty())
    );
}

#[test]
fn links_name_real_operations_and_parameters() {
    let d = doc();
    let by_id = |id: &str| ROUTES.iter().find(|r| r.operation_id == id);
    let mut count = 0;
    for route in ROUTES.iter() {
        let op = operation_of(&d, route);
        for (status, resp) in op["responses"].as_object().unwrap() {
            let Some(links) = resp.get("links").and_then(Value::as_object) else {
                continue;
            };
            assert!(
                status == "200" || status == "204",
                "{} {status}",
                route.template
            );
            for (name, link) in links {
                let target = by_id(link["operationId"].as_str().unwrap())
                    .unwrap_or_else(|| panic!("{name}: no such operation"));
                for (param, expr) in link["parameters"].as_object().unwrap() {
                    let (location, pname) = param.split_once('.').unwrap();
                    match location {
                        "path" => assert_eq!(target.param_name(), Some(pname), "{name}"),
                        "header" => {
                            assert!(pname == "X-Dflockd-Session" && target.session, "{name}")
                        }
                        _ => panic!("{name}: {param}"),
                    }
                    // The source has what the expression reads.
                    match expr.as_str().unwrap() {
                        "$request.path.key" => assert_eq!(route.param_name(), Some("key")),
                        "$request.header.X-Dflockd-Session" => assert!(route.session),
                        "$response.body#/session_id" => assert_eq!(route.op, Op::CreateSession),
                        e => panic!("{name}: {e}"),
                    }
                }
                if let Some(body) = link.get("requestBody") {
                    for (member, expr) in body.as_object().unwrap() {
                        assert!(
                            target
                                .body
                                .fields()
                                .iter()
                                .any(|f| f.field.name() == member),
                            "{name}: {member}"
                        );
                        match expr.as_str().unwrap() {
                            // Granted and Acquired outcomes carry the token.
                            "$response.body#/token" => {
                                assert!(matches!(route.success, Shape::Acquire | Shape::Enqueue))
                            }
                            "$request.body#/value" => assert!(
                                route
                                    .body
                                    .fields()
                                    .iter()
                                    .any(|f| f.field.name() == "value")
                            ),
                            e => panic!("{name}: {e}"),
                        }
                    }
                }
                count += 1;
            }
        }
    }
    assert!(count >= 30, "{count}");
    let release = &operation_of(&d, route_of(Op::AcquireLock).unwrap())["responses"]["200"]["links"]
        ["releaseLock"];
    assert_eq!(
        release["requestBody"],
        json!({"token": "$response.body#/token"})
    );
}

#[test]
fn unconditional_headers_are_declared() {
    let d = doc();
    for route in ROUTES.iter() {
        let responses = &operation_of(&d, route)["responses"];
        let header = |status: &str, name: &str| {
            responses[status]["headers"][name]["$ref"]
                .as_str()
                .map(|r| d.pointer(&r[1..]).unwrap().clone())
        };
        assert!(header("405", "Allow").is_some(), "{}", route.template);
        assert_eq!(
            header("401", "WWW-Authenticate").is_some(),
            !route.auth_exempt,
            "{}",
            route.template
        );
        assert_eq!(
            header("429", "Retry-After").map(|h| h["schema"]["const"].clone()),
            (!route.operational).then(|| json!("1")),
            "{}",
            route.template
        );
    }
}
