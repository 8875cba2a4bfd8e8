//! What the clients of one history do. A history is planned from its seed
//! alone (kind, clients, keys, leases, fault), and each client then runs its
//! own seeded program, reacting to replies: acquire (blocking, try or
//! two-phase), hold briefly, maybe renew, release; or counter / KV
//! operations. The faulty client of a faulty history pauses past its lease,
//! is killed mid-hold, or resets its connection mid-request.

use super::client::{Client, Event, Ns};
use super::verify::LEASE_SLACK_NS;
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

/// Deterministic xorshift64 (seeded; the seed is printed on failure).
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // Never zero (xorshift's fixed point), and decorrelated from the seed.
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Lock,
    Sem(u32),
    Rw,
    Counter,
    Kv,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Stop sending past the lease while holding, then try to renew and release.
    Pause,
    /// Drop the connection mid-hold (or mid-request for registers).
    Kill,
    /// Reset the connection (SO_LINGER 0) with a request outstanding.
    Reset,
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub seed: u64,
    pub kind: Kind,
    pub clients: usize,
    pub ops: usize,
    pub keys: Vec<String>,
    pub fault: Fault,
    /// The client that suffers the fault, and at which of its steps.
    pub faulty: usize,
    pub fault_step: usize,
    pub lease_s: u64,
    pub wait_s: u64,
    /// Which clients use the HTTP API (with a session) instead of TCP.
    pub http: Vec<bool>,
}

/// Where the server listens.
#[derive(Clone, Copy, Debug)]
pub struct Addrs {
    pub tcp: SocketAddr,
    pub http: Option<SocketAddr>,
}

impl Plan {
    /// The plan of history `seed`; with `http`, about a quarter of the
    /// clients use the HTTP API.
    pub fn new(seed: u64, http: bool) -> Plan {
        let mut rng = Rng::new(seed);
        let kind = match rng.below(10) {
            0..=2 => Kind::Lock,
            3 => Kind::Sem(2 + rng.below(2) as u32),
            4..=5 => Kind::Rw,
            6..=7 => Kind::Counter,
            _ => Kind::Kv,
        };
        let fault = match rng.below(20) {
            0..=1 => Fault::Pause,
            2..=4 => Fault::Kill,
            5..=7 => Fault::Reset,
            _ => Fault::None,
        };
        let clients = 4 + rng.below(5) as usize;
        let registers = matches!(kind, Kind::Counter | Kind::Kv);
        let ops = if registers {
            3 + rng.below(4) as usize
        } else {
            2 + rng.below(4) as usize
        };
        let nkeys = if registers {
            1
        } else {
            1 + rng.below(2) as usize
        };
        let keys = (0..nkeys).map(|k| format!("h{seed:x}-{k}")).collect();
        // A pause outlives a 1 s lease; the others release long before 3 s.
        let lease_s = if fault == Fault::Pause { 1 } else { 3 };
        let faulty = rng.below(clients as u64) as usize;
        let fault_step = rng.below(ops as u64) as usize;
        Plan {
            seed,
            kind,
            clients,
            ops,
            keys,
            fault,
            faulty,
            fault_step,
            lease_s,
            wait_s: 3,
            http: (0..clients).map(|_| http && rng.chance(25)).collect(),
        }
    }

    fn registers(&self) -> bool {
        matches!(self.kind, Kind::Counter | Kind::Kv)
    }
}

/// The slot a grant is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Excl,
    Sem,
    Read,
    Write,
}

/// One grant, as its client saw it.
#[derive(Clone, Debug)]
pub struct Hold {
    pub client: usize,
    pub key: String,
    pub mode: Mode,
    pub fence: u64,
    /// The request that put it in the queue: invoked, answered (or granted).
    pub enq: (Ns, Ns),
    /// When the client had its token.
    pub t_grant: Ns,
    /// The server's lease deadline is at or after this.
    pub lease_lb: Ns,
    /// When the client released (invoked `r`) or dropped its connection.
    pub end: Option<Ns>,
    /// Ended by its lease (the client paused past it).
    pub lapsed: bool,
}

/// A counter or KV operation for the linearizability check.
#[derive(Clone, Debug)]
pub struct RegOp {
    pub client: usize,
    pub t_inv: Ns,
    /// `None` if the client never saw the reply.
    pub t_ret: Option<Ns>,
    pub cmd: String,
    pub arg: String,
    pub reply: Option<String>,
}

/// What one client produced.
#[derive(Default)]
pub struct ClientOut {
    pub holds: Vec<Hold>,
    pub regs: Vec<RegOp>,
    pub log: Vec<Event>,
    pub faults: usize,
    pub stale_refused: usize,
    pub problems: Vec<String>,
}

pub fn fence_of(token: &str) -> Option<u64> {
    u64::from_str_radix(token.get(..16)?, 16).ok()
}

/// Runs client `c` of `plan` to completion.
pub fn run_client(plan: &Plan, c: usize, addrs: Addrs, epoch: Instant) -> ClientOut {
    let mut out = ClientOut::default();
    let connected = match addrs.http {
        Some(http) if plan.http[c] => Client::connect_http(http, epoch, c),
        _ => Client::connect(addrs.tcp, epoch, c),
    };
    let mut cl = match connected {
        Ok(cl) => cl,
        Err(e) => {
            out.problems.push(format!("client {c}: connect: {e}"));
            return out;
        }
    };
    let mut rng = Rng::new(plan.seed ^ (c as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
    let r = if plan.registers() {
        registers(plan, c, &mut cl, &mut rng, &mut out)
    } else {
        locks(plan, c, &mut cl, &mut rng, &mut out)
    };
    // A client that finished (no kill or reset) ends its HTTP session.
    let r = r.and_then(|ended| match ended {
        Ended::Done => io(cl.end_session(), "end session"),
        Ended::Faulted => Ok(()),
    });
    if let Err(e) = r {
        out.problems.push(format!("client {c}: {e}"));
    }
    out.log = std::mem::take(&mut cl.log);
    out
}

/// How a client program ended.
enum Ended {
    Done,
    /// Killed or reset: its connection is gone (an HTTP session stays).
    Faulted,
}

type Step = Result<Ended, String>;

fn io<T>(r: std::io::Result<T>, what: &str) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

fn sleep_ms(ms: u64) {
    if ms > 0 {
        thread::sleep(Duration::from_millis(ms));
    }
}

/// Command words for one mode: (acquire, enqueue, wait, release, renew).
fn words(
    mode: Mode,
) -> (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
) {
    match mode {
        Mode::Excl => ("l", "e", "w", "r", "n"),
        Mode::Sem => ("sl", "se", "sw", "sr", "sn"),
        Mode::Read => ("rl", "re", "rw", "rr", "rn"),
        Mode::Write => ("wl", "we", "ww", "wr", "wn"),
    }
}

/// The token of `ok <token> <lease>…` / `acquired <token> …`.
fn grant_token(reply: &str) -> Option<String> {
    let mut f = reply.split(' ');
    match (f.next(), f.next()) {
        (Some("ok" | "acquired"), Some(t)) if t.len() == 32 => Some(t.to_string()),
        _ => None,
    }
}

fn locks(plan: &Plan, c: usize, cl: &mut Client, rng: &mut Rng, out: &mut ClientOut) -> Step {
    let lease = plan.lease_s;
    let wait = plan.wait_s;
    let faulty = c == plan.faulty;
    // The fault strikes at the first chance from `fault_step` on (a pause or
    // kill needs a grant to strike during).
    let mut struck = false;
    for step in 0..plan.ops {
        let key = plan.keys[rng.below(plan.keys.len() as u64) as usize].clone();
        let mode = match plan.kind {
            Kind::Lock => Mode::Excl,
            Kind::Sem(_) => Mode::Sem,
            _ if rng.chance(60) => Mode::Read,
            _ => Mode::Write,
        };
        let limit = match plan.kind {
            Kind::Sem(n) => format!(" {n}"),
            _ => String::new(),
        };
        let (acq, enq, wt, rel, ren) = words(mode);
        let at_fault = faulty && !struck && step >= plan.fault_step;
        if at_fault && plan.fault == Fault::Reset {
            // A blocking acquire, or half a request, then an abortive close.
            if rng.chance(50) {
                io(
                    cl.send(acq, &key, &format!("{wait}{limit} {lease}")),
                    "send",
                )?;
                sleep_ms(rng.below(3));
            } else if cl.is_http() {
                let head = format!("POST /v1/locks/{key} HTTP/1.1\r\nContent-Le");
                io(cl.send_raw(head.as_bytes()), "send")?;
            } else {
                io(cl.send_raw(format!("{acq}\n{key}\n").as_bytes()), "send")?;
            }
            cl.reset();
            out.faults += 1;
            return Ok(Ended::Faulted);
        }
        if at_fault && plan.fault == Fault::Kill && cl.is_http() && rng.chance(50) {
            // The session is ended from elsewhere (DELETE) while a blocking
            // acquire is in flight: that request is answered `session_gone`,
            // or was granted just before and the end releases it (§5).
            let i = io(
                cl.send(acq, &key, &format!("{wait}{limit} {lease}")),
                "send",
            )?;
            sleep_ms(rng.below(3));
            let t_end = io(cl.end_session_elsewhere(), "end the session")?;
            let reply = io(cl.recv(i), acq)?;
            out.faults += 1;
            let (t_inv, t_ret) = (cl.log[i].t_inv, cl.log[i].t_ret.unwrap_or(0));
            match grant_token(&reply).and_then(|t| fence_of(&t)) {
                Some(fence) => out.holds.push(Hold {
                    client: c,
                    key,
                    mode,
                    fence,
                    enq: (t_inv, t_ret),
                    t_grant: t_ret,
                    lease_lb: t_inv + lease * 1_000_000_000,
                    end: Some(t_end),
                    lapsed: false,
                }),
                None if reply == "error_session_gone" => {}
                None => return Err(format!("{acq} {key} as the session ended: {reply:?}")),
            }
            return Ok(Ended::Faulted);
        }
        // Acquire: blocking, try-lock, or two-phase.
        let style = rng.below(10);
        let hold = if style < 7 {
            let timeout = if style < 5 { wait } else { 0 };
            let (reply, i) = io(cl.req(acq, &key, &format!("{timeout}{limit} {lease}")), acq)?;
            let ev = &cl.log[i];
            match grant_token(&reply) {
                Some(token) => Some((token, (ev.t_inv, ev.t_ret.unwrap_or(0)), ev.t_inv)),
                None if reply == "timeout" => None,
                None => return Err(format!("{acq} {key}: unexpected {reply:?}")),
            }
        } else {
            let enq_arg = match plan.kind {
                Kind::Sem(n) => format!("{n} {lease}"),
                _ => lease.to_string(),
            };
            let (reply, i) = io(cl.req(enq, &key, &enq_arg), enq)?;
            let e = (cl.log[i].t_inv, cl.log[i].t_ret.unwrap_or(0));
            if reply != "queued" && grant_token(&reply).is_none() {
                return Err(format!("{enq} {key}: unexpected {reply:?}"));
            }
            sleep_ms(rng.below(3));
            let (reply, i) = io(cl.req(wt, &key, &wait.to_string()), wt)?;
            let w_inv = cl.log[i].t_inv;
            match grant_token(&reply) {
                Some(token) => Some((token, e, w_inv)),
                None if reply == "timeout" => None,
                None => return Err(format!("{wt} {key}: unexpected {reply:?}")),
            }
        };
        let Some((token, enq_iv, lease_from)) = hold else {
            continue;
        };
        let t_grant = cl.log.last().and_then(|e| e.t_ret).unwrap_or(0);
        let Some(fence) = fence_of(&token) else {
            return Err(format!("bad token {token:?}"));
        };
        let mut h = Hold {
            client: c,
            key: key.clone(),
            mode,
            fence,
            enq: enq_iv,
            t_grant,
            lease_lb: lease_from + lease * 1_000_000_000,
            end: None,
            lapsed: false,
        };
        if at_fault && plan.fault == Fault::Pause {
            // A stopped client: silent past its lease, then it carries on.
            struck = true;
            sleep_ms(lease * 1000 + 300);
            out.faults += 1;
            let (r1, _) = io(cl.req(ren, &key, &format!("{token} {lease}")), ren)?;
            let (r2, i) = io(cl.req(rel, &key, &token), rel)?;
            h.end = Some(cl.log[i].t_inv);
            h.lapsed = true;
            out.holds.push(h);
            if r1 != "error_lease_expired" || r2 != "error" {
                return Err(format!(
                    "stale holder of {key} (fence {fence}) after its lease: renew {r1:?}, release {r2:?}"
                ));
            }
            out.stale_refused += 1;
            continue;
        }
        if at_fault && plan.fault == Fault::Kill {
            sleep_ms(rng.below(2));
            let t = cl.kill();
            // A TCP hold ends with its connection; an HTTP session outlives
            // the connection, so the hold lasts until its lease runs out.
            h.end = (!cl.is_http()).then_some(t);
            out.holds.push(h);
            out.faults += 1;
            return Ok(Ended::Faulted);
        }
        sleep_ms(rng.below(3));
        // A refusal is right only if the server may have executed the request
        // after the lease ended: its reply came after the lease's lower bound
        // (a stopped server's clock moves on, and on resuming it expires
        // leases before it reads requests, §2.9). Earlier, it is a violation.
        let lapsed = |h: &Hold, answered: Option<Ns>| {
            answered.is_some_and(|t| t + LEASE_SLACK_NS >= h.lease_lb)
        };
        if rng.chance(30) {
            let (reply, i) = io(cl.req(ren, &key, &format!("{token} {lease}")), ren)?;
            let t = cl.log[i].t_inv;
            if reply == "error_lease_expired" && lapsed(&h, cl.log[i].t_ret) {
                h.end = Some(t);
                h.lapsed = true;
                out.holds.push(h);
                continue;
            }
            if !reply.starts_with(&format!("ok {lease}")) {
                out.holds.push(h);
                return Err(format!("{ren} {key} of a held token: {reply:?}"));
            }
            h.lease_lb = t + lease * 1_000_000_000;
            sleep_ms(rng.below(2));
        }
        let (reply, i) = io(cl.req(rel, &key, &token), rel)?;
        h.end = Some(cl.log[i].t_inv);
        h.lapsed = reply == "error" && lapsed(&h, cl.log[i].t_ret);
        let ok = reply == "ok" || h.lapsed;
        out.holds.push(h);
        if !ok {
            return Err(format!("{rel} {key} of a held token: {reply:?}"));
        }
    }
    Ok(Ended::Done)
}

fn registers(plan: &Plan, c: usize, cl: &mut Client, rng: &mut Rng, out: &mut ClientOut) -> Step {
    let key = plan.keys[0].clone();
    let faulty = c == plan.faulty;
    const VALUES: [&str; 3] = ["a", "b", "c"];
    for step in 0..plan.ops {
        let (cmd, arg) = match plan.kind {
            Kind::Counter => match rng.below(4) {
                0 => ("incr", (rng.below(9) as i64 - 3).to_string()),
                1 => ("decr", (rng.below(9) as i64 - 3).to_string()),
                2 => ("get", String::new()),
                _ => ("cset", rng.below(10).to_string()),
            },
            _ => match rng.below(4) {
                0 => ("kset", VALUES[rng.below(3) as usize].to_string()),
                1 => ("kget", String::new()),
                2 => ("kdel", String::new()),
                _ => {
                    let old = ["", "a", "b", "c"][rng.below(4) as usize];
                    let new = VALUES[rng.below(3) as usize];
                    ("kcas", format!("{old}\t{new}\t"))
                }
            },
        };
        if faulty && step == plan.fault_step && plan.fault != Fault::None {
            out.faults += 1;
            match plan.fault {
                Fault::Pause => sleep_ms(1300),
                Fault::Kill | Fault::Reset => {
                    // The request may or may not take effect: in flight forever.
                    let i = io(cl.send(cmd, &key, &arg), cmd)?;
                    let t_inv = cl.log[i].t_inv;
                    sleep_ms(rng.below(2));
                    if plan.fault == Fault::Kill {
                        cl.kill();
                    } else {
                        cl.reset();
                    }
                    out.regs.push(RegOp {
                        client: c,
                        t_inv,
                        t_ret: None,
                        cmd: cmd.into(),
                        arg,
                        reply: None,
                    });
                    return Ok(Ended::Faulted);
                }
                Fault::None => {}
            }
        }
        let (reply, i) = io(cl.req(cmd, &key, &arg), cmd)?;
        out.regs.push(RegOp {
            client: c,
            t_inv: cl.log[i].t_inv,
            t_ret: cl.log[i].t_ret,
            cmd: cmd.into(),
            arg,
            reply: Some(reply),
        });
    }
    Ok(Ended::Done)
}
