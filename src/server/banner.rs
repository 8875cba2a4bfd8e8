//! The start-up line: one `info` line with the version, every listener, auth
//! and TLS on or off, and the main limits, so an operator reading the log of
//! a running server knows what it was started with. The per-listener
//! `listening on <addr> (<kind>)` lines (config.md §6, read by tests and
//! scripts) stay as they are; this line never contains "listening on".

use crate::config::Config;
use std::fmt::Write;
use std::net::SocketAddr;

/// `0 (no limit)` for the limits where 0 means none, else the number.
fn count(n: u64) -> String {
    if n == 0 {
        "0 (no limit)".into()
    } else {
        n.to_string()
    }
}

fn secs(n: u64) -> String {
    if n == 0 {
        "0 (off)".into()
    } else {
        format!("{n} s")
    }
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// The start-up line for `cfg` with the bound `listeners`.
pub fn startup_line(cfg: &Config, listeners: &[(SocketAddr, &str)]) -> String {
    let mut s = format!("dflockd {} starting:", env!("CARGO_PKG_VERSION"));
    for (i, (addr, kind)) in listeners.iter().enumerate() {
        let sep = if i == 0 { " " } else { ", " };
        let _ = write!(s, "{sep}{kind} {addr}");
    }
    let l = &cfg.limits;
    let _ = write!(
        s,
        "; auth {}; tls {}; --max-connections {}, --max-connections-per-ip {}, \
         --max-locks {}, --max-keys {}, --max-waiters {}, --max-value-bytes {}, \
         --max-output-bytes {}; --read-timeout {}, --write-timeout {}, \
         --default-lease-ttl {} s, --auto-release-on-disconnect {}",
        on_off(cfg.auth_token.is_some()),
        on_off(cfg.tls.is_some()),
        count(l.max_connections),
        count(l.max_connections_per_ip),
        l.max_locks,
        count(l.max_keys),
        count(l.max_waiters),
        l.max_value_bytes,
        l.max_output_bytes,
        secs(cfg.read_timeout_s),
        secs(cfg.write_timeout_s),
        cfg.default_lease_s,
        on_off(cfg.auto_release_on_disconnect),
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_version_listeners_auth_tls_and_limits() {
        let cfg = Config::default();
        let addrs = [
            ("127.0.0.1:6388".parse().unwrap(), "tcp"),
            ("127.0.0.1:6001".parse().unwrap(), "dreadlock"),
        ];
        let line = startup_line(&cfg, &addrs);
        assert!(
            line.starts_with(&format!(
                "dflockd {} starting: tcp 127.0.0.1:6388, dreadlock 127.0.0.1:6001; auth off; tls off; ",
                env!("CARGO_PKG_VERSION")
            )),
            "{line}"
        );
        assert!(line.contains("--max-locks 1024"), "{line}");
        assert!(line.contains("--max-connections 0 (no limit)"), "{line}");
        assert!(line.contains("--read-timeout 23 s"), "{line}");
        assert!(!line.contains("listening on"), "{line}");
    }
}
