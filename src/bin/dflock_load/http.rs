//! The HTTP/1.1 wire of `dflock-load --transport http` (http.md): requests
//! appended to a connection's reused output buffer, and a small response
//! reader over its input buffer. Pure: no sockets, no clock.
//!
//! The reader handles what dflockd sends (http.md §2.3, §2.4, §7): a status
//! line, header fields, then a body delimited by `Content-Length`, none
//! (`1xx`, `204`, `304`), or an event stream that lasts until the connection
//! ends. It never needs chunked coding, so `Transfer-Encoding` in a response
//! is reported as invalid, and so is a body that would be delimited by the
//! close (it would end the keep-alive connection the workloads depend on).
//! Interim `1xx` responses are skipped. Line ends may be CRLF or a bare LF.

use serde::Deserialize;
use std::borrow::Cow;

/// A response head longer than this is an error (dflockd's are ~200 bytes).
const MAX_HEAD: usize = 64 * 1024;
/// A body longer than this is an error; the input buffer stops growing there too.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// One complete response in the input buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// The body, as offsets into the parsed slice (empty for a stream).
    pub body: (usize, usize),
    /// `Connection: close`: the server ends the connection after this response.
    pub close: bool,
    /// A `text/event-stream` head: events follow until the connection ends.
    pub stream: bool,
}

/// Result of [`parse_response`].
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole response (head and body), `consumed` bytes long (with any
    /// interim `1xx` responses before it).
    Complete { resp: Response, consumed: usize },
    /// More bytes are needed.
    Incomplete,
    /// Not a response this reader accepts; the connection cannot be resynchronised.
    Invalid(String),
}

/// Parse one response from the start of `buf`.
pub fn parse_response(buf: &[u8]) -> Parsed {
    let mut at = 0;
    loop {
        match parse_one(&buf[at..]) {
            Parsed::Complete { resp, .. } if resp.status == 101 => {
                return Parsed::Invalid("101 Switching Protocols (never asked for)".into());
            }
            Parsed::Complete { resp, consumed } if (100..200).contains(&resp.status) => {
                // Interim (`100 Continue`): the final response follows.
                at += consumed;
            }
            Parsed::Complete { resp, consumed } => {
                let (a, b) = resp.body;
                let body = (a + at, b + at);
                let consumed = consumed + at;
                return Parsed::Complete {
                    resp: Response { body, ..resp },
                    consumed,
                };
            }
            other => return other,
        }
    }
}

fn parse_one(buf: &[u8]) -> Parsed {
    let mut lines = Lines { buf, at: 0 };
    let Some(status_line) = lines.next() else {
        return incomplete_head(buf);
    };
    let status = match parse_status_line(status_line) {
        Ok(s) => s,
        Err(e) => return Parsed::Invalid(e),
    };
    let mut content_length = None;
    let mut close = false;
    let mut stream = false;
    loop {
        let Some(line) = lines.next() else {
            return incomplete_head(buf);
        };
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Parsed::Invalid(format!("header line without a colon: {}", show(line)));
        };
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        if name.is_empty() || !name.iter().all(|&b| is_token(b)) {
            // Includes obsolete line folding (a line starting with a space).
            return Parsed::Invalid(format!("malformed header line: {}", show(line)));
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            let Some(n) = parse_len(value) else {
                return Parsed::Invalid(format!("bad Content-Length: {}", show(value)));
            };
            if content_length.is_some_and(|m| m != n) {
                return Parsed::Invalid("conflicting Content-Length values".into());
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Parsed::Invalid("Transfer-Encoding in a response (not supported)".into());
        } else if name.eq_ignore_ascii_case(b"connection") {
            close |= value
                .split(|&b| b == b',')
                .any(|t| trim(t).eq_ignore_ascii_case(b"close"));
        } else if name.eq_ignore_ascii_case(b"content-type") {
            stream = value.len() >= 17 && value[..17].eq_ignore_ascii_case(b"text/event-stream");
        }
    }
    let head = lines.at;
    let bodiless = (100..200).contains(&status) || status == 204 || status == 304;
    let len = if bodiless {
        0
    } else if stream && status == 200 {
        return Parsed::Complete {
            resp: Response {
                status,
                body: (head, head),
                close,
                stream,
            },
            consumed: head,
        };
    } else {
        match content_length {
            Some(n) if n > MAX_BODY => {
                return Parsed::Invalid(format!("response body of {n} bytes (limit {MAX_BODY})"));
            }
            Some(n) => n,
            None => {
                return Parsed::Invalid(format!(
                    "{status} response without Content-Length (a close-delimited body)"
                ));
            }
        }
    };
    if buf.len() < head + len {
        return Parsed::Incomplete;
    }
    Parsed::Complete {
        resp: Response {
            status,
            body: (head, head + len),
            close,
            stream: false,
        },
        consumed: head + len,
    }
}

fn incomplete_head(buf: &[u8]) -> Parsed {
    if buf.len() > MAX_HEAD {
        Parsed::Invalid(format!("response head longer than {MAX_HEAD} bytes"))
    } else {
        Parsed::Incomplete
    }
}

/// `HTTP/1.x SSS[ reason]` → the status.
fn parse_status_line(line: &[u8]) -> Result<u16, String> {
    let bad = || format!("malformed status line: {}", show(line));
    let rest = line.strip_prefix(b"HTTP/1.").ok_or_else(bad)?;
    let (&minor, rest) = rest.split_first().ok_or_else(bad)?;
    let code = rest.strip_prefix(b" ").ok_or_else(bad)?;
    if !minor.is_ascii_digit() || code.len() < 3 || !code[..3].iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    if code.len() > 3 && code[3] != b' ' {
        return Err(bad());
    }
    let s = code[..3]
        .iter()
        .fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    if s < 100 {
        return Err(bad());
    }
    Ok(s)
}

/// Lines ending in LF (a CR before it is dropped); `None` when the next line
/// is not complete yet.
struct Lines<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Lines<'a> {
    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = &self.buf[self.at..];
        let n = rest.iter().position(|&b| b == b'\n')?;
        self.at += n + 1;
        let line = &rest[..n];
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    }
}

/// RFC 9110 `tchar`.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn trim(v: &[u8]) -> &[u8] {
    let is_ws = |b: &u8| *b == b' ' || *b == b'\t';
    let start = v.iter().position(|b| !is_ws(b)).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !is_ws(b)).map_or(start, |e| e + 1);
    &v[start..end]
}

fn parse_len(v: &[u8]) -> Option<usize> {
    if v.is_empty() || v.len() > 12 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0, |n, &d| n * 10 + usize::from(d - b'0')))
}

/// One item of an event stream (http.md §7).
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// `event: <name>` with its `data:` lines (joined by LF, per the SSE spec).
    Event { name: &'a [u8], data: Cow<'a, [u8]> },
    /// A block of comments only (`:ok`, `:ping`).
    Comment,
}

/// The next event block from the start of `buf` and its length, or `None`
/// until the blank line that ends it has arrived.
pub fn parse_event(buf: &[u8]) -> Option<(Event<'_>, usize)> {
    let mut lines = Lines { buf, at: 0 };
    let mut name: &[u8] = b"message";
    let mut data: Option<Cow<'_, [u8]>> = None;
    loop {
        let line = lines.next()?;
        if line.is_empty() {
            break;
        }
        if line.starts_with(b":") {
            continue;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"event" => name = value,
            b"data" => {
                data = Some(match data {
                    None => Cow::Borrowed(value),
                    Some(prev) => {
                        let mut joined = prev.into_owned();
                        joined.push(b'\n');
                        joined.extend_from_slice(value);
                        Cow::Owned(joined)
                    }
                });
            }
            _ => {}
        }
    }
    let item = match data {
        Some(data) => Event::Event { name, data },
        None => Event::Comment,
    };
    Some((item, lines.at))
}

// ---- requests ----

/// Append one request: the request line, the connection's fixed `headers`
/// (each ending in CRLF), and, for a body or a `POST`, `Content-Type` and
/// `Content-Length`.
pub fn request(
    out: &mut Vec<u8>,
    method: &[u8],
    path: &[u8],
    suffix: &[u8],
    headers: &[u8],
    body: &[u8],
) {
    out.extend_from_slice(method);
    out.push(b' ');
    out.extend_from_slice(path);
    out.extend_from_slice(suffix);
    out.extend_from_slice(b" HTTP/1.1\r\n");
    out.extend_from_slice(headers);
    if !body.is_empty() {
        out.extend_from_slice(b"Content-Type: application/json\r\n");
    }
    if !body.is_empty() || method == b"POST" {
        out.extend_from_slice(b"Content-Length: ");
        crate::util::push_u64(out, body.len() as u64);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

/// Append `s` as one path segment (http.md §4.1): bytes outside RFC 3986
/// `pchar` (and `%` itself) are percent-encoded, so a `/` in a key stays
/// inside its segment.
pub fn push_segment(out: &mut Vec<u8>, s: &[u8]) {
    for &b in s {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
            out.push(b);
        } else {
            push_escape(out, b);
        }
    }
}

/// Append `s` as a query value: only unreserved bytes stay as they are
/// (`+` would mean a space there).
pub fn push_query_value(out: &mut Vec<u8>, s: &[u8]) {
    for &b in s {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b);
        } else {
            push_escape(out, b);
        }
    }
}

fn push_escape(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
}

// ---- response bodies (http.md §6); unknown members are ignored (§4.3) ----

/// An acquire outcome: `{"status":"ok","token":…,"lease_ttl_s":…}` or `{"status":"timeout"}`.
#[derive(Deserialize)]
pub struct Acquire<'a> {
    pub status: &'a str,
    #[serde(borrow)]
    pub token: Option<&'a str>,
}

/// `{"status":"ok","value":…}` or `{"status":"nil"}`.
#[derive(Deserialize)]
pub struct KvValue<'a> {
    pub status: &'a str,
    #[serde(borrow)]
    pub value: Option<Cow<'a, str>>,
}

/// A counter's value.
#[derive(Deserialize)]
pub struct Counter {
    pub value: i64,
}

/// A publish: `{"delivered":n}`.
#[derive(Deserialize)]
pub struct Delivered {
    pub delivered: u64,
}

/// `{"session_id":…,"idle_timeout_s":…}`.
#[derive(Deserialize)]
pub struct SessionCreated<'a> {
    pub session_id: &'a str,
}

/// The data of a `sig` event.
#[derive(Deserialize)]
pub struct Sig<'a> {
    #[serde(borrow)]
    pub channel: Cow<'a, str>,
    #[serde(borrow)]
    pub payload: Cow<'a, str>,
}

/// A token or session id: 32 lowercase hex characters.
pub fn is_hex32(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A status and body for an error message: `404 {"error":"not_held"}`.
pub fn show_response(status: u16, body: &[u8]) -> String {
    if body.is_empty() {
        format!("{status} (no body)")
    } else {
        format!("{status} {}", show(body))
    }
}

fn show(b: &[u8]) -> String {
    crate::conn::show(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nDate: Mon, 23 Nov 2026 08:00:00 GMT\r\n\
Server: dflockd/0.1.0\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\
Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\r\n{\"status\":\"ok\"}";

    fn complete(buf: &[u8]) -> (Response, usize) {
        match parse_response(buf) {
            Parsed::Complete { resp, consumed } => (resp, consumed),
            other => panic!("{other:?} for {:?}", String::from_utf8_lossy(buf)),
        }
    }

    #[test]
    fn a_json_response() {
        let (r, n) = complete(OK);
        assert_eq!(n, OK.len());
        assert_eq!((r.status, r.close, r.stream), (200, false, false));
        assert_eq!(&OK[r.body.0..r.body.1], b"{\"status\":\"ok\"}");
    }

    #[test]
    fn incomplete_at_every_offset() {
        for i in 0..OK.len() {
            assert_eq!(parse_response(&OK[..i]), Parsed::Incomplete, "at {i}");
        }
    }

    #[test]
    fn pipelined_responses_are_taken_one_at_a_time() {
        let no_content = b"HTTP/1.1 204 No Content\r\nServer: x\r\n\r\n";
        let mut buf = no_content.to_vec();
        buf.extend_from_slice(OK);
        let (r, n) = complete(&buf);
        assert_eq!((r.status, n, r.body), (204, no_content.len(), (n, n)));
        let (r, m) = complete(&buf[n..]);
        assert_eq!((r.status, m), (200, OK.len()));
    }

    #[test]
    fn bare_lf_close_and_interim_responses() {
        let buf =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 404 Not Found\nconnection: Keep-Alive, CLOSE\n\
content-length: 2\n\n{}";
        let (r, n) = complete(buf);
        assert_eq!((r.status, r.close, n), (404, true, buf.len()));
        assert_eq!(&buf[r.body.0..r.body.1], b"{}");
    }

    #[test]
    fn an_event_stream_head_ends_at_the_blank_line() {
        let buf = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n:ok\n\n";
        let (r, n) = complete(buf);
        assert!(r.stream && r.close);
        assert_eq!(&buf[n..], b":ok\n\n");
    }

    #[test]
    fn invalid_responses() {
        let cases: &[&[u8]] = &[
            b"HTTP/2 200 OK\r\n\r\n",
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/1.1 200OK\r\n\r\n",
            b"ICY 200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{}",
            b"HTTP/1.1 200 OK\r\nX: 1\r\n folded\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n",
        ];
        for c in cases {
            assert!(
                matches!(parse_response(c), Parsed::Invalid(_)),
                "{:?}",
                String::from_utf8_lossy(c)
            );
        }
        let mut long = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        long.resize(MAX_HEAD + 1, b'a');
        assert!(matches!(parse_response(&long), Parsed::Invalid(_)));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let alphabet = b"HTTP/1.1 200 OK\r\nContent-Length: 3:\n0";
        for _ in 0..20_000 {
            let len = (x % 64) as usize;
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    alphabet[(x % alphabet.len() as u64) as usize]
                })
                .collect();
            if let Parsed::Complete { resp, consumed } = parse_response(&buf) {
                assert!(consumed <= buf.len() && resp.body.1 <= consumed);
            }
            let _ = parse_event(&buf);
        }
    }

    #[test]
    fn events_and_comments() {
        let buf = b":ok\n\nevent: sig\ndata: {\"channel\":\"c\",\"payload\":\"7\"}\n\n:ping\n\nevent: x\r\ndata: a\r\ndata: b\r\n\r\nevent: partial\n";
        let (e, n) = parse_event(buf).expect("complete");
        assert_eq!((e, n), (Event::Comment, 5));
        let (e, m) = parse_event(&buf[n..]).expect("complete");
        let Event::Event { name, data } = e else {
            panic!("an event")
        };
        assert_eq!(name, b"sig");
        let sig: Sig = serde_json::from_slice(&data).expect("json");
        assert_eq!((&*sig.channel, &*sig.payload), ("c", "7"));
        let rest = &buf[n + m..];
        let (e, k) = parse_event(rest).expect("complete");
        assert_eq!(e, Event::Comment);
        let (e, j) = parse_event(&rest[k..]).expect("complete");
        assert_eq!(
            e,
            Event::Event {
                name: b"x",
                data: Cow::Owned(b"a\nb".to_vec())
            }
        );
        assert_eq!(parse_event(&rest[k + j..]), None);
    }

    #[test]
    fn requests_and_escapes() {
        let mut v = Vec::new();
        let mut path = b"/v1/locks/".to_vec();
        push_segment(&mut path, b"a/b c%:d");
        assert_eq!(path, b"/v1/locks/a%2Fb%20c%25:d");
        request(
            &mut v,
            b"POST",
            &path,
            b"/release",
            b"Host: h\r\n",
            b"{\"token\":\"t\"}",
        );
        assert_eq!(
            v,
            b"POST /v1/locks/a%2Fb%20c%25:d/release HTTP/1.1\r\nHost: h\r\n\
Content-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"token\":\"t\"}"
        );
        v.clear();
        request(&mut v, b"POST", b"/v1/sessions", b"", b"", b"");
        assert_eq!(
            v,
            b"POST /v1/sessions HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
        );
        v.clear();
        request(&mut v, b"DELETE", b"/v1/kv/k", b"", b"", b"");
        assert_eq!(v, b"DELETE /v1/kv/k HTTP/1.1\r\n\r\n");
        let mut q = Vec::new();
        push_query_value(&mut q, b"a.b+c*");
        assert_eq!(q, b"a.b%2Bc%2A");
    }

    #[test]
    fn bodies() {
        let a: Acquire = serde_json::from_slice(
            br#"{"status":"ok","token":"18ea9db47e590001d433357e6ef5d88b","lease_ttl_s":60}"#,
        )
        .expect("json");
        assert_eq!(a.status, "ok");
        assert!(a.token.is_some_and(is_hex32));
        let t: Acquire = serde_json::from_slice(br#"{"status":"timeout"}"#).expect("json");
        assert_eq!((t.status, t.token), ("timeout", None));
        let v: KvValue =
            serde_json::from_slice(br#"{"status":"ok","value":"a\"b"}"#).expect("json");
        assert_eq!(v.value.as_deref(), Some("a\"b"));
        assert!(!is_hex32("18EA9DB47E590001D433357E6EF5D88B"));
    }
}
