//! Exclusive locks `l r n e w` (protocol.md §8.4) and the Dreadlock dialect's
//! `lock`/`unlock` (§9), which share the lock key space and its FIFO queues.

use super::grant::{Ask, EndCause};
use super::resource::{Kind, Space};
use super::{Cx, Outcome, State, Via};
use crate::owner::OwnerId;
use crate::protocol::command::Command;
use crate::protocol::reply::{DreadReply, Reply};

impl State {
    pub(super) fn apply_lock(&mut self, cx: &mut Cx, conn: OwnerId, cmd: Command) -> Outcome {
        let reply = match cmd {
            Command::Lock {
                key,
                timeout,
                lease,
            } => {
                let ask = self.exclusive(Via::Lock, lease);
                return self.acquire(cx, conn, &key, ask, timeout.saturating_mul(1000));
            }
            Command::Release { key, token } => {
                self.release_token(cx, Space::Lock, &key, &token, EndCause::Release, conn)
            }
            Command::Renew { key, token, lease } => {
                let lease = self.lease_or_default(lease);
                self.renew_token(cx, Space::Lock, &key, &token, lease, false)
            }
            Command::Enqueue { key, lease } => {
                let ask = self.exclusive(Via::Lock, lease);
                self.enqueue(cx, conn, &key, ask)
            }
            Command::Wait { key, timeout } => {
                return self.wait(
                    cx,
                    conn,
                    Space::Lock,
                    &key,
                    Via::Lock,
                    timeout.saturating_mul(1000),
                );
            }
            Command::DreadLock { key, timeout_ms } => {
                return self.dread_lock(cx, conn, &key, timeout_ms);
            }
            Command::DreadUnlock { key } => self.dread_unlock(cx, conn, &key),
            _ => Reply::ERROR,
        };
        Outcome::Reply(reply)
    }

    fn exclusive(&self, via: Via, lease: Option<u64>) -> Ask {
        Ask {
            space: Space::Lock,
            kind: Kind::Exclusive,
            via,
            lease_s: self.lease_or_default(lease),
        }
    }

    /// Dreadlock `lock`: checks in the order of the §9 table.
    fn dread_lock(&mut self, cx: &mut Cx, conn: OwnerId, key: &str, timeout_ms: u64) -> Outcome {
        let held_by_me = self
            .table
            .find(Space::Lock, key)
            .and_then(|r| self.table.get(r))
            .is_some_and(|r| r.holders.iter().any(|h| h.owner == conn));
        if held_by_me {
            return Outcome::Reply(Reply::Dread(DreadReply::AlreadyLocked));
        }
        let ask = self.exclusive(Via::Dread, None);
        self.acquire(cx, conn, key, ask, timeout_ms)
    }

    /// Dreadlock `unlock`: releases the hold this connection took with `lock`.
    fn dread_unlock(&mut self, cx: &mut Cx, conn: OwnerId, key: &str) -> Reply {
        let Some(res) = self.table.find(Space::Lock, key) else {
            return Reply::Dread(DreadReply::NotLocked);
        };
        let Some(r) = self.table.get(res) else {
            return Reply::Dread(DreadReply::NotLocked);
        };
        if r.holders.is_empty() {
            return Reply::Dread(DreadReply::NotLocked);
        }
        match r
            .holders
            .iter()
            .position(|h| h.owner == conn && h.via == Via::Dread)
        {
            Some(i) => {
                self.end_holder(cx, res, i, EndCause::Release, Some(conn));
                Reply::Dread(DreadReply::Unlocked)
            }
            None => Reply::Dread(DreadReply::NotOwner),
        }
    }
}
