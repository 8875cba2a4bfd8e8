//! The route table: one static [`ROUTES`] entry per endpoint of http.md §6
//! (§6.1–§6.12 and §6.2a), and the matcher that picks one for a method and a raw
//! path. The router, the body validator ([`super::body`]), the translation to
//! commands ([`super::api`]) and the OpenAPI document ([`super::openapi`]) all read
//! this one table, so they cannot drift apart. The table's data is in
//! `route_table.rs`; the types it is made of and the matcher are here.
//!
//! Invariants (checked by the tests): templates are unique per method, every
//! template has at most one `{param}` segment and at most four segments, and
//! operationIds are unique. Matching follows http.md §4.1: split the raw path on
//! `/`, then decode; a literal segment matches only its exact decoded text, a
//! parameter segment matches any non-empty segment, and the parameter is decoded (and may
//! fail, `400`) only after routing has succeeded, so `404`/`405` come before `400`
//! as §3.1 orders them.

use super::path::{DecodeError, decode_segment, segments};
use std::borrow::Cow;

pub use super::route_table::ROUTES;

/// A method a route can have. `HEAD` is not a route method: it matches the
/// `GET` route of a path, except an SSE one (§2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Delete,
    Patch,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
        }
    }

    /// Lower case, as OpenAPI path items spell operations.
    pub fn openapi_name(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Post => "post",
            Method::Delete => "delete",
            Method::Patch => "patch",
        }
    }
}

/// Every operation, one per route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Health,
    Ready,
    Metrics,
    OpenApi,
    Stats,
    CreateSession,
    PingSession,
    DeleteSession,
    PatchSession,
    SessionEvents,
    Who,
    Position,
    AcquireLock,
    ReleaseLock,
    RenewLock,
    EnqueueLock,
    WaitLock,
    AcquireSem,
    ReleaseSem,
    RenewSem,
    EnqueueSem,
    WaitSem,
    AcquireRw,
    ReleaseRw,
    RenewRw,
    EnqueueRw,
    WaitRw,
    Elect,
    Resign,
    RenewLeader,
    LeaderEvents,
    WaitBarrier,
    GetCounter,
    IncrCounter,
    DecrCounter,
    SetCounter,
    GetKv,
    SetKv,
    DeleteKv,
    CasKv,
    ListLength,
    ListRange,
    LPush,
    RPush,
    LPop,
    RPop,
    BLPop,
    BRPop,
    PublishSignal,
    SignalEvents,
    WatchEvents,
}

/// A JSON body member (http.md §4.2). `CounterValue` and `Value` share the JSON
/// name `value`: an integer on counters, a string on KV and lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    AcquireTimeoutS,
    TimeoutS,
    LeaseTtlS,
    Limit,
    Count,
    Mode,
    Token,
    Delta,
    CounterValue,
    Value,
    Old,
    New,
    Payload,
    TtlS,
    /// The PATCH `/v1/sessions/{id}` options object.
    Options,
}

impl Field {
    /// The member name in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Field::AcquireTimeoutS => "acquire_timeout_s",
            Field::TimeoutS => "timeout_s",
            Field::LeaseTtlS => "lease_ttl_s",
            Field::Limit => "limit",
            Field::Count => "count",
            Field::Mode => "mode",
            Field::Token => "token",
            Field::Delta => "delta",
            Field::CounterValue | Field::Value => "value",
            Field::Old => "old",
            Field::New => "new",
            Field::Payload => "payload",
            Field::TtlS => "ttl_s",
            Field::Options => "options",
        }
    }
}

/// One member a route's body accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    pub field: Field,
    pub required: bool,
}

pub(crate) const fn req(field: Field) -> FieldSpec {
    FieldSpec {
        field,
        required: true,
    }
}

pub(crate) const fn opt(field: Field) -> FieldSpec {
    FieldSpec {
        field,
        required: false,
    }
}

/// What a route accepts as a request body (http.md §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body: `GET`, `DELETE` ("—" or "empty" in §6).
    Empty,
    /// An empty body, or a JSON object with at most these members ("empty or `{}`").
    EmptyOrObject(&'static [FieldSpec]),
    /// A JSON object with these members; an empty body is `400`.
    Object(&'static [FieldSpec]),
}

impl BodyKind {
    /// The members an object body may carry.
    pub fn fields(self) -> &'static [FieldSpec] {
        match self {
            BodyKind::Empty => &[],
            BodyKind::EmptyOrObject(f) | BodyKind::Object(f) => f,
        }
    }
}

/// A documented query parameter (http.md §6.10–§6.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryParam {
    /// `lrange` start, signed 64-bit, default 0.
    Start,
    /// `lrange` stop, signed 64-bit, default -1.
    Stop,
    /// Subscription or watch pattern.
    Pattern,
    /// Queue group of a signal stream.
    Group,
}

impl QueryParam {
    pub fn name(self) -> &'static str {
        match self {
            QueryParam::Start => "start",
            QueryParam::Stop => "stop",
            QueryParam::Pattern => "pattern",
            QueryParam::Group => "group",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuerySpec {
    pub param: QueryParam,
    pub required: bool,
}

/// The success response of a route (the "success" column of §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `204`, no body.
    NoContent,
    /// `200 {"status":"ok"}`.
    Health,
    /// `200 {"status":"ok"}`, or `503 {"status":"draining"}`.
    Ready,
    /// `200` Prometheus text.
    Metrics,
    /// `200` the OpenAPI document.
    OpenApi,
    /// `200` the stats document.
    Stats,
    /// `200 {"session_id","idle_timeout_s"}`.
    SessionCreated,
    /// `200 {"options":{…all three…}}`.
    SessionOptions,
    /// `200` the `who` document.
    Who,
    /// `200 {"position"}`.
    Position,
    /// The acquire outcome: ok with token and lease, or timeout.
    Acquire,
    /// The enqueue outcome: acquired with token and lease, or queued.
    Enqueue,
    /// The renew outcome `{"remaining_s"}`.
    Renew,
    /// `{"status":"ok"|"timeout"}`.
    Barrier,
    /// `{"value":<i64>}`.
    Counter,
    /// `{"status":"ok","value"}` or `{"status":"nil"}` (KV get, pops).
    Value,
    /// `{"status":"ok"|"cas_conflict"}`.
    Cas,
    /// `{"length"}`.
    Length,
    /// `{"values":[…]}`.
    Values,
    /// `{"delivered"}`.
    Delivered,
    /// An SSE stream with these event names.
    Events(&'static [&'static str]),
}

/// One endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: Method,
    /// The path template, e.g. `/v1/locks/{key}/release`; also the metrics `path` label.
    pub template: &'static str,
    pub operation_id: &'static str,
    pub op: Op,
    /// One line for the OpenAPI `summary`.
    pub summary: &'static str,
    /// The S column: `X-Dflockd-Session` required (§5).
    pub session: bool,
    /// No bearer authentication (§3.2): `/health`, `/ready`, `/v1/openapi.json`.
    pub auth_exempt: bool,
    /// Exempt from draining and the rate limit (§3.1 steps 2–3): `/health`,
    /// `/ready`, `/metrics`.
    pub operational: bool,
    pub body: BodyKind,
    pub query: &'static [QuerySpec],
    pub success: Shape,
    /// The row's errors besides the general ones (§6 intro), as (status, code).
    pub errors: &'static [(u16, &'static str)],
}

impl Route {
    pub(crate) const fn new(
        method: Method,
        template: &'static str,
        operation_id: &'static str,
        op: Op,
    ) -> Route {
        Route {
            method,
            template,
            operation_id,
            op,
            summary: "",
            session: false,
            auth_exempt: false,
            operational: false,
            body: BodyKind::Empty,
            query: &[],
            success: Shape::NoContent,
            errors: &[],
        }
    }

    pub(crate) const fn about(mut self, summary: &'static str) -> Route {
        self.summary = summary;
        self
    }

    pub(crate) const fn session(mut self) -> Route {
        self.session = true;
        self
    }

    pub(crate) const fn public(mut self) -> Route {
        self.auth_exempt = true;
        self
    }

    pub(crate) const fn operational(mut self) -> Route {
        self.operational = true;
        self
    }

    pub(crate) const fn body(mut self, body: BodyKind) -> Route {
        self.body = body;
        self
    }

    pub(crate) const fn query(mut self, query: &'static [QuerySpec]) -> Route {
        self.query = query;
        self
    }

    pub(crate) const fn ok(mut self, success: Shape) -> Route {
        self.success = success;
        self
    }

    pub(crate) const fn errors(mut self, errors: &'static [(u16, &'static str)]) -> Route {
        self.errors = errors;
        self
    }

    /// An SSE stream endpoint (§7): `HEAD` is `405` there.
    pub fn is_sse(&self) -> bool {
        matches!(self.success, Shape::Events(_))
    }

    /// The name of the template's path parameter (`key`, `id` or `channel`), if any.
    pub fn param_name(&self) -> Option<&'static str> {
        segments(self.template).find_map(template_param)
    }

    /// Session endpoints may answer `410 session_gone` (§6 intro): those that need
    /// the session header and those that name a session in the path.
    pub fn is_session_endpoint(&self) -> bool {
        self.session || self.param_name() == Some("id")
    }
}

fn template_param(segment: &str) -> Option<&str> {
    segment.strip_prefix('{')?.strip_suffix('}')
}

/// The methods a path answers, for `Allow` (§2.4) on `405` and on plain `OPTIONS`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Allow {
    bits: u8,
}

impl Allow {
    const GET: u8 = 1;
    const HEAD: u8 = 2;
    const POST: u8 = 4;
    const DELETE: u8 = 8;
    const PATCH: u8 = 16;
    const NAMES: [(u8, &'static str); 5] = [
        (Self::GET, "GET"),
        (Self::HEAD, "HEAD"),
        (Self::POST, "POST"),
        (Self::DELETE, "DELETE"),
        (Self::PATCH, "PATCH"),
    ];

    fn add(&mut self, route: &Route) {
        self.bits |= match route.method {
            Method::Get if route.is_sse() => Self::GET,
            Method::Get => Self::GET | Self::HEAD,
            Method::Post => Self::POST,
            Method::Delete => Self::DELETE,
            Method::Patch => Self::PATCH,
        };
    }

    fn is_empty(self) -> bool {
        self.bits == 0
    }

    /// The method names in a fixed order, `OPTIONS` last (the server always
    /// answers it, §3.3).
    pub fn methods(self) -> impl Iterator<Item = &'static str> {
        Self::NAMES
            .into_iter()
            .filter(move |(bit, _)| self.bits & bit != 0)
            .map(|(_, name)| name)
            .chain(std::iter::once("OPTIONS"))
    }

    /// The `Allow` header value, e.g. `GET, HEAD, POST, DELETE, OPTIONS`.
    pub fn header_value(self) -> String {
        self.methods().collect::<Vec<_>>().join(", ")
    }
}

/// The result of routing one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteMatch {
    /// The route, and its decoded path parameter (`None` for templates without one).
    /// For `HEAD` this is the `GET` route; the server sends no body.
    Found {
        route: &'static Route,
        param: Option<String>,
    },
    /// `404 not_found`: no route has this path.
    NotFound,
    /// `405 method_not_allowed`: the path exists with other methods.
    MethodNotAllowed { allow: Allow },
    /// `400 bad_request`: the path parameter has a bad escape or is not UTF-8.
    BadPath(DecodeError),
}

/// Longest template, in segments (`/v1/locks/{key}/release`).
const MAX_SEGMENTS: usize = 4;

/// The raw segments of `raw_path`, or `None` when it has more than any template.
fn split(raw_path: &str) -> Option<([&str; MAX_SEGMENTS], usize)> {
    let mut out = [""; MAX_SEGMENTS];
    let mut n = 0;
    for seg in segments(raw_path) {
        *out.get_mut(n)? = seg;
        n += 1;
    }
    Some((out, n))
}

/// True when `route`'s template has the shape of the path: same number of
/// segments, and every literal equal to the decoded segment.
fn fits(route: &Route, decoded: &[Result<Cow<'_, str>, DecodeError>]) -> bool {
    let mut n = 0;
    for (i, t) in segments(route.template).enumerate() {
        n += 1;
        let Some(d) = decoded.get(i) else {
            return false;
        };
        let ok = match template_param(t) {
            // A parameter is never empty (keys, ids and channels have at least one
            // byte), so `/v1/sessions/` is the trailing-slash path, not an empty id.
            Some(_) => d.as_deref() != Ok(""),
            None => d.as_deref() == Ok(t),
        };
        if !ok {
            return false;
        }
    }
    n == decoded.len()
}

/// Routes a request. `method` is the request method as sent (case-sensitive, as
/// HTTP methods are); `raw_path` is the still-encoded path without the query.
///
/// `OPTIONS` is the server's (§3.3): passed here it is `MethodNotAllowed` on an
/// existing path, whose `allow` is what a plain `OPTIONS` answers; see also
/// [`allowed_methods`].
pub fn match_route(method: &str, raw_path: &str) -> RouteMatch {
    if !raw_path.starts_with('/') {
        return RouteMatch::NotFound;
    }
    let Some((raw, n)) = split(raw_path) else {
        return RouteMatch::NotFound;
    };
    let raw = &raw[..n];
    let mut decoded: [Result<Cow<'_, str>, DecodeError>; MAX_SEGMENTS] =
        [const { Ok(Cow::Borrowed("")) }; MAX_SEGMENTS];
    for (d, r) in decoded.iter_mut().zip(raw) {
        *d = decode_segment(r);
    }
    let decoded = &decoded[..n];
    let (wanted, is_head) = match method {
        "GET" => (Some(Method::Get), false),
        "HEAD" => (Some(Method::Get), true),
        "POST" => (Some(Method::Post), false),
        "DELETE" => (Some(Method::Delete), false),
        "PATCH" => (Some(Method::Patch), false),
        _ => (None, false),
    };
    let mut allow = Allow::default();
    let mut found = None;
    for route in ROUTES.iter().filter(|r| fits(r, decoded)) {
        allow.add(route);
        if Some(route.method) == wanted && !(is_head && route.is_sse()) {
            found = Some(route);
        }
    }
    let Some(route) = found else {
        return if allow.is_empty() {
            RouteMatch::NotFound
        } else {
            RouteMatch::MethodNotAllowed { allow }
        };
    };
    let param_at = segments(route.template).position(|t| template_param(t).is_some());
    let param = match param_at.and_then(|i| decoded.get(i)) {
        None => None,
        Some(Ok(p)) => Some(p.to_string()),
        Some(Err(e)) => return RouteMatch::BadPath(*e),
    };
    RouteMatch::Found { route, param }
}

/// The methods `raw_path` answers (for a plain `OPTIONS`), or `None` when no route
/// has that path (`404`).
pub fn allowed_methods(raw_path: &str) -> Option<Allow> {
    match match_route("OPTIONS", raw_path) {
        RouteMatch::MethodNotAllowed { allow } => Some(allow),
        _ => None,
    }
}

/// The template of the path `raw_path`, whatever the method, or `None` when no
/// route has that path. All routes of one path share their template; this is
/// the `path` label of HTTP metrics (http.md §9) for the responses that match
/// no route of the method (`405`, `OPTIONS`).
pub fn template_of(raw_path: &str) -> Option<&'static str> {
    if !raw_path.starts_with('/') {
        return None;
    }
    let (raw, n) = split(raw_path)?;
    let decoded: Vec<_> = raw[..n].iter().map(|r| decode_segment(r)).collect();
    ROUTES
        .iter()
        .find(|r| fits(r, &decoded))
        .map(|r| r.template)
}

/// The route of an operation (each operation has exactly one).
pub fn route_of(op: Op) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.op == op)
}

#[cfg(test)]
#[path = "route_tests.rs"]
mod tests;
