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

mod common;
mod http_common;

use http_common::{Api, find, parse_head, rss_kib, start};
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

/// xorshift64 (Marsaglia).
#[derive(Clone)]
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
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// A request being built: every part can be mutated before it is serialised.
struct Req {
    method: String,
    target: String,
    version: String,
    headers: Vec<(String, String)>,
    /// JSON members of an object body (name, raw JSON value), if the body is one.
    members: Option<Vec<(String, String)>>,
    /// A raw body used instead of `members`.
    raw_body: Option<Vec<u8>>,
    /// Content-Length: None = computed, Some(text) = as given, "" = omitted.
    content_length: Option<String>,
    eol: &'static str,
}

impl Req {
    fn new(method: &str, target: String) -> Req {
        Req {
            method: method.into(),
            target,
            version: "HTTP/1.1".into(),
            headers: vec![("Host".into(), "fuzz".into())],
            members: None,
            raw_body: None,
            content_length: None,
            eol: "\r\n",
        }
    }

    fn json(mut self, members: &[(&str, String)]) -> Req {
        self.members = Some(
            members
                .iter()
                .map(|(n, v)| (n.to_string(), v.clone()))
                .collect(),
        );
        self
    }

    fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn body_bytes(&self) -> Vec<u8> {
        if let Some(b) = &self.raw_body {
            return b.clone();
        }
        match &self.members {
            None => Vec::new(),
            Some(m) => {
                let inner: Vec<String> = m.iter().map(|(n, v)| format!("\"{n}\":{v}")).collect();
                format!("{{{}}}", inner.join(",")).into_bytes()
            }
        }
    }

    fn serialise(&self) -> Vec<u8> {
        let body = self.body_bytes();
        let mut out = Vec::with_capacity(128 + body.len());
        out.extend(
            format!(
                "{} {} {}{}",
                self.method, self.target, self.version, self.eol
            )
            .bytes(),
        );
        for (n, v) in &self.headers {
            out.extend(format!("{n}: {v}{}", self.eol).bytes());
        }
        match &self.content_length {
            None if !body.is_empty() => {
                out.extend(format!("Content-Length: {}{}", body.len(), self.eol).bytes())
            }
            Some(cl) if !cl.is_empty() => {
                out.extend(format!("Content-Length: {cl}{}", self.eol).bytes())
            }
            _ => {}
        }
        out.extend(self.eol.bytes());
        out.extend(body);
        out
    }
}

struct Gen {
    rng: Rng,
    sessions: Vec<String>,
}

const INTERESTING_NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "60",
    "1.5",
    "10.0",
    "1e3",
    "-0",
    "9223372036",
    "9223372037",
    "1048576",
    "1048577",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "184467440737095516160",
    "00",
    "+1",
];

const INTERESTING_VALUES: &[&str] = &[
    "null",
    "true",
    "false",
    "\"\"",
    "\" \"",
    "\"x\"",
    "\"read\"",
    "\"write\"",
    "\"a\\tb\"",
    "\"a\\nb\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"caf\\u00e9\"",
    "\"00000000000000000000000000000000\"",
    "\"0123456789ABCDEF0123456789ABCDEF\"",
    "[]",
    "{}",
    "[1,2]",
    "{\"a\":1}",
    "\"\\\"",
];

const FIELD_NAMES: &[&str] = &[
    "acquire_timeout_s",
    "timeout_s",
    "lease_ttl_s",
    "limit",
    "count",
    "mode",
    "token",
    "delta",
    "value",
    "old",
    "new",
    "payload",
    "ttl_s",
    "options",
    "extra",
    "",
    "Value",
];

impl Gen {
    fn key(&mut self) -> String {
        match self.rng.below(20) {
            0 => "%2F".into(),
            1 => "a%20b".into(),
            2 => "%zz".into(),
            3 => "%C3%A9t%C3%A9".into(),
            4 => "x".repeat(257),
            5 => "%FF".into(),
            6 => "a.*".into(),
            7 => "a.%3E".into(),
            _ => format!("k{}", self.rng.below(48)),
        }
    }

    fn session(&mut self) -> String {
        match self.rng.below(10) {
            0 => "0".repeat(32),
            1 => "nothex".into(),
            2 => self.sessions[0].to_uppercase(),
            _ => self.rng.pick(&self.sessions).clone(),
        }
    }

    fn num(&mut self, small: &[&str]) -> String {
        if self.rng.chance(85) {
            self.rng.pick(small).to_string()
        } else {
            self.rng.pick(INTERESTING_NUMBERS).to_string()
        }
    }

    fn string(&mut self) -> String {
        match self.rng.below(12) {
            0 => format!("\"{}\"", "v".repeat(self.rng.below(3000))),
            1 => self.rng.pick(INTERESTING_VALUES).to_string(),
            _ => format!("\"v{} w\"", self.rng.below(100)),
        }
    }

    fn token(&mut self) -> String {
        if self.rng.chance(70) {
            let mut t = String::from("\"");
            for _ in 0..32 {
                t.push(char::from_digit(self.rng.below(16) as u32, 16).unwrap());
            }
            t.push('"');
            t
        } else {
            self.rng.pick(INTERESTING_VALUES).to_string()
        }
    }

    /// A valid (or nearly valid) request of a random endpoint. Only the last
    /// request of a batch may open a stream or wait (a wait of 1 s): either
    /// ends the connection's pipeline.
    fn valid(&mut self, last: bool) -> Req {
        let k = self.key();
        let timeouts: &'static [&'static str] = if last { &["0", "0", "0", "1"] } else { &["0"] };
        let timeout = || timeouts;
        let with_session = |r: Req, g: &mut Gen| {
            let s = g.session();
            r.header("X-Dflockd-Session", &s)
        };
        match self.rng.below(40) {
            0 => Req::new("GET", "/health".into()),
            1 => Req::new("GET", "/ready".into()),
            2 if self.rng.chance(10) => Req::new("GET", "/metrics".into()),
            3 if self.rng.chance(5) => Req::new("GET", "/v1/openapi.json".into()),
            4 => Req::new("POST", "/v1/sessions".into()).json(&[]),
            5 => {
                let s = self.session();
                Req::new("POST", format!("/v1/sessions/{s}/ping"))
            }
            6 if self.rng.chance(5) => {
                let s = format!("{:032x}", self.rng.next());
                Req::new("DELETE", format!("/v1/sessions/{s}"))
            }
            7 => {
                let lease = self.num(&["1", "5", "60"]);
                let t = self.num(timeout());
                let r = Req::new("POST", format!("/v1/locks/{k}"))
                    .json(&[("acquire_timeout_s", t), ("lease_ttl_s", lease)]);
                with_session(r, self)
            }
            8 => {
                let tok = self.token();
                let op = *self.rng.pick(&["release", "renew"]);
                let r = Req::new("POST", format!("/v1/locks/{k}/{op}")).json(&[("token", tok)]);
                with_session(r, self)
            }
            9 => with_session(Req::new("POST", format!("/v1/locks/{k}/enqueue")), self),
            10 => {
                let t = self.num(timeout());
                let r = Req::new("POST", format!("/v1/locks/{k}/wait")).json(&[("timeout_s", t)]);
                with_session(r, self)
            }
            11 => {
                let t = self.num(timeout());
                let l = self.num(&["1", "2", "3"]);
                let r = Req::new("POST", format!("/v1/semaphores/{k}"))
                    .json(&[("acquire_timeout_s", t), ("limit", l)]);
                with_session(r, self)
            }
            12 => {
                let op = *self.rng.pick(&["release", "renew", "enqueue", "wait"]);
                let tok = self.token();
                let l = self.num(&["1", "2"]);
                let t = self.num(timeout());
                let members: Vec<(&str, String)> = match op {
                    "enqueue" => vec![("limit", l)],
                    "wait" => vec![("timeout_s", t)],
                    _ => vec![("token", tok)],
                };
                let r = Req::new("POST", format!("/v1/semaphores/{k}/{op}")).json(&members);
                with_session(r, self)
            }
            13 => {
                let mode = self.rng.pick(&["\"read\"", "\"write\""]).to_string();
                let t = self.num(timeout());
                let r = Req::new("POST", format!("/v1/rwlocks/{k}"))
                    .json(&[("mode", mode), ("acquire_timeout_s", t)]);
                with_session(r, self)
            }
            14 => {
                let op = *self.rng.pick(&["release", "renew", "enqueue", "wait"]);
                let members: Vec<(&str, String)> = match op {
                    "enqueue" => vec![("mode", "\"write\"".into())],
                    "wait" => vec![("timeout_s", "0".into())],
                    _ => vec![("token", self.token())],
                };
                let r = Req::new("POST", format!("/v1/rwlocks/{k}/{op}")).json(&members);
                with_session(r, self)
            }
            15 => {
                let t = self.num(timeout());
                let r = Req::new("POST", format!("/v1/elections/{k}"))
                    .json(&[("acquire_timeout_s", t), ("lease_ttl_s", "5".into())]);
                with_session(r, self)
            }
            16 => {
                let op = *self.rng.pick(&["resign", "renew"]);
                let tok = self.token();
                let r = Req::new("POST", format!("/v1/elections/{k}/{op}")).json(&[("token", tok)]);
                with_session(r, self)
            }
            17 => {
                let c = self.num(&["1", "1", "2"]);
                let t = self.num(timeout());
                let r = Req::new("POST", format!("/v1/barriers/{k}/wait"))
                    .json(&[("count", c), ("timeout_s", t)]);
                with_session(r, self)
            }
            18 => Req::new("GET", format!("/v1/counters/{k}")),
            19 => {
                let op = *self.rng.pick(&["incr", "decr"]);
                let d = self.num(&["1", "5", "-3"]);
                Req::new("POST", format!("/v1/counters/{k}/{op}")).json(&[("delta", d)])
            }
            20 => {
                let v = self.num(&["0", "42"]);
                Req::new("POST", format!("/v1/counters/{k}/set")).json(&[("value", v)])
            }
            21 => Req::new("GET", format!("/v1/kv/{k}")),
            22 => {
                let v = self.string();
                let ttl = self.num(&["0", "60"]);
                Req::new("POST", format!("/v1/kv/{k}")).json(&[("value", v), ("ttl_s", ttl)])
            }
            23 => Req::new("DELETE", format!("/v1/kv/{k}")),
            24 => {
                let old = self.string();
                let new = self.string();
                Req::new("POST", format!("/v1/kv/{k}/cas")).json(&[("old", old), ("new", new)])
            }
            25 => Req::new("GET", format!("/v1/lists/{k}")),
            26 => {
                let q = match self.rng.below(4) {
                    0 => String::new(),
                    1 => "?start=0&stop=-1".into(),
                    2 => format!("?start={}&stop={}", self.num(&["1"]), self.num(&["-2"])),
                    _ => "?start=0&start=1&x=%zz&stop".into(),
                };
                Req::new("GET", format!("/v1/lists/{k}/range{q}"))
            }
            27 => {
                let op = *self.rng.pick(&["lpush", "rpush"]);
                let v = self.string();
                Req::new("POST", format!("/v1/lists/{k}/{op}")).json(&[("value", v)])
            }
            28 => {
                let op = *self.rng.pick(&["lpop", "rpop"]);
                Req::new("POST", format!("/v1/lists/{k}/{op}"))
            }
            29 => {
                let op = *self.rng.pick(&["blpop", "brpop"]);
                let t = self.num(timeout());
                Req::new("POST", format!("/v1/lists/{k}/{op}")).json(&[("timeout_s", t)])
            }
            30 => {
                let p = self.string();
                Req::new("POST", format!("/v1/signals/{k}")).json(&[("payload", p)])
            }
            31 if last && self.rng.chance(20) => {
                let pat = *self.rng.pick(&["a.*", "a.>", "*", "fo*", "", "%zz"]);
                let g = *self.rng.pick(&["", "&group=g", "&group=a%20b", "&group="]);
                Req::new("GET", format!("/v1/signals?pattern={pat}{g}"))
            }
            32 if last && self.rng.chance(20) => Req::new("GET", format!("/v1/watch?pattern={k}")),
            33 if last && self.rng.chance(20) => {
                Req::new("GET", format!("/v1/elections/{k}/events"))
            }
            34 => {
                let p = *self
                    .rng
                    .pick(&["/v1/kv/x", "/health", "*", "/nope", "/v1/locks/k"]);
                let mut r = Req::new("OPTIONS", p.into());
                if self.rng.chance(50) {
                    r = r
                        .header("Origin", "http://a.example")
                        .header("Access-Control-Request-Method", "POST");
                }
                r
            }
            35 => {
                // HEAD on a stream endpoint is 405, not a stream.
                let p = *self
                    .rng
                    .pick(&["/health", "/v1/kv/k1", "/v1/watch?pattern=x"]);
                Req::new("HEAD", p.into())
            }
            36 => {
                let s = self.session();
                Req::new("PATCH", format!("/v1/sessions/{s}"))
                    .json(&[("options", "{\"queue_position\":true}".into())])
            }
            37 => Req::new("GET", format!("/v1/keys/{k}/who")),
            _ => Req::new("GET", format!("/v1/counters/{k}")),
        }
    }

    /// One structure-aware mutation. A `safe` one keeps the request framed
    /// and the connection open (the pipeline behind it is still served); the
    /// others may break framing, ask for a close, or refuse the head.
    fn mutate(&mut self, r: &mut Req, safe: bool) {
        const SAFE: &[usize] = &[0, 3, 4, 5, 6, 9, 10, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21];
        let which = if safe {
            *self.rng.pick(SAFE)
        } else {
            self.rng.below(22)
        };
        match which {
            0 if safe => {
                r.method = self
                    .rng
                    .pick(&[
                        "GET", "POST", "HEAD", "DELETE", "OPTIONS", "PUT", "PATCH", "get", "TRACE",
                    ])
                    .to_string()
            }
            0 => {
                r.method = self
                    .rng
                    .pick(&[
                        "GET", "POST", "HEAD", "DELETE", "OPTIONS", "PUT", "PATCH", "get", "TRACE",
                        "CONNECT", "", "G ET", "GET\t", "M-SEARCH", "\u{1}",
                    ])
                    .to_string()
            }
            1 => {
                r.version = self
                    .rng
                    .pick(&[
                        "HTTP/1.0",
                        "HTTP/1.1",
                        "HTTP/2.0",
                        "HTTP/0.9",
                        "HTTP/1.2",
                        "http/1.1",
                        "HTTP/1",
                        "HTTP/11",
                        "",
                        "HTTP/1.1 x",
                        "HTTP/3.0",
                    ])
                    .to_string()
            }
            2 => {
                r.target = self
                    .rng
                    .pick(&[
                        "*",
                        "",
                        "http://x/health",
                        "/health?",
                        "/health#x",
                        "//health",
                        "/v1/kv/",
                        "/v1//kv/k",
                        "/v1/kv/k/",
                        "/v1/kv/%",
                        "/v1/kv/%2",
                        "/v1/kv/a%00b",
                        "/v1/kv/\u{e9}",
                        "/v1/locks/k/release/extra",
                        "/v1/sessions/x/ping",
                        "/../health",
                    ])
                    .to_string()
            }
            3 => {
                let q = *self.rng.pick(&[
                    "?",
                    "?a=b",
                    "?pattern=x",
                    "?start=1&start=2",
                    "?=&&=",
                    "?%zz=1",
                ]);
                r.target.push_str(q);
            }
            4 if safe => {
                let (n, v) = *self.rng.pick(&[
                    ("Connection", "keep-alive"),
                    ("Expect", "100-continue"),
                    ("Authorization", "Bearer x"),
                    ("Origin", "http://a.example"),
                    ("Content-Type", "text/plain"),
                    ("X-Ws", "  \t  "),
                    ("X-High", "\u{e9}\u{ff}"),
                    ("X-Empty", ""),
                ]);
                if !r.headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(n)) {
                    r.headers.push((n.into(), v.into()));
                }
            }
            4 => {
                let (n, v) = *self.rng.pick(&[
                    ("Connection", "close"),
                    ("Connection", "keep-alive"),
                    ("Connection", "Upgrade, close"),
                    ("Expect", "100-continue"),
                    ("Expect", "200-ok"),
                    ("Transfer-Encoding", "chunked"),
                    ("Transfer-Encoding", ""),
                    ("Authorization", "Bearer x"),
                    ("Origin", "http://a.example"),
                    ("Origin", ""),
                    ("X-Dflockd-Session", ""),
                    ("Content-Type", "text/plain"),
                    ("Host", ""),
                    ("", "empty-name"),
                    (" X-Leading", "space"),
                    ("X-Trailing ", "space"),
                    ("Bad\u{7f}Name", "x"),
                    ("X-Ctl", "a\u{1}b"),
                    ("X-Ws", "  \t  "),
                    ("X-High", "\u{e9}\u{ff}"),
                ]);
                r.headers.push((n.into(), v.into()));
            }
            5 => {
                if !r.headers.is_empty() {
                    let i = self.rng.below(r.headers.len());
                    r.headers.remove(i);
                }
            }
            6 if safe => r.headers.push(("Host".into(), "again".into())),
            6 => {
                if !r.headers.is_empty() {
                    let i = self.rng.below(r.headers.len());
                    let h = r.headers[i].clone();
                    r.headers.push(h);
                }
            }
            7 => {
                r.content_length = Some(
                    self.rng
                        .pick(&[
                            "",
                            "0",
                            "1",
                            "-1",
                            "abc",
                            "5, 6",
                            "00",
                            " 3",
                            "1048577",
                            "99999999999999999999",
                            "0x10",
                            "+2",
                        ])
                        .to_string(),
                )
            }
            8 => {
                // A Content-Length off by a little: the next request's framing shifts.
                let len = r.body_bytes().len() as i64 + self.rng.below(7) as i64 - 3;
                r.content_length = Some(len.max(0).to_string());
            }
            9 => r.eol = "\n",
            10 => {
                // Many header fields (around the 64 limit when not safe).
                let n = if safe {
                    20 + self.rng.below(30)
                } else {
                    55 + self.rng.below(20)
                };
                for i in 0..n {
                    r.headers.push((format!("X-F{i}"), "v".into()));
                }
            }
            11 if self.rng.chance(10) => {
                // A huge header (around the 16 KiB limit).
                let n = 16_000 + self.rng.below(800);
                r.headers.push(("X-Big".into(), "b".repeat(n)));
            }
            12..=14 => {
                // Replace a member's value.
                let v = if self.rng.chance(50) {
                    self.rng.pick(INTERESTING_NUMBERS).to_string()
                } else {
                    self.rng.pick(INTERESTING_VALUES).to_string()
                };
                if let Some(m) = r.members.as_mut().filter(|m| !m.is_empty()) {
                    let i = self.rng.below(m.len());
                    m[i].1 = v;
                }
            }
            15 => {
                if let Some(m) = r.members.as_mut().filter(|m| !m.is_empty()) {
                    let i = self.rng.below(m.len());
                    m.remove(i);
                }
            }
            16 => {
                let name = self.rng.pick(FIELD_NAMES).to_string();
                let v = self.rng.pick(INTERESTING_VALUES).to_string();
                r.members.get_or_insert_with(Vec::new).push((name, v));
            }
            17 => {
                let mut body = r.body_bytes();
                let cut = self.rng.below(body.len() + 1);
                body.truncate(cut);
                r.raw_body = Some(body);
            }
            18 => {
                let mut body = r.body_bytes();
                body.extend(*self.rng.pick(&[
                    &b" x"[..],
                    b"}",
                    b",",
                    b"{}",
                    b"\n",
                    b"\x00",
                    b"\xff",
                ]));
                r.raw_body = Some(body);
            }
            19 => {
                r.raw_body = Some(
                    self.rng
                        .pick(&[
                            &b""[..],
                            b"null",
                            b"[]",
                            b"{",
                            b"{\"a\":",
                            b"\"str\"",
                            b"1",
                            b"{}{}",
                            b"{\"timeout_s\":0,\"timeout_s\":1}",
                            b"\xef\xbb\xbf{}",
                        ])
                        .to_vec(),
                )
            }
            20 => {
                // GET/DELETE with a body.
                r.method = self.rng.pick(&["GET", "DELETE", "HEAD"]).to_string();
                if r.members.is_none() && r.raw_body.is_none() {
                    r.raw_body = Some(b"{}".to_vec());
                }
            }
            _ => {
                // Session header games: another id, or (not safe) a second header.
                let v = self.session();
                match r.headers.iter_mut().find(|(h, _)| h == "X-Dflockd-Session") {
                    Some(h) if safe => h.1 = v,
                    _ if safe => r.headers.push(("X-Dflockd-Session".into(), v)),
                    _ => r.headers.push(("x-dflockd-session".into(), v)),
                }
            }
        }
    }

    /// Byte-level damage to a serialised request.
    fn damage(&mut self, bytes: &mut Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        for _ in 0..1 + self.rng.below(3) {
            if bytes.is_empty() {
                return;
            }
            let i = self.rng.below(bytes.len());
            match self.rng.below(6) {
                0 => bytes[i] = self.rng.next() as u8,
                1 => bytes.insert(
                    i,
                    *self
                        .rng
                        .pick(&[b'\r', b'\n', 0, b' ', b'\t', b':', 0x7f, 0xff]),
                ),
                2 => {
                    let end = (i + 1 + self.rng.below(8)).min(bytes.len());
                    bytes.drain(i..end);
                }
                3 => {
                    let end = (i + 1 + self.rng.below(16)).min(bytes.len());
                    let dup = bytes[i..end].to_vec();
                    bytes.splice(i..i, dup);
                }
                4 => bytes.truncate(i),
                _ => bytes[i] = bytes[i].to_ascii_lowercase(),
            }
        }
    }

    /// One request as bytes: inside a batch, a valid request or one with
    /// framing-safe mutations; the last of a batch anything, byte-level
    /// damage included.
    fn request(&mut self, last: bool) -> Vec<u8> {
        let mut r = self.valid(last);
        let kind = self.rng.below(100);
        if kind >= 20 {
            for _ in 0..1 + self.rng.below(3) {
                self.mutate(&mut r, !last);
            }
        }
        let mut bytes = r.serialise();
        if last && kind >= 70 {
            self.damage(&mut bytes);
        }
        bytes
    }
}

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
