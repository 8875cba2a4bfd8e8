//! `dflockd::client` against the real server: every family through the library,
//! renewal and loss detection, auth, and sharding over two servers.

use crate::common;

use common::{Server, wait_until};
use dflockd::client::{Client, ClientOptions, Enqueued, Error, LeaderEventKind, LostReason, shard};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const SEC: Duration = Duration::from_secs(1);

fn client_for(server: &Server) -> Client {
    Client::single(&server.addr().to_string()).expect("client")
}

fn client_with(server: &Server, f: impl FnOnce(&mut ClientOptions)) -> Client {
    let mut opts = ClientOptions::with_servers([server.addr().to_string()]);
    f(&mut opts);
    Client::new(opts).expect("client")
}

fn assert_token_shape(token: &str) {
    assert_eq!(token.len(), 32, "{token}");
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{token}"
    );
}

#[test]
fn lock_acquire_release_and_fence() {
    let server = Server::start(&[]);
    let client = client_for(&server);
    let lock = client.lock("job").lease(Duration::from_secs(60));
    let guard = lock.acquire(SEC).expect("acquire");
    assert_token_shape(guard.token());
    assert_eq!(guard.key(), "job");
    assert_eq!(guard.lease(), Duration::from_secs(60));
    assert_eq!(
        Some(guard.fence()),
        dflockd::client::fence_from_token(guard.token())
    );
    let stats = server.client().stats();
    let entry = stats.entry("locks", "job").expect("lock listed");
    assert_eq!(entry.get("fence").u64(), guard.fence());
    let first_fence = guard.fence();
    guard.release().expect("release");

    let again = lock
        .try_acquire()
        .expect("try")
        .expect("free after release");
    assert!(again.fence() > first_fence, "fences increase");
    assert_eq!(
        again.renew(Some(Duration::from_secs(5))).expect("renew"),
        Duration::from_secs(5)
    );
    assert_eq!(again.lease(), Duration::from_secs(5));
}

#[test]
fn guard_drop_releases() {
    let server = Server::start(&[]);
    let client = client_for(&server);
    {
        let _held = client.lock("dropme").acquire(SEC).expect("acquire");
        assert!(client.lock("dropme").try_acquire().expect("try").is_none());
    }
    assert!(client.lock("dropme").try_acquire().expect("try").is_some());
}

#[test]
fn try_lock_and_acquire_timeout() {
    let server = Server::start(&[]);
    let client = client_for(&server);
    let _held = client.lock("busy").acquire(SEC).expect("acquire");
    assert!(client.lock("busy").try_acquire().expect("try").is_none());
    let start = Instant::now();
    let err = client
        .lock("busy")
        .acquire(SEC)
        .expect_err("held elsewhere");
    assert!(matches!(err, Error::Timeout), "{err:?}");
    assert!(
        start.elapsed() >= Duration::from_millis(950),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn fifo_between_two_clients() {
    let server = Server::start(&[]);
    let client = client_for(&server);
    let mut raw = server.client();
    let holder = client.lock("fifo").acquire(SEC).expect("acquire");
    let (tx, rx) = mpsc::channel();
    let mut threads = Vec::new();
    for (name, waiters) in [("B", 1), ("C", 2)] {
        let (c, tx) = (client.clone(), tx.clone());
        threads.push(thread::spawn(move || {
            let g = c
                .lock("fifo")
                .acquire(Duration::from_secs(10))
                .expect("queued acquire");
            tx.send((name, g.fence())).expect("send");
            thread::sleep(Duration::from_millis(50));
        }));
        raw.wait_lock_waiters("fifo", waiters);
    }
    drop(holder);
    let (first, f1) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("first grant");
    let (second, f2) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("second grant");
    assert_eq!((first, second), ("B", "C"));
    assert!(f2 > f1);
    for t in threads {
        t.join().expect("thread");
    }
}

#[test]
fn two_phase_enqueue_and_wait() {
    let server = Server::start(&[]);
    let client = client_for(&server);
    let lock = client.lock("phase");
    let Enqueued::Acquired(first) = lock.enqueue().expect("enqueue") else {
        panic!("free key must be acquired at once");
    };
    let Enqueued::Queued(pending) = lock.enqueue().expect("enqueue") else {
        panic!("held key must queue");
    };
    assert_eq!(pending.key(), "phase");
    let first_fence = first.fence();
    drop(first);
    let second = pending
        .wait(Duration::from_secs(5))
        .expect("granted after release");
    assert!(second.fence() > first_fence);

    // A queued wait that times out gives its place up.
    let Enqueued::Queued(late) = lock.enqueue().expect("enqueue") else {
        panic!("held key must queue");
    };
    assert!(matches!(late.wait(Duration::ZERO), Err(Error::Timeout)));
}

#[test]
fn semaphores() {
    let server = Server::start(&[]);
    let client = client_for(&server);
    let sem = client.semaphore("pool", 2);
    assert_eq!(sem.limit(), 2);
    let a = sem.acquire(SEC).expect("first permit");
    let _b = sem.acquire(SEC).expect("second permit");
    assert!(sem.try_acquire().expect("try").is_none());
    let err = client
        .semaphore("pool", 3)
        .try_acquire()
        .expect_err("other limit");
    assert!(matches!(err, Error::LimitMismatch), "{err:?}");
    // Same user key, other key space: no contention with the semaphore.
    let _lock = client
        .lock("pool")
        .try_acquire()
        .expect("try")
        .expect("lock space is separate");
    drop(a);
    let c = sem.try_acquire().expect("try").expect("permit freed");
    assert_eq!(c.renew(None).expect("sn"), Duration::from_secs(33));
    let stats = server.client().stats();
    assert_eq!(
        stats
            .entry("semaphores", "pool")
            .expect("listed")
            .get("holders")
            .u64(),
        2
    );
}

#[test]
fn rwlocks() {
    let server = Server::start(&[]);
    let client = client_for(&server);
    let rw = client.rwlock("cfg");
    let r1 = rw.read(SEC).expect("reader 1");
    let r2 = rw.try_read().expect("try").expect("reader 2 shares");
    assert!(r2.fence() > r1.fence());
    assert!(
        rw.try_write().expect("try").is_none(),
        "readers block writers"
    );
    let err = client.lock("cfg").try_acquire().expect_err("type mismatch");
    assert!(matches!(err, Error::TypeMismatch), "{err:?}");
    drop(r1);
    drop(r2);
    let w = rw.write(SEC).expect("writer");
    assert!(
        rw.try_read().expect("try").is_none(),
        "writer excludes readers"
    );
    assert!(matches!(
        rw.enqueue_read().expect("re"),
        Enqueued::Queued(_)
    ));
    drop(w);
    let Enqueued::Acquired(writer) = rw.enqueue_write().expect("we") else {
        panic!("free key: acquired at once");
    };
    writer.release().expect("release");
}

#[test]
fn election_with_observer_events() {
    let server = Server::start(&[]);
    let client = client_for(&server);
    let mut observer = client.observer();
    observer.observe("leader-job").expect("observe");
    let next = |o: &mut dflockd::client::Observer| {
        o.recv_timeout(Duration::from_secs(5))
            .expect("recv")
            .expect("an event")
    };

    let a = client.election("leader-job").lease(Duration::from_secs(10));
    let leader = a.campaign(SEC).expect("elected");
    let e = next(&mut observer);
    assert_eq!(
        (e.kind, e.key.as_str()),
        (LeaderEventKind::Elected, "leader-job")
    );
    assert!(a.try_campaign().expect("try").is_none());

    let c = client.clone();
    let contender = thread::spawn(move || {
        let g = c
            .election("leader-job")
            .campaign(Duration::from_secs(10))
            .expect("second leader");
        g.fence()
    });
    server.client().wait_lock_waiters("leader-job", 1);
    let first_fence = leader.fence();
    drop(leader); // resign
    let kinds: Vec<_> = (0..3).map(|_| next(&mut observer).kind).collect();
    assert_eq!(
        kinds,
        [
            LeaderEventKind::Resigned,
            LeaderEventKind::Failover,
            LeaderEventKind::Elected
        ]
    );
    assert!(contender.join().expect("contender") > first_fence);
    // The contender's guard resigned when its thread ended.
    assert_eq!(next(&mut observer).kind, LeaderEventKind::Resigned);
    observer.unobserve("leader-job").expect("unobserve");
}

#[test]
fn barrier_with_three_threads() {
    let server = Server::start(&[]);
    let client = client_for(&server);
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let c = client.clone();
            thread::spawn(move || c.barrier("stage", 3).wait(Duration::from_secs(10)))
        })
        .collect();
    for t in threads {
        t.join().expect("thread").expect("barrier completes");
    }
    assert!(client.barrier("one", 1).wait(Duration::ZERO).is_ok());
    let lonely = client.barrier("lonely", 2).wait(SEC);
    assert!(matches!(lonely, Err(Error::Timeout)), "{lonely:?}");
    let c = client.clone();
    let waiting = thread::spawn(move || c.barrier("mismatch", 2).wait(Duration::from_secs(5)));
    wait_until("barrier created", || {
        server
            .client()
            .stats()
            .entry("barriers", "mismatch")
            .is_some()
    });
    let err = client
        .barrier("mismatch", 3)
        .wait(SEC)
        .expect_err("count mismatch");
    assert!(matches!(err, Error::BarrierCountMismatch), "{err:?}");
    client.barrier("mismatch", 2).wait(SEC).expect("completes");
    waiting.join().expect("thread").expect("completes too");
}

#[test]
fn counters_including_overflow() {
    let server = Server::start(&[]);
    let mut s = client_for(&server).session();
    assert_eq!(s.counter_get("hits").expect("get"), 0);
    assert_eq!(s.incr("hits", 1).expect("incr"), 1);
    assert_eq!(s.incr("hits", 41).expect("incr"), 42);
    assert_eq!(s.decr("hits", 50).expect("decr"), -8);
    assert_eq!(s.decr("hits", -5).expect("decr"), -3);
    s.counter_set("hits", i64::MAX).expect("cset");
    let err = s.incr("hits", 1).expect_err("overflow");
    assert!(matches!(err, Error::Rejected), "{err:?}");
    assert_eq!(s.counter_get("hits").expect("unchanged"), i64::MAX);
    // The session's connection survives a refused command.
    assert_eq!(s.incr("other", 2).expect("incr"), 2);
}

#[test]
fn kv_with_ttl_and_cas() {
    let server = Server::start(&[]);
    let mut s = client_for(&server).session();
    assert_eq!(s.kv_get("greeting").expect("get"), None);
    s.kv_set("greeting", " hello world ").expect("set");
    assert_eq!(
        s.kv_get("greeting").expect("get").as_deref(),
        Some(" hello world ")
    );
    assert!(
        s.kv_cas("greeting", Some(" hello world "), "bonjour", None)
            .expect("cas")
    );
    assert!(
        !s.kv_cas("greeting", Some("nope"), "ciao", None)
            .expect("cas conflict")
    );
    assert!(
        s.kv_cas("fresh", None, "first", None)
            .expect("create if absent")
    );
    assert!(!s.kv_cas("fresh", None, "second", None).expect("exists"));
    s.kv_del("greeting").expect("del");
    assert_eq!(s.kv_get("greeting").expect("get"), None);
    assert!(matches!(s.kv_set("k", "tab\there"), Err(Error::Invalid(_))));

    s.kv_set_ttl("session", "alice", Some(SEC))
        .expect("set with ttl");
    assert_eq!(s.kv_get("session").expect("get").as_deref(), Some("alice"));
    thread::sleep(Duration::from_millis(1300));
    assert_eq!(s.kv_get("session").expect("expired"), None);
}

#[test]
fn lists_with_blocking_pop_from_another_thread() {
    let server = Server::start(&[]);
    let client = client_for(&server);
    let mut s = client.session();
    assert_eq!(s.rpush("jobs", "build 1").expect("rpush"), 1);
    assert_eq!(s.rpush("jobs", "build 2").expect("rpush"), 2);
    assert_eq!(s.lpush("jobs", "urgent").expect("lpush"), 3);
    assert_eq!(
        s.lrange("jobs", 0, -1).expect("lrange"),
        ["urgent", "build 1", "build 2"]
    );
    assert_eq!(s.llen("jobs").expect("llen"), 3);
    assert_eq!(s.lpop("jobs").expect("lpop").as_deref(), Some("urgent"));
    assert_eq!(s.rpop("jobs").expect("rpop").as_deref(), Some("build 2"));
    assert_eq!(s.lpop("jobs").expect("lpop").as_deref(), Some("build 1"));
    assert_eq!(s.lpop("jobs").expect("empty"), None);
    assert_eq!(
        s.lrange("nothing", 0, -1).expect("lrange"),
        Vec::<String>::new()
    );

    let c = client.clone();
    let popper = thread::spawn(move || c.session().blpop("tasks", Duration::from_secs(10)));
    wait_until("a blocked popper", || {
        server
            .client()
            .stats()
            .entry("lists", "tasks")
            .is_some_and(|l| l.get("pop_waiters").u64() == 1)
    });
    assert_eq!(s.rpush("tasks", "resize img-7").expect("hand-off"), 0);
    assert_eq!(
        popper.join().expect("thread").expect("blpop").as_deref(),
        Some("resize img-7")
    );
    assert_eq!(s.brpop("tasks", Duration::ZERO).expect("brpop 0"), None);
}

#[test]
fn subscriber_iterates_signals_and_unlistens() {
    let server = Server::start(&[]);
    let client = client_for(&server);
    let mut sub = client.subscriber();
    sub.listen("orders.*", None).expect("listen");
    sub.ping().expect("ping");
    let mut s = client.session();
    assert_eq!(
        s.signal("orders.created", "{\"id\":7, \"total\": 12.5}")
            .expect("signal"),
        1
    );
    assert_eq!(s.signal("orders.paid", "second").expect("signal"), 1);
    let got: Vec<_> = sub.iter().take(2).map(|r| r.expect("signal")).collect();
    assert_eq!(got[0].channel, "orders.created");
    assert_eq!(got[0].payload, "{\"id\":7, \"total\": 12.5}");
    assert_eq!(
        (got[1].channel.as_str(), got[1].payload.as_str()),
        ("orders.paid", "second")
    );

    sub.unlisten("orders.*", None).expect("unlisten");
    assert_eq!(s.signal("orders.created", "late").expect("signal"), 0);
    assert!(
        sub.recv_timeout(Duration::from_millis(200))
            .expect("recv")
            .is_none()
    );
    assert!(matches!(sub.listen("fo*", None), Err(Error::Rejected)));

    // Queue group: each signal goes to one member.
    let (mut g1, mut g2) = (client.subscriber(), client.subscriber());
    g1.listen("jobs.>", Some("workers")).expect("listen");
    g2.listen("jobs.>", Some("workers")).expect("listen");
    assert_eq!(s.signal("jobs.a", "one").expect("signal"), 1);
    assert_eq!(s.signal("jobs.b", "two").expect("signal"), 1);
    let a = g1
        .recv_timeout(Duration::from_secs(5))
        .expect("recv")
        .expect("g1 gets one");
    let b = g2
        .recv_timeout(Duration::from_secs(5))
        .expect("recv")
        .expect("g2 gets one");
    assert_eq!((a.payload.as_str(), b.payload.as_str()), ("one", "two"));
}

#[test]
fn subscriber_reports_a_closed_connection() {
    let server = Server::start(&[]);
    let client = client_for(&server);
    let mut sub = client.subscriber();
    sub.listen("x", None).expect("listen");
    drop(server);
    let err = sub
        .recv_timeout(Duration::from_secs(5))
        .expect_err("closed");
    assert!(matches!(err, Error::Closed), "{err:?}");
    assert!(sub.close_reason().is_some());
    assert!(matches!(sub.recv(), Err(Error::Closed)));
}

#[test]
fn watcher_events() {
    let server = Server::start(&[]);
    let client = client_for(&server);
    let mut w = client.watcher();
    w.watch("session.*").expect("watch");
    let mut s = client.session();
    s.kv_set_ttl("session.42", "alice", Some(SEC))
        .expect("kset");
    let mut next = || {
        let e = w
            .recv_timeout(Duration::from_secs(5))
            .expect("recv")
            .expect("an event");
        (e.event, e.key)
    };
    assert_eq!(next(), ("kset".into(), "session.42".into()));
    assert_eq!(next(), ("expire".into(), "session.42".into()));
    let guard = client.lock("session.lock").acquire(SEC).expect("lock");
    assert_eq!(next(), ("acquire".into(), "session.lock".into()));
    drop(guard);
    assert_eq!(next(), ("release".into(), "session.lock".into()));
    s.incr("other", 1).expect("unwatched key");
    w.unwatch("session.*").expect("unwatch");
    s.kv_set("session.43", "bob").expect("kset");
    assert!(
        w.recv_timeout(Duration::from_millis(200))
            .expect("recv")
            .is_none()
    );
    assert!(matches!(w.watch("session:*x*"), Err(Error::Rejected)));
}

#[test]
fn renewal_keeps_a_one_second_lease_alive() {
    let server = Server::start(&[]);
    // Renew every 0.3 s: 0.7 s of slack per renewal, so a loaded machine stays green.
    let client = client_with(&server, |o| o.renew_ratio = 0.3);
    let guard = client
        .lock("renewed")
        .lease(SEC)
        .acquire(SEC)
        .expect("acquire");
    thread::sleep(Duration::from_secs(3));
    assert!(!guard.is_lost(), "{:?}", guard.lost_handle().reason());
    assert!(
        client.lock("renewed").try_acquire().expect("try").is_none(),
        "still held"
    );
    let stats = server.client().stats();
    assert_eq!(stats.total("lease_expirations"), 0);
    guard.release().expect("release of a live lease");
}

#[test]
fn loss_detected_when_the_lease_expires_without_renewal() {
    let server = Server::start(&[]);
    let client = client_with(&server, |o| o.renew_ratio = 0.0);
    let guard = client
        .lock("short")
        .lease(SEC)
        .acquire(SEC)
        .expect("acquire");
    thread::sleep(Duration::from_millis(1500));
    assert!(!guard.is_lost(), "nothing renewed yet, so nothing noticed");
    let err = guard.renew(None).expect_err("expired");
    assert!(matches!(err, Error::LeaseExpired), "{err:?}");
    assert!(guard.is_lost());
    assert_eq!(guard.lost_handle().reason(), Some(LostReason::Expired));
    assert!(matches!(guard.release(), Err(Error::Rejected)));
}

#[test]
fn loss_detected_by_the_renewal_thread() {
    let server = Server::start(&[]);
    let client = client_for(&server);
    let guard = client
        .lock("stolen")
        .lease(Duration::from_secs(2))
        .acquire(SEC)
        .expect("acquire");
    let called = Arc::new(AtomicBool::new(false));
    let flag = called.clone();
    guard.on_lost(move |reason| {
        assert_eq!(*reason, LostReason::NotHeld);
        flag.store(true, Ordering::SeqCst);
    });
    // Any connection may release with the token (protocol.md §6.4).
    assert_eq!(server.client().req("r", "stolen", guard.token()), "ok");
    let lost = guard.lost_handle();
    assert!(
        lost.wait(Duration::from_secs(5)),
        "renewal (every 1 s) notices"
    );
    assert_eq!(lost.reason(), Some(LostReason::NotHeld));
    // The callback runs on the renewal thread right after the flag is set.
    wait_until("the on_lost callback", || called.load(Ordering::SeqCst));
    assert!(guard.is_lost());
}

#[test]
fn loss_detected_when_the_server_goes_away() {
    let server = Server::start(&[]);
    let client = client_for(&server);
    let guard = client
        .lock("gone")
        .lease(Duration::from_secs(2))
        .acquire(SEC)
        .expect("acquire");
    drop(server);
    assert!(guard.lost_handle().wait(Duration::from_secs(5)));
    assert!(matches!(
        guard.lost_handle().reason(),
        Some(LostReason::Connection(_))
    ));
}

#[test]
fn auth_token() {
    let server = Server::start(&["--auth-token", "s3cret"]);
    let good = client_with(&server, |o| o.auth_token = Some("s3cret".into()));
    good.session().ping().expect("authenticated ping");
    let g = good
        .lock("secured")
        .acquire(SEC)
        .expect("authenticated lock");
    g.release().expect("release");
    let mut sub = good.subscriber();
    sub.listen("a.b", None).expect("authenticated listen");

    let none = client_for(&server);
    assert!(matches!(none.session().ping(), Err(Error::Auth)));
    let wrong = client_with(&server, |o| o.auth_token = Some("nope".into()));
    assert!(matches!(
        wrong.lock("secured").try_acquire(),
        Err(Error::Auth)
    ));
}

#[test]
fn session_reconnects_after_the_idle_timeout() {
    let server = Server::start(&["--read-timeout", "1"]);
    let mut s = client_for(&server).session();
    s.kv_set("k", "v").expect("set");
    // The server closes the idle connection with a final `error` line.
    thread::sleep(Duration::from_millis(1600));
    assert_eq!(
        s.kv_get("k").expect("fresh connection").as_deref(),
        Some("v")
    );
}

#[test]
fn errors_without_a_server_or_with_bad_input() {
    let unreachable = Client::single("127.0.0.1:1").expect("client");
    assert!(matches!(
        unreachable.lock("k").try_acquire(),
        Err(Error::Io(_))
    ));
    assert!(matches!(unreachable.session().ping(), Err(Error::Io(_))));
    let server = Server::start(&[]);
    let client = client_for(&server);
    assert!(matches!(
        client.lock("bad key").try_acquire(),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        client.session().kv_set("k", "a\nb"),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        client.session().signal("c", "   "),
        Err(Error::Invalid(_))
    ));
}

#[test]
fn crc32_placement_known_values() {
    assert_eq!(shard::crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(shard::crc32(b""), 0);
    let client = Client::new(ClientOptions::with_servers(["a:1", "b:2", "c:3"])).expect("client");
    assert_eq!(
        client.server_index("123456789"),
        (0xCBF4_3926u32 % 3) as usize
    );
}

#[test]
fn sharding_across_two_servers() {
    let servers = [Server::start(&[]), Server::start(&[])];
    let addrs: Vec<String> = servers.iter().map(|s| s.addr().to_string()).collect();
    let client = Client::new(ClientOptions::with_servers(addrs)).expect("client");
    let keys: Vec<String> = (0..16).map(|i| format!("key-{i}")).collect();
    let mut s = client.session();
    let mut guards = Vec::new();
    for k in &keys {
        s.kv_set(k, "v").expect("set");
        guards.push(client.lock(k).acquire(SEC).expect("lock"));
    }
    let mut per_server = [0usize; 2];
    for (i, server) in servers.iter().enumerate() {
        let stats = server.client().stats();
        let kv = stats.keys("kv_entries");
        let locks = stats.keys("locks");
        for k in &keys {
            let here = (shard::crc32(k.as_bytes()) % 2) as usize == i;
            assert_eq!(kv.contains(k), here, "kv {k} on server {i}");
            assert_eq!(locks.contains(k), here, "lock {k} on server {i}");
            per_server[i] += usize::from(here);
        }
    }
    assert!(per_server.iter().all(|&n| n > 0), "{per_server:?}");
    assert_eq!(client.server_index("123456789"), 0, "0xCBF43926 is even");

    // A subscriber hears signals whichever server their channel lives on.
    let mut sub = client.subscriber();
    sub.listen("ev.>", None).expect("listen on both");
    let channels: Vec<String> = (0..8).map(|i| format!("ev.{i}")).collect();
    let on: Vec<usize> = channels.iter().map(|c| client.server_index(c)).collect();
    assert!(on.contains(&0) && on.contains(&1), "{on:?}");
    for c in &channels {
        assert_eq!(s.signal(c, "x").expect("signal"), 1);
    }
    let mut heard: Vec<String> = (0..8)
        .map(|_| {
            sub.recv_timeout(Duration::from_secs(5))
                .expect("recv")
                .expect("signal")
                .channel
        })
        .collect();
    heard.sort();
    assert_eq!(heard, channels);
}

/// A fake server: the n-th connection gets the n-th canned reply to its first
/// request (`None`: no reply at all), then is held open — or closed, when the
/// reply does not end with LF.
fn fake_server(replies: Vec<Option<&'static [u8]>>) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    thread::spawn(move || {
        let mut held = Vec::new();
        for reply in replies {
            let Ok((mut sock, _)) = listener.accept() else {
                return;
            };
            let mut seen = 0;
            let mut buf = [0u8; 512];
            while seen < 3 {
                match sock.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen += buf[..n].iter().filter(|&&b| b == b'\n').count(),
                }
            }
            if let Some(bytes) = reply {
                sock.write_all(bytes).ok();
                if !bytes.ends_with(b"\n") {
                    continue; // closes the connection after a partial line
                }
            }
            held.push(sock);
        }
        thread::sleep(Duration::from_secs(5));
    });
    addr
}

#[test]
fn bad_replies_are_errors_not_panics() {
    let addr = fake_server(vec![
        Some(b"ok\n"),
        Some(b"ok 18ea9db47e590001d433357e6ef5d88b soon\n"),
        Some(b"acquired\n"),
        Some(b"\xff\xfe\n"),
        Some(b"bogus_word\n"),
        Some(b"sig a b\nwatch kset k\nok  hello \n"),
        Some(b"ok 12"),
        None,
    ]);
    let client = Client::new(ClientOptions {
        io_timeout: Some(Duration::from_millis(300)),
        ..ClientOptions::with_servers([addr])
    })
    .expect("client");
    let is_protocol = |e: Error| matches!(e, Error::Protocol(_));
    assert!(is_protocol(
        client.lock("k").acquire(SEC).expect_err("no token")
    ));
    assert!(is_protocol(
        client.lock("k").acquire(SEC).expect_err("bad lease")
    ));
    assert!(is_protocol(
        client.lock("k").enqueue().expect_err("no token")
    ));
    assert!(is_protocol(
        client.session().kv_get("k").expect_err("not UTF-8")
    ));
    assert!(is_protocol(
        client.session().kv_get("k").expect_err("unknown status")
    ));
    // Push frames before a reply are skipped, and the value is kept verbatim.
    assert_eq!(
        client.session().kv_get("k").expect("value").as_deref(),
        Some(" hello ")
    );
    // A line cut short by a close, and a reply that never comes.
    assert!(is_protocol(
        client.session().llen("k").expect_err("partial line")
    ));
    match client.session().llen("k") {
        Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::TimedOut),
        other => panic!("expected a timeout, got {other:?}"),
    }
}
