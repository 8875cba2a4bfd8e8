//! The OpenAPI 3.1 document of http.md §10, built from the route table
//! ([`ROUTES`]) so that it cannot drift from the router: every route becomes one
//! operation with its parameters, request-body schema (from the route's body
//! members, with the ranges of §4.2), and every status code it can answer with
//! the exact response schema.
//!
//! Invariants (checked by the tests): every route appears once, operationIds are
//! unique, `HEAD` and `OPTIONS` are not listed, `204` responses have no content,
//! every response `outcome.rs` can produce for a route validates against that
//! route's schema, and no schema requires a member the server may leave out (so
//! `{"status":"timeout"}` needs no token). Optional request members accept `null`
//! because the server treats `null` as omitted. Response schemas do not forbid
//! extra members: clients must ignore members they do not know (§4.3). String
//! lengths are in characters in JSON Schema but in bytes on the server, so
//! `maxLength` is exact only for ASCII.
//!
//! Responses also declare the headers §2.4 makes unconditional for their status
//! (`Allow` on `405`, `WWW-Authenticate` on `401`, `Retry-After` on `429`), and
//! success responses carry OpenAPI `links` to the operations that use what they
//! return (a session id, a grant's token, a key just written), so that stateful
//! testers and client generators can chain them.

use super::route::{BodyKind, Field, Op, QueryParam, ROUTES, Route, Shape, route_of};
use crate::protocol::command::{CommandLimits, MAX_KEY_BYTES, MAX_LIMIT, MAX_SECS};
use serde_json::{Map, Value, json};

/// `X-Dflockd-Session` and token syntax (http.md §5, protocol.md §6.1).
const HEX32: &str = "^[0-9a-f]{32}$";
/// A key: no space, TAB, CR or LF (protocol.md §3.1).
const KEY_PATTERN: &str = "^[^ \\t\\r\\n]+$";
/// A channel: a key without `*` or `>` (§3.5).
const CHANNEL_PATTERN: &str = "^[^ \\t\\r\\n*>]+$";
/// A pattern: `.`-separated tokens, each `*` or free of `*`/`>`, optionally ending
/// in a `>` token; or `>` alone (§3.5).
const SUBJECT_PATTERN: &str =
    "^(?:(?:\\*|[^.*> \\t\\r\\n]*)(?:\\.(?:\\*|[^.*> \\t\\r\\n]*))*(?:\\.>)?|>)$";
/// A queue group: no space, TAB, CR or LF; empty = no group.
const GROUP_PATTERN: &str = "^[^ \\t\\r\\n]*$";
/// A value (§3.4): no TAB, CR or LF.
const VALUE_PATTERN: &str = "^[^\\t\\r\\n]*$";
/// A signal payload: a value with at least one byte that is not a space.
const PAYLOAD_PATTERN: &str = "^[^\\t\\r\\n]*[^ \\t\\r\\n][^\\t\\r\\n]*$";

fn reference(kind: &str, name: &str) -> Value {
    json!({ "$ref": format!("#/components/{kind}/{name}") })
}

fn schema_ref(name: &str) -> Value {
    reference("schemas", name)
}

fn secs() -> Value {
    json!({"type": "integer", "minimum": 0, "maximum": MAX_SECS})
}

fn int64() -> Value {
    json!({"type": "integer", "format": "int64", "minimum": i64::MIN, "maximum": i64::MAX})
}

/// The schema of one body member; an optional one also accepts `null`.
fn field_schema(field: Field, required: bool, max_value: usize) -> Value {
    let mut s = match field {
        Field::AcquireTimeoutS | Field::TimeoutS | Field::LeaseTtlS | Field::TtlS => secs(),
        Field::Limit | Field::Count => {
            json!({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT})
        }
        Field::Mode => json!({"type": "string", "enum": ["read", "write"]}),
        Field::Token => json!({"type": "string", "pattern": HEX32}),
        Field::Delta | Field::CounterValue => int64(),
        Field::Value | Field::New => json!({
            "type": "string", "minLength": 1, "maxLength": max_value, "pattern": VALUE_PATTERN,
            "description": format!("1 to {max_value} bytes of UTF-8 without TAB, CR or LF"),
        }),
        Field::Old => json!({
            "type": "string", "maxLength": max_value, "pattern": VALUE_PATTERN,
            "description": "expected value; omitted, null or empty = the key must not exist",
        }),
        Field::Payload => json!({
            "type": "string", "minLength": 1, "maxLength": max_value, "pattern": PAYLOAD_PATTERN,
            "description": format!("1 to {max_value} bytes without TAB, CR or LF, not only spaces"),
        }),
        Field::Options => schema_ref("SessionOptionsPatch"),
    };
    if !required {
        if let Some(t) = s.get_mut("type") {
            *t = json!([t.clone(), "null"]);
        } else {
            s = json!({"oneOf": [s, {"type": "null"}]});
        }
    }
    s
}

/// `requestBody` for a route, or `None` when it takes no body.
fn request_body(kind: BodyKind, max_value: usize) -> Option<Value> {
    let (fields, required) = match kind {
        BodyKind::Empty => return None,
        BodyKind::EmptyOrObject(f) => (f, false),
        BodyKind::Object(f) => (f, true),
    };
    let properties: Map<String, Value> = fields
        .iter()
        .map(|f| {
            (
                f.field.name().to_string(),
                field_schema(f.field, f.required, max_value),
            )
        })
        .collect();
    let mut schema =
        json!({"type": "object", "additionalProperties": false, "properties": properties});
    let names: Vec<&str> = fields
        .iter()
        .filter(|f| f.required)
        .map(|f| f.field.name())
        .collect();
    if !names.is_empty() {
        schema["required"] = json!(names);
    }
    Some(json!({
        "required": required,
        "description": if required { "A JSON object." } else { "Empty, or a JSON object." },
        "content": {"application/json": {"schema": schema}},
    }))
}

fn parameters(route: &Route) -> Vec<Value> {
    let mut out = Vec::new();
    match route.param_name() {
        Some("id") => out.push(reference("parameters", "SessionIdPath")),
        Some("channel") => out.push(reference("parameters", "Channel")),
        Some(_) => out.push(reference("parameters", "Key")),
        None => {}
    }
    for q in route.query {
        let schema = match q.param {
            QueryParam::Start | QueryParam::Stop => int64(),
            QueryParam::Pattern => schema_ref("Pattern"),
            QueryParam::Group => schema_ref("Group"),
        };
        let description = match q.param {
            QueryParam::Start => "first index (Redis lrange rules); default 0",
            QueryParam::Stop => "last index, inclusive (Redis lrange rules); default -1",
            QueryParam::Pattern => "subscription pattern (`*` one token, `>` the rest)",
            QueryParam::Group => "queue group; omitted or empty = none",
        };
        out.push(json!({
            "name": q.param.name(), "in": "query", "required": q.required,
            "description": description, "schema": schema,
        }));
    }
    if route.session {
        out.push(reference("parameters", "SessionHeader"));
    }
    out
}

fn json_response(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

/// The success responses of a shape, by status.
fn success(shape: Shape) -> Vec<(u16, Value)> {
    let one = |desc: &str, schema: &str| vec![(200, json_response(desc, schema_ref(schema)))];
    match shape {
        Shape::NoContent => vec![(204, json!({"description": "Done."}))],
        Shape::Health => one("The process runs.", "StatusOk"),
        Shape::Ready => vec![
            (200, json_response("Ready.", schema_ref("StatusOk"))),
            (
                503,
                json_response("Draining.", schema_ref("StatusDraining")),
            ),
        ],
        Shape::Metrics => vec![(
            200,
            json!({"description": "Prometheus text exposition format 0.0.4.",
                   "content": {"text/plain": {"schema": {"type": "string"}}}}),
        )],
        Shape::OpenApi => vec![(
            200,
            json_response("This document.", json!({"type": "object"})),
        )],
        Shape::Stats => one("The stats document (protocol.md §10).", "Stats"),
        Shape::SessionCreated => one("The new session.", "SessionCreated"),
        Shape::SessionOptions => one("All options after the change.", "SessionOptionsBody"),
        Shape::Who => one("Holders and waiters.", "Who"),
        Shape::Position => one("1 = granted next; 0 = granted.", "Position"),
        Shape::Acquire => one("Granted, or timed out.", "AcquireOutcome"),
        Shape::Enqueue => one("Granted at once, or queued.", "EnqueueOutcome"),
        Shape::Renew => one("The new lease in seconds.", "RenewOutcome"),
        Shape::Barrier => one("Complete, or timed out.", "BarrierOutcome"),
        Shape::Counter => one("The counter's value.", "CounterValue"),
        Shape::Value => one("The value, or nil.", "ValueOutcome"),
        Shape::Cas => one("Swapped, or the current value differs.", "CasOutcome"),
        Shape::Length => one("The list's length.", "Length"),
        Shape::Values => one("The items.", "Values"),
        Shape::Delivered => one("Frames and events queued.", "Delivered"),
        Shape::Events(names) => vec![(
            200,
            json!({
                "description": format!("Server-Sent Events stream; event names: {}.", names.join(", ")),
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            }),
        )],
    }
}

/// Every error status a route can answer, with the codes, in status order: the
/// general ones of §6 and the row's own.
fn error_statuses(route: &Route) -> Vec<(u16, Vec<&'static str>)> {
    let mut general: Vec<(u16, &'static str)> = vec![
        (400, "bad_request"),
        (404, "not_found"),
        (405, "method_not_allowed"),
        (408, "request_timeout"),
        (413, "payload_too_large"),
        (431, "headers_too_large"),
    ];
    if !route.auth_exempt {
        general.push((401, "unauthorized"));
    }
    if !route.operational {
        general.push((429, "rate_limited"));
        general.push((503, "draining"));
    }
    if route.is_session_endpoint() {
        general.push((410, "session_gone"));
    }
    let mut out: Vec<(u16, Vec<&'static str>)> = Vec::new();
    for &(status, code) in general.iter().chain(route.errors) {
        match out.iter_mut().find(|(s, _)| *s == status) {
            Some((_, codes)) if !codes.contains(&code) => codes.push(code),
            Some(_) => {}
            None => out.push((status, vec![code])),
        }
    }
    out.sort_by_key(|(s, _)| *s);
    out
}

/// The headers §2.4 sends on every response with this status, by component name.
fn status_header(status: u16) -> Option<(&'static str, &'static str)> {
    match status {
        401 => Some(("WWW-Authenticate", "WWWAuthenticate")),
        405 => Some(("Allow", "Allow")),
        429 => Some(("Retry-After", "RetryAfter")),
        _ => None,
    }
}

/// A link parameter: its qualified name in the target and the runtime
/// expression that gives its value.
type LinkParams = &'static [(&'static str, &'static str)];

const KEY: (&str, &str) = ("path.key", "$request.path.key");
const SESSION: (&str, &str) = (
    "header.X-Dflockd-Session",
    "$request.header.X-Dflockd-Session",
);

/// One OpenAPI link from a success response.
struct Link {
    target: Op,
    params: LinkParams,
    /// Members of the target's body, with runtime expressions as values.
    body: Option<Value>,
}

/// The links of an operation's success response. A holder's token goes to
/// release and renew, an enqueue to its wait, a created session to the
/// operations on it, a written key to its readers.
fn links(op: Op) -> Vec<Link> {
    const HOLDER: LinkParams = &[KEY, SESSION];
    const ON_KEY: LinkParams = &[KEY];
    const ON_SESSION: LinkParams = &[("path.id", "$response.body#/session_id")];
    let link = |target, params, body| Link {
        target,
        params,
        body,
    };
    let token = || Some(json!({"token": "$response.body#/token"}));
    let holder =
        |release, renew| vec![link(release, HOLDER, token()), link(renew, HOLDER, token())];
    let enqueue = |wait, release, renew| {
        let mut v = vec![link(wait, HOLDER, None)];
        v.extend(holder(release, renew));
        v
    };
    let all = |ops: &[Op], params| ops.iter().map(|&o| link(o, params, None)).collect();
    match op {
        Op::CreateSession => all(
            &[
                Op::PingSession,
                Op::DeleteSession,
                Op::PatchSession,
                Op::SessionEvents,
            ],
            ON_SESSION,
        ),
        Op::AcquireLock | Op::WaitLock => holder(Op::ReleaseLock, Op::RenewLock),
        Op::EnqueueLock => enqueue(Op::WaitLock, Op::ReleaseLock, Op::RenewLock),
        Op::AcquireSem | Op::WaitSem => holder(Op::ReleaseSem, Op::RenewSem),
        Op::EnqueueSem => enqueue(Op::WaitSem, Op::ReleaseSem, Op::RenewSem),
        Op::AcquireRw | Op::WaitRw => holder(Op::ReleaseRw, Op::RenewRw),
        Op::EnqueueRw => enqueue(Op::WaitRw, Op::ReleaseRw, Op::RenewRw),
        Op::Elect => holder(Op::Resign, Op::RenewLeader),
        Op::IncrCounter | Op::DecrCounter | Op::SetCounter => all(&[Op::GetCounter], ON_KEY),
        Op::SetKv => {
            let mut v: Vec<Link> = all(&[Op::GetKv, Op::DeleteKv], ON_KEY);
            // Swap the value just written: the `ok` outcome of a CAS.
            v.push(link(
                Op::CasKv,
                ON_KEY,
                Some(json!({"old": "$request.body#/value"})),
            ));
            v
        }
        Op::LPush | Op::RPush => all(&[Op::ListLength, Op::ListRange, Op::LPop, Op::RPop], ON_KEY),
        _ => Vec::new(),
    }
}

/// The `links` object of an operation's success response, if it has links.
fn links_object(op: Op) -> Option<Value> {
    let links: Map<String, Value> = links(op)
        .into_iter()
        .filter_map(|l| {
            let target = route_of(l.target)?;
            let parameters: Map<String, Value> = l
                .params
                .iter()
                .map(|&(name, expr)| (name.to_string(), json!(expr)))
                .collect();
            let mut link = json!({"operationId": target.operation_id, "parameters": parameters});
            if let Some(body) = l.body {
                link["requestBody"] = body;
            }
            Some((target.operation_id.to_string(), link))
        })
        .collect();
    (!links.is_empty()).then_some(Value::Object(links))
}

fn operation(route: &Route, max_value: usize) -> Value {
    let mut responses = Map::new();
    for (status, body) in success(route.success) {
        responses.insert(status.to_string(), body);
    }
    if let Some(links) = links_object(route.op) {
        for status in ["200", "204"] {
            if let Some(r) = responses.get_mut(status) {
                r["links"] = links.clone();
            }
        }
    }
    for (status, codes) in error_statuses(route) {
        let desc = format!("`error`: {}", codes.join(", "));
        let r = responses
            .entry(status.to_string())
            .or_insert_with(|| json_response(&desc, schema_ref("ErrorBody")));
        if let Some((name, component)) = status_header(status) {
            r["headers"] = json!({ name: reference("headers", component) });
        }
    }
    let mut op = json!({
        "operationId": route.operation_id,
        "summary": route.summary,
        "responses": responses,
    });
    let params = parameters(route);
    if !params.is_empty() {
        op["parameters"] = json!(params);
    }
    if let Some(body) = request_body(route.body, max_value) {
        op["requestBody"] = body;
    }
    if route.auth_exempt {
        op["security"] = json!([]);
    }
    op
}

fn object(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "required": required, "properties": properties})
}

fn schemas() -> Value {
    let token = json!({"type": "string", "pattern": HEX32});
    let lease = json!({"type": "integer", "minimum": 1, "maximum": MAX_SECS});
    let count = json!({"type": "integer", "minimum": 0});
    let array = json!({"type": "array", "items": {"type": "object"}});
    let word = |w: &str| object(&["status"], json!({"status": {"const": w}}));
    let granted = |w: &str| {
        object(
            &["status", "token", "lease_ttl_s"],
            json!({"status": {"const": w}, "token": token, "lease_ttl_s": lease}),
        )
    };
    let bool_members = |t: Value| json!({"queue_position": t, "lease_notices": t, "deadlock": t});
    const STATS_ARRAYS: [&str; 12] = [
        "locks",
        "semaphores",
        "idle_locks",
        "idle_semaphores",
        "rw_locks",
        "elections",
        "counters",
        "kv_entries",
        "lists",
        "signal_channels",
        "watch_channels",
        "barriers",
    ];
    let mut stats: Map<String, Value> = STATS_ARRAYS
        .iter()
        .map(|n| (n.to_string(), array.clone()))
        .collect();
    stats.insert("connections".into(), count.clone());
    stats.insert("server".into(), json!({"type": "object"}));
    let stats_required: Vec<&str> = stats.keys().map(String::as_str).collect();
    let entries = [
        (
            "ErrorBody",
            object(
                &["error"],
                json!({"error": {"type": "string"}, "detail": {"type": "string"}}),
            ),
        ),
        (
            "Key",
            json!({"type": "string", "minLength": 1, "maxLength": MAX_KEY_BYTES, "pattern": KEY_PATTERN,
                       "description": "1 to 256 bytes of UTF-8 without space, TAB, CR or LF"}),
        ),
        (
            "Channel",
            json!({"type": "string", "minLength": 1, "maxLength": MAX_KEY_BYTES, "pattern": CHANNEL_PATTERN}),
        ),
        (
            "Pattern",
            json!({"type": "string", "minLength": 1, "maxLength": MAX_KEY_BYTES, "pattern": SUBJECT_PATTERN}),
        ),
        (
            "Group",
            json!({"type": "string", "maxLength": MAX_KEY_BYTES, "pattern": GROUP_PATTERN}),
        ),
        ("SessionId", json!({"type": "string", "pattern": HEX32})),
        ("StatusOk", word("ok")),
        ("StatusDraining", word("draining")),
        ("Granted", granted("ok")),
        ("Acquired", granted("acquired")),
        ("Timeout", word("timeout")),
        (
            "Queued",
            object(
                &["status"],
                json!({"status": {"const": "queued"},
            "position": {"type": "integer", "minimum": 1, "description": "with the queue_position option"}}),
            ),
        ),
        (
            "AcquireOutcome",
            json!({"oneOf": [schema_ref("Granted"), schema_ref("Timeout")]}),
        ),
        (
            "EnqueueOutcome",
            json!({"oneOf": [schema_ref("Acquired"), schema_ref("Queued")]}),
        ),
        (
            "RenewOutcome",
            object(&["remaining_s"], json!({"remaining_s": lease})),
        ),
        (
            "BarrierOutcome",
            object(&["status"], json!({"status": {"enum": ["ok", "timeout"]}})),
        ),
        (
            "CounterValue",
            object(&["value"], json!({"value": int64()})),
        ),
        (
            "ValueOutcome",
            json!({"oneOf": [
                object(&["status", "value"], json!({"status": {"const": "ok"}, "value": {"type": "string"}})),
                word("nil"),
            ]}),
        ),
        (
            "CasOutcome",
            object(
                &["status"],
                json!({"status": {"enum": ["ok", "cas_conflict"]}}),
            ),
        ),
        ("Length", object(&["length"], json!({"length": count}))),
        (
            "Values",
            object(
                &["values"],
                json!({"values": {"type": "array", "items": {"type": "string"}}}),
            ),
        ),
        (
            "Delivered",
            object(&["delivered"], json!({"delivered": count})),
        ),
        (
            "Position",
            object(&["position"], json!({"position": count})),
        ),
        (
            "SessionCreated",
            object(
                &["session_id", "idle_timeout_s"],
                json!({"session_id": schema_ref("SessionId"), "idle_timeout_s": count}),
            ),
        ),
        (
            "SessionOptionsPatch",
            json!({"type": "object", "additionalProperties": false,
            "properties": bool_members(json!({"type": ["boolean", "null"]}))}),
        ),
        (
            "SessionOptionsBody",
            object(
                &["options"],
                json!({"options": object(
                    &["queue_position", "lease_notices", "deadlock"],
                    bool_members(json!({"type": "boolean"})),
                )}),
            ),
        ),
        (
            "Who",
            object(
                &["key", "type", "holders", "waiters"],
                json!({
                    "key": {"type": "string"},
                    "type": {"enum": ["lock", "semaphore", "rw", "election", "none"]},
                    "limit": {"type": ["integer", "null"],
                              "description": "null for a read-write lock and a key not in use"},
                    "holders": array, "waiters": array,
                }),
            ),
        ),
        (
            "Stats",
            object(&stats_required, Value::Object(stats.clone())),
        ),
    ];
    Value::Object(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

fn components() -> Value {
    json!({
        "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        "parameters": {
            "Key": {"name": "key", "in": "path", "required": true, "schema": schema_ref("Key")},
            "Channel": {"name": "channel", "in": "path", "required": true,
                        "description": "a channel: no `*` or `>`", "schema": schema_ref("Channel")},
            "SessionIdPath": {"name": "id", "in": "path", "required": true, "schema": schema_ref("SessionId")},
            "SessionHeader": {"name": "X-Dflockd-Session", "in": "header", "required": true,
                              "description": "the session id from POST /v1/sessions",
                              "schema": schema_ref("SessionId")},
        },
        "headers": {
            "Allow": {"required": true, "description": "The methods of this path (§2.4).",
                      "schema": {"type": "string"}},
            "WWWAuthenticate": {"required": true, "schema": {"const": "Bearer realm=\"dflockd\""}},
            "RetryAfter": {"required": true, "schema": {"const": "1"}},
        },
        "schemas": schemas(),
    })
}

/// The OpenAPI 3.1.0 document for server `version`; `limits` gives the value size
/// (`--max-value-bytes`) that bounds string members.
pub fn document(version: &str, limits: &CommandLimits) -> Value {
    let max_value = limits.max_value_bytes;
    let mut paths = Map::new();
    for route in ROUTES.iter() {
        let item = paths
            .entry(route.template.to_string())
            .or_insert_with(|| json!({}));
        item[route.method.openapi_name()] = operation(route, max_value);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "dflockd HTTP API",
            "version": version,
            "description": "Locks, semaphores, read-write locks, elections, barriers, counters, \
                            KV, lists, signals and watches over HTTP; the same state as the TCP protocol.",
        },
        "servers": [{
            "url": "http://{host}:{port}",
            "variables": {"host": {"default": "127.0.0.1"}, "port": {"default": "6389"}},
        }],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": components(),
    })
}

/// The document as compact JSON, for `GET /v1/openapi.json`.
pub fn document_json(version: &str, limits: &CommandLimits) -> String {
    document(version, limits).to_string()
}

#[cfg(test)]
#[path = "openapi_tests.rs"]
mod tests;
