//! Valid (or nearly valid) requests of every endpoint, built as parts
//! ([`Req`]) that `mutate.rs` can change before they are serialised.

use super::mutate::{INTERESTING_NUMBERS, INTERESTING_VALUES};

/// xorshift64 (Marsaglia).
#[derive(Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// A request being built: every part can be mutated before it is serialised.
pub struct Req {
    pub method: String,
    pub target: String,
    pub version: String,
    pub headers: Vec<(String, String)>,
    /// JSON members of an object body (name, raw JSON value), if the body is one.
    pub members: Option<Vec<(String, String)>>,
    /// A raw body used instead of `members`.
    pub raw_body: Option<Vec<u8>>,
    /// Content-Length: None = computed, Some(text) = as given, "" = omitted.
    pub content_length: Option<String>,
    pub eol: &'static str,
}

impl Req {
    pub fn new(method: &str, target: String) -> Req {
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

    pub fn json(mut self, members: &[(&str, String)]) -> Req {
        self.members = Some(
            members
                .iter()
                .map(|(n, v)| (n.to_string(), v.clone()))
                .collect(),
        );
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn body_bytes(&self) -> Vec<u8> {
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

    pub fn serialise(&self) -> Vec<u8> {
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

pub struct Gen {
    pub rng: Rng,
    pub sessions: Vec<String>,
}
impl Gen {
    pub fn key(&mut self) -> String {
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

    pub fn session(&mut self) -> String {
        match self.rng.below(10) {
            0 => "0".repeat(32),
            1 => "nothex".into(),
            2 => self.sessions[0].to_uppercase(),
            _ => self.rng.pick(&self.sessions).clone(),
        }
    }

    pub fn num(&mut self, small: &[&str]) -> String {
        if self.rng.chance(85) {
            self.rng.pick(small).to_string()
        } else {
            self.rng.pick(INTERESTING_NUMBERS).to_string()
        }
    }

    pub fn string(&mut self) -> String {
        match self.rng.below(12) {
            0 => format!("\"{}\"", "v".repeat(self.rng.below(3000))),
            1 => self.rng.pick(INTERESTING_VALUES).to_string(),
            _ => format!("\"v{} w\"", self.rng.below(100)),
        }
    }

    pub fn token(&mut self) -> String {
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
    pub fn valid(&mut self, last: bool) -> Req {
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

    /// One request as bytes: inside a batch, a valid request or one with
    /// framing-safe mutations; the last of a batch anything, byte-level
    /// damage included.
    pub fn request(&mut self, last: bool) -> Vec<u8> {
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
