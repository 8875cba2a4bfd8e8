//! Seeded, structure-aware random input for the TLS layer, in process (issue
//! 11): 100,000 inputs through a rustls `ServerConnection` built from our
//! own configuration (`tls::load`, with our buffer limit) in the call order
//! `TlsConn` uses, and mutated certificates through our DER reader
//! (`x509::not_after_unix`). Socket-level, `tests/tls.rs` sends the same
//! kinds of input to a real server; this is the fast, exhaustive version.

use super::tls::{self, TLS_BUFFER_LIMIT_BYTES, TlsMaterial};
use crate::config::TlsFiles;
use crate::test_rng::XorShift;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConnection};
use std::io::Read;
use std::sync::Arc;

const INPUTS: usize = 100_000;

/// A server configuration from files written by rcgen, and the leaf's DER.
fn material() -> (TlsMaterial, Vec<u8>, Arc<ClientConfig>) {
    let key = rcgen::KeyPair::generate().expect("key");
    let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    let cert = params.self_signed(&key).expect("cert");
    // One directory per call: the tests run in parallel in one process.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("dflockd-tls-fuzz-{}-{call}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
        client_ca: None,
    };
    std::fs::write(&files.cert, cert.pem()).expect("cert");
    std::fs::write(&files.key, key.serialize_pem()).expect("key");
    let material = tls::load(&files).expect("load");
    let _ = std::fs::remove_dir_all(&dir);
    let mut roots = RootCertStore::empty();
    roots.add(cert.der().clone()).expect("root");
    let client = ClientConfig::builder_with_provider(tls::crypto_provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    (material, cert.der().to_vec(), Arc::new(client))
}

fn client_hello(config: &Arc<ClientConfig>) -> Vec<u8> {
    let name = ServerName::try_from("localhost").expect("name");
    let mut conn = ClientConnection::new(config.clone(), name).expect("client");
    let mut hello = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut hello).expect("hello");
    }
    hello
}

/// One input: noise, a handshake record header with a random body, or a
/// real ClientHello with bytes changed, inserted or cut (sometimes followed
/// by more records).
fn input(rng: &mut XorShift, hello: &[u8], out: &mut Vec<u8>) {
    out.clear();
    match rng.below(4) {
        0 => out.extend((0..1 + rng.below(400)).map(|_| rng.next() as u8)),
        1 => {
            let len = rng.below(0x4800) as u16;
            out.extend([0x16, 0x03, [0x01, 0x03][rng.below(2)]]);
            out.extend(len.to_be_bytes());
            out.extend((0..rng.below(600)).map(|_| rng.next() as u8));
        }
        _ => {
            out.extend_from_slice(hello);
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(out.len());
                match rng.below(3) {
                    0 => out[at] = rng.next() as u8,
                    1 => out.insert(at, rng.next() as u8),
                    _ => out[at] ^= 1 << rng.below(8),
                }
            }
            if rng.below(3) == 0 {
                out.truncate(1 + rng.below(out.len()));
            }
            if rng.below(4) == 0 {
                // A second record: change-cipher-spec, an alert or application data.
                out.extend([
                    [0x14, 0x15, 0x17][rng.below(3)],
                    0x03,
                    0x03,
                    0x00,
                    0x02,
                    1,
                    0,
                ]);
            }
        }
    }
}

/// Feeds `data` as `TlsConn::read_into` and `write_from` would, in pieces of
/// random size: `read_tls`, `process_new_packets` after each, drain the
/// plaintext, write whatever rustls queued. Stops at the first TLS error.
/// True if the server answered (a ServerHello flight) before any error.
fn drive(conn: &mut ServerConnection, mut data: &[u8], rng: &mut XorShift) -> bool {
    let mut plain = [0u8; 4096];
    let mut wire = Vec::new();
    let mut answered = false;
    while !data.is_empty() {
        let take = (1 + rng.below(data.len())).min(data.len());
        let mut piece = &data[..take];
        match conn.read_tls(&mut piece) {
            Ok(0) => return answered,
            Ok(n) => data = &data[n..],
            Err(_) => return answered, // buffer limit reached: TlsConn stops reading
        }
        if conn.process_new_packets().is_err() {
            let _ = conn.write_tls(&mut wire); // the alert
            return answered;
        }
        while matches!(conn.reader().read(&mut plain), Ok(n) if n > 0) {}
        while conn.wants_write() {
            answered = true;
            wire.clear();
            if conn.write_tls(&mut wire).is_err() {
                return answered;
            }
        }
    }
    answered
}

#[test]
fn mutated_client_hellos_and_noise_never_panic() {
    let (material, _, client) = material();
    let hello = client_hello(&client);
    let mut rng = XorShift(0x5eed_7150_0000_0011);
    let mut buf = Vec::with_capacity(1024);
    let mut answered = 0;
    for i in 0..INPUTS {
        input(&mut rng, &hello, &mut buf);
        let config = if i % 8 == 0 {
            &material.http
        } else {
            &material.line
        };
        let mut conn = ServerConnection::new(config.clone()).expect("server connection");
        conn.set_buffer_limit(Some(TLS_BUFFER_LIMIT_BYTES));
        answered += usize::from(drive(&mut conn, &buf, &mut rng));
    }
    // Structure-aware: a fair share of the mutated hellos still get past the
    // parser to a ServerHello, so the deeper handshake code is exercised too.
    assert!(
        answered > INPUTS / 100,
        "only {answered} inputs were answered"
    );
    // The unmutated hello is accepted and answered.
    let mut conn = ServerConnection::new(material.line.clone()).expect("server connection");
    conn.read_tls(&mut hello.as_slice()).expect("read");
    conn.process_new_packets().expect("a real ClientHello");
    assert!(conn.wants_write(), "a ServerHello is queued");
}

#[test]
fn mutated_certificates_never_panic_the_der_reader() {
    let (_, der, _) = material();
    assert!(super::x509::not_after_unix(&der).is_some());
    let mut rng = XorShift(0xde12_0000_0000_0011);
    let mut cert = Vec::with_capacity(der.len() + 16);
    for _ in 0..INPUTS {
        cert.clear();
        cert.extend_from_slice(&der);
        for _ in 0..1 + rng.below(6) {
            let at = rng.below(cert.len());
            match rng.below(3) {
                0 => cert[at] = rng.next() as u8,
                1 => cert[at] ^= 1 << rng.below(8),
                _ => cert.truncate(at.max(1)),
            }
        }
        let _ = super::x509::not_after_unix(&cert);
    }
}
