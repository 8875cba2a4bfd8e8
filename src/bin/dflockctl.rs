//! `dflockctl`: the dflockd command line client, built on `dflockd::client`.
//!
//! `lock` and `elect` work like `flock(1)` across machines: hold the lock (or the
//! leadership) while a command runs, renew it in the background, signal the command
//! if it is lost, release it afterwards. The other subcommands are one request each
//! (`listen` and `watch` stream until interrupted). Exit statuses are listed in
//! `EXIT_STATUS` and in man/dflockctl.1.

#[path = "dflockctl/table.rs"]
mod table;
use table::cell;
#[path = "dflockctl/who.rs"]
mod who;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use dflockd::client::{Client, ClientOptions, Error, Guard, MAX_SECONDS, Session, TlsOptions};
use dflockd::completions;
use serde_json::Value;
use std::ffi::OsString;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, ExitStatus};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[path = "dflockctl/top.rs"]
mod top;

/// Exit statuses (also in the man page).
const EXIT_OK: u8 = 0;
const EXIT_NOT_DONE: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_SERVER: u8 = 3;
const EXIT_LOST: u8 = 4;
const EXIT_CANNOT_EXEC: u8 = 126;
const EXIT_NOT_FOUND: u8 = 127;

const EXIT_STATUS: &str = "Exit status:
  0    success
  1    not acquired within --timeout; key or list item not found; CAS conflict
  2    usage error (bad flags or arguments, unreadable --auth-token-file or TLS file)
  3    server or connection error (unreachable, refused, auth failed, ...)
  4    lock/leadership lost while the command ran (the command was signalled)
  126  the command could not be executed; 127 it was not found
  lock and elect otherwise exit with the command's status (128+N if killed by signal N).";

/// How often `lock`/`elect` check the child and the loss flag.
const POLL: Duration = Duration::from_millis(50);

#[derive(Parser, Debug)]
#[command(
    name = "dflockctl",
    version,
    about = "Command line client for the dflockd lock and coordination server",
    after_help = EXIT_STATUS
)]
struct Cli {
    /// Server address; repeat or comma-separate for a sharded fleet (keys are placed by CRC-32 modulo the count, in the order given)
    #[arg(
        long = "server",
        short = 's',
        value_name = "HOST:PORT",
        env = "DFLOCKD_SERVERS",
        // clap renders `[env: NAME=<value>]` unless values are hidden, and an
        // unset variable renders as an empty `NAME=`, which reads as "set to
        // nothing". Hide the value, as for the two token flags below.
        hide_env_values = true,
        value_delimiter = ',',
        default_value = "127.0.0.1:6388",
        global = true
    )]
    servers: Vec<String>,

    /// Shared secret sent with `auth` on every connection
    #[arg(
        long,
        value_name = "TOKEN",
        env = "DFLOCKD_AUTH_TOKEN",
        hide_env_values = true,
        global = true
    )]
    auth_token: Option<String>,

    /// File holding the shared secret (surrounding whitespace is trimmed)
    #[arg(
        long,
        value_name = "PATH",
        env = "DFLOCKD_AUTH_TOKEN_FILE",
        hide_env_values = true,
        global = true
    )]
    auth_token_file: Option<PathBuf>,

    /// Speak TLS, trusting the CA certificates in this PEM file (servers started with --tls-cert)
    #[arg(long, value_name = "PATH", env = "DFLOCKD_TLS_CA", global = true)]
    tls_ca: Option<PathBuf>,

    /// Client certificate chain (PEM) for servers started with --tls-client-ca; needs --tls-ca and --tls-key
    #[arg(long, value_name = "PATH", env = "DFLOCKD_TLS_CLIENT_CERT", global = true, requires_all = ["tls_ca", "tls_key"])]
    tls_cert: Option<PathBuf>,

    /// Private key (PEM) of --tls-cert
    #[arg(
        long,
        value_name = "PATH",
        env = "DFLOCKD_TLS_CLIENT_KEY",
        global = true,
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,

    /// Name the server certificate must carry (default: the host part of --server)
    #[arg(long, value_name = "NAME", global = true, requires = "tls_ca")]
    tls_server_name: Option<String>,

    /// Seconds to wait for a TCP connection (and the TLS handshake)
    #[arg(long, value_name = "SECONDS", default_value_t = 5, global = true)]
    connect_timeout: u64,

    /// Seconds to wait for a reply (beyond a blocking command's own timeout)
    #[arg(long, value_name = "SECONDS", default_value_t = 30, global = true)]
    io_timeout: u64,

    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run a command while holding a lock (or a semaphore permit), like flock(1)
    Lock(HoldArgs),
    /// Run a command while leader of an election
    Elect(HoldArgs),
    /// Key-value store: get, set, del, cas
    #[command(subcommand)]
    Kv(KvCmd),
    /// Counters: get, incr, decr, set
    #[command(subcommand)]
    Counter(CounterCmd),
    /// Lists: push, pop, range, len
    #[command(subcommand)]
    List(ListCmd),
    /// Publish a signal; prints the number of deliveries
    Signal {
        channel: String,
        /// Payload (several words are joined with single spaces)
        #[arg(required = true)]
        payload: Vec<String>,
    },
    /// Print `channel payload` for every signal matching the patterns
    Listen {
        #[arg(required = true)]
        patterns: Vec<String>,
        /// Join this queue group (one member of a group gets each signal)
        #[arg(long, value_name = "GROUP")]
        group: Option<String>,
    },
    /// Print `event key` for every change of keys matching the patterns
    Watch {
        #[arg(required = true)]
        patterns: Vec<String>,
    },
    /// Show server statistics (one section per server)
    Stats {
        /// Print the raw JSON document, one line per server
        #[arg(long)]
        json: bool,
    },
    /// Check that every server answers; prints the round-trip time
    Ping,
    /// Show who holds a key and who waits for it (fences, never tokens)
    Who {
        key: String,
        /// Print the server's JSON document as one line
        #[arg(long)]
        json: bool,
    },
    /// Live view of the most contended keys and the server's totals, like top(1)
    Top(TopArgs),
}

#[derive(Args, Debug)]
struct TopArgs {
    /// Print one JSON object per server and frame, one line each
    #[arg(long)]
    json: bool,
    /// Seconds between frames
    #[arg(long, short = 'd', value_name = "SECONDS", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    interval: u64,
    /// Stop after N frames (default: until interrupted on a terminal, 1 otherwise)
    #[arg(long, short = 'n', value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    iterations: Option<u64>,
}

#[derive(Args, Debug)]
struct HoldArgs {
    /// Lock or election key
    key: String,
    /// Give up after this many seconds (0 = try once); default: wait indefinitely
    #[arg(long, short = 't', value_name = "SECONDS")]
    timeout: Option<u64>,
    /// Lease in seconds, renewed in the background (default: the server's, 33)
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=MAX_SECONDS))]
    lease: Option<u64>,
    /// Take one of N semaphore permits instead of an exclusive lock (lock only)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    semaphore: Option<u32>,
    /// Signal sent to the command if the lock is lost
    #[arg(long, value_enum, ignore_case = true, default_value = "TERM")]
    signal: Sig,
    /// The command to run, after `--`
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

#[derive(Subcommand, Debug)]
enum KvCmd {
    /// Print the value; exit 1 if absent
    Get { key: String },
    /// Set a value
    Set {
        key: String,
        value: String,
        /// Expire after this many seconds
        #[arg(long, value_name = "SECONDS")]
        ttl: Option<u64>,
    },
    /// Delete a key
    Del { key: String },
    /// Set NEW only if the value is OLD ("" = only if absent); exit 1 on conflict
    Cas {
        key: String,
        old: String,
        new: String,
        #[arg(long, value_name = "SECONDS")]
        ttl: Option<u64>,
    },
}

#[derive(Subcommand, Debug)]
enum CounterCmd {
    /// Print the value (0 if absent)
    Get { key: String },
    /// Add DELTA (default 1); prints the new value
    Incr {
        key: String,
        #[arg(default_value_t = 1, allow_negative_numbers = true)]
        delta: i64,
    },
    /// Subtract DELTA (default 1); prints the new value
    Decr {
        key: String,
        #[arg(default_value_t = 1, allow_negative_numbers = true)]
        delta: i64,
    },
    /// Set the value
    Set {
        key: String,
        #[arg(allow_negative_numbers = true)]
        value: i64,
    },
}

#[derive(Subcommand, Debug)]
enum ListCmd {
    /// Append values (at the tail; --left for the head); prints the length
    Push {
        key: String,
        #[arg(required = true)]
        values: Vec<String>,
        #[arg(long)]
        left: bool,
    },
    /// Print and remove the head (--right: the tail); exit 1 if empty
    Pop {
        key: String,
        #[arg(long)]
        right: bool,
        /// Wait up to this many seconds for an item
        #[arg(long, short = 't', value_name = "SECONDS", default_value_t = 0)]
        timeout: u64,
    },
    /// Print items START..=STOP, one per line (negative = from the end)
    Range {
        key: String,
        #[arg(default_value_t = 0, allow_negative_numbers = true)]
        start: i64,
        #[arg(default_value_t = -1, allow_negative_numbers = true)]
        stop: i64,
    },
    /// Print the length
    Len { key: String },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Sig {
    #[value(name = "TERM", alias = "SIGTERM")]
    Term,
    #[value(name = "KILL", alias = "SIGKILL")]
    Kill,
    #[value(name = "INT", alias = "SIGINT")]
    Int,
    #[value(name = "HUP", alias = "SIGHUP")]
    Hup,
    #[value(name = "QUIT", alias = "SIGQUIT")]
    Quit,
    #[value(name = "USR1", alias = "SIGUSR1")]
    Usr1,
    #[value(name = "USR2", alias = "SIGUSR2")]
    Usr2,
}

impl Sig {
    fn name(self) -> &'static str {
        match self {
            Sig::Term => "TERM",
            Sig::Kill => "KILL",
            Sig::Int => "INT",
            Sig::Hup => "HUP",
            Sig::Quit => "QUIT",
            Sig::Usr1 => "USR1",
            Sig::Usr2 => "USR2",
        }
    }
}

/// A failure that ends the program with a status.
struct Fail {
    code: u8,
    message: String,
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        let code = match e {
            Error::Timeout => EXIT_NOT_DONE,
            Error::Invalid(_) => EXIT_USAGE,
            _ => EXIT_SERVER,
        };
        Fail {
            code,
            message: e.to_string(),
        }
    }
}

fn fail(code: u8, message: impl Into<String>) -> Fail {
    Fail {
        code,
        message: message.into(),
    }
}

fn main() -> ExitCode {
    // `--completions <SHELL>` needs no subcommand, so it is looked for first.
    if let Some(script) = completions::requested(&Cli::command(), std::env::args_os()) {
        return ExitCode::from(completions::print(&script));
    }
    let matches = Cli::command().arg(completions::arg()).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let outcome = client_from(&cli, &matches).and_then(|client| run(cli.command, &client));
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("dflockctl: {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}

/// Builds the client. The auth token comes from the command line before the
/// environment; at the same level `--auth-token` beats `--auth-token-file`.
fn client_from(cli: &Cli, matches: &ArgMatches) -> Result<Client, Fail> {
    let source = |id: &str| matches.value_source(id);
    let from_file = |path: &PathBuf| {
        std::fs::read_to_string(path)
            .map(|s| s.trim().to_owned())
            .map_err(|e| {
                fail(
                    EXIT_USAGE,
                    format!("--auth-token-file {}: {e}", path.display()),
                )
            })
    };
    let mut token = None;
    for level in [ValueSource::CommandLine, ValueSource::EnvVariable] {
        if source("auth_token") == Some(level) {
            token = cli.auth_token.clone();
        } else if source("auth_token_file") == Some(level) {
            token = cli.auth_token_file.as_ref().map(from_file).transpose()?;
        }
        if token.is_some() {
            break;
        }
    }
    let servers: Vec<String> = cli
        .servers
        .iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    let tls = match (&cli.tls_ca, &cli.tls_cert, &cli.tls_key) {
        (None, _, _) => None,
        (Some(ca), Some(cert), Some(key)) => Some(TlsOptions::with_client_cert(ca, cert, key)),
        (Some(ca), _, _) => Some(TlsOptions::from_ca_file(ca)),
    }
    .transpose()
    .map_err(|e| fail(EXIT_USAGE, e.to_string()))?
    .map(|t| match &cli.tls_server_name {
        Some(name) => t.server_name(name.clone()),
        None => t,
    });
    let opts = ClientOptions {
        servers,
        auth_token: token.filter(|t| !t.is_empty()),
        connect_timeout: Duration::from_secs(cli.connect_timeout),
        io_timeout: (cli.io_timeout > 0).then(|| Duration::from_secs(cli.io_timeout)),
        tls,
        ..ClientOptions::default()
    };
    Client::new(opts).map_err(|e| fail(EXIT_USAGE, e.to_string()))
}

fn run(cmd: Cmd, client: &Client) -> Result<u8, Fail> {
    match cmd {
        Cmd::Lock(args) => lock(client, args),
        Cmd::Elect(args) => elect(client, args),
        Cmd::Kv(cmd) => kv(&mut client.session(), cmd),
        Cmd::Counter(cmd) => counter(&mut client.session(), cmd),
        Cmd::List(cmd) => list(&mut client.session(), cmd),
        Cmd::Signal { channel, payload } => {
            let delivered = client.session().signal(&channel, &payload.join(" "))?;
            println!("{delivered}");
            Ok(EXIT_OK)
        }
        Cmd::Listen { patterns, group } => listen(client, &patterns, group.as_deref()),
        Cmd::Watch { patterns } => watch(client, &patterns),
        Cmd::Stats { json } => stats(client, json),
        Cmd::Ping => ping(client),
        Cmd::Who { key, json } => {
            let doc = client.session().who_raw(&key)?;
            if json {
                println!("{doc}");
            } else {
                let doc: Value = serde_json::from_str(&doc)
                    .map_err(|e| Error::Protocol(format!("who is not JSON: {e}")))?;
                print!("{}", who::render(&doc));
            }
            Ok(EXIT_OK)
        }
        Cmd::Top(args) => top_loop(client, &args),
    }
}

fn hold_timeout(args: &HoldArgs) -> Duration {
    Duration::from_secs(args.timeout.unwrap_or(MAX_SECONDS))
}

fn not_acquired(e: Error, what: &str) -> Fail {
    match e {
        Error::Timeout => fail(
            EXIT_NOT_DONE,
            format!("{what} not acquired within the timeout"),
        ),
        other => other.into(),
    }
}

fn lock(client: &Client, args: HoldArgs) -> Result<u8, Fail> {
    let timeout = hold_timeout(&args);
    let lease = args.lease.map(Duration::from_secs);
    let guard = match args.semaphore {
        Some(n) => {
            let mut sem = client.semaphore(&args.key, n);
            if let Some(l) = lease {
                sem = sem.lease(l);
            }
            sem.acquire(timeout)
        }
        None => {
            let mut lock = client.lock(&args.key);
            if let Some(l) = lease {
                lock = lock.lease(l);
            }
            lock.acquire(timeout)
        }
    };
    let guard = guard.map_err(|e| not_acquired(e, &format!("lock {:?}", args.key)))?;
    run_holding(guard, &args.command, args.signal)
}

fn elect(client: &Client, args: HoldArgs) -> Result<u8, Fail> {
    if args.semaphore.is_some() {
        return Err(fail(EXIT_USAGE, "--semaphore applies to lock only"));
    }
    let mut election = client.election(&args.key);
    if let Some(l) = args.lease {
        election = election.lease(Duration::from_secs(l));
    }
    let guard = election
        .campaign(hold_timeout(&args))
        .map_err(|e| not_acquired(e, &format!("leadership of {:?}", args.key)))?;
    run_holding(guard, &args.command, args.signal)
}

/// Sends `sig` to `pid` with kill(1) (no libc needed).
fn send_signal(sig: &str, pid: u32) {
    let sent = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
    if !matches!(sent, Ok(s) if s.success()) {
        eprintln!("dflockctl: could not send SIG{sig} to {pid}");
    }
}

/// Runs the command while `guard` is held; see `EXIT_STATUS` for the result.
fn run_holding(guard: Guard, command: &[OsString], on_lost: Sig) -> Result<u8, Fail> {
    let (program, rest) = command
        .split_first()
        .ok_or_else(|| fail(EXIT_USAGE, "no command given after --"))?;
    let child = Command::new(program).args(rest).spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            let code = if e.kind() == io::ErrorKind::NotFound {
                EXIT_NOT_FOUND
            } else {
                EXIT_CANNOT_EXEC
            };
            // The command never ran; the release result does not change the outcome.
            guard.release().ok();
            return Err(fail(code, format!("{}: {e}", program.to_string_lossy())));
        }
    };
    let forwarded = forward_signals();
    let lost = guard.lost_handle();
    let mut signalled = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => {
                kill_and_reap(&mut child);
                return Err(fail(EXIT_SERVER, format!("waiting for the command: {e}")));
            }
        }
        for (flag, name) in &forwarded {
            if flag.swap(false, Ordering::SeqCst) {
                send_signal(name, child.id());
            }
        }
        if !signalled && lost.is_lost() {
            let why = lost.reason().map(|r| r.to_string()).unwrap_or_default();
            eprintln!(
                "dflockctl: {:?} lost ({why}); sending SIG{} to {}",
                guard.key(),
                on_lost.name(),
                child.id()
            );
            send_signal(on_lost.name(), child.id());
            signalled = true;
        }
        if signalled {
            std::thread::sleep(POLL);
        } else {
            lost.wait(POLL);
        }
    };
    if lost.is_lost() {
        // Releasing a lost grant is refused; there is nothing left to release.
        guard.release().ok();
        return Err(fail(EXIT_LOST, ""));
    }
    let key = guard.key().to_owned();
    if let Err(e) = guard.release() {
        eprintln!("dflockctl: release of {key:?} failed: {e}");
    }
    Ok(exit_code_of(status))
}

fn kill_and_reap(child: &mut Child) {
    // Best effort on an already failing path.
    child.kill().ok();
    child.wait().ok();
}

/// Signals to dflockctl while the command runs: SIGTERM and SIGHUP are passed on to
/// the command, so the lock is released only after it has reacted. SIGINT is caught
/// but not passed on: from a terminal (Ctrl-C) the command, in the same process
/// group, receives it directly. Returns the flags to forward, with kill(1) names.
fn forward_signals() -> Vec<(Arc<AtomicBool>, &'static str)> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let ignored = Arc::new(AtomicBool::new(false));
    if signal_hook::flag::register(SIGINT, ignored).is_err() {
        eprintln!("dflockctl: cannot catch SIGINT; Ctrl-C will not wait for the release");
    }
    let mut flags = Vec::new();
    for (signal, name) in [(SIGTERM, "TERM"), (SIGHUP, "HUP")] {
        let flag = Arc::new(AtomicBool::new(false));
        if signal_hook::flag::register(signal, flag.clone()).is_ok() {
            flags.push((flag, name));
        }
    }
    flags
}

fn exit_code_of(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(EXIT_SERVER),
        (None, Some(sig)) => u8::try_from((128 + sig) & 0xff).unwrap_or(EXIT_SERVER),
        (None, None) => EXIT_SERVER,
    }
}

fn secs(s: Option<u64>) -> Option<Duration> {
    s.map(Duration::from_secs)
}

fn kv(session: &mut Session, cmd: KvCmd) -> Result<u8, Fail> {
    match cmd {
        KvCmd::Get { key } => match session.kv_get(&key)? {
            Some(v) => println!("{v}"),
            None => return Err(fail(EXIT_NOT_DONE, format!("{key}: not found"))),
        },
        KvCmd::Set { key, value, ttl } => session.kv_set_ttl(&key, &value, secs(ttl))?,
        KvCmd::Del { key } => session.kv_del(&key)?,
        KvCmd::Cas { key, old, new, ttl } => {
            let old = (!old.is_empty()).then_some(old.as_str());
            if !session.kv_cas(&key, old, &new, secs(ttl))? {
                return Err(fail(EXIT_NOT_DONE, format!("{key}: cas conflict")));
            }
        }
    }
    Ok(EXIT_OK)
}

fn counter(session: &mut Session, cmd: CounterCmd) -> Result<u8, Fail> {
    let value = match cmd {
        CounterCmd::Get { key } => session.counter_get(&key)?,
        CounterCmd::Incr { key, delta } => session.incr(&key, delta)?,
        CounterCmd::Decr { key, delta } => session.decr(&key, delta)?,
        CounterCmd::Set { key, value } => {
            session.counter_set(&key, value)?;
            return Ok(EXIT_OK);
        }
    };
    println!("{value}");
    Ok(EXIT_OK)
}

fn list(session: &mut Session, cmd: ListCmd) -> Result<u8, Fail> {
    match cmd {
        ListCmd::Push { key, values, left } => {
            let mut len = 0;
            for v in &values {
                len = if left {
                    session.lpush(&key, v)?
                } else {
                    session.rpush(&key, v)?
                };
            }
            println!("{len}");
        }
        ListCmd::Pop {
            key,
            right,
            timeout,
        } => {
            let wait = Duration::from_secs(timeout);
            let item = match (right, timeout) {
                (false, 0) => session.lpop(&key)?,
                (true, 0) => session.rpop(&key)?,
                (false, _) => session.blpop(&key, wait)?,
                (true, _) => session.brpop(&key, wait)?,
            };
            match item {
                Some(v) => println!("{v}"),
                None => return Err(fail(EXIT_NOT_DONE, format!("{key}: empty"))),
            }
        }
        ListCmd::Range { key, start, stop } => {
            for item in session.lrange(&key, start, stop)? {
                println!("{item}");
            }
        }
        ListCmd::Len { key } => println!("{}", session.llen(&key)?),
    }
    Ok(EXIT_OK)
}

/// Writes one line to stdout; a closed stdout (`| head -1`) ends the stream quietly.
fn emit(line: std::fmt::Arguments<'_>) -> Result<(), Fail> {
    let mut out = io::stdout().lock();
    out.write_fmt(line)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(|_| fail(EXIT_OK, ""))
}

fn listen(client: &Client, patterns: &[String], group: Option<&str>) -> Result<u8, Fail> {
    let mut sub = client.subscriber();
    for p in patterns {
        sub.listen(p, group)?;
    }
    loop {
        let s = sub.recv()?;
        emit(format_args!("{} {}", s.channel, s.payload))?;
    }
}

fn watch(client: &Client, patterns: &[String]) -> Result<u8, Fail> {
    let mut watcher = client.watcher();
    for p in patterns {
        watcher.watch(p)?;
    }
    loop {
        let e = watcher.recv()?;
        emit(format_args!("{} {}", e.event, e.key))?;
    }
}

fn ping(client: &Client) -> Result<u8, Fail> {
    let mut session = client.session();
    let mut code = EXIT_OK;
    for (i, addr) in client.options().servers.iter().enumerate() {
        match session.ping_server(i) {
            Ok(rtt) => println!("{addr} ok {:.3} ms", rtt.as_secs_f64() * 1000.0),
            Err(e) => {
                eprintln!("dflockctl: {addr}: {e}");
                code = EXIT_SERVER;
            }
        }
    }
    Ok(code)
}

fn stats(client: &Client, json: bool) -> Result<u8, Fail> {
    let mut session = client.session();
    let servers = &client.options().servers;
    for (i, addr) in servers.iter().enumerate() {
        if json {
            println!("{}", session.stats_raw(i)?);
            continue;
        }
        if i > 0 {
            println!();
        }
        print_stats(addr, &session.stats(i)?);
    }
    Ok(EXIT_OK)
}

/// `dflockctl top`: frames until `--iterations`, or forever on a terminal
/// (one frame when stdout is not a terminal); see `top.rs`.
fn top_loop(client: &Client, args: &TopArgs) -> Result<u8, Fail> {
    use std::io::IsTerminal;
    let live = io::stdout().is_terminal();
    let frames = args.iterations.unwrap_or(if live { u64::MAX } else { 1 });
    let servers = &client.options().servers;
    let mut session = client.session();
    let mut prev: Vec<Option<top::Sample>> = vec![None; servers.len()];
    let style = if live && !args.json {
        &top::ANSI
    } else {
        &top::PLAIN
    };
    for n in 0..frames {
        if n > 0 {
            std::thread::sleep(Duration::from_secs(args.interval));
        }
        let rows = top::rows_for(top::terminal_height().filter(|_| live), servers.len());
        let mut out = String::from(style.clear);
        for (i, addr) in servers.iter().enumerate() {
            let cur = top::Sample {
                doc: session.stats(i)?,
                at: Instant::now(),
            };
            let f = top::frame(addr, &cur, prev[i].as_ref());
            if args.json {
                out.push_str(&f.to_string());
                out.push('\n');
            } else {
                if i > 0 {
                    out.push('\n');
                }
                out.push_str(&top::render(&f, style, rows));
            }
            prev[i] = Some(cur);
        }
        let mut stdout = io::stdout().lock();
        if stdout
            .write_all(out.as_bytes())
            .and_then(|()| stdout.flush())
            .is_err()
        {
            // The reader went away (`dflockctl top | head`): not an error.
            return Ok(EXIT_OK);
        }
    }
    Ok(EXIT_OK)
}

/// (section, columns) of the human-readable `stats` tables, in the document's order.
const TABLES: &[(&str, &[&str])] = &[
    (
        "locks",
        &[
            "key",
            "owner_conn_id",
            "lease_expires_in_s",
            "waiters",
            "fence",
        ],
    ),
    ("semaphores", &["key", "limit", "holders", "waiters"]),
    (
        "rw_locks",
        &["key", "readers", "writer", "waiters", "fence"],
    ),
    (
        "elections",
        &["key", "leader_conn_id", "observers", "candidates"],
    ),
    ("idle_locks", &["key", "idle_s"]),
    ("idle_semaphores", &["key", "idle_s"]),
    ("counters", &["key", "value", "idle_s"]),
    ("kv_entries", &["key", "value_len", "ttl", "idle_s"]),
    ("lists", &["key", "len", "pop_waiters", "idle_s"]),
    ("barriers", &["key", "count", "participants", "idle_s"]),
    ("signal_channels", &["pattern", "group", "listeners"]),
    ("watch_channels", &["pattern", "watchers"]),
];

fn print_stats(addr: &str, doc: &Value) {
    let server = &doc["server"];
    println!(
        "server {addr}: version {}, uptime {} s, {} connections, draining {}",
        cell(server.get("version")),
        cell(server.get("uptime_s")),
        cell(doc.get("connections")),
        cell(server.get("draining")),
    );
    if let Some(totals) = server.get("totals").and_then(Value::as_object) {
        let parts: Vec<String> = totals
            .iter()
            .map(|(k, v)| format!("{k}={}", cell(Some(v))))
            .collect();
        println!("totals: {}", parts.join(" "));
    }
    for (section, columns) in TABLES {
        let Some(rows) = doc.get(*section).and_then(Value::as_array) else {
            continue;
        };
        if rows.is_empty() {
            continue;
        }
        println!("\n{section} ({})", rows.len());
        print!("{}", table::render(columns, rows));
    }
}
