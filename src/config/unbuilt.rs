//! Settings the configuration accepts but this build cannot serve yet: TLS (config.md
//! §3.5). Serving plain text where TLS was asked for would be worse than refusing, so
//! it refuses with exit 78.
//!
//! This is the one place these refusals live. [`super::load`] runs it on every
//! configuration it accepts, before deciding between `--check-config` and a start, so
//! the two always agree. When a feature lands, delete its check here (and its case in
//! `tests/check_config.rs`); nothing else refers to it.

use super::{Config, ConfigError};

/// `Err(ConfigError::Invalid)` naming the flags of the first setting this build cannot
/// serve; `Ok(())` when every configured feature is built.
pub(super) fn refuse_unbuilt(config: &Config) -> Result<(), ConfigError> {
    if config.tls.is_some() {
        return Err(ConfigError::Invalid(
            "dflockd: --tls-cert/--tls-key: TLS is not supported by this build yet".to_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TlsFiles;

    #[test]
    fn defaults_are_served() {
        assert_eq!(refuse_unbuilt(&Config::default()), Ok(()));
    }

    #[test]
    fn tls_is_refused_with_exit_78() {
        let tls = Config {
            tls: Some(TlsFiles {
                cert: "c.pem".into(),
                key: "k.pem".into(),
            }),
            ..Config::default()
        };
        let http = Config {
            http_port: 6389,
            ..Config::default()
        };
        assert_eq!(refuse_unbuilt(&http), Ok(()), "the HTTP API is built");
        let e = refuse_unbuilt(&tls).expect_err("refused");
        assert_eq!(e.exit_code(), 78);
        assert!(
            e.message().starts_with("dflockd: --tls-cert/--tls-key: "),
            "{e}"
        );
    }
}
