//! Allocation-free number formatting and parsing for the hot path, and the
//! calling thread's CPU time from /proc (no libc).

/// Append the decimal digits of `n`.
pub fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// ASCII digits only (no sign), as an unsigned 64-bit value.
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

/// An optional `-` followed by ASCII digits, as a signed 64-bit value.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    match s.split_first() {
        Some((b'-', rest)) => {
            let v = parse_u64(rest)?;
            if v == 1 << 63 {
                Some(i64::MIN)
            } else {
                i64::try_from(v).ok().map(|v| -v)
            }
        }
        _ => i64::try_from(parse_u64(s)?).ok(),
    }
}

/// CPU time of the calling thread: (schedstat ns, utime+stime ns).
///
/// `/proc/thread-self/schedstat` gives nanoseconds on CPU; the `stat` clock
/// ticks (fields 14 and 15, at the usual USER_HZ of 100) are the fallback for
/// kernels that report no schedstat.
pub fn thread_cpu() -> (u64, u64) {
    let sched = std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let ticks = std::fs::read_to_string("/proc/thread-self/stat")
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 1..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            // `rest` starts at field 3 (state); utime is field 14, stime 15.
            let ut: u64 = f.get(11)?.parse().ok()?;
            let st: u64 = f.get(12)?.parse().ok()?;
            Some(ut + st)
        })
        .unwrap_or(0);
    (sched, ticks * 10_000_000)
}

/// CPU nanoseconds between two `thread_cpu` readings.
pub fn cpu_between(a: (u64, u64), b: (u64, u64)) -> u64 {
    let sched = b.0.saturating_sub(a.0);
    if sched > 0 {
        sched
    } else {
        b.1.saturating_sub(a.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip() {
        for n in [0u64, 7, 10, 99, 12345, u64::MAX] {
            let mut v = Vec::new();
            push_u64(&mut v, n);
            assert_eq!(v, n.to_string().as_bytes());
            assert_eq!(parse_u64(&v), Some(n));
        }
        assert_eq!(parse_i64(b"-8"), Some(-8));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"+1"), None);
        assert_eq!(parse_u64(b"1 "), None);
    }

    #[test]
    fn cpu_reading_works_here() {
        // Burn CPU (black_box keeps the optimizer from folding the loop) until
        // the reading moves; /proc's tick-based fallback needs up to 10 ms.
        let a = thread_cpu();
        let start = std::time::Instant::now();
        let mut x = 0u64;
        let mut b = a;
        while cpu_between(a, b) == 0 && start.elapsed() < std::time::Duration::from_secs(2) {
            for i in 0..100_000u64 {
                x = std::hint::black_box(x.wrapping_add(i * i));
            }
            b = thread_cpu();
        }
        assert!(cpu_between(a, b) > 0 || (a == (0, 0) && b == (0, 0)));
    }
}
