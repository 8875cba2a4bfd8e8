//! [`Api`]: the `ureq` client of the HTTP tests.

use super::Resp;
use super::common::Json;
use std::io::Read;
use std::net::SocketAddr;
use std::time::Duration;

/// A `ureq` client for one server: keep-alive pool, 4xx/5xx returned as
/// responses, a 30 s overall timeout per call (longer than any wait a test
/// asks the server for).
#[derive(Clone)]
pub struct Api {
    agent: ureq::Agent,
    pub base: String,
    /// `Authorization` sent with every request, if any.
    pub bearer: Option<String>,
}

impl Api {
    pub fn new(addr: SocketAddr) -> Api {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build();
        Api {
            agent: config.into(),
            base: format!("http://{addr}"),
            bearer: None,
        }
    }

    /// A client whose requests all carry `Authorization: Bearer <token>`.
    pub fn with_bearer(addr: SocketAddr, token: &str) -> Api {
        Api {
            bearer: Some(format!("Bearer {token}")),
            ..Api::new(addr)
        }
    }

    fn finish(resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>, what: &str) -> Resp {
        let mut resp = resp.unwrap_or_else(|e| panic!("{what}: {e}"));
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        resp.body_mut()
            .as_reader()
            .read_to_end(&mut body)
            .unwrap_or_else(|e| panic!("{what}: reading the body: {e}"));
        Resp {
            status,
            headers,
            body,
        }
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Resp {
        self.get_with(path, &[])
    }

    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(b) = &self.bearer {
            req = req.header("Authorization", b);
        }
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        Api::finish(req.call(), &format!("GET {path}"))
    }

    pub fn head(&self, path: &str) -> Resp {
        let mut req = self.agent.head(format!("{}{path}", self.base));
        if let Some(b) = &self.bearer {
            req = req.header("Authorization", b);
        }
        Api::finish(req.call(), &format!("HEAD {path}"))
    }

    pub fn delete(&self, path: &str) -> Resp {
        self.delete_with(path, &[])
    }

    pub fn delete_with(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        let mut req = self.agent.delete(format!("{}{path}", self.base));
        if let Some(b) = &self.bearer {
            req = req.header("Authorization", b);
        }
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        Api::finish(req.call(), &format!("DELETE {path}"))
    }

    /// `POST path` with `body` (an empty string sends `Content-Length: 0`).
    pub fn post(&self, path: &str, body: &str) -> Resp {
        self.post_with(path, body, &[])
    }

    /// `POST path` with the session header.
    pub fn post_s(&self, path: &str, session: &str, body: &str) -> Resp {
        self.post_with(path, body, &[("X-Dflockd-Session", session)])
    }

    pub fn post_with(&self, path: &str, body: &str, headers: &[(&str, &str)]) -> Resp {
        let mut req = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/json");
        if let Some(b) = &self.bearer {
            req = req.header("Authorization", b);
        }
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        let what = format!("POST {path} {body}");
        if body.is_empty() {
            Api::finish(req.send_empty(), &what)
        } else {
            Api::finish(req.send(body), &what)
        }
    }

    /// `PATCH path` with a JSON `body`.
    pub fn patch(&self, path: &str, body: &str) -> Resp {
        let mut req = self
            .agent
            .patch(format!("{}{path}", self.base))
            .header("Content-Type", "application/json");
        if let Some(b) = &self.bearer {
            req = req.header("Authorization", b);
        }
        Api::finish(req.send(body), &format!("PATCH {path} {body}"))
    }

    /// `POST /v1/sessions` → the new session id (checked to be 32 hex chars).
    pub fn session(&self) -> String {
        let r = self.post("/v1/sessions", "");
        assert_eq!(r.status, 200, "create session: {} {}", r.status, r.text());
        let id = r.json().get("session_id").str().to_string();
        super::common::assert_token_shape(&id);
        id
    }

    /// `POST /v1/locks/{key}` for `session` → the response.
    pub fn lock(&self, session: &str, key: &str, timeout_s: u64) -> Resp {
        self.post_s(
            &format!("/v1/locks/{key}"),
            session,
            &format!(r#"{{"acquire_timeout_s":{timeout_s}}}"#),
        )
    }

    /// Releases `token` of lock `key` and asserts `204`.
    #[track_caller]
    pub fn unlock(&self, session: &str, key: &str, token: &str) {
        self.post_s(
            &format!("/v1/locks/{key}/release"),
            session,
            &format!(r#"{{"token":"{token}"}}"#),
        )
        .expect_204();
    }

    /// `GET /v1/stats` as JSON.
    pub fn stats(&self) -> Json {
        let r = self.get("/v1/stats");
        assert_eq!(r.status, 200, "stats: {}", r.text());
        r.json()
    }

    /// Waiters on the exclusive lock `key` (0 when not listed).
    pub fn lock_waiters(&self, key: &str) -> u64 {
        self.stats()
            .entry("locks", key)
            .map_or(0, |e| e.get("waiters").u64())
    }

    /// Polls stats until the lock `key` has exactly `n` waiters.
    pub fn wait_lock_waiters(&self, key: &str, n: u64) {
        super::common::wait_until(&format!("{n} waiters on lock {key:?}"), || {
            self.lock_waiters(key) == n
        });
    }
}
