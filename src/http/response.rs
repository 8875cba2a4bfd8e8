//! Response heads and bodies as bytes (http.md §2.4, §3.3, §4.4): the status
//! line, the headers every response carries, the conditional ones, and the
//! JSON error body. Pure: the caller passes the date (formatted once per second
//! by [`DateCache`] from a unix time it read) and gets bytes appended to a
//! `Vec<u8>`.
//!
//! Invariants (tested below):
//! * Every response has `Date` and `Server`; `Content-Length` on all but `1xx`,
//!   `204` and event streams, and for a `HEAD` request it is the length of the
//!   body a `GET` would get, with no body bytes written (RFC 9110 §9.3.2).
//! * Headers come in one fixed order, the order of the spec's examples, so
//!   responses are byte-exact and testable.
//! * The headers that go with a status are tied to it here rather than left to
//!   callers: `WWW-Authenticate` on every `401`, `Retry-After: 1` on every `429`,
//!   `X-Content-Type-Options: nosniff` on every JSON body.
//! * The only value echoed from a request is `Origin` for CORS; the parser
//!   guarantees it holds no CR, LF or other control byte, so it cannot split a
//!   header.
//! * JSON is escaped by serde_json, never by hand.

use serde_json::Value;

use super::parse::HeadError;

/// The `Server` header value: `dflockd/<version>`.
pub const SERVER: &str = concat!("dflockd/", env!("CARGO_PKG_VERSION"));

/// The default `Cache-Control` (§2.4): API answers are live state.
pub const NO_STORE: &str = "no-store";

/// The reason phrase for a status (RFC 9110 §15). Clients ignore it; an
/// unknown status gets an empty phrase, which the status-line grammar allows.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// The media types dflockd serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    /// Every API body and error body; adds `X-Content-Type-Options: nosniff`.
    Json,
    /// `/metrics` (§9).
    Prometheus,
    /// An SSE stream (§7): no `Content-Length` (the stream ends with the
    /// connection) and `X-Accel-Buffering: no` so proxies pass events at once.
    EventStream,
}

impl ContentType {
    pub fn as_str(self) -> &'static str {
        match self {
            ContentType::Json => "application/json",
            ContentType::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            ContentType::EventStream => "text/event-stream",
        }
    }
}

/// The `Connection` header of a response (§2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionHeader {
    /// No header: an HTTP/1.1 connection that stays open (the default).
    Omit,
    /// `Connection: keep-alive`: an HTTP/1.0 client asked to keep it open.
    KeepAlive,
    /// `Connection: close`: the server closes after this response.
    Close,
}

impl ConnectionHeader {
    /// The header for a request's HTTP minor version and whether the
    /// connection stays open after the response (the parser's `keep_alive`,
    /// cleared by the caller when it decides to close anyway).
    pub fn for_request(minor_version: u8, keep_alive: bool) -> Self {
        match (keep_alive, minor_version) {
            (false, _) => ConnectionHeader::Close,
            (true, 0) => ConnectionHeader::KeepAlive,
            (true, _) => ConnectionHeader::Omit,
        }
    }
}

/// The CORS response headers (§3.3), chosen by the caller from the request's
/// `Origin` and the configured origins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cors<'a> {
    /// No `Access-Control-*` header: CORS is off, the request had no `Origin`,
    /// or the origin is not allowed.
    Off,
    /// `Access-Control-Allow-Origin: <origin>` and `Vary: Origin`: the
    /// request's `Origin`, which matched a configured entry.
    Origin(&'a [u8]),
    /// `Access-Control-Allow-Origin: *`: the configured list holds `*`.
    Any,
}

/// Preflight headers (§3.3): what the API accepts from a browser.
const PREFLIGHT_HEADERS: &[u8] = b"Access-Control-Allow-Methods: GET, POST, DELETE, OPTIONS\r\n\
    Access-Control-Allow-Headers: Authorization, Content-Type, X-Dflockd-Session\r\n\
    Access-Control-Max-Age: 300\r\n";

/// Everything about a response but its date and body.
///
/// Start from [`ResponseHead::new`] or [`ResponseHead::json`] and set fields:
///
/// ```
/// use dflockd::http::response::{ConnectionHeader, ResponseHead};
/// let mut out = Vec::new();
/// let head = ResponseHead {
///     allow: Some("GET, HEAD"),
///     connection: ConnectionHeader::Close,
///     ..ResponseHead::json(405)
/// };
/// head.write(&mut out, "Mon, 23 Nov 2026 08:00:00 GMT", br#"{"error":"method_not_allowed"}"#);
/// assert!(out.starts_with(b"HTTP/1.1 405 Method Not Allowed\r\n"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead<'a> {
    pub status: u16,
    /// `None` for a response without a body (`204`, or an empty one).
    pub content_type: Option<ContentType>,
    /// [`NO_STORE`] unless overridden (`public, max-age=60` for the OpenAPI
    /// document, `no-cache` for SSE).
    pub cache_control: &'static str,
    /// The `Allow` list, for `405` and plain `OPTIONS` (e.g. `GET, HEAD`).
    pub allow: Option<&'a str>,
    pub cors: Cors<'a>,
    /// A CORS preflight answer: with `cors` not [`Cors::Off`], adds the
    /// `Access-Control-Allow-Methods/-Headers/-Max-Age` set.
    pub preflight: bool,
    pub connection: ConnectionHeader,
    /// The request was `HEAD`: write every header a `GET` would get, with its
    /// `Content-Length`, but no body.
    pub head_only: bool,
}

impl<'a> ResponseHead<'a> {
    /// A response without a body type: `no-store`, no CORS, connection kept.
    pub fn new(status: u16) -> Self {
        ResponseHead {
            status,
            content_type: None,
            cache_control: NO_STORE,
            allow: None,
            cors: Cors::Off,
            preflight: false,
            connection: ConnectionHeader::Omit,
            head_only: false,
        }
    }

    /// A response with a JSON body.
    pub fn json(status: u16) -> Self {
        ResponseHead {
            content_type: Some(ContentType::Json),
            ..ResponseHead::new(status)
        }
    }

    /// Whether this status may carry a body (and so a `Content-Length`):
    /// `1xx` and `204` never do (RFC 9110 §6.4.1).
    fn has_body(&self) -> bool {
        !(100..200).contains(&self.status) && self.status != 204
    }

    /// Appends the status line, the headers, the blank line and `body` to
    /// `out`. `date` is an IMF-fixdate, normally from [`DateCache::get`].
    ///
    /// `body` is the whole body for a sized response. For an event stream it
    /// is whatever should follow the head at once (usually nothing: the
    /// stream's bytes come from [`super::sse`]). It is not written for `HEAD`,
    /// `1xx` or `204` (the last two must pass an empty body).
    pub fn write(&self, out: &mut Vec<u8>, date: &str, body: &[u8]) {
        debug_assert!(
            self.has_body() || body.is_empty(),
            "a {} response carries no body",
            self.status
        );
        out.extend_from_slice(b"HTTP/1.1 ");
        push_decimal(out, usize::from(self.status));
        out.push(b' ');
        out.extend_from_slice(reason_phrase(self.status).as_bytes());
        out.extend_from_slice(b"\r\n");
        header(out, "Date", date.as_bytes());
        header(out, "Server", SERVER.as_bytes());
        let stream = self.content_type == Some(ContentType::EventStream);
        if let Some(content_type) = self.content_type {
            header(out, "Content-Type", content_type.as_str().as_bytes());
        }
        if self.has_body() && !stream {
            out.extend_from_slice(b"Content-Length: ");
            push_decimal(out, body.len());
            out.extend_from_slice(b"\r\n");
        }
        header(out, "Cache-Control", self.cache_control.as_bytes());
        match self.content_type {
            Some(ContentType::Json) => {
                out.extend_from_slice(b"X-Content-Type-Options: nosniff\r\n")
            }
            Some(ContentType::EventStream) => out.extend_from_slice(b"X-Accel-Buffering: no\r\n"),
            Some(ContentType::Prometheus) | None => {}
        }
        if let Some(allow) = self.allow {
            header(out, "Allow", allow.as_bytes());
        }
        match self.status {
            401 => out.extend_from_slice(b"WWW-Authenticate: Bearer realm=\"dflockd\"\r\n"),
            429 => out.extend_from_slice(b"Retry-After: 1\r\n"),
            _ => {}
        }
        match self.cors {
            Cors::Off => {}
            Cors::Origin(origin) => {
                header(out, "Access-Control-Allow-Origin", origin);
                out.extend_from_slice(b"Vary: Origin\r\n");
            }
            Cors::Any => out.extend_from_slice(b"Access-Control-Allow-Origin: *\r\n"),
        }
        if self.preflight && self.cors != Cors::Off {
            out.extend_from_slice(PREFLIGHT_HEADERS);
        }
        match self.connection {
            ConnectionHeader::Omit => {}
            ConnectionHeader::KeepAlive => out.extend_from_slice(b"Connection: keep-alive\r\n"),
            ConnectionHeader::Close => out.extend_from_slice(b"Connection: close\r\n"),
        }
        out.extend_from_slice(b"\r\n");
        if self.has_body() && !self.head_only {
            out.extend_from_slice(body);
        }
    }
}

/// Appends one `name: value` line. Values come from this crate or, for
/// `Origin`, from the parser, which refuses control bytes; the assertion
/// guards that contract.
fn header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    debug_assert!(
        value
            .iter()
            .all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7F)),
        "control byte in the {name} header"
    );
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends `n` in decimal (no allocation, no fallible `write!`).
fn push_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// Appends the interim `HTTP/1.1 100 Continue` and its blank line (§2.2),
/// sent before reading a body the client is holding back. Interim responses
/// carry no other header: RFC 9110 §6.6.1 requires `Date` only on final ones.
pub fn write_continue(out: &mut Vec<u8>) {
    out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
}

/// The error body of §4.4: `{"error":"<code>","detail":"<detail>"}`, without
/// `detail` when `None`. Members are written in this order on purpose (§4.3);
/// serde_json escapes each string.
pub fn error_body(code: &str, detail: Option<&str>) -> Vec<u8> {
    let mut body = Vec::with_capacity(32 + code.len() + detail.map_or(0, str::len));
    body.extend_from_slice(b"{\"error\":");
    body.extend_from_slice(Value::from(code).to_string().as_bytes());
    if let Some(detail) = detail {
        body.extend_from_slice(b",\"detail\":");
        body.extend_from_slice(Value::from(detail).to_string().as_bytes());
    }
    body.push(b'}');
    body
}

/// Appends the answer to a refused request head: the error's status and code,
/// its detail, and `Connection: close`, since after a refused head the stream
/// cannot be resynchronised (§2.2).
pub fn write_head_error(out: &mut Vec<u8>, date: &str, error: HeadError) {
    let head = ResponseHead {
        connection: ConnectionHeader::Close,
        ..ResponseHead::json(error.status())
    };
    head.write(out, date, &error_body(error.code(), Some(error.detail())));
}

/// The `Date` header value, formatted at most once per second.
///
/// The loop reads the wall clock once per iteration and passes the seconds
/// in; responses written in the same second share one formatted string.
#[derive(Debug, Default, Clone)]
pub struct DateCache {
    /// The second `text` was formatted for; `None` before the first call.
    second: Option<u64>,
    text: String,
}

impl DateCache {
    pub fn new() -> Self {
        DateCache::default()
    }

    /// The IMF-fixdate for `unix_secs` (seconds since 1970-01-01 UTC).
    pub fn get(&mut self, unix_secs: u64) -> &str {
        if self.second != Some(unix_secs) {
            self.text.clear();
            write_imf_fixdate(&mut self.text, unix_secs);
            self.second = Some(unix_secs);
        }
        &self.text
    }
}

/// The last second an IMF-fixdate can show: 9999-12-31 23:59:59 UTC. The
/// format has a four-digit year, so later times are clamped to it.
const MAX_UNIX_SECS: u64 = 253_402_300_799;

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Appends `unix_secs` as an IMF-fixdate (RFC 9110 §5.6.7), e.g.
/// `Sun, 06 Nov 1994 08:49:37 GMT`: always 29 bytes.
pub fn write_imf_fixdate(out: &mut String, unix_secs: u64) {
    let secs = unix_secs.min(MAX_UNIX_SECS);
    let days = secs / 86_400;
    let second_of_day = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01 was a Thursday (index 4 with Sunday = 0).
    out.push_str(WEEKDAYS[((days + 4) % 7) as usize]);
    out.push_str(", ");
    push_two_digits(out, day);
    out.push(' ');
    out.push_str(MONTHS[(month - 1) as usize]);
    out.push(' ');
    push_two_digits(out, year / 100);
    push_two_digits(out, year % 100);
    out.push(' ');
    push_two_digits(out, second_of_day / 3600);
    out.push(':');
    push_two_digits(out, second_of_day / 60 % 60);
    out.push(':');
    push_two_digits(out, second_of_day % 60);
    out.push_str(" GMT");
}

fn push_two_digits(out: &mut String, n: u64) {
    out.push(char::from(b'0' + (n / 10 % 10) as u8));
    out.push(char::from(b'0' + (n % 10) as u8));
}

/// (year, month 1–12, day 1–31) of a day count since 1970-01-01, in the
/// proleptic Gregorian calendar. Howard Hinnant's `civil_from_days`: shift
/// the year to start on 1 March so the leap day is the last day of the year,
/// then split into 400-year eras of 146097 days.
pub(crate) fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Days from 0000-03-01 to 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097; // [0, 146096]
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365; // [0, 399]
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100); // [0, 365]
    let shifted_month = (5 * day_of_year + 2) / 153; // [0, 11], 0 = March
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The date of the spec's examples: Mon, 23 Nov 2026 08:00:00 GMT.
    const SPEC_SECS: u64 = 1_795_420_800;

    fn date(secs: u64) -> String {
        let mut s = String::new();
        write_imf_fixdate(&mut s, secs);
        s
    }

    /// The spec's examples with `\n` line ends, as CRLF bytes, with the running
    /// version in place of the examples' `dflockd/0.1.0`.
    fn wire(example: &str) -> Vec<u8> {
        example
            .replace("dflockd/0.1.0", SERVER)
            .replace('\n', "\r\n")
            .into_bytes()
    }

    fn written(head: ResponseHead<'_>, secs: u64, body: &[u8]) -> String {
        let mut out = Vec::new();
        head.write(&mut out, &date(secs), body);
        String::from_utf8(out).expect("responses in these tests are UTF-8")
    }

    fn assert_bytes(got: String, want: Vec<u8>) {
        assert_eq!(got, String::from_utf8_lossy(&want));
    }

    #[test]
    fn spec_section_1_lock_grant() {
        let body =
            br#"{"status":"ok","token":"18ea9db47e590001d433357e6ef5d88b","lease_ttl_s":60}"#;
        let want = wire(
            "HTTP/1.1 200 OK\n\
             Date: Mon, 23 Nov 2026 08:00:00 GMT\n\
             Server: dflockd/0.1.0\n\
             Content-Type: application/json\n\
             Content-Length: 75\n\
             Cache-Control: no-store\n\
             X-Content-Type-Options: nosniff\n\
             \n",
        );
        let want = [&want[..], body].concat();
        assert_bytes(written(ResponseHead::json(200), SPEC_SECS, body), want);
    }

    #[test]
    fn spec_section_6_1_health_and_its_head_request() {
        let head = "HTTP/1.1 200 OK\n\
             Date: Mon, 23 Nov 2026 08:00:00 GMT\n\
             Server: dflockd/0.1.0\n\
             Content-Type: application/json\n\
             Content-Length: 15\n\
             Cache-Control: no-store\n\
             X-Content-Type-Options: nosniff\n\
             \n";
        let body = br#"{"status":"ok"}"#;
        let get = written(ResponseHead::json(200), SPEC_SECS, body);
        assert_bytes(get, [&wire(head)[..], body].concat());
        // HEAD: the same status and headers, Content-Length included, no body.
        let head_only = ResponseHead {
            head_only: true,
            ..ResponseHead::json(200)
        };
        assert_bytes(written(head_only, SPEC_SECS, body), wire(head));
    }

    #[test]
    fn spec_section_6_2_session_created() {
        let body = br#"{"session_id":"3f0c8d2a9b7e41c6a5d4e3f2b1a09876","idle_timeout_s":20}"#;
        let want = wire(
            "HTTP/1.1 200 OK\n\
             Date: Mon, 23 Nov 2026 08:00:00 GMT\n\
             Server: dflockd/0.1.0\n\
             Content-Type: application/json\n\
             Content-Length: 69\n\
             Cache-Control: no-store\n\
             X-Content-Type-Options: nosniff\n\
             \n",
        );
        assert_bytes(
            written(ResponseHead::json(200), SPEC_SECS, body),
            [&want[..], body].concat(),
        );
    }

    #[test]
    fn spec_section_6_3_no_content_has_no_length() {
        let want = wire(
            "HTTP/1.1 204 No Content\n\
             Date: Mon, 23 Nov 2026 08:00:01 GMT\n\
             Server: dflockd/0.1.0\n\
             Cache-Control: no-store\n\
             \n",
        );
        assert_bytes(written(ResponseHead::new(204), SPEC_SECS + 1, b""), want);
        let head_only = ResponseHead {
            head_only: true,
            ..ResponseHead::new(204)
        };
        assert_bytes(
            written(head_only, SPEC_SECS + 1, b""),
            wire(
                "HTTP/1.1 204 No Content\n\
             Date: Mon, 23 Nov 2026 08:00:01 GMT\n\
             Server: dflockd/0.1.0\n\
             Cache-Control: no-store\n\
             \n",
            ),
        );
    }

    #[test]
    fn status_bound_and_optional_headers() {
        let d = "Date: Mon, 23 Nov 2026 08:00:00 GMT\r\nServer: dflockd/0.1.0\r\n"
            .replace("dflockd/0.1.0", SERVER);
        let json = "Content-Type: application/json\r\n";
        let nosniff = "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n";
        let unauthorized = br#"{"error":"unauthorized"}"#;
        assert_eq!(
            written(ResponseHead::json(401), SPEC_SECS, unauthorized),
            format!(
                "HTTP/1.1 401 Unauthorized\r\n{d}{json}Content-Length: 24\r\n{nosniff}\
                 WWW-Authenticate: Bearer realm=\"dflockd\"\r\n\r\n{{\"error\":\"unauthorized\"}}"
            )
        );
        let limited = br#"{"error":"rate_limited"}"#;
        assert_eq!(
            written(ResponseHead::json(429), SPEC_SECS, limited),
            format!(
                "HTTP/1.1 429 Too Many Requests\r\n{d}{json}Content-Length: 24\r\n{nosniff}\
                 Retry-After: 1\r\n\r\n{{\"error\":\"rate_limited\"}}"
            )
        );
        let not_allowed = ResponseHead {
            allow: Some("GET, HEAD"),
            connection: ConnectionHeader::Close,
            ..ResponseHead::json(405)
        };
        assert_eq!(
            written(not_allowed, SPEC_SECS, b"{}"),
            format!(
                "HTTP/1.1 405 Method Not Allowed\r\n{d}{json}Content-Length: 2\r\n{nosniff}\
                 Allow: GET, HEAD\r\nConnection: close\r\n\r\n{{}}"
            )
        );
        // Plain OPTIONS without CORS (§3.3): 204 with Allow.
        let options = ResponseHead {
            allow: Some("GET, HEAD, OPTIONS"),
            ..ResponseHead::new(204)
        };
        assert_eq!(
            written(options, SPEC_SECS, b""),
            format!(
                "HTTP/1.1 204 No Content\r\n{d}Cache-Control: no-store\r\nAllow: GET, HEAD, OPTIONS\r\n\r\n"
            )
        );
        let openapi = ResponseHead {
            cache_control: "public, max-age=60",
            connection: ConnectionHeader::KeepAlive,
            ..ResponseHead::json(200)
        };
        assert_eq!(
            written(openapi, SPEC_SECS, b"{}"),
            format!(
                "HTTP/1.1 200 OK\r\n{d}{json}Content-Length: 2\r\nCache-Control: public, max-age=60\r\n\
                 X-Content-Type-Options: nosniff\r\nConnection: keep-alive\r\n\r\n{{}}"
            )
        );
        let metrics = ResponseHead {
            content_type: Some(ContentType::Prometheus),
            ..ResponseHead::new(200)
        };
        assert_eq!(
            written(metrics, SPEC_SECS, b"x 1\n"),
            format!(
                "HTTP/1.1 200 OK\r\n{d}Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
                 Content-Length: 4\r\nCache-Control: no-store\r\n\r\nx 1\n"
            )
        );
        // The draining answer of §8.
        let ready = ResponseHead {
            connection: ConnectionHeader::Close,
            ..ResponseHead::json(503)
        };
        assert_eq!(
            written(ready, SPEC_SECS, br#"{"status":"draining"}"#),
            format!(
                "HTTP/1.1 503 Service Unavailable\r\n{d}{json}Content-Length: 21\r\n{nosniff}\
                 Connection: close\r\n\r\n{{\"status\":\"draining\"}}"
            )
        );
    }

    #[test]
    fn cors_headers() {
        let d = "Date: Mon, 23 Nov 2026 08:00:00 GMT\r\nServer: dflockd/0.1.0\r\n"
            .replace("dflockd/0.1.0", SERVER);
        let echoed = ResponseHead {
            cors: Cors::Origin(b"https://app.example"),
            ..ResponseHead::json(200)
        };
        assert_eq!(
            written(echoed, SPEC_SECS, b"{}"),
            format!(
                "HTTP/1.1 200 OK\r\n{d}Content-Type: application/json\r\nContent-Length: 2\r\n\
                 Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
                 Access-Control-Allow-Origin: https://app.example\r\nVary: Origin\r\n\r\n{{}}"
            )
        );
        let any = ResponseHead {
            cors: Cors::Any,
            ..ResponseHead::new(204)
        };
        assert_eq!(
            written(any, SPEC_SECS, b""),
            format!(
                "HTTP/1.1 204 No Content\r\n{d}Cache-Control: no-store\r\n\
                 Access-Control-Allow-Origin: *\r\n\r\n"
            )
        );
        let preflight = ResponseHead {
            cors: Cors::Origin(b"http://localhost:3000"),
            preflight: true,
            ..ResponseHead::new(204)
        };
        assert_eq!(
            written(preflight, SPEC_SECS, b""),
            format!(
                "HTTP/1.1 204 No Content\r\n{d}Cache-Control: no-store\r\n\
                 Access-Control-Allow-Origin: http://localhost:3000\r\nVary: Origin\r\n\
                 Access-Control-Allow-Methods: GET, POST, DELETE, OPTIONS\r\n\
                 Access-Control-Allow-Headers: Authorization, Content-Type, X-Dflockd-Session\r\n\
                 Access-Control-Max-Age: 300\r\n\r\n"
            )
        );
        // A preflight from an origin that is not allowed: no Access-Control-* at all.
        let refused = ResponseHead {
            preflight: true,
            ..ResponseHead::new(204)
        };
        assert_eq!(
            written(refused, SPEC_SECS, b""),
            format!("HTTP/1.1 204 No Content\r\n{d}Cache-Control: no-store\r\n\r\n")
        );
    }

    #[test]
    fn connection_header_follows_section_2_3() {
        use ConnectionHeader::*;
        assert_eq!(ConnectionHeader::for_request(1, true), Omit);
        assert_eq!(ConnectionHeader::for_request(1, false), Close);
        assert_eq!(ConnectionHeader::for_request(0, true), KeepAlive);
        assert_eq!(ConnectionHeader::for_request(0, false), Close);
    }

    #[test]
    fn every_status_the_api_uses_has_its_phrase() {
        let table = [
            (100, "Continue"),
            (200, "OK"),
            (204, "No Content"),
            (400, "Bad Request"),
            (401, "Unauthorized"),
            (404, "Not Found"),
            (405, "Method Not Allowed"),
            (408, "Request Timeout"),
            (409, "Conflict"),
            (410, "Gone"),
            (413, "Content Too Large"),
            (417, "Expectation Failed"),
            (429, "Too Many Requests"),
            (431, "Request Header Fields Too Large"),
            (500, "Internal Server Error"),
            (501, "Not Implemented"),
            (503, "Service Unavailable"),
            (505, "HTTP Version Not Supported"),
        ];
        for (status, phrase) in table {
            assert_eq!(reason_phrase(status), phrase);
        }
        // Unknown: an empty phrase, still a well-formed status line.
        assert_eq!(reason_phrase(299), "");
        assert!(written(ResponseHead::new(299), 0, b"").starts_with("HTTP/1.1 299 \r\n"));
    }

    #[test]
    fn interim_continue() {
        let mut out = b"before".to_vec();
        write_continue(&mut out);
        assert_eq!(out, b"beforeHTTP/1.1 100 Continue\r\n\r\n");
    }

    #[test]
    fn error_bodies_keep_member_order_and_escape_with_serde() {
        assert_eq!(error_body("not_held", None), br#"{"error":"not_held"}"#);
        assert_eq!(
            error_body("bad_request", Some("X-Dflockd-Session header required")),
            br#"{"error":"bad_request","detail":"X-Dflockd-Session header required"}"#
        );
        let nasty = "quote \" backslash \\ newline \n nul \0 caf\u{e9} \u{2028}";
        let body = error_body("bad_request", Some(nasty));
        assert!(!body.contains(&b'\n') && !body.contains(&0));
        let parsed: Value = serde_json::from_slice(&body).expect("error bodies are JSON");
        assert_eq!(parsed["error"], "bad_request");
        assert_eq!(parsed["detail"], nasty);
        assert!(body.starts_with(br#"{"error":"bad_request","detail":"#));
    }

    #[test]
    fn refused_heads_are_answered_and_closed() {
        let mut out = Vec::new();
        write_head_error(&mut out, &date(SPEC_SECS), HeadError::HeadTooLarge);
        let body =
            br#"{"error":"headers_too_large","detail":"request head larger than its limit"}"#;
        let want = wire(&format!(
            "HTTP/1.1 431 Request Header Fields Too Large\n\
             Date: Mon, 23 Nov 2026 08:00:00 GMT\n\
             Server: dflockd/0.1.0\n\
             Content-Type: application/json\n\
             Content-Length: {}\n\
             Cache-Control: no-store\n\
             X-Content-Type-Options: nosniff\n\
             Connection: close\n\
             \n",
            body.len()
        ));
        assert_eq!(out, [&want[..], body].concat());
        let mut out = Vec::new();
        write_head_error(&mut out, &date(0), HeadError::VersionNotSupported);
        assert!(out.starts_with(b"HTTP/1.1 505 HTTP Version Not Supported\r\n"));
        assert!(out.ends_with(br#"{"error":"http_version_not_supported","detail":"only HTTP/1.0 and HTTP/1.1 are supported"}"#));
    }

    #[test]
    fn imf_fixdates() {
        let cases = [
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (86_399, "Thu, 01 Jan 1970 23:59:59 GMT"),
            (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"), // RFC 9110's example
            (946_684_799, "Fri, 31 Dec 1999 23:59:59 GMT"),
            (946_684_800, "Sat, 01 Jan 2000 00:00:00 GMT"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"), // leap: divisible by 400
            (951_868_800, "Wed, 01 Mar 2000 00:00:00 GMT"),
            (1_709_164_800, "Thu, 29 Feb 2024 00:00:00 GMT"),
            (SPEC_SECS, "Mon, 23 Nov 2026 08:00:00 GMT"),
            (2_147_483_647, "Tue, 19 Jan 2038 03:14:07 GMT"), // i32 seconds run out
            (2_147_483_648, "Tue, 19 Jan 2038 03:14:08 GMT"),
            (4_107_456_000, "Sun, 28 Feb 2100 00:00:00 GMT"),
            (4_107_542_400, "Mon, 01 Mar 2100 00:00:00 GMT"), // 2100 is not leap
            (253_402_300_799, "Fri, 31 Dec 9999 23:59:59 GMT"),
            (253_402_300_800, "Fri, 31 Dec 9999 23:59:59 GMT"), // clamped
            (u64::MAX, "Fri, 31 Dec 9999 23:59:59 GMT"),
        ];
        for (secs, want) in cases {
            assert_eq!(date(secs), want, "{secs}");
        }
    }

    /// Every day from 1970 to 2600 against a calendar walked one day at a time.
    #[test]
    fn civil_dates_match_a_day_by_day_walk() {
        let is_leap = |y: u64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let month_len = |y: u64, m: u64| match m {
            2 if is_leap(y) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let (mut y, mut m, mut d) = (1970, 1, 1);
        for days in 0..232_000u64 {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            let text = date(days * 86_400 + 43_200);
            assert_eq!(&text[..3], WEEKDAYS[((days + 4) % 7) as usize]);
            assert_eq!(&text[8..11], MONTHS[(m - 1) as usize]);
            assert_eq!(text.len(), 29);
            d += 1;
            if d > month_len(y, m) {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
        assert!(y > 2600);
    }

    #[test]
    fn date_cache_formats_once_per_second() {
        let mut cache = DateCache::new();
        assert_eq!(cache.get(SPEC_SECS), "Mon, 23 Nov 2026 08:00:00 GMT");
        let first = cache.get(SPEC_SECS).as_ptr();
        assert_eq!(cache.get(SPEC_SECS).as_ptr(), first);
        assert_eq!(cache.get(SPEC_SECS + 61), "Mon, 23 Nov 2026 08:01:01 GMT");
        assert_eq!(cache.get(SPEC_SECS), "Mon, 23 Nov 2026 08:00:00 GMT");
        // The string is reused in place: no allocation after the first second.
        assert_eq!(cache.get(0).as_ptr(), first);
    }

    #[test]
    fn decimals() {
        for n in [0, 7, 10, 75, 1_048_576, usize::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }
}
