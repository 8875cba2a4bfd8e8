//! `dflockctl who <key>`: the holders and waiters of a key (protocol.md §8.15),
//! as two small tables, or the server's JSON line with `--json`. Tokens are
//! never shown (the server sends only fences).

use super::table::{self, cell};
use serde_json::Value;

/// Columns of the holder and waiter tables, as named in the document.
const HOLDERS: &[&str] = &[
    "owner",
    "peer",
    "fence",
    "mode",
    "held_s",
    "lease_remaining_s",
];
const WAITERS: &[&str] = &["position", "owner", "peer", "mode", "waited_s"];

/// Renders the document for a terminal.
pub fn render(doc: &Value) -> String {
    let mut out = format!(
        "key {}: {}, limit {}\n",
        cell(doc.get("key")),
        cell(doc.get("type")),
        cell(doc.get("limit"))
    );
    for (section, columns) in [("holders", HOLDERS), ("waiters", WAITERS)] {
        let rows = doc
            .get(section)
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        out.push_str(&format!("{section} ({})\n", rows.len()));
        if rows.is_empty() {
            continue;
        }
        out.push_str(&table::render(columns, rows));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_holders_and_waiters() {
        let doc: Value = serde_json::from_str(
            r#"{"key":"job","type":"lock","limit":1,
               "holders":[{"owner":17,"peer":"10.0.0.5:51234","fence":"18ea9db47e590001","mode":"exclusive","held_s":12.5,"lease_remaining_s":20.5}],
               "waiters":[{"owner":23,"peer":"http-session","mode":"exclusive","position":1,"waited_s":3.1}]}"#,
        )
        .unwrap();
        assert_eq!(
            render(&doc),
            "key job: lock, limit 1\n\
             holders (1)\n\
             \x20 OWNER  PEER            FENCE             MODE       HELD_S  LEASE_REMAINING_S\n\
             \x20 17     10.0.0.5:51234  18ea9db47e590001  exclusive  12.5    20.5\n\
             waiters (1)\n\
             \x20 POSITION  OWNER  PEER          MODE       WAITED_S\n\
             \x20 1         23     http-session  exclusive  3.1\n"
        );
    }
}
