//! `dflockd`: parse the configuration, set up logging, run the server.

use dflockd::config::{self, Action};
use dflockd::error::StartupError;
use dflockd::server::Server;
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
    let server = match Server::bind(&cfg) {
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
