//! Token parsing (protocol.md §6.1): only 32 lowercase hex bytes parse, and
//! what parses encodes back to the same bytes.
#![no_main]

use dflockd::state::fence::Token;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(t) = Token::parse(data) {
        assert_eq!(&t.encode()[..], data);
    }
});
