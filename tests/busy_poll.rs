//! `--busy-poll-us`: the loop polls without sleeping for a short window after
//! traffic. What must hold whatever the window: hand-offs stay FIFO and
//! correct, and once the traffic stops the server sleeps (no CPU while idle).

use crate::common;

use common::{Server, token_of};
use std::thread;
use std::time::Duration;

/// utime + stime of a process in clock ticks (fields 14 and 15 of
/// /proc/PID/stat, counted from after the command name's closing paren).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    let rest = &stat[stat.rfind(')').expect("stat has a command name") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// Two workers hand one key back and forth `rounds` times.
fn hand_offs(server: &Server, key: &str, rounds: usize) {
    let mut a = server.client();
    let mut b = server.client();
    let mut token = token_of(&a.req("l", key, "10"));
    for _ in 0..rounds {
        b.send_req("l", key, "10");
        assert_eq!(a.req("r", key, &token), "ok");
        token = token_of(&b.line());
        a.send_req("l", key, "10");
        assert_eq!(b.req("r", key, &token), "ok");
        token = token_of(&a.line());
    }
    assert_eq!(a.req("r", key, &token), "ok");
}

#[test]
fn idle_after_traffic_costs_no_cpu() {
    // The largest window, so a spin that failed to stop would show clearly.
    let server = Server::start(&["--busy-poll-us", "10000"]);
    hand_offs(&server, "busy", 500);
    // Connections stay open (idle, not closed): their sockets must not keep
    // the loop awake either.
    let _idle = (server.client(), server.client());
    thread::sleep(Duration::from_millis(100));
    let before = cpu_ticks(server.pid());
    thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(server.pid()) - before;
    // A loop that kept spinning would use ~200 ticks (100 per second).
    assert!(used <= 2, "{used} CPU ticks in 2 idle seconds");
}

#[test]
fn hand_offs_are_correct_with_busy_polling_off_and_on() {
    for window in ["0", "1", "50"] {
        let server = Server::start(&["--busy-poll-us", window]);
        hand_offs(&server, "k", 200);
    }
}
