//! Command line of `dflock-load`: flags, per-mode validation, and the echo
//! of the command line that starts every report.

use crate::threaded::MAX_THREADED_CONNECTIONS;
use clap::error::ErrorKind;
use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};
use std::time::Duration;

/// What one operation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// `l` + `r` on a key of its own per connection (one op = the pair)
    Lock,
    /// every connection `l`s one shared key, then `r`: FIFO hand-offs
    Contended,
    /// `sl` + `sr` on one shared semaphore with `--limit` permits
    Semaphore,
    /// `kset` and `kget` alternating on a key per connection (one op = one request)
    Kv,
    /// `incr` on a counter per connection
    Counter,
    /// `signal` fan-out to `--subscribers` listeners of one channel
    Pubsub,
    /// `--depth` `incr` requests written at once, then the replies (one op = one reply)
    Pipeline,
    /// a new connection per op: connect (with --tls-ca: a full TLS handshake), `ping`, close
    Connect,
}

/// How requests travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    /// The line protocol on the TCP port (dflockd-protocol(7))
    Tcp,
    /// The REST API on the HTTP port (dflockd-http(7)): keep-alive HTTP/1.1, one
    /// session per worker in the lock modes, SSE streams for subscribers
    Http,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Http => "http",
        }
    }

    /// The port the server listens on for this transport by default.
    fn default_server(self) -> &'static str {
        match self {
            Transport::Tcp => "127.0.0.1:6388",
            Transport::Http => "127.0.0.1:6389",
        }
    }
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Lock => "lock",
            Mode::Contended => "contended",
            Mode::Semaphore => "semaphore",
            Mode::Kv => "kv",
            Mode::Counter => "counter",
            Mode::Pubsub => "pubsub",
            Mode::Pipeline => "pipeline",
            Mode::Connect => "connect",
        }
    }
}

/// Load generator for servers that speak the dflockd protocol.
///
/// Runs one mio event loop per thread, each driving its share of the
/// connections as non-blocking state machines. Every reply is validated.
///
/// Exit status: 0 clean run; 1 any error or timeout (so it can gate CI);
/// 64 bad usage; 69 the server could not be reached or refused `auth`/`listen`.
#[derive(Parser, Debug)]
#[command(name = "dflock-load", version)]
pub struct Args {
    /// Workload to run
    #[arg(value_enum)]
    pub mode: Mode,

    /// Server address; the only address the tool talks to
    /// [default: 127.0.0.1:6388, or 127.0.0.1:6389 with --transport http]
    #[arg(short = 's', long, value_name = "HOST:PORT")]
    pub server: Option<String>,

    /// Protocol: the TCP line protocol, or the HTTP API (--server is then the HTTP port)
    #[arg(long, value_enum, value_name = "T", default_value_t = Transport::Tcp)]
    pub transport: Transport,

    /// Worker connections (publishers in pubsub mode)
    #[arg(short = 'c', long, value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub connections: u32,

    /// Measured ops per connection (pipeline: batches); default 1000 without --duration
    #[arg(short = 'n', long, value_name = "N", conflicts_with = "duration",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub rounds: Option<u64>,

    /// Measure for S seconds instead of a number of rounds
    #[arg(short = 'd', long, value_name = "S", value_parser = parse_secs)]
    pub duration: Option<Duration>,

    /// Run unmeasured for S seconds first
    #[arg(long, value_name = "S", value_parser = parse_secs_or_zero, default_value = "0")]
    pub warmup: Duration,

    /// Event-loop threads; connections are spread round-robin
    #[arg(short = 't', long, value_name = "T", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: u32,

    /// One OS thread per connection with blocking reads, like the Go, Python and
    /// TypeScript clients (instead of --threads event loops); at most 4096 connections
    #[arg(long, conflicts_with = "threads")]
    pub threads_per_connection: bool,

    /// Pace the run to about N ops/s in all, each connection starting its ops
    /// on a fixed schedule (with --threads-per-connection)
    #[arg(long, value_name = "N", requires = "threads_per_connection",
          value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub rate: Option<u32>,

    /// semaphore: permits of the shared semaphore [default: half the connections, at least 1]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    pub limit: Option<u32>,

    /// pubsub: listening connections [default: 10]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub subscribers: Option<u32>,

    /// pipeline: requests written at once per connection [default: 16]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub depth: Option<u32>,

    /// kv: bytes per value [default: 16]
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub value_size: Option<u32>,

    /// Timeout in seconds sent with `l` and `sl`
    #[arg(long, value_name = "S", default_value_t = 10)]
    pub timeout: u64,

    /// Lease in seconds sent with `l` and `sl` (HTTP: `lease_ttl_s`); the server's default when not given
    #[arg(long, value_name = "S", value_parser = clap::value_parser!(u64).range(1..=9_223_372_036))]
    pub lease: Option<u64>,

    /// Seconds to wait for a reply (beyond the acquire timeout) before it counts as an error
    #[arg(long, value_name = "S", value_parser = parse_secs, default_value = "10")]
    pub reply_timeout: Duration,

    /// Prefix of every key and channel used (give concurrent runs different prefixes)
    #[arg(long, value_name = "P", default_value = "dflock-load", value_parser = parse_prefix)]
    pub key_prefix: String,

    /// Send `auth` with this token first on every connection
    /// (HTTP: `Authorization: Bearer` on every request)
    #[arg(long, value_name = "TOKEN")]
    pub auth_token: Option<String>,

    /// Speak TLS (TLS 1.3 preferred), trusting the CA certificates in this PEM file
    #[arg(long, value_name = "PATH")]
    pub tls_ca: Option<std::path::PathBuf>,

    /// Name the server certificate must carry (default: the host part of --server)
    #[arg(long, value_name = "NAME", requires = "tls_ca")]
    pub tls_server_name: Option<String>,

    /// Print one JSON object instead of the text report
    #[arg(long)]
    pub json: bool,
}

impl Args {
    /// Parse the process arguments, with the mode-specific checks clap cannot express.
    /// Usage errors exit with 64 (EX_USAGE), like `dflockd`'s.
    pub fn parse_checked() -> Args {
        // With the hidden `--completions` (handled in main), so a bad shell
        // name is reported as such rather than as an unknown flag.
        let args = Args::command()
            .arg(dflockd::completions::arg())
            .try_get_matches()
            .and_then(|m| Args::from_arg_matches(&m))
            .unwrap_or_else(|e| usage_exit(e));
        let only = |set: bool, flag: &str, mode: Mode| {
            if set && args.mode != mode {
                let msg = format!("{flag} only applies to {} mode", mode.name());
                usage_exit(Args::command().error(ErrorKind::ArgumentConflict, msg));
            }
        };
        only(args.limit.is_some(), "--limit", Mode::Semaphore);
        only(args.subscribers.is_some(), "--subscribers", Mode::Pubsub);
        only(args.depth.is_some(), "--depth", Mode::Pipeline);
        only(args.value_size.is_some(), "--value-size", Mode::Kv);
        let acquires = matches!(args.mode, Mode::Lock | Mode::Contended | Mode::Semaphore);
        if args.lease.is_some() && !acquires {
            let msg = "--lease only applies to lock, contended and semaphore modes";
            usage_exit(Args::command().error(ErrorKind::ArgumentConflict, msg));
        }
        if args.timeout > 9_223_372_036 {
            usage_exit(Args::command().error(
                ErrorKind::ValueValidation,
                "--timeout is at most 9223372036",
            ));
        }
        if args.threads_per_connection && args.connections > MAX_THREADED_CONNECTIONS {
            let msg = format!(
                "--threads-per-connection takes at most {MAX_THREADED_CONNECTIONS} connections"
            );
            usage_exit(Args::command().error(ErrorKind::ValueValidation, msg));
        }
        if let Some(t) = &args.auth_token {
            if t.trim().is_empty() || t.contains(['\n', '\r']) {
                usage_exit(Args::command().error(
                    ErrorKind::ValueValidation,
                    "--auth-token must be one non-blank line",
                ));
            }
        }
        args
    }

    /// `--server`, or the default for the transport.
    pub fn server(&self) -> &str {
        self.server
            .as_deref()
            .unwrap_or(self.transport.default_server())
    }

    pub fn http(&self) -> bool {
        self.transport == Transport::Http
    }

    /// Client threads: the event loops, or one per connection (and subscriber).
    pub fn client_threads(&self) -> u32 {
        if self.threads_per_connection {
            self.connections
                + if self.mode == Mode::Pubsub {
                    self.subscribers()
                } else {
                    0
                }
        } else {
            self.threads
        }
    }

    /// How the client drives its connections, for the report.
    pub fn client_shape(&self) -> &'static str {
        if self.threads_per_connection {
            "thread-per-connection"
        } else {
            "event-loop"
        }
    }

    pub fn limit(&self) -> u32 {
        self.limit.unwrap_or((self.connections / 2).max(1))
    }

    pub fn subscribers(&self) -> u32 {
        self.subscribers.unwrap_or(10)
    }

    pub fn depth(&self) -> u32 {
        self.depth.unwrap_or(16)
    }

    pub fn value_size(&self) -> u32 {
        self.value_size.unwrap_or(16)
    }

    /// `--rounds`, or its default when neither `--rounds` nor `--duration` is given.
    pub fn rounds(&self) -> Option<u64> {
        match (self.rounds, self.duration) {
            (Some(r), _) => Some(r),
            (None, Some(_)) => None,
            (None, None) => Some(1000),
        }
    }
}

/// Print a clap error and exit: 0 for `--help`/`--version`, 64 otherwise.
fn usage_exit(e: clap::Error) -> ! {
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        e.exit();
    }
    let _ = e.print();
    std::process::exit(64);
}

fn parse_secs_or_zero(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !v.is_finite() || !(0.0..=1e7).contains(&v) {
        return Err(format!("`{s}` is out of range (0 to 10000000 seconds)"));
    }
    Ok(Duration::from_secs_f64(v))
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    let d = parse_secs_or_zero(s)?;
    if d.is_zero() {
        return Err("must be more than 0 seconds".into());
    }
    Ok(d)
}

fn parse_prefix(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 200 {
        return Err("must be 1 to 200 bytes".into());
    }
    if s.contains([' ', '\t', '\r', '\n', '*', '>']) {
        return Err("must not contain spaces, TABs, line breaks, `*` or `>`".into());
    }
    Ok(s.to_string())
}

/// The command line as typed, shell-quoted where needed; the auth token is
/// replaced by `***` so reports can be pasted into CI logs.
pub fn echo(argv: &[String]) -> String {
    let mut parts = Vec::with_capacity(argv.len());
    let mut hide_next = false;
    for arg in argv {
        if hide_next {
            hide_next = false;
            parts.push("***".to_string());
        } else if arg.starts_with("--auth-token=") {
            parts.push("--auth-token=***".to_string());
        } else {
            hide_next = arg == "--auth-token";
            parts.push(quote(arg));
        }
    }
    parts.join(" ")
}

fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./:=@%+,".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}
