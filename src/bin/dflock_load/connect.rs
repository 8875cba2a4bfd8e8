//! `connect` mode: every op opens a new connection, runs a `ping` (after `auth`
//! when a token is given) and closes it. With `--tls-ca` each op is a full TLS
//! handshake, so ops/s reads as handshakes/s; without, as plain connects/s.
//!
//! Blocking IO, one thread per `--connections` (each a sequential loop of
//! connects), because a connect-and-handshake op is dominated by the server's
//! work and the client's crypto, not by event-loop overhead. The latency of an
//! op runs from `connect()` to the `ok` of its `ping`.

use crate::cli::Args;
use crate::conn::{Tls, request};
use crate::report::Summary;
use crate::util::{cpu_between, thread_cpu};
use crate::worker::Outcome;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Plan {
    addr: SocketAddr,
    tls: Option<Tls>,
    /// The requests of one op (`auth` if any, then `ping`) and how many replies.
    requests: Vec<u8>,
    replies: usize,
    rounds: Option<u64>,
    warmup_end: Instant,
    stop: Option<Instant>,
    reply_timeout: Duration,
}

pub fn run(args: &Args, addr: SocketAddr, tls: Option<Tls>) -> Result<Summary, String> {
    let mut requests = Vec::new();
    if let Some(token) = &args.auth_token {
        request(&mut requests, b"auth", b"_", |o| {
            o.extend_from_slice(token.as_bytes())
        });
    }
    request(&mut requests, b"ping", b"_", |_| {});
    let warmup_end = Instant::now() + args.warmup;
    let plan = Arc::new(Plan {
        addr,
        tls,
        replies: 1 + usize::from(args.auth_token.is_some()),
        requests,
        rounds: args.rounds(),
        warmup_end,
        stop: args.duration.map(|d| warmup_end + d),
        reply_timeout: args.reply_timeout,
    });
    // One op up front, so an unreachable server or a refused certificate is a
    // setup failure (exit 69), not a run full of errors.
    one_op(&plan).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let handles: Vec<_> = (0..args.connections)
        .map(|t| {
            let plan = Arc::clone(&plan);
            std::thread::Builder::new()
                .name(format!("connect-{t}"))
                .spawn(move || run_loop(&plan))
                .map_err(|e| format!("cannot start a thread: {e}"))
        })
        .collect::<Result<_, _>>()?;
    let outcomes = handles
        .into_iter()
        .map(|h| h.join().map_err(|_| "a worker thread panicked".to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Summary::merge(outcomes, warmup_end, 0))
}

fn run_loop(plan: &Plan) -> Outcome {
    let mut res = Outcome::new();
    let mut cpu0 = None;
    let mut started = 0u64;
    loop {
        let now = Instant::now();
        if plan.stop.is_some_and(|s| now >= s) || plan.rounds.is_some_and(|r| started >= r) {
            break;
        }
        let measured = now >= plan.warmup_end;
        if measured {
            started += 1;
            cpu0.get_or_insert_with(thread_cpu);
        }
        match one_op(plan) {
            Ok(()) if measured => {
                let done = Instant::now();
                let us = done.saturating_duration_since(now).as_micros() as u64;
                res.hist.saturating_record(us);
                res.max_us = res.max_us.max(us);
                res.ops += 1;
                res.last_op = Some(done);
            }
            Ok(()) => {}
            Err(e)
                if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock =>
            {
                res.timeouts += 1;
            }
            Err(e) => res.error(format!("connect op: {e}")),
        }
    }
    if let Some(c0) = cpu0 {
        res.cpu_ns = cpu_between(c0, thread_cpu());
    }
    res
}

/// Connect, (handshake,) send the requests, read every reply, close.
fn one_op(plan: &Plan) -> io::Result<()> {
    let mut sock = TcpStream::connect_timeout(&plan.addr, plan.reply_timeout)?;
    sock.set_nodelay(true)?;
    sock.set_read_timeout(Some(plan.reply_timeout))?;
    sock.set_write_timeout(Some(plan.reply_timeout))?;
    match &plan.tls {
        None => exchange(&mut sock, plan),
        Some(tls) => {
            let mut conn = tls.handshake(&mut sock)?;
            exchange(&mut rustls::Stream::new(&mut conn, &mut sock), plan)?;
            conn.send_close_notify();
            conn.write_tls(&mut sock).map(drop)
        }
    }
}

fn exchange(io: &mut (impl Read + Write), plan: &Plan) -> io::Result<()> {
    io.write_all(&plan.requests)?;
    let mut buf = [0u8; 256];
    let mut got = Vec::with_capacity(16);
    while got.iter().filter(|&&b| b == b'\n').count() < plan.replies {
        let n = io.read(&mut buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before the reply",
            ));
        }
        got.extend_from_slice(&buf[..n]);
    }
    if got
        .split(|&b| b == b'\n')
        .take(plan.replies)
        .all(|l| l == b"ok")
    {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected reply {:?}", String::from_utf8_lossy(&got)),
        ))
    }
}
