//! Push frames produced by state changes: watch events (protocol.md §8.13)
//! and leader events (§8.8). Frames are encoded once and shared (`Rc<[u8]>`)
//! by every recipient.

use super::{Cx, Out, State};
use crate::owner::OwnerId;
use std::rc::Rc;

/// `<prefix> <event> <key>\n`, encoded once.
fn frame(prefix: &str, event: &str, key: &str) -> Rc<[u8]> {
    let mut v = Vec::with_capacity(prefix.len() + event.len() + key.len() + 3);
    v.extend_from_slice(prefix.as_bytes());
    v.push(b' ');
    v.extend_from_slice(event.as_bytes());
    v.push(b' ');
    v.extend_from_slice(key.as_bytes());
    v.push(b'\n');
    v.into()
}

impl State {
    /// Emit watch event `event` for `key` to every connection watching a matching pattern.
    pub(super) fn watch_event(&mut self, cx: &mut Cx, event: &str, key: &str) {
        if self.watches.is_empty() {
            return;
        }
        let frame = frame("watch", event, key);
        let out = &mut *cx.out;
        self.watches.matching(key, |conn| {
            out.push(Out::Push {
                conn,
                frame: frame.clone(),
            })
        });
    }

    /// `watch_event` for the key of lock-table resource `res`; the name is
    /// looked up only when someone watches (this runs on every grant).
    pub(super) fn watch_event_res(&mut self, cx: &mut Cx, event: &str, res: u32) {
        if self.watches.is_empty() {
            return;
        }
        if let Some(name) = self.table.get(res).map(|r| r.name.clone()) {
            self.watch_event(cx, event, &name);
        }
    }

    /// Push `leader <event> <key>` to the subscribers of election `key`, except `except`.
    pub(super) fn leader_event(
        &mut self,
        cx: &mut Cx,
        event: &str,
        key: &str,
        except: Option<OwnerId>,
    ) {
        let Some(subs) = self.elections.subscribers(key) else {
            return;
        };
        let frame = frame("leader", event, key);
        for conn in subs {
            if Some(conn) != except {
                cx.out.push(Out::Push {
                    conn,
                    frame: frame.clone(),
                });
            }
        }
    }

    /// Push `leader <event> <key>` to one connection.
    pub(super) fn leader_event_to(&mut self, cx: &mut Cx, event: &str, key: &str, conn: OwnerId) {
        cx.out.push(Out::Push {
            conn,
            frame: frame("leader", event, key),
        });
    }
}
