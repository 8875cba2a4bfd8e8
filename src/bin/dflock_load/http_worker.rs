//! The workloads over HTTP (http.md §6): what each step sends and which
//! response completes it. The TCP steps of `worker.rs` map one to one:
//!
//! | mode | request (and the response that completes it) |
//! |---|---|
//! | lock, contended | `POST /v1/locks/{key}` (200 acquire outcome), `POST …/release` (204) |
//! | semaphore | `POST /v1/semaphores/{key}` (200), `POST …/release` (204) |
//! | kv | `POST /v1/kv/{key}` (204), `GET /v1/kv/{key}` (200 with the value) |
//! | counter | `POST /v1/counters/{key}/incr` (200 `{"value"}`) |
//! | pipeline | `--depth` of those written at once (HTTP/1.1 pipelining) |
//! | pubsub | `POST /v1/signals/{channel}` (200 `{"delivered"}`); subscribers read `GET /v1/signals` event streams |
//!
//! Clean-up: the lock modes `DELETE` their session, kv deletes its key, the
//! counter modes set theirs to 0. Subscribers send nothing after their
//! stream opened: streams are exempt from the idle close (§7), so the TCP
//! subscribers' heartbeat `ping`s have no HTTP counterpart.

use super::{Plan, Worker};
use crate::cli::Mode;
use crate::conn::{Conn, Step};
use crate::http::{
    self, Acquire, Counter, Delivered, Event, KvValue, Parsed, Response, Sig, show_response,
};
use crate::util::{parse_u64, push_u64};
use std::time::Instant;

/// Bodies that are the same for every op of the run, encoded once by serde_json.
pub struct Bodies {
    /// `{"acquire_timeout_s":N[,"limit":L][,"lease_ttl_s":M]}`
    pub acquire: Vec<u8>,
    /// `{"value":"…","ttl_s":600}`
    pub kv_set: Vec<u8>,
}

impl Bodies {
    pub fn new(
        mode: Mode,
        acquire_timeout: u64,
        limit: u32,
        lease: Option<u64>,
        value: &[u8],
        kv_ttl: u64,
    ) -> Bodies {
        let mut acquire = serde_json::Map::new();
        acquire.insert("acquire_timeout_s".into(), acquire_timeout.into());
        if mode == Mode::Semaphore {
            acquire.insert("limit".into(), limit.into());
        }
        if let Some(l) = lease {
            acquire.insert("lease_ttl_s".into(), l.into());
        }
        let value = String::from_utf8_lossy(value);
        let kv_set = serde_json::json!({"value": value, "ttl_s": kv_ttl});
        Bodies {
            acquire: serde_json::Value::Object(acquire).to_string().into_bytes(),
            kv_set: kv_set.to_string().into_bytes(),
        }
    }
}

/// Resource path of a worker's key, percent-encoded.
pub fn path_for(mode: Mode, key: &[u8], channel: &[u8]) -> Vec<u8> {
    let (base, segment): (&[u8], &[u8]) = match mode {
        // `connect` never gets here (it runs before any worker is opened).
        Mode::Lock | Mode::Contended | Mode::Connect => (b"/v1/locks/", key),
        Mode::Semaphore => (b"/v1/semaphores/", key),
        Mode::Kv => (b"/v1/kv/", key),
        Mode::Counter | Mode::Pipeline => (b"/v1/counters/", key),
        Mode::Pubsub => (b"/v1/signals/", channel),
    };
    let mut p = base.to_vec();
    http::push_segment(&mut p, segment);
    p
}

/// Request target of a subscriber's stream.
pub fn stream_target(channel: &[u8]) -> Vec<u8> {
    let mut t = b"/v1/signals?pattern=".to_vec();
    http::push_query_value(&mut t, channel);
    t
}

/// Whether a mode's workers need a session (the lock-space endpoints).
pub fn needs_session(mode: Mode) -> bool {
    matches!(mode, Mode::Lock | Mode::Contended | Mode::Semaphore)
}

/// Write the request of the connection's next op into `c.out` and set its
/// step. Returns true when the reply may wait for the acquire timeout.
pub fn begin(c: &mut Conn, plan: &Plan, sent_ns: u64) -> bool {
    if plan.mode == Mode::Pipeline && c.batch_ready {
        // The same batch again: rewrite it from the start of `out`.
        c.out_pos = 0;
        c.pending = plan.depth;
        c.step = Step::Batch;
        return false;
    }
    c.begin();
    let bodies = &plan.http;
    match plan.mode {
        Mode::Lock | Mode::Contended | Mode::Semaphore | Mode::Connect => {
            http::request(
                &mut c.out,
                b"POST",
                &c.path,
                b"",
                &c.headers,
                &bodies.acquire,
            );
            c.step = Step::Acquire;
            return true;
        }
        Mode::Kv if c.get_next => {
            http::request(&mut c.out, b"GET", &c.path, b"", &c.headers, b"");
            c.step = Step::Get;
            c.get_next = false;
        }
        Mode::Kv => {
            http::request(
                &mut c.out,
                b"POST",
                &c.path,
                b"",
                &c.headers,
                &bodies.kv_set,
            );
            c.step = Step::Set;
            c.get_next = true;
        }
        Mode::Counter => {
            http::request(
                &mut c.out,
                b"POST",
                &c.path,
                b"/incr",
                &c.headers,
                b"{\"delta\":1}",
            );
            c.step = Step::Incr;
        }
        Mode::Pipeline => {
            for _ in 0..plan.depth {
                http::request(
                    &mut c.out,
                    b"POST",
                    &c.path,
                    b"/incr",
                    &c.headers,
                    b"{\"delta\":1}",
                );
            }
            c.batch_ready = true;
            c.pending = plan.depth;
            c.step = Step::Batch;
        }
        Mode::Pubsub => {
            // The payload is the publish time, as in the TCP mode (digits need no escaping).
            c.body.clear();
            c.body.extend_from_slice(b"{\"payload\":\"");
            push_u64(&mut c.body, sent_ns);
            c.body.extend_from_slice(b"\"}");
            http::request(&mut c.out, b"POST", &c.path, b"", &c.headers, &c.body);
            c.step = Step::Signal;
        }
    }
    false
}

/// Write the clean-up request, if the mode has one.
pub fn begin_cleanup(c: &mut Conn, plan: &Plan) -> bool {
    c.begin();
    match plan.mode {
        Mode::Kv => http::request(&mut c.out, b"DELETE", &c.path, b"", &c.headers, b""),
        Mode::Counter | Mode::Pipeline => {
            http::request(
                &mut c.out,
                b"POST",
                &c.path,
                b"/set",
                &c.headers,
                b"{\"value\":0}",
            );
        }
        _ => {
            let Some(id) = &c.session else {
                return false;
            };
            let mut path = b"/v1/sessions/".to_vec();
            path.extend_from_slice(id);
            http::request(&mut c.out, b"DELETE", &path, b"", &c.headers, b"");
        }
    }
    c.step = Step::Cleanup;
    true
}

/// The request a step waits on, for error messages.
pub fn request_name(mode: Mode, step: Step) -> &'static str {
    let sem = mode == Mode::Semaphore;
    match step {
        Step::Acquire if sem => "POST /v1/semaphores/{key}",
        Step::Acquire => "POST /v1/locks/{key}",
        Step::Release if sem => "POST /v1/semaphores/{key}/release",
        Step::Release => "POST /v1/locks/{key}/release",
        Step::Set => "POST /v1/kv/{key}",
        Step::Get => "GET /v1/kv/{key}",
        Step::Incr | Step::Batch => "POST /v1/counters/{key}/incr",
        Step::Signal => "POST /v1/signals/{channel}",
        Step::Cleanup => match mode {
            Mode::Kv => "DELETE /v1/kv/{key}",
            Mode::Counter | Mode::Pipeline => "POST /v1/counters/{key}/set",
            _ => "DELETE /v1/sessions/{id}",
        },
        Step::Listening => "GET /v1/signals",
        Step::Idle | Step::Done => "nothing",
    }
}

impl Worker {
    /// Responses (or stream events) in `inb[c.in_start..c.in_end]`.
    pub(super) fn on_http_input(
        &mut self,
        c: &mut Conn,
        inb: &[u8],
        now: Instant,
    ) -> Result<(), String> {
        while c.step != Step::Done {
            let data = &inb[c.in_start..c.in_end];
            if c.step == Step::Listening {
                let Some((event, n)) = http::parse_event(data) else {
                    return Ok(());
                };
                c.in_start += n;
                self.on_event(event, now)?;
                continue;
            }
            match http::parse_response(data) {
                Parsed::Incomplete => return Ok(()),
                Parsed::Invalid(e) => {
                    return Err(format!(
                        "reply to {}: {e}",
                        request_name(self.plan.mode, c.step)
                    ));
                }
                Parsed::Complete { resp, consumed } => {
                    c.in_start += consumed;
                    let body = &data[resp.body.0..resp.body.1];
                    let step = c.step;
                    self.on_response(c, resp, body, now)?;
                    if resp.close && c.step != Step::Done {
                        return Err(format!(
                            "the server closes the connection after its {} reply to {}",
                            resp.status,
                            request_name(self.plan.mode, step)
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn unexpected_http(&self, step: Step, wanted: &str, status: u16, body: &[u8]) -> String {
        format!(
            "reply to {}: expected {wanted}, got {}",
            request_name(self.plan.mode, step),
            show_response(status, body)
        )
    }

    /// One response for `c`.
    fn on_response(
        &mut self,
        c: &mut Conn,
        resp: Response,
        body: &[u8],
        now: Instant,
    ) -> Result<(), String> {
        let status = resp.status;
        match c.step {
            Step::Acquire => {
                let grant = (status == 200)
                    .then(|| serde_json::from_slice::<Acquire>(body).ok())
                    .flatten();
                match grant {
                    Some(g) if g.status == "timeout" => {
                        if c.measured {
                            self.res.timeouts += 1;
                        }
                        return self.next_op(c, now);
                    }
                    Some(Acquire {
                        status: "ok",
                        token: Some(t),
                    }) if http::is_hex32(t) => c.token.copy_from_slice(t.as_bytes()),
                    _ => {
                        let wanted = "200 {\"status\":\"ok\",\"token\":…}";
                        return Err(self.unexpected_http(c.step, wanted, status, body));
                    }
                }
                c.body.clear();
                c.body.extend_from_slice(b"{\"token\":\"");
                c.body.extend_from_slice(&c.token);
                c.body.extend_from_slice(b"\"}");
                c.begin();
                http::request(
                    &mut c.out,
                    b"POST",
                    &c.path,
                    b"/release",
                    &c.headers,
                    &c.body,
                );
                c.step = Step::Release;
                c.deadline = now + self.plan.reply_timeout;
                c.flush().map_err(|e| format!("write failed: {e}"))
            }
            Step::Release | Step::Set => {
                if status != 204 {
                    return Err(self.unexpected_http(c.step, "204", status, body));
                }
                self.complete(c, now);
                self.next_op(c, now)
            }
            Step::Get => {
                let v = (status == 200)
                    .then(|| serde_json::from_slice::<KvValue>(body).ok())
                    .flatten();
                let same = v.is_some_and(|v| {
                    v.status == "ok"
                        && v.value
                            .is_some_and(|x| x.as_bytes() == &self.plan.value[..])
                });
                if !same {
                    let wanted = "200 {\"status\":\"ok\",\"value\":<the value just set>}";
                    return Err(self.unexpected_http(c.step, wanted, status, body));
                }
                self.complete(c, now);
                self.next_op(c, now)
            }
            Step::Incr | Step::Batch => {
                let v = (status == 200)
                    .then(|| serde_json::from_slice::<Counter>(body).ok())
                    .flatten();
                let Some(Counter { value: n }) = v else {
                    return Err(self.unexpected_http(c.step, "200 {\"value\":<n>}", status, body));
                };
                self.counted(c, n, now)
            }
            Step::Signal => {
                let v = (status == 200)
                    .then(|| serde_json::from_slice::<Delivered>(body).ok())
                    .flatten();
                let Some(Delivered { delivered }) = v else {
                    let wanted = "200 {\"delivered\":<n>}";
                    return Err(self.unexpected_http(c.step, wanted, status, body));
                };
                self.published(c, delivered, now)
            }
            Step::Cleanup => {
                if status != 204 {
                    return Err(self.unexpected_http(c.step, "204", status, body));
                }
                self.retire(c);
                Ok(())
            }
            Step::Listening => Err("a response on an event stream".into()),
            Step::Idle => Err(format!(
                "unexpected response {} before any request",
                show_response(status, body)
            )),
            Step::Done => Ok(()),
        }
    }

    /// One item of a subscriber's stream: `sig` events carry the publish time.
    fn on_event(&mut self, event: Event<'_>, now: Instant) -> Result<(), String> {
        let Event::Event { name, data } = event else {
            return Ok(());
        };
        let sig = (name == b"sig")
            .then(|| serde_json::from_slice::<Sig>(&data).ok())
            .flatten();
        let sent_ns = sig
            .filter(|s| s.channel.as_bytes() == &self.plan.channel[..])
            .and_then(|s| parse_u64(s.payload.as_bytes()));
        let Some(sent_ns) = sent_ns else {
            return Err(format!(
                "unexpected event {} {}",
                crate::conn::show(name),
                crate::conn::show(&data)
            ));
        };
        self.delivered(sent_ns, now);
        Ok(())
    }
}
