//! What the README and `man/dflockd.8` tell people at a keyboard, checked against the
//! real server:
//! - the README's bash sessions (the `/dev/tcp` helpers and the Protocol section's
//!   every-command walk) run against a real server, and every reply matches the reply
//!   written in its comment;
//! - "press Enter until you see `error`: you are back in step", byte for byte as the
//!   README's transcript shows it, and telnet's Ctrl-C bytes cost one `error`;
//! - a malformed Dreadlock line (`lock my-key 1000`) closes without a reply;
//! - the documents stand alone: no pointer to files outside the project.

use crate::common;

use common::Server;
use std::path::Path;
use std::process::{Command, Stdio};

fn doc(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The fenced ```bash blocks of the README, in order.
fn bash_blocks(readme: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```bash") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// The reply a script line documents: the comment after `#`, without a trailing
/// `(…)` remark. `None` for lines that send nothing or read no reply.
fn documented_reply(line: &str) -> Option<String> {
    let code = line.split(" #").next().unwrap_or(line).trim();
    let reads_reply = code.starts_with("req ") || code == "push" || code.ends_with("; push");
    if !reads_reply {
        return None;
    }
    let comment = line.split_once(" # ")?.1;
    let reply = comment.split(" (").next().unwrap_or(comment).trim();
    Some(reply.to_owned())
}

fn is_token(word: &str) -> bool {
    word.len() == 32 && word.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `<placeholder>` and a literal token match any one word; `...` ends a prefix match.
fn reply_matches(expected: &str, actual: &str) -> bool {
    if let Some((prefix, _)) = expected.split_once("...") {
        return actual.starts_with(prefix);
    }
    let (exp, act): (Vec<&str>, Vec<&str>) =
        (expected.split(' ').collect(), actual.split(' ').collect());
    exp.len() == act.len()
        && exp.iter().zip(&act).all(|(e, a)| {
            e == a || (e.starts_with('<') && e.ends_with('>')) || (is_token(e) && is_token(a))
        })
}

/// The README's helper block and Protocol walk, run by bash against a real server:
/// every `req`/`push` line prints exactly one reply, compared in order with the
/// replies the comments document. `auth` is skipped: it needs a server with a token,
/// where it must be the first request.
#[test]
fn readme_bash_sessions_get_the_documented_replies() {
    let readme = doc("README.md");
    let blocks = bash_blocks(&readme);
    let helpers = blocks
        .iter()
        .find(|b| b.contains("exec 3<>/dev/tcp/127.0.0.1/6388") && b.contains("req()"))
        .expect("the README's /dev/tcp helper block");
    let walk = blocks
        .iter()
        .find(|b| b.contains("req ping _") && b.contains("req bwait"))
        .expect("the README's Protocol walk");

    let server = Server::start(&[]);
    let port = server.addr().port().to_string();
    let mut script = String::new();
    let mut expected = Vec::new();
    for (i, block) in [helpers, walk].into_iter().enumerate() {
        if i == 1 {
            script.push_str("exec 3<>/dev/tcp/127.0.0.1/6388\n");
        }
        for line in block.lines() {
            if line.trim_start().starts_with("req auth ") {
                continue;
            }
            if let Some(reply) = documented_reply(line) {
                expected.push((line.to_owned(), reply));
            }
            script.push_str(line);
            script.push('\n');
        }
    }
    let script = script.replace("/127.0.0.1/6388", &format!("/127.0.0.1/{port}"));
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bash failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let actual: Vec<&str> = stdout.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert!(
        expected.len() >= 60,
        "only {} documented replies",
        expected.len()
    );
    assert_eq!(
        actual.len(),
        expected.len(),
        "one reply per documented line; got:\n{stdout}"
    );
    for ((line, want), got) in expected.iter().zip(&actual) {
        assert!(
            reply_matches(want, got),
            "README line {line:?}\n  documents {want:?}\n  server said {got:?}"
        );
    }
}

/// The README's "back in step" transcript, byte for byte: after a stray empty line
/// every request is answered `error` one line early; Enters until `error` resync.
#[test]
fn stray_enter_then_enters_until_error_resyncs() {
    let server = Server::start(&[]);
    let mut c = server.client();
    c.send(b"ping\n_\n\n");
    assert_eq!(c.line(), "ok");
    c.send(b"\n"); // the stray Enter
    c.send(b"ping\n_\n");
    assert_eq!(c.line(), "error", "one line early: \"\" ping _");
    c.send(b"\n"); // the argument line, now the first line of the next request
    c.send(b"\n");
    c.send(b"\n");
    assert_eq!(c.line(), "error", "\"\" \"\" \"\"");
    c.send(b"ping\n_\n\n");
    assert_eq!(c.line(), "ok", "back in step");
    // From in step, three Enters are always one `error`, never anything that waits.
    c.send(b"\r\n\r\n\r\n");
    assert_eq!(c.line(), "error");
    // A half-typed command that needs no key or argument answers first.
    c.send(b"ping\n\n\n");
    assert_eq!(c.line(), "ok");
    // telnet's Ctrl-C (IAC IP IAC DO TIMING-MARK) has no LF: it spoils one request.
    c.send(b"\xff\xf4\xff\xfd\x06ping\r\n_\r\n\r\n");
    assert_eq!(c.line(), "error");
    assert_eq!(c.req("ping", "_", ""), "ok");
}

/// "`lock my-key 1000` … makes the server hang up without a reply".
#[test]
fn malformed_dreadlock_line_hangs_up_without_a_reply() {
    let server = Server::start(&[]);
    let mut c = server.client();
    c.send(b"lock my-key 1000\r\n");
    c.expect_closed();
    let mut ok = server.client();
    ok.send(b"lock mykey42 1000\r\nunlock mykey42\r\n");
    assert_eq!(ok.line(), "l locked\r");
    assert_eq!(ok.line(), "u unlocked\r");
}

/// The project's documents stand alone: the README and every man page.
#[test]
fn documents_point_nowhere_outside_the_project() {
    let man = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let mut docs = vec!["README.md".to_owned()];
    for entry in std::fs::read_dir(&man).expect("man/") {
        let name = entry.expect("man/ entry").file_name();
        docs.push(format!("man/{}", name.to_string_lossy()));
    }
    assert!(docs.len() >= 6, "README and at least five pages: {docs:?}");
    for rel in &docs {
        let text = doc(rel);
        for needle in ["shared/", "spec/", "protocol.md", "config.md", "../"] {
            assert!(!text.contains(needle), "{rel} mentions {needle:?}");
        }
    }
}
