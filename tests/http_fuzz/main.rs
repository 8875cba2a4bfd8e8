//! Seeded random HTTP requests against a real server (style §10: deterministic
//! fuzzing without extra crates). At least 200,000 request heads and bodies,
//! mostly structure-aware mutations of valid requests (method, target, query,
//! version, header fields, framing, JSON members and values), some mutated
//! byte by byte, sent pipelined in batches over fresh connections.
//!
//! Each batch ends with `shutdown(Write)`: the server answers every complete
//! request, drops a partial one, cancels a long-poll or stream whose client
//! left, and closes, so no batch can stall. The checks:
//!
//! * every reply is a well-formed `HTTP/1.1 NNN ` response (strict status
//!   line, CRLF head, `Date` and `Server`, a body that matches
//!   `Content-Length`, JSON bodies that parse), and nothing follows a
//!   response that says `Connection: close`;
//! * no `500 internal`;
//! * the server is alive and answers `/health` at the end, and its RSS stayed
//!   under 64 MiB throughout.
//!
//! The seed is printed on failure; `HTTP_FUZZ_SEED=<n>` replays a run and
//! `HTTP_FUZZ_REQUESTS=<n>` changes its size.
//!
//! Layout: `request.rs` builds valid requests, `mutate.rs` damages them, this
//! file sends batches and checks the replies.

use crate::{common, http_common};
mod mutate;
mod request;

use http_common::{Api, find, parse_head, rss_kib, start};
use request::{Gen, Rng};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const DEFAULT_SEED: u64 = 0x5eed_d10c_c0de_2026;
const DEFAULT_REQUESTS: u64 = 200_000;
const WORKERS: u64 = 4;
const MAX_RSS_KIB: u64 = 64 * 1024;
/// Findings of one batch's replies.
#[derive(Default)]
struct Replies {
    responses: u64,
    statuses: [u64; 6],
}

/// Checks every complete response in `buf`; an incomplete tail is allowed (the
/// server may reset a connection it closes with unread input).
fn check_replies(buf: &[u8], out: &mut Replies) -> Result<(), String> {
    let mut pos = 0;
    while pos < buf.len() {
        let rest = &buf[pos..];
        let Some(end) = find(rest, b"\r\n\r\n") else {
            if rest.len() > 64 * 1024 {
                return Err("no end of head in 64 KiB".into());
            }
            // An incomplete head at the end: still the status line must be valid
            // if a whole line is there.
            if let Some(eol) = find(rest, b"\r\n") {
                http_common::status_code(&rest[..eol]).ok_or_else(|| {
                    format!(
                        "bad status line {:?}",
                        String::from_utf8_lossy(&rest[..eol])
                    )
                })?;
            }
            return Ok(());
        };
        let head = parse_head(&rest[..end + 4])?;
        out.responses += 1;
        out.statuses[usize::from(head.status / 100).min(5)] += 1;
        if head.status == 500 {
            return Err(format!("500 internal: {:?}", String::from_utf8_lossy(rest)));
        }
        let body_start = pos + end + 4;
        if head.status == 100 {
            // The interim response is the bare status line (§2.2).
            if !head.headers.is_empty() {
                return Err(format!("headers on 100 Continue: {head:?}"));
            }
            pos = body_start;
            continue;
        }
        if head.header("Date").is_none() || head.header("Server").is_none() {
            return Err(format!("no Date or Server: {head:?}"));
        }
        // The headers §2.4 ties to a response.
        let needs = [
            (true, "Cache-Control"),
            (
                head.header("Content-Type") == Some("application/json"),
                "X-Content-Type-Options",
            ),
            (head.status == 405, "Allow"),
            (head.status == 401, "WWW-Authenticate"),
            (head.status == 429, "Retry-After"),
        ];
        for (needed, name) in needs {
            if needed && head.header(name).is_none() {
                return Err(format!("no {name}: {head:?}"));
            }
        }
        if head.header("Content-Type") == Some("text/event-stream") {
            // The stream's body runs to the close.
            return Ok(());
        }
        let len = match head.header("Content-Length") {
            Some(v) => v
                .parse::<usize>()
                .map_err(|_| format!("Content-Length {v:?}"))?,
            None if head.status == 204 => 0,
            None => return Err(format!("no Content-Length: {head:?}")),
        };
        let after = &buf[body_start..];
        // A HEAD answer has a Content-Length but no body: the next response
        // (or the end) follows the head directly. JSON and Prometheus bodies
        // never start with "HTTP/1.1 ".
        let head_answer = len > 0 && (after.is_empty() || after.starts_with(b"HTTP/1.1 "));
        let body_len = if head_answer { 0 } else { len };
        if after.len() < body_len {
            return Ok(());
        }
        let body = &after[..body_len];
        if body_len > 0 && head.header("Content-Type") == Some("application/json") {
            serde_json_check(body)?;
        }
        pos = body_start + body_len;
        if head.header("Connection") == Some("close") && pos < buf.len() {
            return Err(format!(
                "{} bytes after a Connection: close response: {:?}",
                buf.len() - pos,
                String::from_utf8_lossy(&buf[pos..buf.len().min(pos + 200)])
            ));
        }
    }
    Ok(())
}

fn serde_json_check(body: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("JSON body not UTF-8: {e}"))?;
    std::panic::catch_unwind(|| common::Json::parse(text))
        .map(|_| ())
        .map_err(|_| format!("invalid JSON body {text:?}"))
}

/// Sends one batch over a fresh connection and reads until the server
/// closes. With `cuts`, the batch goes out in pieces ending at those offsets
/// (separate segments with TCP_NODELAY), so heads and bodies arrive split at
/// arbitrary bytes.
fn run_batch(addr: SocketAddr, batch: &[u8], cuts: &[usize]) -> Result<Vec<u8>, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_nodelay(true).unwrap();
    // A write can fail when the server closed early (a refused head): read
    // what it said anyway.
    let mut from = 0;
    for &cut in cuts.iter().chain(std::iter::once(&batch.len())) {
        if cut <= from || cut > batch.len() {
            continue;
        }
        if s.write_all(&batch[from..cut]).is_err() {
            break;
        }
        from = cut;
    }
    let _ = s.shutdown(Shutdown::Write);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return Ok(buf),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {
                return Ok(buf);
            }
            Err(e) => {
                return Err(format!(
                    "the server neither answered nor closed within 10 s after end of input ({e}); got {} bytes",
                    buf.len()
                ));
            }
        }
    }
}

#[test]
fn random_requests_never_break_the_server() {
    let seed: u64 = std::env::var("HTTP_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    let total: u64 = std::env::var("HTTP_FUZZ_REQUESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_REQUESTS);
    let (server, addr) = start(&[
        "--http-max-sessions",
        "3000",
        "--max-keys",
        "5000",
        "--http-sse-ping-interval",
        "1",
    ]);
    let pid = server.pid();
    let api = Api::new(addr);
    let sessions: Vec<String> = (0..3).map(|_| api.session()).collect();
    let started = Instant::now();
    let sent = Arc::new(AtomicU64::new(0));
    let max_rss = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let sessions = sessions.clone();
        let sent = Arc::clone(&sent);
        let max_rss = Arc::clone(&max_rss);
        workers.push(thread::spawn(move || -> Result<(u64, [u64; 6]), String> {
            let mut g = Gen {
                rng: Rng(seed ^ (w + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1),
                sessions,
            };
            let mut replies = Replies::default();
            let mut batches = 0u64;
            while sent.load(Ordering::Relaxed) < total {
                let n = 1 + g.rng.below(64);
                let mut batch = Vec::new();
                for i in 0..n {
                    batch.extend(g.request(i + 1 == n));
                }
                sent.fetch_add(n as u64, Ordering::Relaxed);
                // One batch in five is written in pieces.
                let mut cuts = Vec::new();
                if g.rng.chance(20) {
                    let mut at = 0;
                    while at < batch.len() && cuts.len() < 64 {
                        at += 1 + g.rng.below(300);
                        cuts.push(at);
                    }
                }
                let buf = run_batch(addr, &batch, &cuts)
                    .map_err(|e| format!("worker {w} batch {batches}: {e}"))?;
                check_replies(&buf, &mut replies).map_err(|e| {
                    format!(
                        "worker {w} batch {batches}: {e}\nrequests: {:?}",
                        String::from_utf8_lossy(&batch[..batch.len().min(1500)])
                    )
                })?;
                batches += 1;
                if batches % 64 == 0 {
                    let rss = rss_kib(pid);
                    max_rss.fetch_max(rss, Ordering::Relaxed);
                    if rss > MAX_RSS_KIB {
                        return Err(format!("RSS {rss} KiB over {MAX_RSS_KIB} KiB"));
                    }
                }
            }
            Ok((replies.responses, replies.statuses))
        }));
    }
    let mut responses = 0;
    let mut statuses = [0u64; 6];
    let mut errors = Vec::new();
    for w in workers {
        match w.join() {
            Ok(Ok((n, s))) => {
                responses += n;
                for (a, b) in statuses.iter_mut().zip(s) {
                    *a += b;
                }
            }
            Ok(Err(e)) => errors.push(e),
            Err(_) => errors.push("a worker panicked".into()),
        }
    }
    let elapsed = started.elapsed();
    let rss = rss_kib(pid);
    max_rss.fetch_max(rss, Ordering::Relaxed);
    eprintln!(
        "seed {seed:#x}: {} requests, {responses} responses ({statuses:?} by class 0xx..5xx) in {elapsed:.1?}; max RSS {} KiB",
        sent.load(Ordering::Relaxed),
        max_rss.load(Ordering::Relaxed)
    );
    assert!(
        errors.is_empty(),
        "seed {seed:#x} (replay with HTTP_FUZZ_SEED={seed}):\n{}",
        errors.join("\n\n")
    );
    // Still alive and well.
    let r = api.get("/health");
    r.expect(200, r#"{"status":"ok"}"#);
    assert!(
        rss <= MAX_RSS_KIB,
        "seed {seed:#x}: RSS {rss} KiB at the end"
    );
    assert!(
        responses >= total / 2,
        "seed {seed:#x}: only {responses} responses to {total} requests"
    );
    drop(server);
}
