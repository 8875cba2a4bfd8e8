//! Deterministic xorshift64 (Marsaglia) for unit tests: the same sequence on
//! every run and no RNG crate. One copy for every module's randomized tests.

#[derive(Debug, Clone)]
pub(crate) struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform-ish in `0..n` (`n > 0`), for time arithmetic in u64.
    pub fn below_u64(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
