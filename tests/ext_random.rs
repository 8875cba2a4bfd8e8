//! Seeded random commands (fixed-seed xorshift, so a failure replays) mixing
//! the §8.15 extensions — `opt` with good and bad names and values, `pos`,
//! `who` — with the two-phase and try-lock commands of every lock type, over
//! several connections of a real server. Every reply must be one of the
//! documented forms, and `pos` (a Fenwick-tree rank) must agree with the
//! queue order `who` reports (a walk of the queue) after every step.

use crate::common;

use common::{Client, Server};
use serde_json::Value;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

const CLIENTS: usize = 5;
const STEPS: usize = 1500;
/// (key, acquire, release, enqueue, wait, acquire argument, enqueue argument)
const FAMILIES: &[(&str, &str, &str, &str, &str, &str, &str)] = &[
    ("x", "l", "r", "e", "w", "0 60", "60"),
    ("s", "sl", "sr", "se", "sw", "0 2 60", "2 60"),
    ("rw", "rl", "rr", "re", "rw", "0 60", "60"),
    ("rw", "wl", "wr", "we", "ww", "0 60", "60"),
];

fn is_grant(r: &str, word: &str) -> bool {
    let f: Vec<&str> = r.split(' ').collect();
    f[0] == word && (3..=4).contains(&f.len()) && f[1].len() == 32
}

fn token(r: &str) -> Option<String> {
    let f: Vec<&str> = r.split(' ').collect();
    (f.len() >= 3 && (f[0] == "ok" || f[0] == "acquired") && f[1].len() == 32)
        .then(|| f[1].to_string())
}

fn who(c: &mut Client, key: &str) -> Value {
    let r = c.req("who", key, "");
    let json = r
        .strip_prefix("ok ")
        .unwrap_or_else(|| panic!("who {key}: {r:?}"));
    serde_json::from_str(json).unwrap_or_else(|e| panic!("who {key}: {json}: {e}"))
}

#[test]
fn random_extension_commands_keep_their_documented_replies() {
    let s = Server::start(&[]);
    let mut rng = Rng(0x5EED_0E57_0000_0815);
    let mut cs: Vec<Client> = (0..CLIENTS).map(|_| s.client()).collect();
    let peers: Vec<String> = cs
        .iter()
        .map(|c| c.stream().local_addr().unwrap().to_string())
        .collect();
    // Tokens each client was granted, by key (releases may name stale ones).
    let mut tokens: Vec<Vec<(String, String)>> = vec![Vec::new(); CLIENTS];
    let mut all_tokens: Vec<String> = Vec::new();
    let mut positions_checked = 0;
    for step in 0..STEPS {
        let i = rng.below(CLIENTS);
        let &(key, acq, rel, enq, wait, acq_arg, enq_arg) = &FAMILIES[rng.below(FAMILIES.len())];
        let c = &mut cs[i];
        let what = rng.below(9);
        let (req, reply) = match what {
            0 => {
                let name = rng.pick(&["queue_position", "deadlock", "lease_notices", "bogus", ""]);
                let v = rng.pick(&["on", "off", "ON", "1", ""]);
                let r = c.req("opt", name, v);
                let valid = !matches!(name, "bogus" | "") && matches!(v, "on" | "off");
                assert_eq!(r, if valid { "ok" } else { "error" }, "opt {name} {v:?}");
                (format!("opt {name} {v}"), r)
            }
            1 => {
                let k = rng.pick(&[key, "none", "c"]);
                let r = c.req("pos", k, "");
                let ok = r == "error_not_enqueued"
                    || r.strip_prefix("ok ")
                        .is_some_and(|n| n.parse::<u32>().is_ok());
                assert!(ok, "pos {k}: {r:?}");
                (format!("pos {k}"), r)
            }
            2 => {
                let k = rng.pick(&[key, "none", "c"]);
                let doc = who(c, k);
                let text = doc.to_string();
                for t in &all_tokens {
                    assert!(!text.contains(&t[16..]), "who {k} shows a token: {text}");
                }
                ("who".into(), String::new())
            }
            3 | 4 => {
                let r = c.req(acq, key, acq_arg);
                if let Some(t) = token(&r) {
                    assert!(is_grant(&r, "ok"), "{acq}: {r:?}");
                    tokens[i].push((key.into(), t.clone()));
                    all_tokens.push(t);
                } else {
                    assert!(
                        matches!(
                            r.as_str(),
                            "timeout" | "error_type_mismatch" | "error_limit_mismatch"
                        ),
                        "{acq} {key}: {r:?}"
                    );
                }
                (format!("{acq} {key}"), r)
            }
            5 | 6 => {
                let r = c.req(enq, key, enq_arg);
                if let Some(t) = token(&r) {
                    assert!(is_grant(&r, "acquired"), "{enq}: {r:?}");
                    all_tokens.push(t);
                } else {
                    let queued = r == "queued"
                        || r.strip_prefix("queued ")
                            .is_some_and(|n| n.parse::<u32>().is_ok_and(|n| n >= 1));
                    assert!(
                        queued
                            || matches!(
                                r.as_str(),
                                "error_already_enqueued"
                                    | "error_type_mismatch"
                                    | "error_limit_mismatch"
                            ),
                        "{enq} {key}: {r:?}"
                    );
                }
                (format!("{enq} {key}"), r)
            }
            7 => {
                let r = c.req(wait, key, "0");
                if let Some(t) = token(&r) {
                    assert!(is_grant(&r, "ok"), "{wait}: {r:?}");
                    tokens[i].push((key.into(), t));
                } else {
                    assert!(
                        matches!(
                            r.as_str(),
                            "timeout" | "error_not_enqueued" | "error_lease_expired"
                        ),
                        "{wait} {key}: {r:?}"
                    );
                }
                (format!("{wait} {key}"), r)
            }
            _ => {
                let held: Vec<usize> = (0..tokens[i].len())
                    .filter(|&j| tokens[i][j].0 == key)
                    .collect();
                if held.is_empty() {
                    continue;
                }
                let (_, t) = tokens[i].swap_remove(held[rng.below(held.len())]);
                let r = c.req(rel, key, &t);
                assert!(matches!(r.as_str(), "ok" | "error"), "{rel}: {r:?}");
                (format!("{rel} {key}"), r)
            }
        };
        // Cross-check: every client's `pos` names its place in `who`'s queue.
        if step % 5 == 0 {
            let doc = who(&mut cs[0], key);
            let waiters = doc["waiters"].as_array().cloned().unwrap_or_default();
            for (j, c) in cs.iter_mut().enumerate() {
                let r = c.req("pos", key, "");
                let Some(p) = r.strip_prefix("ok ").and_then(|n| n.parse::<usize>().ok()) else {
                    continue;
                };
                if p == 0 {
                    continue;
                }
                positions_checked += 1;
                let w = waiters
                    .get(p - 1)
                    .unwrap_or_else(|| panic!("step {step} ({req} → {reply}): pos {p} past {doc}"));
                assert_eq!(
                    w["peer"], peers[j],
                    "step {step}: pos {p} of client {j} in {doc}"
                );
                assert_eq!(w["position"], p);
            }
        }
    }
    assert!(
        positions_checked > 50,
        "only {positions_checked} positions checked"
    );
    assert_eq!(cs[0].req("ping", "_", ""), "ok");
}
