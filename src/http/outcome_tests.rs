//! Unit tests of [`super`] (replies to responses): every reply mapping of
//! http.md §4.3 and §4.4.

use super::*;
use crate::http::api::{
    ApiResponse, SessionId, health, no_content, ready, session_created, session_options,
};
use crate::http::body::SessionOptions;
use crate::http::route::ROUTES;
use crate::state::fence::Token as StateToken;

const TOKEN: &str = "18ea9db47e590001d433357e6ef5d88b";
const SID: &str = "3f0c8d2a9b7e41c6a5d4e3f2b1a09876";

fn sid() -> SessionId {
    SessionId::parse(SID.as_bytes()).unwrap()
}

fn resp(op: Op, reply: Reply) -> (u16, Option<String>) {
    let r = to_response(op, &reply);
    (r.status, r.body)
}

fn j(status: u16, body: &str) -> (u16, Option<String>) {
    (status, Some(body.to_string()))
}

fn err(status: u16, code: &str) -> (u16, Option<String>) {
    j(status, &format!(r#"{{"error":"{code}"}}"#))
}

fn grant(word: GrantWord) -> Reply {
    Reply::Grant {
        word,
        token: StateToken::parse(TOKEN.as_bytes()).unwrap(),
        lease_s: 60,
        with_fence: true,
    }
}

#[test]
fn grants_and_outcomes() {
    let ok = j(
        200,
        &format!(r#"{{"status":"ok","token":"{TOKEN}","lease_ttl_s":60}}"#),
    );
    for op in [
        Op::AcquireLock,
        Op::WaitLock,
        Op::AcquireSem,
        Op::WaitSem,
        Op::AcquireRw,
        Op::WaitRw,
        Op::Elect,
    ] {
        assert_eq!(resp(op, grant(GrantWord::Ok)), ok, "{op:?}");
        assert_eq!(
            resp(op, Status::Timeout.into()),
            j(200, r#"{"status":"timeout"}"#)
        );
    }
    let acquired = j(
        200,
        &format!(r#"{{"status":"acquired","token":"{TOKEN}","lease_ttl_s":60}}"#),
    );
    for op in [Op::EnqueueLock, Op::EnqueueSem, Op::EnqueueRw] {
        assert_eq!(resp(op, grant(GrantWord::Acquired)), acquired);
        assert_eq!(
            resp(op, Status::Queued.into()),
            j(200, r#"{"status":"queued"}"#)
        );
    }
    for op in [Op::RenewLock, Op::RenewSem, Op::RenewRw, Op::RenewLeader] {
        let r = Reply::Lease {
            lease_s: 33,
            fence: Some(7),
        };
        assert_eq!(resp(op, r), j(200, r#"{"remaining_s":33}"#));
    }
    for op in [
        Op::ReleaseLock,
        Op::ReleaseSem,
        Op::ReleaseRw,
        Op::Resign,
        Op::SetCounter,
        Op::SetKv,
        Op::DeleteKv,
    ] {
        assert_eq!(resp(op, Reply::OK), (204, None), "{op:?}");
    }
    assert_eq!(
        resp(Op::WaitBarrier, Reply::OK),
        j(200, r#"{"status":"ok"}"#)
    );
    assert_eq!(
        resp(Op::WaitBarrier, Status::Timeout.into()),
        j(200, r#"{"status":"timeout"}"#)
    );
}

#[test]
fn data_replies() {
    assert_eq!(
        resp(Op::GetCounter, Reply::Int(0)),
        j(200, r#"{"value":0}"#)
    );
    assert_eq!(
        resp(Op::IncrCounter, Reply::Int(i64::MIN)),
        j(200, r#"{"value":-9223372036854775808}"#)
    );
    assert_eq!(
        resp(Op::DecrCounter, Reply::Int(-8)),
        j(200, r#"{"value":-8}"#)
    );
    let v = Reply::Text("hello \"world\"\u{1}".into());
    assert_eq!(
        resp(Op::GetKv, v.clone()),
        j(200, r#"{"status":"ok","value":"hello \"world\"\u0001"}"#)
    );
    assert_eq!(
        resp(Op::GetKv, Status::Nil.into()),
        j(200, r#"{"status":"nil"}"#)
    );
    for op in [Op::LPop, Op::RPop, Op::BLPop, Op::BRPop] {
        assert_eq!(
            resp(op, Reply::Text("urgent".into())),
            j(200, r#"{"status":"ok","value":"urgent"}"#)
        );
        assert_eq!(resp(op, Status::Nil.into()), j(200, r#"{"status":"nil"}"#));
    }
    assert_eq!(resp(Op::CasKv, Reply::OK), j(200, r#"{"status":"ok"}"#));
    assert_eq!(
        resp(Op::CasKv, Status::CasConflict.into()),
        j(200, r#"{"status":"cas_conflict"}"#)
    );
    assert_eq!(
        resp(Op::ListLength, Reply::Int(3)),
        j(200, r#"{"length":3}"#)
    );
    // A push handed to a blocked popper: the state answers `ok 0`.
    assert_eq!(resp(Op::RPush, Reply::Int(0)), j(200, r#"{"length":0}"#));
    assert_eq!(resp(Op::LPush, Reply::Int(2)), j(200, r#"{"length":2}"#));
    assert_eq!(
        resp(Op::ListRange, Reply::Text(r#"["urgent","build 1"]"#.into())),
        j(200, r#"{"values":["urgent","build 1"]}"#)
    );
    assert_eq!(
        resp(Op::ListRange, Reply::Text("[]".into())),
        j(200, r#"{"values":[]}"#)
    );
    assert_eq!(resp(Op::ListRange, Reply::Text("nope".into())).0, 500);
    assert_eq!(
        resp(Op::PublishSignal, Reply::Int(2)),
        j(200, r#"{"delivered":2}"#)
    );
    assert_eq!(
        resp(Op::EnqueueLock, Reply::QueuedAt(3)),
        j(200, r#"{"status":"queued","position":3}"#)
    );
    assert_eq!(resp(Op::AcquireLock, Reply::QueuedAt(3)).0, 500);
    assert_eq!(
        resp(Op::Position, Reply::Int(6)),
        j(200, r#"{"position":6}"#)
    );
    assert_eq!(
        resp(Op::Position, Status::ErrorNotEnqueued.into()),
        err(409, "not_enqueued")
    );
    let doc = r#"{"connections":1,"locks":[]}"#;
    assert_eq!(resp(Op::Stats, Reply::Text(doc.into())), j(200, doc));
    assert_eq!(resp(Op::Who, Reply::Text(doc.into())), j(200, doc));
}

#[test]
fn error_words() {
    let table = [
        (Status::ErrorMaxLocks, 503, "max_locks"),
        (Status::ErrorMaxKeys, 503, "max_keys"),
        (Status::ErrorMaxWaiters, 503, "max_waiters"),
        (Status::ErrorMaxMemory, 503, "max_memory"),
        (Status::ErrorLimitMismatch, 409, "limit_mismatch"),
        (Status::ErrorTypeMismatch, 409, "type_mismatch"),
        (Status::ErrorNotEnqueued, 409, "not_enqueued"),
        (Status::ErrorAlreadyEnqueued, 409, "already_enqueued"),
        (Status::ErrorLeaseExpired, 409, "lease_expired"),
        (Status::ErrorListFull, 409, "list_full"),
        (
            Status::ErrorBarrierCountMismatch,
            409,
            "barrier_count_mismatch",
        ),
        (Status::ErrorDraining, 503, "draining"),
        (Status::ErrorAuth, 401, "unauthorized"),
    ];
    for route in ROUTES.iter() {
        for (s, status, code) in table {
            assert_eq!(
                resp(route.op, s.into()),
                err(status, code),
                "{:?} {s:?}",
                route.op
            );
        }
        assert_eq!(resp(route.op, Status::ErrorMaxSubscriptions.into()).0, 500);
    }
    // TCP's bare `error` by operation.
    for op in [
        Op::ReleaseLock,
        Op::RenewLock,
        Op::ReleaseSem,
        Op::RenewSem,
        Op::ReleaseRw,
        Op::RenewRw,
        Op::Resign,
        Op::RenewLeader,
    ] {
        assert_eq!(resp(op, Reply::ERROR), err(404, "not_held"), "{op:?}");
    }
    for op in [Op::IncrCounter, Op::DecrCounter] {
        assert_eq!(resp(op, Reply::ERROR), err(409, "overflow"));
    }
    for op in [
        Op::AcquireLock,
        Op::AcquireSem,
        Op::AcquireRw,
        Op::Elect,
        Op::EnqueueLock,
        Op::EnqueueSem,
        Op::EnqueueRw,
    ] {
        assert_eq!(
            resp(op, Reply::ERROR),
            err(503, "fence_persistence"),
            "{op:?}"
        );
    }
    for op in [Op::WaitBarrier, Op::PublishSignal, Op::WaitLock] {
        let (status, body) = resp(op, Reply::ERROR);
        assert_eq!(status, 400);
        assert!(
            body.unwrap()
                .starts_with(r#"{"error":"bad_request","detail":"#)
        );
    }
}

#[test]
fn impossible_replies_are_internal() {
    assert_eq!(resp(Op::AcquireLock, Reply::OK).0, 500);
    assert_eq!(resp(Op::AcquireLock, grant(GrantWord::Acquired)).0, 500);
    assert_eq!(resp(Op::EnqueueLock, grant(GrantWord::Ok)).0, 500);
    assert_eq!(resp(Op::ReleaseLock, Reply::Int(1)).0, 500);
    assert_eq!(resp(Op::GetKv, Status::Timeout.into()).0, 500);
    assert_eq!(
        resp(
            Op::SetKv,
            Reply::Lease {
                lease_s: 1,
                fence: None
            }
        )
        .0,
        500
    );
    let (status, body) = resp(
        Op::Health,
        Reply::Dread(crate::protocol::reply::DreadReply::Locked),
    );
    assert_eq!(status, 500);
    assert!(
        body.unwrap()
            .starts_with(r#"{"error":"internal","detail":"#)
    );
}

#[test]
fn builtin_bodies() {
    assert_eq!(
        health(),
        ApiResponse {
            status: 200,
            body: Some(r#"{"status":"ok"}"#.into())
        }
    );
    assert_eq!(ready(false), health());
    assert_eq!(
        ready(true),
        ApiResponse {
            status: 503,
            body: Some(r#"{"status":"draining"}"#.into())
        }
    );
    assert_eq!(
        session_created(sid(), 20).body.as_deref(),
        Some(r#"{"session_id":"3f0c8d2a9b7e41c6a5d4e3f2b1a09876","idle_timeout_s":20}"#)
    );
    let o = SessionOptions {
        queue_position: true,
        lease_notices: false,
        deadlock: true,
    };
    assert_eq!(
        session_options(&o).body.as_deref(),
        Some(r#"{"options":{"queue_position":true,"lease_notices":false,"deadlock":true}}"#)
    );
    assert_eq!(
        no_content(),
        ApiResponse {
            status: 204,
            body: None
        }
    );
    let e = ApiError::bad_request("X-Dflockd-Session header required").to_response();
    assert_eq!(
        e.body.as_deref(),
        Some(r#"{"error":"bad_request","detail":"X-Dflockd-Session header required"}"#)
    );
    assert_eq!(
        ApiError::new(404, "not_held").to_response().body.as_deref(),
        Some(r#"{"error":"not_held"}"#)
    );
    assert_eq!(route_of(Op::Health).map(|r| r.template), Some("/health"));
}
