//! Seeded, structure-aware random inputs for every wire parser (issue 13 §3):
//! a million inputs each, mostly mutations of valid requests (byte flips,
//! insertions of framing bytes, deletions, duplications, splices, runs past
//! the line limits) and some plain noise, fed to the line framer, the command
//! builder, the Dreadlock parser, the HTTP head parser, the JSON bodies of
//! every route and the token parser.
//!
//! Besides "no panic" and the parsers' own contracts (bytes consumed within
//! the buffer, limits held, decided prefixes), a counting allocator checks
//! that no parse allocates more than a small multiple of its input: memory is
//! bounded by the limits that bound the input. The parsers' unit tests
//! (`src/protocol/*`, `src/http/parse.rs`, `src/http/body_tests.rs`) check
//! exact results; `fuzz/` holds the cargo-fuzz targets for long runs.
//!
//! `DFLOCKD_FUZZ_INPUTS=n` changes the count per parser (default 1,000,000).

use dflockd::http::body;
use dflockd::http::parse::{HeadLimits, HeadParse, parse_head};
use dflockd::http::route::ROUTES;
use dflockd::protocol::command::{Command, CommandLimits};
use dflockd::protocol::dreadlock::{DreadlockRequest, parse_dreadlock};
use dflockd::protocol::line::{Frame, parse_frame};
use dflockd::protocol::{LineLimits, Parsed};
use dflockd::state::fence::Token;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Instant;

// ------------------------------------------------------------------ allocation

/// The system allocator, counting the bytes the measuring thread has live
/// (relative to the start of its measurement) and their peak.
struct Counting;

thread_local! {
    // Const-initialised and without destructors: usable inside the allocator.
    static ON: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    if ON.with(Cell::get) {
        let live = LIVE.with(|l| {
            l.set(l.get() + delta);
            l.get()
        });
        PEAK.with(|p| p.set(p.get().max(live)));
    }
}

// SAFETY: every call is forwarded unchanged to `System`; the counters are
// const thread-locals and never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as our caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as our caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f` and returns its result with the most bytes it had allocated at
/// once (on this thread).
fn measured<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LIVE.with(|l| l.set(0));
    PEAK.with(|p| p.set(0));
    ON.with(|o| o.set(true));
    let r = f();
    ON.with(|o| o.set(false));
    (r, PEAK.with(Cell::get) as usize)
}

// ------------------------------------------------------------------ inputs

fn inputs() -> usize {
    std::env::var("DFLOCKD_FUZZ_INPUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that matter to the parsers: framing, separators, signs, wildcards,
/// JSON punctuation, invalid and multi-byte UTF-8.
const INTERESTING: &[u8] = b"\n\r\t :.*>-+0123456789{}[]\",\\ulkrnewxa_\x00\xff\xc3\xa9\x80";

/// Applies 1..=4 mutations to `buf`, drawing splices from `corpus`.
fn mutate(rng: &mut Rng, buf: &mut Vec<u8>, corpus: &[&[u8]]) {
    for _ in 0..1 + rng.below(4) {
        let len = buf.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                buf[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            1 => {
                let i = rng.below(len + 1);
                buf.insert(i, INTERESTING[rng.below(INTERESTING.len())]);
            }
            2 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(8));
                buf.drain(i..i + n);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(16));
                let piece = buf[i..i + n].to_vec();
                let at = rng.below(len + 1);
                buf.splice(at..at, piece);
            }
            4 => {
                let other = corpus[rng.below(corpus.len())];
                let at = rng.below(len + 1);
                buf.splice(at..at, other.iter().copied());
            }
            5 => {
                // A run long enough to cross a limit somewhere.
                let n = [16, 255, 256, 257, 300][rng.below(5)];
                let b = INTERESTING[rng.below(INTERESTING.len())];
                let at = rng.below(len + 1);
                buf.splice(at..at, std::iter::repeat_n(b, n));
            }
            6 if len > 0 => buf.truncate(rng.below(len)),
            7 => buf.push(rng.next() as u8),
            _ => {
                let i = rng.below(len + 1);
                buf.insert(i, rng.next() as u8);
            }
        }
    }
}

fn noise(rng: &mut Rng, max: usize) -> Vec<u8> {
    let n = rng.below(max);
    (0..n)
        .map(|_| {
            if rng.below(2) == 0 {
                INTERESTING[rng.below(INTERESTING.len())]
            } else {
                rng.next() as u8
            }
        })
        .collect()
}

/// One input: 1 in 8 plain noise, otherwise a mutated corpus entry (1 in 16 unmutated).
fn input(rng: &mut Rng, corpus: &[&[u8]], max_noise: usize) -> Vec<u8> {
    if rng.below(8) == 0 {
        return noise(rng, max_noise);
    }
    let mut buf = corpus[rng.below(corpus.len())].to_vec();
    if rng.below(16) != 0 {
        mutate(rng, &mut buf, corpus);
    }
    buf
}

/// Valid requests of every verb (protocol.md §8, §9), one or two per buffer.
const REQUESTS: &[&[u8]] = &[
    b"l\nk\n10 60\n",
    b"r\nk\n18ea9db47e590001d433357e6ef5d88b\n",
    b"n\nk\n18ea9db47e590001d433357e6ef5d88b 120\n",
    b"e\nk\n\n",
    b"w\nk\n5\n",
    b"sl\npool\n0 2 60\n",
    b"se\npool\n2\n",
    b"sw\npool\n3\n",
    b"rl\ncfg\n5\n",
    b"wl\ncfg\n30 10\n",
    b"re\ncfg\n\n",
    b"ww\ncfg\n1\n",
    b"elect\nleader\n5 10\n",
    b"resign\nleader\n18ea9db47e590001d433357e6ef5d88b\n",
    b"observe\nleader\n\n",
    b"incr\nhits\n-41\n",
    b"cset\nhits\n9223372036854775807\n",
    b"kset\ngreeting\nhello world\t60\n",
    b"kcas\ngreeting\nhello world\tbonjour\t\n",
    b"kget\ngreeting\n\n",
    b"lpush\nq\nitem one\n",
    b"lrange\nq\n0 -1\n",
    b"blpop\nq\n5\n",
    b"listen\norders.*.created\nworkers\n",
    b"signal\norders.eu.created\n{\"id\":7}\n",
    b"watch\nsession.>\n\n",
    b"bwait\nbarrier\n3 10\n",
    b"opt\n_\ndeadlock on\n",
    b"opt\nqueue_position\non\n",
    b"opt\ndeadlock\n off\r\n",
    b"pos\njob\n\n",
    b"who\ndeploy-job\n\n",
    b"auth\n_\n s3cret \n",
    b"ping\n_\n\r\nstats\n_\n\n",
    b"lock job 1000\r\n",
    b"UNLOCK job\r\n",
    b"GET / HTTP/1.1\r\n",
];

// ------------------------------------------------------------------ line + command

#[test]
fn line_framer_and_commands() {
    let started = Instant::now();
    let mut rng = Rng(0x11E5_F2A3_0000_0001);
    let limit_sets = [
        LineLimits::for_value_bytes(65536),
        LineLimits::for_value_bytes(16),
        LineLimits {
            max_line: 8,
            max_auth_arg: 12,
            max_value_arg: 16,
        },
    ];
    let cmd_limits = [
        CommandLimits {
            max_value_bytes: 65536,
        },
        CommandLimits { max_value_bytes: 4 },
    ];
    let (mut frames, mut commands, mut dread) = (0u64, 0u64, 0u64);
    let n = inputs();
    for round in 0..n {
        let buf = input(&mut rng, REQUESTS, 96);
        let limits = &limit_sets[round % limit_sets.len()];
        let lim = &cmd_limits[round % cmd_limits.len()];
        // The framer is zero-copy: it must not allocate at all.
        let (whole, bytes) = measured(|| parse_frame(&buf, limits));
        assert_eq!(
            bytes,
            0,
            "parse_frame allocated for {:?}",
            buf.escape_ascii()
        );
        if round % 4 == 0 && !buf.is_empty() {
            let k = rng.below(buf.len());
            let part = parse_frame(&buf[..k], limits);
            if part != Parsed::Incomplete {
                assert_eq!(part, whole, "prefix {k} of {:?}", buf.escape_ascii());
            }
        }
        let mut rest = &buf[..];
        while let Parsed::Complete { value, consumed } = parse_frame(rest, limits) {
            assert!(
                (1..=rest.len()).contains(&consumed),
                "consumed {consumed} of {:?}",
                rest.escape_ascii()
            );
            frames += 1;
            match value {
                Frame::Request { cmd, key, arg } => {
                    assert!(cmd.len() <= limits.max_line && key.len() <= limits.max_line);
                    let most = limits
                        .max_line
                        .max(limits.max_auth_arg)
                        .max(limits.max_value_arg);
                    assert!(arg.len() <= most, "{:?}", rest.escape_ascii());
                    let (built, bytes) = measured(|| Command::from_raw(cmd, key, arg, lim));
                    let input = cmd.len() + key.len() + arg.len();
                    assert!(
                        bytes <= 2 * input + 64,
                        "from_raw allocated {bytes} bytes for {input} input bytes"
                    );
                    if let Ok(c) = built {
                        commands += 1;
                        assert_eq!(c.name().as_bytes(), cmd);
                    }
                }
                Frame::Dreadlock(line) => {
                    let (parsed, bytes) = measured(|| parse_dreadlock(line));
                    assert_eq!(bytes, 0, "parse_dreadlock allocated");
                    if let Ok(
                        DreadlockRequest::Lock { key, .. } | DreadlockRequest::Unlock { key },
                    ) = parsed
                    {
                        dread += 1;
                        assert!((1..=256).contains(&key.len()));
                        assert!(key.bytes().all(|b| b.is_ascii_alphanumeric()));
                    }
                }
            }
            rest = &rest[consumed..];
        }
    }
    // The mutations must keep reaching the happy paths.
    assert!(commands > n as u64 / 10, "only {commands} valid commands");
    assert!(dread > n as u64 / 500, "only {dread} valid Dreadlock lines");
    eprintln!(
        "line framer: {n} inputs, {frames} frames, {commands} commands, {dread} Dreadlock lines; {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn dreadlock_lines() {
    let started = Instant::now();
    let corpus: &[&[u8]] = &[
        b"lock job 1000",
        b"unlock job",
        b"LOCK a1 0",
        b"Unlock Z9",
        b"lock k 18446744073709551615",
    ];
    let mut rng = Rng(0xD7EA_D10C_0000_0002);
    let mut ok = 0u64;
    let n = inputs();
    for _ in 0..n {
        let line = input(&mut rng, corpus, 48);
        let (parsed, bytes) = measured(|| parse_dreadlock(&line));
        assert_eq!(bytes, 0, "parse_dreadlock allocated");
        if let Ok(DreadlockRequest::Lock { key, .. } | DreadlockRequest::Unlock { key }) = parsed {
            ok += 1;
            assert!((1..=256).contains(&key.len()));
            assert!(key.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
    }
    assert!(ok > n as u64 / 20, "only {ok} accepted");
    eprintln!(
        "dreadlock: {n} inputs, {ok} accepted; {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

// ------------------------------------------------------------------ HTTP

const HEADS: &[&[u8]] = &[
    b"GET /v1/locks/job HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /v1/locks/job/acquire?timeout_s=5 HTTP/1.1\r\nHost: x\r\nContent-Length: 14\r\nContent-Type: application/json\r\n\r\n{\"lease_s\":60}",
    b"PUT /v1/kv/greeting HTTP/1.1\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nabc",
    b"DELETE /v1/sessions/abc HTTP/1.0\r\n\r\n",
    b"GET /v1/stats HTTP/1.1\nhost: a\nExpect: 100-continue\n\n",
    b"\r\nOPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /v1/signal/a.b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
];

#[test]
fn http_heads() {
    let started = Instant::now();
    let mut rng = Rng(0x4EAD_0000_0000_0003);
    let limit_sets = [
        HeadLimits::default(),
        HeadLimits {
            max_head_bytes: 64,
            max_headers: 2,
            max_body_bytes: 8,
        },
    ];
    let (mut complete, mut refused) = (0u64, 0u64);
    let n = inputs();
    for round in 0..n {
        let buf = input(&mut rng, HEADS, 160);
        let limits = &limit_sets[round % 2];
        let (parsed, bytes) = measured(|| parse_head(&buf, limits));
        assert_eq!(
            bytes,
            0,
            "parse_head allocated for {:?}",
            buf.escape_ascii()
        );
        match parsed {
            HeadParse::Complete { consumed, .. } => {
                complete += 1;
                assert!(consumed <= buf.len() && consumed <= limits.max_head_bytes);
                if round % 4 == 0 {
                    let k = rng.below(consumed);
                    assert!(
                        !matches!(parse_head(&buf[..k], limits), HeadParse::Complete { .. }),
                        "a prefix of {:?} is complete",
                        buf.escape_ascii()
                    );
                }
            }
            HeadParse::Error(_) => refused += 1,
            HeadParse::Incomplete => {
                assert!(
                    buf.len() <= limits.max_head_bytes,
                    "incomplete past the limit"
                );
            }
        }
    }
    assert!(complete > n as u64 / 20 && refused > n as u64 / 20);
    eprintln!(
        "http heads: {n} inputs, {complete} complete, {refused} refused; {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

const BODIES: &[&[u8]] = &[
    b"{}",
    b"{\"timeout_s\":5,\"lease_s\":60}",
    b"{\"token\":\"18ea9db47e590001d433357e6ef5d88b\"}",
    b"{\"token\":\"18ea9db47e590001d433357e6ef5d88b\",\"lease_s\":120}",
    b"{\"limit\":3,\"timeout_s\":0}",
    b"{\"mode\":\"read\",\"timeout_s\":1}",
    b"{\"value\":\"hello world\",\"ttl_s\":60}",
    b"{\"old\":\"a\",\"new\":\"b\",\"ttl_s\":0}",
    b"{\"delta\":-5}",
    b"{\"payload\":\"x\",\"group\":\"g\"}",
    b"{\"count\":3,\"timeout_s\":10}",
    b"{\"options\":{\"deadlock\":true}}",
    b"{\"value\":\"\\u00e9\\n\"}",
    b" \r\n{ \"lease_s\" : 1e2 }",
];

/// A valid body for `route`: its required members and some optional ones.
fn valid_body(rng: &mut Rng, route: &dflockd::http::route::Route) -> Vec<u8> {
    use dflockd::http::route::Field;
    let mut members = Vec::new();
    for f in route.body.fields() {
        if !f.required && rng.below(2) == 0 {
            continue;
        }
        let v = match f.field {
            Field::Mode => ["\"read\"", "\"write\""][rng.below(2)].to_string(),
            Field::Token => "\"18ea9db47e590001d433357e6ef5d88b\"".to_string(),
            Field::Delta => "-5".to_string(),
            Field::CounterValue => "9223372036854775807".to_string(),
            Field::Value | Field::New | Field::Payload => "\"hello world\"".to_string(),
            Field::Old => ["\"a\"", "null", "\"\""][rng.below(3)].to_string(),
            Field::Options => "{\"deadlock\":true}".to_string(),
            Field::Limit | Field::Count => (1 + rng.below(4)).to_string(),
            _ => rng.below(100).to_string(),
        };
        members.push(format!("\"{}\":{v}", f.field.name()));
    }
    format!("{{{}}}", members.join(",")).into_bytes()
}

#[test]
fn http_json_bodies() {
    let started = Instant::now();
    let mut rng = Rng(0xB0D1_E500_0000_0004);
    let limits = CommandLimits {
        max_value_bytes: 64,
    };
    let mut accepted = 0u64;
    let n = inputs();
    for _ in 0..n {
        let route = &ROUTES[rng.below(ROUTES.len())];
        let mut buf = if rng.below(8) == 0 {
            noise(&mut rng, 64)
        } else {
            valid_body(&mut rng, route)
        };
        if rng.below(4) != 0 {
            mutate(&mut rng, &mut buf, BODIES);
        }
        let (parsed, bytes) = measured(|| body::parse(route.body, &buf, &limits));
        // serde_json's scratch and the boxed strings: a few times the input.
        assert!(
            bytes <= 8 * buf.len() + 1024,
            "body parse allocated {bytes} bytes for {:?}",
            buf.escape_ascii()
        );
        if parsed.is_ok() {
            accepted += 1;
        }
    }
    assert!(accepted > n as u64 / 10, "only {accepted} accepted");
    eprintln!(
        "http bodies: {n} inputs over {} routes, {accepted} accepted; {:.1} s",
        ROUTES.len(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn tokens() {
    let corpus: &[&[u8]] = &[
        b"18ea9db47e590001d433357e6ef5d88b",
        b"ffffffffffffffff0000000000000000",
        b"00000000000000000000000000000000",
    ];
    let mut rng = Rng(0x70CE_0000_0000_0005);
    let mut ok = 0u64;
    let n = inputs();
    for _ in 0..n {
        let buf = input(&mut rng, corpus, 40);
        let (parsed, bytes) = measured(|| Token::parse(&buf));
        assert_eq!(bytes, 0, "Token::parse allocated");
        if let Some(t) = parsed {
            ok += 1;
            assert_eq!(&t.encode()[..], &buf[..], "tokens are canonical");
        }
    }
    assert!(ok > n as u64 / 100, "only {ok} tokens parsed");
}
