//! `dflockd`: parse the configuration, set up logging, run the server.

use dflockd::config::{self, Action};
use dflockd::server::Server;
use std::process::ExitCode;

fn main() -> ExitCode {
    let env = |name: &str| std::env::var(name).ok();
    let cfg = match config::load(std::env::args_os(), &env) {
        Ok(Action::Run(cfg)) => cfg,
        Ok(Action::Exit(code)) => return ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("{}", e.message());
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    // TLS and the HTTP API are specified but not built yet. Refuse rather
    // than silently serve plain text or leave the HTTP port closed.
    if cfg.tls.is_some() {
        eprintln!("dflockd: --tls-cert/--tls-key: TLS is not supported by this build yet");
        return ExitCode::from(78);
    }
    if cfg.http_port != 0 {
        eprintln!("dflockd: --http-port: the HTTP API is not supported by this build yet");
        return ExitCode::from(78);
    }
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
            return ExitCode::from(1);
        }
    };
    ExitCode::from(server.run() as u8)
}
