//! Server-Sent Events framing (http.md §7): the stream's response head, the
//! opening `:ok` comment, the `:ping` keep-alive comment and `event:`/`data:`
//! frames, appended to a `Vec<u8>`. Pure: when to ping, how much output a slow
//! consumer may pile up, and closing are the connection's business.
//!
//! Invariants (tested below):
//! * The head is §7's exactly: `200`, `Date`, `Server`, `Content-Type:
//!   text/event-stream`, `Cache-Control: no-cache`, `X-Accel-Buffering: no`,
//!   `Connection: close`, and neither `Content-Length` nor `Transfer-Encoding`:
//!   the stream ends with the connection. CORS headers are added only when the
//!   caller passes them (§3.3).
//! * Every frame is whole and ends with a blank line, so frames appended one
//!   after another never run together, whatever bytes a caller passes: line
//!   breaks inside `data` become further `data:` lines, which is how SSE
//!   carries multi-line data (the receiver joins them with LF).
//! * Lines end with a bare LF, as §7 shows.

use super::response::{ConnectionHeader, ContentType, Cors, ResponseHead};

/// The comment that opens every stream's body (§7).
pub const OPEN_COMMENT: &[u8] = b":ok\n\n";

/// The keep-alive comment, written when nothing else was written for
/// `--http-sse-ping-interval` seconds (§7).
pub const PING_COMMENT: &[u8] = b":ping\n\n";

/// Appends the stream's response head (§7) for a request, with `date` an
/// IMF-fixdate; `cors` as for any response to a request with an `Origin`.
pub fn write_stream_head(out: &mut Vec<u8>, date: &str, cors: Cors<'_>) {
    let head = ResponseHead {
        content_type: Some(ContentType::EventStream),
        cache_control: "no-cache",
        cors,
        connection: ConnectionHeader::Close,
        ..ResponseHead::new(200)
    };
    head.write(out, date, b"");
}

/// Appends the opening comment `:ok` and its blank line.
pub fn write_open(out: &mut Vec<u8>) {
    out.extend_from_slice(OPEN_COMMENT);
}

/// Appends the keep-alive comment `:ping` and its blank line.
pub fn write_ping(out: &mut Vec<u8>) {
    out.extend_from_slice(PING_COMMENT);
}

/// Appends `event: <name>\ndata: <json_data>\n\n`.
///
/// `name` is one of the server's event names (`sig`, `watch`, `leader`, …)
/// and must not hold a line break. `json_data` is compact JSON from serde_json,
/// so on one line (§7); debug builds assert that. Should it ever hold a CR or
/// LF anyway, each line goes out as its own `data:` line rather than breaking
/// the framing: a receiver still sees one event, with LF between the lines.
pub fn write_event(out: &mut Vec<u8>, name: &str, json_data: &str) {
    debug_assert!(
        !name.contains(['\r', '\n']),
        "SSE event name {name:?} holds a line break"
    );
    debug_assert!(
        !json_data.contains(['\r', '\n']),
        "SSE data must be compact one-line JSON: {json_data:?}"
    );
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.push(b'\n');
    // One pass, no allocation. An event stream ends a line at CRLF, CR or LF
    // (the HTML standard's event-stream parsing), so each starts a `data:` line.
    let mut rest = json_data.as_bytes();
    loop {
        let end = rest
            .iter()
            .position(|&b| b == b'\r' || b == b'\n')
            .unwrap_or(rest.len());
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(&rest[..end]);
        out.push(b'\n');
        let line_break = match &rest[end..] {
            [] => break,
            [b'\r', b'\n', ..] => 2,
            _ => 1,
        };
        rest = &rest[end + line_break..];
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::response::{DateCache, SERVER};

    /// The date of the spec's examples: Mon, 23 Nov 2026 08:00:00 GMT.
    const SPEC_SECS: u64 = 1_795_420_800;

    #[test]
    fn stream_head_is_exactly_section_7() {
        let want = "HTTP/1.1 200 OK\r\n\
                    Date: Mon, 23 Nov 2026 08:00:00 GMT\r\n\
                    Server: dflockd/0.1.0\r\n\
                    Content-Type: text/event-stream\r\n\
                    Cache-Control: no-cache\r\n\
                    X-Accel-Buffering: no\r\n\
                    Connection: close\r\n\
                    \r\n"
            .replace("dflockd/0.1.0", SERVER);
        let mut out = Vec::new();
        write_stream_head(&mut out, DateCache::new().get(SPEC_SECS), Cors::Off);
        assert_eq!(String::from_utf8_lossy(&out), want);
    }

    #[test]
    fn stream_head_with_cors() {
        let mut out = Vec::new();
        let cors = Cors::Origin(b"http://localhost:3000");
        write_stream_head(&mut out, DateCache::new().get(SPEC_SECS), cors);
        let text = String::from_utf8_lossy(&out);
        assert!(text.ends_with(
            "X-Accel-Buffering: no\r\n\
             Access-Control-Allow-Origin: http://localhost:3000\r\n\
             Vary: Origin\r\n\
             Connection: close\r\n\r\n"
        ));
        assert!(!text.contains("Content-Length") && !text.contains("Transfer-Encoding"));
    }

    /// The example stream of `GET /v1/signals?pattern=orders.*` in §7.
    #[test]
    fn body_is_exactly_the_section_7_example() {
        let mut out = Vec::new();
        write_open(&mut out);
        write_event(
            &mut out,
            "sig",
            r#"{"channel":"orders.created","payload":"{\"id\":7}"}"#,
        );
        write_ping(&mut out);
        let want = ":ok\n\
                    \n\
                    event: sig\n\
                    data: {\"channel\":\"orders.created\",\"payload\":\"{\\\"id\\\":7}\"}\n\
                    \n\
                    :ping\n\
                    \n";
        assert_eq!(String::from_utf8_lossy(&out), want);
    }

    #[test]
    fn events_from_serde_json_stay_on_one_line() {
        // serde_json escapes line breaks inside strings, so compact JSON never
        // holds a raw one.
        let data = serde_json::json!({"event": "elected", "key": "a\nb\r\u{2028}"}).to_string();
        let mut out = Vec::new();
        write_event(&mut out, "leader", &data);
        assert_eq!(out, format!("event: leader\ndata: {data}\n\n").into_bytes());
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 3);
    }

    #[test]
    fn empty_data_is_still_a_whole_frame() {
        let mut out = Vec::new();
        write_event(&mut out, "watch", "");
        assert_eq!(out, b"event: watch\ndata: \n\n");
    }

    /// Release builds keep the framing even for data with line breaks.
    #[cfg(not(debug_assertions))]
    #[test]
    fn line_breaks_in_data_become_data_lines() {
        let mut out = Vec::new();
        write_event(&mut out, "sig", "{\n\"a\":1,\r\n\"b\":2\r}\n");
        assert_eq!(
            out,
            b"event: sig\ndata: {\ndata: \"a\":1,\ndata: \"b\":2\ndata: }\ndata: \n\n"
        );
    }

    /// Debug builds catch a caller passing pretty-printed JSON.
    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "compact one-line JSON")]
    fn line_breaks_in_data_are_a_caller_bug() {
        write_event(&mut Vec::new(), "sig", "{\n}");
    }
}
