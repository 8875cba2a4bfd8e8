//! The three-line framer (protocol.md §2.1, §2.2): no panic, every complete
//! frame consumes 1..=len bytes, no line longer than its limit is accepted,
//! and a prefix that is decided decides the whole buffer the same way.
#![no_main]

use dflockd::protocol::line::{Frame, parse_frame};
use dflockd::protocol::{LineLimits, Parsed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks small limits, so limit paths are reached quickly.
    let (limits, buf) = match data.split_first() {
        Some((&b, rest)) if b & 1 == 1 => (
            LineLimits {
                max_line: (b >> 1) as usize % 16,
                max_auth_arg: (b >> 1) as usize % 16 + 4,
                max_value_arg: (b >> 1) as usize % 16 + 8,
            },
            rest,
        ),
        _ => (LineLimits::for_value_bytes(65536), data),
    };
    let whole = parse_frame(buf, &limits);
    if let Parsed::Complete { consumed, .. } = &whole {
        assert!((1..=buf.len()).contains(consumed));
    }
    let k = buf.len() / 2;
    let part = parse_frame(&buf[..k], &limits);
    if part != Parsed::Incomplete {
        assert_eq!(part, whole);
    }
    let mut rest = buf;
    while let Parsed::Complete { value, consumed } = parse_frame(rest, &limits) {
        assert!((1..=rest.len()).contains(&consumed));
        if let Frame::Request { cmd, key, .. } = value {
            assert!(cmd.len() <= limits.max_line && key.len() <= limits.max_line);
        }
        rest = &rest[consumed..];
    }
});
