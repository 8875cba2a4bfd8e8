//! Per-connection work: read → parse → apply → encode → flush, with a
//! per-iteration budget so one pipelining client cannot starve the others.

use super::refusal_log::{AuthAttempt, Explained, ListenerTag, RequestCtx, Tag};
use super::{Server, live};
use crate::auth;
use crate::conn::Phase;
use crate::conn::buffer::Io;
use crate::net::transport::TransportError;
use crate::owner::OwnerId;
use crate::protocol::Parsed;
use crate::protocol::command::Command;
use crate::protocol::dreadlock::{DreadlockRequest, parse_dreadlock};
use crate::protocol::explain::{self, CloseReason};
use crate::protocol::line::{Frame, FrameError, HttpGuard, http_guard, parse_frame};
use crate::protocol::reply::{DreadReply, Reply, Status};
use crate::state::{Cx, IdleExemption, Out, Outcome, State};
use crate::timer::{Timer, deadline_after};

/// Requests one connection may execute before yielding to the others.
const REQUEST_BUDGET: usize = 64;

impl Server {
    /// Run a state transition with the loop's clock, wheel and outbox.
    pub(super) fn with_state<R>(&mut self, f: impl FnOnce(&mut State, &mut Cx) -> R) -> R {
        let conns = &self.conns;
        let max_output = self.net.max_output;
        let can_take = |id: OwnerId, len: usize| {
            conns.get(id.slot as usize).is_some_and(|c| {
                c.id == id && !c.is_closing() && c.outbuf.pending() + len <= max_output
            })
        };
        let mut cx = Cx {
            now: self.clock.now(),
            timers: &mut self.wheel,
            out: &mut self.outbox,
            can_take: &can_take,
        };
        f(&mut self.state, &mut cx)
    }

    /// Serve the connections that were ready when this pass began. Work they
    /// create for others (grants, unparks) lands on the list for the next pass.
    pub(super) fn serve_ready(&mut self) {
        let n = self.ready.len();
        for _ in 0..n {
            let Some(id) = self.ready.pop_front() else {
                break;
            };
            let Some(c) = live(&mut self.conns, id) else {
                continue;
            };
            c.queued = false;
            self.serve(id);
        }
    }

    fn is_http(&self, id: OwnerId) -> bool {
        self.conns
            .get(id.slot as usize)
            .is_some_and(|c| c.id == id && c.http.is_some())
    }

    pub(super) fn mark_ready(&mut self, id: OwnerId) {
        if let Some(c) = live(&mut self.conns, id) {
            if !c.queued {
                c.queued = true;
                self.ready.push_back(id);
            }
        }
    }

    fn wants_read(&self, id: OwnerId) -> bool {
        let Some(c) = self.conns.get(id.slot as usize) else {
            return false;
        };
        let max_input = if c.http.is_some() {
            self.net.max_input_http
        } else {
            self.net.max_input
        };
        matches!(c.phase, Phase::Open | Phase::Parked)
            && !c.read_closed
            && c.inbuf.len() < max_input
            && c.outbuf.pending() <= self.net.max_output
    }

    fn serve(&mut self, id: OwnerId) {
        let slot = id.slot as usize;
        let now = self.clock.now();
        // Read what the socket has, up to the input cap.
        let wants = self.wants_read(id);
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        if c.paused && wants {
            // Back-pressure ended: the idle clock restarts (§2.8).
            c.paused = false;
            c.last_rx = now;
        }
        if c.readable && wants {
            let was_empty = c.inbuf.is_empty();
            let max_input = if c.http.is_some() {
                self.net.max_input_http
            } else {
                self.net.max_input
            };
            match c.transport.read_into(&mut c.inbuf, max_input, c.hup) {
                Ok((io, n)) => {
                    if n > 0 {
                        c.last_rx = now;
                        if was_empty {
                            c.req_start = now;
                        }
                    }
                    match io {
                        Io::WouldBlock => c.readable = false,
                        Io::Eof => {
                            c.readable = false;
                            c.read_closed = true;
                        }
                        Io::Stopped => {}
                    }
                }
                Err(e) => {
                    log_transport_error(c.serial, c.peer, c.http.is_some(), &e);
                    c.drop_for(CloseReason::ReadError(e.kind()));
                }
            }
        }
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        if c.phase == Phase::Parked && (c.read_closed || c.hup) {
            // The peer left while its blocking command waited: cancel it (§2.5).
            c.phase = Phase::Closing;
            self.with_state(|s, cx| s.cancel_parked(cx, id));
        }
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        let stop = if c.http.is_some() {
            if (c.read_closed || c.hup) && c.http.as_ref().is_some_and(|h| h.ends_with_peer()) {
                // The client left during a long-poll or a stream: cancel the
                // wait (http.md §2.3) and drop the subscription (§7).
                c.phase = Phase::Dead;
            }
            self.process_http(id)
        } else {
            self.process_input(id)
        };
        self.flush(id);
        self.account_buffers(id);
        self.note_established(id);
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        if c.phase == Phase::Open && c.read_closed && stop == Stop::NeedInput {
            // End of input: everything complete was executed; a partial request is dropped.
            if !c.inbuf.is_empty() {
                log::debug!("{}: truncated request at end of input", Tag::of(c));
            }
            c.phase = Phase::Closing;
        }
        if c.phase == Phase::Closing && !c.has_pending_output() {
            c.phase = Phase::Dead;
        }
        if c.phase == Phase::Dead {
            self.dead.push(id);
            return;
        }
        let wants = self.wants_read(id);
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        if !wants && matches!(c.phase, Phase::Open) {
            c.paused = true;
        }
        let more_input = c.readable && wants;
        // Output that drained below the limit lets buffered requests run again.
        let unblocked = stop == Stop::Output && c.outbuf.pending() <= self.net.max_output;
        if c.phase == Phase::Open && (stop == Stop::Budget || unblocked || more_input) {
            self.mark_ready(id);
        }
    }

    /// Execute complete requests from the input buffer, and say why it stopped.
    fn process_input(&mut self, id: OwnerId) -> Stop {
        let slot = id.slot as usize;
        let mut budget = REQUEST_BUDGET;
        loop {
            if budget == 0 {
                return Stop::Budget;
            }
            let Some(c) = self.conns.get_mut(slot) else {
                return Stop::Phase;
            };
            if c.phase != Phase::Open {
                return Stop::Phase;
            }
            if c.outbuf.pending() > self.net.max_output {
                return Stop::Output;
            }
            let data = c.inbuf.data();
            if data.is_empty() {
                return Stop::NeedInput;
            }
            if !c.first_line_checked {
                match http_guard(data) {
                    HttpGuard::Http => {
                        let on = ListenerTag::of(&self.listeners, c.listener);
                        self.refusals.http_on_line_port(self.clock.now(), c, on);
                        c.drop_for(CloseReason::HttpOnLinePort);
                        return Stop::Phase;
                    }
                    HttpGuard::NeedMore if !c.read_closed => return Stop::NeedInput,
                    // One byte of what may be a TLS record: wait for the second.
                    _ if data == [0x16] && !c.read_closed => return Stop::NeedInput,
                    _ if explain::looks_like_tls(data) => {
                        // No request starts with 0x16 0x03, and the client could not
                        // read a plain reply anyway: close, as for HTTP (one log line).
                        let on = ListenerTag::of(&self.listeners, c.listener);
                        self.refusals.tls_on_plain_port(self.clock.now(), c, on);
                        c.drop_for(CloseReason::TlsOnPlainPort);
                        return Stop::Phase;
                    }
                    _ => c.first_line_checked = true,
                }
            }
            let (consumed, request) = match parse_frame(data, &self.net.line) {
                Parsed::Incomplete => return Stop::NeedInput,
                Parsed::Invalid(FrameError::LineTooLong) => {
                    let max = self.net.line.max_line;
                    self.refusals.line_too_long(self.clock.now(), c, false, max);
                    Reply::ERROR.encode(c.outbuf.vec());
                    c.close_for(CloseReason::LineTooLong);
                    return Stop::Phase;
                }
                Parsed::Invalid(FrameError::DreadlockTooLong) => {
                    let max = self.net.line.max_line;
                    self.refusals.line_too_long(self.clock.now(), c, true, max);
                    c.close_for(CloseReason::BadDreadlock);
                    return Stop::Phase;
                }
                Parsed::Complete { value, consumed } => {
                    (consumed, Request::from_frame(value, &self.net))
                }
            };
            c.inbuf.consume(consumed);
            if !c.inbuf.is_empty() {
                c.req_start = self.clock.now();
            }
            budget -= 1;
            self.handle_request(id, request);
        }
    }

    fn handle_request(&mut self, id: OwnerId, req: Request) {
        let slot = id.slot as usize;
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        c.last_dread = req.dread;
        if self.draining {
            let reply = c.notice(DreadReply::Draining, Status::ErrorDraining);
            reply.encode(c.outbuf.vec());
            c.close_for(CloseReason::Draining);
            self.refusals.draining(c);
            return;
        }
        if let Some(token) = &self.net.auth_token {
            if !c.authed {
                if let Ok(Command::Auth(given)) = &req.cmd {
                    if auth::token_matches(given, token) {
                        c.authed = true;
                        self.unauthed = self.unauthed.saturating_sub(1);
                        Reply::OK.encode(c.outbuf.vec());
                        return;
                    }
                }
                // Stop reading, answer after 100 ms (§4.3).
                self.state.totals.auth_failures += 1;
                let on = ListenerTag::of(&self.listeners, c.listener);
                let attempt = AuthAttempt::of(&req);
                self.refusals.auth_failed(self.clock.now(), c, on, attempt);
                c.phase = Phase::AuthFailing;
                c.close_reason = CloseReason::AuthFailed;
                let at = deadline_after(self.clock.now(), auth::FAILURE_DELAY_MS);
                self.wheel.insert(at, Timer::AuthFail { conn: id });
                return;
            }
        }
        let cmd = match req.cmd {
            Ok(cmd) => cmd,
            Err(RequestError::Proto(why)) => {
                self.state.totals.by_label.invalid_commands += 1;
                self.refusals.parse_error(c, why.as_ref());
                Reply::ERROR.encode(c.outbuf.vec());
                return;
            }
            Err(RequestError::BadDreadlock(why)) => {
                self.state.totals.by_label.invalid_commands += 1;
                self.refusals
                    .bad_dreadlock(self.clock.now(), c, why.as_ref());
                c.close_for(CloseReason::BadDreadlock);
                return;
            }
        };
        if matches!(cmd, Command::Auth(_)) && self.net.auth_token.is_none() {
            // Without a configured token `auth` is an unknown command.
            self.refusals.auth_without_token(c);
            Reply::ERROR.encode(c.outbuf.vec());
            return;
        }
        let eof = c.read_closed;
        let ctx = RequestCtx::capture(&cmd);
        self.state.totals.by_label.command(cmd.name());
        let outcome = self.with_state(|s, cx| s.apply(cx, id, cmd));
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        match outcome {
            Outcome::Reply(r) => {
                if let Some(refusal) = explain::refusal(&r) {
                    let now = self.clock.now();
                    let cfg = &self.state.cfg;
                    self.refusals.refused(now, c, ctx.as_ref(), refusal, cfg);
                }
                r.encode(c.outbuf.vec())
            }
            Outcome::Park if eof => {
                // End of input: a command that would park is cancelled without a reply (§2.10.1).
                c.phase = Phase::Closing;
                self.with_state(|s, cx| s.cancel_parked(cx, id));
            }
            Outcome::Park => c.phase = Phase::Parked,
        }
        self.deliver_outbox();
    }

    /// Write pending output until WouldBlock; arm the write timeout if stuck.
    pub(super) fn flush(&mut self, id: OwnerId) {
        let now = self.clock.now();
        let Some(c) = self.conns.get_mut(id.slot as usize) else {
            return;
        };
        if !c.has_pending_output() || c.phase == Phase::Dead {
            return;
        }
        match c.transport.write_from(&mut c.outbuf) {
            Ok((io, n)) => {
                if n > 0 {
                    c.last_tx = now;
                }
                if io == Io::WouldBlock {
                    c.writable = false;
                    if c.write_timer.is_none() && self.net.write_timeout_ms > 0 {
                        let at = deadline_after(c.last_tx, self.net.write_timeout_ms);
                        c.write_timer = Some(self.wheel.insert(at, Timer::Write { conn: id }));
                    }
                }
            }
            Err(e) => {
                log_transport_error(c.serial, c.peer, c.http.is_some(), &e);
                c.drop_for(CloseReason::WriteError(e.kind()));
                self.dead.push(id);
            }
        }
        self.account_buffers(id);
    }

    /// Apply the outbox: replies that complete parked commands (and, later, pushes).
    pub(super) fn deliver_outbox(&mut self) {
        // Delivery can run the state: an HTTP long-poll whose client left
        // gives its grant or value back (http.rs `give_back`), which queues
        // more for the next waiter, who may be gone too. Loop rather than
        // recurse, so a chain of vanished waiters cannot grow the stack.
        while !self.outbox.is_empty() {
            self.deliver_outbox_once();
        }
    }

    fn deliver_outbox_once(&mut self) {
        let mut outbox = std::mem::take(&mut self.outbox);
        for out in outbox.drain(..) {
            match out {
                Out::Reply { conn, reply } => {
                    if conn.is_session()
                        || live(&mut self.conns, conn).is_some_and(|c| c.http.is_some())
                    {
                        self.deliver_http_reply(conn, &reply);
                        continue;
                    }
                    let Some(c) = live(&mut self.conns, conn) else {
                        continue;
                    };
                    if c.is_closing() {
                        continue;
                    }
                    reply.encode(c.outbuf.vec());
                    if c.phase == Phase::Parked {
                        c.phase = Phase::Open;
                        c.last_rx = self.clock.now();
                    }
                    // The writable invariant: write the grant now — a FIFO hand-off
                    // is a chain, and every microsecond here is on its critical
                    // path — then let the next pass run what it buffered while parked.
                    let buffered = !c.inbuf.is_empty() || c.readable || c.hup;
                    self.flush(conn);
                    if buffered {
                        self.mark_ready(conn);
                    }
                }
                Out::Push { conn, frame } => {
                    let event = self.push_to_stream(conn, &frame);
                    let Some(c) = live(&mut self.conns, conn) else {
                        continue;
                    };
                    if c.is_closing() {
                        continue;
                    }
                    let bytes: &[u8] = event.as_deref().unwrap_or(&frame);
                    if c.outbuf.pending() + bytes.len() > self.net.max_output {
                        // A push never grows output past the limit: slow consumer (§2.7).
                        self.state.totals.slow_consumer_disconnects += 1;
                        self.close_slow(conn);
                        continue;
                    }
                    c.outbuf.extend(bytes);
                    // Counted by the line frame's prefix, SSE events included.
                    self.state.totals.by_label.push_frame(&frame);
                    self.queue_flush(conn);
                }
                Out::CloseSlow { conn } => self.close_slow(conn),
            }
        }
        // Keep the emptied vector for its allocation unless delivery queued
        // more (see `deliver_outbox`).
        if self.outbox.is_empty() {
            self.outbox = outbox;
        }
    }

    /// Flush `id` at the end of this loop iteration. Pushes from every signal
    /// handled in the iteration then leave in one write per subscriber instead
    /// of one write per frame.
    fn queue_flush(&mut self, id: OwnerId) {
        if let Some(c) = live(&mut self.conns, id) {
            if !c.flush_queued {
                c.flush_queued = true;
                self.to_flush.push(id);
            }
        }
    }

    /// Write out everything queued by `queue_flush`.
    pub(super) fn flush_queued(&mut self) {
        let ids = std::mem::take(&mut self.to_flush);
        for &id in &ids {
            if let Some(c) = live(&mut self.conns, id) {
                c.flush_queued = false;
                self.flush(id);
            }
        }
        // Keep the allocation for the next iteration.
        let mut ids = ids;
        ids.clear();
        self.to_flush = ids;
    }

    fn close_slow(&mut self, id: OwnerId) {
        if let Some(c) = live(&mut self.conns, id) {
            if c.phase != Phase::Dead {
                let now = self.clock.now();
                self.refusals.slow_consumer(now, c, self.net.max_output);
                c.drop_for(CloseReason::SlowConsumer);
                self.dead.push(id);
            }
        }
    }

    /// Connection timers: idle/request timeout, write timeout, delayed auth failure.
    pub(super) fn on_conn_timer(&mut self, timer: Timer) {
        let now = self.clock.now();
        match timer {
            Timer::Idle { conn } => self.idle_check(conn, now),
            Timer::Write { conn } => {
                let Some(c) = live(&mut self.conns, conn) else {
                    return;
                };
                c.write_timer = None;
                if !c.has_pending_output() {
                    return;
                }
                let due = deadline_after(c.last_tx, self.net.write_timeout_ms);
                if now >= due {
                    let held = self.state.holdings(conn);
                    let limit_s = self.net.write_timeout_ms / 1000;
                    let why = CloseReason::WriteTimeout;
                    self.refusals.timeout_close(now, c, why, limit_s, held);
                    c.drop_for(why);
                    self.dead.push(conn);
                } else {
                    c.write_timer = Some(self.wheel.insert(due, Timer::Write { conn }));
                }
            }
            Timer::AuthFail { conn } if self.is_http(conn) => self.release_auth_delay(conn),
            Timer::SsePing { conn } => self.sse_ping(conn),
            Timer::SessionSweep => self.sweep_sessions(),
            Timer::AuthFail { conn } => {
                let Some(c) = live(&mut self.conns, conn) else {
                    return;
                };
                let reply = c.notice(DreadReply::AuthenticationRequired, Status::ErrorAuth);
                reply.encode(c.outbuf.vec());
                c.phase = Phase::Closing;
                self.flush(conn);
                self.mark_ready(conn);
            }
            Timer::Handshake { conn } => self.handshake_deadline(conn),
            Timer::Watchdog => self.feed_watchdog(),
            Timer::Shutdown => {
                log::info!("shutdown timeout passed; closing remaining connections");
                self.stop_now = true;
            }
            _ => {}
        }
    }

    pub(super) fn arm_idle(&mut self, id: OwnerId, at: u64) {
        if let Some(c) = live(&mut self.conns, id) {
            c.idle_timer = Some(self.wheel.insert(at, Timer::Idle { conn: id }));
        }
    }

    /// The idle/request timeout (§2.8), checked lazily: one timer per connection,
    /// re-armed for the real deadline instead of being reset on every byte.
    fn idle_check(&mut self, id: OwnerId, now: u64) {
        if self.is_http(id) {
            if let Some(c) = live(&mut self.conns, id) {
                c.idle_timer = None;
            }
            if let Some(at) = self.http_idle_check(id, now) {
                self.arm_idle(id, at);
            }
            return;
        }
        let t = self.net.read_timeout_ms;
        let held = self.state.idle_exemption(id);
        let wants = self.wants_read(id);
        let Some(c) = live(&mut self.conns, id) else {
            return;
        };
        c.idle_timer = None;
        if c.is_closing() || c.phase == Phase::AuthFailing {
            return;
        }
        // Parked, back-pressured or holding a Dreadlock lock: neither timeout
        // runs, and the clock restarts when the exemption ends.
        if c.phase == Phase::Parked || !wants || held == IdleExemption::Dreadlock {
            c.last_rx = now;
            self.arm_idle(id, deadline_after(now, t));
            return;
        }
        let request_begun = !c.inbuf.is_empty();
        let since = if request_begun {
            // A request has begun: the request timeout applies to everyone.
            c.req_start
        } else if let IdleExemption::None { leases_ended_at } = held {
            c.last_rx.max(leases_ended_at)
        } else {
            // A lease holder: the lease bounds how long a vanished holder
            // keeps it, and clients renew at half a lease, which can be
            // slower than the idle timeout.
            self.arm_idle(id, deadline_after(now, t));
            return;
        };
        let due = deadline_after(since, t);
        if now < due {
            self.arm_idle(id, due);
            return;
        }
        let why = if request_begun {
            CloseReason::RequestTimeout
        } else {
            CloseReason::IdleTimeout
        };
        let held = self.state.holdings(id);
        self.refusals.timeout_close(now, c, why, t / 1000, held);
        let reply = c.notice(DreadReply::IdleTimeout, Status::Error);
        reply.encode(c.outbuf.vec());
        c.close_for(why);
        self.flush(id);
        self.mark_ready(id);
    }
}

/// One line per transport failure. Plain text on a TLS port is a warning (a
/// misconfigured client, like the cross-protocol guard's HTTP case); a peer
/// that went away or failed its handshake is debug.
fn log_transport_error(serial: u64, peer: std::net::IpAddr, http: bool, e: &TransportError) {
    match e {
        TransportError::Plaintext if http => log::warn!(
            "conn {serial} from {peer}: plain HTTP on the HTTPS port, answered 400 and closing"
        ),
        TransportError::Plaintext => {
            log::warn!("conn {serial} from {peer}: plain text on a TLS port, closing")
        }
        TransportError::Tls(e) => log::debug!("conn {serial} from {peer}: TLS error: {e}"),
        e if e.is_disconnect() => log::debug!("conn {serial} from {peer}: {e}"),
        TransportError::Io(e) => log::warn!("conn {serial} from {peer}: socket error: {e}"),
    }
}

/// Why `process_input` stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// No complete request left in the buffer.
    NeedInput,
    /// The per-iteration request budget is used up.
    Budget,
    /// Pending output is over the limit (back-pressure).
    Output,
    /// Parked, closing or failing authentication.
    Phase,
}

/// Why a framed request could not become a command (with its log line's
/// words, when that line will be logged).
pub(super) enum RequestError {
    /// A parse error (protocol.md §11 codes 3–9, 13–15).
    Proto(Option<Explained>),
    /// A malformed Dreadlock line (code 17).
    BadDreadlock(Option<Explained>),
}

/// A framed request turned into a command (or the reason it could not be).
pub(super) struct Request {
    pub(super) dread: bool,
    pub(super) cmd: Result<Command, RequestError>,
}

impl Request {
    fn from_frame(frame: Frame<'_>, net: &super::NetConfig) -> Request {
        match frame {
            Frame::Request { cmd, key, arg } => Request {
                dread: false,
                cmd: Command::from_raw(cmd, key, arg, &net.cmd).map_err(|e| {
                    RequestError::Proto(Explained::parse(e, cmd, key, arg, net.cmd.max_value_bytes))
                }),
            },
            Frame::Dreadlock(line) => Request {
                dread: true,
                cmd: match parse_dreadlock(line) {
                    Ok(DreadlockRequest::Lock { key, timeout_ms }) => Ok(Command::DreadLock {
                        key: key.into(),
                        timeout_ms,
                    }),
                    Ok(DreadlockRequest::Unlock { key }) => {
                        Ok(Command::DreadUnlock { key: key.into() })
                    }
                    Err(_) => Err(RequestError::BadDreadlock(Explained::dreadlock(line))),
                },
            },
        }
    }
}
