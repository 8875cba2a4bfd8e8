//! Request framing benches (style.md §10): `parse_frame` over the shapes the
//! server sees most: one small request, a 64 KiB pipelined burst, one request
//! with a 64 KiB value, and a Dreadlock line (framed, then decoded).
//! Throughput is bytes of input; divide the time by the request count for
//! ns/request. Times are short on purpose so `cargo bench` stays practical.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dflockd::protocol::dreadlock::parse_dreadlock;
use dflockd::protocol::line::{Frame, parse_frame};
use dflockd::protocol::{LineLimits, Parsed};

/// The server's limits with the default V = 65536.
fn limits() -> LineLimits {
    LineLimits::for_value_bytes(65536)
}

/// Frames every request in `buf`, as the dispatcher does on a full read buffer.
/// Returns the request count so the work cannot be optimised away.
fn frame_all(buf: &[u8], limits: &LineLimits) -> usize {
    let mut rest = buf;
    let mut count = 0;
    while let Parsed::Complete { consumed, .. } = parse_frame(rest, limits) {
        rest = &rest[consumed..];
        count += 1;
    }
    count
}

/// A 64 KiB read buffer of small pipelined requests, a typical mix of lock,
/// release, ping, kv and Dreadlock traffic, cut at the last whole request.
fn pipelined_64k() -> (Vec<u8>, usize) {
    const MIX: [&[u8]; 6] = [
        b"l\nmy-key\n10 60\n",
        b"r\nmy-key\n18ea9db47e590001d433357e6ef5d88b\n",
        b"ping\n_\n\n",
        b"kset\r\nsession.42\r\nhello world\t30\r\n",
        b"lock build42 5000\r\n",
        b"incr\nhits\n1\n",
    ];
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut count = 0;
    for request in MIX.iter().cycle() {
        if buf.len() + request.len() > 64 * 1024 {
            break;
        }
        buf.extend_from_slice(request);
        count += 1;
    }
    (buf, count)
}

fn bench_frames(c: &mut Criterion) {
    let limits = limits();
    let mut group = c.benchmark_group("parse_frame");

    let single: &[u8] = b"l\nmy-key\n10 60\n";
    group.throughput(Throughput::Bytes(single.len() as u64));
    group.bench_function("single_lock_request", |b| {
        b.iter(|| parse_frame(black_box(single), &limits))
    });

    let (pipelined, count) = pipelined_64k();
    assert_eq!(frame_all(&pipelined, &limits), count);
    group.throughput(Throughput::Bytes(pipelined.len() as u64));
    group.bench_function(format!("pipelined_64KiB_{count}_requests"), |b| {
        b.iter(|| frame_all(black_box(&pipelined), &limits))
    });

    let value = [b"kset\nbig\n".as_slice(), &[b'v'; 65536], b"\n"].concat();
    assert!(matches!(
        parse_frame(&value, &limits),
        Parsed::Complete { .. }
    ));
    group.throughput(Throughput::Bytes(value.len() as u64));
    group.bench_function("kset_64KiB_value", |b| {
        b.iter(|| parse_frame(black_box(&value), &limits))
    });

    let dreadlock: &[u8] = b"LOCK  build42   5000 \r\n";
    group.throughput(Throughput::Bytes(dreadlock.len() as u64));
    group.bench_function("dreadlock_line", |b| {
        b.iter(|| parse_frame(black_box(dreadlock), &limits))
    });
    group.bench_function("dreadlock_line_framed_and_decoded", |b| {
        b.iter(|| match parse_frame(black_box(dreadlock), &limits) {
            Parsed::Complete {
                value: Frame::Dreadlock(line),
                ..
            } => parse_dreadlock(line).ok(),
            _ => None,
        })
    });

    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = bench_frames
}
criterion_main!(benches);
