//! Shared-secret authentication (protocol.md §4.3).

use subtle::ConstantTimeEq;

/// Delay before a failed authentication is answered and closed, which slows
/// down guessing without holding any resource but a timer.
pub const FAILURE_DELAY_MS: u64 = 100;

/// Constant-time comparison of the (already trimmed) token a client gave.
/// Only the length can leak, which the token rules make uninteresting.
pub fn token_matches(given: &[u8], expected: &[u8]) -> bool {
    given.ct_eq(expected).into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_exactly() {
        assert!(super::token_matches(b"s3cret", b"s3cret"));
        assert!(!super::token_matches(b"s3cre", b"s3cret"));
        assert!(!super::token_matches(b"S3cret", b"s3cret"));
        assert!(!super::token_matches(b"", b"s3cret"));
    }
}
