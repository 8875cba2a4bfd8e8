//! The HTTP API as a history client speaks it (http.md §5, §6): each TCP
//! request of the workloads becomes the endpoint that performs the same
//! command, and each response is turned back into the TCP reply line it
//! maps from (§4.3), so the checkers treat TCP and HTTP clients alike and
//! histories mix them on the same keys.

use std::io;

/// One HTTP request: method, path, JSON body.
pub struct Request {
    pub method: &'static str,
    pub path: String,
    pub body: String,
}

fn fields(arg: &str) -> Vec<&str> {
    arg.split(' ').filter(|f| !f.is_empty()).collect()
}

/// A JSON string literal (values in the workloads are plain ASCII).
fn js(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The endpoint for TCP request `cmd key arg`.
pub fn request(cmd: &str, key: &str, arg: &str) -> io::Result<Request> {
    let f = fields(arg);
    let n = |i: usize| f.get(i).copied().unwrap_or("0").to_string();
    let space = match cmd {
        "sl" | "se" | "sw" | "sr" | "sn" => "semaphores",
        "rl" | "wl" | "re" | "we" | "rw" | "ww" | "rr" | "wr" | "rn" | "wn" => "rwlocks",
        _ => "locks",
    };
    let mode = match cmd {
        "rl" | "re" => "\"mode\":\"read\",",
        "wl" | "we" => "\"mode\":\"write\",",
        _ => "",
    };
    let post = |path: String, body: String| Request {
        method: "POST",
        path,
        body,
    };
    Ok(match cmd {
        "l" | "rl" | "wl" => post(
            format!("/v1/{space}/{key}"),
            format!(
                "{{{mode}\"acquire_timeout_s\":{},\"lease_ttl_s\":{}}}",
                n(0),
                n(1)
            ),
        ),
        "sl" => post(
            format!("/v1/{space}/{key}"),
            format!(
                "{{\"acquire_timeout_s\":{},\"limit\":{},\"lease_ttl_s\":{}}}",
                n(0),
                n(1),
                n(2)
            ),
        ),
        "e" | "re" | "we" => post(
            format!("/v1/{space}/{key}/enqueue"),
            format!("{{{mode}\"lease_ttl_s\":{}}}", n(0)),
        ),
        "se" => post(
            format!("/v1/{space}/{key}/enqueue"),
            format!("{{\"limit\":{},\"lease_ttl_s\":{}}}", n(0), n(1)),
        ),
        "w" | "sw" | "rw" | "ww" => post(
            format!("/v1/{space}/{key}/wait"),
            format!("{{\"timeout_s\":{}}}", n(0)),
        ),
        "r" | "sr" | "rr" | "wr" => post(
            format!("/v1/{space}/{key}/release"),
            format!("{{\"token\":{}}}", js(&n(0))),
        ),
        "n" | "sn" | "rn" | "wn" => post(
            format!("/v1/{space}/{key}/renew"),
            format!("{{\"token\":{},\"lease_ttl_s\":{}}}", js(&n(0)), n(1)),
        ),
        "incr" | "decr" => post(
            format!("/v1/counters/{key}/{cmd}"),
            format!("{{\"delta\":{arg}}}"),
        ),
        "get" => Request {
            method: "GET",
            path: format!("/v1/counters/{key}"),
            body: String::new(),
        },
        "cset" => post(
            format!("/v1/counters/{key}/set"),
            format!("{{\"value\":{arg}}}"),
        ),
        "kset" => post(
            format!("/v1/kv/{key}"),
            format!("{{\"value\":{}}}", js(arg)),
        ),
        "kget" | "kdel" => Request {
            method: if cmd == "kget" { "GET" } else { "DELETE" },
            path: format!("/v1/kv/{key}"),
            body: String::new(),
        },
        "kcas" => {
            let mut p = arg.split('\t');
            let (old, new) = (p.next().unwrap_or(""), p.next().unwrap_or(""));
            let old = if old.is_empty() {
                String::new()
            } else {
                format!("\"old\":{},", js(old))
            };
            post(
                format!("/v1/kv/{key}/cas"),
                format!("{{{old}\"new\":{}}}", js(new)),
            )
        }
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("no HTTP endpoint for {other}"),
            ));
        }
    })
}

/// The bytes of `req` on a keep-alive connection, with the session header.
pub fn encode(req: &Request, session: &str) -> Vec<u8> {
    let mut out = format!(
        "{} {} HTTP/1.1\r\nHost: dflockd\r\nX-Dflockd-Session: {session}\r\n",
        req.method, req.path
    );
    if req.method != "GET" && req.method != "DELETE" {
        out += &format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            req.body.len()
        );
    }
    out += "\r\n";
    out += &req.body;
    out.into_bytes()
}

/// The string member `name` of a compact JSON object (the server's own output).
pub fn member<'a>(json: &'a str, name: &str) -> Option<&'a str> {
    let at = json.find(&format!("\"{name}\":"))? + name.len() + 3;
    let rest = &json[at..];
    match rest.strip_prefix('"') {
        Some(s) => s.find('"').map(|end| &s[..end]),
        None => {
            let end = rest.find([',', '}']).unwrap_or(rest.len());
            Some(&rest[..end])
        }
    }
}

/// The TCP reply that `status` + `body` map from (http.md §4.3, §4.4).
pub fn reply(cmd: &str, arg: &str, status: u16, body: &str) -> String {
    if status == 204 {
        return "ok".into();
    }
    if status != 200 {
        return match (status, member(body, "error")) {
            (404, Some("not_held")) => "error".into(),
            (_, Some(e)) => format!("error_{e}"),
            _ => format!("error_http_{status}"),
        };
    }
    let word = member(body, "status");
    match cmd {
        "incr" | "decr" | "get" => format!("ok {}", member(body, "value").unwrap_or("?")),
        // The TCP reply of a renewal is `ok <lease>`: the lease asked for.
        "n" | "sn" | "rn" | "wn" => format!("ok {}", fields(arg).get(1).copied().unwrap_or("")),
        "kget" if word == Some("ok") => format!("ok {}", member(body, "value").unwrap_or("")),
        _ => match (word, member(body, "token")) {
            (Some(w), Some(t)) => {
                format!("{w} {t} {}", member(body, "lease_ttl_s").unwrap_or("?"))
            }
            (Some(w), None) => w.to_string(),
            (None, _) => format!("unexpected {body}"),
        },
    }
}
