//! The memory budget through the state's commands (protocol.md §7.4a): what
//! is refused, in which order, that a refusal changes nothing, that the way
//! back is never refused, and that every family credits exactly what it
//! charged (the total returns to zero once everything is gone).

use super::fence::Fences;
use super::{Cx, Out, Outcome, State, StateConfig};
use crate::owner::OwnerId;
use crate::protocol::command::{Command, CommandLimits};
use crate::timer::Timer;
use crate::timer::wheel::Wheel;

struct Rig {
    state: State,
    wheel: Wheel<Timer>,
    out: Vec<Out>,
    now: u64,
}

fn config(max_memory: u64, max_keys: u64) -> StateConfig {
    StateConfig {
        max_locks: 1024,
        max_keys,
        max_list_length: 3,
        max_subscriptions: 8,
        max_memory,
        gc_max_idle_ms: 0,
        ..StateConfig::unlimited()
    }
}

impl Rig {
    fn new(max_memory: u64, max_keys: u64) -> Rig {
        let fences = Fences::open(None, 1).expect("fences without a state file");
        let mut state = State::new(config(max_memory, max_keys), fences);
        for slot in 0..8 {
            state.on_connect(conn(slot), u64::from(slot) + 1);
        }
        Rig {
            state,
            wheel: Wheel::new(0),
            out: Vec::new(),
            now: 0,
        }
    }

    fn with<R>(&mut self, f: impl FnOnce(&mut State, &mut Cx) -> R) -> R {
        let can_take = |_: OwnerId, _: usize| true;
        let mut cx = Cx {
            now: self.now,
            timers: &mut self.wheel,
            out: &mut self.out,
            can_take: &can_take,
        };
        f(&mut self.state, &mut cx)
    }

    /// One request as on the wire; the reply line without its LF, or `parked`.
    fn req(&mut self, c: OwnerId, cmd: &str, key: &str, arg: &str) -> String {
        let limits = CommandLimits {
            max_value_bytes: 65536,
        };
        let cmd = Command::from_raw(cmd.as_bytes(), key.as_bytes(), arg.as_bytes(), &limits)
            .unwrap_or_else(|e| panic!("{cmd} {key} {arg}: {e:?}"));
        self.apply(c, cmd)
    }

    fn apply(&mut self, c: OwnerId, cmd: Command) -> String {
        match self.with(|s, cx| s.apply(cx, c, cmd)) {
            Outcome::Park => "parked".into(),
            Outcome::Reply(r) => {
                let mut v = Vec::new();
                r.encode(&mut v);
                String::from_utf8(v)
                    .expect("replies are text")
                    .trim_end()
                    .into()
            }
        }
    }

    /// Advance the clock and fire what is due.
    fn advance(&mut self, ms: u64) {
        self.now += ms;
        while let Some((_, t)) = self.wheel.poll(self.now) {
            self.with(|s, cx| s.on_timer(cx, t));
        }
    }

    fn gc(&mut self) {
        self.with(|s, cx| s.on_timer(cx, Timer::Gc));
    }

    fn disconnect(&mut self, c: OwnerId) {
        self.with(|s, cx| s.on_disconnect(cx, c));
    }

    fn used(&self) -> u64 {
        self.state.mem.used()
    }

    /// Fill the budget with KV entries until one is refused.
    fn fill(&mut self) {
        for i in 0.. {
            let r = self.req(conn(0), "kset", &format!("fill{i}"), &"x".repeat(200));
            if r == "error_max_memory" {
                return;
            }
            assert_eq!(r, "ok");
        }
    }
}

fn conn(slot: u32) -> OwnerId {
    OwnerId::conn(slot as usize, 0)
}

fn token(reply: &str) -> String {
    reply
        .split(' ')
        .nth(1)
        .expect("a grant has a token")
        .to_owned()
}

const REFUSED: &str = "error_max_memory";

#[test]
fn every_write_of_7_4a_is_refused_at_the_budget_and_changes_nothing() {
    let mut r = Rig::new(16 * 1024, 0);
    let c = conn(1);
    // Things that exist before the budget fills.
    assert_eq!(r.req(c, "kset", "kv", "12345"), "ok");
    assert_eq!(r.req(c, "rpush", "list", "a"), "ok 1");
    assert_eq!(r.req(c, "incr", "ctr", "1"), "ok 1");
    assert_eq!(r.req(c, "listen", "a.b", ""), "ok");
    r.fill();
    assert!(r.state.mem.is_full());
    let used = r.used();
    let refusals = r.state.mem.refusals();
    // The document minus the totals, which count requests.
    let doc = |r: &Rig| {
        let mut d = r.state.stats_json(r.now);
        d["server"]["totals"] = serde_json::Value::Null;
        d
    };
    let before = doc(&r);
    for (cmd, key, arg) in [
        ("kset", "new", "v"),
        ("kset", "kv", "123456"),
        ("kcas", "new", "\tv\t0"),
        ("kcas", "kv", "12345\t123456\t0"),
        ("lpush", "list", "b"),
        ("rpush", "list", "b"),
        ("rpush", "newlist", "b"),
        ("incr", "newctr", "1"),
        ("decr", "newctr", "1"),
        ("cset", "newctr", "5"),
        ("blpop", "newlist", "5"),
        ("brpop", "newlist", "5"),
        ("bwait", "bar", "2 5"),
        ("listen", "x.y", ""),
        ("listen", "x.y", "grp"),
        ("watch", "x.>", ""),
        ("observe", "leader", ""),
    ] {
        assert_eq!(r.req(c, cmd, key, arg), REFUSED, "{cmd} {key} {arg}");
    }
    assert_eq!(r.used(), used, "a refusal charges nothing");
    assert_eq!(doc(&r), before, "a refusal changes nothing");
    assert_eq!(r.state.mem.refusals(), refusals + 17);
    assert!(r.wheel.poll_at().is_none(), "no timer was armed");

    // What does not add is never refused.
    assert_eq!(r.req(c, "kset", "kv", "54321"), "ok", "same size");
    assert_eq!(r.req(c, "kset", "kv", "123"), "ok", "smaller");
    assert_eq!(r.req(c, "kcas", "kv", "123\t12\t0"), "ok");
    assert_eq!(r.req(c, "incr", "ctr", "1"), "ok 2", "existing counter");
    assert_eq!(r.req(c, "cset", "ctr", "7"), "ok");
    assert_eq!(r.req(c, "listen", "a.b", ""), "ok", "a repeat");
    assert_eq!(
        r.req(c, "blpop", "newlist", "0"),
        "nil",
        "a try never parks"
    );
    assert_eq!(r.req(c, "bwait", "solo", "1 0"), "ok", "completes at once");
}

#[test]
fn earlier_conditions_come_first() {
    // --max-keys 2 and a full budget: the key limit answers first (§7.6).
    let mut r = Rig::new(4096, 0);
    let c = conn(1);
    assert_eq!(r.req(c, "rpush", "list", "a"), "ok 1");
    assert_eq!(r.req(c, "rpush", "list", "b"), "ok 2");
    assert_eq!(r.req(c, "rpush", "list", "c"), "ok 3");
    assert_eq!(r.req(c, "kset", "kv", "old"), "ok");
    r.fill();
    assert_eq!(r.req(c, "rpush", "list", "d"), "error_list_full");
    assert_eq!(r.req(c, "kcas", "kv", "wrong\tnewvalue\t0"), "cas_conflict");
    for i in 0..8 {
        let reply = r.req(conn(2), "watch", &format!("w{i}"), "");
        assert_eq!(reply, REFUSED);
    }
    r.state.cfg.max_keys = 1;
    assert_eq!(r.req(c, "kset", "other", "v"), "error_max_keys");
    assert_eq!(r.req(c, "incr", "other", "1"), "error_max_keys");
    // A full subscription quota answers before the budget.
    r.state.cfg.max_subscriptions = 0;
    let mut quota = Rig::new(4096, 0);
    quota.state.cfg.max_subscriptions = 1;
    assert_eq!(quota.req(c, "watch", "one", ""), "ok");
    quota.fill();
    assert_eq!(quota.req(c, "watch", "two", ""), "error_max_subscriptions");
}

#[test]
fn locks_reads_pops_and_deletes_are_never_refused() {
    let mut r = Rig::new(32 * 1024, 0);
    let (a, b) = (conn(1), conn(2));
    assert_eq!(r.req(a, "rpush", "jobs", "j1"), "ok 1");
    assert_eq!(r.req(a, "rpush", "jobs", "j2"), "ok 2");
    assert_eq!(r.req(a, "kset", "k", "v"), "ok");
    assert_eq!(r.req(a, "watch", "k", ""), "ok");
    r.fill();
    // Every lock-family command: grants, queues, renewals, releases.
    let t = token(&r.req(a, "l", "lock", "0"));
    assert_eq!(r.req(b, "l", "lock", "5"), "parked");
    assert!(r.req(a, "n", "lock", &t).starts_with("ok "));
    assert_eq!(r.req(a, "r", "lock", &t), "ok");
    assert!(matches!(r.out.pop(), Some(Out::Reply { .. })), "b got it");
    let st = token(&r.req(a, "sl", "sem", "0 2"));
    assert!(r.req(b, "sl", "sem", "0 2").starts_with("ok "));
    assert_eq!(r.req(a, "sr", "sem", &st), "ok");
    assert!(r.req(a, "e", "two", "").starts_with("acquired "));
    assert_eq!(r.req(b, "e", "two", ""), "queued");
    assert!(r.req(a, "rl", "rw", "0").starts_with("ok "));
    assert!(r.req(b, "rl", "rw", "0").starts_with("ok "));
    assert!(r.req(a, "elect", "lead", "0").starts_with("ok "));
    let dread = r.apply(
        a,
        Command::DreadLock {
            key: "d".into(),
            timeout_ms: 0,
        },
    );
    assert_eq!(dread, "l locked");
    // Reads, pops, deletes, unsubscribes and the rest.
    assert_eq!(r.req(a, "kget", "k", ""), "ok v");
    assert_eq!(r.req(a, "get", "ctr", ""), "ok 0");
    assert_eq!(r.req(a, "llen", "jobs", ""), "ok 2");
    assert_eq!(r.req(a, "lrange", "jobs", "0 -1"), r#"ok ["j1","j2"]"#);
    assert_eq!(r.req(a, "unwatch", "k", ""), "ok");
    assert_eq!(r.req(a, "unobserve", "lead", ""), "ok");
    assert_eq!(r.req(a, "ping", "_", ""), "ok");
    assert_eq!(r.req(a, "signal", "ch", "hello"), "ok 0");
    assert!(r.req(a, "stats", "_", "").starts_with("ok {"));
    assert_eq!(r.req(a, "lpop", "jobs", ""), "ok j1");
    assert_eq!(r.req(a, "brpop", "jobs", "5"), "ok j2");
    assert!(r.state.mem.is_full());
    assert_eq!(r.req(a, "kset", "more", "v"), REFUSED);
    // Deleting makes room: writes succeed again.
    for i in 0..8 {
        assert_eq!(r.req(a, "kdel", &format!("fill{i}"), ""), "ok");
    }
    assert!(!r.state.mem.is_full());
    assert_eq!(r.req(a, "kset", "more", "v"), "ok");
}

#[test]
fn a_push_handed_to_a_blocked_popper_is_never_refused() {
    let mut r = Rig::new(16 * 1024, 0);
    assert_eq!(r.req(conn(2), "blpop", "q", "30"), "parked");
    r.fill();
    assert_eq!(r.req(conn(1), "rpush", "q", "job"), "ok 0");
    assert!(matches!(r.out.pop(), Some(Out::Reply { conn: c, .. }) if c == conn(2)));
    r.fill();
    assert_eq!(
        r.req(conn(1), "rpush", "q", "job"),
        REFUSED,
        "now it would be held"
    );
}

#[test]
fn undoing_a_pop_is_never_refused() {
    let mut r = Rig::new(16 * 1024, 0);
    assert_eq!(r.req(conn(1), "rpush", "q", "job"), "ok 1");
    r.fill();
    assert_eq!(r.req(conn(1), "lpop", "q", ""), "ok job");
    r.fill();
    let push = Command::Push {
        end: crate::protocol::command::End::Left,
        key: "q".into(),
        value: "job".into(),
    };
    let undo = r.with(|s, cx| s.apply_undo(cx, conn(1), push.clone()));
    assert!(matches!(undo, Outcome::Reply(_)));
    assert_eq!(r.req(conn(1), "llen", "q", ""), "ok 1");
    assert_eq!(r.apply(conn(1), push), REFUSED, "an ordinary push still is");
}

#[test]
fn every_family_gives_back_exactly_what_it_was_charged() {
    let mut r = Rig::new(0, 0);
    let (a, b, c) = (conn(1), conn(2), conn(3));
    // KV: create, grow, shrink, TTL on and off, expiry, cas, delete.
    r.req(a, "kset", "k1", "v");
    r.req(a, "kset", "k1", &"v".repeat(5000));
    r.req(a, "kset", "k1", "short\t10");
    r.req(a, "kset", "k2", "x\t1");
    r.req(a, "kcas", "k3", "\tnew\t0");
    r.req(a, "kcas", "k3", "new\tnewer\t5");
    // Lists: pushes, pops, a hand-off, a blocked pop that times out.
    for i in 0..3 {
        r.req(a, "rpush", "l1", &format!("item{i}"));
    }
    r.req(a, "lpop", "l1", "");
    // (A parked connection sends nothing more: each wait has its own.)
    assert_eq!(r.req(conn(5), "blpop", "l2", "30"), "parked");
    r.req(a, "lpush", "l2", "handed");
    assert_eq!(r.req(conn(4), "brpop", "l3", "1"), "parked");
    // Counters, barriers (one completes, one is abandoned).
    r.req(a, "incr", "c1", "1");
    r.req(a, "cset", "c2", "0");
    assert_eq!(r.req(conn(7), "bwait", "b1", "2 30"), "parked");
    assert_eq!(r.req(b, "bwait", "b1", "2 30"), "ok");
    assert_eq!(r.req(conn(0), "bwait", "b2", "3 30"), "parked");
    // Subscriptions: patterns sharing nodes, groups, watches, observers.
    r.req(a, "listen", "orders.*", "");
    r.req(b, "listen", "orders.*", "");
    r.req(b, "listen", "orders.>", "billing");
    r.req(c, "listen", "orders.>", "billing");
    r.req(a, "watch", "k1", "");
    r.req(b, "watch", "k.>", "");
    r.req(a, "observe", "lead", "");
    r.req(b, "observe", "lead", "");
    // Locks: queues, semaphore holders, two-phase enqueues, an expiry.
    let t = token(&r.req(a, "l", "lock", "0 1"));
    assert_eq!(r.req(conn(6), "l", "lock", "30"), "parked");
    r.req(a, "sl", "sem", "0 3");
    r.req(b, "sl", "sem", "0 3");
    r.req(c, "sl", "sem", "0 3");
    r.req(a, "e", "two", "");
    r.req(c, "e", "two", "");
    r.req(a, "rl", "rw", "0");
    r.req(b, "rl", "rw", "0");
    let lt = token(&r.req(a, "elect", "lead", "0"));
    assert!(r.used() > 5_000, "{}", r.used());

    // Let timers run: the lease of `lock` expires (conn 6 is granted), k2
    // expires, the blocked brpop times out.
    r.advance(2_000);
    assert_eq!(r.req(a, "r", "lock", &t), "error");
    // Undo everything.
    r.req(a, "resign", "lead", &lt);
    for k in ["k1", "k3"] {
        r.req(a, "kdel", k, "");
    }
    r.req(a, "lpop", "l1", "");
    r.req(a, "lpop", "l1", "");
    r.req(a, "cset", "c1", "0");
    r.req(a, "unlisten", "orders.*", "");
    r.req(b, "unlisten", "orders.>", "billing");
    r.req(a, "unwatch", "k1", "");
    r.req(a, "unobserve", "lead", "");
    for slot in 0..8 {
        r.disconnect(conn(slot));
    }
    r.gc();
    assert_eq!(
        r.state.stats_json(r.now)["kv_entries"],
        serde_json::json!([])
    );
    // Contention statistics are kept for the life of the process: the two
    // keys that had waiters stay charged, and nothing else does.
    let tracked = super::contention::tracked_key_bytes("lock".len())
        + super::contention::tracked_key_bytes("two".len());
    assert_eq!(r.state.contention.len(), 2);
    assert_eq!(
        r.used(),
        tracked as u64,
        "every charge was credited: {}",
        r.state.stats_json(r.now)
    );
}
