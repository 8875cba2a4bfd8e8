//! The application layer of the HTTP API, pure: a routed request becomes an
//! [`Action`] — a typed state [`Command`], the same one the TCP parser builds, or
//! one of the endpoints the server handles itself — and a state
//! [`Reply`](crate::protocol::reply::Reply) becomes an [`ApiResponse`] (status and
//! compact JSON) by [`to_response`] (in `outcome.rs`).
//!
//! The server runs the steps of http.md §3.1 in this order:
//!
//! 1. [`super::route::match_route`] (step 6: `404`/`405`, and `400` for a bad escape);
//! 2. [`target`] (step 7: the path parameter and the documented query parameters);
//! 3. [`session_header`] when `route.session` (step 8: `400`; `410` is the server's);
//! 4. [`super::body::parse`] (step 9);
//! 5. [`to_command`] (step 10), then `State::apply` and [`to_response`].
//!
//! Invariants: every `Command` built here satisfies the TCP parser's argument
//! rules (keys, patterns, channels, values, tokens and ranges are checked with the
//! validators of `protocol::command`); nothing here panics on client data.

use super::body::{BodyError, OptionsPatch, SessionOptions, ValidatedBody};
use super::path::Query;
use super::route::{Op, QueryParam, Route};
use crate::protocol::command::{
    Command, End, Key, MAX_KEY_BYTES, RwMode, Secs, is_valid_channel, is_valid_key,
    is_valid_pattern, signed,
};
use crate::state::fence::Token;
use serde::Serialize;
use std::fmt;

pub use super::outcome::to_response;

/// An HTTP response body the server sends as is: `204` when `body` is `None`,
/// otherwise `Content-Type: application/json` with this compact JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Option<String>,
}

/// An error response (http.md §4.4): `{"error":code,"detail":…}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    /// A stable code of the §4.4 table.
    pub code: &'static str,
    /// Free text, not part of the contract; omitted from the body when `None`.
    pub detail: Option<String>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str) -> ApiError {
        ApiError {
            status,
            code,
            detail: None,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> ApiError {
        self.detail = Some(detail.into());
        self
    }

    /// `400 bad_request` with a detail.
    pub fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::new(400, "bad_request").with_detail(detail)
    }

    /// `500 internal`: a server fault, never expected.
    pub fn internal(detail: impl Into<String>) -> ApiError {
        ApiError::new(500, "internal").with_detail(detail)
    }

    /// The response: this status and `{"error":…[,"detail":…]}`.
    pub fn to_response(&self) -> ApiResponse {
        #[derive(Serialize)]
        struct ErrorBody<'a> {
            error: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            detail: Option<&'a str>,
        }
        let body = ErrorBody {
            error: self.code,
            detail: self.detail.as_deref(),
        };
        // Serialising two strings cannot fail; the fallback keeps this total.
        let json = serde_json::to_string(&body)
            .unwrap_or_else(|_| format!("{{\"error\":\"{}\"}}", self.code));
        ApiResponse {
            status: self.status,
            body: Some(json),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.code)?;
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> ApiError {
        ApiError::bad_request(e.detail)
    }
}

/// A session id (http.md §5): 32 lowercase hex characters, kept as the number
/// they spell. `Display` gives the 32 characters back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u128);

impl SessionId {
    /// `Some` only for exactly 32 lowercase hex characters.
    pub fn parse(s: &[u8]) -> Option<SessionId> {
        // Same syntax as a token (protocol.md §6.1), so the token parser checks it.
        Token::parse(s).map(|t| SessionId((u128::from(t.fence) << 64) | u128::from(t.salt)))
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// The `X-Dflockd-Session` header name.
pub const SESSION_HEADER: &str = "X-Dflockd-Session";

/// Checks the `X-Dflockd-Session` header of a session endpoint (§5), given its
/// value (`None` when absent). Surrounding spaces and TABs are ignored.
///
/// * `Ok(id)`: well-formed; whether the session exists (`410`) is the server's check;
/// * `Err`: `400 bad_request`, missing or malformed.
pub fn session_header(value: Option<&[u8]>) -> Result<SessionId, ApiError> {
    let Some(v) = value else {
        return Err(ApiError::bad_request("X-Dflockd-Session header required"));
    };
    let v = v.trim_ascii();
    SessionId::parse(v).ok_or_else(|| {
        ApiError::bad_request("X-Dflockd-Session must be 32 lowercase hex characters")
    })
}

/// The path parameter and query parameters of a request, validated (§3.1 step 7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `{key}`: a valid key (protocol.md §3.1).
    pub key: Option<Key>,
    /// `{channel}`: a valid key without `*` or `>` (§3.5).
    pub channel: Option<Key>,
    /// `{id}`: a well-formed session id.
    pub session: Option<SessionId>,
    /// `?pattern=`: a valid pattern (§3.5).
    pub pattern: Option<Key>,
    /// `?group=`: absent or empty = no group.
    pub group: Option<Box<str>>,
    /// `?start=`, default 0.
    pub start: i64,
    /// `?stop=`, default -1.
    pub stop: i64,
}

impl Default for Target {
    fn default() -> Target {
        Target {
            key: None,
            channel: None,
            session: None,
            pattern: None,
            group: None,
            start: 0,
            stop: -1,
        }
    }
}

/// Validates the decoded path parameter of `route` (from
/// [`RouteMatch::Found`](super::route::RouteMatch::Found)) and reads the query
/// parameters the route documents; others are ignored.
///
/// * `Ok(target)`: all valid;
/// * `Err`: `400 bad_request` (invalid key, channel, session id, pattern or group;
///   a bad escape; a parameter given twice; a required one missing; a bad integer).
pub fn target(route: &Route, param: Option<&str>, query: &Query<'_>) -> Result<Target, ApiError> {
    let mut t = Target::default();
    match (route.param_name(), param) {
        (None, _) => {}
        (Some("id"), Some(id)) => {
            t.session = Some(
                SessionId::parse(id.as_bytes())
                    .ok_or_else(|| ApiError::bad_request("malformed session id"))?,
            );
        }
        (Some("channel"), Some(c)) if is_valid_channel(c) => t.channel = Some(c.into()),
        (Some("channel"), Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid channel: 1..=256 bytes without space, TAB, CR, LF, * or >",
            ));
        }
        (Some(_), Some(k)) if is_valid_key(k.as_bytes()) => t.key = Some(k.into()),
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid key: 1..=256 bytes without space, TAB, CR or LF",
            ));
        }
        (Some(name), None) => {
            return Err(ApiError::bad_request(format!(
                "path parameter {name} missing"
            )));
        }
    }
    for spec in route.query {
        let name = spec.param.name();
        let value = query
            .get(name)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let Some(value) = value else {
            if spec.required {
                return Err(ApiError::bad_request(format!(
                    "query parameter {name} is required"
                )));
            }
            continue;
        };
        match spec.param {
            QueryParam::Start | QueryParam::Stop => {
                let n = signed(value.as_bytes()).map_err(|_| {
                    ApiError::bad_request(format!("{name} must be a signed 64-bit integer"))
                })?;
                if spec.param == QueryParam::Start {
                    t.start = n;
                } else {
                    t.stop = n;
                }
            }
            QueryParam::Pattern if is_valid_pattern(&value) => t.pattern = Some(value.into()),
            QueryParam::Pattern => {
                return Err(ApiError::bad_request(
                    "invalid pattern: a key whose * and > are whole tokens, > last",
                ));
            }
            QueryParam::Group => t.group = group(&value)?,
        }
    }
    Ok(t)
}

/// A queue group (protocol.md §8.12): at most 256 bytes without space, TAB, CR or
/// LF; empty means no group. Unlike the TCP argument it is not trimmed: a query
/// value has no field separators to trim.
fn group(g: &str) -> Result<Option<Box<str>>, ApiError> {
    if g.is_empty() {
        return Ok(None);
    }
    if g.len() > MAX_KEY_BYTES || g.bytes().any(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n')) {
        return Err(ApiError::bad_request(
            "invalid group: 1..=256 bytes without space, TAB, CR or LF",
        ));
    }
    Ok(Some(g.into()))
}

/// What the server does for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Apply this command for the request's owner (the session on session
    /// endpoints, a one-off owner otherwise) and map the reply with [`to_response`].
    Command(Command),
    /// `POST /v1/rwlocks/{key}/wait`: the session's pending read **or** write
    /// enqueue on `key`, whichever exists (§6.5). The state keeps at most one
    /// enqueue per (session, key); the server looks its mode up and applies
    /// [`rw_wait`]`(key, timeout, mode)`.
    RwWait { key: Key, timeout: Secs },
    /// `GET /health`: [`health`].
    Health,
    /// `GET /ready`: [`ready`].
    Ready,
    /// `GET /metrics`: Prometheus text (§9).
    Metrics,
    /// `GET /v1/openapi.json`: [`super::openapi::document`].
    OpenApi,
    /// `POST /v1/sessions`: [`session_created`], or `503 max_sessions[_per_ip]`.
    CreateSession,
    /// `POST /v1/sessions/{id}/ping`: `204`, or `410`.
    PingSession(SessionId),
    /// `DELETE /v1/sessions/{id}`: the cleanup of §5, then `204`; or `410`.
    DeleteSession(SessionId),
    /// `PATCH /v1/sessions/{id}`: [`SessionOptions::apply`], then [`session_options`].
    PatchSession(SessionId, OptionsPatch),
    /// `GET /v1/sessions/{id}/events`: an SSE stream of the session's lease notices.
    SessionEvents(SessionId),
    /// An SSE stream (§7): a new owner (one session for the caps) that applies
    /// this subscription command — `Observe` (leader events), `Listen` (signals)
    /// or `Watch` — and streams what it receives.
    Subscribe(Command),
    /// `GET /v1/keys/{key}/who`: the `who` document; the server passes the state's
    /// JSON to [`to_response`] as `Reply::Text`.
    Who { key: Key },
    /// `GET /v1/keys/{key}/position`: the session's queue position; the state's
    /// `Reply::Int(n)` or `error_not_enqueued` go to [`to_response`].
    Position { key: Key },
}

/// The rw wait command for the mode of the session's pending read-write enqueue
/// on `key`. With none (`None`), either mode gets `error_not_enqueued` from the
/// state, as §6.5 requires; `Read` is used.
pub fn rw_wait(key: Key, timeout: Secs, pending: Option<RwMode>) -> Command {
    Command::RwWait {
        mode: pending.unwrap_or(RwMode::Read),
        key,
        timeout,
    }
}

/// A required input. Routes and bodies guarantee them; a miss is a table bug,
/// answered `400` rather than a panic.
fn need<T>(v: Option<T>, name: &str) -> Result<T, ApiError> {
    v.ok_or_else(|| ApiError::bad_request(format!("{name} is required")))
}

/// Builds the action for a request whose target and body passed [`target`] and
/// [`super::body::parse`] for the same route.
///
/// * `Ok(action)`;
/// * `Err`: `400` only when `target`/`body` do not belong to `route`.
pub fn to_command(route: &Route, target: Target, body: ValidatedBody) -> Result<Action, ApiError> {
    use Command as C;
    let t = target;
    let b = body;
    let key = || need(t.key.clone(), "key");
    let id = || need(t.session, "session id");
    let token = || need(b.token.clone(), "token");
    let timeout = || need(b.timeout, "timeout");
    let cmd = match route.op {
        Op::Health => return Ok(Action::Health),
        Op::Ready => return Ok(Action::Ready),
        Op::Metrics => return Ok(Action::Metrics),
        Op::OpenApi => return Ok(Action::OpenApi),
        Op::Stats => C::Stats,
        Op::CreateSession => return Ok(Action::CreateSession),
        Op::PingSession => return Ok(Action::PingSession(id()?)),
        Op::DeleteSession => return Ok(Action::DeleteSession(id()?)),
        Op::PatchSession => return Ok(Action::PatchSession(id()?, need(b.options, "options")?)),
        Op::SessionEvents => return Ok(Action::SessionEvents(id()?)),
        Op::Who => return Ok(Action::Who { key: key()? }),
        Op::Position => return Ok(Action::Position { key: key()? }),
        Op::AcquireLock => C::Lock {
            key: key()?,
            timeout: timeout()?,
            lease: b.lease,
        },
        Op::ReleaseLock => C::Release {
            key: key()?,
            token: token()?,
        },
        Op::RenewLock => C::Renew {
            key: key()?,
            token: token()?,
            lease: b.lease,
        },
        Op::EnqueueLock => C::Enqueue {
            key: key()?,
            lease: b.lease,
        },
        Op::WaitLock => C::Wait {
            key: key()?,
            timeout: timeout()?,
        },
        Op::AcquireSem => C::SemLock {
            key: key()?,
            timeout: timeout()?,
            limit: need(b.limit, "limit")?,
            lease: b.lease,
        },
        Op::ReleaseSem => C::SemRelease {
            key: key()?,
            token: token()?,
        },
        Op::RenewSem => C::SemRenew {
            key: key()?,
            token: token()?,
            lease: b.lease,
        },
        Op::EnqueueSem => C::SemEnqueue {
            key: key()?,
            limit: need(b.limit, "limit")?,
            lease: b.lease,
        },
        Op::WaitSem => C::SemWait {
            key: key()?,
            timeout: timeout()?,
        },
        Op::AcquireRw => C::RwLock {
            mode: need(b.mode, "mode")?,
            key: key()?,
            timeout: timeout()?,
            lease: b.lease,
        },
        // `rr` and `wr` are the same release, `rn` and `wn` the same renewal
        // (protocol.md §8.7), so the mode is immaterial; Write is used.
        Op::ReleaseRw => C::RwRelease {
            mode: RwMode::Write,
            key: key()?,
            token: token()?,
        },
        Op::RenewRw => C::RwRenew {
            mode: RwMode::Write,
            key: key()?,
            token: token()?,
            lease: b.lease,
        },
        Op::EnqueueRw => C::RwEnqueue {
            mode: need(b.mode, "mode")?,
            key: key()?,
            lease: b.lease,
        },
        Op::WaitRw => {
            return Ok(Action::RwWait {
                key: key()?,
                timeout: timeout()?,
            });
        }
        Op::Elect => C::Elect {
            key: key()?,
            timeout: timeout()?,
            lease: b.lease,
        },
        Op::Resign => C::Resign {
            key: key()?,
            token: token()?,
        },
        // Leaders renew with `n` (protocol.md §8.8).
        Op::RenewLeader => C::Renew {
            key: key()?,
            token: token()?,
            lease: b.lease,
        },
        Op::LeaderEvents => return Ok(Action::Subscribe(C::Observe { key: key()? })),
        Op::WaitBarrier => C::BWait {
            key: key()?,
            count: need(b.count, "count")?,
            timeout: timeout()?,
        },
        Op::GetCounter => C::Get { key: key()? },
        Op::IncrCounter => C::Incr {
            key: key()?,
            delta: need(b.delta, "delta")?,
        },
        Op::DecrCounter => C::Decr {
            key: key()?,
            delta: need(b.delta, "delta")?,
        },
        Op::SetCounter => C::CSet {
            key: key()?,
            value: need(b.counter_value, "value")?,
        },
        Op::GetKv => C::KGet { key: key()? },
        Op::SetKv => C::KSet {
            key: key()?,
            value: need(b.value, "value")?,
            ttl: b.ttl,
        },
        Op::DeleteKv => C::KDel { key: key()? },
        Op::CasKv => C::KCas {
            key: key()?,
            old: b.old.unwrap_or_default(),
            new: need(b.new, "new")?,
            ttl: b.ttl,
        },
        Op::ListLength => C::LLen { key: key()? },
        Op::ListRange => C::LRange {
            key: key()?,
            start: t.start,
            stop: t.stop,
        },
        Op::LPush | Op::RPush => C::Push {
            end: if route.op == Op::LPush {
                End::Left
            } else {
                End::Right
            },
            key: key()?,
            value: need(b.value, "value")?,
        },
        Op::LPop | Op::RPop => C::Pop {
            end: if route.op == Op::LPop {
                End::Left
            } else {
                End::Right
            },
            key: key()?,
        },
        Op::BLPop | Op::BRPop => C::BPop {
            end: if route.op == Op::BLPop {
                End::Left
            } else {
                End::Right
            },
            key: key()?,
            timeout: timeout()?,
        },
        Op::PublishSignal => C::Signal {
            channel: need(t.channel, "channel")?,
            payload: need(b.payload, "payload")?,
        },
        Op::SignalEvents => {
            return Ok(Action::Subscribe(C::Listen {
                pattern: need(t.pattern, "pattern")?,
                group: t.group,
            }));
        }
        Op::WatchEvents => {
            return Ok(Action::Subscribe(C::Watch {
                pattern: need(t.pattern, "pattern")?,
            }));
        }
    };
    Ok(Action::Command(cmd))
}

/// Serialises `body` as compact JSON with this status (member order = field order).
pub(crate) fn json<T: Serialize>(status: u16, body: &T) -> ApiResponse {
    match serde_json::to_string(body) {
        Ok(s) => ApiResponse {
            status,
            body: Some(s),
        },
        Err(e) => ApiError::internal(e.to_string()).to_response(),
    }
}

#[derive(Serialize)]
struct StatusBody {
    status: &'static str,
}

/// `GET /health`: `200 {"status":"ok"}`, also while draining.
pub fn health() -> ApiResponse {
    json(200, &StatusBody { status: "ok" })
}

/// `GET /ready`: `200 {"status":"ok"}`, or `503 {"status":"draining"}`.
pub fn ready(draining: bool) -> ApiResponse {
    if draining {
        json(503, &StatusBody { status: "draining" })
    } else {
        health()
    }
}

/// `POST /v1/sessions`: `200 {"session_id":…,"idle_timeout_s":…}`.
pub fn session_created(id: SessionId, idle_timeout_s: u64) -> ApiResponse {
    #[derive(Serialize)]
    struct Created {
        session_id: String,
        idle_timeout_s: u64,
    }
    json(
        200,
        &Created {
            session_id: id.to_string(),
            idle_timeout_s,
        },
    )
}

/// `PATCH /v1/sessions/{id}`: `200 {"options":{…all three…}}`.
pub fn session_options(options: &SessionOptions) -> ApiResponse {
    #[derive(Serialize)]
    struct Options<'a> {
        options: &'a SessionOptions,
    }
    json(200, &Options { options })
}

/// `204 No Content`.
pub fn no_content() -> ApiResponse {
    ApiResponse {
        status: 204,
        body: None,
    }
}

#[cfg(test)]
#[path = "api_tests.rs"]
mod tests;
