//! Per-owner options of protocol.md §8.15 (`opt`, and `PATCH /v1/sessions/{id}`
//! for HTTP sessions): all off for a new connection or session, kept until it
//! ends. Stored on the owner's record in the state so that TCP connections and
//! HTTP sessions share one implementation.

/// The name line of `opt\n<name>\n<on|off>\n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptName {
    /// `queued <position>` instead of `queued` for `e se re we`.
    QueuePosition,
    /// `lease` push frames for the leases the owner holds.
    LeaseNotices,
    /// Refuse a blocking request that would close a wait-for cycle.
    Deadlock,
}

impl OptName {
    /// Every option, in the order the spec lists them.
    pub const ALL: [OptName; 3] = [
        OptName::QueuePosition,
        OptName::LeaseNotices,
        OptName::Deadlock,
    ];

    /// The wire name, or `None` for an unknown name (names are case-sensitive,
    /// like command names).
    pub fn parse(name: &[u8]) -> Option<OptName> {
        OptName::ALL
            .into_iter()
            .find(|o| o.name().as_bytes() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            OptName::QueuePosition => "queue_position",
            OptName::LeaseNotices => "lease_notices",
            OptName::Deadlock => "deadlock",
        }
    }
}

/// `on` / `off`, exactly (the argument line, blanks already trimmed).
pub fn parse_switch(arg: &[u8]) -> Option<bool> {
    match arg {
        b"on" => Some(true),
        b"off" => Some(false),
        _ => None,
    }
}

/// One owner's options, one bit each: a single byte, so it fits the padding
/// of the owner record (memory per connection is budgeted, see conn/mod.rs).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Options(u8);

impl Options {
    pub fn set(&mut self, name: OptName, on: bool) {
        if on {
            self.0 |= Self::bit(name);
        } else {
            self.0 &= !Self::bit(name);
        }
    }

    #[inline]
    pub fn get(self, name: OptName) -> bool {
        self.0 & Self::bit(name) != 0
    }

    #[inline]
    fn bit(name: OptName) -> u8 {
        match name {
            OptName::QueuePosition => 1,
            OptName::LeaseNotices => 2,
            OptName::Deadlock => 4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for o in OptName::ALL {
            assert_eq!(OptName::parse(o.name().as_bytes()), Some(o));
        }
        for bad in [&b""[..], b"Deadlock", b"queue-position", b"deadlock ", b"x"] {
            assert_eq!(OptName::parse(bad), None, "{bad:?}");
        }
        assert_eq!(parse_switch(b"on"), Some(true));
        assert_eq!(parse_switch(b"off"), Some(false));
        for bad in [&b""[..], b"ON", b"1", b"true", b"yes", b"on off"] {
            assert_eq!(parse_switch(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn set_changes_one_option_only() {
        let mut o = Options::default();
        o.set(OptName::Deadlock, true);
        assert!(o.get(OptName::Deadlock));
        assert!(!o.get(OptName::QueuePosition) && !o.get(OptName::LeaseNotices));
        o.set(OptName::Deadlock, false);
        assert_eq!(o, Options::default());
    }
}
