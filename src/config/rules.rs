//! The cross-field rules of config.md §4, checked once every single value is valid and
//! before any file is read.

use super::settings::{Line, NamedPath, Origin, Setting, flags, invalid};
use super::{ConfigError, Limits, PUSH_FRAME_OVERHEAD_BYTES};

/// The §4 rules in table order: TLS files paired (and a client CA only with them),
/// distinct non-zero ports, room for one largest push frame. The first broken rule is
/// returned. `tls` is `[cert, key, client CA]`.
pub(super) fn check_cross_fields(
    lines: &[Line],
    tls: [Option<&NamedPath>; 3],
    ports: [u16; 3],
    limits: &Limits,
) -> Result<(), ConfigError> {
    let [tls_cert, tls_key, tls_client_ca] = tls;
    match (tls_cert, tls_key) {
        (Some(set), None) | (None, Some(set)) => {
            let missing = if set.flag == flags::TLS_CERT.flag {
                flags::TLS_KEY.flag
            } else {
                flags::TLS_CERT.flag
            };
            return Err(ConfigError::Invalid(format!(
                "dflockd: {}{} is set but {missing} is not: give both or neither",
                set.flag,
                set.origin.source_note()
            )));
        }
        (None, None) => {
            if let Some(ca) = tls_client_ca {
                return Err(ConfigError::Invalid(format!(
                    "dflockd: {}{} is set but {} is not: client certificates need TLS (give {} and {} too)",
                    ca.flag,
                    ca.origin.source_note(),
                    flags::TLS_CERT.flag,
                    flags::TLS_CERT.flag,
                    flags::TLS_KEY.flag,
                )));
            }
        }
        (Some(_), Some(_)) => {}
    }

    let port_flags = [&flags::PORT, &flags::HTTP_PORT, &flags::DREADLOCK_PORT];
    for (a, b) in [(0, 1), (0, 2), (1, 2)] {
        if ports[a] != 0 && ports[a] == ports[b] {
            let name = |s: &Setting| {
                let suffix = line(lines, s)
                    .map(|l| l.origin.source_note())
                    .unwrap_or_default();
                format!("{}{suffix}", s.flag)
            };
            return Err(ConfigError::Invalid(format!(
                "dflockd: {} and {} are both {}: the non-zero ports must be pairwise different",
                name(port_flags[a]),
                name(port_flags[b]),
                ports[a]
            )));
        }
    }

    let min_output = limits
        .max_value_bytes
        .saturating_add(PUSH_FRAME_OVERHEAD_BYTES);
    if limits.max_output_bytes < min_output {
        let s = &flags::MAX_OUTPUT_BYTES;
        let (text, origin) = line(lines, s).map_or_else(
            || (limits.max_output_bytes.to_string(), Origin::Default),
            |l| (l.given.clone(), l.origin),
        );
        return Err(invalid(
            s.flag,
            &text,
            origin,
            &format!(
                "must be at least {} + {PUSH_FRAME_OVERHEAD_BYTES} ({min_output})",
                flags::MAX_VALUE_BYTES.flag
            ),
        ));
    }
    Ok(())
}

fn line<'a>(lines: &'a [Line], s: &Setting) -> Option<&'a Line> {
    lines.iter().find(|line| line.flag == s.flag)
}
