//! The parts of configuration that touch the OS: resolving a host name, and reading
//! the TLS, auth token and fence state files (config.md §6 step 3). Reading only:
//! nothing here creates or writes a file. Every read is capped, so pointing a flag at
//! `/dev/zero` or a huge file cannot exhaust memory.

use std::fs::File;
use std::io::{self, Read};
use std::net::{IpAddr, ToSocketAddrs};
use std::path::Path;

use super::ConfigError;
use super::settings::{NamedPath, Origin};
use super::values::{check_token, parse_fence_state, trim_token};

/// Largest TLS or auth token file we read, bytes (16 MiB: far above any real chain).
const MAX_FILE_BYTES: u64 = 16 << 20;

/// Largest fence state file, bytes: 20 digits + LF, with room for leading zeros.
const MAX_FENCE_STATE_BYTES: u64 = 64;

/// An IP address literal (IPv6 without brackets), or a host name resolved now; the first
/// address returned is used (§2). `Err` is the rule for the §5 message.
pub(super) fn resolve_host(text: &str) -> Result<IpAddr, String> {
    const RULE: &str = "must be an IP address or a host name that resolves";
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(ip);
    }
    if text.is_empty() {
        return Err(RULE.to_owned());
    }
    match (text, 0u16).to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .map(|addr| addr.ip())
            .ok_or_else(|| format!("{RULE} (no address found)")),
        Err(e) => Err(format!("{RULE} ({})", io_reason(&e))),
    }
}

/// Checks that a TLS file can be read (its PEM content is validated by the TLS module).
pub(super) fn check_readable(file: &NamedPath) -> Result<(), ConfigError> {
    read_capped(&file.path, MAX_FILE_BYTES)
        .map_err(|e| cannot_read(file, &e))
        .and_then(|content| check_size(file, &content, MAX_FILE_BYTES))
}

/// Reads the auth token file: content trimmed of spaces, TABs, CRs and LFs, which must
/// then satisfy the `--auth-token` rules (so an empty file is an error).
pub(super) fn read_token_file(file: &NamedPath) -> Result<Vec<u8>, ConfigError> {
    let content = read_capped(&file.path, MAX_FILE_BYTES).map_err(|e| cannot_read(file, &e))?;
    check_size(file, &content, MAX_FILE_BYTES)?;
    let token = trim_token(&content);
    check_token(token).map_err(|rule| {
        ConfigError::Invalid(format!(
            "dflockd: invalid auth token in {}: the token {rule}",
            file.describe()
        ))
    })?;
    Ok(token.to_vec())
}

/// Checks the fence state file: absent (the server creates it at start) or holding one
/// decimal u64 and an optional LF.
pub(super) fn check_fence_state(file: &NamedPath) -> Result<(), ConfigError> {
    let content = match read_capped(&file.path, MAX_FENCE_STATE_BYTES) {
        Ok(content) => content,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(cannot_read(file, &e)),
    };
    let within_cap = content.len() as u64 <= MAX_FENCE_STATE_BYTES;
    match parse_fence_state(&content) {
        Some(_) if within_cap => Ok(()),
        _ => {
            // §5 puts the flag in parentheses: `(--fence-state-file)`, and with a
            // variable `(--fence-state-file from DFLOCKD_FENCE_STATE_FILE)`.
            let source = match file.origin {
                Origin::Env(var) => format!("{} from {var}", file.flag),
                Origin::Flag | Origin::Default => file.flag.to_owned(),
            };
            Err(ConfigError::Invalid(format!(
                "dflockd: invalid fence state file {:?} ({source}): must hold one decimal unsigned 64-bit integer",
                file.path.display().to_string(),
            )))
        }
    }
}

/// An `io::Error`'s description without the ` (os error N)` suffix, e.g. `No such file
/// or directory` (§5).
pub fn io_reason(e: &io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => text[..at].to_owned(),
        _ => text,
    }
}

/// Reads at most `cap + 1` bytes, so a caller can tell "exactly cap" from "too big".
fn read_capped(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    let mut content = Vec::new();
    File::open(path)?
        .take(cap.saturating_add(1))
        .read_to_end(&mut content)?;
    Ok(content)
}

fn check_size(file: &NamedPath, content: &[u8], cap: u64) -> Result<(), ConfigError> {
    if content.len() as u64 > cap {
        Err(ConfigError::Invalid(format!(
            "dflockd: cannot read {}: larger than {cap} bytes",
            file.describe()
        )))
    } else {
        Ok(())
    }
}

fn cannot_read(file: &NamedPath, e: &io::Error) -> ConfigError {
    ConfigError::Invalid(format!(
        "dflockd: cannot read {}: {}",
        file.describe(),
        io_reason(e)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_reason_drops_os_error_suffix() {
        let e = io::Error::from_raw_os_error(2);
        assert_eq!(io_reason(&e), "No such file or directory");
        let custom = io::Error::other("plain message");
        assert_eq!(io_reason(&custom), "plain message");
    }

    #[test]
    fn host_literals_need_no_lookup() {
        assert_eq!(resolve_host("127.0.0.1"), Ok(IpAddr::from([127, 0, 0, 1])));
        assert_eq!(resolve_host("0.0.0.0"), Ok(IpAddr::from([0, 0, 0, 0])));
        assert_eq!(
            resolve_host("::1"),
            Ok("::1".parse::<IpAddr>().expect("literal"))
        );
        assert!(resolve_host("").is_err());
    }
}
