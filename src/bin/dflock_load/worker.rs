//! One event-loop thread: a mio `Poll` driving its connections as state
//! machines. Requests are built in each connection's reused buffer and
//! written at once; replies are parsed in place from the input buffer. Nothing
//! on the per-op path allocates (error messages do, but they end the connection).
//! The HTTP transport's requests and responses are in `http_worker.rs`.

#[path = "http_worker.rs"]
pub mod http_worker;

use crate::cli::Mode;
use crate::conn::{Conn, Fill, Step, next_line, request, show};
use crate::util::{cpu_between, parse_i64, parse_u64, push_u64, thread_cpu};
use hdrhistogram::Histogram;
use mio::{Events, Interest, Poll, Token};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How often deadlines, heartbeats and the pub/sub finish are checked.
pub const TICK: Duration = Duration::from_millis(20);
/// Subscribers only receive; a `ping` this often keeps the server's idle timeout away (§2.8).
const PING_EVERY: Duration = Duration::from_secs(10);
/// After the publishers finish, subscribers stop once no delivery arrived for this long.
const DELIVERY_QUIET: Duration = Duration::from_secs(2);
/// TTL of the `kset` values, so an interrupted run leaves nothing forever.
pub const KV_TTL: u64 = 600;
/// Error messages kept per thread (and shown in the report).
pub const SAMPLES: usize = 5;

/// The run's parameters, shared read-only by the threads.
pub struct Plan {
    pub mode: Mode,
    pub rounds: Option<u64>,
    pub epoch: Instant,
    pub warmup_end: Instant,
    pub stop: Option<Instant>,
    pub acquire_timeout: u64,
    /// `--lease`: sent with each acquire, else the server's default lease.
    pub lease: Option<u64>,
    pub limit: u32,
    pub depth: u32,
    pub subscribers: u64,
    pub reply_timeout: Duration,
    pub value: Vec<u8>,
    pub channel: Vec<u8>,
    /// `--transport http`.
    pub over_http: bool,
    /// HTTP request bodies that do not change between ops.
    pub http: http_worker::Bodies,
    /// `--rate`: the interval between one connection's op starts. A finished
    /// op leaves its connection `Idle` and `threaded.rs` starts the next.
    pub pace: Option<Duration>,
    /// Worker connections (spreads the paced connections' schedules).
    pub workers: u32,
}

impl Plan {
    fn warmup_end_ns(&self) -> u64 {
        (self.warmup_end - self.epoch).as_nanos() as u64
    }
}

/// Pub/sub bookkeeping across threads.
#[derive(Default)]
pub struct Shared {
    pub publishers_left: AtomicUsize,
    /// Deliveries owed for measured publishes: `subscribers` per acknowledged `signal`.
    pub expected: AtomicU64,
    /// Measured deliveries counted by the subscribers.
    pub received: AtomicU64,
}

/// What one thread measured.
pub struct Outcome {
    pub hist: Histogram<u64>,
    pub delivery: Histogram<u64>,
    pub ops: u64,
    pub errors: u64,
    pub timeouts: u64,
    pub deliveries: u64,
    pub max_us: u64,
    pub delivery_max_us: u64,
    pub samples: Vec<String>,
    pub last_op: Option<Instant>,
    pub last_delivery: Option<Instant>,
    pub cpu_ns: u64,
}

pub fn histogram() -> Histogram<u64> {
    // 1 µs to 1 hour, 3 significant digits.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

impl Outcome {
    pub fn new() -> Outcome {
        Outcome {
            hist: histogram(),
            delivery: histogram(),
            ops: 0,
            errors: 0,
            timeouts: 0,
            deliveries: 0,
            max_us: 0,
            delivery_max_us: 0,
            samples: Vec::new(),
            last_op: None,
            last_delivery: None,
            cpu_ns: 0,
        }
    }

    pub fn error(&mut self, msg: String) {
        self.errors += 1;
        if self.samples.len() < SAMPLES {
            self.samples.push(msg);
        }
    }
}

/// One thread's protocol driver: the event loop below and the blocking
/// thread-per-connection driver (`threaded.rs`) feed it the same way.
pub struct Worker {
    plan: Arc<Plan>,
    shared: Arc<Shared>,
    res: Outcome,
    active: usize,
    subs_active: usize,
    cpu0: Option<(u64, u64)>,
    received_local: u64,
    received_flushed: u64,
    publishers_done_at: Option<Instant>,
    last_seen: u64,
    last_progress: Instant,
}

/// Run one thread's connections to the end of the run.
pub fn run(mut conns: Vec<Conn>, plan: Arc<Plan>, shared: Arc<Shared>) -> Outcome {
    let now = Instant::now();
    let mut w = Worker::new(plan, shared, &conns, now);
    let mut poll = match Poll::new() {
        Ok(p) => p,
        Err(e) => {
            w.res.error(format!("cannot create the event loop: {e}"));
            return w.res;
        }
    };
    for (i, c) in conns.iter_mut().enumerate() {
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = poll
            .registry()
            .register(c.stream.socket(), Token(i), interest)
        {
            w.fail(c, format!("cannot register the socket: {e}"));
        }
    }
    w.maybe_start_cpu(now);
    for c in conns.iter_mut() {
        w.start(c, now);
    }
    let mut events = Events::with_capacity(1024);
    let mut next_tick = now + TICK;
    loop {
        let now = Instant::now();
        w.maybe_start_cpu(now);
        if now >= next_tick {
            w.housekeeping(&mut conns, now);
            next_tick = now + TICK;
        }
        if w.active == 0 {
            break;
        }
        if let Err(e) = poll.poll(&mut events, Some(TICK)) {
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            w.res.error(format!("event loop failed: {e}"));
            break;
        }
        for ev in events.iter() {
            let c = &mut conns[ev.token().0];
            if c.step == Step::Done {
                continue;
            }
            if ev.is_writable() {
                if let Err(e) = c.flush() {
                    let msg = format!("write failed: {e}");
                    w.fail(c, msg);
                    continue;
                }
            }
            let closed = ev.is_read_closed() || ev.is_error();
            if ev.is_readable() || closed {
                w.on_readable(c, closed);
            }
        }
        w.flush_received();
    }
    w.finish()
}

impl Worker {
    pub fn new(plan: Arc<Plan>, shared: Arc<Shared>, conns: &[Conn], now: Instant) -> Worker {
        Worker {
            plan,
            shared,
            res: Outcome::new(),
            active: conns.len(),
            subs_active: conns.iter().filter(|c| c.sub).count(),
            cpu0: None,
            received_local: 0,
            received_flushed: 0,
            publishers_done_at: None,
            last_seen: 0,
            last_progress: now,
        }
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Send a worker's first request, or arm a subscriber's heartbeat.
    pub fn start(&mut self, c: &mut Conn, now: Instant) {
        if c.step == Step::Done {
            return;
        }
        if c.sub {
            c.next_ping = now + PING_EVERY;
        } else if let Err(e) = self.next_op(c, now) {
            self.fail(c, e);
        }
    }

    /// The thread's outcome, with its CPU time since the warm-up ended.
    pub fn finish(mut self) -> Outcome {
        if let Some(c0) = self.cpu0 {
            self.res.cpu_ns = cpu_between(c0, thread_cpu());
        }
        self.res
    }

    pub fn maybe_start_cpu(&mut self, now: Instant) {
        if self.cpu0.is_none() && now >= self.plan.warmup_end {
            self.cpu0 = Some(thread_cpu());
        }
    }

    /// The connection is finished (cleanly or not).
    fn retire(&mut self, c: &mut Conn) {
        if c.step == Step::Done {
            return;
        }
        c.step = Step::Done;
        self.active -= 1;
        if c.sub {
            self.subs_active -= 1;
        } else if self.plan.mode == Mode::Pubsub {
            self.shared.publishers_left.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Record an error and drop the connection: after an unexpected reply
    /// its request/reply stream can no longer be trusted.
    pub fn fail(&mut self, c: &mut Conn, msg: String) {
        if c.step == Step::Done {
            return;
        }
        let who = if c.sub { "subscriber" } else { "conn" };
        self.res.error(format!("{who} {}: {msg}", c.idx));
        let _ = c.stream.socket().shutdown(std::net::Shutdown::Both);
        self.retire(c);
    }

    pub fn on_readable(&mut self, c: &mut Conn, drain_all: bool) {
        loop {
            let short = match c.fill() {
                Ok(Fill::Data { short }) => short,
                Ok(Fill::WouldBlock) => return,
                Ok(Fill::Eof) => {
                    let msg = match c.step {
                        Step::Listening => {
                            "connection closed by the server (a slow-consumer close? §2.7)"
                                .to_string()
                        }
                        s => format!(
                            "connection closed by the server while waiting for the reply to {}",
                            self.request_name(s)
                        ),
                    };
                    self.fail(c, msg);
                    return;
                }
                Err(e) => {
                    self.fail(c, format!("read failed: {e}"));
                    return;
                }
            };
            let now = Instant::now();
            let inb = std::mem::take(&mut c.inb);
            let result = if self.plan.over_http {
                self.on_http_input(c, &inb, now)
            } else {
                self.on_lines(c, &inb, now)
            };
            c.inb = inb;
            if let Err(msg) = result {
                self.fail(c, msg);
                return;
            }
            if c.step == Step::Done || (short && !drain_all) {
                return;
            }
        }
    }

    /// Every complete reply line in `inb[c.in_start..c.in_end]`.
    fn on_lines(&mut self, c: &mut Conn, inb: &[u8], now: Instant) -> Result<(), String> {
        while c.step != Step::Done {
            let Some((a, b)) = next_line(inb, &mut c.in_start, c.in_end) else {
                break;
            };
            self.on_line(c, &inb[a..b], now)?;
        }
        Ok(())
    }

    fn request_name(&self, step: Step) -> &'static str {
        if self.plan.over_http {
            return http_worker::request_name(self.plan.mode, step);
        }
        let sem = self.plan.mode == Mode::Semaphore;
        match step {
            Step::Acquire if sem => "sl",
            Step::Acquire => "l",
            Step::Release if sem => "sr",
            Step::Release => "r",
            Step::Set => "kset",
            Step::Get => "kget",
            Step::Incr | Step::Batch => "incr",
            Step::Signal => "signal",
            Step::Cleanup if self.plan.mode == Mode::Kv => "kdel",
            Step::Cleanup => "cset",
            Step::Listening => "ping",
            Step::Idle | Step::Done => "nothing",
        }
    }

    fn unexpected(&self, step: Step, wanted: &str, line: &[u8]) -> String {
        format!(
            "reply to {}: expected {wanted}, got {}",
            self.request_name(step),
            show(line)
        )
    }

    /// One reply (or push frame) for `c`.
    fn on_line(&mut self, c: &mut Conn, line: &[u8], now: Instant) -> Result<(), String> {
        match c.step {
            Step::Acquire => {
                if line == b"timeout" {
                    if c.measured {
                        self.res.timeouts += 1;
                    }
                    return self.next_op(c, now);
                }
                let Some(token) = parse_grant(line) else {
                    return Err(self.unexpected(c.step, "\"ok <token> <lease>\"", line));
                };
                c.token.copy_from_slice(token);
                let cmd: &[u8] = if self.plan.mode == Mode::Semaphore {
                    b"sr"
                } else {
                    b"r"
                };
                let token = c.token;
                c.begin();
                c.push_request(cmd, |o| o.extend_from_slice(&token));
                c.step = Step::Release;
                c.deadline = now + self.plan.reply_timeout;
                c.flush().map_err(|e| format!("write failed: {e}"))
            }
            Step::Release | Step::Set => {
                if line != b"ok" {
                    return Err(self.unexpected(c.step, "\"ok\"", line));
                }
                self.complete(c, now);
                self.next_op(c, now)
            }
            Step::Get => {
                if line.strip_prefix(b"ok ") != Some(&self.plan.value[..]) {
                    return Err(self.unexpected(c.step, "\"ok <the value just set>\"", line));
                }
                self.complete(c, now);
                self.next_op(c, now)
            }
            Step::Incr | Step::Batch => {
                let Some(n) = line.strip_prefix(b"ok ").and_then(parse_i64) else {
                    return Err(self.unexpected(c.step, "\"ok <value>\"", line));
                };
                self.counted(c, n, now)
            }
            Step::Signal => {
                let delivered = line.strip_prefix(b"ok ").and_then(parse_u64);
                let Some(delivered) = delivered else {
                    return Err(self.unexpected(c.step, "\"ok <delivered>\"", line));
                };
                self.published(c, delivered, now)
            }
            Step::Cleanup => {
                if line != b"ok" {
                    return Err(self.unexpected(c.step, "\"ok\"", line));
                }
                self.retire(c);
                Ok(())
            }
            Step::Listening => {
                if let Some(frame) = line.strip_prefix(b"sig ") {
                    return self.on_delivery(frame, now);
                }
                if line == b"ok" && c.pings > 0 {
                    c.pings -= 1;
                    return Ok(());
                }
                Err(format!("unexpected line {} on a subscriber", show(line)))
            }
            Step::Idle => Err(format!("unexpected line {} before any request", show(line))),
            Step::Done => Ok(()),
        }
    }

    /// An `incr` answered `n` (one reply of a pipelined batch, or the op).
    fn counted(&mut self, c: &mut Conn, n: i64, now: Instant) -> Result<(), String> {
        if let Some(prev) = c.counter {
            if Some(n) != prev.checked_add(1) {
                return Err(format!(
                    "incr returned {n} after {prev}: someone else uses key {}",
                    show(&c.key)
                ));
            }
        }
        c.counter = Some(n);
        self.complete(c, now);
        if c.step == Step::Batch {
            c.pending -= 1;
            if c.pending > 0 {
                return Ok(());
            }
        }
        self.next_op(c, now)
    }

    /// A `signal` reached `delivered` subscribers.
    fn published(&mut self, c: &mut Conn, delivered: u64, now: Instant) -> Result<(), String> {
        if delivered < self.plan.subscribers {
            return Err(format!(
                "signal reached {delivered} of {} subscribers",
                self.plan.subscribers
            ));
        }
        if c.measured {
            let n = self.plan.subscribers;
            self.shared.expected.fetch_add(n, Ordering::AcqRel);
        }
        self.complete(c, now);
        self.next_op(c, now)
    }

    /// `sig <channel> <payload>`, where the payload is the publish time in
    /// nanoseconds since the run's epoch.
    fn on_delivery(&mut self, frame: &[u8], now: Instant) -> Result<(), String> {
        let ch = &self.plan.channel;
        let payload = frame
            .strip_prefix(&ch[..])
            .and_then(|r| r.strip_prefix(b" "))
            .and_then(parse_u64);
        let Some(sent_ns) = payload else {
            return Err(format!("unexpected push frame {}", show(frame)));
        };
        self.delivered(sent_ns, now);
        Ok(())
    }

    /// A delivery of a signal published at `sent_ns` (since the run's epoch).
    fn delivered(&mut self, sent_ns: u64, now: Instant) {
        if sent_ns >= self.plan.warmup_end_ns() {
            let now_ns = (now - self.plan.epoch).as_nanos() as u64;
            let us = now_ns.saturating_sub(sent_ns) / 1000;
            self.res.delivery.saturating_record(us);
            self.res.delivery_max_us = self.res.delivery_max_us.max(us);
            self.res.deliveries += 1;
            self.res.last_delivery = Some(now);
            self.received_local += 1;
        }
    }

    /// The current op (or, in pipeline mode, one reply of it) finished.
    fn complete(&mut self, c: &Conn, now: Instant) {
        if c.measured {
            let us = now.saturating_duration_since(c.op_start).as_micros() as u64;
            self.res.hist.saturating_record(us);
            self.res.max_us = self.res.max_us.max(us);
            self.res.ops += 1;
            self.res.last_op = Some(now);
        }
    }

    /// Start the connection's next op, or its clean-up when the run is over.
    fn next_op(&mut self, c: &mut Conn, now: Instant) -> Result<(), String> {
        if self.plan.pace.is_some() && c.step != Step::Idle {
            c.step = Step::Idle;
            return Ok(());
        }
        let measuring = now >= self.plan.warmup_end;
        let finished = match (self.plan.rounds, self.plan.stop) {
            (Some(r), _) => measuring && c.started >= r,
            (None, Some(stop)) => now >= stop,
            (None, None) => true,
        };
        if finished {
            return self.cleanup(c, now);
        }
        // Borrowed, not cloned: an Arc clone per op would bounce its count between threads.
        let plan = &*self.plan;
        c.op_start = now;
        c.measured = measuring;
        if measuring {
            c.started += 1;
        }
        let mut deadline = now + plan.reply_timeout;
        if plan.over_http {
            let sent_ns = (now - plan.epoch).as_nanos() as u64;
            if http_worker::begin(c, plan, sent_ns) {
                deadline += Duration::from_secs(plan.acquire_timeout);
            }
            c.deadline = deadline;
            return c.flush().map_err(|e| format!("write failed: {e}"));
        }
        match plan.mode {
            Mode::Lock | Mode::Contended => {
                c.begin();
                c.push_request(b"l", |o| {
                    push_u64(o, plan.acquire_timeout);
                    push_lease(o, plan.lease);
                });
                c.step = Step::Acquire;
                deadline += Duration::from_secs(plan.acquire_timeout);
            }
            Mode::Semaphore => {
                c.begin();
                c.push_request(b"sl", |o| {
                    push_u64(o, plan.acquire_timeout);
                    o.push(b' ');
                    push_u64(o, u64::from(plan.limit));
                    push_lease(o, plan.lease);
                });
                c.step = Step::Acquire;
                deadline += Duration::from_secs(plan.acquire_timeout);
            }
            Mode::Kv if c.get_next => {
                c.begin();
                c.push_request(b"kget", |_| {});
                c.step = Step::Get;
                c.get_next = false;
            }
            Mode::Kv => {
                c.begin();
                c.push_request(b"kset", |o| {
                    o.extend_from_slice(&plan.value);
                    o.push(b'\t');
                    push_u64(o, KV_TTL);
                });
                c.step = Step::Set;
                c.get_next = true;
            }
            Mode::Counter => {
                c.begin();
                c.push_request(b"incr", |o| o.push(b'1'));
                c.step = Step::Incr;
            }
            Mode::Pipeline => {
                if c.batch_ready {
                    c.out_pos = 0;
                } else {
                    c.begin();
                    for _ in 0..plan.depth {
                        c.push_request(b"incr", |o| o.push(b'1'));
                    }
                    c.batch_ready = true;
                }
                c.pending = plan.depth;
                c.step = Step::Batch;
            }
            Mode::Connect => return Err("connect mode runs in connect.rs".into()),
            Mode::Pubsub => {
                let sent_ns = (now - plan.epoch).as_nanos() as u64;
                request(c.begin(), b"signal", &plan.channel, |o| {
                    push_u64(o, sent_ns)
                });
                c.step = Step::Signal;
            }
        }
        c.deadline = deadline;
        c.flush().map_err(|e| format!("write failed: {e}"))
    }

    /// Undo what the mode leaves behind: KV entries are deleted, counters reset
    /// to 0 (idle garbage collection then removes them, §7.5).
    fn cleanup(&mut self, c: &mut Conn, now: Instant) -> Result<(), String> {
        if self.plan.over_http {
            if !http_worker::begin_cleanup(c, &self.plan) {
                self.retire(c);
                return Ok(());
            }
            c.deadline = now + self.plan.reply_timeout;
            return c.flush().map_err(|e| format!("write failed: {e}"));
        }
        match self.plan.mode {
            Mode::Kv => {
                c.begin();
                c.push_request(b"kdel", |_| {});
            }
            Mode::Counter | Mode::Pipeline => {
                c.begin();
                c.push_request(b"cset", |o| o.push(b'0'));
            }
            _ => {
                self.retire(c);
                return Ok(());
            }
        }
        c.step = Step::Cleanup;
        c.deadline = now + self.plan.reply_timeout;
        c.flush().map_err(|e| format!("write failed: {e}"))
    }

    /// Deadlines, subscriber heartbeats, and the end of a pub/sub run.
    pub fn housekeeping(&mut self, conns: &mut [Conn], now: Instant) {
        for c in conns.iter_mut() {
            match c.step {
                Step::Done | Step::Idle => {}
                // Event streams need no heartbeat (http.md §7).
                Step::Listening if self.plan.over_http => {}
                Step::Listening => {
                    if c.pings > 0 && now > c.deadline {
                        let t = self.plan.reply_timeout;
                        self.fail(c, format!("no reply to ping within {t:?}"));
                    } else if now >= c.next_ping {
                        request(c.begin(), b"ping", b"_", |_| {});
                        c.pings += 1;
                        c.deadline = now + self.plan.reply_timeout;
                        c.next_ping = now + PING_EVERY;
                        if let Err(e) = c.flush() {
                            self.fail(c, format!("write failed: {e}"));
                        }
                    }
                }
                step => {
                    if now > c.deadline {
                        let name = self.request_name(step);
                        let rt = self.plan.reply_timeout;
                        let within = if step == Step::Acquire {
                            format!(
                                "the {} s acquire timeout + {rt:?}",
                                self.plan.acquire_timeout
                            )
                        } else {
                            format!("{rt:?}")
                        };
                        self.fail(
                            c,
                            format!("no reply to {name} within {within} (--reply-timeout)"),
                        );
                    }
                }
            }
        }
        if self.subs_active == 0 || self.shared.publishers_left.load(Ordering::Acquire) > 0 {
            return;
        }
        self.flush_received();
        let done_at = *self.publishers_done_at.get_or_insert(now);
        let received = self.shared.received.load(Ordering::Acquire);
        if received != self.last_seen {
            self.last_seen = received;
            self.last_progress = now;
        }
        let quiet_since = self.last_progress.max(done_at);
        let expected = self.shared.expected.load(Ordering::Acquire);
        if received >= expected || now - quiet_since >= DELIVERY_QUIET {
            for c in conns.iter_mut().filter(|c| c.sub) {
                self.retire(c);
            }
        }
    }

    pub fn flush_received(&mut self) {
        if self.received_local > self.received_flushed {
            let d = self.received_local - self.received_flushed;
            self.shared.received.fetch_add(d, Ordering::AcqRel);
            self.received_flushed = self.received_local;
        }
    }
}

/// ` <lease>` after an acquire's timeout, when `--lease` is given.
fn push_lease(o: &mut Vec<u8>, lease: Option<u64>) {
    if let Some(l) = lease {
        o.push(b' ');
        push_u64(o, l);
    }
}

/// `ok <token> <lease>` or, with `--fence-field`, `ok <token> <lease> <fence>`;
/// the token must be 32 lowercase hex characters (§6.1).
fn parse_grant(line: &[u8]) -> Option<&[u8]> {
    let mut f = line.strip_prefix(b"ok ")?.split(|&b| b == b' ');
    let token = f.next()?;
    let hex = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
    if token.len() != 32 || !token.iter().all(hex) {
        return None;
    }
    parse_u64(f.next()?)?;
    if let Some(fence) = f.next() {
        parse_u64(fence)?;
    }
    f.next().is_none().then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants() {
        let t = b"18ea9db47e590001d433357e6ef5d88b";
        assert_eq!(
            parse_grant(b"ok 18ea9db47e590001d433357e6ef5d88b 33"),
            Some(&t[..])
        );
        assert_eq!(
            parse_grant(b"ok 18ea9db47e590001d433357e6ef5d88b 60 1795420800000000001"),
            Some(&t[..])
        );
        assert_eq!(parse_grant(b"ok 18ea9db47e590001d433357e6ef5d88b"), None);
        assert_eq!(parse_grant(b"ok 18EA9DB47E590001D433357E6EF5D88B 33"), None);
        assert_eq!(
            parse_grant(b"ok 18ea9db47e590001d433357e6ef5d88b 33 1 2"),
            None
        );
        assert_eq!(parse_grant(b"timeout"), None);
        assert_eq!(parse_grant(b"error_auth"), None);
    }

    #[test]
    fn requests() {
        let mut v = Vec::new();
        request(&mut v, b"l", b"k", |o| push_u64(o, 10));
        request(&mut v, b"kget", b"k", |_| {});
        assert_eq!(v, b"l\nk\n10\nkget\nk\n\n");
    }
}
