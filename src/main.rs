//! `dflockd`: parse the configuration, set up logging, run the server.

use dflockd::config::{self, Action};
use dflockd::error::StartupError;
use dflockd::server::{Server, activation};
use std::process::ExitCode;

fn main() -> ExitCode {
    let env = |name: &str| std::env::var(name).ok();
    // Every configuration refusal (64/78) comes from `load`, the same checks
    // `--check-config` runs; what follows can only fail with 1 (config.md §9).
    let cfg = match config::load(std::env::args_os(), &env) {
        Ok(Action::Run(cfg)) => cfg,
        Ok(Action::Exit(code)) => return ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("{}", e.message());
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    env_logger::Builder::new()
        .parse_filters(&cfg.log_filter)
        .format_timestamp_millis()
        .init();
    for w in &cfg.warnings {
        log::warn!("{w}");
    }
    // Sockets passed by systemd (config.md §8.2, start-up step 6).
    let inherited = match activation::from_env() {
        Ok(inherited) => inherited,
        Err(e) => {
            eprintln!("dflockd: {e}");
            return ExitCode::from(config::EX_CONFIG as u8);
        }
    };
    for name in activation::VARIABLES {
        // SAFETY: `remove_var` is unsound only while another thread may read
        // or write the environment. None exists yet: main has spawned no
        // thread, and neither `config::load` nor `env_logger` (nor anything
        // above) starts one; the server's loop runs on this thread later.
        unsafe { std::env::remove_var(name) };
    }
    let server = match Server::bind_with(&cfg, inherited) {
        Ok(s) => s,
        Err(e) => {
            // Once, as one clean line (not also through the logger).
            eprintln!("dflockd: {e}");
            // A TLS file that changed since it was validated is a configuration error.
            let code = match e {
                StartupError::Tls(_) => config::EX_CONFIG,
                _ => 1,
            };
            return ExitCode::from(code as u8);
        }
    };
    ExitCode::from(server.run() as u8)
}
