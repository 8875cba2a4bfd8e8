//! The typed command builder (protocol.md §3, §8): no panic on any three
//! lines, and an accepted command names the verb it was built from.
#![no_main]

use dflockd::protocol::command::{Command, CommandLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut lines = data.splitn(3, |&b| b == b'\n');
    let cmd = lines.next().unwrap_or_default();
    let key = lines.next().unwrap_or_default();
    let arg = lines.next().unwrap_or_default();
    for max_value_bytes in [0, 8, 65536] {
        let limits = CommandLimits { max_value_bytes };
        if let Ok(c) = Command::from_raw(cmd, key, arg, &limits) {
            assert_eq!(c.name().as_bytes(), cmd);
        }
    }
});
