//! Read-write locks `rl wl rr wr rn wn re we rw ww` (protocol.md §8.7): the
//! lock-table machinery with the writer-preferring FIFO rule of
//! `Resource::has_capacity_for`; replies always carry the fence.

use super::grant::{Ask, EndCause};
use super::resource::{Kind, Space};
use super::{Cx, Outcome, State, Via};
use crate::owner::OwnerId;
use crate::protocol::command::{Command, RwMode};
use crate::protocol::reply::Reply;

fn via(mode: RwMode) -> Via {
    match mode {
        RwMode::Read => Via::Read,
        RwMode::Write => Via::Write,
    }
}

impl State {
    pub(super) fn apply_rwlock(&mut self, cx: &mut Cx, conn: OwnerId, cmd: Command) -> Outcome {
        let reply = match cmd {
            Command::RwLock {
                mode,
                key,
                timeout,
                lease,
            } => {
                let ask = self.rw_ask(mode, lease);
                return self.acquire(cx, conn, &key, ask, timeout.saturating_mul(1000));
            }
            Command::RwRelease { key, token, .. } => {
                self.release_token(cx, Space::Lock, &key, &token, EndCause::Release, conn)
            }
            Command::RwRenew {
                key, token, lease, ..
            } => {
                let lease = self.lease_or_default(lease);
                self.renew_token(cx, Space::Lock, &key, &token, lease, true)
            }
            Command::RwEnqueue { mode, key, lease } => {
                let ask = self.rw_ask(mode, lease);
                self.enqueue(cx, conn, &key, ask)
            }
            Command::RwWait { mode, key, timeout } => {
                return self.wait(
                    cx,
                    conn,
                    Space::Lock,
                    &key,
                    via(mode),
                    timeout.saturating_mul(1000),
                );
            }
            _ => Reply::ERROR,
        };
        Outcome::Reply(reply)
    }

    fn rw_ask(&self, mode: RwMode, lease: Option<u64>) -> Ask {
        Ask {
            space: Space::Lock,
            kind: Kind::ReadWrite,
            via: via(mode),
            lease_s: self.lease_or_default(lease),
        }
    }
}
