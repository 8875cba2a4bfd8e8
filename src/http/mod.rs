//! The HTTP/1.1 REST + SSE API (served on `--http-port` by the same loop and
//! over the same state as the line protocol).
//!
//! Pure pieces, no IO:
//! * [`parse`] — request-head parser (Complete / Incomplete / Error), limits
//!   enforced while the head is still partial;
//! * [`response`] — status line, headers and body writer;
//! * [`sse`] — Server-Sent Event framing;
//! * [`path`] — path splitting, percent-decoding, query strings;
//! * [`route`] — the route table: the one source of truth for the router and
//!   for the OpenAPI document;
//! * [`body`] — JSON request bodies and their validation;
//! * [`openapi`] — the OpenAPI 3.1 document built from the route table;
//! * [`session`] — HTTP sessions: owners that outlive connections;
//! * [`rate`] — per-IP token buckets;
//! * [`metrics`] — the Prometheus exposition ([`metrics_contention`]: its
//!   lock wait/hold histograms and most-contended keys);
//! * [`api`] — a routed request to a state [`Command`](crate::protocol::command::Command),
//!   and a [`Reply`](crate::protocol::reply::Reply) back to a status and JSON body.

pub mod api;
pub mod body;
pub mod metrics;
pub mod metrics_contention;
pub mod openapi;
mod outcome;
pub mod parse;
pub mod path;
pub mod rate;
pub mod response;
pub mod route;
mod route_table;
pub mod session;
pub mod sse;
