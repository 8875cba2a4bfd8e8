//! The event loop: one `mio::Poll`, listeners and connections in a slab, one
//! timer wheel. Order per iteration (sozu's): poll → read the clock once →
//! record readiness → fire due timers → accept → serve the ready list →
//! reap closed connections → check shutdown. After an iteration that saw
//! traffic the loop polls without sleeping for `--busy-poll-us` (`busy.rs`).

mod accept;
pub mod activation;
mod banner;
mod busy;
mod dispatch;
mod http;
mod memory;
mod refusal_log;
mod shutdown;
mod tls;
pub mod tokens;

use crate::config::{Config, HttpConfig};
use crate::conn::Conn;
use crate::error::StartupError;
use crate::http::metrics::HttpStats;
use crate::http::parse::HeadLimits;
use crate::http::rate::RateLimiter;
use crate::http::response::DateCache;
use crate::http::session::Sessions;
use crate::owner::OwnerId;
use crate::protocol::LineLimits;
use crate::protocol::command::CommandLimits;
use crate::state::fence::{Fences, wall_clock_ns};
use crate::state::{Out, State, StateConfig};
use crate::timer::wheel::Wheel;
use crate::timer::{Clock, Timer};
use busy::BusyPoll;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll};
use shutdown::{Signals, sd_notify};
use slab::Slab;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokens::{SIGNALS, listener_index, listener_token};

/// The connection `id` names, if that slot still holds it (generation match).
pub(super) fn live(conns: &mut Slab<Conn>, id: OwnerId) -> Option<&mut Conn> {
    conns.get_mut(id.slot as usize).filter(|c| c.id == id)
}

/// One fewer connection from `ip` in a per-IP count.
fn release_ip(table: &mut HashMap<IpAddr, u32>, ip: IpAddr) {
    if let Some(n) = table.get_mut(&ip) {
        *n -= 1;
        if *n == 0 {
            table.remove(&ip);
        }
    }
}

/// Poll at least this often even with no timers (keeps the loop observable).
const MAX_POLL_MS: u64 = 1000;
/// Consecutive poll failures before the server gives up.
const MAX_POLL_FAILURES: u32 = 16;

/// Settings of the connection layer.
#[derive(Debug, Clone)]
pub struct NetConfig {
    pub line: LineLimits,
    pub cmd: CommandLimits,
    /// Input buffer cap per connection (≥ 64 KiB and ≥ one maximum request).
    pub max_input: usize,
    /// Input buffer cap of an HTTP connection: a whole head and body.
    pub max_input_http: usize,
    pub max_output: usize,
    pub max_connections: u64,
    pub max_connections_per_ip: u64,
    pub max_unauthenticated: u64,
    pub read_timeout_ms: u64,
    pub write_timeout_ms: u64,
    pub shutdown_timeout_ms: u64,
    pub auth_token: Option<Vec<u8>>,
    /// Where the token came from, for SIGHUP reloads.
    pub auth_token_file: Option<std::path::PathBuf>,
}

struct Listener {
    sock: TcpListener,
    addr: SocketAddr,
    kind: &'static str,
    /// Readiness seen and not yet drained to WouldBlock.
    ready: bool,
}

pub struct Server {
    poll: Poll,
    events: Events,
    listeners: Vec<Option<Listener>>,
    conns: Slab<Conn>,
    /// Generation per slab slot, bumped on every close.
    gens: Vec<u32>,
    /// Buffer bytes charged to the memory budget per slab slot (`memory.rs`).
    buffer_bytes: Vec<usize>,
    /// TCP and Dreadlock connections per client IP (`--max-connections-per-ip`).
    per_ip: HashMap<IpAddr, u32>,
    /// TCP and Dreadlock connections not yet authenticated, while auth is on
    /// (`--max-unauthenticated-connections`).
    unauthed: u64,
    /// HTTP connections per client IP (`--http-max-connections-per-ip`).
    http_per_ip: HashMap<IpAddr, u32>,
    /// Open HTTP connections (they are not `stats` `connections`).
    http_conns: usize,
    http_cfg: HttpConfig,
    sessions: Sessions,
    session_sweep_armed: bool,
    http_stats: HttpStats,
    http_rate: RateLimiter,
    dates: DateCache,
    next_serial: u64,
    ready: VecDeque<OwnerId>,
    /// Connections with pushed output to write at the end of the iteration.
    to_flush: Vec<OwnerId>,
    dead: Vec<OwnerId>,
    clock: Clock,
    wheel: Wheel<Timer>,
    outbox: Vec<Out>,
    state: State,
    net: NetConfig,
    signals: Signals,
    busy: BusyPoll,
    draining: bool,
    stop_now: bool,
    /// Refusal and close lines, rate-limited per kind (refusal_log.rs).
    refusals: refusal_log::Refusals,
    /// TLS files and configurations; `None` = plain text on every listener.
    tls: Option<tls::TlsRuntime>,
    /// Feed the systemd watchdog this often (ms); `None` = no watchdog.
    watchdog_ms: Option<u64>,
}

impl Server {
    /// Bind every listener, reserve the first fence block, and get ready to run.
    pub fn bind(cfg: &Config) -> Result<Server, StartupError> {
        Server::bind_with(cfg, activation::Inherited::default())
    }

    /// As [`Server::bind`], but a listener with a socket in `inherited`
    /// (systemd socket activation) uses it instead of binding, whatever its
    /// host and port settings say; an inherited socket also enables a
    /// listener whose port is 0.
    pub fn bind_with(
        cfg: &Config,
        mut inherited: activation::Inherited,
    ) -> Result<Server, StartupError> {
        let tls = match &cfg.tls {
            Some(files) => Some(tls::TlsRuntime {
                material: crate::net::tls::load(files).map_err(StartupError::Tls)?,
                files: files.clone(),
            }),
            None => None,
        };
        let poll = Poll::new().map_err(StartupError::Io)?;
        let mut listeners = Vec::new();
        let mut binds = vec![(SocketAddr::new(cfg.host, cfg.port), "tcp")];
        if cfg.dreadlock_port != 0 || inherited.has("dreadlock") {
            binds.push((SocketAddr::new(cfg.host, cfg.dreadlock_port), "dreadlock"));
        }
        if cfg.http_port != 0 || inherited.has("http") {
            binds.push((SocketAddr::new(cfg.http_host, cfg.http_port), "http"));
        }
        for (i, (addr, kind)) in binds.into_iter().enumerate() {
            let mut sock = match inherited.take(kind) {
                Some(std_listener) => TcpListener::from_std(std_listener),
                None => {
                    TcpListener::bind(addr).map_err(|e| StartupError::Bind { addr, source: e })?
                }
            };
            let addr = sock.local_addr().map_err(StartupError::Io)?;
            poll.registry()
                .register(&mut sock, listener_token(i), Interest::READABLE)
                .map_err(StartupError::Io)?;
            listeners.push(Some(Listener {
                sock,
                addr,
                kind,
                ready: true,
            }));
        }
        let fences = Fences::open(cfg.fence_state_file.as_deref(), wall_clock_ns())
            .map_err(StartupError::Fence)?;
        let signals = Signals::register(poll.registry(), SIGNALS).map_err(StartupError::Io)?;
        let clock = Clock::new();
        let line = LineLimits::for_value_bytes(cfg.limits.max_value_bytes);
        let net = NetConfig {
            line,
            cmd: CommandLimits {
                max_value_bytes: cfg.limits.max_value_bytes,
            },
            max_input: line.max_request().max(64 * 1024),
            max_input_http: HeadLimits::default().max_head_bytes
                + HeadLimits::default().max_body_bytes,
            max_output: cfg.limits.max_output_bytes,
            max_connections: cfg.limits.max_connections,
            max_connections_per_ip: cfg.limits.max_connections_per_ip,
            max_unauthenticated: cfg.limits.max_unauthenticated_connections,
            read_timeout_ms: cfg.read_timeout_s.saturating_mul(1000),
            write_timeout_ms: cfg.write_timeout_s.saturating_mul(1000),
            shutdown_timeout_ms: cfg.shutdown_timeout_s.saturating_mul(1000),
            auth_token: cfg.auth_token.clone(),
            auth_token_file: cfg.auth_token_file.clone(),
        };
        let state_cfg = StateConfig {
            default_lease_s: cfg.default_lease_s,
            auto_release: cfg.auto_release_on_disconnect,
            fence_field: cfg.fence_field,
            max_locks: cfg.limits.max_locks,
            max_waiters: cfg.limits.max_waiters,
            max_keys: cfg.limits.max_keys,
            max_list_length: cfg.limits.max_list_length,
            max_subscriptions: cfg.limits.max_subscriptions,
            max_memory: cfg.limits.max_memory,
            gc_interval_ms: cfg.gc_interval_s.saturating_mul(1000),
            gc_max_idle_ms: cfg.gc_max_idle_s.saturating_mul(1000),
        };
        let bound: Vec<_> = listeners
            .iter()
            .flatten()
            .map(|l| (l.addr, l.kind))
            .collect();
        log::info!("{}", banner::startup_line(cfg, &bound));
        let mut state = State::new(state_cfg, fences);
        state.view.tls = tls.as_ref().map(tls::TlsRuntime::view);
        Ok(Server {
            poll,
            events: Events::with_capacity(1024),
            listeners,
            conns: Slab::new(),
            gens: Vec::new(),
            buffer_bytes: Vec::new(),
            per_ip: HashMap::new(),
            unauthed: 0,
            http_per_ip: HashMap::new(),
            http_conns: 0,
            http_rate: RateLimiter::new(cfg.http.rate_limit_per_ip, cfg.http.rate_limit_burst),
            http_cfg: cfg.http.clone(),
            sessions: Sessions::default(),
            session_sweep_armed: false,
            http_stats: HttpStats::default(),
            dates: DateCache::new(),
            next_serial: 1,
            ready: VecDeque::new(),
            to_flush: Vec::new(),
            dead: Vec::new(),
            wheel: Wheel::new(clock.now()),
            clock,
            outbox: Vec::new(),
            state,
            net,
            signals,
            busy: BusyPoll::new(cfg.busy_poll_us),
            draining: false,
            stop_now: false,
            refusals: refusal_log::Refusals::default(),
            tls,
            watchdog_ms: shutdown::watchdog_interval_ms(&|k| std::env::var(k).ok()),
        })
    }

    /// Addresses actually bound, with their kinds.
    pub fn local_addrs(&self) -> Vec<(SocketAddr, &'static str)> {
        self.listeners
            .iter()
            .flatten()
            .map(|l| (l.addr, l.kind))
            .collect()
    }

    /// Run until drained or stopped. Returns the process exit status.
    pub fn run(mut self) -> i32 {
        for (addr, kind) in self.local_addrs() {
            log::info!("listening on {addr} ({kind})");
        }
        match &self.tls {
            None => log::info!("TLS off"),
            Some(rt) => log::info!(
                "TLS on every listener (certificate {}, valid until {}; client certificates {})",
                rt.files.cert.display(),
                rt.material
                    .not_after
                    .map_or_else(|| "unknown".to_owned(), crate::net::x509::rfc3339),
                if rt.material.client_auth {
                    "required"
                } else {
                    "not requested"
                }
            ),
        }
        let names: Vec<String> = self
            .local_addrs()
            .iter()
            .map(|(a, k)| format!("{a} ({k})"))
            .collect();
        sd_notify(&format!(
            "READY=1\nSTATUS=listening on {}",
            names.join(", ")
        ));
        self.clock.update();
        self.feed_watchdog();
        self.with_state(|s, cx| s.start(cx));
        // Start-up is over: give the heap it freed (config, PEM parsing) back.
        memory::release_free_heap();
        let mut failures = 0;
        loop {
            let timeout = self.poll_timeout();
            let spin = self.busy.spin(timeout);
            let wait = if spin { Duration::ZERO } else { timeout };
            if let Err(e) = self.poll.poll(&mut self.events, Some(wait)) {
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                failures += 1;
                log::error!("poll failed ({failures}/{MAX_POLL_FAILURES}): {e}");
                if failures >= MAX_POLL_FAILURES {
                    return 1;
                }
                continue;
            }
            failures = 0;
            let traffic = !self.events.is_empty();
            if spin && !traffic {
                // Nothing yet and no timer due: poll again, after letting
                // anything else runnable on this CPU go first.
                self.busy.yield_cpu();
                continue;
            }
            self.clock.update();
            self.record_events();
            if self.signals.pending() {
                self.on_signals();
            }
            self.fire_timers();
            self.refusals.flush(self.clock.now());
            self.accept_pending();
            self.serve_ready();
            self.reap();
            self.flush_queued();
            self.reap();
            if traffic {
                // Measured from the end of the work: the reply that ends
                // the spin comes one client round trip after our writes.
                self.busy.saw_traffic();
            }
            if self.stop_now || (self.draining && self.conns.is_empty()) {
                log::info!("exiting");
                return 0;
            }
        }
    }

    fn poll_timeout(&mut self) -> Duration {
        if !self.ready.is_empty() || !self.to_flush.is_empty() {
            return Duration::ZERO;
        }
        let now = self.clock.update();
        let ms = match self.wheel.poll_at() {
            Some(at) => at.saturating_sub(now).min(MAX_POLL_MS),
            None => MAX_POLL_MS,
        };
        // The clock floors to whole ms; +1 makes sure we wake at or after the deadline.
        Duration::from_millis(if ms == 0 { 0 } else { ms + 1 })
    }

    /// Bookkeeping only: note readiness and queue connections.
    fn record_events(&mut self) {
        for ev in self.events.iter() {
            let token = ev.token();
            if token == SIGNALS {
                self.signals.set_readable();
                continue;
            }
            if let Some(i) = listener_index(token) {
                if let Some(Some(l)) = self.listeners.get_mut(i) {
                    l.ready = true;
                }
                continue;
            }
            let Some(conn) = self.conns.get_mut(token.0) else {
                continue;
            };
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                conn.readable = true;
            }
            if ev.is_read_closed() || ev.is_error() {
                conn.hup = true;
            }
            if ev.is_writable() {
                conn.writable = true;
            }
            if !conn.queued {
                conn.queued = true;
                self.ready.push_back(conn.id);
            }
        }
    }

    fn fire_timers(&mut self) {
        let now = self.clock.now();
        let mut gc = false;
        while let Some((_, timer)) = self.wheel.poll(now) {
            gc |= matches!(timer, Timer::Gc);
            if !self.with_state(|s, cx| s.on_timer(cx, timer)) {
                self.on_conn_timer(timer);
            }
            self.deliver_outbox();
        }
        // The periodic GC tick is also when a burst of leases or waits that
        // has since ended gives its memory back.
        if gc {
            let freed = self.state.take_freed_memory();
            self.reclaim(freed);
        }
    }

    /// Close dead connections after the batch and run their cleanup.
    fn reap(&mut self) {
        while !self.dead.is_empty() {
            let dead = std::mem::take(&mut self.dead);
            for id in dead {
                self.close_conn(id);
            }
            self.deliver_outbox();
        }
    }

    /// After a connection storm, give the slab's and queues' memory back once
    /// three quarters of it is unused (only trailing slots can go: keys stay
    /// valid). Tried only at power-of-two occupancy, so a mass close costs
    /// O(log n) shrink attempts, not one per close.
    fn shrink_tables(&mut self) {
        let (len, cap) = (self.conns.len(), self.conns.capacity());
        if cap >= 64 && len * 4 < cap && (len == 0 || len.is_power_of_two()) {
            self.conns.shrink_to_fit();
            self.ready.shrink_to_fit();
            self.per_ip.shrink_to_fit();
            self.buffer_bytes.truncate(self.conns.capacity());
            self.buffer_bytes.shrink_to_fit();
            // Closing connections cancelled their idle and write timers.
            self.reclaim(true);
        }
    }

    /// Shrink the timer wheel if a burst left it mostly free, and hand free
    /// heap pages back to the kernel if that or the caller (`shrank`) freed
    /// anything.
    fn reclaim(&mut self, shrank: bool) {
        let wheel_shrank = self.wheel.is_sparse() && self.wheel.shrink();
        if shrank || wheel_shrank {
            memory::release_free_heap();
        }
    }

    fn close_conn(&mut self, id: OwnerId) {
        if live(&mut self.conns, id).is_none() {
            return;
        }
        let mut conn = self.conns.remove(id.slot as usize);
        self.forget_buffers(id.slot as usize);
        if let Err(e) = self.poll.registry().deregister(conn.transport.socket()) {
            log::debug!("conn {}: deregister failed: {e}", conn.serial);
        }
        self.close_transport(&mut conn.transport, conn.serial);
        for t in [conn.idle_timer, conn.write_timer].into_iter().flatten() {
            self.wheel.cancel(t);
        }
        if conn.http.is_none() {
            release_ip(&mut self.per_ip, conn.peer);
            if self.net.auth_token.is_some() && !conn.authed {
                self.unauthed = self.unauthed.saturating_sub(1);
            }
        }
        if let Some(h) = conn.http.take() {
            release_ip(&mut self.http_per_ip, conn.peer);
            self.http_conns -= 1;
            self.on_http_close(id, h.mode, conn.peer);
        }
        if let Some(g) = self.gens.get_mut(id.slot as usize) {
            *g = g.wrapping_add(1);
        }
        self.with_state(|s, cx| s.on_disconnect(cx, id));
        self.refresh_connection_view();
        self.shrink_tables();
        self.refusals.closed(&conn);
    }
}
