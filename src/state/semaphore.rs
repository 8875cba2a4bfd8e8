//! Semaphores `sl sr sn se sw` (protocol.md §8.5): the exclusive-lock machinery
//! with capacity `<limit>`, in their own key space.

use super::grant::{Ask, EndCause};
use super::resource::{Kind, Space};
use super::{Cx, Outcome, State, Via};
use crate::owner::OwnerId;
use crate::protocol::command::Command;
use crate::protocol::reply::Reply;

impl State {
    pub(super) fn apply_semaphore(&mut self, cx: &mut Cx, conn: OwnerId, cmd: Command) -> Outcome {
        let reply = match cmd {
            Command::SemLock {
                key,
                timeout,
                limit,
                lease,
            } => {
                let ask = self.semaphore(limit, lease);
                return self.acquire(cx, conn, &key, ask, timeout.saturating_mul(1000));
            }
            Command::SemRelease { key, token } => {
                self.release_token(cx, Space::Sem, &key, &token, EndCause::Release, conn)
            }
            Command::SemRenew { key, token, lease } => {
                let lease = self.lease_or_default(lease);
                self.renew_token(cx, Space::Sem, &key, &token, lease, false)
            }
            Command::SemEnqueue { key, limit, lease } => {
                let ask = self.semaphore(limit, lease);
                self.enqueue(cx, conn, &key, ask)
            }
            Command::SemWait { key, timeout } => {
                return self.wait(
                    cx,
                    conn,
                    Space::Sem,
                    &key,
                    Via::Sem,
                    timeout.saturating_mul(1000),
                );
            }
            _ => Reply::ERROR,
        };
        Outcome::Reply(reply)
    }

    fn semaphore(&self, limit: u32, lease: Option<u64>) -> Ask {
        Ask {
            space: Space::Sem,
            kind: Kind::Semaphore(limit),
            via: Via::Sem,
            lease_s: self.lease_or_default(lease),
        }
    }
}
