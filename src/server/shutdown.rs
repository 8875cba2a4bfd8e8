//! Signals and service-manager notifications.
//!
//! SIGTERM/SIGINT start a drain (protocol.md §4.5); a second one stops at once.
//! signal-hook writes one byte per signal into a socket pair whose read end is
//! registered in the loop, so handlers never touch server state.
//!
//! The systemd watchdog (config.md §8.1) is fed from the loop itself, by a
//! wheel timer at half of `WATCHDOG_USEC`: a loop that wedges stops feeding
//! it, and systemd restarts the service. A helper thread would keep feeding a
//! dead loop.

use super::Server;
use crate::conn::Phase;
use crate::protocol::explain::CloseReason;
use crate::protocol::reply::{DreadReply, Status};
use crate::timer::{Timer, deadline_after};
use mio::net::UnixStream;
use mio::{Interest, Registry, Token};
use std::io::{self, Read};

pub struct Signals {
    /// SIGTERM and SIGINT.
    rx: UnixStream,
    /// SIGHUP (reload), on its own pipe so it never counts as a stop.
    hup_rx: UnixStream,
    readable: bool,
}

impl Signals {
    pub fn register(registry: &Registry, token: Token) -> io::Result<Signals> {
        let (mut rx, tx) = UnixStream::pair()?;
        let tx = std::os::unix::net::UnixStream::from(std::os::fd::OwnedFd::from(tx));
        for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            signal_hook::low_level::pipe::register(sig, tx.try_clone()?)?;
        }
        let (mut hup_rx, hup_tx) = UnixStream::pair()?;
        let hup_tx = std::os::unix::net::UnixStream::from(std::os::fd::OwnedFd::from(hup_tx));
        signal_hook::low_level::pipe::register(signal_hook::consts::SIGHUP, hup_tx)?;
        registry.register(&mut rx, token, Interest::READABLE)?;
        registry.register(&mut hup_rx, token, Interest::READABLE)?;
        Ok(Signals {
            rx,
            hup_rx,
            readable: false,
        })
    }

    pub fn set_readable(&mut self) {
        self.readable = true;
    }

    pub fn pending(&self) -> bool {
        self.readable
    }

    /// (termination signals, reload signals) received since the last call.
    fn take(&mut self) -> (usize, usize) {
        self.readable = false;
        (drain(&mut self.rx), drain(&mut self.hup_rx))
    }
}

/// Read a signal pipe empty; each byte is one signal.
fn drain(rx: &mut UnixStream) -> usize {
    let mut n = 0;
    let mut buf = [0u8; 64];
    loop {
        match rx.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    n
}

impl Server {
    pub(super) fn on_signals(&mut self) {
        let (n, hups) = self.signals.take();
        if hups > 0 {
            self.reload();
        }
        if n == 0 {
            return;
        }
        if self.draining || n > 1 {
            log::info!("second termination signal: closing every connection");
            self.stop_now = true;
            return;
        }
        self.start_drain();
    }

    /// Begin the graceful drain of protocol.md §4.5.
    pub(super) fn start_drain(&mut self) {
        log::info!(
            "draining: {} connections open, shutdown timeout {} s",
            self.conns.len(),
            self.net.shutdown_timeout_ms / 1000
        );
        self.draining = true;
        self.state.view.draining = true;
        sd_notify("STOPPING=1");
        self.drain_http();
        for l in self.listeners.iter_mut() {
            if let Some(mut l) = l.take() {
                if let Err(e) = self.poll.registry().deregister(&mut l.sock) {
                    log::debug!("deregister listener {}: {e}", l.addr);
                }
            }
        }
        let parked: Vec<_> = self
            .conns
            .iter()
            .filter(|(_, c)| c.phase == Phase::Parked)
            .map(|(_, c)| c.id)
            .collect();
        for id in parked {
            self.with_state(|s, cx| s.cancel_parked(cx, id));
            if let Some(c) = self.conns.get_mut(id.slot as usize) {
                let reply = c.notice(DreadReply::Draining, Status::ErrorDraining);
                reply.encode(c.outbuf.vec());
                c.close_for(CloseReason::Draining);
            }
            self.flush(id);
            self.mark_ready(id);
        }
        self.deliver_outbox();
        // Connections with requests already buffered get their answer now.
        let ids: Vec<_> = self.conns.iter().map(|(_, c)| c.id).collect();
        for id in ids {
            self.mark_ready(id);
        }
        if self.net.shutdown_timeout_ms > 0 {
            let at = deadline_after(self.clock.now(), self.net.shutdown_timeout_ms);
            self.wheel.insert(at, Timer::Shutdown);
        }
    }
}

impl Server {
    /// SIGHUP: re-read the TLS files and the auth token file (config.md §7).
    /// New handshakes use the new certificate; new authentications use the
    /// new token; open connections keep working, authenticated ones stay
    /// authenticated. On a failure the old material stays in use.
    fn reload(&mut self) {
        // systemd compares MONOTONIC_USEC with CLOCK_MONOTONIC to tell this
        // reload from an older one; the wall clock would be the wrong clock.
        let now_us = super::memory::monotonic_us();
        sd_notify(&format!("RELOADING=1\nMONOTONIC_USEC={now_us}"));
        let tls = self.reload_tls();
        match &self.net.auth_token_file {
            None if !tls => {
                log::info!("reload: nothing to reload (no TLS files, no --auth-token-file)")
            }
            None => {}
            Some(path) => match crate::config::reload_auth_token(path) {
                Ok(token) => {
                    self.net.auth_token = Some(token);
                    log::info!("reload: auth token re-read from {}", path.display());
                }
                Err(e) => log::error!("reload failed, keeping the old token: {e}"),
            },
        }
        sd_notify("READY=1");
    }
}

/// The watchdog interval in ms (half of `WATCHDOG_USEC`, at least 1 ms), when
/// the service manager asked for one: `WATCHDOG_USEC` set to a positive
/// number, and `WATCHDOG_PID` unset or this process (sd_watchdog_enabled(3)).
pub fn watchdog_interval_ms(env: &dyn Fn(&str) -> Option<String>) -> Option<u64> {
    let usec: u64 = env("WATCHDOG_USEC")?.trim().parse().ok()?;
    if usec == 0 {
        return None;
    }
    if let Some(pid) = env("WATCHDOG_PID") {
        if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    Some((usec / 2 / 1000).max(1))
}

impl Server {
    /// Feed the watchdog now and arm the next feeding.
    pub(super) fn feed_watchdog(&mut self) {
        if let Some(every) = self.watchdog_ms {
            sd_notify("WATCHDOG=1");
            let at = deadline_after(self.clock.now(), every);
            self.wheel.insert(at, Timer::Watchdog);
        }
    }
}

/// Send a message to the service manager when `NOTIFY_SOCKET` is set (sd_notify(3)).
pub fn sd_notify(msg: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = send_notify(&path, msg) {
        log::warn!("sd_notify failed: {e}");
    }
}

fn send_notify(path: &std::ffi::OsStr, msg: &str) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let sock = UnixDatagram::unbound()?;
    let bytes = path.as_bytes();
    let addr = if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        SocketAddr::from_abstract_name(name)?
    } else {
        SocketAddr::from_pathname(std::path::Path::new(path))?
    };
    sock.send_to_addr(msg.as_bytes(), &addr)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::watchdog_interval_ms;

    #[test]
    fn watchdog_follows_the_variables() {
        let me = std::process::id().to_string();
        let env = |usec: Option<&str>, pid: Option<&str>| {
            let (usec, pid) = (usec.map(str::to_owned), pid.map(str::to_owned));
            move |k: &str| match k {
                "WATCHDOG_USEC" => usec.clone(),
                "WATCHDOG_PID" => pid.clone(),
                _ => None,
            }
        };
        assert_eq!(
            watchdog_interval_ms(&env(Some("10000000"), None)),
            Some(5000)
        );
        assert_eq!(
            watchdog_interval_ms(&env(Some("10000000"), Some(&me))),
            Some(5000)
        );
        assert_eq!(
            watchdog_interval_ms(&env(Some("10000000"), Some("1"))),
            None
        );
        assert_eq!(watchdog_interval_ms(&env(Some("1"), None)), Some(1));
        assert_eq!(watchdog_interval_ms(&env(Some("0"), None)), None);
        assert_eq!(watchdog_interval_ms(&env(Some("soon"), None)), None);
        assert_eq!(watchdog_interval_ms(&env(None, None)), None);
    }
}
