//! systemd socket activation (config.md §8.2; sd_listen_fds(3)).
//!
//! When `LISTEN_PID` is this process and `LISTEN_FDS` is at least 1, the
//! descriptors 3, 4, … are listening sockets the service manager bound for
//! us. `LISTEN_FDNAMES` (colon-separated, from `FileDescriptorName=`) says
//! which listener each one is: `tcp`, `http` or `dreadlock`; without names
//! the order is tcp, http, dreadlock. Each inherited socket replaces binding
//! that listener. Anything else is a configuration error (exit 78): more
//! than three descriptors, an unknown or repeated name, a name count that
//! does not match, or a descriptor that is not a listening TCP socket.
//!
//! Reading the variables is here; removing them from the environment is in
//! `main.rs`, the one place that knows no other thread is running yet.

use std::ffi::c_int;
use std::io;
use std::net::TcpListener;
use std::os::fd::{FromRawFd, RawFd};

/// The listener kinds, in the order used when `LISTEN_FDNAMES` is absent.
pub const KINDS: [&str; 3] = ["tcp", "http", "dreadlock"];
/// The variables sd_listen_fds(3) reads; removed once read.
pub const VARIABLES: [&str; 3] = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"];
/// `SD_LISTEN_FDS_START`: the first inherited descriptor.
const FIRST_FD: RawFd = 3;

/// Listening sockets taken over from the service manager, by kind.
#[derive(Debug, Default)]
pub struct Inherited {
    sockets: Vec<(&'static str, TcpListener)>,
}

impl Inherited {
    /// The inherited socket for `kind`, at most once.
    pub fn take(&mut self, kind: &str) -> Option<TcpListener> {
        let at = self.sockets.iter().position(|(k, _)| *k == kind)?;
        Some(self.sockets.swap_remove(at).1)
    }

    /// True if a socket for `kind` was inherited (and not yet taken).
    pub fn has(&self, kind: &str) -> bool {
        self.sockets.iter().any(|(k, _)| *k == kind)
    }
}

/// What the variables ask for: the kind of descriptor 3, 4, … in order, or
/// `None` when they are not for this process (unset, another pid, 0 fds).
pub fn plan(
    pid: Option<&str>,
    fds: Option<&str>,
    names: Option<&str>,
    our_pid: u32,
) -> Result<Option<Vec<&'static str>>, String> {
    let Some(pid) = pid else { return Ok(None) };
    if pid.trim().parse::<u32>().ok() != Some(our_pid) {
        return Ok(None);
    }
    let count: usize = match fds.map(|f| f.trim().parse()) {
        Some(Ok(n)) => n,
        Some(Err(_)) | None => {
            return Err(format!(
                "socket activation: LISTEN_FDS must be a count, not {:?}",
                fds.unwrap_or("")
            ));
        }
    };
    if count == 0 {
        return Ok(None);
    }
    if count > KINDS.len() {
        return Err(format!(
            "socket activation: {count} descriptors passed (LISTEN_FDS), at most 3 \
             (tcp, http, dreadlock)"
        ));
    }
    let named: Vec<&str> = match names.filter(|n| !n.is_empty()) {
        Some(names) => names.split(':').collect(),
        None => KINDS[..count].to_vec(),
    };
    if named.len() != count {
        return Err(format!(
            "socket activation: LISTEN_FDNAMES {:?} names {} descriptors, LISTEN_FDS says {count}",
            names.unwrap_or(""),
            named.len()
        ));
    }
    let mut kinds = Vec::with_capacity(count);
    for name in named {
        let Some(kind) = KINDS.iter().copied().find(|k| *k == name) else {
            return Err(format!(
                "socket activation: unknown descriptor name {name:?} in LISTEN_FDNAMES \
                 (FileDescriptorName= must be tcp, http or dreadlock)"
            ));
        };
        if kinds.contains(&kind) {
            return Err(format!(
                "socket activation: descriptor name {name:?} used twice in LISTEN_FDNAMES"
            ));
        }
        kinds.push(kind);
    }
    Ok(Some(kinds))
}

/// One `int` socket option of `fd`.
fn int_option(fd: RawFd, level: c_int, name: c_int) -> io::Result<c_int> {
    let mut value: c_int = 0;
    let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes (the size of `value`, an
    // int we own) and updates `len`; it neither takes nor closes `fd`, and on
    // a closed or non-socket `fd` it only fails (EBADF, ENOTSOCK).
    let r = unsafe { libc::getsockopt(fd, level, name, (&raw mut value).cast(), &mut len) };
    if r == 0 {
        Ok(value)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Checks that `fd` is an open, listening stream socket (before anything
/// takes ownership of it).
fn check_listening_stream(fd: RawFd) -> Result<(), String> {
    let why = |e: io::Error| format!("socket activation: descriptor {fd}: {e}");
    if int_option(fd, libc::SOL_SOCKET, libc::SO_TYPE).map_err(why)? != libc::SOCK_STREAM {
        return Err(format!(
            "socket activation: descriptor {fd} is not a stream socket"
        ));
    }
    if int_option(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN).map_err(why)? != 1 {
        return Err(format!(
            "socket activation: descriptor {fd} is not listening"
        ));
    }
    Ok(())
}

/// Takes over the sockets `plan` names. Each descriptor 3 + i is checked to
/// be a listening stream socket, then owned by exactly one `TcpListener`.
pub fn take(kinds: &[&'static str]) -> Result<Inherited, String> {
    let mut inherited = Inherited::default();
    for (i, kind) in kinds.iter().enumerate() {
        let fd = FIRST_FD + i as RawFd;
        check_listening_stream(fd)?;
        // SAFETY: `fd` is open and a listening stream socket (checked just
        // above). The service manager passed descriptors 3 .. 3 + LISTEN_FDS to
        // this very process (LISTEN_PID is our pid, checked by `plan`), and
        // nothing else in the process owns them: they were open at exec, so
        // no open() here can have been given those numbers, and no code closes
        // descriptors it does not own. `plan` refuses more than three and
        // repeated names, and the loop visits each i once, so each descriptor
        // gets exactly one owner, which closes it when dropped.
        let listener = unsafe { TcpListener::from_raw_fd(fd) };
        // A Unix or other non-IP socket has no IP address: refuse it.
        let addr = listener.local_addr().map_err(|e| {
            format!("socket activation: descriptor {fd} ({kind}) is not a TCP socket: {e}")
        })?;
        set_cloexec(fd).map_err(|e| format!("socket activation: descriptor {fd}: {e}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("socket activation: descriptor {fd}: {e}"))?;
        log::info!(
            "{kind} listener on {addr} inherited from the service manager (descriptor {fd}); \
             its host and port settings are ignored"
        );
        inherited.sockets.push((kind, listener));
    }
    Ok(inherited)
}

/// Marks `fd` close-on-exec: the service manager passes it without, and a
/// process we might start must not hold our listening socket.
fn set_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFD/F_SETFD read and set the descriptor flags of `fd`, which
    // this process owns (see `take`); no memory is passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reads the variables and takes the sockets they name (`Inherited` is empty
/// when they are not for this process). Does not change the environment.
pub fn from_env() -> Result<Inherited, String> {
    let var = |name: &str| std::env::var(name).ok();
    let (pid, fds, names) = (var("LISTEN_PID"), var("LISTEN_FDS"), var("LISTEN_FDNAMES"));
    match plan(
        pid.as_deref(),
        fds.as_deref(),
        names.as_deref(),
        std::process::id(),
    )? {
        Some(kinds) => take(&kinds),
        None => Ok(Inherited::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: u32 = 4242;

    fn ok(pid: &str, fds: &str, names: Option<&str>) -> Option<Vec<&'static str>> {
        plan(Some(pid), Some(fds), names, ME).expect("a plan")
    }

    fn err(fds: &str, names: Option<&str>) -> String {
        plan(Some("4242"), Some(fds), names, ME).expect_err("refused")
    }

    #[test]
    fn not_for_us() {
        assert_eq!(plan(None, Some("1"), Some("tcp"), ME), Ok(None));
        assert_eq!(ok("1", "1", Some("tcp")), None);
        assert_eq!(ok("x", "1", Some("tcp")), None);
        assert_eq!(ok("4242", "0", None), None);
    }

    #[test]
    fn by_name_and_by_order() {
        assert_eq!(ok("4242", "1", Some("tcp")), Some(vec!["tcp"]));
        assert_eq!(
            ok("4242", "3", Some("dreadlock:tcp:http")),
            Some(vec!["dreadlock", "tcp", "http"])
        );
        assert_eq!(ok(" 4242 ", "2", None), Some(vec!["tcp", "http"]));
        assert_eq!(
            ok("4242", "3", Some("")),
            Some(vec!["tcp", "http", "dreadlock"])
        );
    }

    #[test]
    fn refusals_name_the_problem() {
        assert!(err("4", None).contains("at most 3"));
        assert!(err("two", None).contains("LISTEN_FDS"));
        assert!(plan(Some("4242"), None, None, ME).is_err());
        assert!(err("1", Some("dflockd.socket")).contains("unknown descriptor name"));
        assert!(err("2", Some("tcp:tcp")).contains("used twice"));
        assert!(err("2", Some("tcp")).contains("names 1 descriptors"));
    }

    #[test]
    fn a_descriptor_that_is_not_a_listening_socket_is_refused() {
        // Sockets of this test process (their numbers are not 3..), so the
        // check is called directly.
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
        let fd = std::os::fd::AsRawFd::as_raw_fd(&sock);
        assert!(
            check_listening_stream(fd)
                .unwrap_err()
                .contains("not a stream socket")
        );
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("tcp");
        assert_eq!(
            check_listening_stream(std::os::fd::AsRawFd::as_raw_fd(&l)),
            Ok(())
        );
        let closed = i32::MAX - 1;
        assert!(check_listening_stream(closed).is_err());
    }
}
