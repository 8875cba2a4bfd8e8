//! TLS on every listener (issue 11; protocol.md §4.1, http.md §1, config.md §3.5, §7).
//!
//! Certificates are made at test time with rcgen (a CA, a server certificate
//! for `localhost` and 127.0.0.1, a client certificate, an expired one, one for
//! another host, and a second CA nobody trusts). Clients: the crate's own
//! client, rustls's client directly (as an outside client would use it), and
//! `openssl s_client` and `curl` as real outside clients.

use crate::common;

use common::{Json, Server, TempDir, free_port};
use dflockd::client::{Client, ClientOptions, TlsOptions};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

// ---- certificates ----

/// A CA that can sign leaves.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("CA cert");
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf for `names` (DNS names or IPs), server or client, optionally
    /// with a fixed validity period.
    fn leaf(&self, names: &[&str], client: bool, valid: Option<(i32, i32)>) -> Leaf {
        let key = KeyPair::generate().expect("leaf key");
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).expect("leaf params");
        params
            .distinguished_name
            .push(DnType::CommonName, if client { "client" } else { "server" });
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        if let Some((from, to)) = valid {
            params.not_before = rcgen::date_time_ymd(from, 1, 1);
            params.not_after = rcgen::date_time_ymd(to, 1, 1);
        }
        let cert = params.signed_by(&key, &self.issuer).expect("leaf cert");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }
}

struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

/// Everything a test needs on disk.
struct Pki {
    dir: TempDir,
    ca: Ca,
    /// The trusted CA's certificate.
    ca_pem: PathBuf,
    /// Server certificate (localhost, 127.0.0.1), valid until 2099-01-01.
    cert: PathBuf,
    key: PathBuf,
    server: Leaf,
    /// A client certificate from the same CA.
    client_cert: PathBuf,
    client_key: PathBuf,
}

impl Pki {
    fn new(tag: &str) -> Pki {
        let dir = TempDir::new(tag);
        let ca = Ca::new("dflockd test CA");
        let server = ca.leaf(&["localhost", "127.0.0.1"], false, Some((2020, 2099)));
        let client = ca.leaf(&["client.example"], true, None);
        let write = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).expect("write pem");
            p
        };
        Pki {
            ca_pem: write("ca.pem", &ca.pem),
            cert: write("server.pem", &server.cert_pem),
            key: write("server.key", &server.key_pem),
            client_cert: write("client.pem", &client.cert_pem),
            client_key: write("client.key", &client.key_pem),
            server,
            ca,
            dir,
        }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, text).expect("write pem");
        p
    }

    /// `--tls-cert … --tls-key …` for this PKI's server certificate.
    fn server_args(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            s(&self.cert),
            "--tls-key".into(),
            s(&self.key),
        ]
    }

    fn client(&self) -> Client {
        client_with(TlsOptions::from_ca_file(&self.ca_pem).expect("tls options"))
    }
}

fn s(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_owned()
}

fn client_with(tls: TlsOptions) -> Client {
    Client::new(ClientOptions {
        tls: Some(tls),
        io_timeout: Some(Duration::from_secs(10)),
        ..ClientOptions::default()
    })
    .expect("client")
}

/// Starts a TLS server with HTTP and Dreadlock listeners on free ports
/// (retrying if another process takes one). Returns the server and the
/// (tcp, http, dreadlock) addresses.
fn start(args: &[String]) -> (Server, [SocketAddr; 3]) {
    let mut attempt = 0;
    loop {
        let (http, dread) = (free_port().to_string(), free_port().to_string());
        let mut full: Vec<&str> = vec!["--http-port", &http, "--dreadlock-port", &dread];
        full.extend(args.iter().map(String::as_str));
        match Server::try_start_env(&full, &[]) {
            Ok(server) => {
                let addrs = [
                    server.addr(),
                    server.listener("http"),
                    server.listener("dreadlock"),
                ];
                return (server, addrs);
            }
            Err(e) if attempt < 3 => {
                attempt += 1;
                eprintln!("retrying with other ports: {e}");
            }
            Err(e) => panic!("{e}"),
        }
    }
}

fn with_opts(client: &Client, addr: SocketAddr) -> Client {
    Client::new(ClientOptions {
        servers: vec![format!("localhost:{}", addr.port())],
        ..client.options().clone()
    })
    .expect("client")
}

// ---- a plain rustls client: what any outside TLS client does ----

fn rustls_config(ca: &Path, identity: Option<(&Path, &Path)>) -> Arc<ClientConfig> {
    use rustls::pki_types::PrivateKeyDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).expect("ca file") {
        roots.add(c.expect("ca pem")).expect("add root");
    }
    let b = ClientConfig::builder_with_provider(dflockd::net::tls::crypto_provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    Arc::new(match identity {
        None => b.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .expect("cert file")
                .map(|c| c.expect("cert pem"))
                .collect();
            let key = PrivateKeyDer::from_pem_file(key).expect("key pem");
            b.with_client_auth_cert(chain, key).expect("client auth")
        }
    })
}

/// A line-oriented TLS client with a 10 s read timeout.
struct TlsLine {
    io: BufReader<StreamOwned<ClientConnection, TcpStream>>,
}

impl TlsLine {
    fn connect(addr: SocketAddr, config: Arc<ClientConfig>) -> std::io::Result<TlsLine> {
        let mut sock = TcpStream::connect(addr)?;
        sock.set_read_timeout(Some(Duration::from_secs(10)))?;
        let name = ServerName::try_from("localhost").expect("name");
        let mut conn = ClientConnection::new(config, name).map_err(std::io::Error::other)?;
        while conn.is_handshaking() {
            conn.complete_io(&mut sock)?;
        }
        Ok(TlsLine {
            io: BufReader::new(StreamOwned::new(conn, sock)),
        })
    }

    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.io.get_mut().write_all(bytes)
    }

    fn line(&mut self) -> std::io::Result<String> {
        let mut line = String::new();
        if self.io.read_line(&mut line)? == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        Ok(line)
    }

    fn req(&mut self, cmd: &str, key: &str, arg: &str) -> std::io::Result<String> {
        self.send(format!("{cmd}\n{key}\n{arg}\n").as_bytes())?;
        Ok(self.line()?.trim_end().to_owned())
    }

    fn peer_cert(&self) -> Vec<u8> {
        let certs = self.io.get_ref().conn.peer_certificates().expect("certs");
        certs[0].as_ref().to_vec()
    }
}

fn stats(c: &mut TlsLine) -> Json {
    let reply = c.req("stats", "_", "").expect("stats");
    Json::parse(reply.strip_prefix("ok ").expect("ok stats"))
}

fn wait_for_stat(c: &mut TlsLine, what: &str, want: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = stats(c).get("server").get("tls").get(what).u64();
        if v >= want || Instant::now() >= deadline {
            return v;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

// ---- the protocols over TLS ----

#[test]
fn tcp_protocol_over_tls_with_the_rust_client_and_dflockctl() {
    let pki = Pki::new("tls-tcp");
    let (server, [tcp, _, _]) = start(&pki.server_args());
    let client = with_opts(&pki.client(), tcp);

    // Lock, release, a session, and push frames on a reader thread.
    let guard = client
        .lock("tls-key")
        .acquire(Duration::from_secs(1))
        .expect("acquire over TLS");
    assert!(guard.fence() > 0);
    drop(guard);
    let mut session = client.session();
    session.kv_set("k", "v over tls").expect("kset");
    assert_eq!(
        session.kv_get("k").expect("kget").as_deref(),
        Some("v over tls")
    );
    let mut sub = client.subscriber();
    sub.listen("news.*", None).expect("listen");
    assert_eq!(session.signal("news.tls", "hello").expect("signal"), 1);
    let sig = sub
        .recv_timeout(Duration::from_secs(10))
        .expect("recv")
        .expect("a signal");
    assert_eq!(
        (sig.channel.as_str(), sig.payload.as_str()),
        ("news.tls", "hello")
    );

    // dflockctl --tls-ca, by host name and by IP address (both are in the certificate).
    let ctl = |server_addr: String, args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_dflockctl"))
            .env_remove("DFLOCKD_SERVERS")
            .env_remove("DFLOCKD_AUTH_TOKEN")
            .env_remove("DFLOCKD_TLS_CA")
            .args(["--server", &server_addr, "--tls-ca", &s(&pki.ca_pem)])
            .args(args)
            .output()
            .expect("run dflockctl");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let by_name = format!("localhost:{}", tcp.port());
    let by_ip = format!("127.0.0.1:{}", tcp.port());
    assert_eq!(ctl(by_name.clone(), &["kv", "get", "k"]).1, "v over tls\n");
    let (code, out, err) = ctl(by_ip, &["lock", "ctl-key", "--", "echo", "held"]);
    assert_eq!((code, out.as_str()), (Some(0), "held\n"), "{err}");
    // Without --tls-ca it is plain text on a TLS port: a connection error (3).
    let out = Command::new(env!("CARGO_BIN_EXE_dflockctl"))
        .env_remove("DFLOCKD_TLS_CA")
        .args(["--server", &by_name, "kv", "get", "k"])
        .output()
        .expect("run dflockctl");
    assert_eq!(out.status.code(), Some(3));
    assert!(
        server
            .wait_for_log("plain text on a TLS port", Duration::from_secs(10))
            .is_some()
    );
}

#[test]
fn dreadlock_over_tls() {
    let pki = Pki::new("tls-dread");
    let (_server, [_, _, dread]) = start(&pki.server_args());
    let config = rustls_config(&pki.ca_pem, None);
    let mut a = TlsLine::connect(dread, config.clone()).expect("connect");
    let mut b = TlsLine::connect(dread, config).expect("connect");
    a.send(b"lock shared 0\r\n").expect("send");
    assert_eq!(a.line().expect("reply"), "l locked\r\n");
    b.send(b"lock shared 0\r\n").expect("send");
    assert_eq!(b.line().expect("reply"), "t timeout\r\n");
    a.send(b"unlock shared\r\n").expect("send");
    assert_eq!(a.line().expect("reply"), "u unlocked\r\n");
    // The same port serves the three-line protocol, inside TLS too.
    assert_eq!(b.req("ping", "_", "").expect("ping"), "ok");
    // The crate's provider prefers X25519 (rustls 0.23.48's ring list starts with P-384).
    let conn = &b.io.get_ref().conn;
    assert_eq!(
        conn.negotiated_key_exchange_group().map(|g| g.name()),
        Some(rustls::NamedGroup::X25519)
    );
    assert_eq!(
        conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
}

// ---- outside clients: curl and openssl ----

fn need(tool: &str) {
    let found = Command::new(tool)
        .arg(if tool == "openssl" {
            "version"
        } else {
            "--version"
        })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{tool} is needed (.ci/run installs it: apt-get install {tool})"
    );
}

fn curl(args: &[&str]) -> (Option<i32>, String) {
    need("curl");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("run curl");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn https_with_curl_and_plain_http_gets_400() {
    let pki = Pki::new("tls-https");
    let (server, [_, http, _]) = start(&pki.server_args());
    let ca = s(&pki.ca_pem);
    let base = format!("https://localhost:{}", http.port());
    let (code, out) = curl(&[
        "--cacert",
        &ca,
        "-w",
        "\n%{http_code} %{http_version}",
        &format!("{base}/health"),
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out, "{\"status\":\"ok\"}\n200 1.1", "ALPN picks http/1.1");
    // The API over HTTPS: the stats document carries the TLS block.
    let (code, out) = curl(&["--cacert", &ca, &format!("{base}/v1/stats")]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("\"cert_not_after\":\"2099-01-01T00:00:00Z\""),
        "{out}"
    );
    let (_, metrics) = curl(&["--cacert", &ca, &format!("{base}/metrics")]);
    assert!(
        metrics.contains("dflockd_tls_certificate_not_after_seconds 4070908800"),
        "{metrics}"
    );
    assert!(metrics.contains("dflockd_tls_handshakes_total{result=\"completed\"}"));
    // An untrusted server certificate: curl refuses.
    let (code, _) = curl(&[&format!("{base}/health")]);
    assert_eq!(
        code,
        Some(60),
        "curl's 'peer certificate cannot be authenticated'"
    );
    // Plain HTTP on the HTTPS port: 400, one log line, then the close.
    let (code, out) = curl(&["-i", &format!("http://localhost:{}/health", http.port())]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
    assert!(
        out.ends_with("This port speaks HTTPS: use https:// URLs\n"),
        "{out}"
    );
    assert!(
        server
            .wait_for_log("plain HTTP on the HTTPS port", Duration::from_secs(10))
            .is_some()
    );
}

/// Runs `openssl s_client` against `addr`, sends `input`, and returns the
/// first line of output that is not s_client's own chatter (or `None` when
/// the connection ended without one within 10 s).
fn s_client(addr: SocketAddr, extra: &[&str], input: &[u8]) -> Option<String> {
    need("openssl");
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &addr.to_string(), "-quiet"])
        .args(["-servername", "localhost", "-verify_return_error"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run openssl");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input).ok();
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let got = rx.recv_timeout(Duration::from_secs(10)).ok();
    drop(stdin);
    child.kill().ok();
    child.wait().ok();
    got
}

#[test]
fn openssl_s_client_speaks_tls_1_2_and_1_3_and_mutual_tls() {
    let pki = Pki::new("tls-openssl");
    let (_server, [tcp, _, _]) = start(&pki.server_args());
    let ca = s(&pki.ca_pem);
    for version in ["-tls1_3", "-tls1_2"] {
        assert_eq!(
            s_client(tcp, &["-CAfile", &ca, version], b"ping\n_\n\n").as_deref(),
            Some("ok"),
            "{version}"
        );
    }
    // TLS 1.1 is refused.
    assert_eq!(
        s_client(tcp, &["-CAfile", &ca, "-tls1_1"], b"ping\n_\n\n"),
        None
    );

    // Mutual TLS: with the client certificate it works, without it it does not.
    let mut args = pki.server_args();
    args.extend(["--tls-client-ca".into(), ca.clone()]);
    let (_server, [tcp, _, _]) = start(&args);
    let (cert, key) = (s(&pki.client_cert), s(&pki.client_key));
    assert_eq!(
        s_client(
            tcp,
            &["-CAfile", &ca, "-cert", &cert, "-key", &key],
            b"ping\n_\n\n"
        )
        .as_deref(),
        Some("ok")
    );
    assert_eq!(s_client(tcp, &["-CAfile", &ca], b"ping\n_\n\n"), None);
}

// ---- mutual TLS, certificate checks ----

#[test]
fn mutual_tls_accepts_known_clients_and_rejects_others() {
    let pki = Pki::new("tls-mtls");
    let mut args = pki.server_args();
    args.extend(["--tls-client-ca".into(), s(&pki.ca_pem)]);
    let (server, [tcp, http, _]) = start(&args);

    // A client certificate from the trusted CA: accepted (crate client and rustls).
    let good = TlsOptions::with_client_cert(&pki.ca_pem, &pki.client_cert, &pki.client_key)
        .expect("identity");
    let client = with_opts(&client_with(good), tcp);
    assert_eq!(client.session().ping().map_err(|e| e.to_string()), Ok(()));
    let identity = Some((pki.client_cert.as_path(), pki.client_key.as_path()));
    let mut c = TlsLine::connect(tcp, rustls_config(&pki.ca_pem, identity)).expect("mtls");
    assert_eq!(c.req("ping", "_", "").expect("ping"), "ok");
    assert!(
        stats(&mut c)
            .get("server")
            .get("tls")
            .get("client_auth")
            .bool()
    );

    // No client certificate: the server refuses (TLS 1.3 reports it on the first read).
    let anonymous = TlsLine::connect(tcp, rustls_config(&pki.ca_pem, None))
        .and_then(|mut c| c.req("ping", "_", ""));
    assert!(anonymous.is_err(), "{anonymous:?}");
    let client = with_opts(&pki.client(), tcp);
    assert!(client.session().ping().is_err());

    // A certificate from a CA the server does not trust: refused.
    let stranger = Ca::new("stranger CA").leaf(&["client.example"], true, None);
    let (cert, key) = (
        pki.write("stranger.pem", &stranger.cert_pem),
        pki.write("stranger.key", &stranger.key_pem),
    );
    let foreign = TlsLine::connect(tcp, rustls_config(&pki.ca_pem, Some((&cert, &key))))
        .and_then(|mut c| c.req("ping", "_", ""));
    assert!(foreign.is_err(), "{foreign:?}");

    // HTTPS asks for the certificate too.
    let ca = s(&pki.ca_pem);
    let url = format!("https://localhost:{}/health", http.port());
    let (code, _) = curl(&["--cacert", &ca, &url]);
    assert_ne!(code, Some(0), "no client certificate");
    let (cc, ck) = (s(&pki.client_cert), s(&pki.client_key));
    let (code, out) = curl(&["--cacert", &ca, "--cert", &cc, "--key", &ck, &url]);
    assert_eq!((code, out.as_str()), (Some(0), "{\"status\":\"ok\"}"));

    // Each refusal is counted as a failed handshake.
    assert!(wait_for_stat(&mut c, "handshakes_failed", 4) >= 4);
    drop(server);
}

#[test]
fn the_client_rejects_expired_and_wrong_host_certificates() {
    let pki = Pki::new("tls-expired");
    let expired = pki
        .ca
        .leaf(&["localhost", "127.0.0.1"], false, Some((2019, 2021)));
    let (cert, key) = (
        pki.write("expired.pem", &expired.cert_pem),
        pki.write("expired.key", &expired.key_pem),
    );
    // The server loads it (an operator may run with it; stats shows the date)...
    let (_server, [tcp, _, _]) =
        start(&["--tls-cert".into(), s(&cert), "--tls-key".into(), s(&key)]);
    // ...and clients refuse it.
    let err = with_opts(&pki.client(), tcp)
        .session()
        .ping()
        .expect_err("expired certificate");
    assert!(err.to_string().contains("certificate expired"), "{err}");
    let err = TlsLine::connect(tcp, rustls_config(&pki.ca_pem, None))
        .err()
        .expect("expired certificate");
    assert!(err.to_string().contains("certificate expired"), "{err}");

    let other = pki.ca.leaf(&["db.example"], false, None);
    let (cert, key) = (
        pki.write("other.pem", &other.cert_pem),
        pki.write("other.key", &other.key_pem),
    );
    let (_server, [tcp, _, _]) =
        start(&["--tls-cert".into(), s(&cert), "--tls-key".into(), s(&key)]);
    let err = with_opts(&pki.client(), tcp)
        .session()
        .ping()
        .expect_err("wrong host");
    assert!(err.to_string().contains("not valid for name"), "{err}");
    // Naming the host the certificate is for makes it acceptable.
    let named = TlsOptions::from_ca_file(&pki.ca_pem)
        .expect("options")
        .server_name("db.example");
    assert_eq!(
        with_opts(&client_with(named), tcp)
            .session()
            .ping()
            .map_err(|e| e.to_string()),
        Ok(())
    );
}

// ---- hostile input ----

#[test]
fn plaintext_on_a_tls_port_is_closed_with_a_log_line() {
    let pki = Pki::new("tls-plain");
    let (server, [tcp, _, dread]) = start(&pki.server_args());
    for addr in [tcp, dread] {
        let mut c = TcpStream::connect(addr).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(10))).ok();
        c.write_all(b"ping\n_\n\n").expect("send");
        let mut buf = [0u8; 64];
        // Closed without a byte of reply (an EOF, or a reset for the unread request).
        match c.read(&mut buf) {
            Ok(n) => assert_eq!(n, 0, "{:?}", &buf[..n]),
            Err(e) => assert_ne!(e.kind(), ErrorKind::WouldBlock, "not closed: {e}"),
        }
    }
    // One warning line per connection (both ports).
    let warned = || {
        server
            .stderr_lines()
            .iter()
            .filter(|l| l.contains("plain text on a TLS port, closing"))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while warned() < 2 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(warned(), 2, "{:?}", server.stderr_lines());
    // Plain text counts as a failed handshake; a real client still works.
    let mut c = TlsLine::connect(tcp, rustls_config(&pki.ca_pem, None)).expect("tls");
    assert_eq!(wait_for_stat(&mut c, "handshakes_failed", 2), 2);
}

#[test]
fn stalled_handshakes_are_closed_at_10_s() {
    const STALLED: usize = 1000;
    let pki = Pki::new("tls-stall");
    let (_server, [tcp, _, _]) = start(&pki.server_args());
    // Half send a TLS record header that promises 512 bytes and stop; half send nothing.
    let mut socks: Vec<Option<(TcpStream, Instant)>> = (0..STALLED)
        .map(|i| {
            let mut s = TcpStream::connect(tcp).expect("connect");
            let opened = Instant::now();
            if i % 2 == 0 {
                s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).expect("send");
            }
            s.set_nonblocking(true).expect("nonblocking");
            Some((s, opened))
        })
        .collect();
    // Seconds from each connect to the close the client saw.
    let mut lived: Vec<f64> = Vec::with_capacity(STALLED);
    let mut buf = [0u8; 64];
    let give_up = Instant::now() + Duration::from_secs(30);
    while lived.len() < STALLED && Instant::now() < give_up {
        for slot in socks.iter_mut() {
            let Some((sock, opened)) = slot else { continue };
            let done = loop {
                match sock.read(&mut buf) {
                    Ok(0) => break true,
                    Ok(_) => continue, // the close_notify alert before the close
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                    Err(_) => break true,
                }
            };
            if done {
                lived.push(opened.elapsed().as_secs_f64());
                *slot = None;
            }
        }
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(lived.len(), STALLED, "every stalled connection is closed");
    let first = lived.iter().copied().fold(f64::MAX, f64::min);
    let last = lived.iter().copied().fold(0.0, f64::max);
    // Never before 10 s (the server accepts after the connect, so its clock
    // starts later); the late side allows for a loaded machine and the 50 ms polling.
    assert!(first >= 9.95, "closed early: {first:.2} s");
    assert!(last <= 14.0, "closed late: {last:.2} s");
    let mut c = TlsLine::connect(tcp, rustls_config(&pki.ca_pem, None)).expect("tls");
    assert_eq!(
        wait_for_stat(&mut c, "handshakes_failed", STALLED as u64 / 2),
        STALLED as u64 / 2,
        "connections that sent nothing are not failed handshakes"
    );
}

/// xorshift64*: deterministic test input without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_bytes_into_a_tls_port_never_panic() {
    const INPUTS: u64 = 100_000;
    const THREADS: u64 = 4;
    let pki = Pki::new("tls-fuzz");
    let (mut server, [tcp, http, _]) = start(&pki.server_args());
    let hello = Arc::new(common::client_hello(&rustls_config(&pki.ca_pem, None)));
    let done = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (hello, done) = (hello.clone(), done.clone());
            thread::spawn(move || {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (t + 1));
                let mut input = Vec::with_capacity(1024);
                let mut sink = [0u8; 4096];
                for i in 0..INPUTS / THREADS {
                    input.clear();
                    match rng.below(3) {
                        // Pure noise.
                        0 => input.extend((0..1 + rng.below(300)).map(|_| rng.next() as u8)),
                        // A TLS handshake record header with a random length and body.
                        1 => {
                            input.extend([0x16, 0x03, [0x01, 0x03][rng.below(2)]]);
                            input.extend((0..2 + rng.below(300)).map(|_| rng.next() as u8));
                        }
                        // A real ClientHello with a few bytes changed, maybe cut short.
                        _ => {
                            input.extend_from_slice(&hello);
                            for _ in 0..1 + rng.below(8) {
                                let at = rng.below(input.len());
                                input[at] = rng.next() as u8;
                            }
                            input.truncate(1 + rng.below(input.len()));
                        }
                    }
                    let addr = if i % 8 == 0 { http } else { tcp };
                    let Ok(mut sock) = TcpStream::connect(addr) else {
                        continue;
                    };
                    sock.set_read_timeout(Some(Duration::from_secs(10))).ok();
                    sock.write_all(&input).ok();
                    sock.shutdown(std::net::Shutdown::Write).ok();
                    // Wait for the server to finish with it (it closes), so the
                    // inputs are really processed one by one.
                    while matches!(sock.read(&mut sink), Ok(n) if n > 0) {}
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    assert!(done.load(Ordering::Relaxed) >= INPUTS * 99 / 100);
    assert!(
        server.wait_exit(Duration::ZERO).is_none(),
        "the server is alive"
    );
    let mut c = TlsLine::connect(tcp, rustls_config(&pki.ca_pem, None)).expect("tls");
    assert_eq!(c.req("ping", "_", "").expect("ping"), "ok");
    let lines = server.stderr_lines();
    assert!(!lines.iter().any(|l| l.contains("panicked")), "{lines:?}");
}

// ---- SIGHUP reload ----

#[test]
fn sighup_reloads_the_certificate_under_load() {
    const THREADS: usize = 20;
    const CONNS_PER_THREAD: usize = 10;
    let pki = Pki::new("tls-reload");
    let (server, [tcp, _, _]) = start(&pki.server_args());
    let config = rustls_config(&pki.ca_pem, None);
    let first = TlsLine::connect(tcp, config.clone()).expect("tls");
    assert_eq!(first.peer_cert(), pki.server.der.as_ref());

    // 200 connections busy with lock + release while the certificate changes.
    let client = with_opts(&pki.client(), tcp);
    let stop = Arc::new(AtomicBool::new(false));
    let (ops, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (ready_tx, ready_rx) = mpsc::channel();
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (client, stop, ops, errors) =
                (client.clone(), stop.clone(), ops.clone(), errors.clone());
            let ready = ready_tx.clone();
            thread::spawn(move || {
                let mut conns: Vec<_> = (0..CONNS_PER_THREAD)
                    .map(|_| client.connect_server(0).expect("connect"))
                    .collect();
                ready.send(()).ok();
                while !stop.load(Ordering::Relaxed) {
                    for (i, c) in conns.iter_mut().enumerate() {
                        let key = format!("reload-{t}-{i}");
                        let ok = match c.request("l", &key, "5") {
                            Ok(r) if r.starts_with("ok ") => {
                                let token = r.split(' ').nth(1).unwrap_or("").to_owned();
                                matches!(c.request("r", &key, &token), Ok(r) if r == "ok")
                            }
                            _ => false,
                        };
                        let counter = if ok { &ops } else { &errors };
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for _ in 0..THREADS {
        ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("workers connected");
    }
    thread::sleep(Duration::from_millis(300));

    // Swap in a new certificate and key (renamed into place, as deploy tools do).
    let renewed = pki
        .ca
        .leaf(&["localhost", "127.0.0.1"], false, Some((2024, 2098)));
    let (tmp_cert, tmp_key) = (
        pki.write("new.pem", &renewed.cert_pem),
        pki.write("new.key", &renewed.key_pem),
    );
    std::fs::rename(&tmp_key, &pki.key).expect("rename key");
    std::fs::rename(&tmp_cert, &pki.cert).expect("rename cert");
    server.signal("HUP");
    assert!(
        server
            .wait_for_log(
                "reload: TLS certificate and key re-read",
                Duration::from_secs(10)
            )
            .is_some()
    );
    let mut second = TlsLine::connect(tcp, config.clone()).expect("tls after reload");
    assert_eq!(
        second.peer_cert(),
        renewed.der.as_ref(),
        "new handshakes see the new cert"
    );
    assert_eq!(
        stats(&mut second)
            .get("server")
            .get("tls")
            .get("cert_not_after")
            .str(),
        "2098-01-01T00:00:00Z"
    );

    // A broken file: logged, and the last good configuration stays.
    std::fs::write(&pki.cert, "-----BEGIN CERTIFICATE-----\nnot base64\n").expect("write");
    server.signal("HUP");
    assert!(
        server
            .wait_for_log(
                "reload failed, keeping the old TLS configuration",
                Duration::from_secs(10)
            )
            .is_some()
    );
    let mut third = TlsLine::connect(tcp, config).expect("tls after a failed reload");
    assert_eq!(third.peer_cert(), renewed.der.as_ref());
    assert_eq!(third.req("ping", "_", "").expect("ping"), "ok");

    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("worker");
    }
    let (ops, errors) = (ops.load(Ordering::Relaxed), errors.load(Ordering::Relaxed));
    assert_eq!(errors, 0, "zero errors on open connections ({ops} ops)");
    assert!(ops > 200, "{ops} ops");
    // The connection opened before the reload still works, on the old certificate.
    let mut first = first;
    assert_eq!(first.req("ping", "_", "").expect("ping"), "ok");
    assert_eq!(first.peer_cert(), pki.server.der.as_ref());
}

// ---- start-up ----

#[test]
fn bad_tls_files_refuse_to_start_naming_the_file() {
    let pki = Pki::new("tls-bad");
    let garbage = pki.write("garbage.pem", "-----BEGIN CERTIFICATE-----\n!!\n");
    for check in [false, true] {
        let mut args = vec!["--port", "0", "--tls-cert", garbage.to_str().unwrap()];
        args.extend(["--tls-key", pki.key.to_str().unwrap()]);
        if check {
            args.push("--check-config");
        }
        let out = common::run_server_cmd(&args, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{err}");
        assert!(
            err.starts_with(&format!("dflockd: invalid --tls-cert {:?}: ", s(&garbage))),
            "{err}"
        );
    }
    // A key that is not the certificate's.
    let other = pki.ca.leaf(&["localhost"], false, None);
    let key = pki.write("other.key", &other.key_pem);
    let out = common::run_server_cmd(
        &[
            "--port",
            "0",
            "--tls-cert",
            pki.cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains(&format!("--tls-key {:?}", s(&key))), "{err}");
    // Good files pass --check-config, which prints every TLS setting.
    let out = common::run_server_cmd(
        &[
            "--check-config",
            "--tls-cert",
            pki.cert.to_str().unwrap(),
            "--tls-key",
            pki.key.to_str().unwrap(),
        ],
        &[("DFLOCKD_TLS_CLIENT_CA", pki.ca_pem.to_str().unwrap())],
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(report.contains(&format!(
        "--tls-client-ca={} (env DFLOCKD_TLS_CLIENT_CA)",
        s(&pki.ca_pem)
    )));
}

#[test]
fn stats_report_tls_only_when_it_is_on() {
    let server = Server::start(&[]);
    let mut c = server.client();
    let doc = c.stats();
    assert!(doc.get("server").field("tls").is_none());
    drop(server);

    let pki = Pki::new("tls-stats");
    let (server, [tcp, _, _]) = start(&pki.server_args());
    let mut c = TlsLine::connect(tcp, rustls_config(&pki.ca_pem, None)).expect("tls");
    let tls = stats(&mut c);
    let tls = tls.get("server").get("tls");
    assert_eq!(tls.get("cert_not_after").str(), "2099-01-01T00:00:00Z");
    assert_eq!(tls.get("cert_not_after_unix").u64(), 4_070_908_800);
    assert_eq!(tls.get("handshakes_completed").u64(), 1);
    assert_eq!(tls.get("handshakes_failed").u64(), 0);
    assert!(!tls.get("client_auth").bool());
    assert!(
        server
            .stderr_lines()
            .iter()
            .any(|l| l.contains("TLS on every listener") && l.contains("2099-01-01T00:00:00Z"))
    );
}
