//! Lease notices (protocol.md §8.15): with `lease_notices` on, an owner gets
//! `lease expiring <key> <fence> <remaining_s>\n` once per lease period, when
//! 80% of the lease has passed without a renewal, and
//! `lease expired <key> <fence>\n` when a lease ran out and the slot was
//! released. `<fence>` is the 16 hex characters that begin the token (as
//! in `who`), `<remaining_s>` seconds with millisecond precision.
//!
//! How it is driven, and what it costs:
//! * One wheel timer per noticed lease ([`Timer::LeaseNotice`]), inserted
//!   at the grant, the renewal or the wait that starts a lease period, and
//!   cancelled in O(1) when the period ends early (renewal, release,
//!   expiry, disconnect). Its key is kept in a map by fence, so the holder
//!   record does not grow for a feature most owners never switch on.
//! * With notices off everywhere the map is empty, and the grant path pays
//!   one bit test of the owner's options (the owner record is already at
//!   hand); release and renewal pay one `is_empty` check.
//! * The notice handler re-validates (is the fence still held, is the
//!   option still on), so a notice that lost a race is a no-op.
//! * A lease granted while the option was off gets its `expiring` notice
//!   from its next renewal on; `expired` is sent whenever the option is on
//!   at the moment of expiry.
//! * An HTTP session's notices go to its event stream
//!   (`GET /v1/sessions/{id}/events`); the server routes the frames.

use super::options::OptName;
use super::{Cx, Out, State};
use crate::owner::OwnerId;
use crate::timer::wheel::TimerKey;
use crate::timer::{Timer, deadline_after};
use std::collections::HashMap;

/// The share of a lease after which `lease expiring` is sent, in percent.
const NOTICE_AT_PERCENT: u64 = 80;

/// Pending `expiring` timers, by the fence of the lease they are for.
#[derive(Debug, Default)]
pub struct LeaseNotices {
    pending: HashMap<u64, TimerKey>,
}

/// `lease <event> <key> <fence as 16 hex>[ <remaining_s>]\n`.
fn frame(event: &str, key: &str, fence: u64, remaining_ms: Option<u64>) -> Vec<u8> {
    let mut s = format!("lease {event} {key} {fence:016x}");
    if let Some(ms) = remaining_ms {
        s.push_str(&format!(" {}.{:03}", ms / 1000, ms % 1000));
    }
    s.push('\n');
    s.into_bytes()
}

impl State {
    /// Whether `owner` has `lease_notices` on.
    #[inline]
    pub(super) fn wants_lease_notices(&self, owner: OwnerId) -> bool {
        self.conns
            .get(owner)
            .is_some_and(|c| c.options.get(OptName::LeaseNotices))
    }

    /// A lease period of `lease_ms` starts now for the holder `fence` of
    /// `res`: arm its `expiring` notice (replacing one still pending).
    pub(super) fn arm_lease_notice(&mut self, cx: &mut Cx, res: u32, fence: u64, lease_ms: u64) {
        self.cancel_lease_notice(cx, fence);
        let at = deadline_after(cx.now, lease_ms.saturating_mul(NOTICE_AT_PERCENT) / 100);
        let key = cx.timers.insert(at, Timer::LeaseNotice { res, fence });
        self.notices.pending.insert(fence, key);
    }

    /// The lease period of `fence` ended early: no `expiring` notice for it.
    #[inline]
    pub(super) fn cancel_lease_notice(&mut self, cx: &mut Cx, fence: u64) {
        if self.notices.pending.is_empty() {
            return;
        }
        if let Some(t) = self.notices.pending.remove(&fence) {
            cx.timers.cancel(t);
        }
    }

    /// [`Timer::LeaseNotice`] fired: 80% of the period has passed.
    pub(super) fn lease_notice_due(&mut self, cx: &mut Cx, res: u32, fence: u64) {
        self.notices.pending.remove(&fence);
        let Some(r) = self.table.get(res) else {
            return;
        };
        let Some(h) = r.holder_by_fence(fence).map(|i| &r.holders[i]) else {
            return;
        };
        let (owner, deadline) = (h.owner, h.deadline);
        if !self.wants_lease_notices(owner) {
            return;
        }
        // Deadlines carry one extra ms so they never fire early; not shown.
        let remaining = deadline.saturating_sub(cx.now.saturating_add(1));
        let bytes = frame("expiring", &r.name, fence, Some(remaining));
        cx.out.push(Out::Push {
            conn: owner,
            frame: bytes.into(),
        });
    }

    /// The lease of `fence` on `key` held by `owner` expired and its slot
    /// was released.
    pub(super) fn lease_expired_notice(
        &mut self,
        cx: &mut Cx,
        owner: OwnerId,
        key: &str,
        fence: u64,
    ) {
        if self.wants_lease_notices(owner) {
            cx.out.push(Out::Push {
                conn: owner,
                frame: frame("expired", key, fence, None).into(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_spelled_as_the_spec_says() {
        assert_eq!(
            frame("expiring", "deploy", 0x18ea9db47e590001, Some(6_600)),
            b"lease expiring deploy 18ea9db47e590001 6.600\n"
        );
        assert_eq!(
            frame("expired", "k", 7, None),
            b"lease expired k 0000000000000007\n"
        );
        assert_eq!(
            frame("expiring", "k", 7, Some(42)),
            b"lease expiring k 0000000000000007 0.042\n"
        );
    }
}
