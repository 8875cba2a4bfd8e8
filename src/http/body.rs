//! JSON request bodies (http.md §4.2): one serde pass over the whole body into
//! [`RawBody`], then the checks of the route's [`BodyKind`] (which members it
//! accepts and requires) and the ranges and string rules of §4.2, giving a
//! [`ValidatedBody`] of typed values.
//!
//! Invariants: a body is accepted only if it is empty where the route allows
//! that, or exactly one JSON object (trailing bytes, other JSON types, unknown or
//! duplicate members, wrong types, numbers with a fraction or exponent and
//! out-of-range values are all refused); `null` counts as omitted. Every value in
//! a `ValidatedBody` is already within the TCP protocol's ranges, checked with the
//! TCP validators of `protocol::command`, so the command built from it needs no
//! further checks. Errors are `400 bad_request` with a short `detail`.

use super::route::{BodyKind, Field};
use crate::protocol::command::{
    CommandLimits, MAX_LIMIT, MAX_SECS, RwMode, Secs, TokenArg, payload, value,
};
use crate::state::fence::Token;
use crate::state::options::{OptName, Options};
use serde::Deserialize;
use std::fmt;

/// A body that breaks §4.2; always `400 bad_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError {
    /// Short human-readable text for the error's `detail`.
    pub detail: String,
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for BodyError {}

/// Longest `detail` we echo: serde's messages can quote client input.
const MAX_DETAIL_BYTES: usize = 160;

fn err(detail: impl Into<String>) -> BodyError {
    let mut detail = detail.into();
    if detail.len() > MAX_DETAIL_BYTES {
        let mut cut = MAX_DETAIL_BYTES;
        while !detail.is_char_boundary(cut) {
            cut -= 1;
        }
        detail.truncate(cut);
        detail.push('…');
    }
    BodyError { detail }
}

/// Every member of §4.2, each optional (`null` = omitted). `value` is kept as JSON
/// because it is an integer on counters and a string on KV and lists.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBody {
    acquire_timeout_s: Option<u64>,
    timeout_s: Option<u64>,
    lease_ttl_s: Option<u64>,
    limit: Option<u64>,
    count: Option<u64>,
    mode: Option<String>,
    token: Option<String>,
    delta: Option<i64>,
    value: Option<serde_json::Value>,
    old: Option<String>,
    new: Option<String>,
    payload: Option<String>,
    ttl_s: Option<u64>,
    options: Option<OptionsPatch>,
}

impl RawBody {
    /// Whether member `f` was given (and not `null`).
    fn has(&self, f: Field) -> bool {
        match f {
            Field::AcquireTimeoutS => self.acquire_timeout_s.is_some(),
            Field::TimeoutS => self.timeout_s.is_some(),
            Field::LeaseTtlS => self.lease_ttl_s.is_some(),
            Field::Limit => self.limit.is_some(),
            Field::Count => self.count.is_some(),
            Field::Mode => self.mode.is_some(),
            Field::Token => self.token.is_some(),
            Field::Delta => self.delta.is_some(),
            Field::CounterValue | Field::Value => self.value.is_some(),
            Field::Old => self.old.is_some(),
            Field::New => self.new.is_some(),
            Field::Payload => self.payload.is_some(),
            Field::TtlS => self.ttl_s.is_some(),
            Field::Options => self.options.is_some(),
        }
    }
}

/// Every member that a body can carry, for the "not accepted here" check.
const ALL_FIELDS: [Field; 14] = [
    Field::AcquireTimeoutS,
    Field::TimeoutS,
    Field::LeaseTtlS,
    Field::Limit,
    Field::Count,
    Field::Mode,
    Field::Token,
    Field::Delta,
    Field::Value,
    Field::Old,
    Field::New,
    Field::Payload,
    Field::TtlS,
    Field::Options,
];

/// The `options` member of `PATCH /v1/sessions/{id}` (§6.2a): the options to
/// change; `None` leaves one as it is. An unknown option is refused.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionsPatch {
    pub queue_position: Option<bool>,
    pub lease_notices: Option<bool>,
    pub deadlock: Option<bool>,
}

impl OptionsPatch {
    /// The patch as (option, new value) pairs for the state.
    pub fn changes(&self) -> [(OptName, Option<bool>); 3] {
        [
            (OptName::QueuePosition, self.queue_position),
            (OptName::LeaseNotices, self.lease_notices),
            (OptName::Deadlock, self.deadlock),
        ]
    }
}

/// A session's options (protocol.md §8.15); all off on a new session.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SessionOptions {
    pub queue_position: bool,
    pub lease_notices: bool,
    pub deadlock: bool,
}

impl From<Options> for SessionOptions {
    fn from(o: Options) -> Self {
        SessionOptions {
            queue_position: o.get(OptName::QueuePosition),
            lease_notices: o.get(OptName::LeaseNotices),
            deadlock: o.get(OptName::Deadlock),
        }
    }
}

impl SessionOptions {
    /// Applies a PATCH: given options are set, the others kept.
    pub fn apply(&mut self, patch: &OptionsPatch) {
        let set = |field: &mut bool, v: Option<bool>| *field = v.unwrap_or(*field);
        set(&mut self.queue_position, patch.queue_position);
        set(&mut self.lease_notices, patch.lease_notices);
        set(&mut self.deadlock, patch.deadlock);
    }
}

/// A body that passed every check of its route. A member the route does not
/// accept is always `None`; a member it requires is always `Some`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ValidatedBody {
    /// `acquire_timeout_s` or `timeout_s` (no route takes both): 0..=9223372036.
    pub timeout: Option<Secs>,
    /// `lease_ttl_s`, 1..=9223372036; omitted, `null` or 0 are `None` (the default lease).
    pub lease: Option<Secs>,
    /// `limit` (semaphores), 1..=1048576.
    pub limit: Option<u32>,
    /// `count` (barriers), 1..=1048576.
    pub count: Option<u32>,
    pub mode: Option<RwMode>,
    /// `token`: exactly 32 lowercase hex characters.
    pub token: Option<TokenArg>,
    pub delta: Option<i64>,
    /// `value` on counters.
    pub counter_value: Option<i64>,
    /// `value` on KV and lists: a value of §3.4.
    pub value: Option<Box<str>>,
    /// `kcas` expected value; omitted, `null` and `""` all mean "must not exist".
    pub old: Option<Box<str>>,
    pub new: Option<Box<str>>,
    pub payload: Option<Box<str>>,
    /// `ttl_s`, 0..=9223372036; 0 (also when omitted) means no expiry.
    pub ttl: Secs,
    pub options: Option<OptionsPatch>,
}

/// Parses and checks a request body for a route whose body is `kind`.
///
/// * `Ok(body)`: acceptable; members the route does not take are `None`.
/// * `Err(e)`: `400 bad_request` with `e.detail`.
pub fn parse(
    kind: BodyKind,
    bytes: &[u8],
    limits: &CommandLimits,
) -> Result<ValidatedBody, BodyError> {
    let fields = match kind {
        BodyKind::Empty if bytes.is_empty() => return Ok(ValidatedBody::default()),
        BodyKind::Empty => return Err(err("this endpoint takes no request body")),
        BodyKind::EmptyOrObject(_) if bytes.is_empty() => return Ok(ValidatedBody::default()),
        BodyKind::Object(_) if bytes.is_empty() => {
            return Err(err("a JSON object body is required"));
        }
        BodyKind::EmptyOrObject(f) | BodyKind::Object(f) => f,
    };
    // serde's derived struct visitor also takes a JSON array (fields by position);
    // the body must be an object.
    let first = bytes
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'));
    if first != Some(&b'{') {
        return Err(err("the body must be one JSON object"));
    }
    let raw: RawBody =
        serde_json::from_slice(bytes).map_err(|e| err(format!("invalid JSON body: {e}")))?;
    for f in ALL_FIELDS {
        let listed = fields.iter().any(|s| s.field.name() == f.name());
        if raw.has(f) && !listed {
            return Err(err(format!("member {} is not accepted here", f.name())));
        }
    }
    for spec in fields.iter().filter(|s| s.required) {
        if !raw.has(spec.field) {
            return Err(err(format!("member {} is required", spec.field.name())));
        }
    }
    let counter_value = fields.iter().any(|s| s.field == Field::CounterValue);
    check(raw, counter_value, limits.max_value_bytes)
}

/// Seconds: 0..=9223372036.
fn secs(v: Option<u64>, name: &str) -> Result<Option<Secs>, BodyError> {
    match v {
        Some(s) if s > MAX_SECS => Err(err(format!("{name} must be at most {MAX_SECS}"))),
        other => Ok(other),
    }
}

/// A limit or count: 1..=1048576.
fn limit(v: Option<u64>, name: &str) -> Result<Option<u32>, BodyError> {
    v.map(|n| {
        u32::try_from(n)
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| err(format!("{name} must be 1 ..= {MAX_LIMIT}")))
    })
    .transpose()
}

/// A string member with the value rules of protocol.md §3.4.
fn text(
    v: Option<String>,
    name: &str,
    max: usize,
    empty_ok: bool,
) -> Result<Option<Box<str>>, BodyError> {
    v.map(|s| {
        value(s.as_bytes(), max, empty_ok)
            .map(Box::from)
            .map_err(|_| {
                err(format!(
                    "{name} must be 1 ..= {max} bytes without TAB, CR or LF"
                ))
            })
    })
    .transpose()
}

/// The range and string checks of §4.2, member by member.
fn check(raw: RawBody, counter_value: bool, max: usize) -> Result<ValidatedBody, BodyError> {
    let mode = match raw.mode.as_deref() {
        None => None,
        Some("read") => Some(RwMode::Read),
        Some("write") => Some(RwMode::Write),
        Some(_) => return Err(err("mode must be \"read\" or \"write\"")),
    };
    let token = match raw.token {
        None => None,
        // The same syntax check the state applies to tokens it issued.
        Some(t) if Token::parse(t.as_bytes()).is_some() => Some(t.into_bytes().into()),
        Some(_) => return Err(err("token must be 32 lowercase hex characters")),
    };
    let (counter, value) = match raw.value {
        None => (None, None),
        Some(serde_json::Value::Number(n)) if counter_value => match n.as_i64() {
            Some(i) => (Some(i), None),
            None => return Err(err("value must be a signed 64-bit integer")),
        },
        Some(_) if counter_value => return Err(err("value must be an integer")),
        Some(serde_json::Value::String(s)) => (None, text(Some(s), "value", max, false)?),
        Some(_) => return Err(err("value must be a string")),
    };
    let payload = match raw.payload {
        None => None,
        Some(p) => Some(payload(p.as_bytes(), max).map(Box::from).map_err(|_| {
            err(format!(
                "payload must be 1 ..= {max} bytes without TAB, CR or LF, not only spaces"
            ))
        })?),
    };
    let timeout = match (raw.acquire_timeout_s, raw.timeout_s) {
        (Some(t), _) => secs(Some(t), "acquire_timeout_s")?,
        (None, t) => secs(t, "timeout_s")?,
    };
    Ok(ValidatedBody {
        timeout,
        // 0 means the default lease (§4.2); the TCP lease field cannot be 0.
        lease: secs(raw.lease_ttl_s, "lease_ttl_s")?.filter(|&l| l > 0),
        limit: limit(raw.limit, "limit")?,
        count: limit(raw.count, "count")?,
        mode,
        token,
        delta: raw.delta,
        counter_value: counter,
        value,
        old: text(raw.old, "old", max, true)?,
        new: text(raw.new, "new", max, false)?,
        payload,
        ttl: secs(raw.ttl_s, "ttl_s")?.unwrap_or(0),
        options: raw.options,
    })
}

#[cfg(test)]
#[path = "body_tests.rs"]
mod tests;
