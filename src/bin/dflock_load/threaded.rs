//! `--threads-per-connection`: one OS thread per connection, blocking writes
//! and blocking reads — the shape of the upstream Go, Python and TypeScript
//! clients (a goroutine, thread or task per worker, parked in `read` until
//! its reply arrives). The event-loop client (`worker.rs`) batches many
//! connections' replies into one `epoll_wait`; this one makes the kernel wake
//! a sleeping thread per reply, which is what a server sees from real
//! workers contending for a hot key.
//!
//! The protocol is driven by the same [`Worker`] as the event loop (same
//! requests, same reply validation, same report); only the I/O differs. The
//! socket gets a short receive timeout so deadlines, subscriber heartbeats and
//! the end of a pub/sub run are checked as often as the event loop checks
//! them, without any extra syscall while replies keep coming.

use crate::conn::{Conn, Link, Step};
use crate::worker::{Outcome, Plan, Shared, TICK, Worker};
use std::sync::Arc;
use std::time::Instant;

/// Largest `--connections` with `--threads-per-connection`: every thread
/// keeps two latency histograms (~190 KiB each) and a stack.
pub const MAX_THREADED_CONNECTIONS: u32 = 4096;
/// Stack of each connection thread; the driver needs a few KiB.
pub const STACK_BYTES: usize = 256 * 1024;

/// Drive one connection with blocking I/O until it is finished.
pub fn run(conn: Conn, plan: Arc<Plan>, shared: Arc<Shared>) -> Outcome {
    let now = Instant::now();
    let mut c = conn;
    let mut w = Worker::new(plan, shared, std::slice::from_ref(&c), now);
    // Back from mio to a plain blocking socket: the fd is the same. A TLS
    // link stays with the event loop (its records need the non-blocking driver).
    let sock = match c.stream {
        Link::Plain(sock) => sock,
        tls @ Link::Tls { .. } => {
            c.stream = tls;
            w.fail(
                &mut c,
                "--threads-per-connection drives plain TCP only".into(),
            );
            return w.finish();
        }
    };
    let std_stream = std::net::TcpStream::from(sock);
    let blocking = std_stream
        .set_nonblocking(false)
        .and_then(|()| std_stream.set_read_timeout(Some(TICK)));
    c.stream = Link::Plain(mio::net::TcpStream::from_std(std_stream));
    if let Err(e) = blocking {
        w.fail(&mut c, format!("cannot make the socket blocking: {e}"));
        return w.finish();
    }
    w.maybe_start_cpu(now);
    // --rate: this connection's next op start; the connections' schedules
    // are spread over one interval so the server sees a steady stream.
    let pace = w.plan().pace;
    let mut slot = pace.map(|p| now + p.mul_f64(c.idx as f64 / f64::from(w.plan().workers)));
    if slot.is_none() {
        w.start(&mut c, now);
    }
    let mut next_tick = now + TICK;
    while c.step != Step::Done {
        if let (Some(p), Some(at), Step::Idle) = (pace, slot, c.step) {
            let now = Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
            let now = Instant::now();
            // Late by more than an interval (a slow reply): restart the
            // schedule rather than catch up in a burst.
            slot = Some(if now > at + p { now + p } else { at + p });
            w.maybe_start_cpu(now);
            w.start(&mut c, now);
            continue;
        }
        // One blocking read (a timeout reads as WouldBlock), the replies it
        // brought, and the next request written at once.
        w.on_readable(&mut c, false);
        w.flush_received();
        let now = Instant::now();
        w.maybe_start_cpu(now);
        if now >= next_tick {
            w.housekeeping(std::slice::from_mut(&mut c), now);
            next_tick = now + TICK;
        }
    }
    w.finish()
}
