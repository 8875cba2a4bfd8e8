//! A state [`Reply`] to an HTTP status and JSON body (http.md §4.3, §4.4): the
//! route's success shape decides the JSON of the non-error words, and the error
//! table of §4.4 (with the meaning TCP `error` has for each operation) decides
//! the rest.
//!
//! Invariants: bodies are compact JSON written by serde_json, with members in
//! the order the spec shows them (serde serialises struct fields in order); a
//! grant never shows a fence field (the fence is the token's first 16 hex
//! characters); a reply the operation cannot produce is `500 internal`, never a
//! guess.

use super::api::{ApiError, ApiResponse, json, no_content};
use super::route::{Op, Shape, route_of};
use crate::protocol::reply::{GrantWord, Reply, Status};
use serde::Serialize;

#[derive(Serialize)]
struct StatusBody {
    status: &'static str,
}

#[derive(Serialize)]
struct Granted {
    status: &'static str,
    token: String,
    lease_ttl_s: u64,
}

#[derive(Serialize)]
struct Remaining {
    remaining_s: u64,
}

#[derive(Serialize)]
struct CounterValue {
    value: i64,
}

#[derive(Serialize)]
struct TextValue<'a> {
    status: &'static str,
    value: &'a str,
}

#[derive(Serialize)]
struct Length {
    length: i64,
}

#[derive(Serialize)]
struct Values {
    values: Vec<String>,
}

#[derive(Serialize)]
struct Delivered {
    delivered: i64,
}

#[derive(Serialize)]
struct QueuedAt {
    status: &'static str,
    position: u32,
}

#[derive(Serialize)]
struct Position {
    position: i64,
}

/// What TCP's bare `error` means for an operation whose request passed the HTTP
/// checks (so it is never a syntax error there).
fn plain_error(op: Op) -> ApiError {
    match op {
        // Release, renew or resign of a token that is not a current holder.
        Op::ReleaseLock
        | Op::ReleaseSem
        | Op::ReleaseRw
        | Op::Resign
        | Op::RenewLock
        | Op::RenewSem
        | Op::RenewRw
        | Op::RenewLeader => ApiError::new(404, "not_held"),
        Op::IncrCounter | Op::DecrCounter => ApiError::new(409, "overflow"),
        // A grant that needs a fence ceiling that cannot be persisted (protocol.md §6.2).
        Op::AcquireLock
        | Op::AcquireSem
        | Op::AcquireRw
        | Op::Elect
        | Op::EnqueueLock
        | Op::EnqueueSem
        | Op::EnqueueRw => ApiError::new(503, "fence_persistence"),
        _ => ApiError::bad_request("refused by the server"),
    }
}

/// The §4.4 error for a status word that is not a success.
fn status_error(op: Op, s: Status) -> ApiError {
    match s {
        Status::Error => plain_error(op),
        Status::ErrorMaxLocks => ApiError::new(503, "max_locks"),
        Status::ErrorMaxKeys => ApiError::new(503, "max_keys"),
        Status::ErrorMaxWaiters => ApiError::new(503, "max_waiters"),
        Status::ErrorMaxMemory => ApiError::new(503, "max_memory"),
        Status::ErrorLimitMismatch => ApiError::new(409, "limit_mismatch"),
        Status::ErrorTypeMismatch => ApiError::new(409, "type_mismatch"),
        Status::ErrorNotEnqueued => ApiError::new(409, "not_enqueued"),
        Status::ErrorAlreadyEnqueued => ApiError::new(409, "already_enqueued"),
        Status::ErrorLeaseExpired => ApiError::new(409, "lease_expired"),
        Status::ErrorListFull => ApiError::new(409, "list_full"),
        Status::ErrorBarrierCountMismatch => ApiError::new(409, "barrier_count_mismatch"),
        Status::ErrorDraining => ApiError::new(503, "draining"),
        Status::ErrorDeadlock => ApiError::new(409, "deadlock"),
        // HTTP authenticates before routing (§3.2); a state refusal of this kind
        // still means the caller is not authorised.
        Status::ErrorAuth => ApiError::new(401, "unauthorized"),
        // An SSE stream holds one subscription, so the per-owner cap is never
        // reached over HTTP; §4.4 has no code for it.
        Status::ErrorMaxSubscriptions => ApiError::internal("error_max_subscriptions"),
        Status::Ok | Status::Queued | Status::Timeout | Status::Nil | Status::CasConflict => {
            unexpected(op, s.word())
        }
    }
}

fn unexpected(op: Op, what: &str) -> ApiError {
    ApiError::internal(format!("unexpected reply {what} for {op:?}"))
}

/// Maps the state's reply to `op`'s command to the HTTP response (§4.3, §4.4).
///
/// `200` with the route's JSON shape, `204` for a bare `ok` where the route
/// answers `204`, an error response for every `error*` word, and `500 internal`
/// for a reply the operation cannot produce.
pub fn to_response(op: Op, reply: &Reply) -> ApiResponse {
    let shape = route_of(op).map_or(Shape::NoContent, |r| r.success);
    let result = match reply {
        Reply::Status(s) => status_response(op, shape, *s),
        Reply::Grant {
            word,
            token,
            lease_s,
            ..
        } => match (shape, word) {
            (Shape::Acquire, GrantWord::Ok) | (Shape::Enqueue, GrantWord::Acquired) => Ok(json(
                200,
                &Granted {
                    status: match word {
                        GrantWord::Ok => "ok",
                        GrantWord::Acquired => "acquired",
                    },
                    token: token.to_string(),
                    lease_ttl_s: *lease_s,
                },
            )),
            _ => Err(unexpected(op, "grant")),
        },
        Reply::Lease { lease_s, .. } if shape == Shape::Renew => Ok(json(
            200,
            &Remaining {
                remaining_s: *lease_s,
            },
        )),
        Reply::Int(n) => match shape {
            Shape::Counter => Ok(json(200, &CounterValue { value: *n })),
            Shape::Length => Ok(json(200, &Length { length: *n })),
            Shape::Delivered => Ok(json(200, &Delivered { delivered: *n })),
            Shape::Position => Ok(json(200, &Position { position: *n })),
            _ => Err(unexpected(op, "integer")),
        },
        Reply::Text(t) => match shape {
            Shape::Value => Ok(json(
                200,
                &TextValue {
                    status: "ok",
                    value: t,
                },
            )),
            // The state writes `lrange` as a JSON array of strings.
            Shape::Values => serde_json::from_str::<Vec<String>>(t)
                .map(|values| json(200, &Values { values }))
                .map_err(|e| ApiError::internal(format!("lrange reply: {e}"))),
            // Documents the state renders as one JSON object (protocol.md §8.15, §10).
            Shape::Stats | Shape::Who => Ok(ApiResponse {
                status: 200,
                body: Some(t.to_string()),
            }),
            _ => Err(unexpected(op, "text")),
        },
        Reply::QueuedAt(position) if shape == Shape::Enqueue => Ok(json(
            200,
            &QueuedAt {
                status: "queued",
                position: *position,
            },
        )),
        Reply::QueuedAt(_) => Err(unexpected(op, "queued position")),
        Reply::Lease { .. } => Err(unexpected(op, "lease")),
        Reply::Dread(_) => Err(unexpected(op, "dreadlock reply")),
    };
    result.unwrap_or_else(|e| e.to_response())
}

/// The response for a reply that is one status word.
fn status_response(op: Op, shape: Shape, s: Status) -> Result<ApiResponse, ApiError> {
    let word = |status| Ok(json(200, &StatusBody { status }));
    match (s, shape) {
        (Status::Ok, Shape::NoContent) => Ok(no_content()),
        (Status::Ok, Shape::Barrier | Shape::Cas) => word("ok"),
        (Status::Timeout, Shape::Acquire | Shape::Barrier) => word("timeout"),
        (Status::Queued, Shape::Enqueue) => word("queued"),
        (Status::Nil, Shape::Value) => word("nil"),
        (Status::CasConflict, Shape::Cas) => word("cas_conflict"),
        (Status::Ok | Status::Queued | Status::Timeout | Status::Nil | Status::CasConflict, _) => {
            Err(unexpected(op, s.word()))
        }
        _ => Err(status_error(op, s)),
    }
}

#[cfg(test)]
#[path = "outcome_tests.rs"]
mod tests;
