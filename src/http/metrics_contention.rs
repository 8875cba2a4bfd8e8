//! The contention part of `/metrics` (protocol.md §8.15, http.md §9):
//! `dflockd_lock_wait_seconds` and `dflockd_lock_hold_seconds` histograms
//! (server-wide, no per-key labels) and
//! `dflockd_contended_key_wait_seconds_total{key}` for the keys of the
//! `stats` document's `contention` array only (at most 20), so the number
//! of series stays bounded however many keys there are.

use super::metrics::escape;
use crate::state::contention::Contention;
use crate::state::latency::Histogram;
use serde_json::Value;
use std::fmt::Write;

fn histogram(out: &mut String, name: &str, help: &str, h: &Histogram) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} histogram");
    for (le, n) in h.cumulative() {
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {n}");
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(out, "{name}_sum {}", h.sum_ms as f64 / 1000.0);
    let _ = writeln!(out, "{name}_count {}", h.count);
}

/// Append the contention families; `doc` is the `stats` document the rest
/// of the exposition was rendered from (its `contention` array).
pub fn append(out: &mut String, doc: &Value, c: &Contention) {
    histogram(
        out,
        "dflockd_lock_wait_seconds",
        "Time requests spent queued for a lock, semaphore or read-write slot (granted, timed out or cancelled).",
        &c.wait,
    );
    histogram(
        out,
        "dflockd_lock_hold_seconds",
        "Time slots were held, from grant to release, expiry or disconnect.",
        &c.hold,
    );
    let name = "dflockd_contended_key_wait_seconds_total";
    let _ = writeln!(
        out,
        "# HELP {name} Total queue time of the 20 keys with the most (the contention array of stats)."
    );
    let _ = writeln!(out, "# TYPE {name} counter");
    let keys = doc
        .get("contention")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    for k in keys {
        let (Some(key), Some(total)) = (
            k.get("key").and_then(Value::as_str),
            k.get("wait_total_s").and_then(Value::as_f64),
        ) else {
            continue;
        };
        let _ = writeln!(out, "{name}{{key=\"{}\"}} {total}", escape(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::contention::KeyType;
    use crate::state::memory::Budget;
    use crate::state::resource::Space;
    use serde_json::json;

    #[test]
    fn histograms_and_bounded_key_series() {
        let mut c = Contention::default();
        let mut mem = Budget::new(0);
        let s = c
            .track(Space::Lock, "a\"b", KeyType::Lock, 10, &mut mem)
            .unwrap();
        c.on_wait_end(s, 1500);
        c.on_hold_end(s, 3);
        let doc = json!({"contention": [{"key": "a\"b", "wait_total_s": 1.5}]});
        let mut out = String::new();
        append(&mut out, &doc, &c);
        assert!(out.contains("# TYPE dflockd_lock_wait_seconds histogram\n"));
        assert!(out.contains("dflockd_lock_wait_seconds_bucket{le=\"1.024\"} 0\n"));
        assert!(out.contains("dflockd_lock_wait_seconds_bucket{le=\"2.048\"} 1\n"));
        assert!(out.contains("dflockd_lock_wait_seconds_bucket{le=\"+Inf\"} 1\n"));
        assert!(out.contains("dflockd_lock_wait_seconds_sum 1.5\n"));
        assert!(out.contains("dflockd_lock_hold_seconds_bucket{le=\"0.004\"} 1\n"));
        assert!(out.contains("dflockd_contended_key_wait_seconds_total{key=\"a\\\"b\"} 1.5\n"));
    }
}
