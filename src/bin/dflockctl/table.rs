//! Plain-text tables for `dflockctl stats` and `dflockctl who`: one header
//! row of upper-cased column names, columns padded to their widest cell.

use serde_json::Value;

/// One JSON value as a table cell: strings bare, null or absent as `-`.
pub fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => if *b { "yes" } else { "no" }.into(),
        Some(other) => other.to_string(),
    }
}

/// `rows` (JSON objects) as a table of `columns`, each line indented by two
/// spaces and ending in a newline.
pub fn render(columns: &[&str], rows: &[Value]) -> String {
    let mut table: Vec<Vec<String>> = vec![columns.iter().map(|c| c.to_uppercase()).collect()];
    table.extend(
        rows.iter()
            .map(|r| columns.iter().map(|c| cell(r.get(*c))).collect()),
    );
    let widths: Vec<usize> = (0..columns.len())
        .map(|i| {
            table
                .iter()
                .map(|row| row[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &table {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str("  ");
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn columns_are_padded_to_the_widest_cell() {
        let rows = [
            json!({"key": "a", "n": 10}),
            json!({"key": "long", "ok": true}),
        ];
        assert_eq!(
            render(&["key", "n", "ok"], &rows),
            "  KEY   N   OK\n  a     10  -\n  long  -   yes\n"
        );
    }
}
