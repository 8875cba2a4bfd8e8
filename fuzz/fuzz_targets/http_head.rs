//! The HTTP/1.1 request-head parser (http.md §3): no panic, a complete head
//! consumes at most the buffer and at most the head limit, and a strict
//! prefix of a complete head is never complete with another length.
#![no_main]

use dflockd::http::parse::{HeadLimits, HeadParse, parse_head};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for limits in [
        HeadLimits::default(),
        HeadLimits {
            max_head_bytes: 64,
            max_headers: 2,
            max_body_bytes: 16,
        },
    ] {
        if let HeadParse::Complete { consumed, .. } = parse_head(data, &limits) {
            assert!(consumed <= data.len() && consumed <= limits.max_head_bytes);
            if consumed > 0 {
                let prefix = parse_head(&data[..consumed - 1], &limits);
                assert!(!matches!(prefix, HeadParse::Complete { .. }));
            }
        }
    }
});
