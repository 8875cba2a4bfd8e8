//! STUB
#[derive(Debug, PartialEq, Eq)]
pub enum DreadlockRequest<'a> {
    Lock { key: &'a str, timeout_ms: u64 },
    Unlock { key: &'a str },
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;
pub fn parse_dreadlock(_line: &[u8]) -> Result<DreadlockRequest<'_>, Malformed> {
    Err(Malformed)
}
