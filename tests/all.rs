//! The integration suite as one test binary.
//!
//! Each `tests/*.rs` file used to be its own binary, and a fresh
//! `cargo test --profile ci` spent most of its time compiling and linking ~50
//! copies of the library with rustls, ring and serde_json. Cargo.toml sets
//! `autotests = false`, and this file includes the files as modules instead:
//! each keeps its own `mod common;` and its tests, now named `<file>::<test>`
//! (`cargo test --profile ci --test all locks::` runs tests/locks.rs).
//!
//! **A new test file must be listed here** (in alphabetical order):
//!
//! ```text
//! #[path = "new_file.rs"]
//! mod new_file;
//! ```
//!
//! A helper module shared between files refers to its siblings through
//! `super::` (e.g. `super::common`), never `crate::`, which is this file.
//! A file that needs a process of its own (a `#[global_allocator]`, process-wide
//! counters) gets its own `[[test]]` in Cargo.toml instead. The test at the end
//! fails, naming the line to add, if a file is in neither place.

// The shared helpers, compiled once for the whole suite: a file reaches them
// with `use crate::common;` (and `use crate::http_common;`), not a `mod` of
// its own, which would compile another copy into this binary.
mod common;
mod http_common;

#[path = "activation.rs"]
mod activation;
#[path = "barriers.rs"]
mod barriers;
#[path = "busy_poll.rs"]
mod busy_poll;
#[path = "check_config.rs"]
mod check_config;
#[path = "client.rs"]
mod client;
#[path = "completions.rs"]
mod completions;
#[path = "contention.rs"]
mod contention;
#[path = "counters.rs"]
mod counters;
#[path = "defaults_file.rs"]
mod defaults_file;
#[path = "dflockctl.rs"]
mod dflockctl;
#[path = "dflockctl_top.rs"]
mod dflockctl_top;
#[path = "disconnect.rs"]
mod disconnect;
#[path = "docs.rs"]
mod docs;
#[path = "election.rs"]
mod election;
#[path = "ext_deadlock.rs"]
mod ext_deadlock;
#[path = "ext_opt.rs"]
mod ext_opt;
#[path = "ext_pos.rs"]
mod ext_pos;
#[path = "ext_random.rs"]
mod ext_random;
#[path = "ext_who.rs"]
mod ext_who;
#[path = "framing.rs"]
mod framing;
#[path = "http_admission.rs"]
mod http_admission;
#[path = "http_api.rs"]
mod http_api;
#[path = "http_data.rs"]
mod http_data;
#[path = "http_fuzz/main.rs"]
mod http_fuzz;
#[path = "http_locks.rs"]
mod http_locks;
#[path = "http_mixed.rs"]
mod http_mixed;
#[path = "http_openapi.rs"]
mod http_openapi;
#[path = "http_sse.rs"]
mod http_sse;
#[path = "kv.rs"]
mod kv;
#[path = "lease_notices.rs"]
mod lease_notices;
#[path = "lifecycle.rs"]
mod lifecycle;
#[path = "limits.rs"]
mod limits;
#[path = "lists.rs"]
mod lists;
#[path = "load.rs"]
mod load;
#[path = "locks.rs"]
mod locks;
#[path = "man_pages.rs"]
mod man_pages;
#[path = "memory_budget.rs"]
mod memory_budget;
#[path = "packaging.rs"]
mod packaging;
#[path = "pubsub.rs"]
mod pubsub;
#[path = "reload.rs"]
mod reload;
#[path = "rwlocks.rs"]
mod rwlocks;
#[path = "semaphores.rs"]
mod semaphores;
#[path = "transcript.rs"]
mod transcript;
#[path = "watch.rs"]
mod watch;

/// The long tests, started first. libtest starts tests in name order, and the
/// suite's longest (10–17 s each: the model checker, the disconnect storm,
/// the 10 s TLS and HTTP deadlines, the histories, the idle clocks) sat late
/// in the alphabet, so they ran on after every short test had finished. Under
/// a name that sorts first they run beside the short ones: the binary's run
/// went from 38.6 s (them last) to 28.0 s (them first) on 2 cores. Test names keep their file's module
/// (`a_long::storms::…`), so filters such as `storms::` still select them.
// `path = "."`: the files below are read from tests/, not tests/a_long/.
#[path = "."]
mod a_long {
    #[path = "history.rs"]
    mod history;
    #[path = "hostile.rs"]
    mod hostile;
    #[path = "http_transport.rs"]
    mod http_transport;
    #[path = "idle.rs"]
    mod idle;
    #[path = "model_state.rs"]
    mod model_state;
    #[path = "storms.rs"]
    mod storms;
    #[path = "tls.rs"]
    mod tls;
}

/// Every `tests/*.rs` file and every `tests/<dir>/main.rs` is built by some
/// test target: listed above, or a `[[test]]` of its own in Cargo.toml. With
/// `autotests = false` cargo would otherwise skip a new file without a word.
#[test]
fn every_test_file_is_in_a_test_target() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let this = std::fs::read_to_string(root.join("tests/all.rs")).expect("tests/all.rs");
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
    let mut missing = Vec::new();
    let mut seen = 0;
    for entry in std::fs::read_dir(root.join("tests")).expect("tests/") {
        let path = entry.expect("a tests/ entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let (rel, module) = if path.is_dir() && path.join("main.rs").is_file() {
            (format!("{name}/main.rs"), name.to_string())
        } else if let Some(stem) = name.strip_suffix(".rs") {
            (name.to_string(), stem.to_string())
        } else {
            continue;
        };
        if rel == "all.rs" {
            continue;
        }
        seen += 1;
        let here = this.contains(&format!("#[path = \"{rel}\"]\nmod {module};"))
            || this.contains(&format!("    #[path = \"{rel}\"]\n    mod {module};"));
        let own = manifest.contains(&format!("path = \"tests/{rel}\""));
        if !here && !own {
            missing.push(format!(
                "tests/{rel} is built by no test target: add\n    #[path = \"{rel}\"]\n    mod {module};\nto tests/all.rs (or give it a [[test]] in Cargo.toml)"
            ));
        }
    }
    assert!(seen > 40, "only {seen} test files found under tests/");
    assert!(missing.is_empty(), "\n{}", missing.join("\n"));
}
