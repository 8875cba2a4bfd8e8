//! Mutations of a request: structure-aware ones on its parts (some keep it
//! framed, others may break framing or ask for a close), and byte-level
//! damage to the serialised bytes.

use super::request::{Gen, Req};

pub const INTERESTING_NUMBERS: &[&str] = &[
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

pub const INTERESTING_VALUES: &[&str] = &[
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
    /// One structure-aware mutation. A `safe` one keeps the request framed
    /// and the connection open (the pipeline behind it is still served); the
    /// others may break framing, ask for a close, or refuse the head.
    pub fn mutate(&mut self, r: &mut Req, safe: bool) {
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
    pub fn damage(&mut self, bytes: &mut Vec<u8>) {
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
}
