//! # dflockd — a distributed lock and coordination server
//!
//! ```text
//!            ┌──────────── one thread, one mio::Poll ───────────────┐
//!  TCP ──▶ accept ──▶ Conn (slab) ──read──▶ InBuf ──parse──▶ Command │
//!            │                                              │       │
//!            │      Wheel<Timer> ──fire──▶ State::on_timer  ▼       │
//!            │                               State::apply (pure)    │
//!            │                                  │        │          │
//!            │          OutBuf ◀──encode── Reply    outbox (grants  │
//!  TCP ◀── flush ◀──────┘                             to others)    │
//!            └──────────────────────────────────────────────────────┘
//! ```
//!
//! * **No threads, no locks.** The event loop owns every connection, the timer
//!   wheel and the coordination state. Signal handlers only write a byte into a
//!   socket pair the loop watches.
//! * **Tokens.** Listener and signal tokens sit at the top of the `usize` range;
//!   connection tokens are slab keys. Everything that outlives an event stores a
//!   `OwnerId { slot, gen }`, so a stale reference never reaches a reused slot.
//! * **TLS is a wrapper.** `net::transport::Transport` is plain TCP or a
//!   rustls connection; `read_into`/`write_from` give both the same outcomes,
//!   so parsers, the HTTP layer and the state see plaintext only.
//! * **Sleeping.** The loop blocks in `epoll_wait` when it has nothing to do.
//!   After an iteration with traffic it first polls without blocking for
//!   `--busy-poll-us`, so a chain of hand-offs does not pay a wake-up per link;
//!   with no traffic it never spins (`server/busy.rs`).
//! * **Pure core.** `protocol::*`, `timer::wheel` and `state::*` do no IO and
//!   read no clock: time is injected as milliseconds once per loop iteration.
//! * **Invariants.** Strict FIFO with no barging; a timer never fires before its
//!   deadline; replies on one connection leave in request order; every buffer
//!   has a cap.

pub mod auth;
pub mod client;
pub mod completions;
pub mod config;
pub mod conn;
pub mod error;
pub mod http;
pub mod net;
pub mod owner;
pub mod peer;
pub mod protocol;
pub mod server;
pub mod state;
pub mod stats;
pub mod timer;

#[cfg(test)]
mod test_rng;
