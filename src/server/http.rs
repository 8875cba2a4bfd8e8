//! HTTP connections in the loop (http.md): read a request head and its body,
//! admit it (§3.1, in the spec's order), route it, run it as the same state
//! command the line protocol uses, and write the response. Long-polls park
//! on the same queues and timer wheel as TCP waits; SSE streams turn push
//! frames into events.
//!
//! IO stays where it is for line connections (`dispatch.rs` reads and
//! flushes); this file only decides what a request means and what to write.

use super::dispatch::Stop;
use super::{Server, live};
use crate::auth;
use crate::conn::Phase;
use crate::conn::http::{HttpMode, Pending, ReplyCx, Undo};
use crate::http::api::{self, Action, ApiError, ApiResponse};
use crate::http::body::SessionOptions;
use crate::http::parse::{HeadLimits, HeadParse, Method, parse_head};
use crate::http::path::Query;
use crate::http::response::{ConnectionHeader, ContentType, Cors, ResponseHead, write_continue};
use crate::http::route::{Op, RouteMatch, allowed_methods, match_route, template_of};
use crate::http::session::{Lookup, format_key};
use crate::http::{body, metrics, openapi, sse};
use crate::owner::OwnerId;
use crate::protocol::command::Command;
use crate::protocol::reply::Reply;
use crate::state::Outcome;
use crate::timer::{Timer, deadline_after};
use std::time::{SystemTime, UNIX_EPOCH};

/// Requests one HTTP connection may execute before yielding.
const REQUEST_BUDGET: usize = 16;
/// A keep-alive connection with no request in progress is closed after this (§2.3).
pub(super) const KEEP_ALIVE_IDLE_MS: u64 = 120_000;
/// A request must arrive within this of its first byte (§2.2).
pub(super) const REQUEST_TIMEOUT_MS: u64 = 10_000;
/// How often idle sessions are looked for (§5: ended within one second).
const SESSION_SWEEP_MS: u64 = 1_000;

/// The parts of a request head the server keeps once the bytes are consumed.
struct Head {
    method: Method,
    method_raw: String,
    path: String,
    query: Option<String>,
    minor_version: u8,
    keep_alive: bool,
    session: Option<Vec<u8>>,
    authorization: Option<Vec<u8>>,
    origin: Option<String>,
    preflight: bool,
    expect_other: bool,
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Server {
    /// Execute complete requests from an HTTP connection's input buffer.
    pub(super) fn process_http(&mut self, id: OwnerId) -> Stop {
        let limits = HeadLimits::default();
        for _ in 0..REQUEST_BUDGET {
            let Some(c) = live(&mut self.conns, id) else {
                return Stop::Phase;
            };
            let Some(h) = c.http.as_mut() else {
                return Stop::Phase;
            };
            if c.phase != Phase::Open {
                return Stop::Phase;
            }
            if let HttpMode::SessionWait(_) = h.mode {
                // Woken by the session becoming free: run the stored request.
                self.resume_session_wait(id);
                continue;
            }
            if let HttpMode::Stream = h.mode {
                // Anything sent after a stream's request is ignored (§7).
                let n = c.inbuf.len();
                c.inbuf.consume(n);
                return Stop::Phase;
            }
            if !matches!(h.mode, HttpMode::Idle) {
                return Stop::Phase;
            }
            if c.outbuf.pending() > self.net.max_output {
                return Stop::Output;
            }
            let data = c.inbuf.data();
            if data.is_empty() {
                return Stop::NeedInput;
            }
            let parsed = match parse_head(data, &limits) {
                HeadParse::Incomplete => return Stop::NeedInput,
                HeadParse::Error(e) => {
                    log::debug!("http conn {} from {}: {e}", c.serial, c.peer);
                    let date = self.dates.get(unix_secs()).to_owned();
                    crate::http::response::write_head_error(c.outbuf.vec(), &date, e);
                    c.phase = Phase::Closing;
                    self.http_stats.record("OTHER", "unmatched", e.status(), 0);
                    return Stop::Phase;
                }
                HeadParse::Complete { head, consumed } => {
                    let owned = Head {
                        method: head.method,
                        method_raw: head.method_raw.to_owned(),
                        path: head.path.to_owned(),
                        query: head.query.map(str::to_owned),
                        minor_version: head.minor_version,
                        keep_alive: head.keep_alive,
                        session: head.session.map(<[u8]>::to_vec),
                        authorization: head.authorization.map(<[u8]>::to_vec),
                        origin: head.origin.map(|o| String::from_utf8_lossy(o).into_owned()),
                        preflight: head.origin.is_some()
                            && head.access_control_request_method.is_some(),
                        expect_other: head.expect_other,
                    };
                    (owned, consumed, head.content_length, head.expect_continue)
                }
            };
            let (head, consumed, body_len, expect_continue) = parsed;
            if data.len() < consumed + body_len {
                if expect_continue && !h.sent_continue {
                    let peer = c.peer;
                    if !self.may_continue(peer, &head) {
                        // §2.2: the interim 100 is only for a head that passes
                        // §3 up to routing. This one gets its final answer
                        // now, and the connection closes after it: the client
                        // may or may not send the body it held back, so the
                        // next request's start is unknown (RFC 9110 §10.1.1).
                        let Some(c) = live(&mut self.conns, id) else {
                            return Stop::Phase;
                        };
                        let n = c.inbuf.len();
                        c.inbuf.consume(n);
                        let head = Head {
                            keep_alive: false,
                            ..head
                        };
                        self.handle_http(id, head, Vec::new());
                        return Stop::Phase;
                    }
                    if let Some(c) = live(&mut self.conns, id) {
                        write_continue(c.outbuf.vec());
                        if let Some(h) = c.http.as_mut() {
                            h.sent_continue = true;
                        }
                    }
                }
                return Stop::NeedInput;
            }
            let Some(c) = live(&mut self.conns, id) else {
                return Stop::Phase;
            };
            let Some(h) = c.http.as_mut() else {
                return Stop::Phase;
            };
            let data = c.inbuf.data();
            let body = data[consumed..consumed + body_len].to_vec();
            c.inbuf.consume(consumed + body_len);
            h.sent_continue = false;
            if !c.inbuf.is_empty() {
                c.req_start = self.clock.now();
            }
            self.handle_http(id, head, body);
            // The client's end of input can arrive in the same read as the
            // request; edge-triggered readiness will not report it again. A
            // request that now waits (long-poll, session queue) or streams
            // ends with its peer, as `serve` does for a close seen later
            // (§2.3, §7); otherwise it would wait out its timeout, or a
            // stream would live on forever.
            if let Some(c) = live(&mut self.conns, id) {
                let waits = c.http.as_ref().is_some_and(|h| h.ends_with_peer());
                if waits && (c.read_closed || c.hup) && c.phase == Phase::Open {
                    // Closing, not Dead: answers to the requests before it
                    // still go out; the reap then cancels the wait.
                    c.phase = Phase::Closing;
                    return Stop::Phase;
                }
            }
        }
        Stop::Budget
    }

    /// Whether a head whose body has not arrived yet passes the checks of
    /// §3.1 up to routing (steps 1–6), so that `100 Continue` may be sent
    /// (§2.2). A predicate only: [`Self::handle_http`] gives the answer of a
    /// head that fails, and takes the rate-limit token when the request runs.
    fn may_continue(&self, peer: std::net::IpAddr, head: &Head) -> bool {
        if head.expect_other {
            return false;
        }
        if head.method == Method::Options {
            return (head.preflight || options_exempt(&head.path))
                || self.bearer_ok(head.authorization.as_deref());
        }
        let (operational, exempt) = match match_route(&head.method_raw, &head.path) {
            RouteMatch::Found { route, .. } => (route.operational, route.auth_exempt),
            // Routing found a route; its parameter (step 7) is judged later.
            // Only parameterless routes are operational or auth-exempt.
            RouteMatch::BadPath(_) => (false, false),
            RouteMatch::NotFound | RouteMatch::MethodNotAllowed { .. } => return false,
        };
        if self.draining && !operational {
            return false;
        }
        if !operational && !self.http_rate.would_allow(peer, self.clock.now()) {
            return false;
        }
        exempt || self.bearer_ok(head.authorization.as_deref())
    }

    /// Admission (§3.1), routing and execution of one request.
    fn handle_http(&mut self, id: OwnerId, head: Head, body: Vec<u8>) {
        let now = self.clock.now();
        let Some(c) = live(&mut self.conns, id) else {
            return;
        };
        let peer = c.peer;
        let mut rcx = ReplyCx {
            route: None,
            method: metric_method(head.method),
            minor_version: head.minor_version,
            keep_alive: head.keep_alive,
            head_only: head.method == Method::Head,
            cors_origin: self.cors_origin(head.origin.as_deref()),
            started: now,
            undo: None,
        };
        if self.draining {
            // After the drain began every response closes its connection (§8).
            rcx.keep_alive = false;
        }
        if head.expect_other {
            rcx.keep_alive = false;
            return self.write_error(id, &rcx, ApiError::new(417, "expectation_failed"));
        }
        let matched = if head.method == Method::Options {
            None
        } else {
            Some(match_route(&head.method_raw, &head.path))
        };
        if let Some(RouteMatch::Found { route, .. }) = &matched {
            rcx.route = Some(route);
        }
        let operational = rcx.route.is_some_and(|r| r.operational);
        // 2. draining, 3. rate limit.
        if self.draining && !operational {
            rcx.keep_alive = false;
            return self.write_error(id, &rcx, ApiError::new(503, "draining"));
        }
        if !operational && !self.http_rate.take(peer, now) {
            return self.write_error(id, &rcx, ApiError::new(429, "rate_limited"));
        }
        // 4. CORS preflight: needs no authentication (§3.2).
        if head.method == Method::Options && head.preflight {
            return self.answer_options(id, &rcx, &head);
        }
        // 5. bearer authentication, a plain OPTIONS included: only
        // preflights and the exempt paths go without (§3.2).
        let exempt = match head.method {
            Method::Options => options_exempt(&head.path),
            _ => rcx.route.is_some_and(|r| r.auth_exempt),
        };
        if !exempt && !self.bearer_ok(head.authorization.as_deref()) {
            return self.delay_unauthorized(id, &rcx);
        }
        if head.method == Method::Options {
            return self.answer_options(id, &rcx, &head);
        }
        // 6. routing.
        let (route, param) = match matched {
            Some(RouteMatch::Found { route, param }) => (route, param),
            Some(RouteMatch::MethodNotAllowed { allow }) => {
                let allow = allow.header_value();
                return self.write_unrouted(
                    id,
                    &rcx,
                    &head,
                    ApiError::new(405, "method_not_allowed").to_response(),
                    Some(&allow),
                );
            }
            Some(RouteMatch::BadPath(e)) => {
                let resp = ApiError::bad_request(e.to_string()).to_response();
                return self.write_unrouted(id, &rcx, &head, resp, None);
            }
            Some(RouteMatch::NotFound) | None => {
                return self.write_error(id, &rcx, ApiError::new(404, "not_found"));
            }
        };
        // 7. path parameters and query.
        let query = Query::new(head.query.as_deref());
        let target = match api::target(route, param.as_deref(), &query) {
            Ok(t) => t,
            Err(e) => return self.write_error(id, &rcx, e),
        };
        // 8. the session header.
        let mut owner = id;
        if route.session {
            let sid = match api::session_header(head.session.as_deref()) {
                Ok(s) => s,
                Err(e) => return self.write_error(id, &rcx, e),
            };
            match self.sessions.lookup(format_key(sid.0).as_bytes()) {
                Lookup::Found(o) => owner = o,
                Lookup::Malformed => {
                    return self.write_error(
                        id,
                        &rcx,
                        ApiError::bad_request("malformed session id"),
                    );
                }
                Lookup::Gone => {
                    return self.write_error(id, &rcx, ApiError::new(410, "session_gone"));
                }
            }
        }
        // 9. the body.
        if matches!(head.method, Method::Get | Method::Head | Method::Delete) && !body.is_empty() {
            return self.write_error(
                id,
                &rcx,
                ApiError::bad_request("GET and DELETE requests take no body"),
            );
        }
        let body = match body::parse(route.body, &body, &self.net.cmd) {
            Ok(b) => b,
            Err(e) => return self.write_error(id, &rcx, e.into()),
        };
        let action = match api::to_command(route, target, body) {
            Ok(a) => a,
            Err(e) => return self.write_error(id, &rcx, e),
        };
        let pending = Pending { action, owner, rcx };
        // Requests of one session run one at a time, in arrival order (§5).
        if owner.is_session() {
            if let Some(s) = self.sessions.get_mut(owner) {
                s.last_activity = now;
                if s.busy.is_some() || !s.waiting.is_empty() {
                    s.waiting.push_back(id);
                    if let Some(h) = live(&mut self.conns, id).and_then(|c| c.http.as_mut()) {
                        h.mode = HttpMode::SessionWait(Box::new(pending));
                    }
                    return;
                }
            }
        }
        self.run_pending(id, pending);
    }

    /// A request queued behind its session's long-poll gets its turn.
    fn resume_session_wait(&mut self, id: OwnerId) {
        let Some(h) = live(&mut self.conns, id).and_then(|c| c.http.as_mut()) else {
            return;
        };
        let HttpMode::SessionWait(p) = std::mem::take(&mut h.mode) else {
            return;
        };
        let owner = p.owner;
        match self.sessions.get_mut(owner) {
            None => {
                let rcx = p.rcx;
                self.write_error(id, &rcx, ApiError::new(410, "session_gone"));
            }
            Some(s) if s.busy.is_some() || s.waiting.front() != Some(&id) => {
                // Not our turn yet (woken early): wait again.
                if let Some(h) = live(&mut self.conns, id).and_then(|c| c.http.as_mut()) {
                    h.mode = HttpMode::SessionWait(p);
                }
            }
            Some(s) => {
                s.waiting.pop_front();
                self.run_pending(id, *p);
            }
        }
    }

    /// Run a routed request.
    fn run_pending(&mut self, id: OwnerId, p: Pending) {
        let Pending {
            action,
            owner,
            mut rcx,
        } = p;
        let now = self.clock.now();
        let cmd = match action {
            Action::Command(cmd) => cmd,
            Action::RwWait { key, timeout } => {
                let mode = self.state.pending_rw_mode(owner, &key);
                api::rw_wait(key, timeout, mode)
            }
            Action::Health => return self.write_api(id, &rcx, api::health(), None),
            Action::Ready => return self.write_api(id, &rcx, api::ready(self.draining), None),
            Action::Metrics => {
                let text = self.render_metrics();
                return self.write_body(id, &rcx, 200, ContentType::Prometheus, text.as_bytes());
            }
            Action::OpenApi => {
                let doc = openapi::document(env!("CARGO_PKG_VERSION"), &self.net.cmd).to_string();
                return self.write_body(id, &rcx, 200, ContentType::Json, doc.as_bytes());
            }
            Action::CreateSession => return self.create_session(id, &rcx),
            Action::PingSession(sid) => {
                return match self.sessions.lookup(format_key(sid.0).as_bytes()) {
                    Lookup::Found(o) => {
                        if let Some(s) = self.sessions.get_mut(o) {
                            s.last_activity = now;
                        }
                        self.write_api(id, &rcx, api::no_content(), None)
                    }
                    _ => self.write_error(id, &rcx, ApiError::new(410, "session_gone")),
                };
            }
            Action::DeleteSession(sid) => {
                return match self.sessions.lookup(format_key(sid.0).as_bytes()) {
                    Lookup::Found(o) => {
                        self.end_session(o, "deleted");
                        self.write_api(id, &rcx, api::no_content(), None)
                    }
                    _ => self.write_error(id, &rcx, ApiError::new(410, "session_gone")),
                };
            }
            Action::Subscribe(cmd) => return self.open_stream(id, &rcx, cmd),
            Action::PatchSession(sid, patch) => {
                return match self.sessions.lookup(format_key(sid.0).as_bytes()) {
                    Lookup::Found(o) => {
                        if let Some(s) = self.sessions.get_mut(o) {
                            s.last_activity = now;
                        }
                        match self.state.patch_options(o, &patch.changes()) {
                            Some(opts) => {
                                let opts = SessionOptions::from(opts);
                                self.write_api(id, &rcx, api::session_options(&opts), None)
                            }
                            None => self.write_error(id, &rcx, ApiError::new(410, "session_gone")),
                        }
                    }
                    Lookup::Malformed => {
                        self.write_error(id, &rcx, ApiError::bad_request("malformed session id"))
                    }
                    Lookup::Gone => self.write_error(id, &rcx, ApiError::new(410, "session_gone")),
                };
            }
            Action::Position { key } => Command::Pos { key },
            Action::Who { key } => Command::Who { key },
            Action::SessionEvents(sid) => return self.open_session_events(id, &rcx, sid.0),
        };
        if cmd.may_block() {
            rcx.undo = Undo::of(&cmd);
        }
        let outcome = self.with_state(|s, cx| s.apply(cx, owner, cmd));
        match outcome {
            Outcome::Reply(r) => {
                if let Some(s) = self.sessions.get_mut(owner) {
                    s.last_activity = self.clock.now();
                }
                self.write_reply(id, &rcx, &r);
            }
            Outcome::Park => {
                if let Some(s) = self.sessions.get_mut(owner) {
                    s.busy = Some(id);
                }
                if let Some(h) = live(&mut self.conns, id).and_then(|c| c.http.as_mut()) {
                    h.mode = HttpMode::LongPoll {
                        owner,
                        rcx: Box::new(rcx),
                    };
                }
            }
        }
        self.deliver_outbox();
    }

    /// The caps of §5 for one more session or stream from the connection's
    /// peer: `Some(peer)` when admitted, else the `503` is already written.
    fn admit_session(&mut self, id: OwnerId, rcx: &ReplyCx) -> Option<std::net::IpAddr> {
        let peer = live(&mut self.conns, id)?.peer;
        let cfg = &self.http_cfg;
        match self
            .sessions
            .admit(peer, cfg.max_sessions, cfg.max_sessions_per_ip)
        {
            Ok(()) => Some(peer),
            Err(e) => {
                self.write_error(id, rcx, ApiError::new(503, e.code()));
                None
            }
        }
    }

    fn create_session(&mut self, id: OwnerId, rcx: &ReplyCx) {
        let Some(peer) = self.admit_session(id, rcx) else {
            return;
        };
        let now = self.clock.now();
        let owner = loop {
            let mut bytes = [0u8; 16];
            if let Err(e) = getrandom::fill(&mut bytes) {
                log::error!("no secure random bytes for a session id: {e}");
                return self.write_error(id, rcx, ApiError::internal("no random source"));
            }
            let serial = self.next_serial;
            if let Some(o) = self
                .sessions
                .create(u128::from_be_bytes(bytes), peer, serial, now)
            {
                self.next_serial += 1;
                break o;
            }
        };
        let Some(s) = self.sessions.get(owner) else {
            return;
        };
        let (key, serial) = (s.key, s.serial);
        let from = live(&mut self.conns, id).map(|c| c.peer_addr());
        match from {
            Some(addr) => self.state.on_connect_from(owner, serial, addr),
            None => self.state.on_connect(owner, serial),
        }
        self.refresh_connection_view();
        self.arm_session_sweep();
        log::debug!("http session {serial} created by {peer}");
        let resp = api::session_created(api::SessionId(key), self.http_cfg.session_idle_timeout_s);
        self.write_api(id, rcx, resp, None);
    }

    /// End a session (DELETE, idle expiry, drain): the disconnect cleanup of
    /// protocol §4.4 runs for it, and requests still waiting on it get `410`.
    pub(super) fn end_session(&mut self, owner: OwnerId, why: &str) {
        let Some(s) = self.sessions.remove(owner) else {
            return;
        };
        log::debug!("http session {} ended ({why})", s.serial);
        self.with_state(|st, cx| st.on_disconnect(cx, owner));
        if let Some(stream) = s.events {
            self.close_session_events(stream);
        }
        self.refresh_connection_view();
        let gone = ApiError::new(410, "session_gone");
        for conn in s.busy.into_iter().chain(s.waiting) {
            let Some(h) = live(&mut self.conns, conn).and_then(|c| c.http.as_mut()) else {
                continue;
            };
            let rcx = match std::mem::take(&mut h.mode) {
                HttpMode::LongPoll { rcx, .. } => *rcx,
                HttpMode::SessionWait(p) => p.rcx,
                other => {
                    h.mode = other;
                    continue;
                }
            };
            self.write_error(conn, &rcx, gone.clone());
            self.mark_ready(conn);
        }
        self.deliver_outbox();
    }

    /// The reply that completes a long-poll (the outbox's `Out::Reply` for a
    /// session, or for an HTTP connection that parked as itself).
    pub(super) fn deliver_http_reply(&mut self, owner: OwnerId, reply: &Reply) {
        let conn = if owner.is_session() {
            match self.sessions.get_mut(owner) {
                Some(s) => {
                    s.last_activity = self.clock.now();
                    match s.busy.take() {
                        Some(c) => c,
                        None => return,
                    }
                }
                None => return,
            }
        } else {
            owner
        };
        let Some(c) = live(&mut self.conns, conn) else {
            return;
        };
        // The hang-up may sit unread in this batch of events: ask the socket.
        let gone = c.hup || c.read_closed || c.is_closing() || c.transport.peer_gone();
        let Some(h) = c.http.as_mut() else {
            return;
        };
        let rcx = match std::mem::take(&mut h.mode) {
            HttpMode::LongPoll { owner: o, rcx } if o == owner => *rcx,
            other => {
                h.mode = other;
                return;
            }
        };
        if gone {
            // The client left before its response could be written: a grant
            // is released and a popped value put back (§2.3).
            if let Some(cmd) = rcx.undo.as_ref().and_then(|u| u.command(reply)) {
                log::debug!("long-poll client gone: undoing {}", cmd.name());
                self.with_state(|s, cx| s.apply_undo(cx, owner, cmd));
            }
            self.wake_session(owner);
            return;
        }
        self.write_reply(conn, &rcx, reply);
        self.mark_ready(conn);
        self.wake_session(owner);
    }

    /// The session has no request in progress: let the next waiting one run.
    fn wake_session(&mut self, owner: OwnerId) {
        if let Some(next) = self
            .sessions
            .get(owner)
            .filter(|s| s.busy.is_none())
            .and_then(|s| s.waiting.front().copied())
        {
            self.mark_ready(next);
        }
    }

    /// Cleanup of an HTTP connection that is closing: its long-poll leaves
    /// its queue (§2.3), its place in a session's line is given up, and a
    /// stream stops counting toward the session caps.
    pub(super) fn on_http_close(&mut self, id: OwnerId, mode: HttpMode, peer: std::net::IpAddr) {
        match mode {
            HttpMode::LongPoll { owner, .. } if owner.is_session() => {
                self.with_state(|s, cx| s.cancel_parked(cx, owner));
                if let Some(s) = self.sessions.get_mut(owner) {
                    if s.busy == Some(id) {
                        s.busy = None;
                    }
                }
                self.wake_session(owner);
            }
            HttpMode::SessionWait(p) => {
                let owner = p.owner;
                if let Some(s) = self.sessions.get_mut(owner) {
                    s.waiting.retain(|&c| c != id);
                }
                self.wake_session(owner);
            }
            HttpMode::Stream => {
                self.sessions.stream_closed(peer);
                self.refresh_connection_view();
            }
            _ => {}
        }
    }

    /// Start an SSE stream (§7): the connection itself subscribes.
    fn open_stream(&mut self, id: OwnerId, rcx: &ReplyCx, cmd: Command) {
        let Some(peer) = self.admit_session(id, rcx) else {
            return;
        };
        let outcome = self.with_state(|s, cx| s.apply(cx, id, cmd));
        if let Outcome::Reply(r) = &outcome {
            if !matches!(r, Reply::Status(crate::protocol::reply::Status::Ok)) {
                self.write_reply(id, rcx, r);
                return;
            }
        }
        self.start_stream(id, rcx, peer);
    }

    /// `GET /v1/sessions/{id}/events` (http.md §6.2a): the session's lease
    /// notices as SSE. Opening it switches the session's `lease_notices` on
    /// (as `PATCH` would); the newest stream of a session gets its events.
    /// It counts toward the session caps like any stream, and ends with its
    /// session.
    fn open_session_events(&mut self, id: OwnerId, rcx: &ReplyCx, sid: u128) {
        let owner = match self.sessions.lookup(format_key(sid).as_bytes()) {
            Lookup::Found(o) => o,
            Lookup::Malformed => {
                return self.write_error(id, rcx, ApiError::bad_request("malformed session id"));
            }
            Lookup::Gone => return self.write_error(id, rcx, ApiError::new(410, "session_gone")),
        };
        let Some(peer) = self.admit_session(id, rcx) else {
            return;
        };
        let on = [(crate::state::options::OptName::LeaseNotices, Some(true))];
        self.state.patch_options(owner, &on);
        if let Some(s) = self.sessions.get_mut(owner) {
            s.last_activity = self.clock.now();
            s.events = Some(id);
        }
        self.start_stream(id, rcx, peer);
    }

    /// Where a push frame for `owner` goes: a session's event stream, or
    /// the owner itself (a TCP connection or a subscription stream).
    pub(super) fn push_target(&self, owner: OwnerId) -> OwnerId {
        if !owner.is_session() {
            return owner;
        }
        self.sessions
            .get(owner)
            .and_then(|s| s.events)
            .unwrap_or(owner)
    }

    /// Close a session's event stream (the session ended).
    fn close_session_events(&mut self, stream: OwnerId) {
        let Some(c) = live(&mut self.conns, stream) else {
            return;
        };
        let peer = c.peer;
        let Some(h) = c.http.as_mut() else {
            return;
        };
        if !matches!(h.mode, HttpMode::Stream) {
            return;
        }
        h.mode = HttpMode::default();
        self.sessions.stream_closed(peer);
        if let Some(c) = live(&mut self.conns, stream) {
            c.phase = Phase::Closing;
        }
        self.flush(stream);
        self.mark_ready(stream);
    }

    /// Answer a stream request with the SSE head and `:ok` (§7) and count
    /// the stream toward the session caps.
    fn start_stream(&mut self, id: OwnerId, rcx: &ReplyCx, peer: std::net::IpAddr) {
        self.sessions.stream_opened(peer);
        self.refresh_connection_view();
        let now = self.clock.now();
        let date = self.dates.get(unix_secs()).to_owned();
        let cors = cors_of(rcx);
        let Some(c) = live(&mut self.conns, id) else {
            return;
        };
        sse::write_stream_head(c.outbuf.vec(), &date, cors);
        sse::write_open(c.outbuf.vec());
        if let Some(h) = c.http.as_mut() {
            h.mode = HttpMode::Stream;
            h.last_event = now;
        }
        self.http_stats
            .record("GET", rcx.route.map_or("unmatched", |r| r.template), 200, 0);
        self.arm_sse_ping(id, now);
        // Events raised by subscribing (a leader that already holds) follow the head.
        self.deliver_outbox();
        self.flush(id);
    }

    fn arm_sse_ping(&mut self, id: OwnerId, from: u64) {
        let every = self.http_cfg.sse_ping_interval_s.saturating_mul(1000);
        if every > 0 {
            self.wheel
                .insert(deadline_after(from, every), Timer::SsePing { conn: id });
        }
    }

    /// `:ping` on a stream that has been silent for the interval.
    pub(super) fn sse_ping(&mut self, id: OwnerId) {
        let now = self.clock.now();
        let every = self.http_cfg.sse_ping_interval_s.saturating_mul(1000);
        let Some(c) = live(&mut self.conns, id) else {
            return;
        };
        if c.is_closing() {
            return;
        }
        let Some(h) = c.http.as_mut() else {
            return;
        };
        if !matches!(h.mode, HttpMode::Stream) {
            return;
        }
        let due = h.last_event.saturating_add(every);
        if now >= due {
            sse::write_ping(c.outbuf.vec());
            h.last_event = now;
            self.flush(id);
            self.arm_sse_ping(id, now);
        } else {
            let last = h.last_event;
            self.arm_sse_ping(id, last);
        }
    }

    /// A push frame for a stream connection, as an SSE event. Returns false
    /// when the connection is not a stream (the frame goes out as a line).
    pub(super) fn push_to_stream(&mut self, id: OwnerId, frame: &[u8]) -> Option<Vec<u8>> {
        let now = self.clock.now();
        let c = live(&mut self.conns, id)?;
        let h = c.http.as_mut()?;
        h.last_event = now;
        let mut out = Vec::with_capacity(frame.len() + 48);
        if let Some((name, data)) = event_of_frame(frame) {
            sse::write_event(&mut out, name, &data);
        }
        Some(out)
    }

    /// The `stats` counts (protocol.md §10, http.md §5): `connections` is the
    /// open TCP and Dreadlock connections plus the live HTTP sessions, SSE
    /// streams included — not HTTP connections, which come and go with
    /// keep-alive; `server.http_sessions` is the sessions alone.
    pub(super) fn refresh_connection_view(&mut self) {
        let sessions = self.sessions.count();
        self.state.view.http_sessions = sessions;
        self.state.view.connections = self.conns.len() - self.http_conns + sessions;
    }

    /// Periodic sweep for idle sessions (§5).
    pub(super) fn sweep_sessions(&mut self) {
        self.session_sweep_armed = false;
        let now = self.clock.now();
        let idle_ms = self.http_cfg.session_idle_timeout_s.saturating_mul(2000);
        for owner in self.sessions.expired(now.saturating_sub(idle_ms)) {
            self.end_session(owner, "idle");
        }
        self.arm_session_sweep();
    }

    fn arm_session_sweep(&mut self) {
        if !self.session_sweep_armed && !self.sessions.is_empty() {
            self.session_sweep_armed = true;
            let at = deadline_after(self.clock.now(), SESSION_SWEEP_MS);
            self.wheel.insert(at, Timer::SessionSweep);
        }
    }

    /// Drain (§8): long-polls get `503 draining`, streams close, sessions end.
    pub(super) fn drain_http(&mut self) {
        let ids: Vec<OwnerId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.http.is_some())
            .map(|(_, c)| c.id)
            .collect();
        for id in ids {
            let Some(c) = live(&mut self.conns, id) else {
                continue;
            };
            let peer = c.peer;
            let Some(h) = c.http.as_mut() else {
                continue;
            };
            match std::mem::take(&mut h.mode) {
                HttpMode::LongPoll { owner, mut rcx, .. } => {
                    self.with_state(|s, cx| s.cancel_parked(cx, owner));
                    if let Some(s) = self.sessions.get_mut(owner) {
                        s.busy = None;
                    }
                    rcx.keep_alive = false;
                    self.write_error(id, &rcx, ApiError::new(503, "draining"));
                }
                HttpMode::SessionWait(mut p) => {
                    p.rcx.keep_alive = false;
                    self.write_error(id, &p.rcx, ApiError::new(503, "draining"));
                }
                HttpMode::Stream => {
                    self.sessions.stream_closed(peer);
                    if let Some(c) = live(&mut self.conns, id) {
                        c.phase = Phase::Closing;
                    }
                }
                other => {
                    if let Some(h) = live(&mut self.conns, id).and_then(|c| c.http.as_mut()) {
                        h.mode = other;
                    }
                }
            }
            self.flush(id);
            self.mark_ready(id);
        }
        for owner in self.sessions.owners() {
            self.end_session(owner, "drain");
        }
    }

    /// The request timeout (408, then close) or the keep-alive idle close of
    /// an HTTP connection. Returns the deadline to check again at, if any.
    pub(super) fn http_idle_check(&mut self, id: OwnerId, now: u64) -> Option<u64> {
        let c = live(&mut self.conns, id)?;
        let h = c.http.as_ref()?;
        if !matches!(h.mode, HttpMode::Idle) || c.phase != Phase::Open {
            // Long-polls, queued requests and streams are exempt.
            return Some(deadline_after(now, KEEP_ALIVE_IDLE_MS));
        }
        if !c.inbuf.is_empty() {
            let due = deadline_after(c.req_start, REQUEST_TIMEOUT_MS);
            if now < due {
                return Some(due);
            }
            log::debug!("http conn {} from {}: request timeout", c.serial, c.peer);
            let rcx = ReplyCx {
                route: None,
                method: "OTHER",
                minor_version: 1,
                keep_alive: false,
                head_only: false,
                cors_origin: None,
                started: now,
                undo: None,
            };
            self.write_error(id, &rcx, ApiError::new(408, "request_timeout"));
            // A timer, not readiness, got us here: queue the connection so the
            // loop sees it closing once the 408 is out, as it does for the TCP
            // idle close. Without this a client that stops sending keeps the
            // socket open after `Connection: close`.
            self.mark_ready(id);
            return None;
        }
        let due = deadline_after(c.last_rx, KEEP_ALIVE_IDLE_MS);
        if now < due {
            return Some(due);
        }
        log::debug!(
            "http conn {} from {}: keep-alive idle close",
            c.serial,
            c.peer
        );
        c.phase = Phase::Dead;
        self.dead.push(id);
        None
    }

    fn render_metrics(&mut self) -> String {
        let doc = self.state.stats_json(self.clock.now());
        let http_connections = self.http_conns;
        let extra = metrics::Extra {
            tcp_connections: self.conns.len() - http_connections,
            http_connections,
            ready: !self.draining,
        };
        let mut text = metrics::render(&doc, &self.state.totals.by_label, &self.http_stats, extra);
        crate::http::metrics_contention::append(&mut text, &doc, &self.state.contention);
        text
    }

    // ---- admission helpers ----

    fn cors_origin(&self, origin: Option<&str>) -> Option<Box<str>> {
        let origin = origin?;
        let allowed = &self.http_cfg.cors_allowed_origins;
        if allowed.iter().any(|a| a == "*") {
            return Some("*".into());
        }
        allowed
            .iter()
            .any(|a| a.eq_ignore_ascii_case(origin))
            .then(|| origin.into())
    }

    fn bearer_ok(&self, header: Option<&[u8]>) -> bool {
        let Some(token) = &self.net.auth_token else {
            return true;
        };
        let Some(value) = header else {
            return false;
        };
        let Some(rest) = value
            .get(..7)
            .filter(|s| s.eq_ignore_ascii_case(b"bearer "))
            .map(|_| &value[7..])
        else {
            return false;
        };
        let given = rest.trim_ascii_start();
        let given = trim_spaces_tabs(given);
        auth::token_matches(given, token)
    }

    /// `401` after the failure delay (§3.2); the connection stays open.
    fn delay_unauthorized(&mut self, id: OwnerId, rcx: &ReplyCx) {
        self.state.totals.auth_failures += 1;
        self.http_stats.auth_failures += 1;
        let mut bytes = Vec::new();
        let resp = ApiError::new(401, "unauthorized").to_response();
        self.encode_api(&mut bytes, rcx, &resp, None);
        // Counted now (its duration excludes the deliberate delay).
        self.count_response(rcx, 401);
        let Some(c) = live(&mut self.conns, id) else {
            return;
        };
        log::info!(
            "http conn {} from {}: authentication failed",
            c.serial,
            c.peer
        );
        if let Some(h) = c.http.as_mut() {
            h.mode = HttpMode::AuthDelay {
                bytes: bytes.into_boxed_slice(),
                close: !rcx.keep_alive,
            };
        }
        let at = deadline_after(self.clock.now(), auth::FAILURE_DELAY_MS);
        self.wheel.insert(at, Timer::AuthFail { conn: id });
    }

    /// The delayed `401` is due.
    pub(super) fn release_auth_delay(&mut self, id: OwnerId) {
        let Some(c) = live(&mut self.conns, id) else {
            return;
        };
        let Some(h) = c.http.as_mut() else {
            return;
        };
        if let HttpMode::AuthDelay { bytes, close } = std::mem::take(&mut h.mode) {
            c.outbuf.extend(&bytes);
            // As `write_raw` does for every other response: a 401 to a
            // `Connection: close` request (or one sent while draining, §8)
            // says `Connection: close` and must be followed by the close.
            if close {
                c.phase = Phase::Closing;
            }
        }
        self.flush(id);
        self.mark_ready(id);
    }

    fn answer_options(&mut self, id: OwnerId, rcx: &ReplyCx, head: &Head) {
        let configured = !self.http_cfg.cors_allowed_origins.is_empty();
        if head.preflight && configured {
            let mut out = Vec::new();
            let mut h = ResponseHead::new(204);
            h.cors = cors_of(rcx);
            h.preflight = rcx.cors_origin.is_some();
            h.connection = ConnectionHeader::for_request(rcx.minor_version, rcx.keep_alive);
            let date = self.dates.get(unix_secs()).to_owned();
            h.write(&mut out, &date, b"");
            let path = template_of(&head.path).unwrap_or("unmatched");
            self.http_stats.record("OPTIONS", path, 204, 0);
            return self.write_raw(id, rcx, out);
        }
        match allowed_methods(&head.path) {
            Some(allow) => {
                // `header_value` already ends with OPTIONS (the server always
                // answers it); adding it again listed OPTIONS twice.
                let allow = allow.header_value();
                let resp = api::no_content();
                self.write_unrouted(id, rcx, head, resp, Some(&allow));
            }
            None => self.write_error(id, rcx, ApiError::new(404, "not_found")),
        }
    }

    /// `write_api` for a request that matched no route of its method but
    /// whose path exists (`405`, a bad path parameter, `OPTIONS`): counted
    /// under the path's route template, which is what http.md §9 labels every
    /// response with except a `404 not_found` (`unmatched`).
    fn write_unrouted(
        &mut self,
        id: OwnerId,
        rcx: &ReplyCx,
        head: &Head,
        resp: ApiResponse,
        allow: Option<&str>,
    ) {
        let mut out = Vec::new();
        self.encode_api(&mut out, rcx, &resp, allow);
        let path = template_of(&head.path).unwrap_or("unmatched");
        let took = self.clock.now().saturating_sub(rcx.started);
        self.http_stats.record(rcx.method, path, resp.status, took);
        self.write_raw(id, rcx, out);
    }

    // ---- writing ----

    fn write_reply(&mut self, id: OwnerId, rcx: &ReplyCx, reply: &Reply) {
        let op = rcx.route.map_or(Op::Health, |r| r.op);
        let resp = api::to_response(op, reply);
        self.write_api(id, rcx, resp, None);
    }

    fn write_error(&mut self, id: OwnerId, rcx: &ReplyCx, e: ApiError) {
        self.write_api(id, rcx, e.to_response(), None);
    }

    fn write_body(
        &mut self,
        id: OwnerId,
        rcx: &ReplyCx,
        status: u16,
        ct: ContentType,
        body: &[u8],
    ) {
        let mut out = Vec::new();
        let mut h = ResponseHead::new(status);
        h.content_type = Some(ct);
        if rcx.route.is_some_and(|r| r.op == Op::OpenApi) {
            h.cache_control = "public, max-age=60";
        }
        self.finish_head(&mut h, rcx);
        let date = self.dates.get(unix_secs()).to_owned();
        h.write(&mut out, &date, body);
        self.count_response(rcx, status);
        self.write_raw(id, rcx, out);
    }

    fn write_api(&mut self, id: OwnerId, rcx: &ReplyCx, resp: ApiResponse, allow: Option<&str>) {
        let mut out = Vec::new();
        self.encode_api(&mut out, rcx, &resp, allow);
        self.count_response(rcx, resp.status);
        self.write_raw(id, rcx, out);
    }

    fn encode_api(
        &mut self,
        out: &mut Vec<u8>,
        rcx: &ReplyCx,
        resp: &ApiResponse,
        allow: Option<&str>,
    ) {
        let mut h = match resp.body {
            Some(_) => ResponseHead::json(resp.status),
            None => ResponseHead::new(resp.status),
        };
        h.allow = allow;
        self.finish_head(&mut h, rcx);
        let date = self.dates.get(unix_secs()).to_owned();
        h.write(out, &date, resp.body.as_deref().unwrap_or("").as_bytes());
    }

    fn finish_head<'a>(&self, h: &mut ResponseHead<'a>, rcx: &'a ReplyCx) {
        h.cors = cors_of(rcx);
        h.head_only = rcx.head_only;
        h.connection = if rcx.keep_alive {
            ConnectionHeader::for_request(rcx.minor_version, true)
        } else {
            ConnectionHeader::Close
        };
    }

    fn count_response(&mut self, rcx: &ReplyCx, status: u16) {
        // The request's method also when no route matched: `GET /nope` is
        // {method="GET",path="unmatched"} (§9).
        let path = rcx.route.map_or("unmatched", |r| r.template);
        let method = rcx.method;
        let took = self.clock.now().saturating_sub(rcx.started);
        self.http_stats.record(method, path, status, took);
        if status == 429 {
            self.http_stats.rate_limited += 1;
        }
    }

    fn write_raw(&mut self, id: OwnerId, rcx: &ReplyCx, bytes: Vec<u8>) {
        let Some(c) = live(&mut self.conns, id) else {
            return;
        };
        c.outbuf.extend(&bytes);
        if !rcx.keep_alive {
            c.phase = Phase::Closing;
        }
        self.flush(id);
    }
}

/// Whether a plain `OPTIONS` on `path` needs no authentication: the path is
/// one of the exempt ones (`/health`, `/ready`, `/v1/openapi.json`, §3.2).
fn options_exempt(path: &str) -> bool {
    matches!(match_route("GET", path), RouteMatch::Found { route, .. } if route.auth_exempt)
}

/// The metrics `method` label of a request method (§9).
fn metric_method(m: Method) -> &'static str {
    match m {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Delete => "DELETE",
        Method::Options => "OPTIONS",
        Method::Patch | Method::Other => "OTHER",
    }
}

fn cors_of(rcx: &ReplyCx) -> Cors<'_> {
    match rcx.cors_origin.as_deref() {
        None => Cors::Off,
        Some("*") => Cors::Any,
        Some(o) => Cors::Origin(o.as_bytes()),
    }
}

fn trim_spaces_tabs(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|&c| c != b' ' && c != b'\t')
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|&c| c != b' ' && c != b'\t')
        .map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

/// A line-protocol push frame (`sig <channel> <payload>`, `watch <event>
/// <key>`, `leader <event> <key>`) as an SSE event name and JSON data.
fn event_of_frame(frame: &[u8]) -> Option<(&'static str, String)> {
    let line = std::str::from_utf8(frame).ok()?.trim_end_matches('\n');
    let (kind, rest) = line.split_once(' ')?;
    let (a, b) = rest.split_once(' ')?;
    let data = match kind {
        "sig" => serde_json::json!({"channel": a, "payload": b}),
        "watch" | "leader" => serde_json::json!({"event": a, "key": b}),
        "lease" => return lease_event(a, b),
        _ => return None,
    };
    let name = match kind {
        "sig" => "sig",
        "watch" => "watch",
        _ => "leader",
    };
    Some((name, data.to_string()))
}

/// `lease expiring <key> <fence> <remaining_s>` / `lease expired <key>
/// <fence>` (protocol.md §8.15) as `lease_expiring` / `lease_expired` with
/// `{"key","fence","remaining_s"?}`. Split from the right: the fields after
/// the key have no spaces.
fn lease_event(event: &str, rest: &str) -> Option<(&'static str, String)> {
    // Written by hand to keep the spec's member order (serde_json sorts).
    let text = |s: &str| serde_json::Value::from(s).to_string();
    let data = match event {
        "expiring" => {
            let (rest, remaining) = rest.rsplit_once(' ')?;
            let (key, fence) = rest.rsplit_once(' ')?;
            let remaining = serde_json::Value::from(remaining.parse::<f64>().ok()?);
            format!(
                r#"{{"key":{},"fence":{},"remaining_s":{remaining}}}"#,
                text(key),
                text(fence)
            )
        }
        "expired" => {
            let (key, fence) = rest.rsplit_once(' ')?;
            format!(r#"{{"key":{},"fence":{}}}"#, text(key), text(fence))
        }
        _ => return None,
    };
    let name = if event == "expiring" {
        "lease_expiring"
    } else {
        "lease_expired"
    };
    Some((name, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_frames_become_sse_events() {
        assert_eq!(
            event_of_frame(b"sig orders.created {\"id\":7}\n"),
            Some((
                "sig",
                r#"{"channel":"orders.created","payload":"{\"id\":7}"}"#.into()
            ))
        );
        assert_eq!(
            event_of_frame(b"watch kset cfg.a\n"),
            Some(("watch", r#"{"event":"kset","key":"cfg.a"}"#.into()))
        );
        assert_eq!(
            event_of_frame(b"leader elected job\n"),
            Some(("leader", r#"{"event":"elected","key":"job"}"#.into()))
        );
        assert_eq!(
            event_of_frame(b"lease expiring job 18ea9db47e590001 0.400\n"),
            Some((
                "lease_expiring",
                r#"{"key":"job","fence":"18ea9db47e590001","remaining_s":0.4}"#.into()
            ))
        );
        assert_eq!(
            event_of_frame(b"lease expired job 18ea9db47e590001\n"),
            Some((
                "lease_expired",
                r#"{"key":"job","fence":"18ea9db47e590001"}"#.into()
            ))
        );
        assert_eq!(event_of_frame(b"garbage\n"), None);
    }

    #[test]
    fn bearer_token_trimming() {
        assert_eq!(trim_spaces_tabs(b" \tabc \t"), b"abc");
        assert_eq!(trim_spaces_tabs(b"   "), b"");
        assert_eq!(trim_spaces_tabs(b""), b"");
    }
}
