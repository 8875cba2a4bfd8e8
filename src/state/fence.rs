//! Fencing tokens: the process-wide fence counter, salts and the token format
//! (protocol.md §6.1, §6.2; config.md §3.6).
//!
//! Owns three things:
//! - [`Token`]: 16 lowercase hex digits of fence (big-endian) followed by 16 of salt.
//!   Fixed width, so comparing two tokens' first 16 bytes orders them by fence.
//! - [`SaltSource`]: OS-seeded random salts, buffered so a grant rarely costs a syscall.
//! - [`Fences`]: the counter. Invariants:
//!   - within one run, every fence is the previous one + 1 (the first is base + 1);
//!   - with a state file, no fence above the persisted ceiling is ever handed out, so a
//!     later run (whose base is at least that ceiling) never repeats one, whatever the
//!     wall clock says;
//!   - without a state file, fences survive a restart only while the wall clock does
//!     not go backwards (the base is the wall clock in ns).
//!
//! This is the one `state/` module that touches the disk: a reservation must be durable
//! before the fence it covers is handed out, so the write sits on the grant path. It
//! happens once per [`BLOCK_FENCES`] grants, which keeps the cost negligible.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Fences reserved per write of the state file (protocol.md §6.2). Large enough that the
/// fsyncs are amortised to nothing, small enough that a restart skips little.
pub const BLOCK_FENCES: u64 = 1 << 20;

/// After a failed reservation, the minimum pause before the next attempt. Each attempt
/// is several syscalls and fsyncs on a failing disk, so a burst of grants must not turn
/// into a burst of IO; the spec asks for at least one retry per second, which the
/// server's timer provides through [`Fences::retry`].
const RETRY_INTERVAL_MS: u64 = 1000;

/// Bytes fetched from the OS generator per refill: 64 salts per syscall.
const SALT_BUF_BYTES: usize = 512;

/// Lowercase hex digits, indexed by nibble.
const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Marks a byte that is not a lowercase hex digit in [`HEX_VALUE`].
const NOT_HEX: u8 = 0xff;

/// Nibble value of each byte, or [`NOT_HEX`]. Only `0-9a-f`: tokens are compared
/// bytewise (protocol.md §3.3), so an uppercase spelling must not parse as the same token.
static HEX_VALUE: [u8; 256] = hex_value_table();

const fn hex_value_table() -> [u8; 256] {
    let mut table = [NOT_HEX; 256];
    let mut i = 0;
    while i < 16 {
        table[HEX_DIGITS[i] as usize] = i as u8;
        i += 1;
    }
    table
}

/// A grant's token: 16 hex fence + 16 hex salt, lowercase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Token {
    pub fence: u64,
    pub salt: u64,
}

impl Token {
    /// The 32 wire bytes: lowercase hex, fence big-endian first, then salt.
    pub fn encode(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        let (fence_hex, salt_hex) = out.split_at_mut(16);
        encode_u64(self.fence, fence_hex);
        encode_u64(self.salt, salt_hex);
        out
    }

    /// `Some` only for exactly 32 lowercase hex bytes; anything else (other lengths,
    /// uppercase, non-hex) is `None`.
    pub fn parse(s: &[u8]) -> Option<Token> {
        if s.len() != 32 {
            return None;
        }
        let (fence_hex, salt_hex) = s.split_at(16);
        Some(Token {
            fence: decode_u64(fence_hex)?,
            salt: decode_u64(salt_hex)?,
        })
    }
}

/// Writes `v` as 16 hex digits into `out` (which is 16 bytes), most significant first.
fn encode_u64(v: u64, out: &mut [u8]) {
    for (pair, byte) in out.chunks_exact_mut(2).zip(v.to_be_bytes()) {
        pair[0] = HEX_DIGITS[usize::from(byte >> 4)];
        pair[1] = HEX_DIGITS[usize::from(byte & 0x0f)];
    }
}

/// Reads 16 lowercase hex digits; `None` on any other byte.
fn decode_u64(hex: &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for &b in hex {
        let nibble = HEX_VALUE[usize::from(b)];
        if nibble == NOT_HEX {
            return None;
        }
        v = (v << 4) | u64::from(nibble);
    }
    Some(v)
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = self.encode();
        // Always ASCII; the error arm only exists because we do not use `unsafe`.
        f.write_str(std::str::from_utf8(&hex).map_err(|_| fmt::Error)?)
    }
}

/// OS-seeded CSPRNG salts. Reads the OS generator in blocks of 512 bytes and hands out
/// 8 bytes at a time, so a grant costs no syscall most of the time.
pub struct SaltSource {
    buf: [u8; SALT_BUF_BYTES],
    /// Next unused byte; `SALT_BUF_BYTES` means the buffer is spent.
    pos: usize,
}

impl SaltSource {
    /// Empty: the first `next` fills the buffer, so construction cannot fail.
    pub fn new() -> Self {
        SaltSource {
            buf: [0; SALT_BUF_BYTES],
            pos: SALT_BUF_BYTES,
        }
    }

    /// The next 64 random bits.
    ///
    /// If the OS generator fails (practically never on a running system), this logs
    /// and retries until it succeeds: a predictable salt would make tokens guessable,
    /// and stalling is the lesser harm.
    // Not an `Iterator`: the stream never ends, so `Option<u64>` would only add an
    // impossible `None` at every grant.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        if self.pos + 8 > SALT_BUF_BYTES {
            self.refill();
        }
        let mut salt = [0u8; 8];
        salt.copy_from_slice(&self.buf[self.pos..self.pos + 8]);
        self.pos += 8;
        u64::from_ne_bytes(salt)
    }

    fn refill(&mut self) {
        let mut failures: u64 = 0;
        while let Err(e) = getrandom::fill(&mut self.buf) {
            // Log the first failure and then every 1000th, so a persistent failure is
            // visible without flooding the log; back off a little between attempts.
            if failures % 1000 == 0 {
                log::error!("cannot read the OS random generator for token salts (retrying): {e}");
            }
            failures = failures.saturating_add(1);
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        self.pos = 0;
    }
}

impl Default for SaltSource {
    fn default() -> Self {
        Self::new()
    }
}

/// Why [`Fences::next`] or [`Fences::retry`] could not provide a fence.
#[derive(Debug)]
pub enum FenceError {
    /// The ceiling could not be persisted, so no fence above the current one may be
    /// issued: the grant fails with `error` (HTTP `503 fence_persistence`). While
    /// attempts are rate-limited the error describes the last failed attempt.
    Persist(io::Error),
    /// The next fence would exceed `u64::MAX`: the grant fails with `error`.
    Exhausted,
}

impl fmt::Display for FenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FenceError::Persist(e) => write!(f, "cannot persist the fence ceiling: {e}"),
            FenceError::Exhausted => f.write_str("fence counter exhausted"),
        }
    }
}

impl std::error::Error for FenceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FenceError::Persist(e) => Some(e),
            FenceError::Exhausted => None,
        }
    }
}

/// Nanoseconds since the Unix epoch; saturates at `u64::MAX` (year 2554) and is 0 for a
/// clock set before 1970, so the caller never has to handle an error.
pub fn wall_clock_ns() -> u64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
        Err(_) => 0,
    }
}

/// Reads the ceiling from a fence state file without creating or changing anything
/// (start-up step 3 and `--check-config`, which must exit 78 on bad content).
///
/// Returns `Ok(0)` for a missing file, `Ok(ceiling)` for one decimal u64 optionally
/// followed by LF, and `Err(message naming the path)` otherwise or if it cannot be read.
pub fn read_ceiling(path: &Path) -> Result<u64, String> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => {
            return Err(format!(
                "cannot read --fence-state-file \"{}\": {}",
                path.display(),
                io_reason(&e)
            ));
        }
    };
    parse_ceiling(&bytes).ok_or_else(|| {
        format!(
            "invalid fence state file \"{}\" (--fence-state-file): must hold one decimal unsigned 64-bit integer",
            path.display()
        )
    })
}

/// One decimal u64 with an optional trailing LF. Digits only: no sign, spaces or CR,
/// since we only ever write `"{n}\n"` and anything else means the file is not ours.
fn parse_ceiling(bytes: &[u8]) -> Option<u64> {
    let digits = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// `io::Error`'s message without the " (os error N)" suffix, so start-up messages read
/// like the spec's ("No such file or directory").
fn io_reason(e: &io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(i) if text.ends_with(')') => text[..i].to_owned(),
        _ => text,
    }
}

/// The temp file (`.<name>.tmp`) and the directory to fsync for a state file path;
/// `None` if the path does not name a file.
fn side_paths(path: &Path) -> Option<(PathBuf, PathBuf)> {
    let name = path.file_name()?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        // A bare file name lives in the working directory.
        _ => PathBuf::from("."),
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".tmp");
    Some((dir.join(tmp_name), dir))
}

/// The process-wide fence counter (protocol.md §6.2).
pub struct Fences {
    /// Fences start at base + 1.
    base: u64,
    /// Last fence issued; the base before the first grant.
    last: u64,
    /// Present with `--fence-state-file`.
    persist: Option<Persist>,
}

/// Ceiling bookkeeping for `--fence-state-file`.
struct Persist {
    path: PathBuf,
    /// `.<file name>.tmp` in the same directory: rename is only atomic within a file system.
    tmp: PathBuf,
    /// Fsynced after the rename so the new directory entry itself is durable.
    dir: PathBuf,
    /// Highest fence covered by a durable reservation.
    ceiling: u64,
    /// Fences per reservation (`BLOCK_FENCES` except in tests).
    block: u64,
    /// A reservation the next grant needs has failed and not yet succeeded.
    blocked: bool,
    /// Last failed attempt (`now_ms`, error kind, message); cleared by a success.
    /// Only failures rate-limit: after a success the next block is far away anyway.
    failure: Option<(u64, io::ErrorKind, String)>,
}

impl Fences {
    /// Base = max(`wall_ns`, ceiling read from `state_file`); the first fence is base + 1.
    ///
    /// With a state file, a missing file counts as ceiling 0, and the first block is
    /// reserved (the file created or replaced) before this returns. `Err` carries a
    /// message naming the path: unreadable or invalid content (see [`read_ceiling`];
    /// the server calls that first to tell exit 78 from exit 1), or a failed
    /// reservation (exit 1).
    pub fn open(state_file: Option<&Path>, wall_ns: u64) -> Result<Fences, String> {
        Self::open_with_block(state_file, wall_ns, BLOCK_FENCES)
    }

    /// [`Fences::open`] with a block size of `block` (≥ 1) fences, so tests can cross
    /// block boundaries quickly.
    fn open_with_block(
        state_file: Option<&Path>,
        wall_ns: u64,
        block: u64,
    ) -> Result<Fences, String> {
        let Some(path) = state_file else {
            return Ok(Fences {
                base: wall_ns,
                last: wall_ns,
                persist: None,
            });
        };
        let ceiling = read_ceiling(path)?;
        let base = wall_ns.max(ceiling);
        let Some((tmp, dir)) = side_paths(path) else {
            return Err(format!(
                "invalid --fence-state-file \"{}\": not a file path",
                path.display()
            ));
        };
        let mut persist = Persist {
            path: path.to_path_buf(),
            tmp,
            dir,
            ceiling,
            block: block.max(1),
            blocked: false,
            failure: None,
        };
        // Reserve before any fence exists, even if the file's ceiling would cover the
        // first block: base ≥ ceiling, so base + 1 is always above it.
        let target = base.saturating_add(persist.block);
        persist.write(target).map_err(|e| {
            format!(
                "cannot reserve fences in --fence-state-file \"{}\": {}",
                path.display(),
                io_reason(&e)
            )
        })?;
        persist.ceiling = target;
        Ok(Fences {
            base,
            last: base,
            persist: Some(persist),
        })
    }

    /// The next fence: the previous one + 1.
    ///
    /// With a state file, a fence above the persisted ceiling first needs a reservation
    /// of `fence + block - 1`; once less than half of the block remains the next block
    /// is reserved early, and a failure of that early attempt is only logged while the
    /// current block still has room. `now_ms` is monotonic milliseconds, used to allow
    /// at most one attempt per second after a failure.
    ///
    /// `Err(Persist)`: a needed reservation failed now or recently (no IO was done if
    /// within a second of the last failure); no fence was consumed and
    /// [`Fences::is_blocked`] is true. `Err(Exhausted)`: `u64::MAX` was already issued.
    pub fn next(&mut self, now_ms: u64) -> Result<u64, FenceError> {
        let fence = self.last.checked_add(1).ok_or(FenceError::Exhausted)?;
        if let Some(p) = self.persist.as_mut() {
            p.make_room(fence, now_ms)?;
        }
        self.last = fence;
        Ok(fence)
    }

    /// Last fence issued (0 if none yet).
    pub fn last(&self) -> u64 {
        // Every fence is above the base, so `last == base` means none was issued.
        if self.last == self.base { 0 } else { self.last }
    }

    /// True while a reservation the next grant needs is failing. The server then
    /// answers immediate grants with `error`, keeps waiters queued, and calls
    /// [`Fences::retry`] once per second.
    pub fn is_blocked(&self) -> bool {
        self.persist.as_ref().is_some_and(|p| p.blocked)
    }

    /// Called by the server's retry timer: reserve now if the next fence needs it.
    ///
    /// Not rate-limited (the timer paces it), so a timer firing a little under a second
    /// after a failed grant still makes its attempt. `Ok(())`: the next fence is
    /// available (queued waiters may be granted). `Err(Persist)`: still failing (logged).
    /// `Err(Exhausted)`: no fence will ever be available again.
    pub fn retry(&mut self, now_ms: u64) -> Result<(), FenceError> {
        let fence = self.last.checked_add(1).ok_or(FenceError::Exhausted)?;
        match self.persist.as_mut() {
            Some(p) if fence > p.ceiling => p.reserve_block(fence, now_ms),
            Some(p) => {
                p.blocked = false;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

impl Persist {
    /// Makes sure `fence` is covered by a durable reservation, reserving early when the
    /// current block is more than half used.
    fn make_room(&mut self, fence: u64, now_ms: u64) -> Result<(), FenceError> {
        if fence > self.ceiling {
            return self.reserve_needed(fence, now_ms);
        }
        // Early reservation, so a slow or briefly failing disk is noticed (and retried)
        // while grants can still be served from the current block.
        let remaining = self.ceiling - fence;
        if remaining < self.block / 2 && self.ceiling < u64::MAX && self.may_attempt(now_ms) {
            // A failure was logged and starts the rate limit; the current block still
            // covers `fence`, so this grant goes ahead.
            let target = self.ceiling.saturating_add(self.block);
            if let Err(e) = self.reserve(target, now_ms) {
                log::error!(
                    "cannot reserve fences up to {target} in fence state file \"{}\": {e}; \
                     {remaining} fences left before grants fail",
                    self.path.display()
                );
            }
        }
        Ok(())
    }

    /// Reserves the block starting at `fence` (which is above the ceiling), unless a
    /// failure less than a second ago makes this a rejection without IO.
    fn reserve_needed(&mut self, fence: u64, now_ms: u64) -> Result<(), FenceError> {
        if !self.may_attempt(now_ms) {
            self.blocked = true;
            return Err(FenceError::Persist(self.recent_failure(now_ms)));
        }
        self.reserve_block(fence, now_ms)
    }

    /// Reserves the block starting at `fence` now, whatever the rate limit says.
    fn reserve_block(&mut self, fence: u64, now_ms: u64) -> Result<(), FenceError> {
        let target = fence.saturating_add(self.block - 1);
        match self.reserve(target, now_ms) {
            Ok(()) => {
                self.blocked = false;
                Ok(())
            }
            Err(e) => {
                log::error!(
                    "cannot reserve fences up to {target} in fence state file \"{}\": {e}; \
                     grants fail until it succeeds",
                    self.path.display()
                );
                self.blocked = true;
                Err(FenceError::Persist(e))
            }
        }
    }

    /// No failure yet, or the last one is at least `RETRY_INTERVAL_MS` old.
    fn may_attempt(&self, now_ms: u64) -> bool {
        match &self.failure {
            None => true,
            Some((at, _, _)) => now_ms.saturating_sub(*at) >= RETRY_INTERVAL_MS,
        }
    }

    /// The error handed out while attempts are rate-limited: the last real failure.
    fn recent_failure(&self, now_ms: u64) -> io::Error {
        match &self.failure {
            Some((at, kind, msg)) => io::Error::new(
                *kind,
                format!(
                    "{msg} (last attempt {} ms ago; retrying once per second)",
                    now_ms.saturating_sub(*at)
                ),
            ),
            None => io::Error::other("fence reservation failing"),
        }
    }

    /// Writes `target` as the new ceiling and adopts it only once it is durable. The
    /// caller logs a failure (one line per failed attempt, as the spec asks) with its
    /// own consequence; this records it for the rate limit.
    fn reserve(&mut self, target: u64, now_ms: u64) -> io::Result<()> {
        match self.write(target) {
            Ok(()) => {
                if self.failure.take().is_some() {
                    log::info!(
                        "fence state file \"{}\" writable again; ceiling {target}",
                        self.path.display()
                    );
                }
                self.ceiling = target;
                Ok(())
            }
            Err(e) => {
                self.failure = Some((now_ms, e.kind(), e.to_string()));
                Err(e)
            }
        }
    }

    /// Replaces the state file with `"{value}\n"` durably: temp file, fsync, rename,
    /// fsync of the directory. A crash at any point leaves either the old or the new
    /// complete file, and both are safe ceilings.
    fn write(&self, value: u64) -> io::Result<()> {
        let result = self.write_and_rename(value);
        if result.is_err() {
            // Best effort: a stale temp file is harmless (truncated on the next
            // attempt) but untidy; after a successful rename there is none to remove.
            if let Err(e) = fs::remove_file(&self.tmp) {
                if e.kind() != io::ErrorKind::NotFound {
                    log::debug!("cannot remove \"{}\": {e}", self.tmp.display());
                }
            }
        }
        result
    }

    fn write_and_rename(&self, value: u64) -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&self.tmp)?;
        file.write_all(format!("{value}\n").as_bytes())?;
        file.sync_all()?;
        drop(file);
        fs::rename(&self.tmp, &self.path)?;
        sync_dir(&self.dir)
    }
}

/// Fsyncs a directory so a rename inside it survives a power loss.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Directories cannot be opened as files here; the rename is the best we can do.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A fresh directory per test (no tempfile crate), removed on drop.
    struct TestDir(PathBuf);

    impl TestDir {
        fn new(name: &str) -> TestDir {
            static SEQ: AtomicU64 = AtomicU64::new(0);
            let dir = std::env::temp_dir().join(format!(
                "dflockd-fence-{}-{}-{}",
                std::process::id(),
                name,
                SEQ.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir_all(&dir).expect("test dir must be creatable");
            TestDir(dir)
        }
        fn file(&self) -> PathBuf {
            self.0.join("fence.state")
        }
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            fs::remove_dir_all(&self.0).ok();
        }
    }

    fn content(path: &Path) -> String {
        fs::read_to_string(path).expect("state file must exist")
    }

    /// Deterministic xorshift64 for random-ish inputs without extra crates.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    // ---- tokens ----

    #[test]
    fn token_encodes_spec_example() {
        let t = Token {
            fence: 0x18ea_9db4_7e59_0001,
            salt: 0xd433_357e_6ef5_d88b,
        };
        assert_eq!(&t.encode(), b"18ea9db47e590001d433357e6ef5d88b");
        assert_eq!(t.to_string(), "18ea9db47e590001d433357e6ef5d88b");
        assert_eq!(t.fence, 1_795_420_800_000_000_001);
        let zero = Token { fence: 0, salt: 0 };
        assert_eq!(&zero.encode(), &[b'0'; 32]);
        let max = Token {
            fence: u64::MAX,
            salt: u64::MAX,
        };
        assert_eq!(&max.encode(), &[b'f'; 32]);
    }

    #[test]
    fn token_roundtrips() {
        let mut rng = 0x9e37_79b9_7f4a_7c15;
        let mut cases = vec![(0, 0), (u64::MAX, 0), (0, u64::MAX), (1, 1 << 63)];
        for _ in 0..1000 {
            cases.push((xorshift(&mut rng), xorshift(&mut rng)));
        }
        for (fence, salt) in cases {
            let t = Token { fence, salt };
            let hex = t.encode();
            assert!(hex.iter().all(|b| b"0123456789abcdef".contains(b)));
            assert_eq!(Token::parse(&hex), Some(t));
            assert_eq!(
                hex.as_slice(),
                format!("{fence:016x}{salt:016x}").as_bytes()
            );
        }
    }

    #[test]
    fn token_parse_rejects_malformed() {
        let good = b"18ea9db47e590001d433357e6ef5d88b";
        assert!(Token::parse(good).is_some());
        assert_eq!(Token::parse(&good[..31]), None, "31 chars");
        assert_eq!(
            Token::parse(b"18ea9db47e590001d433357e6ef5d88b0"),
            None,
            "33 chars"
        );
        assert_eq!(Token::parse(b""), None);
        assert_eq!(
            Token::parse(b"18EA9DB47E590001D433357E6EF5D88B"),
            None,
            "uppercase"
        );
        assert_eq!(
            Token::parse(b"18ea9db47e590001d433357e6ef5d88B"),
            None,
            "one uppercase"
        );
        assert_eq!(
            Token::parse(b"18ea9db47e590001d433357e6ef5d88g"),
            None,
            "non-hex"
        );
        assert_eq!(
            Token::parse(b"18ea9db47e59000 d433357e6ef5d88b"),
            None,
            "space"
        );
        assert_eq!(
            Token::parse(b"+8ea9db47e590001d433357e6ef5d88b"),
            None,
            "sign"
        );
        assert_eq!(
            Token::parse(b"0x18ea9db47e5900d433357e6ef5d88b"),
            None,
            "0x"
        );
        let mut high = *good;
        high[5] = 0xe9;
        assert_eq!(Token::parse(&high), None, "non-ASCII");
    }

    #[test]
    fn token_parse_random_bytes_never_panics() {
        let mut rng = 42;
        let alphabet = b"0123456789abcdefABCDEFgxyz \n\xff";
        for _ in 0..20_000 {
            let len = (xorshift(&mut rng) % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| alphabet[(xorshift(&mut rng) % alphabet.len() as u64) as usize])
                .collect();
            if let Some(t) = Token::parse(&bytes) {
                assert_eq!(t.encode().as_slice(), bytes.as_slice());
            }
        }
    }

    #[test]
    fn token_prefix_orders_like_fence() {
        let mut rng = 7;
        for _ in 0..1000 {
            let a = Token {
                fence: xorshift(&mut rng) >> (xorshift(&mut rng) % 64),
                salt: xorshift(&mut rng),
            };
            let b = Token {
                fence: xorshift(&mut rng) >> (xorshift(&mut rng) % 64),
                salt: xorshift(&mut rng),
            };
            assert_eq!(
                a.encode()[..16].cmp(&b.encode()[..16]),
                a.fence.cmp(&b.fence)
            );
        }
    }

    // ---- salts ----

    #[test]
    fn salts_differ() {
        let mut salts = SaltSource::new();
        // 1000 salts span 16 refills of the 64-salt buffer.
        let seen: HashSet<u64> = (0..1000).map(|_| salts.next()).collect();
        assert_eq!(seen.len(), 1000);
        let mut other = SaltSource::default();
        let a: Vec<u64> = (0..4).map(|_| other.next()).collect();
        let b: Vec<u64> = (0..4).map(|_| SaltSource::new().next()).collect();
        assert_ne!(a, b, "independent sources must not share a sequence");
    }

    // ---- fences without a state file ----

    #[test]
    fn fences_start_after_wall_clock_and_are_consecutive() {
        let mut f = Fences::open(None, 1_000).expect("no IO without a state file");
        assert_eq!(f.last(), 0);
        assert!(!f.is_blocked());
        for (i, now) in (0..100u64).enumerate() {
            let fence = f.next(now).expect("no state file: always available");
            assert_eq!(fence, 1_001 + i as u64);
            assert_eq!(f.last(), fence);
        }
        assert!(f.retry(0).is_ok());
    }

    #[test]
    fn fences_exhaust_at_u64_max() {
        let mut f = Fences::open(None, u64::MAX - 2).expect("no IO");
        assert_eq!(f.next(0).ok(), Some(u64::MAX - 1));
        assert_eq!(f.next(0).ok(), Some(u64::MAX));
        assert!(matches!(f.next(0), Err(FenceError::Exhausted)));
        assert!(matches!(f.retry(0), Err(FenceError::Exhausted)));
        assert_eq!(f.last(), u64::MAX);
    }

    #[test]
    fn wall_clock_is_after_2020() {
        // 2020-01-01T00:00:00Z in ns.
        assert!(wall_clock_ns() > 1_577_836_800_000_000_000);
    }

    // ---- state file ----

    #[test]
    fn missing_file_is_created_with_first_block() {
        let dir = TestDir::new("missing");
        let path = dir.file();
        assert_eq!(read_ceiling(&path), Ok(0), "missing counts as 0");
        assert!(!path.exists(), "read_ceiling creates nothing");
        let mut f = Fences::open(Some(&path), 500).expect("open");
        assert_eq!(content(&path), format!("{}\n", 500 + BLOCK_FENCES));
        assert_eq!(f.next(0).ok(), Some(501));
        let tmp = dir.0.join(".fence.state.tmp");
        assert!(!tmp.exists(), "temp file renamed away");
    }

    #[test]
    fn base_is_max_of_wall_clock_and_ceiling() {
        let dir = TestDir::new("base");
        let path = dir.file();
        fs::write(&path, "5000\n").expect("write");
        let mut f = Fences::open_with_block(Some(&path), 10, 16).expect("open");
        assert_eq!(f.next(0).ok(), Some(5001), "ceiling above wall clock");
        assert_eq!(content(&path), "5016\n");

        fs::write(&path, "5000").expect("write");
        let mut f = Fences::open_with_block(Some(&path), 9000, 16).expect("open");
        assert_eq!(f.next(0).ok(), Some(9001), "wall clock above ceiling");
        assert_eq!(content(&path), "9016\n");
    }

    /// Runs one "server lifetime" on `path` with the wall clock at 0 and returns every
    /// fence it issued, checking they are consecutive and persisted.
    fn run_once(path: &Path, block: u64, grants: u64) -> Vec<u64> {
        let mut f = Fences::open_with_block(Some(path), 0, block).expect("open");
        let mut issued = Vec::new();
        for _ in 0..grants {
            let fence = f.next(0).expect("writable dir");
            if let Some(&prev) = issued.last() {
                assert_eq!(fence, prev + 1, "consecutive");
            }
            let ceiling: u64 = content(path).trim_end().parse().expect("decimal");
            assert!(
                fence <= ceiling,
                "fence {fence} above persisted ceiling {ceiling}"
            );
            issued.push(fence);
        }
        issued
    }

    #[test]
    fn restart_with_clock_back_never_repeats() {
        let dir = TestDir::new("restart");
        let path = dir.file();
        for grants in [0, 1, 3, 4, 5, 17, 64] {
            let first = run_once(&path, 4, grants);
            let second = run_once(&path, 4, 1);
            let max_first = first.iter().copied().max().unwrap_or(0);
            assert!(
                second[0] > max_first,
                "after {grants} grants: {} <= {max_first}",
                second[0]
            );
        }
    }

    #[test]
    fn restart_after_more_than_a_production_block() {
        let dir = TestDir::new("restart-big");
        let path = dir.file();
        let mut f = Fences::open(Some(&path), 0).expect("open");
        let mut last = 0;
        for _ in 0..BLOCK_FENCES + 10 {
            last = f.next(0).expect("writable dir");
        }
        assert_eq!(last, BLOCK_FENCES + 10);
        let mut again = Fences::open(Some(&path), 0).expect("reopen");
        let first = again.next(0).expect("fence");
        assert!(first > last, "{first} <= {last}");
    }

    #[test]
    fn invalid_content_refuses_start_naming_the_path() {
        let dir = TestDir::new("invalid");
        let path = dir.file();
        let bad: &[&[u8]] = &[
            b"",
            b"\n",
            b"12 \n",
            b" 12\n",
            b"+12\n",
            b"-1\n",
            b"12\r\n",
            b"12\n\n",
            b"1 2",
            b"0x10\n",
            b"abc\n",
            b"18446744073709551616\n",
            b"\xff\n",
        ];
        for content in bad {
            fs::write(&path, content).expect("write");
            let err = read_ceiling(&path).expect_err("must be rejected");
            assert!(err.contains(&path.display().to_string()), "{err}");
            assert!(err.contains("--fence-state-file"), "{err}");
            let err = Fences::open(Some(&path), 0)
                .err()
                .expect("must be rejected");
            assert!(err.contains(&path.display().to_string()), "{err}");
            assert_eq!(fs::read(&path).expect("read"), *content, "file left alone");
        }
        for (content, value) in [
            (&b"0"[..], 0),
            (b"7\n", 7),
            (b"007\n", 7),
            (b"18446744073709551615\n", u64::MAX),
        ] {
            fs::write(&path, content).expect("write");
            assert_eq!(read_ceiling(&path), Ok(value));
        }
    }

    #[test]
    fn unreadable_state_file_names_the_path() {
        let dir = TestDir::new("unreadable");
        // A directory where the file should be: reading fails with something other
        // than NotFound, even as root.
        let path = dir.0.join("sub");
        fs::create_dir(&path).expect("mkdir");
        let err = read_ceiling(&path).expect_err("directory is not a state file");
        assert!(err.starts_with("cannot read --fence-state-file"), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(!err.contains("os error"), "{err}");
        assert!(Fences::open(Some(&path), 0).is_err());
    }

    #[test]
    fn first_reservation_failure_fails_open() {
        let dir = TestDir::new("open-fail");
        let path = dir.0.join("gone").join("fence.state");
        let err = Fences::open(Some(&path), 0)
            .err()
            .expect("missing directory");
        assert!(err.starts_with("cannot reserve fences"), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
    }

    #[test]
    fn ceiling_at_u64_max_exhausts_without_reserving_again() {
        let dir = TestDir::new("max");
        let path = dir.file();
        fs::write(&path, format!("{}\n", u64::MAX - 3)).expect("write");
        let mut f = Fences::open_with_block(Some(&path), 0, 8).expect("open");
        assert_eq!(
            content(&path),
            format!("{}\n", u64::MAX),
            "saturated ceiling"
        );
        for expected in u64::MAX - 2..=u64::MAX {
            assert_eq!(f.next(0).ok(), Some(expected));
        }
        assert!(matches!(f.next(0), Err(FenceError::Exhausted)));
        assert!(!f.is_blocked());
    }

    #[test]
    fn early_reservation_once_half_the_block_is_used() {
        let dir = TestDir::new("early");
        let path = dir.file();
        let mut f = Fences::open_with_block(Some(&path), 0, 8).expect("open");
        assert_eq!(content(&path), "8\n");
        for expected in 1..=4 {
            assert_eq!(f.next(0).ok(), Some(expected));
            assert_eq!(
                content(&path),
                "8\n",
                "4 or more left after fence {expected}"
            );
        }
        // Fence 5 leaves 3 < 8/2 in the block: the next block is reserved now.
        assert_eq!(f.next(0).ok(), Some(5));
        assert_eq!(content(&path), "16\n");
        for expected in 6..=12 {
            assert_eq!(f.next(0).ok(), Some(expected));
        }
        assert_eq!(content(&path), "16\n");
        assert_eq!(f.next(0).ok(), Some(13));
        assert_eq!(content(&path), "24\n");
    }

    #[test]
    fn failed_early_reservation_still_serves_the_current_block() {
        let dir = TestDir::new("early-fail");
        let path = dir.file();
        let mut f = Fences::open_with_block(Some(&path), 0, 8).expect("open");
        fs::remove_dir_all(&dir.0).expect("remove dir");
        // 5 triggers an early attempt, which fails; the block still covers 5..=8.
        for expected in 1..=8 {
            assert_eq!(f.next(0).ok(), Some(expected));
            assert!(!f.is_blocked());
        }
        assert!(matches!(f.next(0), Err(FenceError::Persist(_))));
        assert!(f.is_blocked());
        assert_eq!(f.last(), 8);
    }

    #[test]
    fn persistence_failure_is_rate_limited_then_recovers() {
        let dir = TestDir::new("persist-fail");
        let path = dir.file();
        let mut f = Fences::open_with_block(Some(&path), 0, 4).expect("open");
        fs::remove_dir_all(&dir.0).expect("remove dir");
        assert_eq!(f.next(0).ok(), Some(1));
        assert_eq!(f.next(0).ok(), Some(2));
        // 3 leaves 1 < 2: the early attempt at t=0 fails and starts the rate limit.
        assert_eq!(f.next(0).ok(), Some(3));
        assert_eq!(f.next(0).ok(), Some(4));

        // 5 needs a reservation; within a second of the failure: no IO, no fence.
        assert!(matches!(f.next(500), Err(FenceError::Persist(_))));
        assert!(f.is_blocked());
        assert_eq!(f.last(), 4);
        // A second later it tries again and fails again (the directory is still gone).
        match f.next(1_000) {
            Err(FenceError::Persist(e)) => assert_eq!(e.kind(), io::ErrorKind::NotFound),
            other => panic!("expected Persist, got {other:?}"),
        }
        assert_eq!(f.last(), 4);

        // Directory back, but the last attempt was 500 ms ago: rejected without IO,
        // which shows as the file still not existing.
        fs::create_dir(&dir.0).expect("recreate dir");
        match f.next(1_500) {
            Err(FenceError::Persist(e)) => {
                assert_eq!(
                    e.kind(),
                    io::ErrorKind::NotFound,
                    "kind of the last failure"
                );
                assert!(e.to_string().contains("500 ms ago"), "{e}");
            }
            other => panic!("expected Persist, got {other:?}"),
        }
        assert!(
            !path.exists(),
            "no reservation attempt within the rate limit"
        );
        assert!(f.is_blocked());

        assert_eq!(f.next(2_000).ok(), Some(5), "consecutive after recovery");
        assert!(!f.is_blocked());
        assert_eq!(content(&path), "8\n", "block of 4 starting at 5");
        assert_eq!(f.next(2_000).ok(), Some(6));
    }

    #[test]
    fn retry_recovers_blocked_fences() {
        let dir = TestDir::new("retry");
        let path = dir.file();
        let mut f = Fences::open_with_block(Some(&path), 100, 2).expect("open");
        assert!(f.retry(0).is_ok(), "nothing needed yet");
        fs::remove_dir_all(&dir.0).expect("remove dir");
        assert_eq!(f.next(0).ok(), Some(101));
        assert_eq!(f.next(0).ok(), Some(102));
        assert!(matches!(f.next(0), Err(FenceError::Persist(_))));
        assert!(f.is_blocked());
        // The server's timer retries regardless of when the last attempt was.
        assert!(matches!(f.retry(10), Err(FenceError::Persist(_))));
        assert!(f.is_blocked());
        fs::create_dir(&dir.0).expect("recreate dir");
        assert!(f.retry(20).is_ok());
        assert!(!f.is_blocked());
        assert_eq!(content(&path), "104\n");
        assert_eq!(f.next(20).ok(), Some(103));
        assert_eq!(f.last(), 103);
    }

    #[test]
    fn temp_file_sits_next_to_the_state_file() {
        assert_eq!(
            side_paths(Path::new("/var/lib/dflockd/fence.state")),
            Some((
                PathBuf::from("/var/lib/dflockd/.fence.state.tmp"),
                PathBuf::from("/var/lib/dflockd")
            ))
        );
        assert_eq!(
            side_paths(Path::new("fence.state")),
            Some((PathBuf::from("./.fence.state.tmp"), PathBuf::from(".")))
        );
        assert_eq!(side_paths(Path::new("/")), None);
        assert_eq!(side_paths(Path::new("dir/..")), None);
    }

    #[test]
    fn io_reason_drops_os_error_suffix() {
        let e = io::Error::from_raw_os_error(2);
        assert!(!io_reason(&e).contains("os error"));
        assert!(!io_reason(&e).is_empty());
        assert_eq!(io_reason(&io::Error::other("plain")), "plain");
    }

    #[test]
    fn fence_error_displays() {
        let e = FenceError::Persist(io::Error::other("disk full"));
        assert_eq!(e.to_string(), "cannot persist the fence ceiling: disk full");
        assert_eq!(FenceError::Exhausted.to_string(), "fence counter exhausted");
    }
}
