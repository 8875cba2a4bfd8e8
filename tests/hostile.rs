//! Hostile clients on every listener, plain and TLS (issue 11; protocol.md
//! §2.5, §2.7, §2.8, §4.1–§4.3, http.md §2.2, §3.5): trickled requests closed
//! at their deadline, the per-IP caps, the cap on unauthenticated connections,
//! delayed and counted `auth` failures, the cross-protocol guard, and bounded
//! input, output and parked requests.

use crate::common;

use common::{Json, Server, TempDir, free_port, wait_until};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// A CA and a server certificate for localhost, on disk, and a client config
/// that trusts the CA.
struct Pki {
    _dir: TempDir,
    args: Vec<String>,
    client: Arc<ClientConfig>,
}

impl Pki {
    fn new(tag: &str) -> Pki {
        let dir = TempDir::new(tag);
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).expect("CA cert");
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().expect("key");
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let leaf = CertificateParams::new(names).expect("params");
        let cert = leaf.signed_by(&key, &issuer).expect("cert");
        let (cert_path, key_path) = (dir.join("server.pem"), dir.join("server.key"));
        std::fs::write(&cert_path, cert.pem()).expect("write cert");
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");
        let mut roots = RootCertStore::empty();
        let ca_der = CertificateDer::from_pem_slice(ca_cert.pem().as_bytes()).expect("CA der");
        roots.add(ca_der).expect("root");
        let client = ClientConfig::builder_with_provider(dflockd::net::tls::crypto_provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let path = |p: &std::path::Path| p.to_str().expect("utf-8").to_owned();
        Pki {
            args: vec![
                "--tls-cert".into(),
                path(&cert_path),
                "--tls-key".into(),
                path(&key_path),
            ],
            client: Arc::new(client),
            _dir: dir,
        }
    }
}

/// A server with all three listeners (retrying if another process takes a port).
fn start(args: &[&str]) -> (Server, [SocketAddr; 3]) {
    for attempt in 0.. {
        let (http, dread) = (free_port().to_string(), free_port().to_string());
        let mut full = vec!["--http-port", &http, "--dreadlock-port", &dread];
        full.extend_from_slice(args);
        match Server::try_start_env(&full, &[]) {
            Ok(s) => {
                let addrs = [s.addr(), s.listener("dreadlock"), s.listener("http")];
                return (s, addrs);
            }
            Err(e) if attempt < 3 => eprintln!("retrying with other ports: {e}"),
            Err(e) => panic!("{e}"),
        }
    }
    unreachable!()
}

/// A byte stream to the server, plain or TLS (handshake completed).
type Stream = Box<dyn ReadWrite + Send>;
trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn connect(addr: SocketAddr, tls: Option<&Arc<ClientConfig>>) -> std::io::Result<Stream> {
    let mut sock = TcpStream::connect(addr)?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    let Some(config) = tls else {
        return Ok(Box::new(sock));
    };
    let name = ServerName::try_from("localhost").expect("name");
    let mut conn = ClientConnection::new(config.clone(), name).map_err(std::io::Error::other)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)?;
    }
    Ok(Box::new(StreamOwned::new(conn, sock)))
}

fn set_timeout(s: &TcpStream, d: Duration) {
    s.set_read_timeout(Some(d)).expect("timeout");
}

/// Reads one line (up to LF) byte by byte; None at end of stream or error.
fn line(s: &mut Stream) -> Option<String> {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b) {
            Ok(1) if b[0] == b'\n' => return Some(String::from_utf8_lossy(&out).into_owned()),
            Ok(1) => out.push(b[0]),
            _ => return None,
        }
    }
}

fn req(s: &mut Stream, cmd: &str, key: &str, arg: &str) -> Option<String> {
    s.write_all(format!("{cmd}\n{key}\n{arg}\n").as_bytes())
        .ok()?;
    s.flush().ok()?;
    line(s)
}

/// True if the server closes `s` without sending a byte.
fn closed_without_reply(s: &mut Stream) -> bool {
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(n) => n == 0,
        Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
    }
}

fn stats(s: &mut Stream) -> Json {
    let reply = req(s, "stats", "_", "").expect("stats");
    Json::parse(reply.strip_prefix("ok ").expect("ok stats"))
}

fn warnings(server: &Server, needle: &str) -> usize {
    let lines = server.stderr_lines();
    lines.iter().filter(|l| l.contains(needle)).count()
}

// ---- request deadlines ----

/// Writes `bytes` one per `every` and returns how long after the first byte
/// the server closed the connection (None: it never did).
fn trickle(mut s: Stream, sock_timeout: impl Fn(Duration), bytes: &[u8]) -> Option<f64> {
    let every = Duration::from_millis(200);
    sock_timeout(every);
    let start = Instant::now();
    let mut buf = [0u8; 256];
    for b in bytes {
        if s.write_all(std::slice::from_ref(b))
            .and_then(|()| s.flush())
            .is_err()
        {
            return Some(start.elapsed().as_secs_f64());
        }
        // Waiting for the next byte doubles as watching for the close.
        loop {
            match s.read(&mut buf) {
                Ok(0) => return Some(start.elapsed().as_secs_f64()),
                Ok(_) => continue, // the timeout notice before the close
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                Err(_) => return Some(start.elapsed().as_secs_f64()),
            }
        }
    }
    None
}

fn trickle_to(
    addr: SocketAddr,
    tls: Option<Arc<ClientConfig>>,
    bytes: &'static [u8],
) -> Option<f64> {
    let mut sock = TcpStream::connect(addr).expect("connect");
    let timeout_handle = sock.try_clone().expect("clone");
    let stream: Stream = match tls {
        None => Box::new(sock),
        Some(config) => {
            let name = ServerName::try_from("localhost").expect("name");
            let mut conn = ClientConnection::new(config, name).expect("client");
            set_timeout(&sock, Duration::from_secs(10));
            while conn.is_handshaking() {
                conn.complete_io(&mut sock).expect("handshake");
            }
            Box::new(StreamOwned::new(conn, sock))
        }
    };
    trickle(stream, move |d| set_timeout(&timeout_handle, d), bytes)
}

#[test]
fn trickled_requests_are_closed_at_their_deadline_on_every_listener() {
    const LINE: &[u8] = b"l\nkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk";
    const DREAD: &[u8] = b"lock kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk";
    const HTTP: &[u8] = b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Pad: \
        aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let pki = Pki::new("hostile-trickle");
    let tls_args: Vec<&str> = pki.args.iter().map(String::as_str).collect();
    let (_plain, p) = start(&["--read-timeout", "2"]);
    let (_tls, t) = start(&[&["--read-timeout", "2"][..], &tls_args].concat());
    // (what, address, TLS, bytes, deadline in seconds)
    let cases = [
        ("tcp", p[0], false, LINE, 2.0),
        ("dreadlock", p[1], false, DREAD, 2.0),
        ("http", p[2], false, HTTP, 10.0),
        ("tls tcp", t[0], true, LINE, 2.0),
        ("tls dreadlock", t[1], true, DREAD, 2.0),
        ("https", t[2], true, HTTP, 10.0),
    ];
    let runs: Vec<_> = cases
        .iter()
        .map(|&(what, addr, tls, bytes, _)| {
            let config = tls.then(|| pki.client.clone());
            (what, thread::spawn(move || trickle_to(addr, config, bytes)))
        })
        .collect();
    for ((what, run), (.., deadline)) in runs.into_iter().zip(cases) {
        let lived = run
            .join()
            .expect("trickler")
            .unwrap_or_else(|| panic!("{what}: never closed"));
        // On time: the clocks start at accept or at the first byte (a TLS
        // handshake apart); late by at most a loaded machine.
        assert!(
            lived >= deadline - 0.5 && lived <= deadline + 1.5,
            "{what}: closed after {lived:.2} s, deadline {deadline} s"
        );
    }
}

// ---- the cross-protocol guard ----

#[test]
fn http_or_tls_on_a_plain_line_port_is_closed_with_one_log_line() {
    let pki = Pki::new("hostile-guard");
    let hello = common::client_hello(&pki.client);
    let (server, [tcp, dread, _]) = start(&[]);
    let http = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".as_slice();
    for addr in [tcp, dread] {
        for first in [http, &hello] {
            let mut s = connect(addr, None).expect("connect");
            s.write_all(first).expect("send");
            assert!(closed_without_reply(&mut s), "{addr}: {:?}", &first[..4]);
        }
    }
    let (http_lines, tls_lines) = ("on the protocol port, closing", "TLS ClientHello, but");
    wait_until("four warnings", || {
        warnings(&server, http_lines) + warnings(&server, tls_lines) >= 4
    });
    thread::sleep(Duration::from_millis(200));
    assert_eq!(
        warnings(&server, http_lines),
        2,
        "{:#?}",
        server.stderr_lines()
    );
    assert_eq!(
        warnings(&server, tls_lines),
        2,
        "{:#?}",
        server.stderr_lines()
    );
    // Nothing else at info or above came of them (no error replies, no panics).
    let noisy = server
        .stderr_lines()
        .into_iter()
        .filter(|l| {
            (l.contains(" INFO ") || l.contains(" WARN ") || l.contains(" ERROR "))
                && !l.contains("listening on")
                && !l.contains(http_lines)
                && !l.contains(tls_lines)
                && !l.contains("dflockd ")
                && !l.ends_with("TLS off")
        })
        .collect::<Vec<_>>();
    assert!(noisy.is_empty(), "{noisy:#?}");
    let mut c = connect(tcp, None).expect("connect");
    assert_eq!(req(&mut c, "ping", "_", "").as_deref(), Some("ok"));
}

// ---- connection caps ----

/// Opens a connection and proves the server accepted and counted it.
fn open_line(addr: SocketAddr, tls: Option<&Arc<ClientConfig>>) -> Stream {
    let mut s = connect(addr, tls).expect("connect");
    assert_eq!(req(&mut s, "ping", "_", "").as_deref(), Some("ok"));
    s
}

fn open_http(addr: SocketAddr, tls: Option<&Arc<ClientConfig>>) -> Stream {
    let mut s = connect(addr, tls).expect("connect");
    s.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("send");
    assert!(line(&mut s).expect("status").starts_with("HTTP/1.1 200"));
    s
}

/// A connection over a cap: a TLS handshake fails, a plain one reads EOF.
fn refused(addr: SocketAddr, tls: Option<&Arc<ClientConfig>>) -> bool {
    match connect(addr, tls) {
        Err(_) => true,
        Ok(mut s) => closed_without_reply(&mut s),
    }
}

#[test]
fn per_ip_caps_apply_on_every_listener_plain_and_tls() {
    let pki = Pki::new("hostile-per-ip");
    let caps = [
        "--max-connections-per-ip",
        "2",
        "--http-max-connections-per-ip",
        "1",
    ];
    let tls_args: Vec<&str> = pki.args.iter().map(String::as_str).collect();
    let (_plain, p) = start(&caps);
    let (_tls, t) = start(&[&caps[..], &tls_args].concat());
    for (addrs, tls) in [(p, None), (t, Some(&pki.client))] {
        let [tcp, dread, http] = addrs;
        // TCP and Dreadlock share --max-connections-per-ip.
        let _a = open_line(tcp, tls);
        let _b = open_line(dread, tls);
        assert!(
            refused(dread, tls),
            "third line connection ({tls:?})",
            tls = tls.is_some()
        );
        assert!(refused(tcp, tls), "third line connection");
        // HTTP has its own cap, not eaten by the line connections.
        let _h = open_http(http, tls);
        assert!(refused(http, tls), "second HTTP connection");
        // A closed connection frees its place.
        drop(_b);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ok = connect(dread, tls)
                .ok()
                .and_then(|mut s| req(&mut s, "ping", "_", ""));
            if ok.as_deref() == Some("ok") {
                break;
            }
            assert!(Instant::now() < deadline, "the place was never freed");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn unauthenticated_connections_are_capped() {
    let (server, [tcp, dread, http]) = start(&[
        "--auth-token",
        "s3cret",
        "--max-unauthenticated-connections",
        "2",
    ]);
    let mut admin = connect(tcp, None).expect("connect");
    assert_eq!(
        req(&mut admin, "auth", "_", "s3cret").as_deref(),
        Some("ok")
    );
    let mut a = connect(tcp, None).expect("connect");
    let b = connect(dread, None).expect("connect");
    wait_until("three connections", || {
        stats(&mut admin).get("connections").u64() == 3
    });
    // A third unauthenticated connection is closed at accept, on either port.
    assert!(refused(tcp, None));
    assert!(refused(dread, None));
    assert!(
        server
            .wait_for_log(
                "--max-unauthenticated-connections 2",
                Duration::from_secs(5)
            )
            .is_some()
    );
    // HTTP connections authenticate per request and are not counted.
    let _h = open_http(http, None);
    // Authenticating frees a place.
    assert_eq!(req(&mut a, "auth", "_", "s3cret").as_deref(), Some("ok"));
    let mut c = connect(tcp, None).expect("connect");
    assert_eq!(req(&mut c, "auth", "_", "s3cret").as_deref(), Some("ok"));
    // So does closing one that never authenticated.
    drop(b);
    wait_until("b gone", || stats(&mut admin).get("connections").u64() == 3);
    let mut d = connect(dread, None).expect("connect");
    assert_eq!(req(&mut d, "auth", "_", "s3cret").as_deref(), Some("ok"));
    let rejected = stats(&mut admin)
        .get("server")
        .get("totals")
        .get("connections_rejected")
        .u64();
    assert_eq!(rejected, 2);
}

#[test]
fn failed_auth_is_delayed_and_counted_in_stats_and_metrics() {
    let pki = Pki::new("hostile-auth");
    let tls_args: Vec<&str> = pki.args.iter().map(String::as_str).collect();
    let (_server, [tcp, dread, http]) =
        start(&[&["--auth-token", "s3cret"][..], &tls_args].concat());
    let tls = Some(&pki.client);
    let mut s = connect(tcp, tls).expect("connect");
    let sent = Instant::now();
    assert_eq!(
        req(&mut s, "auth", "_", "wrong").as_deref(),
        Some("error_auth")
    );
    assert!(sent.elapsed() >= Duration::from_millis(100));
    assert!(closed_without_reply(&mut s));
    let mut s = connect(dread, tls).expect("connect");
    let sent = Instant::now();
    s.write_all(b"lock k 1\r\n").expect("send");
    assert_eq!(line(&mut s).as_deref(), Some("e authentication required\r"));
    assert!(sent.elapsed() >= Duration::from_millis(100));
    let mut admin = connect(tcp, tls).expect("connect");
    assert_eq!(
        req(&mut admin, "auth", "_", "s3cret").as_deref(),
        Some("ok")
    );
    let totals = stats(&mut admin).get("server").get("totals").clone();
    assert_eq!(totals.get("auth_failures").u64(), 2);
    // /metrics over HTTPS (a bearer token is needed there too).
    let mut h = connect(http, tls).expect("connect");
    h.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer s3cret\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut body = String::new();
    let _ = h.read_to_string(&mut body);
    assert!(
        body.contains("dflockd_auth_failures_total{listener=\"tcp\"} 2"),
        "{body}"
    );
}

// ---- bounded allocation ----

/// The server's peak resident set (VmHWM), in KiB.
fn peak_rss_kib(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).expect("status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM");
    line.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("a number")
}

/// Input caps, output caps and parked requests over TLS: a 32 MiB line, a
/// parked connection that pipelines 64 MiB behind its blocked request while
/// never reading, and a subscriber that never reads a flood of signals. The
/// server's peak RSS grows by far less than any of them.
#[test]
fn input_output_and_parked_requests_stay_bounded_over_tls() {
    const MIB: usize = 1024 * 1024;
    let pki = Pki::new("hostile-bounded");
    let tls_args: Vec<&str> = pki.args.iter().map(String::as_str).collect();
    let (server, [tcp, _, _]) = start(&tls_args);
    let tls = Some(&pki.client);
    let mut admin = open_line(tcp, tls);
    let before = peak_rss_kib(&server);

    // Input: a 32 MiB line is refused once it passes its limit.
    let mut long = connect(tcp, tls).expect("connect");
    let mut line_bytes = b"l\n".to_vec();
    line_bytes.resize(32 * MIB, b'a');
    let _ = long.write_all(&line_bytes).and_then(|()| long.flush());
    let notice = line(&mut long);
    assert!(
        matches!(notice.as_deref(), Some("error") | None),
        "{notice:?}"
    );

    // Parked: `job` is held, the writer parks on it and pipelines pings behind.
    let token = req(&mut admin, "l", "job", "0").expect("grant");
    let token = token.split(' ').nth(1).expect("token").to_owned();
    let mut parked = connect(tcp, tls).expect("connect");
    let written = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = written.clone();
    thread::spawn(move || {
        let _ = parked.write_all(b"l\njob\n60\n");
        let chunk = b"ping\n_\n\n".repeat(8192);
        while count.load(std::sync::atomic::Ordering::Relaxed) < 64 * MIB {
            if parked.write_all(&chunk).is_err() {
                return;
            }
            count.fetch_add(chunk.len(), std::sync::atomic::Ordering::Relaxed);
        }
    });

    // Output: a subscriber that never reads.
    let mut sub = open_line(tcp, tls);
    assert_eq!(req(&mut sub, "listen", "flood", "").as_deref(), Some("ok"));
    let payload = "x".repeat(1000);
    let mut publisher = open_line(tcp, tls);
    for sent in 0.. {
        let reply = req(&mut publisher, "signal", "flood", &payload).expect("signal");
        if reply == "ok 0" {
            break;
        }
        assert_eq!(reply, "ok 1");
        assert!(sent < 200_000, "the slow consumer was never disconnected");
    }
    let totals = stats(&mut admin).get("server").get("totals").clone();
    assert!(totals.get("slow_consumer_disconnects").u64() >= 1);

    // The parked writer is held back by TCP back-pressure, not buffered.
    thread::sleep(Duration::from_secs(2));
    let stalled_at = written.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        stalled_at < 32 * MIB,
        "the server took {stalled_at} bytes behind a parked request"
    );
    let grew = peak_rss_kib(&server).saturating_sub(before);
    assert!(grew < 16 * 1024, "peak RSS grew by {grew} KiB");
    // Releasing the lock lets the parked connection go on.
    assert_eq!(req(&mut admin, "r", "job", &token).as_deref(), Some("ok"));
}
