//! `GET /metrics`: the Prometheus text exposition (version 0.0.4) of
//! http.md §9, rendered from the `stats` document (so both always agree)
//! plus the HTTP layer's own counters.
//!
//! The metric names are part of the contract; HELP and TYPE lines precede
//! every family.

use crate::stats::{ByLabel, GRANT_LABELS, LISTENER_LABELS, PUSH_LABELS, REJECT_LABELS};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Counters the HTTP layer keeps (the loop is single-threaded: plain u64s).
#[derive(Debug, Default)]
pub struct HttpStats {
    /// (method, route template, status) → responses.
    pub requests: BTreeMap<(&'static str, &'static str, u16), u64>,
    /// (method, route template) → (sum of ms, count).
    pub durations: BTreeMap<(&'static str, &'static str), (u64, u64)>,
    pub auth_failures: u64,
    pub rate_limited: u64,
}

impl HttpStats {
    pub fn record(&mut self, method: &'static str, path: &'static str, status: u16, took_ms: u64) {
        *self.requests.entry((method, path, status)).or_insert(0) += 1;
        let d = self.durations.entry((method, path)).or_insert((0, 0));
        d.0 = d.0.saturating_add(took_ms);
        d.1 += 1;
    }
}

/// Facts the stats document does not carry.
#[derive(Debug, Default, Clone, Copy)]
pub struct Extra {
    pub tcp_connections: usize,
    pub http_connections: usize,
    pub ready: bool,
}

/// Label values are escaped per the exposition format.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", escape(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, "gauge", help);
        self.sample(name, &[], value);
    }

    fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.family(name, "counter", help);
        self.sample(name, &[], value as f64);
    }
}

fn arr<'a>(doc: &'a Value, name: &str) -> &'a [Value] {
    doc.get(name)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn sum(doc: &Value, name: &str, field: &str) -> f64 {
    arr(doc, name)
        .iter()
        .map(|e| match e.get(field) {
            Some(Value::Bool(b)) => f64::from(u8::from(*b)),
            Some(v) => v.as_f64().unwrap_or(0.0),
            None => 0.0,
        })
        // Not `.sum()`: the float sum of nothing is -0.0, which renders as
        // `-0` for every gauge over an empty table.
        .fold(0.0, |acc, v| acc + v)
}

fn total(doc: &Value, name: &str) -> u64 {
    doc.pointer(&format!("/server/totals/{name}"))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// One counter family with one sample per label value.
fn labelled<'a>(
    o: &mut Out,
    name: &str,
    help: &str,
    label: &str,
    samples: impl Iterator<Item = (&'a str, u64)>,
) {
    o.family(name, "counter", help);
    for (value, n) in samples {
        o.sample(name, &[(label, value)], n as f64);
    }
}

/// Render the exposition from the `stats` document `doc`, the breakdowns
/// `by` that only `/metrics` shows, and the HTTP layer's counters.
pub fn render(doc: &Value, by: &ByLabel, http: &HttpStats, extra: Extra) -> String {
    let mut o = Out(String::with_capacity(4096));
    o.family("dflockd_build_info", "gauge", "Build information.");
    o.sample(
        "dflockd_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    o.gauge(
        "dflockd_ready",
        "1 while serving, 0 while draining.",
        f64::from(u8::from(extra.ready)),
    );
    let uptime = doc
        .pointer("/server/uptime_s")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    o.gauge("dflockd_uptime_seconds", "Seconds since start.", uptime);
    o.gauge(
        "dflockd_connections",
        "Open TCP connections (main and Dreadlock ports).",
        extra.tcp_connections as f64,
    );
    o.gauge(
        "dflockd_http_connections",
        "Open HTTP connections.",
        extra.http_connections as f64,
    );
    let sessions = doc
        .pointer("/server/http_sessions")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    o.gauge(
        "dflockd_http_sessions",
        "Live HTTP sessions, SSE streams included.",
        sessions,
    );
    let locks = arr(doc, "locks");
    let held = locks
        .iter()
        .filter(|l| l.get("owner_conn_id").and_then(Value::as_u64).unwrap_or(0) != 0)
        .count();
    let lock_keys = locks.len()
        + arr(doc, "idle_locks").len()
        + arr(doc, "semaphores").len()
        + arr(doc, "idle_semaphores").len()
        + arr(doc, "rw_locks").len();
    o.gauge(
        "dflockd_lock_keys",
        "Keys counted toward --max-locks.",
        lock_keys as f64,
    );
    o.gauge(
        "dflockd_locks_held",
        "Exclusive lock keys that currently have a holder.",
        held as f64,
    );
    o.gauge(
        "dflockd_lock_waiters",
        "Waiters on exclusive lock keys.",
        sum(doc, "locks", "waiters"),
    );
    o.gauge(
        "dflockd_semaphore_holders",
        "Semaphore holders.",
        sum(doc, "semaphores", "holders"),
    );
    o.gauge(
        "dflockd_semaphore_waiters",
        "Semaphore waiters.",
        sum(doc, "semaphores", "waiters"),
    );
    o.gauge(
        "dflockd_rwlock_readers",
        "Read-lock holders.",
        sum(doc, "rw_locks", "readers"),
    );
    o.gauge(
        "dflockd_rwlock_writers",
        "Write-lock holders.",
        sum(doc, "rw_locks", "writer"),
    );
    o.gauge(
        "dflockd_rwlock_waiters",
        "Read-write lock waiters.",
        sum(doc, "rw_locks", "waiters"),
    );
    o.gauge(
        "dflockd_election_observers",
        "Election observer registrations (TCP and SSE).",
        sum(doc, "elections", "observers"),
    );
    let (counters, kv, lists, barriers) = (
        arr(doc, "counters").len(),
        arr(doc, "kv_entries").len(),
        arr(doc, "lists").len(),
        arr(doc, "barriers").len(),
    );
    o.gauge(
        "dflockd_data_keys",
        "Keys counted toward --max-keys.",
        (counters + kv + lists + barriers) as f64,
    );
    o.gauge("dflockd_counters", "Counters.", counters as f64);
    o.gauge("dflockd_kv_entries", "KV entries.", kv as f64);
    o.gauge("dflockd_lists", "Lists.", lists as f64);
    o.gauge(
        "dflockd_list_items",
        "Items in all lists.",
        sum(doc, "lists", "len"),
    );
    o.gauge(
        "dflockd_list_pop_waiters",
        "Blocked list poppers.",
        sum(doc, "lists", "pop_waiters"),
    );
    o.gauge("dflockd_barriers", "Barriers waiting.", barriers as f64);
    o.gauge(
        "dflockd_barrier_participants",
        "Participants waiting at barriers.",
        sum(doc, "barriers", "participants"),
    );
    o.gauge(
        "dflockd_signal_subscriptions",
        "listen registrations and signal streams.",
        sum(doc, "signal_channels", "listeners"),
    );
    o.gauge(
        "dflockd_watch_subscriptions",
        "watch registrations and watch streams.",
        sum(doc, "watch_channels", "watchers"),
    );
    let server_u64 = |name: &str| {
        doc.pointer(&format!("/server/{name}"))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    o.gauge(
        "dflockd_memory_used_bytes",
        "Bytes of client data, subscriptions and buffers counted toward --max-memory.",
        server_u64("memory_used_bytes") as f64,
    );
    o.gauge(
        "dflockd_memory_budget_bytes",
        "The memory budget (--max-memory); 0 = none.",
        server_u64("memory_budget_bytes") as f64,
    );
    labelled(
        &mut o,
        "dflockd_connections_accepted_total",
        "Accepted connections, by listener.",
        "listener",
        LISTENER_LABELS.iter().copied().zip(by.accepted),
    );
    labelled(
        &mut o,
        "dflockd_connections_rejected_total",
        "Connections closed at accept by a connection cap, by the cap.",
        "reason",
        REJECT_LABELS.iter().copied().zip(by.rejected),
    );
    let commands = by
        .commands
        .iter()
        .map(|(name, n)| (ByLabel::command_label(name), *n));
    labelled(
        &mut o,
        "dflockd_commands_total",
        "TCP requests executed, by command (invalid: did not parse).",
        "command",
        commands.chain([("invalid", by.invalid_commands)]),
    );
    labelled(
        &mut o,
        "dflockd_grants_total",
        "Grants (TCP and HTTP), by kind.",
        "kind",
        GRANT_LABELS.iter().copied().zip(by.grants),
    );
    o.counter(
        "dflockd_acquire_timeouts_total",
        "Acquires and waits that ended in timeout.",
        total(doc, "acquire_timeouts"),
    );
    o.counter(
        "dflockd_lease_expirations_total",
        "Holders removed by lease expiry.",
        total(doc, "lease_expirations"),
    );
    o.counter(
        "dflockd_kv_expirations_total",
        "KV entries removed by TTL.",
        total(doc, "kv_expirations"),
    );
    o.counter(
        "dflockd_signals_published_total",
        "signal requests and HTTP publishes.",
        total(doc, "signals_published"),
    );
    o.counter(
        "dflockd_signals_delivered_total",
        "Signal frames and events queued.",
        total(doc, "signals_delivered"),
    );
    o.counter(
        "dflockd_max_memory_refusals_total",
        "Requests refused with error_max_memory (HTTP 503 max_memory).",
        total(doc, "max_memory_refusals"),
    );
    labelled(
        &mut o,
        "dflockd_push_frames_total",
        "Push frames and SSE events queued, by kind.",
        "kind",
        PUSH_LABELS.iter().copied().zip(by.push_frames),
    );
    o.counter(
        "dflockd_slow_consumer_disconnects_total",
        "Connections and streams closed by --max-output-bytes.",
        total(doc, "slow_consumer_disconnects"),
    );
    o.family(
        "dflockd_auth_failures_total",
        "counter",
        "Authentication failures.",
    );
    let all = total(doc, "auth_failures");
    o.sample(
        "dflockd_auth_failures_total",
        &[("listener", "tcp")],
        all.saturating_sub(http.auth_failures) as f64,
    );
    o.sample(
        "dflockd_auth_failures_total",
        &[("listener", "http")],
        http.auth_failures as f64,
    );
    if let Some(tls) = doc.pointer("/server/tls") {
        let n = |k: &str| tls.get(k).and_then(Value::as_u64).unwrap_or(0) as f64;
        o.family(
            "dflockd_tls_handshakes_total",
            "counter",
            "TLS handshakes by result (failed: TLS error, plain text, 10 s deadline, or the peer left mid-handshake).",
        );
        o.sample(
            "dflockd_tls_handshakes_total",
            &[("result", "completed")],
            n("handshakes_completed"),
        );
        o.sample(
            "dflockd_tls_handshakes_total",
            &[("result", "failed")],
            n("handshakes_failed"),
        );
        if let Some(t) = tls.get("cert_not_after_unix").and_then(Value::as_i64) {
            o.gauge(
                "dflockd_tls_certificate_not_after_seconds",
                "notAfter of the loaded TLS certificate, seconds since 1970 (changes on SIGHUP reload).",
                t as f64,
            );
        }
    }
    o.counter(
        "dflockd_http_rate_limited_total",
        "429 responses.",
        http.rate_limited,
    );
    o.family(
        "dflockd_http_requests_total",
        "counter",
        "HTTP responses by method, route and status.",
    );
    for ((method, path, status), n) in &http.requests {
        let status = status.to_string();
        o.sample(
            "dflockd_http_requests_total",
            &[("method", method), ("path", path), ("status", &status)],
            *n as f64,
        );
    }
    o.family(
        "dflockd_http_request_duration_seconds",
        "summary",
        "HTTP request duration (to the response head for SSE).",
    );
    for ((method, path), (ms, n)) in &http.durations {
        let labels = [("method", *method), ("path", *path)];
        o.sample(
            "dflockd_http_request_duration_seconds_sum",
            &labels,
            *ms as f64 / 1000.0,
        );
        o.sample(
            "dflockd_http_request_duration_seconds_count",
            &labels,
            *n as f64,
        );
    }
    o.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gauges_come_from_the_stats_document() {
        let doc = json!({
            "connections": 2,
            "locks": [{"key": "a", "owner_conn_id": 3, "waiters": 2},
                      {"key": "b", "owner_conn_id": 0, "waiters": 1}],
            "lists": [{"key": "l", "len": 4, "pop_waiters": 0}],
            "server": {"uptime_s": 1.5, "http_sessions": 1,
                       "memory_used_bytes": 4096, "memory_budget_bytes": 65536,
                       "totals": {"grants": 7, "max_memory_refusals": 3}},
        });
        let mut http = HttpStats::default();
        http.record("POST", "/v1/locks/{key}", 200, 3);
        let mut by = ByLabel::default();
        by.grants[0] = 5;
        by.grants[5] = 2;
        by.accepted[2] = 4;
        by.rejected[1] = 1;
        by.command("l");
        by.command("l");
        by.command("unlock");
        by.invalid_commands = 3;
        by.push_frame(b"sig ch hello\n");
        by.push_frame(b"lease expired k 00\n");
        let text = render(
            &doc,
            &by,
            &http,
            Extra {
                tcp_connections: 2,
                http_connections: 1,
                ready: true,
            },
        );
        for line in [
            "dflockd_locks_held 1",
            "dflockd_lock_waiters 3",
            "dflockd_list_items 4",
            "dflockd_grants_total{kind=\"lock\"} 5",
            "dflockd_grants_total{kind=\"dreadlock\"} 2",
            "dflockd_grants_total{kind=\"read\"} 0",
            "dflockd_connections_accepted_total{listener=\"http\"} 4",
            "dflockd_connections_accepted_total{listener=\"tcp\"} 0",
            "dflockd_connections_rejected_total{reason=\"max_connections_per_ip\"} 1",
            "dflockd_commands_total{command=\"l\"} 2",
            "dflockd_commands_total{command=\"dreadlock_unlock\"} 1",
            "dflockd_commands_total{command=\"invalid\"} 3",
            "dflockd_push_frames_total{kind=\"sig\"} 1",
            "dflockd_push_frames_total{kind=\"lease\"} 1",
            "dflockd_push_frames_total{kind=\"watch\"} 0",
            "dflockd_memory_used_bytes 4096",
            "dflockd_memory_budget_bytes 65536",
            "dflockd_max_memory_refusals_total 3",
            "dflockd_http_sessions 1",
            "dflockd_ready 1",
            "dflockd_http_requests_total{method=\"POST\",path=\"/v1/locks/{key}\",status=\"200\"} 1",
            "dflockd_http_request_duration_seconds_count{method=\"POST\",path=\"/v1/locks/{key}\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
        // Sums over empty or absent tables are 0, not -0.
        for line in [
            "dflockd_semaphore_waiters 0",
            "dflockd_barrier_participants 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
        assert!(!text.contains(" -0\n"), "{text}");
        // Every sample line follows a TYPE line for its family.
        assert!(text.lines().next().is_some_and(|l| l.starts_with("# HELP")));
        assert!(
            !text.contains("dflockd_tls_"),
            "no TLS families without TLS"
        );
    }

    #[test]
    fn tls_families_come_from_server_tls() {
        let doc = json!({"server": {"tls": {"handshakes_completed": 5, "handshakes_failed": 2,
                                            "cert_not_after_unix": 1_893_553_445_i64}}});
        let text = render(
            &doc,
            &ByLabel::default(),
            &HttpStats::default(),
            Extra::default(),
        );
        for line in [
            "# TYPE dflockd_tls_handshakes_total counter",
            "dflockd_tls_handshakes_total{result=\"completed\"} 5",
            "dflockd_tls_handshakes_total{result=\"failed\"} 2",
            "dflockd_tls_certificate_not_after_seconds 1893553445",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
    }
}
