//! `dflockctl top`: the most contended keys and the server's totals, like
//! `top(1)`, from the `stats` document (its `contention` array, protocol.md
//! §8.15, and `server.totals`).
//!
//! * On a terminal: redraw every `--interval` seconds (home, clear, plain
//!   ANSI: bold and reverse video only) until interrupted or `--iterations`
//!   frames. No alternate screen and no hidden cursor, so Ctrl-C leaves a
//!   usable terminal without any cleanup.
//! * Not a terminal (a pipe, a file): one snapshot in plain text, no escapes.
//! * `--json`: one JSON object per server and frame, one line each.
//!
//! Rates (grants/s, expiries/s) are the difference of two `stats` totals
//! over the time between them; the first frame has nothing to compare
//! with, so it shows the average since the server started
//! (`rate_window_s` says which window a figure covers).
//!
//! Everything that formats is a pure function of documents, so the unit
//! tests need no server.

use serde_json::{Value, json};
use std::time::Instant;

/// The rows shown when the terminal's height is unknown.
const DEFAULT_ROWS: usize = 20;
/// Longest key shown before it is cut with `…`.
const KEY_WIDTH: usize = 40;

/// One `stats` sample of one server.
#[derive(Debug, Clone)]
pub struct Sample {
    pub doc: Value,
    pub at: Instant,
}

fn total(doc: &Value, name: &str) -> u64 {
    doc.pointer(&format!("/server/totals/{name}"))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

fn num(v: &Value, name: &str) -> f64 {
    v.get(name).and_then(Value::as_f64).unwrap_or(0.0)
}

/// The frame of one server as data: what `--json` prints and the terminal
/// view renders. `prev` is the sample of the previous frame, if any.
pub fn frame(server: &str, cur: &Sample, prev: Option<&Sample>) -> Value {
    let doc = &cur.doc;
    let uptime = doc
        .pointer("/server/uptime_s")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let (window, grants, expiries) = match prev {
        Some(p) if cur.at > p.at => (
            cur.at.duration_since(p.at).as_secs_f64(),
            total(doc, "grants").saturating_sub(total(&p.doc, "grants")),
            total(doc, "lease_expirations").saturating_sub(total(&p.doc, "lease_expirations")),
        ),
        _ => (
            uptime,
            total(doc, "grants"),
            total(doc, "lease_expirations"),
        ),
    };
    let rate = |n: u64| {
        if window > 0.0 {
            (n as f64 / window * 10.0).round() / 10.0
        } else {
            0.0
        }
    };
    let keys: Vec<Value> = doc
        .get("contention")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(|k| {
            json!({
                "key": k.get("key").and_then(Value::as_str).unwrap_or(""),
                "type": k.get("type").and_then(Value::as_str).unwrap_or(""),
                "wait_p99_s": num(k, "wait_p99_s"),
                "wait_p50_s": num(k, "wait_p50_s"),
                "waiters": k.get("waiters").and_then(Value::as_u64).unwrap_or(0),
                "holder_age_s": num(k, "holder_age_s"),
                "waits": k.get("waits").and_then(Value::as_u64).unwrap_or(0),
                "grants": k.get("grants").and_then(Value::as_u64).unwrap_or(0),
                "wait_total_s": num(k, "wait_total_s"),
            })
        })
        .collect();
    json!({
        "server": server,
        "uptime_s": uptime,
        "connections": doc.get("connections").and_then(Value::as_u64).unwrap_or(0),
        "grants_per_s": rate(grants),
        "expiries_per_s": rate(expiries),
        "rate_window_s": (window * 1000.0).round() / 1000.0,
        "keys": keys,
    })
}

/// Escapes of the terminal view; empty strings when plain text is wanted.
pub struct Style {
    pub clear: &'static str,
    pub bold: &'static str,
    pub reverse: &'static str,
    pub reset: &'static str,
}

pub const ANSI: Style = Style {
    clear: "\x1b[H\x1b[2J",
    bold: "\x1b[1m",
    reverse: "\x1b[7m",
    reset: "\x1b[0m",
};

pub const PLAIN: Style = Style {
    clear: "",
    bold: "",
    reverse: "",
    reset: "",
};

fn cut(key: &str) -> String {
    if key.chars().count() <= KEY_WIDTH {
        return key.to_string();
    }
    let mut s: String = key.chars().take(KEY_WIDTH - 1).collect();
    s.push('…');
    s
}

/// Seconds for a human: ms below 1 s, one decimal below a minute, then m/h.
fn dur(s: f64) -> String {
    if s <= 0.0 {
        "-".into()
    } else if s < 1.0 {
        format!("{:.0}ms", s * 1000.0)
    } else if s < 60.0 {
        format!("{s:.1}s")
    } else if s < 3600.0 {
        format!("{:.0}m{:02.0}s", (s / 60.0).floor(), s % 60.0)
    } else {
        format!("{:.0}h{:02.0}m", (s / 3600.0).floor(), (s % 3600.0) / 60.0)
    }
}

/// One server's section of the view: a summary line and at most `rows`
/// keys. Lines end with `\n`.
pub fn render(f: &Value, style: &Style, rows: usize) -> String {
    let mut out = String::new();
    let window = num(f, "rate_window_s");
    let over = if num(f, "uptime_s") > 0.0 && (window - num(f, "uptime_s")).abs() < 1e-3 {
        " (average since start)"
    } else {
        ""
    };
    out.push_str(&format!(
        "{}dflockd {}{}  up {}  connections {}  grants/s {}  expiries/s {}{}\n",
        style.bold,
        f["server"].as_str().unwrap_or(""),
        style.reset,
        dur(num(f, "uptime_s")),
        f["connections"],
        f["grants_per_s"],
        f["expiries_per_s"],
        over,
    ));
    let keys = f["keys"].as_array().map_or(&[][..], Vec::as_slice);
    if keys.is_empty() {
        out.push_str("no contended keys (no request has waited yet)\n");
        return out;
    }
    let header = format!(
        "{:<w$} {:<9} {:>9} {:>9} {:>7} {:>10} {:>8} {:>10}",
        "KEY",
        "TYPE",
        "WAIT p99",
        "WAIT p50",
        "WAITERS",
        "HOLDER AGE",
        "WAITS",
        "WAIT TOTAL",
        w = KEY_WIDTH,
    );
    out.push_str(&format!("{}{header}{}\n", style.reverse, style.reset));
    for k in keys.iter().take(rows) {
        out.push_str(&format!(
            "{:<w$} {:<9} {:>9} {:>9} {:>7} {:>10} {:>8} {:>10}\n",
            cut(k["key"].as_str().unwrap_or("")),
            k["type"].as_str().unwrap_or(""),
            dur(num(k, "wait_p99_s")),
            dur(num(k, "wait_p50_s")),
            // As integers: `Value`'s Display ignores width and alignment.
            k["waiters"].as_u64().unwrap_or(0),
            dur(num(k, "holder_age_s")),
            k["waits"].as_u64().unwrap_or(0),
            dur(num(k, "wait_total_s")),
            w = KEY_WIDTH,
        ));
    }
    out
}

/// Key rows that fit a terminal of `height` lines showing `servers`
/// sections (two lines of each are the summary and the header, one the
/// gap between sections).
pub fn rows_for(height: Option<usize>, servers: usize) -> usize {
    match height {
        Some(h) if servers > 0 => (h.saturating_sub(1) / servers).saturating_sub(3).max(1),
        _ => DEFAULT_ROWS,
    }
}

/// The terminal's height in lines, if stdout is a terminal that says.
pub fn terminal_height() -> Option<usize> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` through the pointer, which
    // points at a live, properly aligned `winsize` owned by this frame; on
    // failure (not a terminal) it writes nothing and returns -1.
    let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_row > 0).then_some(ws.ws_row as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn doc(grants: u64, expiries: u64) -> Value {
        json!({"connections": 3,
               "contention": [{"key": "deploy", "type": "lock", "grants": 9, "waits": 4,
                               "wait_p50_s": 0.256, "wait_p99_s": 2.048, "hold_p99_s": 1.0,
                               "wait_total_s": 5.5, "waiters": 2, "holder_age_s": 75.0}],
               "server": {"uptime_s": 10.0,
                          "totals": {"grants": grants, "lease_expirations": expiries}}})
    }

    #[test]
    fn first_frame_averages_since_start_then_rates_are_differences() {
        let t0 = Instant::now();
        let a = Sample {
            doc: doc(100, 10),
            at: t0,
        };
        let f = frame("s:1", &a, None);
        assert_eq!(
            (f["grants_per_s"].as_f64(), f["rate_window_s"].as_f64()),
            (Some(10.0), Some(10.0))
        );
        let b = Sample {
            doc: doc(150, 12),
            at: t0 + Duration::from_secs(2),
        };
        let f = frame("s:1", &b, Some(&a));
        assert_eq!(f["grants_per_s"].as_f64(), Some(25.0));
        assert_eq!(f["expiries_per_s"].as_f64(), Some(1.0));
        assert_eq!(f["keys"][0]["waiters"].as_u64(), Some(2));
        assert_eq!(f["connections"].as_u64(), Some(3));
    }

    #[test]
    fn plain_view_has_no_escapes_and_ansi_view_clears_nothing_itself() {
        let f = frame(
            "s:1",
            &Sample {
                doc: doc(1, 0),
                at: Instant::now(),
            },
            None,
        );
        let plain = render(&f, &PLAIN, 20);
        assert!(!plain.contains('\x1b'));
        assert!(plain.contains("deploy"));
        assert!(plain.contains("2.0s") && plain.contains("256ms") && plain.contains("1m15s"));
        let ansi = render(&f, &ANSI, 20);
        assert!(ansi.contains("\x1b[7mKEY"));
    }

    #[test]
    fn rows_fit_the_terminal_and_long_keys_are_cut() {
        assert_eq!(rows_for(Some(24), 1), 20);
        assert_eq!(rows_for(Some(24), 2), 8);
        assert_eq!(rows_for(Some(3), 4), 1);
        assert_eq!(rows_for(None, 1), DEFAULT_ROWS);
        assert_eq!(cut(&"x".repeat(50)).chars().count(), KEY_WIDTH);
        let empty = frame(
            "s",
            &Sample {
                doc: json!({}),
                at: Instant::now(),
            },
            None,
        );
        assert!(render(&empty, &PLAIN, 5).contains("no contended keys"));
    }
}
