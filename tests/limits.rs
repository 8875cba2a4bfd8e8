//! Output limits and the write timeout (protocol.md §2.7): replies are never
//! dropped — a client that does not read is back-pressured — and a connection
//! whose output makes no progress for `--write-timeout` seconds is closed.

use crate::common;

use common::{Server, wait_until};
use std::time::{Duration, Instant};

/// A 60,000-byte value: a few of its `kget` replies fill the socket buffers.
fn big_value() -> String {
    "v".repeat(60_000)
}

/// `n` pipelined `kget big` requests.
fn kgets(n: usize) -> Vec<u8> {
    b"kget\nbig\n\n".repeat(n)
}

#[test]
fn replies_are_back_pressured_never_dropped() {
    let server = Server::start(&["--max-output-bytes", "1048576"]);
    let mut c = server.client();
    let value = big_value();
    assert_eq!(c.req("kset", "big", &value), "ok");
    // 300 replies of 60 KB = 18 MB, far beyond the output limit and the
    // kernel's buffers: the server must stop reading, not drop or close.
    let mut req = kgets(300);
    req.extend_from_slice(b"ping\n_\n\n");
    c.send(&req);
    std::thread::sleep(Duration::from_millis(500));
    let mut observer = server.client();
    assert_eq!(observer.stats().get("connections").u64(), 2);
    let expected = format!("ok {value}");
    for i in 0..300 {
        assert_eq!(c.line(), expected, "reply {i}");
    }
    assert_eq!(c.line(), "ok", "the request behind the backlog runs too");
}

#[test]
fn write_timeout_closes_a_connection_that_stops_reading() {
    let server = Server::start(&["--write-timeout", "1", "--read-timeout", "0"]);
    let mut c = server.client();
    assert_eq!(c.req("kset", "big", &big_value()), "ok");
    let start = Instant::now();
    c.send(&kgets(400));
    let mut observer = server.client();
    wait_until("the stalled connection is closed", || {
        observer.stats().get("connections").u64() == 1
    });
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(1),
        "closed after {waited:?}, before the 1 s write timeout"
    );
}

#[test]
fn write_timeout_zero_never_closes() {
    let server = Server::start(&["--write-timeout", "0", "--read-timeout", "0"]);
    let mut c = server.client();
    assert_eq!(c.req("kset", "big", &big_value()), "ok");
    c.send(&kgets(400));
    std::thread::sleep(Duration::from_millis(2500));
    let mut observer = server.client();
    assert_eq!(observer.stats().get("connections").u64(), 2);
    // And every reply still arrives once the client reads.
    for _ in 0..400 {
        assert!(c.line().starts_with("ok v"));
    }
}
