//! The man pages kept in step with the programs they describe:
//! - every long flag and environment variable that clap knows for a binary (read
//!   from `--help` of the built binary and of every subcommand, so hidden flags are
//!   skipped) has an entry in that binary's page, and the page has no entry for a
//!   flag clap does not know; a flag a page merely mentions must belong to one of
//!   the three binaries (the client pages name server flags);
//! - the endpoint list of `dflockd-http.7` is exactly the server's route table;
//! - `MANWIDTH=80 man --warnings -l <page>` prints no warning for any page in
//!   `man/`. Without `man` the check is skipped locally, and fails under `CI=true`,
//!   where `.ci/run` installs it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Each binary and its page.
const BINARIES: [(&str, &str); 3] = [
    (env!("CARGO_BIN_EXE_dflockd"), "man/dflockd.8"),
    (env!("CARGO_BIN_EXE_dflockctl"), "man/dflockctl.1"),
    (env!("CARGO_BIN_EXE_dflock-load"), "man/dflock-load.1"),
];

/// Pages that describe the server's interfaces; the flags they mention are the
/// server's.
const SERVER_TOPIC_PAGES: [&str; 2] = ["man/dflockd-protocol.7", "man/dflockd-http.7"];

/// Hidden flags (absent from `--help`) that a page may still document.
const HIDDEN: [&str; 1] = ["--completions"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The groff source with the escapes that can sit inside a flag or a variable
/// name undone: `\-` is `-`, font changes and `\%`/`\&` vanish.
fn plain(groff: &str) -> String {
    let mut out = String::with_capacity(groff.len());
    let mut chars = groff.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('-') => out.push('-'),
            Some('%') | Some('&') => {}
            Some('f') => {
                // \fB, \fI, \fR, \fP or \f(CR
                if chars.next() == Some('(') {
                    chars.next();
                    chars.next();
                }
            }
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// `--name` words in a text (a bare `--` is not a flag).
fn flags_in(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("--") {
        let start = i + pos;
        let name_start = start + 2;
        let mut end = name_start;
        while end < bytes.len()
            && (bytes[end].is_ascii_lowercase()
                || bytes[end].is_ascii_digit()
                || bytes[end] == b'-')
        {
            end += 1;
        }
        let name = text[name_start..end].trim_end_matches('-');
        let preceded_by_dash = start > 0 && bytes[start - 1] == b'-';
        if !name.is_empty() && name.as_bytes()[0].is_ascii_lowercase() && !preceded_by_dash {
            found.insert(format!("--{name}"));
        }
        i = end.max(name_start);
    }
    found
}

/// `DFLOCKD_…` variable names in a text.
fn variables_in(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(pos) = rest.find("DFLOCKD_") {
        let tail = &rest[pos..];
        let len = tail
            .bytes()
            .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
            .count();
        let name = tail[..len].trim_end_matches('_');
        if name.len() > "DFLOCKD".len() {
            found.insert(name.to_owned());
        }
        rest = &tail[len.max(1)..];
    }
    found
}

/// What a page documents: the flags in the tag lines of its `.TP` entries.
fn documented_flags(groff: &str) -> BTreeSet<String> {
    let lines: Vec<&str> = groff.lines().collect();
    let mut found = BTreeSet::new();
    for (i, line) in lines.iter().enumerate() {
        if matches!(*line, ".TP" | ".TQ") {
            if let Some(tag) = lines.get(i + 1) {
                found.extend(flags_in(&plain(tag)));
            }
        }
    }
    found
}

fn help(binary: &str, path: &[String]) -> String {
    let out = Command::new(binary)
        .args(path)
        .arg("--help")
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {binary} --help: {e}"));
    assert!(out.status.success(), "{binary} {path:?} --help failed");
    String::from_utf8(out.stdout).expect("UTF-8 help")
}

/// The long flags and variables of one `--help` text, and its subcommands.
struct HelpPage {
    flags: BTreeSet<String>,
    variables: BTreeSet<String>,
    subcommands: Vec<String>,
}

fn parse_help(text: &str) -> HelpPage {
    let mut page = HelpPage {
        flags: BTreeSet::new(),
        variables: BTreeSet::new(),
        subcommands: Vec::new(),
    };
    let mut in_commands = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if line.starts_with("Commands:") {
            in_commands = true;
            continue;
        }
        if in_commands {
            match trimmed.split_whitespace().next() {
                Some(name) if line.starts_with("  ") => {
                    if name != "help" {
                        page.subcommands.push(name.to_owned());
                    }
                    continue;
                }
                _ => in_commands = false,
            }
        }
        // An option line: `-s, --server <HOST:PORT>  …` or `    --debug[=<BOOL>]`.
        if trimmed.starts_with('-') {
            for word in trimmed.split_whitespace() {
                if !word.starts_with('-') {
                    break;
                }
                if let Some(name) = word.strip_prefix("--") {
                    let name: String = name
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
                        .collect();
                    if !name.is_empty() {
                        page.flags.insert(format!("--{name}"));
                    }
                }
            }
        }
        for (pos, _) in line.match_indices("[env: ") {
            let note = &line[pos..];
            let note = &note[..note.find(']').unwrap_or(note.len())];
            page.variables.extend(variables_in(note));
        }
    }
    page
}

/// Every long flag and variable of a binary, through all its subcommands.
fn clap_surface(binary: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut flags = BTreeSet::new();
    let mut variables = BTreeSet::new();
    let mut todo: Vec<Vec<String>> = vec![Vec::new()];
    while let Some(path) = todo.pop() {
        let page = parse_help(&help(binary, &path));
        flags.extend(page.flags);
        variables.extend(page.variables);
        for sub in page.subcommands {
            let mut next = path.clone();
            next.push(sub);
            todo.push(next);
        }
    }
    (flags, variables)
}

#[test]
fn help_parser_finds_flags_variables_and_subcommands() {
    let page = parse_help(
        "Commands:\n  lock     Run\n  help     Print\n\nOptions:\n  -s, --server <HOST:PORT>  Server [env: DFLOCKD_SERVERS] [default: x]\n      --debug[=<BOOL>]\n          Short for --log-level [env: DFLOCKD_GC_INTERVAL_S, deprecated DFLOCKD_GC_LOOP_SLEEP]\n",
    );
    let flags: Vec<&str> = page.flags.iter().map(String::as_str).collect();
    assert_eq!(flags, ["--debug", "--server"]);
    let vars: Vec<&str> = page.variables.iter().map(String::as_str).collect();
    assert_eq!(
        vars,
        [
            "DFLOCKD_GC_INTERVAL_S",
            "DFLOCKD_GC_LOOP_SLEEP",
            "DFLOCKD_SERVERS"
        ]
    );
    assert_eq!(page.subcommands, ["lock"]);
    let src = ".TP\n.BR \\-\\-fence\\-field [ =\\fIbool\\fR ]\nSee \\fB\\-\\-port\\fR; \\fBDFLOCKD_*\\fR, -- cmd\n";
    assert_eq!(
        documented_flags(src).into_iter().collect::<Vec<_>>(),
        ["--fence-field"]
    );
    let mentioned: Vec<String> = flags_in(&plain(src)).into_iter().collect();
    assert_eq!(mentioned, ["--fence-field", "--port"]);
    assert!(variables_in(&plain(src)).is_empty());
}

#[test]
fn every_clap_flag_and_variable_has_an_entry_and_no_other_flag_does() {
    let surfaces: Vec<_> = BINARIES.iter().map(|(bin, _)| clap_surface(bin)).collect();
    let all_flags: BTreeSet<String> = surfaces
        .iter()
        .flat_map(|(f, _)| f.iter().cloned())
        .chain(HIDDEN.iter().map(|s| s.to_string()))
        .collect();
    let all_variables: BTreeSet<String> = surfaces
        .iter()
        .flat_map(|(_, v)| v.iter().cloned())
        .collect();
    let mut problems = Vec::new();
    for ((_, rel), (flags, variables)) in BINARIES.iter().zip(&surfaces) {
        assert!(
            flags.len() >= 5,
            "{rel}: only {} flags parsed from --help",
            flags.len()
        );
        let groff = read(rel);
        let text = plain(&groff);
        let documented = documented_flags(&groff);
        for flag in flags.difference(&documented) {
            problems.push(format!("{rel}: no entry for {flag}"));
        }
        for flag in documented.difference(flags) {
            if !HIDDEN.contains(&flag.as_str()) {
                problems.push(format!(
                    "{rel}: an entry for {flag}, which clap does not know"
                ));
            }
        }
        for flag in flags_in(&text).difference(&all_flags) {
            problems.push(format!("{rel}: mentions {flag}, which no binary knows"));
        }
        let mentioned = variables_in(&text);
        for var in variables.difference(&mentioned) {
            problems.push(format!("{rel}: does not name {var}"));
        }
        for var in mentioned.difference(&all_variables) {
            problems.push(format!("{rel}: names {var}, which no binary knows"));
        }
    }
    let server_flags = &surfaces[0].0;
    for rel in SERVER_TOPIC_PAGES {
        for flag in flags_in(&plain(&read(rel))).difference(server_flags) {
            problems.push(format!(
                "{rel}: mentions {flag}, which dflockd does not know"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The `.B "METHOD /path"` entries of `dflockd-http.7` are the route table.
#[test]
fn http_page_lists_exactly_the_route_table() {
    let groff = read("man/dflockd-http.7");
    let in_page: BTreeSet<String> = groff
        .lines()
        .filter_map(|l| l.strip_prefix(".B \""))
        .filter_map(|l| l.strip_suffix('"'))
        .filter(|l| l.contains(" /"))
        .map(str::to_owned)
        .collect();
    let in_table: BTreeSet<String> = dflockd::http::route::ROUTES
        .iter()
        .map(|r| format!("{} {}", r.method.as_str(), r.template))
        .collect();
    let missing: Vec<_> = in_table.difference(&in_page).collect();
    let extra: Vec<_> = in_page.difference(&in_table).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "dflockd-http.7 lacks {missing:?} and lists unknown {extra:?}"
    );
}

fn pages() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root().join("man"))
        .expect("man/")
        .map(|e| e.expect("man/ entry").path())
        .filter(|p| {
            p.extension().is_some_and(|x| {
                x.len() == 1 && x.to_string_lossy().chars().all(|c| c.is_ascii_digit())
            })
        })
        .collect();
    pages.sort();
    pages
}

#[test]
fn pages_render_at_80_columns_without_warnings() {
    let probe = Command::new("man")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if probe.is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "`man` is not installed; .ci/run installs man-db and groff"
        );
        eprintln!("skipping: `man` is not installed (apt-get install man-db groff)");
        return;
    }
    let pages = pages();
    assert!(pages.len() >= 5, "only {} pages in man/", pages.len());
    for page in pages {
        let out = Command::new("man")
            .args(["--warnings", "-l"])
            .arg(&page)
            .env("MANWIDTH", "80")
            .env("MANPAGER", "cat")
            .env("PAGER", "cat")
            .env("LC_ALL", "C.UTF-8")
            .stdin(Stdio::null())
            .output()
            .expect("run man");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "man -l {} failed: {stderr}",
            page.display()
        );
        assert!(stderr.trim().is_empty(), "{}:\n{stderr}", page.display());
        assert!(
            out.stdout.len() > 1000,
            "{} rendered to almost nothing",
            page.display()
        );
    }
}
