//! The HTTP/1.x request-head parser (http.md §2.1–§2.3): cuts the next request
//! head off the front of a connection's input and extracts, in the same pass,
//! the few header fields the server acts on.
//!
//! [`parse_head`] is pure and stateless, httparse-style: no IO, no clock, no
//! allocation. The caller keeps the bytes and calls again when more arrive. The
//! body is not read here: the head says how long it is (`Content-Length` only).
//!
//! Invariants (tested below, and by a seeded fuzz test):
//! * `Complete { consumed }` has `1 <= consumed <= buf.len()`, and every slice in
//!   the [`RequestHead`] borrows from `buf[..consumed]`.
//! * **Segmentation does not matter**: if a prefix of a buffer parses `Complete`
//!   or `Error`, the whole buffer parses to the same answer. Every verdict is
//!   taken on whole lines, in order, from bytes already seen, so how TCP cut the
//!   stream never changes the reply.
//! * **Limits are enforced while the head is still arriving** (style §4): only
//!   the first `max_head_bytes` bytes can belong to an acceptable head, so a
//!   buffer that long without the blank line is `Error(HeadTooLarge)`, never
//!   `Incomplete`; the field count and `Content-Length` are checked line by line.
//!   A caller that buffers `max_head_bytes` bytes can therefore never stall, and
//!   `Incomplete` always means "a valid head may still follow".
//! * **Each call reads at most `max_head_bytes` bytes** of `buf`. The parser
//!   keeps no state, so a head trickling in byte by byte is rescanned on each
//!   call; the limit bounds that to 16 KiB per read.
//!
//! Lines may end with CRLF or a bare LF (§2.2); one CR directly before the LF is
//! part of the line end, any other CR is a control character and is refused.
//! Every [`HeadError`] closes the connection (§2.2's table): after a refused
//! head we no longer know where the next request starts.

use std::fmt;

const LF: u8 = b'\n';
const CR: u8 = b'\r';
const SP: u8 = b' ';
const HTAB: u8 = b'\t';

/// Default limits of §2.2.
pub const DEFAULT_MAX_HEAD_BYTES: usize = 16384;
/// Default cap on header fields per request (§2.2).
pub const DEFAULT_MAX_HEADERS: usize = 64;
/// Default cap on a declared body, in bytes (§2.2: 1 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1_048_576;

/// Size limits on a request (§2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLimits {
    /// Request line + header fields + the blank line, line ends included, in
    /// bytes. Empty lines before the request line count too.
    pub max_head_bytes: usize,
    /// Header field lines per request.
    pub max_headers: usize,
    /// Largest `Content-Length` accepted, in bytes.
    pub max_body_bytes: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        HeadLimits {
            max_head_bytes: DEFAULT_MAX_HEAD_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// The request method. Methods are case-sensitive (RFC 9110 §9.1): `get` is
/// [`Method::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Delete,
    Options,
    Patch,
    /// Any other valid token; the router answers it `405` or `404`. The bytes
    /// are in [`RequestHead::method_raw`].
    Other,
}

impl Method {
    /// Classifies a method token.
    pub fn from_token(token: &[u8]) -> Method {
        match token {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"DELETE" => Method::Delete,
            b"OPTIONS" => Method::Options,
            b"PATCH" => Method::Patch,
            _ => Method::Other,
        }
    }
}

/// A parsed request head, borrowing from the caller's buffer.
///
/// Header values are raw bytes with surrounding spaces and TABs trimmed (RFC
/// 9110 §5.5 allows bytes 0x80–0xFF in values, so they need not be UTF-8). They
/// never hold a control character other than TAB, so echoing one into a
/// response cannot split a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHead<'b> {
    pub method: Method,
    /// The method token as sent (ASCII token characters only).
    pub method_raw: &'b str,
    /// The target up to `?`, still percent-encoded; starts with `/`, or is
    /// exactly `*` for `OPTIONS *`. Visible ASCII only.
    pub path: &'b str,
    /// The target after the first `?` (may be empty); `None` without a `?`.
    pub query: Option<&'b str>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// The declared body length; 0 without `Content-Length`. At most
    /// `max_body_bytes`.
    pub content_length: usize,
    /// Whether the connection stays open after the response (§2.3): HTTP/1.1
    /// unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`
    /// (and no `close`).
    pub keep_alive: bool,
    /// `Expect: 100-continue` on an HTTP/1.1 request: send the interim `100`
    /// before reading the body. Always false for HTTP/1.0, whose clients do not
    /// know interim responses (RFC 9110 §10.1.1).
    pub expect_continue: bool,
    /// An `Expect` member other than `100-continue`: answer `417
    /// expectation_failed`.
    pub expect_other: bool,
    /// `X-Dflockd-Session`.
    pub session: Option<&'b [u8]>,
    /// `Authorization`.
    pub authorization: Option<&'b [u8]>,
    /// `Origin`.
    pub origin: Option<&'b [u8]>,
    /// `Access-Control-Request-Method` (its presence marks a CORS preflight).
    pub access_control_request_method: Option<&'b [u8]>,
}

/// Outcome of [`parse_head`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadParse<'b> {
    /// The head occupies the first `consumed` bytes (blank line included); the
    /// body, `head.content_length` bytes, starts at `buf[consumed..]`.
    Complete {
        head: RequestHead<'b>,
        consumed: usize,
    },
    /// `buf` is a proper prefix of a head that may still turn out valid; read
    /// more and call again with the grown buffer. Not an error.
    Incomplete,
    /// The request is refused: reply with the error's status and code, then
    /// close (§2.2).
    Error(HeadError),
}

/// Why a request head is refused (§2.2, §4.4). Each one closes the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// The request line's version is `HTTP/d.d` but not 1.0 or 1.1 (this is
    /// what the HTTP/2 preface `PRI * HTTP/2.0` gets).
    VersionNotSupported,
    /// The head did not end within `max_head_bytes` bytes.
    HeadTooLarge,
    /// More than `max_headers` header field lines.
    TooManyHeaders,
    /// A `Transfer-Encoding` field, whatever its value: bodies are delimited
    /// by `Content-Length` only.
    TransferEncoding,
    /// A `Content-Length` element that is not one or more digits.
    InvalidContentLength,
    /// `Content-Length` elements or fields with different values.
    ConflictingContentLength,
    /// `Content-Length` over `max_body_bytes` (refused before any body byte).
    BodyTooLarge,
    /// The request line is not `method SP target SP HTTP/d.d`, or the method is
    /// not a token.
    BadRequestLine,
    /// The target is not in origin form (`/path?query`), or is `*` without
    /// `OPTIONS`, or holds a byte that cannot appear in a target.
    BadTarget,
    /// A header line starting with a space or TAB: obsolete line folding
    /// (RFC 9112 §5.2), or whitespace after the request line.
    ObsoleteFold,
    /// A header line with no colon, or a name that is empty or not a token
    /// (whitespace before the colon included, RFC 9112 §5.1).
    BadHeaderName,
    /// A header value holding a control character (CR, NUL, DEL …).
    BadHeaderValue,
    /// A second `Authorization`, `X-Dflockd-Session`, `Origin` or
    /// `Access-Control-Request-Method` field: these hold one value, and
    /// guessing which one the client meant is how smuggling bugs start.
    DuplicateHeader,
}

impl HeadError {
    /// The response status (§4.4).
    pub fn status(&self) -> u16 {
        match self {
            HeadError::VersionNotSupported => 505,
            HeadError::HeadTooLarge | HeadError::TooManyHeaders => 431,
            HeadError::TransferEncoding => 501,
            HeadError::BodyTooLarge => 413,
            HeadError::InvalidContentLength
            | HeadError::ConflictingContentLength
            | HeadError::BadRequestLine
            | HeadError::BadTarget
            | HeadError::ObsoleteFold
            | HeadError::BadHeaderName
            | HeadError::BadHeaderValue
            | HeadError::DuplicateHeader => 400,
        }
    }

    /// The stable `error` code of the JSON body (§4.4).
    pub fn code(&self) -> &'static str {
        match self.status() {
            505 => "http_version_not_supported",
            431 => "headers_too_large",
            501 => "not_implemented",
            413 => "payload_too_large",
            _ => "bad_request",
        }
    }

    /// Human-readable text for the `detail` member (not part of the contract).
    pub fn detail(&self) -> &'static str {
        match self {
            HeadError::VersionNotSupported => "only HTTP/1.0 and HTTP/1.1 are supported",
            HeadError::HeadTooLarge => "request head larger than its limit",
            HeadError::TooManyHeaders => "too many header fields",
            HeadError::TransferEncoding => "Transfer-Encoding is not supported",
            HeadError::InvalidContentLength => "invalid Content-Length",
            HeadError::ConflictingContentLength => "conflicting Content-Length values",
            HeadError::BodyTooLarge => "request body larger than its limit",
            HeadError::BadRequestLine => "malformed request line",
            HeadError::BadTarget => "request target not in origin form",
            HeadError::ObsoleteFold => "obsolete line folding is not allowed",
            HeadError::BadHeaderName => "malformed header field",
            HeadError::BadHeaderValue => "control character in a header value",
            HeadError::DuplicateHeader => "header field given more than once",
        }
    }
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.detail())
    }
}

impl std::error::Error for HeadError {}

/// Fills a byte-class table from a `const fn(u8) -> bool` predicate at compile
/// time (a macro because stable Rust cannot call a fn pointer in a const fn).
macro_rules! byte_class {
    ($member:ident) => {{
        let mut table = [false; 256];
        let mut i = 0;
        while i < 256 {
            table[i] = $member(i as u8);
            i += 1;
        }
        table
    }};
}

/// RFC 9110 §5.6.2: `tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" /
/// "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA`. Methods and field
/// names are tokens.
static TOKEN: [bool; 256] = byte_class!(is_tchar);

const fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// RFC 9110 §5.5: `field-value = *field-content`, made of `field-vchar = VCHAR /
/// obs-text` with SP and HTAB between: every byte but the controls (0x00–0x1F
/// except HTAB) and DEL. So CR, LF and NUL are refused (§5.5's "MUST").
static FIELD_VALUE: [bool; 256] = byte_class!(is_field_value_byte);

const fn is_field_value_byte(b: u8) -> bool {
    b == HTAB || (b >= 0x20 && b != 0x7F)
}

/// Request-target bytes: visible ASCII (0x21–0x7E) except `#`. RFC 3986 is
/// stricter, but browsers send `|`, `^`, `[`, `]` unescaped; the path module
/// percent-decodes and validates keys, so framing only needs one token without
/// whitespace, controls or non-ASCII. A `#` would start a fragment, which
/// clients never send (RFC 9112 §3.2).
static TARGET: [bool; 256] = byte_class!(is_target_byte);

const fn is_target_byte(b: u8) -> bool {
    b >= 0x21 && b <= 0x7E && b != b'#'
}

/// Parses the request head at the start of `buf`.
///
/// * `Complete { head, consumed }`: the first `consumed` bytes are the head,
///   blank line included (and any empty lines before the request line, which
///   are skipped as RFC 9112 §2.2 asks). The body follows.
/// * `Incomplete`: no verdict yet; read more and call again.
/// * `Error(e)`: refuse with `e.status()` / `e.code()` and close. Checked in
///   line order: the request line (its version first, §2.1), then each header
///   line as it completes, then the size limit when no blank line arrived
///   within `max_head_bytes` bytes.
pub fn parse_head<'b>(buf: &'b [u8], limits: &HeadLimits) -> HeadParse<'b> {
    let mut lines = Lines {
        window: &buf[..buf.len().min(limits.max_head_bytes)],
        pos: 0,
    };
    let request_line = loop {
        match lines.next() {
            Some([]) => continue,
            Some(line) => break line,
            None => return out_of_lines(buf, limits),
        }
    };
    let line = match parse_request_line(request_line) {
        Ok(line) => line,
        Err(e) => return HeadParse::Error(e),
    };
    let mut fields = Fields::default();
    let mut count = 0;
    loop {
        match lines.next() {
            Some([]) => break,
            Some(field) => {
                count += 1;
                if count > limits.max_headers {
                    return HeadParse::Error(HeadError::TooManyHeaders);
                }
                if let Err(e) = fields.add(field, limits) {
                    return HeadParse::Error(e);
                }
            }
            None => return out_of_lines(buf, limits),
        }
    }
    HeadParse::Complete {
        head: fields.finish(line),
        consumed: lines.pos,
    }
}

/// The verdict when the window holds no further LF: the head may still end
/// unless the window already spans the whole limit (style §4: the limit is
/// checked while the head is still incomplete).
fn out_of_lines<'b>(buf: &[u8], limits: &HeadLimits) -> HeadParse<'b> {
    if buf.len() >= limits.max_head_bytes {
        HeadParse::Error(HeadError::HeadTooLarge)
    } else {
        HeadParse::Incomplete
    }
}

/// Successive lines of the window, each without its LF and without one CR
/// right before the LF.
struct Lines<'b> {
    window: &'b [u8],
    /// Bytes of the window taken by the lines returned so far.
    pos: usize,
}

impl<'b> Lines<'b> {
    /// The next complete line, or `None` if its LF is not in the window.
    fn next(&mut self) -> Option<&'b [u8]> {
        let rest = &self.window[self.pos..];
        let lf = rest.iter().position(|&b| b == LF)?;
        self.pos += lf + 1;
        let raw = &rest[..lf];
        Some(raw.strip_suffix(&[CR]).unwrap_or(raw))
    }
}

/// The parts of a request line.
struct RequestLine<'b> {
    method: Method,
    method_raw: &'b str,
    path: &'b str,
    query: Option<&'b str>,
    minor_version: u8,
}

/// `method SP request-target SP HTTP-version` (RFC 9112 §3), single spaces.
/// The version is the text after the last space and is judged first (§2.1),
/// so an HTTP/2 preface gets 505 whatever precedes it.
fn parse_request_line(line: &[u8]) -> Result<RequestLine<'_>, HeadError> {
    let last_sp = line
        .iter()
        .rposition(|&b| b == SP)
        .ok_or(HeadError::BadRequestLine)?;
    let minor_version = match &line[last_sp + 1..] {
        b"HTTP/1.1" => 1,
        b"HTTP/1.0" => 0,
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            return Err(HeadError::VersionNotSupported);
        }
        _ => return Err(HeadError::BadRequestLine),
    };
    let rest = &line[..last_sp];
    let method_end = rest
        .iter()
        .position(|&b| b == SP)
        .ok_or(HeadError::BadRequestLine)?;
    let (method_raw, target) = (&rest[..method_end], &rest[method_end + 1..]);
    if method_raw.is_empty() || !method_raw.iter().all(|&b| TOKEN[usize::from(b)]) {
        return Err(HeadError::BadRequestLine);
    }
    let method = Method::from_token(method_raw);
    // An empty target (two spaces) or a third space lands here too.
    if !target.iter().all(|&b| TARGET[usize::from(b)]) {
        return Err(HeadError::BadTarget);
    }
    let (path, query) = match target {
        b"*" if method == Method::Options => (target, None),
        [b'/', ..] => match target.iter().position(|&b| b == b'?') {
            Some(q) => (&target[..q], Some(&target[q + 1..])),
            None => (target, None),
        },
        _ => return Err(HeadError::BadTarget),
    };
    // Tokens and targets are ASCII by the tables above, so these never fail;
    // mapping instead of unwrapping keeps client bytes away from panics.
    let ascii = |bytes| std::str::from_utf8(bytes).map_err(|_| HeadError::BadRequestLine);
    Ok(RequestLine {
        method,
        method_raw: ascii(method_raw)?,
        path: ascii(path)?,
        query: query.map(ascii).transpose()?,
        minor_version,
    })
}

/// What the header lines said, gathered line by line.
#[derive(Default)]
struct Fields<'b> {
    content_length: Option<u64>,
    connection_close: bool,
    connection_keep_alive: bool,
    expect_continue: bool,
    expect_other: bool,
    session: Option<&'b [u8]>,
    authorization: Option<&'b [u8]>,
    origin: Option<&'b [u8]>,
    access_control_request_method: Option<&'b [u8]>,
}

impl<'b> Fields<'b> {
    /// Validates one header line (`name ":" OWS value OWS`) and records it if
    /// the server acts on it. Names are matched case-insensitively.
    fn add(&mut self, line: &'b [u8], limits: &HeadLimits) -> Result<(), HeadError> {
        if matches!(line.first(), Some(&(SP | HTAB))) {
            return Err(HeadError::ObsoleteFold);
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(HeadError::BadHeaderName)?;
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&b| TOKEN[usize::from(b)]) {
            return Err(HeadError::BadHeaderName);
        }
        let raw_value = &line[colon + 1..];
        if !raw_value.iter().all(|&b| FIELD_VALUE[usize::from(b)]) {
            return Err(HeadError::BadHeaderValue);
        }
        let value = trim_ows(raw_value);
        let is = |known: &str| name.eq_ignore_ascii_case(known.as_bytes());
        if is("content-length") {
            self.add_content_length(value, limits)?;
        } else if is("transfer-encoding") {
            return Err(HeadError::TransferEncoding);
        } else if is("connection") {
            for option in list_members(value) {
                self.connection_close |= option.eq_ignore_ascii_case(b"close");
                self.connection_keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if is("expect") {
            for expectation in list_members(value) {
                if expectation.eq_ignore_ascii_case(b"100-continue") {
                    self.expect_continue = true;
                } else {
                    self.expect_other = true;
                }
            }
        } else if is("x-dflockd-session") {
            set_once(&mut self.session, value)?;
        } else if is("authorization") {
            set_once(&mut self.authorization, value)?;
        } else if is("origin") {
            set_once(&mut self.origin, value)?;
        } else if is("access-control-request-method") {
            set_once(&mut self.access_control_request_method, value)?;
        }
        Ok(())
    }

    /// `Content-Length = 1*DIGIT`. Repeated fields, or a comma list (RFC 9110
    /// §8.6), are accepted only when every value is the same number.
    fn add_content_length(&mut self, value: &[u8], limits: &HeadLimits) -> Result<(), HeadError> {
        for element in value.split(|&b| b == b',').map(trim_ows) {
            if element.is_empty() || !element.iter().all(u8::is_ascii_digit) {
                return Err(HeadError::InvalidContentLength);
            }
            // Digits only, so the only failure is overflow: any such number is
            // far over the body limit, and u64::MAX says so below.
            let n = element
                .iter()
                .try_fold(0u64, |acc, &d| {
                    acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
                })
                .unwrap_or(u64::MAX);
            match self.content_length {
                Some(previous) if previous != n => {
                    return Err(HeadError::ConflictingContentLength);
                }
                _ => self.content_length = Some(n),
            }
            if n > limits.max_body_bytes as u64 {
                return Err(HeadError::BodyTooLarge);
            }
        }
        Ok(())
    }

    fn finish(self, line: RequestLine<'b>) -> RequestHead<'b> {
        let http11 = line.minor_version == 1;
        RequestHead {
            method: line.method,
            method_raw: line.method_raw,
            path: line.path,
            query: line.query,
            minor_version: line.minor_version,
            // Checked against max_body_bytes (a usize) in add_content_length.
            content_length: self
                .content_length
                .map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX)),
            keep_alive: !self.connection_close && (http11 || self.connection_keep_alive),
            expect_continue: self.expect_continue && http11,
            expect_other: self.expect_other,
            session: self.session,
            authorization: self.authorization,
            origin: self.origin,
            access_control_request_method: self.access_control_request_method,
        }
    }
}

/// Records a single-valued field, refusing a second one.
fn set_once<'b>(slot: &mut Option<&'b [u8]>, value: &'b [u8]) -> Result<(), HeadError> {
    if slot.is_some() {
        return Err(HeadError::DuplicateHeader);
    }
    *slot = Some(value);
    Ok(())
}

/// The non-empty members of a comma-separated list (RFC 9110 §5.6.1), trimmed.
fn list_members(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|member| !member.is_empty())
}

/// Strips optional whitespace (SP and HTAB, RFC 9110 §5.6.3) from both ends.
fn trim_ows(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == SP || *b == HTAB;
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::XorShift;

    fn small() -> HeadLimits {
        HeadLimits {
            max_head_bytes: 96,
            max_headers: 3,
            max_body_bytes: 100,
        }
    }

    /// The head of `GET <path> HTTP/1.1` with no interesting field.
    fn get(path: &'static str) -> RequestHead<'static> {
        RequestHead {
            method: Method::Get,
            method_raw: "GET",
            path,
            query: None,
            minor_version: 1,
            content_length: 0,
            keep_alive: true,
            expect_continue: false,
            expect_other: false,
            session: None,
            authorization: None,
            origin: None,
            access_control_request_method: None,
        }
    }

    fn get10(path: &'static str) -> RequestHead<'static> {
        RequestHead {
            minor_version: 0,
            keep_alive: false,
            ..get(path)
        }
    }

    fn with(method: Method, raw: &'static str, path: &'static str) -> RequestHead<'static> {
        RequestHead {
            method,
            method_raw: raw,
            ..get(path)
        }
    }

    /// Asserts that `buf` is exactly the heads `expected` back to back, each
    /// followed by its `Content-Length` body bytes; that from each request
    /// boundary every proper prefix of the head is `Incomplete`, and every longer
    /// prefix of the buffer parses to the same head and `consumed`.
    fn assert_stream(buf: &[u8], limits: &HeadLimits, expected: &[RequestHead<'_>]) {
        let mut start = 0;
        for (i, want) in expected.iter().enumerate() {
            let end = match parse_head(&buf[start..], limits) {
                HeadParse::Complete { head, consumed } => {
                    assert_eq!(head, *want, "head {i} of {:?}", buf.escape_ascii());
                    start + consumed
                }
                other => panic!("head {i} of {:?}: {other:?}", buf.escape_ascii()),
            };
            for k in start..end {
                assert_eq!(
                    parse_head(&buf[start..k], limits),
                    HeadParse::Incomplete,
                    "head {i} of {:?}, prefix up to {k}",
                    buf.escape_ascii()
                );
            }
            for k in end..=buf.len() {
                assert_eq!(
                    parse_head(&buf[start..k], limits),
                    HeadParse::Complete {
                        head: *want,
                        consumed: end - start
                    },
                    "head {i} of {:?}, prefix up to {k}",
                    buf.escape_ascii()
                );
            }
            start = end + want.content_length;
        }
        assert_eq!(
            start,
            buf.len(),
            "bytes left over in {:?}",
            buf.escape_ascii()
        );
    }

    /// Asserts that `buf` is refused with `error`, and that every prefix is
    /// `Incomplete` until the verdict and `Error(error)` from then on.
    fn assert_error(buf: &[u8], limits: &HeadLimits, error: HeadError) {
        let mut decided = false;
        for k in 0..=buf.len() {
            match parse_head(&buf[..k], limits) {
                HeadParse::Incomplete if !decided => {}
                HeadParse::Error(e) if e == error => decided = true,
                other => panic!(
                    "{:?} prefix up to {k}: {other:?}, want {error:?}",
                    buf.escape_ascii()
                ),
            }
        }
        assert!(decided, "{:?} never refused", buf.escape_ascii());
    }

    #[test]
    #[rustfmt::skip]
    fn valid_heads_at_every_prefix() {
        let cases: &[(&[u8], RequestHead<'_>)] = &[
            (b"GET / HTTP/1.1\r\n\r\n", get("/")),
            (b"GET / HTTP/1.1\n\n", get("/")),
            (b"GET / HTTP/1.1\r\n\n", get("/")),
            (b"GET / HTTP/1.1\nHost: a\r\n\r\n", get("/")),
            (b"GET /health HTTP/1.0\r\n\r\n", get10("/health")),
            (b"GET /health HTTP/1.1\r\nHost: 127.0.0.1:6389\r\n\r\n", get("/health")),
            // Empty lines before the request line are skipped (RFC 9112 §2.2).
            (b"\r\n\nGET / HTTP/1.1\r\n\r\n", get("/")),
            // Targets: the path stays encoded, the query is split at the first `?`.
            (b"GET /v1/kv/a%2Fb HTTP/1.1\r\n\r\n", get("/v1/kv/a%2Fb")),
            (b"GET /v1/signals?pattern=orders.*&group=g HTTP/1.1\r\n\r\n", RequestHead { query: Some("pattern=orders.*&group=g"), ..get("/v1/signals") }),
            (b"GET /? HTTP/1.1\r\n\r\n", RequestHead { query: Some(""), ..get("/") }),
            (b"GET /a?b?c=/ HTTP/1.1\r\n\r\n", RequestHead { query: Some("b?c=/"), ..get("/a") }),
            (b"GET //a/|^[]{}~ HTTP/1.1\r\n\r\n", get("//a/|^[]{}~")),
            // Methods are case-sensitive tokens.
            (b"HEAD / HTTP/1.1\r\n\r\n", with(Method::Head, "HEAD", "/")),
            (b"POST /v1/sessions HTTP/1.1\r\n\r\n", with(Method::Post, "POST", "/v1/sessions")),
            (b"DELETE /x HTTP/1.1\r\n\r\n", with(Method::Delete, "DELETE", "/x")),
            (b"OPTIONS / HTTP/1.1\r\n\r\n", with(Method::Options, "OPTIONS", "/")),
            (b"OPTIONS * HTTP/1.1\r\n\r\n", with(Method::Options, "OPTIONS", "*")),
            (b"PATCH /v1/sessions/x HTTP/1.1\r\n\r\n", with(Method::Patch, "PATCH", "/v1/sessions/x")),
            (b"PUT / HTTP/1.1\r\n\r\n", with(Method::Other, "PUT", "/")),
            (b"get / HTTP/1.1\r\n\r\n", with(Method::Other, "get", "/")),
            (b"M-SEARCH / HTTP/1.1\r\n\r\n", with(Method::Other, "M-SEARCH", "/")),
            (b"!#$%&'*+-.^_`|~09azAZ / HTTP/1.1\r\n\r\n", with(Method::Other, "!#$%&'*+-.^_`|~09azAZ", "/")),
            // Content-Length: digits, OWS trimmed, repeats of the same number.
            (b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", RequestHead { content_length: 2, ..with(Method::Post, "POST", "/") }),
            (b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", get("/")),
            (b"GET / HTTP/1.1\r\ncontent-length:\t 0003 \t\r\n\r\nabc", RequestHead { content_length: 3, ..get("/") }),
            (b"GET / HTTP/1.1\r\nContent-Length: 1\r\nCONTENT-LENGTH: 01\r\n\r\nx", RequestHead { content_length: 1, ..get("/") }),
            (b"GET / HTTP/1.1\r\nContent-Length: 1, 1 ,1\r\n\r\nx", RequestHead { content_length: 1, ..get("/") }),
            // Connection (§2.3).
            (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", RequestHead { keep_alive: false, ..get("/") }),
            (b"GET / HTTP/1.1\r\nconnection: Upgrade, CLOSE\r\n\r\n", RequestHead { keep_alive: false, ..get("/") }),
            (b"GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", get("/")),
            (b"GET / HTTP/1.1\r\nConnection: closed\r\n\r\n", get("/")),
            (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", RequestHead { keep_alive: true, ..get10("/") }),
            (b"GET / HTTP/1.0\r\nConnection: Upgrade,Keep-Alive\r\n\r\n", RequestHead { keep_alive: true, ..get10("/") }),
            (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", get10("/")),
            (b"GET / HTTP/1.0\r\nConnection: close\r\n\r\n", get10("/")),
            (b"GET / HTTP/1.0\r\nKeep-Alive: timeout=5\r\n\r\n", get10("/")),
            // Expect (§2.2); an HTTP/1.0 client never gets a 100.
            (b"GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n", RequestHead { expect_continue: true, ..get("/") }),
            (b"GET / HTTP/1.1\r\nexpect: 100-Continue\r\n\r\n", RequestHead { expect_continue: true, ..get("/") }),
            (b"GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", get10("/")),
            (b"GET / HTTP/1.1\r\nExpect: 100-continue, x=y\r\n\r\n", RequestHead { expect_continue: true, expect_other: true, ..get("/") }),
            (b"GET / HTTP/1.1\r\nExpect: 200-ok\r\n\r\n", RequestHead { expect_other: true, ..get("/") }),
            (b"GET / HTTP/1.0\r\nExpect: 200-ok\r\n\r\n", RequestHead { expect_other: true, ..get10("/") }),
            (b"GET / HTTP/1.1\r\nExpect:\r\n\r\n", get("/")),
            // The fields the server reads: any name case, values trimmed of OWS.
            (b"GET / HTTP/1.1\r\nX-Dflockd-Session: 3f0c8d2a9b7e41c6a5d4e3f2b1a09876\r\n\r\n", RequestHead { session: Some(b"3f0c8d2a9b7e41c6a5d4e3f2b1a09876"), ..get("/") }),
            (b"GET / HTTP/1.1\r\nx-dflockd-session:\t abc \t\r\n\r\n", RequestHead { session: Some(b"abc"), ..get("/") }),
            (b"GET / HTTP/1.1\r\nX-Dflockd-Session:\r\n\r\n", RequestHead { session: Some(b""), ..get("/") }),
            (b"GET / HTTP/1.1\r\nAuthorization:  Bearer  s3cr3t \r\n\r\n", RequestHead { authorization: Some(b"Bearer  s3cr3t"), ..get("/") }),
            (b"GET / HTTP/1.1\r\nORIGIN: https://app.example\r\n\r\n", RequestHead { origin: Some(b"https://app.example"), ..get("/") }),
            (b"OPTIONS /v1/kv/a HTTP/1.1\r\nOrigin: http://x\r\nAccess-Control-Request-Method: POST\r\n\r\n", RequestHead { origin: Some(b"http://x"), access_control_request_method: Some(b"POST"), ..with(Method::Options, "OPTIONS", "/v1/kv/a") }),
            // Any other field is checked and ignored; obs-text and TAB are allowed in values.
            (b"GET / HTTP/1.1\r\nX-!#$%&'*+-.^_`|~: v\r\n\r\n", get("/")),
            (b"GET / HTTP/1.1\r\nUser-Agent: caf\xc3\xa9 \xff\t(x)\r\nEmpty:\r\nX::\r\n\r\n", get("/")),
            (b"GET / HTTP/1.1\r\nContent-Lengthy: x\r\nTransfer-Encodings: y\r\n\r\n", get("/")),
        ];
        for (buf, want) in cases {
            assert_stream(buf, &HeadLimits::default(), std::slice::from_ref(want));
        }
    }

    #[test]
    fn real_world_heads_at_every_prefix() {
        let curl = b"POST /v1/locks/deploy HTTP/1.1\r\n\
            Host: 127.0.0.1:6389\r\n\
            User-Agent: curl/8.5.0\r\n\
            Accept: */*\r\n\
            X-Dflockd-Session: 3f0c8d2a9b7e41c6a5d4e3f2b1a09876\r\n\
            Content-Type: application/json\r\n\
            Content-Length: 41\r\n\
            \r\n\
            {\"acquire_timeout_s\":10,\"lease_ttl_s\":60}";
        assert_stream(
            curl,
            &HeadLimits::default(),
            &[RequestHead {
                content_length: 41,
                session: Some(b"3f0c8d2a9b7e41c6a5d4e3f2b1a09876"),
                ..with(Method::Post, "POST", "/v1/locks/deploy")
            }],
        );
        let browser = b"GET /v1/watch?pattern=cfg.%3E HTTP/1.1\r\n\
            Host: localhost:6389\r\n\
            Connection: keep-alive\r\n\
            sec-ch-ua: \"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\"\r\n\
            Accept: text/event-stream\r\n\
            Cache-Control: no-cache\r\n\
            Origin: http://localhost:3000\r\n\
            Sec-Fetch-Mode: cors\r\n\
            Referer: http://localhost:3000/\r\n\
            Accept-Encoding: gzip, deflate, br, zstd\r\n\
            Accept-Language: en-GB,en;q=0.9\r\n\
            Authorization: Bearer abc.def\r\n\
            \r\n";
        assert_stream(
            browser,
            &HeadLimits::default(),
            &[RequestHead {
                query: Some("pattern=cfg.%3E"),
                origin: Some(b"http://localhost:3000"),
                authorization: Some(b"Bearer abc.def"),
                ..get("/v1/watch")
            }],
        );
        let expect =
            b"POST /v1/kv/big HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello";
        assert_stream(
            expect,
            &HeadLimits::default(),
            &[RequestHead {
                content_length: 5,
                expect_continue: true,
                ..with(Method::Post, "POST", "/v1/kv/big")
            }],
        );
    }

    #[test]
    #[rustfmt::skip]
    fn pipelined_heads_consume_exactly_their_bytes() {
        let post = |len| RequestHead { content_length: len, ..with(Method::Post, "POST", "/x") };
        let cases: &[(&[u8], &[RequestHead<'_>])] = &[
            (b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n", &[get("/a"), get("/b")]),
            (b"GET /a HTTP/1.1\n\nGET /b HTTP/1.0\r\n\r\nGET /c HTTP/1.1\n\n", &[get("/a"), get10("/b"), get("/c")]),
            (b"POST /x HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}GET /y HTTP/1.1\r\n\r\n", &[post(2), get("/y")]),
            // A body that looks like a head is still body.
            (b"POST /x HTTP/1.1\r\nContent-Length: 19\r\n\r\nGET /z HTTP/1.1\r\n\r\nPOST /x HTTP/1.1\ncontent-length:0\n\n", &[post(19), post(0)]),
            // Clients that send a stray CRLF after a body.
            (b"POST /x HTTP/1.1\r\nContent-Length: 1\r\n\r\n1\r\nGET /y HTTP/1.1\r\n\r\n", &[post(1), get("/y")]),
        ];
        for (buf, expected) in cases {
            assert_stream(buf, &HeadLimits::default(), expected);
        }
    }

    #[test]
    #[rustfmt::skip]
    fn refused_heads() {
        use HeadError::*;
        let cases: &[(&[u8], HeadError)] = &[
            // Version first (§2.1): whatever else is wrong, a non-1.x version is 505.
            (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", VersionNotSupported),
            (b"GET / HTTP/2.0\r\n\r\n", VersionNotSupported),
            (b"GET / HTTP/1.2\r\n\r\n", VersionNotSupported),
            (b"GET / HTTP/0.9\r\n\r\n", VersionNotSupported),
            (b"GET / HTTP/3.0\n", VersionNotSupported),
            (b"G(T http://x HTTP/2.0\r\n", VersionNotSupported),
            (b" HTTP/9.9\r\n", VersionNotSupported),
            // Malformed request lines.
            (b"GET / HTTP/1.1 \r\n\r\n", BadRequestLine),
            (b"GET / http/1.1\r\n\r\n", BadRequestLine),
            (b"GET / HTTP/1.10\r\n\r\n", BadRequestLine),
            (b"GET / HTTP/1\r\n\r\n", BadRequestLine),
            (b"GET / HTTP/1.1\r\r\n\r\n", BadRequestLine),
            (b"GET /\r\n\r\n", BadRequestLine),
            (b"GET\r\n\r\n", BadRequestLine),
            (b"HTTP/1.1\r\n\r\n", BadRequestLine),
            (b"/ HTTP/1.1\r\n\r\n", BadRequestLine),
            (b" / HTTP/1.1\r\n\r\n", BadRequestLine),
            (b"G(T / HTTP/1.1\r\n\r\n", BadRequestLine),
            (b"GE\0T / HTTP/1.1\r\n\r\n", BadRequestLine),
            (b"G\xc3\x89T / HTTP/1.1\r\n\r\n", BadRequestLine),
            (b"GET\t/ HTTP/1.1\r\n\r\n", BadRequestLine),
            // Targets not in origin form, or with bytes a target cannot hold.
            (b"GET  / HTTP/1.1\r\n\r\n", BadTarget),
            (b"GET / / HTTP/1.1\r\n\r\n", BadTarget),
            (b"GET  HTTP/1.1\r\n\r\n", BadTarget),
            (b"GET http://127.0.0.1/ HTTP/1.1\r\n\r\n", BadTarget),
            (b"CONNECT 127.0.0.1:6389 HTTP/1.1\r\n\r\n", BadTarget),
            (b"GET * HTTP/1.1\r\n\r\n", BadTarget),
            (b"options * HTTP/1.1\r\n\r\n", BadTarget),
            (b"OPTIONS *x HTTP/1.1\r\n\r\n", BadTarget),
            (b"GET a/ HTTP/1.1\r\n\r\n", BadTarget),
            (b"GET /a#top HTTP/1.1\r\n\r\n", BadTarget),
            (b"GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n", BadTarget),
            (b"GET /\x7f HTTP/1.1\r\n\r\n", BadTarget),
            (b"GET /a\tb HTTP/1.1\r\n\r\n", BadTarget),
            // Header lines.
            (b"GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n", ObsoleteFold),
            (b"GET / HTTP/1.1\r\nHost: a\r\n\tb\r\n\r\n", ObsoleteFold),
            (b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", ObsoleteFold),
            (b"GET / HTTP/1.1\r\nHost a\r\n\r\n", BadHeaderName),
            (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", BadHeaderName),
            (b"GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", BadHeaderName),
            (b"GET / HTTP/1.1\r\n: a\r\n\r\n", BadHeaderName),
            (b"GET / HTTP/1.1\r\nHo(st: a\r\n\r\n", BadHeaderName),
            (b"GET / HTTP/1.1\r\nH\xc3\xa9: a\r\n\r\n", BadHeaderName),
            (b"GET / HTTP/1.1\r\n\r\r\n\r\n", BadHeaderName),
            (b"GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", BadHeaderValue),
            (b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", BadHeaderValue),
            (b"GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", BadHeaderValue),
            (b"GET / HTTP/1.1\r\nX: a\x1b[0m\r\n\r\n", BadHeaderValue),
            (b"GET / HTTP/1.1\r\nX: a\r\r\n\r\n", BadHeaderValue),
            (b"GET / HTTP/1.1\r\nContent-Length: 1\r\r\n\r\n", BadHeaderValue),
            // Transfer-Encoding, whatever its value or position (§2.2).
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", TransferEncoding),
            (b"POST / HTTP/1.1\r\ntransfer-encoding: identity\r\n\r\n", TransferEncoding),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n", TransferEncoding),
            (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", TransferEncoding),
            (b"POST / HTTP/1.0\r\nTRANSFER-ENCODING: gzip, chunked\r\n\r\n", TransferEncoding),
            // Content-Length.
            (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", InvalidContentLength),
            (b"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n", InvalidContentLength),
            (b"POST / HTTP/1.1\r\nContent-Length: 1.0\r\n\r\n", InvalidContentLength),
            (b"POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n", InvalidContentLength),
            (b"POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n", InvalidContentLength),
            (b"POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", InvalidContentLength),
            (b"POST / HTTP/1.1\r\nContent-Length: 5,\r\n\r\n", InvalidContentLength),
            (b"POST / HTTP/1.1\r\nContent-Length: ,5\r\n\r\n", InvalidContentLength),
            (b"POST / HTTP/1.1\r\nContent-Length: \xd9\xa3\r\n\r\n", InvalidContentLength),
            (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: x\r\nContent-Length: x\r\n\r\n", TransferEncoding),
            (b"POST / HTTP/1.1\r\nContent-Length: x\r\nTransfer-Encoding: x\r\n\r\n", InvalidContentLength),
            (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", ConflictingContentLength),
            (b"POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n", ConflictingContentLength),
            (b"POST / HTTP/1.1\r\nContent-Length: 0\r\ncontent-length: 1\r\n\r\n", ConflictingContentLength),
            (b"POST / HTTP/1.1\r\nContent-Length: 1048577\r\n\r\n", BodyTooLarge),
            (b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999999\r\n\r\n", BodyTooLarge),
            (b"POST / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n", BodyTooLarge),
            // Single-valued fields given twice.
            (b"GET / HTTP/1.1\r\nX-Dflockd-Session: a\r\nx-dflockd-session: a\r\n\r\n", DuplicateHeader),
            (b"GET / HTTP/1.1\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\n\r\n", DuplicateHeader),
            (b"GET / HTTP/1.1\r\nOrigin: http://a\r\nOrigin: http://a\r\n\r\n", DuplicateHeader),
            (b"OPTIONS / HTTP/1.1\r\nAccess-Control-Request-Method: GET\r\nAccess-Control-Request-Method: GET\r\n\r\n", DuplicateHeader),
        ];
        for (buf, error) in cases {
            assert_error(buf, &HeadLimits::default(), *error);
        }
    }

    /// A 1 MiB body is exactly at the limit; one byte more is refused.
    #[test]
    fn content_length_at_its_limit() {
        let at = b"POST / HTTP/1.1\r\nContent-Length: 1048576\r\n\r\n";
        match parse_head(at, &HeadLimits::default()) {
            HeadParse::Complete { head, consumed } => {
                assert_eq!((head.content_length, consumed), (1_048_576, at.len()));
            }
            other => panic!("{other:?}"),
        }
        let limits = small();
        let at = b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n";
        assert!(
            matches!(parse_head(at, &limits), HeadParse::Complete { head, .. } if head.content_length == 100)
        );
        assert_error(
            b"POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n",
            &limits,
            HeadError::BodyTooLarge,
        );
        assert_error(
            b"POST / HTTP/1.1\r\nContent-Length: 0101\r\n",
            &limits,
            HeadError::BodyTooLarge,
        );
    }

    #[test]
    fn every_error_maps_to_its_status_and_code() {
        use HeadError::*;
        let table = [
            (VersionNotSupported, 505, "http_version_not_supported"),
            (HeadTooLarge, 431, "headers_too_large"),
            (TooManyHeaders, 431, "headers_too_large"),
            (TransferEncoding, 501, "not_implemented"),
            (InvalidContentLength, 400, "bad_request"),
            (ConflictingContentLength, 400, "bad_request"),
            (BodyTooLarge, 413, "payload_too_large"),
            (BadRequestLine, 400, "bad_request"),
            (BadTarget, 400, "bad_request"),
            (ObsoleteFold, 400, "bad_request"),
            (BadHeaderName, 400, "bad_request"),
            (BadHeaderValue, 400, "bad_request"),
            (DuplicateHeader, 400, "bad_request"),
        ];
        for (error, status, code) in table {
            assert_eq!((error.status(), error.code()), (status, code), "{error:?}");
            assert!(!error.to_string().is_empty());
        }
    }

    /// A head padded with one `X-Pad` field to exactly `len` bytes.
    fn padded_head(len: usize) -> Vec<u8> {
        let mut buf = b"GET / HTTP/1.1\r\nX-Pad: ".to_vec();
        let fill = len - buf.len() - 4;
        buf.resize(buf.len() + fill, b'p');
        buf.extend_from_slice(b"\r\n\r\n");
        assert_eq!(buf.len(), len);
        buf
    }

    #[test]
    fn head_size_limit_is_checked_while_incomplete() {
        for limits in [small(), HeadLimits::default()] {
            let max = limits.max_head_bytes;
            // Exactly at the limit: accepted, also with a body or a next request after it.
            let mut at = padded_head(max);
            at.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
            assert_eq!(
                parse_head(&at, &limits),
                HeadParse::Complete {
                    head: get("/"),
                    consumed: max
                }
            );
            assert_eq!(parse_head(&at[..max - 1], &limits), HeadParse::Incomplete);
            // One byte over: refused as soon as `max` bytes are buffered.
            let over = padded_head(max + 1);
            assert_eq!(parse_head(&over[..max - 1], &limits), HeadParse::Incomplete);
            for k in max..=over.len() {
                assert_eq!(
                    parse_head(&over[..k], &limits),
                    HeadParse::Error(HeadError::HeadTooLarge)
                );
            }
            // No LF at all, a request line that never ends, empty lines forever.
            for junk in [&b"a"[..], b"GET /", b"\r\n", b"\n"] {
                let buf = junk.repeat(max + 1);
                assert_eq!(
                    parse_head(&buf[..max - 1], &limits),
                    HeadParse::Incomplete,
                    "{junk:?}"
                );
                assert_eq!(
                    parse_head(&buf, &limits),
                    HeadParse::Error(HeadError::HeadTooLarge),
                    "{junk:?}"
                );
            }
        }
        // The brief's example: 16385 bytes with no blank line are an error.
        let buf = vec![b'x'; 16385];
        assert_eq!(
            parse_head(&buf, &HeadLimits::default()),
            HeadParse::Error(HeadError::HeadTooLarge)
        );
        let small = small();
        assert_error(
            &padded_head(small.max_head_bytes + 1),
            &small,
            HeadError::HeadTooLarge,
        );
    }

    #[test]
    fn header_count_limit_is_checked_while_incomplete() {
        for limits in [small(), HeadLimits::default()] {
            let mut buf = b"GET / HTTP/1.1\r\n".to_vec();
            for i in 0..limits.max_headers {
                buf.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
            }
            let at = [&buf[..], b"\r\n"].concat();
            assert_eq!(
                parse_head(&at, &limits),
                HeadParse::Complete {
                    head: get("/"),
                    consumed: at.len()
                }
            );
            // The extra field is refused when its line ends, before the blank line.
            buf.extend_from_slice(b"X-Extra: 1\r\n");
            assert_eq!(
                parse_head(&buf[..buf.len() - 1], &limits),
                HeadParse::Incomplete
            );
            assert_eq!(
                parse_head(&buf, &limits),
                HeadParse::Error(HeadError::TooManyHeaders)
            );
        }
        let none = HeadLimits {
            max_headers: 0,
            ..HeadLimits::default()
        };
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\n\r\n", &none),
            HeadParse::Complete {
                head: get("/"),
                consumed: 18
            }
        );
        assert_error(
            b"GET / HTTP/1.1\r\nHost: a\r\n",
            &none,
            HeadError::TooManyHeaders,
        );
    }

    // ---- deterministic fuzzing ----------------------------------------------

    /// What a generated valid head must parse to, with owned values.
    #[derive(Debug, Default)]
    struct Model {
        method: String,
        path: String,
        query: Option<String>,
        minor_version: u8,
        content_length: Option<usize>,
        close: bool,
        keep_alive_token: bool,
        expect_continue: bool,
        expect_other: bool,
        session: Option<Vec<u8>>,
        authorization: Option<Vec<u8>>,
        origin: Option<Vec<u8>>,
        acrm: Option<Vec<u8>>,
    }

    impl Model {
        fn check(&self, head: &RequestHead<'_>, buf: &[u8]) {
            let ctx = || buf.escape_ascii().to_string();
            assert_eq!(head.method_raw, self.method, "{}", ctx());
            assert_eq!(
                head.method,
                Method::from_token(self.method.as_bytes()),
                "{}",
                ctx()
            );
            assert_eq!(head.path, self.path, "{}", ctx());
            assert_eq!(head.query, self.query.as_deref(), "{}", ctx());
            assert_eq!(head.minor_version, self.minor_version, "{}", ctx());
            assert_eq!(
                head.content_length,
                self.content_length.unwrap_or(0),
                "{}",
                ctx()
            );
            let http11 = self.minor_version == 1;
            assert_eq!(
                head.keep_alive,
                !self.close && (http11 || self.keep_alive_token),
                "{}",
                ctx()
            );
            assert_eq!(
                head.expect_continue,
                self.expect_continue && http11,
                "{}",
                ctx()
            );
            assert_eq!(head.expect_other, self.expect_other, "{}", ctx());
            assert_eq!(head.session, self.session.as_deref(), "{}", ctx());
            assert_eq!(
                head.authorization,
                self.authorization.as_deref(),
                "{}",
                ctx()
            );
            assert_eq!(head.origin, self.origin.as_deref(), "{}", ctx());
            assert_eq!(
                head.access_control_request_method,
                self.acrm.as_deref(),
                "{}",
                ctx()
            );
        }
    }

    const KNOWN: [&str; 8] = [
        "content-length",
        "transfer-encoding",
        "connection",
        "expect",
        "x-dflockd-session",
        "authorization",
        "origin",
        "access-control-request-method",
    ];

    fn pick<'a, T>(rng: &mut XorShift, items: &'a [T]) -> &'a T {
        &items[rng.below(items.len())]
    }

    /// `n` bytes of a byte class, drawn from the whole 0..=255 range.
    fn class_bytes(rng: &mut XorShift, class: &[bool; 256], n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let b = rng.below(256) as u8;
            if class[usize::from(b)] {
                out.push(b);
            }
        }
        out
    }

    fn random_case(rng: &mut XorShift, name: &str) -> Vec<u8> {
        name.bytes()
            .map(|b| {
                if rng.below(2) == 0 {
                    b.to_ascii_uppercase()
                } else {
                    b
                }
            })
            .collect()
    }

    /// Mirrors RFC 9110 OWS trimming independently of `trim_ows`.
    fn trimmed(value: &[u8]) -> Vec<u8> {
        let mut v = value.to_vec();
        while matches!(v.first(), Some(b' ' | b'\t')) {
            v.remove(0);
        }
        while matches!(v.last(), Some(b' ' | b'\t')) {
            v.pop();
        }
        v
    }

    /// Builds a random valid head and what it must parse to.
    fn generate(rng: &mut XorShift, limits: &HeadLimits) -> (Vec<u8>, Model) {
        let mut m = Model::default();
        let mut buf = Vec::new();
        let eol = |rng: &mut XorShift| -> &'static [u8] {
            if rng.below(3) == 0 { b"\n" } else { b"\r\n" }
        };
        for _ in 0..rng.below(3).saturating_sub(1) {
            buf.extend_from_slice(eol(rng));
        }
        m.method = match rng.below(9) {
            0 => "GET".into(),
            1 => "HEAD".into(),
            2 => "POST".into(),
            3 => "DELETE".into(),
            4 => "OPTIONS".into(),
            5 => "PATCH".into(),
            6 => "PUT".into(),
            _ => {
                let n = 1 + rng.below(10);
                String::from_utf8(class_bytes(rng, &TOKEN, n)).expect("tokens are ASCII")
            }
        };
        if m.method == "OPTIONS" && rng.below(4) == 0 {
            m.path = "*".into();
        } else {
            let n = rng.below(40);
            let mut target = b"/".to_vec();
            target.extend(class_bytes(rng, &TARGET, n));
            let target = String::from_utf8(target).expect("targets are ASCII");
            match target.split_once('?') {
                Some((path, query)) => {
                    m.path = path.into();
                    m.query = Some(query.into());
                }
                None => m.path = target,
            }
        }
        m.minor_version = rng.below(2) as u8;
        buf.extend_from_slice(m.method.as_bytes());
        buf.push(b' ');
        buf.extend_from_slice(m.path.as_bytes());
        if let Some(query) = &m.query {
            buf.push(b'?');
            buf.extend_from_slice(query.as_bytes());
        }
        buf.extend_from_slice(if m.minor_version == 1 {
            b" HTTP/1.1"
        } else {
            b" HTTP/1.0"
        });
        buf.extend_from_slice(eol(rng));
        let fields = rng.below(limits.max_headers.min(14) + 1);
        for _ in 0..fields {
            const OWS: [&[u8]; 4] = [b"", b" ", b"\t", b" \t "];
            let ows = |rng: &mut XorShift| OWS[rng.below(OWS.len())];
            let (name, value): (Vec<u8>, Vec<u8>) = match rng.below(8) {
                0 => {
                    let n = m
                        .content_length
                        .unwrap_or_else(|| rng.below(limits.max_body_bytes + 1));
                    m.content_length = Some(n);
                    let zeros = "0".repeat(rng.below(3));
                    let value = if rng.below(4) == 0 {
                        format!("{zeros}{n}, {n}")
                    } else {
                        format!("{zeros}{n}")
                    };
                    (random_case(rng, "Content-Length"), value.into_bytes())
                }
                1 => {
                    let mut members = Vec::new();
                    for _ in 0..1 + rng.below(3) {
                        let member = *pick(
                            rng,
                            &[
                                "close",
                                "keep-alive",
                                "Upgrade",
                                "KEEP-ALIVE",
                                "Close",
                                "te",
                                "",
                            ],
                        );
                        m.close |= member.eq_ignore_ascii_case("close");
                        m.keep_alive_token |= member.eq_ignore_ascii_case("keep-alive");
                        members.push(member);
                    }
                    (
                        random_case(rng, "Connection"),
                        members.join(*pick(rng, &[",", ", ", " ,\t"])).into_bytes(),
                    )
                }
                2 => {
                    let member = *pick(rng, &["100-continue", "100-CONTINUE", "x=1", ""]);
                    match member {
                        "" => {}
                        "x=1" => m.expect_other = true,
                        _ => m.expect_continue = true,
                    }
                    (random_case(rng, "Expect"), member.as_bytes().to_vec())
                }
                kind @ 3..=6 => {
                    let names = [
                        "X-Dflockd-Session",
                        "Authorization",
                        "Origin",
                        "Access-Control-Request-Method",
                    ];
                    let name = names[kind - 3];
                    let slot = match kind {
                        3 => &mut m.session,
                        4 => &mut m.authorization,
                        5 => &mut m.origin,
                        _ => &mut m.acrm,
                    };
                    if slot.is_some() {
                        continue;
                    }
                    let n = rng.below(24);
                    let value = class_bytes(rng, &FIELD_VALUE, n);
                    *slot = Some(trimmed(&value));
                    (random_case(rng, name), value)
                }
                _ => {
                    let n = 1 + rng.below(16);
                    let name = class_bytes(rng, &TOKEN, n);
                    if KNOWN
                        .iter()
                        .any(|k| name.eq_ignore_ascii_case(k.as_bytes()))
                    {
                        continue;
                    }
                    let n = rng.below(32);
                    (name, class_bytes(rng, &FIELD_VALUE, n))
                }
            };
            buf.extend_from_slice(&name);
            buf.push(b':');
            buf.extend_from_slice(ows(rng));
            buf.extend_from_slice(&value);
            buf.extend_from_slice(ows(rng));
            buf.extend_from_slice(eol(rng));
        }
        buf.extend_from_slice(eol(rng));
        (buf, m)
    }

    /// Fragments that make mutations structure-aware: line ends, separators and
    /// the fields the parser treats specially.
    const FRAGMENTS: [&[u8]; 14] = [
        b"\r\n",
        b"\n",
        b"\r\n\r\n",
        b" ",
        b":",
        b"\t",
        b"?",
        b"HTTP/1.1",
        b"HTTP/2.0",
        b"Content-Length: 12\r\n",
        b"Content-Length: 99999999\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"Connection: close\r\n",
        b"Expect: 100-continue\r\n",
    ];

    fn mutate(rng: &mut XorShift, buf: &mut Vec<u8>) {
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(buf.len() + 1);
            match rng.below(7) {
                0 if at < buf.len() => buf[at] ^= 1 << rng.below(8),
                1 if at < buf.len() => buf[at] = rng.below(256) as u8,
                2 => buf.insert(at, rng.below(256) as u8),
                3 if at < buf.len() => {
                    buf.remove(at);
                }
                4 if at < buf.len() => {
                    let end = (at + 1 + rng.below(24)).min(buf.len());
                    let copy = buf[at..end].to_vec();
                    let to = rng.below(buf.len() + 1);
                    buf.splice(to..to, copy);
                }
                5 => {
                    let fragment = *pick(rng, &FRAGMENTS);
                    buf.splice(at..at, fragment.iter().copied());
                }
                _ => buf.truncate(at),
            }
        }
    }

    /// Random bytes over a small HTTP-ish alphabet, so that lines, colons and
    /// versions actually occur.
    fn random_bytes(rng: &mut XorShift) -> Vec<u8> {
        const ALPHABET: &[u8] = b"GETPOSH /:?\r\n\t0123456789.-HTTP/1.1aZ%*\x00\x7f\xff,";
        let n = rng.below(160);
        (0..n)
            .map(|_| {
                if rng.below(8) == 0 {
                    rng.below(256) as u8
                } else {
                    *pick(rng, ALPHABET)
                }
            })
            .collect()
    }

    /// True if `part` lies within `buf[..consumed]`, compared by address: the
    /// head must borrow from the bytes it consumed, never copy or overrun.
    fn inside(buf: &[u8], consumed: usize, part: &[u8]) -> bool {
        let base = buf.as_ptr() as usize;
        let start = part.as_ptr() as usize;
        start >= base && start + part.len() <= base + consumed
    }

    /// Checks the invariants every answer must keep, valid input or not, and
    /// returns the answer for `buf`.
    fn check_invariants<'b>(
        buf: &'b [u8],
        limits: &HeadLimits,
        rng: &mut XorShift,
    ) -> HeadParse<'b> {
        let full = parse_head(buf, limits);
        if let HeadParse::Complete { head, consumed } = full {
            assert!(consumed >= 1 && consumed <= buf.len() && consumed <= limits.max_head_bytes);
            assert!(
                head.path.starts_with('/') || (head.path == "*" && head.method == Method::Options)
            );
            assert!(head.content_length <= limits.max_body_bytes);
            assert!(head.minor_version <= 1);
            assert!(inside(buf, consumed, head.method_raw.as_bytes()));
            assert!(inside(buf, consumed, head.path.as_bytes()));
            let values = [
                head.session,
                head.authorization,
                head.origin,
                head.access_control_request_method,
            ];
            for value in head
                .query
                .map(str::as_bytes)
                .into_iter()
                .chain(values.into_iter().flatten())
            {
                assert!(inside(buf, consumed, value));
            }
            for value in values.into_iter().flatten() {
                assert!(value.iter().all(|&b| FIELD_VALUE[usize::from(b)]));
                let ows = |b: Option<&u8>| matches!(b, Some(b' ' | b'\t'));
                assert!(!ows(value.first()) && !ows(value.last()));
            }
            // The head is minimal: one byte less and it is still arriving.
            assert_eq!(
                parse_head(&buf[..consumed - 1], limits),
                HeadParse::Incomplete
            );
        }
        // Segmentation does not matter: a prefix either waits or agrees.
        for _ in 0..2 {
            let k = rng.below(buf.len() + 1);
            let prefix = parse_head(&buf[..k], limits);
            assert!(
                prefix == HeadParse::Incomplete || prefix == full,
                "{:?}: prefix {k} gave {prefix:?}, whole gave {full:?}",
                buf.escape_ascii()
            );
        }
        full
    }

    /// 300,000 heads from a fixed seed: generated valid heads (must parse to
    /// their model, at any prefix), mutations of them and random bytes (must
    /// keep the invariants above).
    #[test]
    fn fuzz_heads_deterministically() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let (mut refused, mut accepted) = (0, 0);
        for round in 0..300_000 {
            let limits = if round % 4 == 0 {
                small()
            } else {
                HeadLimits::default()
            };
            let mut buf = match round % 6 {
                0 => random_bytes(&mut rng),
                _ => {
                    let (mut buf, model) = generate(&mut rng, &limits);
                    let head_len = buf.len();
                    // Whatever follows a head (its body, the next request) is not its business.
                    if rng.below(2) == 0 {
                        let junk = random_bytes(&mut rng);
                        buf.extend_from_slice(&junk);
                    }
                    if head_len <= limits.max_head_bytes {
                        match parse_head(&buf, &limits) {
                            HeadParse::Complete { head, consumed } => {
                                assert_eq!(consumed, head_len, "{:?}", buf.escape_ascii());
                                model.check(&head, &buf);
                            }
                            other => panic!("{:?}: {other:?}", buf.escape_ascii()),
                        }
                        let k = rng.below(head_len);
                        assert_eq!(parse_head(&buf[..k], &limits), HeadParse::Incomplete);
                    } else {
                        assert_eq!(
                            parse_head(&buf, &limits),
                            HeadParse::Error(HeadError::HeadTooLarge)
                        );
                    }
                    if round % 6 != 1 {
                        mutate(&mut rng, &mut buf);
                    }
                    buf
                }
            };
            if rng.below(50) == 0 {
                buf.reverse();
            }
            match check_invariants(&buf, &limits, &mut rng) {
                HeadParse::Complete { .. } => accepted += 1,
                HeadParse::Error(_) => refused += 1,
                HeadParse::Incomplete => {}
            }
        }
        // The inputs must reach both the error paths and the happy one.
        assert!(refused > 50_000, "only {refused} refused inputs");
        assert!(accepted > 50_000, "only {accepted} accepted inputs");
    }
}
