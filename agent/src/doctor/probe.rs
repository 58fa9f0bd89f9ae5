//! The doctor's TCP probes: a connection opened and closed at once,
//! optionally from a socket marked `PROBE_MARK`, which hairpin's datapath
//! leaves alone (std's `TcpStream` cannot set a mark before connecting).

use std::{
    io,
    mem::size_of,
    net::SocketAddr,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
};

/// What a marked probe says when the kernel refuses the mark.
pub const MARK_REFUSED: &str = "SO_MARK refused (it needs CAP_NET_ADMIN)";

/// How long a probe waits for the handshake.
const TIMEOUT_MS: i32 = 2000;

/// A connection to `addr`, its socket marked with `mark` if given.
pub fn connect(addr: SocketAddr, mark: Option<u32>) -> Result<(), String> {
    try_connect(addr, mark).map_err(|e| match e {
        Failure::Mark => MARK_REFUSED.to_owned(),
        Failure::Timeout => "no answer in 2 s".to_owned(),
        Failure::Io(e) => e.to_string(),
    })
}

enum Failure {
    Mark,
    Timeout,
    Io(io::Error),
}

fn last() -> Failure {
    Failure::Io(io::Error::last_os_error())
}

fn try_connect(addr: SocketAddr, mark: Option<u32>) -> Result<(), Failure> {
    let domain = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: plain socket creation; the descriptor is owned at once.
    let fd = unsafe {
        libc::socket(
            domain,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(last());
    }
    // SAFETY: `fd` was just created and is owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    if let Some(mark) = mark {
        // SAFETY: a valid socket and a u32 option of the size given.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_MARK,
                (&raw const mark).cast(),
                size_of::<u32>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(Failure::Mark);
        }
    }
    let (storage, len) = sockaddr(addr);
    // SAFETY: `storage` holds a sockaddr of `len` bytes for this family.
    let rc = unsafe { libc::connect(fd.as_raw_fd(), (&raw const storage).cast(), len) };
    if rc != 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINPROGRESS) {
        return Err(last());
    }
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    match unsafe { libc::poll(&mut pfd, 1, TIMEOUT_MS) } {
        0 => return Err(Failure::Timeout),
        n if n < 0 => return Err(last()),
        _ => {}
    }
    let mut err: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: a valid socket and an out-buffer of the size given.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&raw mut err).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(last());
    }
    match err {
        0 => Ok(()),
        e => Err(Failure::Io(io::Error::from_raw_os_error(e))),
    }
}

/// `addr` as the kernel takes it.
fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than, and aligned for, sockaddr_in.
            unsafe { (&raw mut storage).cast::<libc::sockaddr_in>().write(sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than, and aligned for, sockaddr_in6.
            unsafe { (&raw mut storage).cast::<libc::sockaddr_in6>().write(sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_connects_and_names_a_refusal() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let at = listener.local_addr().unwrap();
        assert_eq!(connect(at, None), Ok(()));
        drop(listener);
        let refused = connect(at, None).unwrap_err();
        assert!(refused.contains("refused"), "{refused}");
        let v6 = std::net::TcpListener::bind("[::1]:0");
        if let Ok(l) = v6 {
            assert_eq!(connect(l.local_addr().unwrap(), None), Ok(()));
        }
    }
}
