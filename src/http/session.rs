//! HTTP sessions (http.md §5): the HTTP counterpart of a TCP connection.
//!
//! A session is an [`OwnerId`] with [`OwnerId::SESSION_BIT`] set, so the
//! coordination state ties holders, waiters, enqueues and barrier seats to it
//! exactly as it does to a connection. This table is plain data: the server
//! drives creation, lookup, serialised execution and idle expiry.
//!
//! **Serialised execution.** Requests naming one session run one at a time in
//! arrival order. Only a long-poll can leave a request in progress across
//! loop iterations, so `busy` names the HTTP connection whose request is in
//! progress and `waiting` the connections queued behind it.

use crate::owner::OwnerId;
use slab::Slab;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

/// A session id: 16 random bytes, shown as 32 lowercase hex characters.
pub type SessionKey = u128;

#[derive(Debug)]
pub struct Session {
    pub key: SessionKey,
    pub owner: OwnerId,
    /// The connection id users see (one sequence with TCP connections).
    pub serial: u64,
    /// The address that created the session.
    pub peer: IpAddr,
    /// Refreshed by creation, `ping`, and the start and end of every request.
    pub last_activity: u64,
    /// The HTTP connection whose request is in progress (a long-poll).
    pub busy: Option<OwnerId>,
    /// Connections whose requests wait for `busy` to finish, in arrival order.
    pub waiting: VecDeque<OwnerId>,
    /// The stream of `GET /v1/sessions/{id}/events` that gets its lease
    /// notices (the newest one opened; stale once that stream closed).
    pub events: Option<OwnerId>,
}

/// Why a session could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapError {
    MaxSessions,
    MaxSessionsPerIp,
}

impl CapError {
    pub fn code(self) -> &'static str {
        match self {
            CapError::MaxSessions => "max_sessions",
            CapError::MaxSessionsPerIp => "max_sessions_per_ip",
        }
    }
}

/// What an `X-Dflockd-Session` value names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Found(OwnerId),
    /// Not 32 lowercase hex characters (400).
    Malformed,
    /// Unknown, expired or deleted (410).
    Gone,
}

/// Live sessions plus the SSE streams that count toward the same caps.
#[derive(Debug, Default)]
pub struct Sessions {
    slab: Slab<Session>,
    gens: Vec<u32>,
    by_key: HashMap<SessionKey, usize>,
    /// Sessions and SSE streams per client IP (the caps count both).
    per_ip: HashMap<IpAddr, u32>,
    /// SSE streams open (they count toward the caps but are connections).
    streams: usize,
}

impl Sessions {
    /// Live sessions, SSE streams included (the number the caps apply to).
    pub fn count(&self) -> usize {
        self.slab.len() + self.streams
    }

    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// Check the caps for one more session or stream from `ip` (0 = no limit).
    pub fn admit(&self, ip: IpAddr, max: u64, max_per_ip: u64) -> Result<(), CapError> {
        if max > 0 && self.count() as u64 >= max {
            return Err(CapError::MaxSessions);
        }
        let here = self.per_ip.get(&ip).copied().unwrap_or(0);
        if max_per_ip > 0 && u64::from(here) >= max_per_ip {
            return Err(CapError::MaxSessionsPerIp);
        }
        Ok(())
    }

    /// Create a session (caps already checked with [`Sessions::admit`]).
    /// `key` comes from the OS CSPRNG; a collision (never expected) is
    /// reported as `None` so the caller can draw again.
    pub fn create(
        &mut self,
        key: SessionKey,
        peer: IpAddr,
        serial: u64,
        now: u64,
    ) -> Option<OwnerId> {
        if self.by_key.contains_key(&key) {
            return None;
        }
        let entry = self.slab.vacant_entry();
        let slot = entry.key();
        if self.gens.len() <= slot {
            self.gens.resize(slot + 1, 0);
        }
        let owner = OwnerId::session(slot, self.gens[slot]);
        entry.insert(Session {
            key,
            owner,
            serial,
            peer,
            last_activity: now,
            busy: None,
            waiting: VecDeque::new(),
            events: None,
        });
        self.by_key.insert(key, slot);
        *self.per_ip.entry(peer).or_insert(0) += 1;
        Some(owner)
    }

    /// Resolve a header value or path segment naming a session.
    pub fn lookup(&self, raw: &[u8]) -> Lookup {
        let Some(key) = parse_key(raw) else {
            return Lookup::Malformed;
        };
        match self.by_key.get(&key) {
            Some(&slot) => Lookup::Found(self.slab[slot].owner),
            None => Lookup::Gone,
        }
    }

    pub fn get(&self, owner: OwnerId) -> Option<&Session> {
        if !owner.is_session() {
            return None;
        }
        self.slab.get(owner.index()).filter(|s| s.owner == owner)
    }

    pub fn get_mut(&mut self, owner: OwnerId) -> Option<&mut Session> {
        if !owner.is_session() {
            return None;
        }
        self.slab
            .get_mut(owner.index())
            .filter(|s| s.owner == owner)
    }

    /// End a session; its owner id is never valid again.
    pub fn remove(&mut self, owner: OwnerId) -> Option<Session> {
        self.get(owner)?;
        let s = self.slab.remove(owner.index());
        self.by_key.remove(&s.key);
        self.release_ip(s.peer);
        if let Some(g) = self.gens.get_mut(owner.index()) {
            *g = g.wrapping_add(1);
        }
        if self.slab.is_empty() {
            self.slab.shrink_to_fit();
            self.by_key.shrink_to_fit();
        }
        Some(s)
    }

    /// Sessions idle since before `cutoff` with no request in progress.
    pub fn expired(&self, cutoff: u64) -> Vec<OwnerId> {
        self.slab
            .iter()
            .filter(|(_, s)| s.busy.is_none() && s.last_activity < cutoff)
            .map(|(_, s)| s.owner)
            .collect()
    }

    /// Every live session (for draining).
    pub fn owners(&self) -> Vec<OwnerId> {
        self.slab.iter().map(|(_, s)| s.owner).collect()
    }

    /// An SSE stream from `ip` opened (it counts toward the caps).
    pub fn stream_opened(&mut self, ip: IpAddr) {
        self.streams += 1;
        *self.per_ip.entry(ip).or_insert(0) += 1;
    }

    pub fn stream_closed(&mut self, ip: IpAddr) {
        self.streams = self.streams.saturating_sub(1);
        self.release_ip(ip);
    }

    fn release_ip(&mut self, ip: IpAddr) {
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }
}

/// 32 lowercase hex characters → the key; anything else is malformed.
pub fn parse_key(raw: &[u8]) -> Option<SessionKey> {
    if raw.len() != 32 {
        return None;
    }
    let mut key: u128 = 0;
    for &b in raw {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        key = key << 4 | u128::from(digit);
    }
    Some(key)
}

/// The key as 32 lowercase hex characters.
pub fn format_key(key: SessionKey) -> String {
    format!("{key:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[test]
    fn keys_round_trip_and_reject_anything_but_lowercase_hex() {
        let k = 0x3f0c8d2a9b7e41c6a5d4e3f2b1a09876_u128;
        assert_eq!(format_key(k), "3f0c8d2a9b7e41c6a5d4e3f2b1a09876");
        assert_eq!(parse_key(format_key(k).as_bytes()), Some(k));
        assert_eq!(format_key(1), "00000000000000000000000000000001");
        for bad in [
            &b"3F0C8D2A9B7E41C6A5D4E3F2B1A09876"[..],
            b"3f0c8d2a9b7e41c6a5d4e3f2b1a0987",
            b"3f0c8d2a9b7e41c6a5d4e3f2b1a098760",
            b"3f0c8d2a9b7e41c6a5d4e3f2b1a0987g",
            b"",
        ] {
            assert_eq!(parse_key(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn lookup_create_remove_and_stale_ids() {
        let mut t = Sessions::default();
        let a = t.create(7, IP, 1, 0).expect("fresh key");
        assert!(a.is_session());
        assert_eq!(t.create(7, IP, 2, 0), None, "duplicate key");
        assert_eq!(t.lookup(format_key(7).as_bytes()), Lookup::Found(a));
        assert_eq!(t.lookup(format_key(8).as_bytes()), Lookup::Gone);
        assert_eq!(t.lookup(b"nope"), Lookup::Malformed);
        assert!(t.remove(a).is_some());
        assert_eq!(t.lookup(format_key(7).as_bytes()), Lookup::Gone);
        let b = t.create(9, IP, 3, 0).expect("fresh key");
        assert_eq!(a.index(), b.index(), "slot reused");
        assert!(t.get(a).is_none(), "stale generation");
        assert!(t.get(b).is_some());
    }

    #[test]
    fn caps_count_sessions_and_streams_per_ip() {
        let mut t = Sessions::default();
        let other: IpAddr = "10.0.0.1".parse().expect("literal");
        t.create(1, IP, 1, 0);
        t.stream_opened(IP);
        assert_eq!(t.admit(IP, 0, 2), Err(CapError::MaxSessionsPerIp));
        assert_eq!(t.admit(other, 0, 2), Ok(()));
        assert_eq!(t.admit(other, 2, 0), Err(CapError::MaxSessions));
        t.stream_closed(IP);
        assert_eq!(t.admit(IP, 0, 2), Ok(()));
    }

    #[test]
    fn expiry_skips_sessions_with_a_request_in_progress() {
        let mut t = Sessions::default();
        let a = t.create(1, IP, 1, 100).expect("fresh");
        let b = t.create(2, IP, 2, 100).expect("fresh");
        t.get_mut(b).expect("live").busy = Some(OwnerId::conn(0, 0));
        assert_eq!(t.expired(101), vec![a]);
        assert!(t.expired(100).is_empty());
    }
}
