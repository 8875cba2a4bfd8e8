//! The checkers. Every claim is made from recorded client times only, and
//! each recorded interval contains the server's real one, so a reported
//! violation is a real one:
//! - a grant is certainly held from when its token arrived until the client
//!   sent its release (or dropped its connection), and at most until its
//!   lease lower bound (last successful restart's invoke + lease);
//! - mutual exclusion: certainly-held intervals of one key never overlap
//!   (exclusive), at most `limit` overlap (semaphore), a writer's overlaps
//!   nothing (read-write);
//! - fencing order is grant order: a grant whose token arrived before another
//!   was even requested has the smaller fence (across all keys: one counter);
//! - FIFO: of two granted requests on one key, the one whose enqueue was
//!   acknowledged before the other was sent has the smaller fence;
//! - counters and KV: the history is linearizable (a Wing & Gong search with
//!   a memo, over stateright `SequentialSpec` models), requests without a
//!   reply being in flight forever.

use super::client::Ns;
use super::workload::{Hold, Kind, Mode, RegOp};
use stateright::semantics::SequentialSpec;
use std::collections::BTreeMap;

/// How much earlier than "invoke + lease" a lease may end. The server reads
/// its clock once per loop iteration, so a grant made late in a busy
/// iteration is stamped with the iteration's start (protocol.md §2.9 measures
/// from the clock reading); 25 ms bounds that on a loaded test machine, and a
/// larger overlap is reported.
pub const LEASE_SLACK_NS: Ns = 25_000_000;

fn certain_end(h: &Hold) -> Ns {
    let lb = h.lease_lb.saturating_sub(LEASE_SLACK_NS);
    h.end.map_or(lb, |e| e.min(lb))
}

fn ms(ns: Ns) -> f64 {
    ns as f64 / 1e6
}

fn show(h: &Hold) -> String {
    format!(
        "client {} {:?} fence {} enq [{:.3},{:.3}] held [{:.3},{:.3}] ms{}",
        h.client,
        h.mode,
        h.fence,
        ms(h.enq.0),
        ms(h.enq.1),
        ms(h.t_grant),
        ms(certain_end(h)),
        if h.lapsed { " (lapsed)" } else { "" }
    )
}

/// Mutual exclusion per key, by a sweep over certainly-held intervals.
pub fn mutual_exclusion(holds: &[Hold], kind: Kind) -> Result<(), String> {
    let mut by_key: BTreeMap<&str, Vec<&Hold>> = BTreeMap::new();
    for h in holds {
        by_key.entry(&h.key).or_default().push(h);
    }
    for (key, hs) in by_key {
        // (time, 0 = end / 1 = start, index): ends first at equal times.
        let mut ev: Vec<(Ns, u8, usize)> = Vec::new();
        for (i, h) in hs.iter().enumerate() {
            let end = certain_end(h);
            if h.t_grant < end {
                ev.push((h.t_grant, 1, i));
                ev.push((end, 0, i));
            }
        }
        ev.sort_unstable();
        let mut active: Vec<usize> = Vec::new();
        for (_, what, i) in ev {
            if what == 0 {
                active.retain(|&a| a != i);
                continue;
            }
            let h = hs[i];
            let clash = match kind {
                Kind::Sem(limit) => active.len() >= limit as usize,
                Kind::Rw => {
                    (h.mode == Mode::Write && !active.is_empty())
                        || active.iter().any(|&a| hs[a].mode == Mode::Write)
                }
                _ => !active.is_empty(),
            };
            if clash {
                let others: Vec<String> = active.iter().map(|&a| show(hs[a])).collect();
                return Err(format!(
                    "mutual exclusion on {key}: {} granted while held by {}",
                    show(h),
                    others.join("; ")
                ));
            }
            active.push(i);
        }
    }
    Ok(())
}

/// Fences are unique, and a grant seen before another was requested has the
/// smaller fence. `holds` may span every history run against one server.
pub fn fence_order(holds: &[&Hold]) -> Result<(), String> {
    let mut v: Vec<&Hold> = holds.to_vec();
    v.sort_unstable_by_key(|h| std::cmp::Reverse(h.fence));
    for w in v.windows(2) {
        if w[0].fence == w[1].fence {
            return Err(format!(
                "fence {} issued twice: {} / {}",
                w[0].fence,
                show(w[0]),
                show(w[1])
            ));
        }
    }
    // Descending fences: `first` is the larger-fenced grant seen earliest.
    let mut first: Option<&Hold> = None;
    for h in v {
        if let Some(a) = first {
            if a.t_grant < h.enq.0 {
                return Err(format!(
                    "fence order: {} had its token before {} was requested, yet a larger fence",
                    show(a),
                    show(h)
                ));
            }
        }
        if first.is_none_or(|a| h.t_grant < a.t_grant) {
            first = Some(h);
        }
    }
    Ok(())
}

/// FIFO per key: an enqueue acknowledged before another was sent is granted first.
pub fn fifo(holds: &[Hold]) -> Result<(), String> {
    let mut by_key: BTreeMap<&str, Vec<&Hold>> = BTreeMap::new();
    for h in holds {
        by_key.entry(&h.key).or_default().push(h);
    }
    for (key, mut hs) in by_key {
        hs.sort_unstable_by_key(|h| std::cmp::Reverse(h.fence));
        let mut first: Option<&Hold> = None;
        for h in hs {
            if let Some(a) = first {
                if a.enq.1 < h.enq.0 {
                    return Err(format!(
                        "FIFO on {key}: {} queued before {} was sent, but was granted after it",
                        show(a),
                        show(h)
                    ));
                }
            }
            if first.is_none_or(|a| h.enq.1 < a.enq.1) {
                first = Some(h);
            }
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ registers

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct CounterSpec(i64);

#[derive(Clone, Debug)]
pub enum CounterOp {
    Add(i64),
    Get,
    Set(i64),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Ret {
    Ok,
    Int(i64),
    Val(Option<String>),
    Conflict,
    Error,
}

impl SequentialSpec for CounterSpec {
    type Op = CounterOp;
    type Ret = Ret;

    fn invoke(&mut self, op: &CounterOp) -> Ret {
        match op {
            CounterOp::Add(d) => match self.0.checked_add(*d) {
                Some(v) => {
                    self.0 = v;
                    Ret::Int(v)
                }
                None => Ret::Error,
            },
            CounterOp::Get => Ret::Int(self.0),
            CounterOp::Set(v) => {
                self.0 = *v;
                Ret::Ok
            }
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KvSpec(Option<String>);

#[derive(Clone, Debug)]
pub enum KvOp {
    Set(String),
    Get,
    Del,
    /// (old, new); an empty old means "must not exist".
    Cas(String, String),
}

impl SequentialSpec for KvSpec {
    type Op = KvOp;
    type Ret = Ret;

    fn invoke(&mut self, op: &KvOp) -> Ret {
        match op {
            KvOp::Set(v) => {
                self.0 = Some(v.clone());
                Ret::Ok
            }
            KvOp::Get => Ret::Val(self.0.clone()),
            KvOp::Del => {
                self.0 = None;
                Ret::Ok
            }
            KvOp::Cas(old, new) => {
                let matches = if old.is_empty() {
                    self.0.is_none()
                } else {
                    self.0.as_deref() == Some(old.as_str())
                };
                if matches {
                    self.0 = Some(new.clone());
                    Ret::Ok
                } else {
                    Ret::Conflict
                }
            }
        }
    }
}

fn parse_ret(reply: &str) -> Ret {
    match reply {
        "ok" => Ret::Ok,
        "nil" => Ret::Val(None),
        "cas_conflict" => Ret::Conflict,
        "error" => Ret::Error,
        _ => match reply.strip_prefix("ok ") {
            Some(rest) => match rest.parse() {
                Ok(n) => Ret::Int(n),
                Err(_) => Ret::Val(Some(rest.to_string())),
            },
            None => Ret::Error,
        },
    }
}

/// Whether `ops` (each its own client's, with recorded invoke and return
/// times; no return = in flight forever) are linearizable with respect to
/// the sequential `spec`: Wing & Gong's search for a legal order that
/// respects real time, with Lowe's memo of configurations already tried
/// (the set of operations linearized, the object's state), as Porcupine
/// does. stateright's `LinearizabilityTester` searches the same space
/// without the memo, which is exponential on the concurrent histories a
/// loaded machine produces (a history of 40 operations ran for minutes).
fn linearizable_wgl<S>(init: S, ops: &[RegOp], op_of: impl Fn(&RegOp) -> S::Op) -> bool
where
    S: SequentialSpec<Ret = Ret> + Clone + Eq + std::hash::Hash,
{
    assert!(
        ops.len() <= 64,
        "the search keys configurations by a u64 mask"
    );
    let calls: Vec<S::Op> = ops.iter().map(op_of).collect();
    let rets: Vec<Option<Ret>> = ops
        .iter()
        .map(|o| o.reply.as_deref().map(parse_ret))
        .collect();
    // A recorded return is after the real one and a recorded invoke before
    // it, so `ret(p) <= inv(o)` proves p came first.
    let inv: Vec<Ns> = ops.iter().map(|o| o.t_inv).collect();
    let ret: Vec<Ns> = ops.iter().map(|o| o.t_ret.unwrap_or(Ns::MAX)).collect();
    let completed: u64 = (0..ops.len())
        .filter(|&i| ops[i].t_ret.is_some())
        .fold(0, |m, i| m | 1 << i);
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![(0u64, init)];
    while let Some((done, state)) = stack.pop() {
        if done & completed == completed {
            return true;
        }
        if !seen.insert((done, state.clone())) {
            continue;
        }
        let open: Vec<usize> = (0..ops.len()).filter(|&i| done & (1 << i) == 0).collect();
        for &i in &open {
            // Next only if no other open operation returned before it began.
            if open.iter().any(|&p| p != i && ret[p] <= inv[i]) {
                continue;
            }
            let mut next = state.clone();
            let got = next.invoke(&calls[i]);
            if rets[i].as_ref().is_some_and(|r| *r != got) {
                continue;
            }
            stack.push((done | 1 << i, next));
        }
    }
    false
}

fn check<S>(spec: S, ops: &[RegOp], op_of: impl Fn(&RegOp) -> S::Op) -> Result<(), String>
where
    S: SequentialSpec<Ret = Ret> + Clone + Eq + std::hash::Hash,
{
    if linearizable_wgl(spec, ops, op_of) {
        return Ok(());
    }
    let mut sorted: Vec<&RegOp> = ops.iter().collect();
    sorted.sort_by_key(|o| o.t_inv);
    let lines: Vec<String> = sorted
        .iter()
        .map(|o| {
            format!(
                "  client {} [{:.3} – {}] {} {:?} -> {:?}",
                o.client,
                ms(o.t_inv),
                o.t_ret.map_or("never".into(), |t| format!("{:.3}", ms(t))),
                o.cmd,
                o.arg,
                o.reply
            )
        })
        .collect();
    Err(format!("not linearizable:\n{}", lines.join("\n")))
}

pub fn linearizable(kind: Kind, ops: &[RegOp]) -> Result<(), String> {
    match kind {
        Kind::Counter => check(CounterSpec::default(), ops, |o| {
            let n: i64 = o.arg.parse().unwrap_or(0);
            match o.cmd.as_str() {
                "incr" => CounterOp::Add(n),
                "decr" => CounterOp::Add(-n),
                "get" => CounterOp::Get,
                _ => CounterOp::Set(n),
            }
        }),
        _ => check(KvSpec::default(), ops, |o| match o.cmd.as_str() {
            "kset" => KvOp::Set(o.arg.clone()),
            "kget" => KvOp::Get,
            "kdel" => KvOp::Del,
            _ => {
                let mut p = o.arg.split('\t');
                let old = p.next().unwrap_or("").to_string();
                let new = p.next().unwrap_or("").to_string();
                KvOp::Cas(old, new)
            }
        }),
    }
}
