//! The network address of an owner's peer, as operators see it in `stats` and
//! in the log (`ip:port`, IPv6 in brackets).
//!
//! A compact copy of a [`SocketAddr`]: the IP and the port, without the IPv6
//! flow label and scope id a `SocketAddr` carries (20 bytes instead of 32),
//! because every connection's coordination state keeps one and memory per
//! connection is a budget (conn/mod.rs). On the ground floor, like
//! [`crate::owner`], so `state`, `conn`, `http` and `server` can all use it.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerAddr {
    pub ip: IpAddr,
    pub port: u16,
}

impl PeerAddr {
    pub fn socket_addr(self) -> SocketAddr {
        SocketAddr::new(self.ip, self.port)
    }
}

impl From<SocketAddr> for PeerAddr {
    fn from(a: SocketAddr) -> PeerAddr {
        PeerAddr {
            ip: a.ip(),
            port: a.port(),
        }
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.socket_addr().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_ip_and_port() {
        let v4: PeerAddr = "127.0.0.1:40231".parse::<SocketAddr>().unwrap().into();
        assert_eq!(v4.to_string(), "127.0.0.1:40231");
        let v6: PeerAddr = "[::1]:6388".parse::<SocketAddr>().unwrap().into();
        assert_eq!(v6.to_string(), "[::1]:6388");
        assert!(size_of::<Option<PeerAddr>>() <= 20);
    }
}
