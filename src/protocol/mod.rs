//! Wire protocol: pure parsers and the reply encoder. Nothing here does IO.
//!
//! * [`line`] frames the 3-line dflockd request and recognises a Dreadlock line.
//! * [`command`] turns a framed request into a typed [`command::Command`].
//! * [`dreadlock`] turns a Dreadlock line into a typed command.
//! * [`reply`] is the only place reply strings are spelled.
//! * [`explain`] puts refusals into words for the log (never on the wire).

pub mod command;
pub mod dreadlock;
pub mod explain;
pub mod line;
pub mod reply;

/// Result of a pure parser over a byte buffer (httparse's contract).
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<T, E> {
    /// A whole item was parsed from the first `consumed` bytes.
    Complete { value: T, consumed: usize },
    /// More bytes are needed. Not an error.
    Incomplete,
    /// The stream cannot be resynchronised: the caller replies as `error` says and closes.
    Invalid(E),
}

/// Byte limits of the line framing (protocol.md §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineLimits {
    /// Maximum content length of the command line, the key line, every ordinary
    /// argument line and a Dreadlock line (256).
    pub max_line: usize,
    /// Maximum content length of the `auth` argument (65536).
    pub max_auth_arg: usize,
    /// Maximum content length of the argument of `kset kcas lpush rpush signal`:
    /// max(256, 2 × V + 64).
    pub max_value_arg: usize,
}

impl LineLimits {
    /// Limits for a configured maximum value size V (`--max-value-bytes`).
    pub fn for_value_bytes(v: usize) -> Self {
        LineLimits {
            max_line: 256,
            max_auth_arg: 65536,
            max_value_arg: (2 * v + 64).max(256),
        }
    }

    /// The largest request the framing can accept, in bytes, CRs and LFs included.
    pub fn max_request(&self) -> usize {
        2 * (self.max_line + 2) + self.max_value_arg.max(self.max_auth_arg) + 2
    }
}
