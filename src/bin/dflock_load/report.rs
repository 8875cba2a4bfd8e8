//! Merge the threads' outcomes and print the report (text or JSON).

use crate::cli::{Args, Mode};
use crate::worker::{Outcome, SAMPLES, histogram};
use hdrhistogram::Histogram;
use serde_json::{Map, Value, json};
use std::time::Instant;

/// Percentiles of one histogram, in microseconds.
pub struct Latency {
    pub mean: f64,
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Latency {
    fn of(h: &Histogram<u64>, max: u64) -> Latency {
        if h.is_empty() {
            return Latency {
                mean: 0.0,
                p50: 0,
                p99: 0,
                p999: 0,
                max: 0,
            };
        }
        // The histogram reports a bucket's highest equivalent value, which can
        // exceed the exact maximum kept alongside it.
        let q = |q: f64| h.value_at_quantile(q).min(max);
        Latency {
            mean: h.mean().min(max as f64),
            p50: q(0.50),
            p99: q(0.99),
            p999: q(0.999),
            max,
        }
    }

    fn text(&self) -> String {
        format!(
            "mean {:.1}  p50 {}  p99 {}  p99.9 {}  max {}",
            self.mean, self.p50, self.p99, self.p999, self.max
        )
    }
}

pub struct Summary {
    pub elapsed_s: f64,
    pub ops: u64,
    pub latency: Latency,
    pub errors: u64,
    pub timeouts: u64,
    pub samples: Vec<String>,
    pub cpu_ns: u64,
    /// Pub/sub only.
    pub deliveries: u64,
    pub expected: u64,
    pub delivery_elapsed_s: f64,
    pub delivery: Latency,
}

impl Summary {
    pub fn merge(outcomes: Vec<Outcome>, start: Instant, expected: u64) -> Summary {
        let mut hist = histogram();
        let mut dhist = histogram();
        let (mut ops, mut errors, mut timeouts, mut deliveries, mut cpu_ns) = (0, 0, 0, 0, 0);
        let (mut max_us, mut dmax_us) = (0, 0);
        let mut samples = Vec::new();
        let mut last_op = None::<Instant>;
        let mut last_delivery = None::<Instant>;
        for o in outcomes {
            hist.add(&o.hist).expect("same histogram bounds");
            dhist.add(&o.delivery).expect("same histogram bounds");
            ops += o.ops;
            errors += o.errors;
            timeouts += o.timeouts;
            deliveries += o.deliveries;
            cpu_ns += o.cpu_ns;
            max_us = max_us.max(o.max_us);
            dmax_us = dmax_us.max(o.delivery_max_us);
            samples.extend(o.samples);
            last_op = last_op.max(o.last_op);
            last_delivery = last_delivery.max(o.last_delivery);
        }
        if deliveries < expected {
            let lost = expected - deliveries;
            errors += lost;
            samples.insert(
                0,
                format!("lost deliveries: subscribers counted {deliveries} of {expected} ({lost} missing)"),
            );
        }
        samples.truncate(SAMPLES);
        let since = |t: Option<Instant>| {
            t.map_or(0.0, |t| t.saturating_duration_since(start).as_secs_f64())
        };
        Summary {
            elapsed_s: since(last_op),
            ops,
            latency: Latency::of(&hist, max_us),
            errors,
            timeouts,
            samples,
            cpu_ns,
            deliveries,
            expected,
            delivery_elapsed_s: since(last_delivery),
            delivery: Latency::of(&dhist, dmax_us),
        }
    }

    pub fn failed(&self) -> bool {
        self.errors > 0 || self.timeouts > 0
    }

    fn rate(n: u64, secs: f64) -> f64 {
        if secs > 0.0 { n as f64 / secs } else { 0.0 }
    }

    fn ops_per_sec(&self) -> f64 {
        Self::rate(self.ops, self.elapsed_s)
    }

    fn deliveries_per_sec(&self) -> f64 {
        Self::rate(self.deliveries, self.delivery_elapsed_s)
    }

    fn cpu_us_per(&self, n: u64) -> f64 {
        if n == 0 {
            0.0
        } else {
            self.cpu_ns as f64 / 1000.0 / n as f64
        }
    }

    /// Client CPU as a percentage of one core over the measured time.
    fn cpu_percent(&self) -> f64 {
        let secs = self.elapsed_s.max(self.delivery_elapsed_s);
        if secs > 0.0 {
            self.cpu_ns as f64 / 1e9 / secs * 100.0
        } else {
            0.0
        }
    }

    /// The report after the echoed command line.
    pub fn text(&self, args: &Args) -> String {
        let mut s = String::new();
        let mut line = |l: String| {
            s.push_str(&l);
            s.push('\n');
        };
        let over = if args.http() { " over http" } else { "" };
        let mut what = format!(
            "mode {} against {}{over}: {} connection{}",
            args.mode.name(),
            args.server(),
            args.connections,
            if args.connections == 1 { "" } else { "s" }
        );
        match args.mode {
            Mode::Semaphore => what.push_str(&format!(", limit {}", args.limit())),
            Mode::Pipeline => what.push_str(&format!(", depth {}", args.depth())),
            Mode::Pubsub => {
                what.push_str(&format!(" publishing, {} subscribers", args.subscribers()))
            }
            Mode::Kv => what.push_str(&format!(", {}-byte values", args.value_size())),
            _ => {}
        }
        if let Some(rate) = args.rate {
            what.push_str(&format!(", paced to {rate} ops/s"));
        }
        if args.mode == Mode::Connect {
            what.push_str(" (one thread each, a new connection per op)");
        } else if args.threads_per_connection {
            what.push_str(", one thread per connection (blocking reads)");
        } else {
            what.push_str(&format!(
                ", {} thread{}",
                args.threads,
                if args.threads == 1 { "" } else { "s" }
            ));
        }
        if args.tls_ca.is_some() {
            what.push_str(", TLS");
        }
        line(what);
        let plan = match args.rounds() {
            Some(r) => format!("{r} rounds per connection"),
            None => format!("{:.2} s", args.duration.unwrap_or_default().as_secs_f64()),
        };
        line(format!(
            "measured     {plan} after {:.2} s warm-up; {:.3} s elapsed",
            args.warmup.as_secs_f64(),
            self.elapsed_s
        ));
        let unit = if args.mode == Mode::Pubsub {
            "publishes/s"
        } else {
            "ops/s"
        };
        line(format!(
            "ops          {} ({:.1} {unit})",
            self.ops,
            self.ops_per_sec()
        ));
        line(format!("latency µs   {}", self.latency.text()));
        if args.mode == Mode::Pubsub {
            line(format!(
                "deliveries   {} of {} expected ({:.1} deliveries/s)",
                self.deliveries,
                self.expected,
                self.deliveries_per_sec()
            ));
            line(format!("delivery µs  {}", self.delivery.text()));
        }
        line(format!("errors       {}", self.errors));
        for e in &self.samples {
            line(format!("  {e}"));
        }
        if self.errors as usize > self.samples.len() {
            line(format!(
                "  ({} more not shown)",
                self.errors as usize - self.samples.len()
            ));
        }
        line(format!("timeouts     {}", self.timeouts));
        let mut cpu = format!(
            "client CPU   {:.2} µs/op ({:.1}% of one core)",
            self.cpu_us_per(self.ops),
            self.cpu_percent()
        );
        if args.mode == Mode::Pubsub {
            cpu.push_str(&format!(
                ", {:.3} µs/delivery",
                self.cpu_us_per(self.deliveries)
            ));
        }
        line(cpu);
        s
    }

    pub fn json(&self, args: &Args, command: &str) -> Value {
        let r2 = |x: f64| (x * 100.0).round() / 100.0;
        let mut m = Map::new();
        let mut put = |k: &str, v: Value| {
            m.insert(k.to_string(), v);
        };
        put("command", json!(command));
        put("server", json!(args.server()));
        put("transport", json!(args.transport.name()));
        put("mode", json!(args.mode.name()));
        put("connections", json!(args.connections));
        put("threads", json!(args.client_threads()));
        put("client", json!(args.client_shape()));
        put("tls", json!(args.tls_ca.is_some()));
        put("rate", json!(args.rate));
        put("rounds", json!(args.rounds()));
        put("duration_s", json!(args.duration.map(|d| d.as_secs_f64())));
        put("warmup_s", json!(args.warmup.as_secs_f64()));
        match args.mode {
            Mode::Semaphore => put("limit", json!(args.limit())),
            Mode::Pipeline => put("depth", json!(args.depth())),
            Mode::Kv => put("value_size", json!(args.value_size())),
            Mode::Pubsub => put("subscribers", json!(args.subscribers())),
            _ => {}
        }
        put(
            "elapsed_s",
            json!((self.elapsed_s * 1000.0).round() / 1000.0),
        );
        put("ops", json!(self.ops));
        put("ops_per_sec", json!(r2(self.ops_per_sec())));
        put("mean_us", json!(r2(self.latency.mean)));
        put("p50_us", json!(self.latency.p50));
        put("p99_us", json!(self.latency.p99));
        put("p999_us", json!(self.latency.p999));
        put("max_us", json!(self.latency.max));
        put("errors", json!(self.errors));
        put("timeouts", json!(self.timeouts));
        put("error_samples", json!(self.samples));
        put("cpu_us_per_op", json!(r2(self.cpu_us_per(self.ops))));
        put("cpu_percent", json!(r2(self.cpu_percent())));
        if args.mode == Mode::Pubsub {
            put("publishes_per_sec", json!(r2(self.ops_per_sec())));
            put("deliveries", json!(self.deliveries));
            put("expected_deliveries", json!(self.expected));
            put("deliveries_per_sec", json!(r2(self.deliveries_per_sec())));
            put("delivery_mean_us", json!(r2(self.delivery.mean)));
            put("delivery_p50_us", json!(self.delivery.p50));
            put("delivery_p99_us", json!(self.delivery.p99));
            put("delivery_p999_us", json!(self.delivery.p999));
            put("delivery_max_us", json!(self.delivery.max));
            put(
                "cpu_us_per_delivery",
                json!((self.cpu_us_per(self.deliveries) * 1000.0).round() / 1000.0),
            );
        }
        put("passed", json!(!self.failed()));
        Value::Object(m)
    }
}
