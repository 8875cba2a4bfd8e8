//! `dflock-load`: load generator for servers that speak the dflockd protocol
//! (the TCP line protocol, or the HTTP API with `--transport http`).
//!
//! The connections are opened (and authenticated, and subscribed; over HTTP,
//! given a session) one by one before the clock starts, then split
//! round-robin over `--threads` event loops. Each loop drives its connections
//! as non-blocking state machines (see `dflock_load/worker.rs`); with
//! `--threads-per-connection` each connection gets a thread of its own doing
//! blocking reads instead (`dflock_load/threaded.rs`), like the upstream
//! clients. The report starts with the command line,
//! then ops/s, latency percentiles from an HDR histogram (µs), errors,
//! timeouts and the client's own CPU per op. Exit status: 0 clean run, 1 any
//! error or timeout, 64 bad usage, 69 the server could not be reached or
//! refused the setup (`auth`, `listen`).

#[path = "dflock_load/cli.rs"]
mod cli;
#[path = "dflock_load/conn.rs"]
mod conn;
#[path = "dflock_load/connect.rs"]
mod connect;
#[path = "dflock_load/http.rs"]
mod http;
#[path = "dflock_load/report.rs"]
mod report;
#[path = "dflock_load/threaded.rs"]
mod threaded;
#[path = "dflock_load/util.rs"]
mod util;
#[path = "dflock_load/worker.rs"]
mod worker;

use cli::{Args, Mode};
use conn::{Conn, HttpSetup, HttpTarget, request};
use report::Summary;
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use worker::http_worker::{self, Bodies};
use worker::{KV_TTL, Plan, Shared};

fn main() -> ExitCode {
    // `--completions <SHELL>` needs no mode, so it is looked for first.
    let cmd = <Args as clap::CommandFactory>::command();
    if let Some(script) = dflockd::completions::requested(&cmd, std::env::args_os()) {
        return ExitCode::from(dflockd::completions::print(&script));
    }
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let args = Args::parse_checked();
    let command = cli::echo(&argv);
    if !args.json {
        println!("$ {command}");
        let _ = std::io::stdout().flush();
    }
    match run(&args) {
        Ok(summary) => {
            if args.json {
                println!("{}", summary.json(&args, &command));
            } else {
                print!("{}", summary.text(&args));
            }
            if summary.failed() {
                eprintln!(
                    "dflock-load: FAILED: {} error(s), {} timeout(s)",
                    summary.errors, summary.timeouts
                );
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(msg) => {
            eprintln!("dflock-load: {msg}");
            ExitCode::from(69)
        }
    }
}

fn resolve(server: &str) -> Result<SocketAddr, String> {
    let mut addrs = server
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve server address {server:?}: {e}"))?;
    addrs
        .next()
        .ok_or_else(|| format!("server address {server:?} resolves to nothing"))
}

/// Keys: one per connection, or one shared key in the contended modes.
fn key_for(args: &Args, i: usize) -> Vec<u8> {
    let p = &args.key_prefix;
    let k = match args.mode {
        Mode::Lock => format!("{p}:lock:{i}"),
        Mode::Contended => format!("{p}:contended"),
        Mode::Semaphore => format!("{p}:semaphore"),
        Mode::Kv => format!("{p}:kv:{i}"),
        Mode::Counter => format!("{p}:counter:{i}"),
        Mode::Pipeline => format!("{p}:pipeline:{i}"),
        Mode::Pubsub => format!("{p}:publisher:{i}"),
        Mode::Connect => format!("{p}:connect:{i}"),
    };
    k.into_bytes()
}

/// The TLS client configuration and server name for `--tls-ca`, if given.
fn tls_of(args: &Args) -> Result<Option<conn::Tls>, String> {
    let Some(ca) = &args.tls_ca else {
        return Ok(None);
    };
    let server = args.server();
    let host = server.rsplit_once(':').map_or(server, |(h, _)| h);
    let name = args.tls_server_name.as_deref().unwrap_or(host);
    conn::Tls::new(ca, name.trim_start_matches('[').trim_end_matches(']')).map(Some)
}

fn run(args: &Args) -> Result<Summary, String> {
    let addr = resolve(args.server())?;
    let tls = tls_of(args)?;
    if args.mode == Mode::Connect {
        return connect::run(args, addr, tls);
    }
    let threads = args.client_threads() as usize;
    let channel = format!("{}.pubsub", args.key_prefix).into_bytes();

    let mut auth = Vec::new();
    if let Some(token) = &args.auth_token {
        request(&mut auth, b"auth", b"_", |o| {
            o.extend_from_slice(token.as_bytes())
        });
    }
    let mut listen = Vec::new();
    request(&mut listen, b"listen", &channel, |_| {});
    let setup_worker: Vec<(&[u8], &str)> = if auth.is_empty() {
        vec![]
    } else {
        vec![(&auth, "auth")]
    };
    let mut setup_sub = setup_worker.clone();
    setup_sub.push((&listen, "listen"));

    // HTTP: header fields of every request.
    let mut headers = format!("Host: {}\r\n", args.server()).into_bytes();
    if let Some(token) = &args.auth_token {
        headers.extend_from_slice(format!("Authorization: Bearer {token}\r\n").as_bytes());
    }
    let http_setup = HttpSetup {
        headers: &headers,
        session: http_worker::needs_session(args.mode),
    };
    let stream_target = http_worker::stream_target(&channel);

    let setup_started = Instant::now();
    let mut per_thread: Vec<Vec<Conn>> = (0..threads).map(|_| Vec::new()).collect();
    let rt = args.reply_timeout;
    // Round-robin over subscribers then workers, so with a thread per
    // connection every thread gets exactly one.
    let mut next = 0;
    if args.mode == Mode::Pubsub {
        for i in 0..args.subscribers() as usize {
            let c = if args.http() {
                let target = HttpTarget::Stream(&stream_target);
                Conn::open_http(addr, i, &channel, target, &http_setup, rt)?
            } else {
                Conn::open(addr, tls.as_ref(), i, true, &channel, &setup_sub, rt)?
            };
            per_thread[next % threads].push(c);
            next += 1;
        }
    }
    for i in 0..args.connections as usize {
        let key = key_for(args, i);
        let c = if args.http() {
            let path = http_worker::path_for(args.mode, &key, &channel);
            Conn::open_http(addr, i, &key, HttpTarget::Path(&path), &http_setup, rt)?
        } else {
            Conn::open(addr, tls.as_ref(), i, false, &key, &setup_worker, rt)?
        };
        per_thread[next % threads].push(c);
        next += 1;
    }

    log::info!(
        "{} connection(s) to {addr} ready in {:?}",
        per_thread.iter().map(Vec::len).sum::<usize>(),
        setup_started.elapsed()
    );
    let epoch = Instant::now();
    let warmup_end = epoch + args.warmup;
    let value: Vec<u8> = (0..args.value_size())
        .map(|i| b'a' + (i % 26) as u8)
        .collect();
    let http = Bodies::new(
        args.mode,
        args.timeout,
        args.limit(),
        args.lease,
        &value,
        KV_TTL,
    );
    let plan = Arc::new(Plan {
        mode: args.mode,
        rounds: args.rounds(),
        epoch,
        warmup_end,
        stop: args.duration.map(|d| warmup_end + d),
        acquire_timeout: args.timeout,
        lease: args.lease,
        limit: args.limit(),
        depth: args.depth(),
        subscribers: u64::from(args.subscribers()),
        reply_timeout: args.reply_timeout,
        value,
        channel,
        over_http: args.http(),
        http,
        pace: args
            .rate
            .map(|r| Duration::from_secs_f64(f64::from(args.connections) / f64::from(r))),
        workers: args.connections,
    });
    let shared = Arc::new(Shared::default());
    if args.mode == Mode::Pubsub {
        shared
            .publishers_left
            .store(args.connections as usize, Ordering::Release);
    }
    let handles: Vec<_> = per_thread
        .into_iter()
        .filter(|conns| !conns.is_empty())
        .enumerate()
        .map(|(t, conns)| {
            let (plan, shared) = (Arc::clone(&plan), Arc::clone(&shared));
            let builder = std::thread::Builder::new().name(format!("load-{t}"));
            if args.threads_per_connection {
                builder.stack_size(threaded::STACK_BYTES).spawn(move || {
                    let conn = conns.into_iter().next().expect("one connection per thread");
                    threaded::run(conn, plan, shared)
                })
            } else {
                builder.spawn(move || worker::run(conns, plan, shared))
            }
            .map_err(|e| format!("cannot start a thread: {e}"))
        })
        .collect::<Result<_, _>>()?;
    let outcomes = handles
        .into_iter()
        .map(|h| h.join().map_err(|_| "a worker thread panicked".to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let expected = shared.expected.load(Ordering::Acquire);
    Ok(Summary::merge(outcomes, warmup_end, expected))
}
