//! `pos` and `queued <position>` (protocol.md §8.15) and their HTTP forms
//! (http.md §6.2a) against a real server: positions stay exact while the
//! waiters ahead leave by timeout, disconnect, grant and two-phase cancel.

use crate::common;
use crate::http_common;

use common::{Client, Server, token_of};
use http_common::Api;

fn pos(c: &mut Client, key: &str) -> String {
    c.req("pos", key, "")
}

fn positioned(s: &Server) -> Client {
    let mut c = s.client();
    assert_eq!(c.req("opt", "queue_position", "on"), "ok");
    c
}

#[test]
fn queued_positions_and_pos_on_an_exclusive_lock() {
    let s = Server::start(&[]);
    let mut h = s.client();
    let t = token_of(&h.req("l", "job", "5"));
    let mut q: Vec<Client> = (0..3).map(|_| positioned(&s)).collect();
    for (i, c) in q.iter_mut().enumerate() {
        assert_eq!(c.req("e", "job", "60"), format!("queued {}", i + 1));
    }
    for (i, c) in q.iter_mut().enumerate() {
        assert_eq!(pos(c, "job"), format!("ok {}", i + 1));
    }
    // The holder is not waiting: error_not_enqueued, as for any other key.
    assert_eq!(pos(&mut h, "job"), "error_not_enqueued");
    assert_eq!(pos(&mut q[0], "other"), "error_not_enqueued");
    // A grant: the head's position becomes 0 (granted before its wait),
    // everyone behind moves up.
    assert_eq!(h.req("r", "job", &t), "ok");
    assert_eq!(pos(&mut q[0], "job"), "ok 0");
    assert_eq!(pos(&mut q[1], "job"), "ok 1");
    assert_eq!(pos(&mut q[2], "job"), "ok 2");
    // The wait consumes the state: no longer enqueued.
    let t0 = token_of(&q[0].req("w", "job", "5"));
    assert_eq!(pos(&mut q[0], "job"), "error_not_enqueued");
    assert_eq!(q[0].req("r", "job", &t0), "ok");
    assert_eq!(pos(&mut q[1], "job"), "ok 0");
    assert_eq!(pos(&mut q[2], "job"), "ok 1");
}

#[test]
fn positions_stay_exact_when_waiters_ahead_leave() {
    let s = Server::start(&[]);
    let mut h = s.client();
    token_of(&h.req("l", "k", "30"));
    // Ahead, in order: a parked waiter with a 1 s timeout, a connection that
    // will disconnect, a two-phase waiter that cancels with `w` timeout 0.
    let mut timing_out = s.client();
    timing_out.send_req("l", "k", "1");
    h.wait_lock_waiters("k", 1);
    let mut leaving = positioned(&s);
    assert_eq!(leaving.req("e", "k", ""), "queued 2");
    let mut cancelling = positioned(&s);
    assert_eq!(cancelling.req("e", "k", ""), "queued 3");
    let mut me = positioned(&s);
    assert_eq!(me.req("e", "k", ""), "queued 4");
    let mut behind = positioned(&s);
    assert_eq!(behind.req("e", "k", ""), "queued 5");

    assert_eq!(cancelling.req("w", "k", "0"), "timeout");
    assert_eq!(pos(&mut me, "k"), "ok 3");
    assert_eq!(pos(&mut behind, "k"), "ok 4");

    drop(leaving);
    h.wait_lock_waiters("k", 3);
    assert_eq!(pos(&mut me, "k"), "ok 2");

    assert_eq!(timing_out.line(), "timeout");
    assert_eq!(pos(&mut me, "k"), "ok 1");
    assert_eq!(pos(&mut behind, "k"), "ok 2");
    // A newcomer goes to the back.
    let mut late = positioned(&s);
    assert_eq!(late.req("e", "k", ""), "queued 3");
}

#[test]
fn pos_on_semaphores_rw_locks_and_other_keys() {
    let s = Server::start(&[]);
    let mut h = s.client();
    // Semaphore of 1: its own key space, so "k" here is not the lock "k".
    token_of(&h.req("sl", "k", "0 1"));
    let mut a = positioned(&s);
    assert_eq!(a.req("se", "k", "1"), "queued 1");
    assert_eq!(pos(&mut a, "k"), "ok 1");
    let mut b = positioned(&s);
    assert_eq!(b.req("se", "k", "1"), "queued 2");
    assert_eq!(pos(&mut b, "k"), "ok 2");
    // Read-write: readers and writers ahead all count.
    token_of(&h.req("wl", "cfg", "0"));
    let mut r1 = positioned(&s);
    assert_eq!(r1.req("re", "cfg", ""), "queued 1");
    let mut w1 = positioned(&s);
    assert_eq!(w1.req("we", "cfg", ""), "queued 2");
    let mut r2 = positioned(&s);
    assert_eq!(r2.req("re", "cfg", ""), "queued 3");
    assert_eq!(pos(&mut r2, "cfg"), "ok 3");
    assert_eq!(r1.req("rw", "cfg", "0"), "timeout");
    assert_eq!(pos(&mut w1, "cfg"), "ok 1");
    assert_eq!(pos(&mut r2, "cfg"), "ok 2");
    // Counters, KV, lists and unused keys: not enqueued.
    assert_eq!(h.req("incr", "n", "1"), "ok 1");
    assert_eq!(h.req("kset", "v", "x"), "ok");
    assert_eq!(h.req("rpush", "l", "x"), "ok 1");
    for key in ["n", "v", "l", "never-used"] {
        assert_eq!(pos(&mut a, key), "error_not_enqueued", "{key}");
    }
    // A fast-path enqueue is granted at once: position 0.
    assert_eq!(a.req("e", "free", "").split(' ').next(), Some("acquired"));
    assert_eq!(pos(&mut a, "free"), "ok 0");
    // Bad keys are syntax errors.
    assert_eq!(a.req("pos", "a b", ""), "error");
    assert_eq!(a.req("pos", "", ""), "error");
}

/// Options are per connection: a new connection starts with all off.
#[test]
fn queue_position_is_per_connection() {
    let s = Server::start(&[]);
    let mut h = s.client();
    let t = token_of(&h.req("l", "k", "5"));
    let mut a = positioned(&s);
    assert_eq!(a.req("e", "k", ""), "queued 1");
    let mut b = s.client();
    b.send(b"e\nk\n\n");
    assert_eq!(b.line_raw(), b"queued\n");
    assert_eq!(pos(&mut b, "k"), "ok 2");
    assert_eq!(a.req("opt", "queue_position", "off"), "ok");
    token_of(&h.req("l", "j", "5"));
    a.send(b"e\nj\n\n");
    assert_eq!(a.line_raw(), b"queued\n");
    assert_eq!(h.req("r", "k", &t), "ok");
    drop(a);
    // The next connection in the same slot starts with the option off.
    let mut c = s.client();
    c.send(b"e\nj\n\n");
    assert_eq!(c.line_raw(), b"queued\n");
    assert_eq!(pos(&mut c, "j"), "ok 1");
}

#[test]
fn http_queued_position_and_position_endpoint() {
    let (_s, addr) = http_common::start(&[]);
    let api = Api::new(addr);
    let (holder, plain, me) = (api.session(), api.session(), api.session());
    let t = api.lock(&holder, "job", 0).token();
    api.post_s("/v1/locks/job/enqueue", &plain, "")
        .expect(200, r#"{"status":"queued"}"#);
    api.patch(
        &format!("/v1/sessions/{me}"),
        r#"{"options":{"queue_position":true}}"#,
    )
    .expect(
        200,
        r#"{"options":{"queue_position":true,"lease_notices":false,"deadlock":false}}"#,
    );
    api.post_s("/v1/locks/job/enqueue", &me, "")
        .expect(200, r#"{"status":"queued","position":2}"#);
    let position = |sid: &str, key: &str| {
        api.get_with(
            &format!("/v1/keys/{key}/position"),
            &[("X-Dflockd-Session", sid)],
        )
    };
    position(&me, "job").expect(200, r#"{"position":2}"#);
    position(&plain, "job").expect(200, r#"{"position":1}"#);
    position(&holder, "job").expect_error(409, "not_enqueued");
    position(&me, "nothing").expect_error(409, "not_enqueued");
    api.unlock(&holder, "job", &t);
    position(&plain, "job").expect(200, r#"{"position":0}"#);
    position(&me, "job").expect(200, r#"{"position":1}"#);
    // The endpoint needs a session.
    api.get("/v1/keys/job/position")
        .expect_error(400, "bad_request");
}
