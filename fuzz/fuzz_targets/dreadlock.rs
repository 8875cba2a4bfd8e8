//! The Dreadlock line parser (protocol.md §9): no panic; accepted keys are
//! 1..=256 alphanumeric bytes.
#![no_main]

use dflockd::protocol::dreadlock::{DreadlockRequest, parse_dreadlock};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = match parse_dreadlock(data) {
        Ok(DreadlockRequest::Lock { key, .. }) | Ok(DreadlockRequest::Unlock { key }) => key,
        Err(_) => return,
    };
    assert!((1..=256).contains(&key.len()));
    assert!(key.bytes().all(|b| b.is_ascii_alphanumeric()));
});
