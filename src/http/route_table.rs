//! The data of the route table: every endpoint of http.md §6 in the order of the
//! spec, with its operationId (§10), session and auth flags, body members, query
//! parameters, success shape and the errors of its row. The types and the matcher
//! live in [`super::route`]; this file is only the table, so a change to the API
//! is a change here and nowhere else.

use super::route::{
    BodyKind::{EmptyOrObject, Object},
    Field as F, FieldSpec, Method, Op, QueryParam, QuerySpec, Route, Shape, opt, req,
};

// ---- request bodies (§4.2) ----
const ACQUIRE: &[FieldSpec] = &[req(F::AcquireTimeoutS), opt(F::LeaseTtlS)];
const SEM_ACQUIRE: &[FieldSpec] = &[req(F::AcquireTimeoutS), req(F::Limit), opt(F::LeaseTtlS)];
const RW_ACQUIRE: &[FieldSpec] = &[req(F::Mode), req(F::AcquireTimeoutS), opt(F::LeaseTtlS)];
const TOKEN: &[FieldSpec] = &[req(F::Token)];
const RENEW: &[FieldSpec] = &[req(F::Token), opt(F::LeaseTtlS)];
const LEASE: &[FieldSpec] = &[opt(F::LeaseTtlS)];
const SEM_ENQUEUE: &[FieldSpec] = &[req(F::Limit), opt(F::LeaseTtlS)];
const RW_ENQUEUE: &[FieldSpec] = &[req(F::Mode), opt(F::LeaseTtlS)];
const WAIT: &[FieldSpec] = &[req(F::TimeoutS)];
const BARRIER: &[FieldSpec] = &[req(F::Count), req(F::TimeoutS)];
const DELTA: &[FieldSpec] = &[req(F::Delta)];
const COUNTER_SET: &[FieldSpec] = &[req(F::CounterValue)];
const KV_SET: &[FieldSpec] = &[req(F::Value), opt(F::TtlS)];
const KV_CAS: &[FieldSpec] = &[opt(F::Old), req(F::New), opt(F::TtlS)];
const PUSH: &[FieldSpec] = &[req(F::Value)];
const PAYLOAD: &[FieldSpec] = &[req(F::Payload)];
const OPTIONS: &[FieldSpec] = &[req(F::Options)];

// ---- query parameters ----
const RANGE: &[QuerySpec] = &[
    QuerySpec {
        param: QueryParam::Start,
        required: false,
    },
    QuerySpec {
        param: QueryParam::Stop,
        required: false,
    },
];
const SIGNALS: &[QuerySpec] = &[
    QuerySpec {
        param: QueryParam::Pattern,
        required: true,
    },
    QuerySpec {
        param: QueryParam::Group,
        required: false,
    },
];
const WATCH: &[QuerySpec] = &[QuerySpec {
    param: QueryParam::Pattern,
    required: true,
}];

// ---- row errors (§6; the general ones are added by the OpenAPI builder) ----
const STREAM_ERR: &[(u16, &str)] = &[(503, "max_sessions"), (503, "max_sessions_per_ip")];
/// A subscription stream also registers a subscription (protocol.md §7.4a).
const SUBSCRIBE_ERR: &[(u16, &str)] = &[
    (503, "max_sessions"),
    (503, "max_sessions_per_ip"),
    (503, "max_memory"),
];
const SESSION_ERR: &[(u16, &str)] = &[(400, "bad_request"), (410, "session_gone")];
const PATCH_ERR: &[(u16, &str)] = &[(400, "bad_request"), (410, "session_gone")];
const EVENTS_ERR: &[(u16, &str)] = &[(410, "session_gone"), (503, "max_sessions")];
const GRANT_ERR: &[(u16, &str)] = &[
    (409, "type_mismatch"),
    (409, "deadlock"),
    (503, "max_locks"),
    (503, "max_waiters"),
    (503, "fence_persistence"),
];
const SEM_GRANT_ERR: &[(u16, &str)] = &[
    (409, "limit_mismatch"),
    (409, "deadlock"),
    (503, "max_locks"),
    (503, "max_waiters"),
    (503, "fence_persistence"),
];
const RELEASE_ERR: &[(u16, &str)] = &[(404, "not_held")];
const RENEW_ERR: &[(u16, &str)] = &[(404, "not_held"), (409, "lease_expired")];
const ENQUEUE_ERR: &[(u16, &str)] = &[
    (409, "type_mismatch"),
    (409, "already_enqueued"),
    (503, "max_locks"),
    (503, "max_waiters"),
    (503, "fence_persistence"),
];
const SEM_ENQUEUE_ERR: &[(u16, &str)] = &[
    (409, "limit_mismatch"),
    (409, "already_enqueued"),
    (503, "max_locks"),
    (503, "max_waiters"),
    (503, "fence_persistence"),
];
const WAIT_ERR: &[(u16, &str)] = &[
    (409, "not_enqueued"),
    (409, "lease_expired"),
    (409, "deadlock"),
];
const BARRIER_ERR: &[(u16, &str)] = &[
    (409, "barrier_count_mismatch"),
    (503, "max_keys"),
    (503, "max_memory"),
];
const COUNTER_ERR: &[(u16, &str)] = &[(409, "overflow"), (503, "max_keys"), (503, "max_memory")];
const KEYS_ERR: &[(u16, &str)] = &[(503, "max_keys"), (503, "max_memory")];
const PUSH_ERR: &[(u16, &str)] = &[(409, "list_full"), (503, "max_keys"), (503, "max_memory")];

const LEADER_EVENTS: &[&str] = &["leader"];
const SIG_EVENTS: &[&str] = &["sig"];
const WATCH_EVENTS: &[&str] = &["watch"];
const LEASE_EVENTS: &[&str] = &["lease_expiring", "lease_expired"];

const fn get(template: &'static str, operation_id: &'static str, op: Op) -> Route {
    Route::new(Method::Get, template, operation_id, op)
}

const fn post(template: &'static str, operation_id: &'static str, op: Op) -> Route {
    Route::new(Method::Post, template, operation_id, op)
}

const fn delete(template: &'static str, operation_id: &'static str, op: Op) -> Route {
    Route::new(Method::Delete, template, operation_id, op)
}

const fn patch(template: &'static str, operation_id: &'static str, op: Op) -> Route {
    Route::new(Method::Patch, template, operation_id, op)
}

/// Every endpoint, in the order of http.md §6.
pub static ROUTES: [Route; 51] = [
    // ---- §6.1 operational and introspection ----
    get("/health", "getHealth", Op::Health)
        .about("Liveness")
        .public()
        .operational()
        .ok(Shape::Health),
    get("/ready", "getReady", Op::Ready)
        .about("Readiness (503 while draining)")
        .public()
        .operational()
        .ok(Shape::Ready),
    get("/metrics", "getMetrics", Op::Metrics)
        .about("Prometheus metrics")
        .operational()
        .ok(Shape::Metrics),
    get("/v1/openapi.json", "getOpenAPI", Op::OpenApi)
        .about("This document")
        .public()
        .ok(Shape::OpenApi),
    get("/v1/stats", "getStats", Op::Stats)
        .about("The stats document")
        .ok(Shape::Stats),
    // ---- §6.2 sessions ----
    post("/v1/sessions", "createSession", Op::CreateSession)
        .about("Create a session")
        .body(EmptyOrObject(&[]))
        .ok(Shape::SessionCreated)
        .errors(STREAM_ERR),
    post("/v1/sessions/{id}/ping", "pingSession", Op::PingSession)
        .about("Keep a session alive")
        .body(EmptyOrObject(&[]))
        .errors(SESSION_ERR),
    delete("/v1/sessions/{id}", "deleteSession", Op::DeleteSession)
        .about("End a session")
        .errors(SESSION_ERR),
    // ---- §6.2a extensions ----
    patch("/v1/sessions/{id}", "patchSession", Op::PatchSession)
        .about("Set session options")
        .body(Object(OPTIONS))
        .ok(Shape::SessionOptions)
        .errors(PATCH_ERR),
    get(
        "/v1/sessions/{id}/events",
        "streamSessionEvents",
        Op::SessionEvents,
    )
    .about("Lease notices of a session (SSE)")
    .ok(Shape::Events(LEASE_EVENTS))
    .errors(EVENTS_ERR),
    get("/v1/keys/{key}/who", "getWho", Op::Who)
        .about("Holders and waiters of a key")
        .ok(Shape::Who),
    get("/v1/keys/{key}/position", "getPosition", Op::Position)
        .about("Queue position of the session's waiter")
        .session()
        .ok(Shape::Position)
        .errors(&[(409, "not_enqueued")]),
    // ---- §6.3 locks ----
    post("/v1/locks/{key}", "acquireLock", Op::AcquireLock)
        .about("Acquire a lock (l)")
        .session()
        .body(Object(ACQUIRE))
        .ok(Shape::Acquire)
        .errors(GRANT_ERR),
    post("/v1/locks/{key}/release", "releaseLock", Op::ReleaseLock)
        .about("Release a lock (r)")
        .session()
        .body(Object(TOKEN))
        .errors(RELEASE_ERR),
    post("/v1/locks/{key}/renew", "renewLock", Op::RenewLock)
        .about("Renew a lock's lease (n)")
        .session()
        .body(Object(RENEW))
        .ok(Shape::Renew)
        .errors(RENEW_ERR),
    post("/v1/locks/{key}/enqueue", "enqueueLock", Op::EnqueueLock)
        .about("Join a lock's queue (e)")
        .session()
        .body(EmptyOrObject(LEASE))
        .ok(Shape::Enqueue)
        .errors(ENQUEUE_ERR),
    post("/v1/locks/{key}/wait", "waitLock", Op::WaitLock)
        .about("Wait for an enqueued lock (w)")
        .session()
        .body(Object(WAIT))
        .ok(Shape::Acquire)
        .errors(WAIT_ERR),
    // ---- §6.4 semaphores ----
    post("/v1/semaphores/{key}", "acquireSem", Op::AcquireSem)
        .about("Acquire a permit (sl)")
        .session()
        .body(Object(SEM_ACQUIRE))
        .ok(Shape::Acquire)
        .errors(SEM_GRANT_ERR),
    post("/v1/semaphores/{key}/release", "releaseSem", Op::ReleaseSem)
        .about("Release a permit (sr)")
        .session()
        .body(Object(TOKEN))
        .errors(RELEASE_ERR),
    post("/v1/semaphores/{key}/renew", "renewSem", Op::RenewSem)
        .about("Renew a permit's lease (sn)")
        .session()
        .body(Object(RENEW))
        .ok(Shape::Renew)
        .errors(RENEW_ERR),
    post("/v1/semaphores/{key}/enqueue", "enqueueSem", Op::EnqueueSem)
        .about("Join a semaphore's queue (se)")
        .session()
        .body(Object(SEM_ENQUEUE))
        .ok(Shape::Enqueue)
        .errors(SEM_ENQUEUE_ERR),
    post("/v1/semaphores/{key}/wait", "waitSem", Op::WaitSem)
        .about("Wait for an enqueued permit (sw)")
        .session()
        .body(Object(WAIT))
        .ok(Shape::Acquire)
        .errors(WAIT_ERR),
    // ---- §6.5 read-write locks ----
    post("/v1/rwlocks/{key}", "acquireRWLock", Op::AcquireRw)
        .about("Acquire a read or write lock (rl, wl)")
        .session()
        .body(Object(RW_ACQUIRE))
        .ok(Shape::Acquire)
        .errors(GRANT_ERR),
    post("/v1/rwlocks/{key}/release", "releaseRWLock", Op::ReleaseRw)
        .about("Release a read or write lock (rr, wr)")
        .session()
        .body(Object(TOKEN))
        .errors(RELEASE_ERR),
    post("/v1/rwlocks/{key}/renew", "renewRWLock", Op::RenewRw)
        .about("Renew a read or write lock (rn, wn)")
        .session()
        .body(Object(RENEW))
        .ok(Shape::Renew)
        .errors(RENEW_ERR),
    post("/v1/rwlocks/{key}/enqueue", "enqueueRWLock", Op::EnqueueRw)
        .about("Join a read-write queue (re, we)")
        .session()
        .body(Object(RW_ENQUEUE))
        .ok(Shape::Enqueue)
        .errors(ENQUEUE_ERR),
    post("/v1/rwlocks/{key}/wait", "waitRWLock", Op::WaitRw)
        .about("Wait for the pending read or write enqueue (rw, ww)")
        .session()
        .body(Object(WAIT))
        .ok(Shape::Acquire)
        .errors(WAIT_ERR),
    // ---- §6.6 elections ----
    post("/v1/elections/{key}", "elect", Op::Elect)
        .about("Campaign for leadership (elect)")
        .session()
        .body(Object(ACQUIRE))
        .ok(Shape::Acquire)
        .errors(GRANT_ERR),
    post("/v1/elections/{key}/resign", "resign", Op::Resign)
        .about("Give up leadership (resign)")
        .session()
        .body(Object(TOKEN))
        .errors(RELEASE_ERR),
    post("/v1/elections/{key}/renew", "renewLeader", Op::RenewLeader)
        .about("Renew the leader's lease (n)")
        .session()
        .body(Object(RENEW))
        .ok(Shape::Renew)
        .errors(RENEW_ERR),
    get(
        "/v1/elections/{key}/events",
        "streamLeaderEvents",
        Op::LeaderEvents,
    )
    .about("Leader events of a key (SSE)")
    .ok(Shape::Events(LEADER_EVENTS))
    .errors(SUBSCRIBE_ERR),
    // ---- §6.7 barriers ----
    post("/v1/barriers/{key}/wait", "waitBarrier", Op::WaitBarrier)
        .about("Wait at a barrier (bwait)")
        .session()
        .body(Object(BARRIER))
        .ok(Shape::Barrier)
        .errors(BARRIER_ERR),
    // ---- §6.8 counters ----
    get("/v1/counters/{key}", "getCounter", Op::GetCounter)
        .about("Read a counter (get)")
        .ok(Shape::Counter),
    post("/v1/counters/{key}/incr", "incrCounter", Op::IncrCounter)
        .about("Add to a counter (incr)")
        .body(Object(DELTA))
        .ok(Shape::Counter)
        .errors(COUNTER_ERR),
    post("/v1/counters/{key}/decr", "decrCounter", Op::DecrCounter)
        .about("Subtract from a counter (decr)")
        .body(Object(DELTA))
        .ok(Shape::Counter)
        .errors(COUNTER_ERR),
    post("/v1/counters/{key}/set", "setCounter", Op::SetCounter)
        .about("Set a counter (cset)")
        .body(Object(COUNTER_SET))
        .errors(KEYS_ERR),
    // ---- §6.9 key-value store ----
    get("/v1/kv/{key}", "getKV", Op::GetKv)
        .about("Read a value (kget)")
        .ok(Shape::Value),
    post("/v1/kv/{key}", "setKV", Op::SetKv)
        .about("Set a value (kset)")
        .body(Object(KV_SET))
        .errors(KEYS_ERR),
    delete("/v1/kv/{key}", "deleteKV", Op::DeleteKv).about("Delete a value (kdel)"),
    post("/v1/kv/{key}/cas", "casKV", Op::CasKv)
        .about("Compare and swap (kcas)")
        .body(Object(KV_CAS))
        .ok(Shape::Cas)
        .errors(KEYS_ERR),
    // ---- §6.10 lists ----
    get("/v1/lists/{key}", "getListLength", Op::ListLength)
        .about("List length (llen)")
        .ok(Shape::Length),
    get("/v1/lists/{key}/range", "getListRange", Op::ListRange)
        .about("List items (lrange)")
        .query(RANGE)
        .ok(Shape::Values),
    post("/v1/lists/{key}/lpush", "lpush", Op::LPush)
        .about("Push at the head (lpush)")
        .body(Object(PUSH))
        .ok(Shape::Length)
        .errors(PUSH_ERR),
    post("/v1/lists/{key}/rpush", "rpush", Op::RPush)
        .about("Push at the tail (rpush)")
        .body(Object(PUSH))
        .ok(Shape::Length)
        .errors(PUSH_ERR),
    post("/v1/lists/{key}/lpop", "lpop", Op::LPop)
        .about("Pop from the head (lpop)")
        .body(EmptyOrObject(&[]))
        .ok(Shape::Value),
    post("/v1/lists/{key}/rpop", "rpop", Op::RPop)
        .about("Pop from the tail (rpop)")
        .body(EmptyOrObject(&[]))
        .ok(Shape::Value),
    post("/v1/lists/{key}/blpop", "blpop", Op::BLPop)
        .about("Blocking pop from the head (blpop)")
        .body(Object(WAIT))
        .ok(Shape::Value)
        .errors(KEYS_ERR),
    post("/v1/lists/{key}/brpop", "brpop", Op::BRPop)
        .about("Blocking pop from the tail (brpop)")
        .body(Object(WAIT))
        .ok(Shape::Value)
        .errors(KEYS_ERR),
    // ---- §6.11 signals ----
    post("/v1/signals/{channel}", "publishSignal", Op::PublishSignal)
        .about("Publish a signal (signal)")
        .body(Object(PAYLOAD))
        .ok(Shape::Delivered),
    get("/v1/signals", "streamSignals", Op::SignalEvents)
        .about("Subscribe to signals (SSE)")
        .query(SIGNALS)
        .ok(Shape::Events(SIG_EVENTS))
        .errors(SUBSCRIBE_ERR),
    // ---- §6.12 watches ----
    get("/v1/watch", "streamWatch", Op::WatchEvents)
        .about("Watch keys (SSE)")
        .query(WATCH)
        .ok(Shape::Events(WATCH_EVENTS))
        .errors(SUBSCRIBE_ERR),
];
