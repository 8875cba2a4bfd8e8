//! STUB
use super::{LineLimits, Parsed};
pub enum Frame<'a> {
    Request {
        cmd: &'a [u8],
        key: &'a [u8],
        arg: &'a [u8],
    },
    Dreadlock(&'a [u8]),
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    LineTooLong,
    DreadlockTooLong,
}
pub enum HttpGuard {
    Http,
    NotHttp,
    NeedMore,
}
pub fn http_guard(_b: &[u8]) -> HttpGuard {
    HttpGuard::NotHttp
}
fn line(b: &[u8]) -> Option<(&[u8], usize)> {
    let i = b.iter().position(|&c| c == b'\n')?;
    let l = &b[..i];
    Some((l.strip_suffix(b"\r").unwrap_or(l), i + 1))
}
pub fn parse_frame<'a>(buf: &'a [u8], _l: &LineLimits) -> Parsed<Frame<'a>, FrameError> {
    let Some((cmd, a)) = line(buf) else {
        return Parsed::Incomplete;
    };
    let lc = cmd.to_ascii_lowercase();
    if lc.starts_with(b"lock ") || lc.starts_with(b"unlock ") {
        return Parsed::Complete {
            value: Frame::Dreadlock(cmd),
            consumed: a,
        };
    }
    let Some((key, b)) = line(&buf[a..]) else {
        return Parsed::Incomplete;
    };
    let Some((arg, c)) = line(&buf[a + b..]) else {
        return Parsed::Incomplete;
    };
    Parsed::Complete {
        value: Frame::Request { cmd, key, arg },
        consumed: a + b + c,
    }
}
