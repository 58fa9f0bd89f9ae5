//! Sockets ended at the agent's word: the kernel's socket diagnostics
//! (`NETLINK_SOCK_DIAG`) list a namespace's TCP and UDP sockets, and
//! `SOCK_DESTROY` aborts one by its identity and cookie, as `ss -K` does
//! (a reset for TCP, `ECONNABORTED` for a connected UDP socket). Every
//! kernel hairpin supports has it where built with `INET_DIAG_DESTROY`.
//! It acts in the namespace of the thread that asks.

use std::{
    collections::BTreeSet,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
};

use anyhow::{bail, Context as _, Result};
use netlink_sys::{Socket, SocketAddr as NetlinkAddr};

const NETLINK_SOCK_DIAG: isize = 4;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const SOCK_DESTROY: u16 = 21;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_DUMP: u16 = 0x300;
const HEADER: usize = 16;
/// `struct inet_diag_sockid`.
const SOCKID: usize = 48;
/// `struct inet_diag_req_v2`.
const REQUEST: usize = 8 + SOCKID;

/// A socket the kernel listed: its identity, as `SOCK_DESTROY` takes it.
struct Listed {
    family: u8,
    proto: u8,
    id: [u8; SOCKID],
}

impl Listed {
    fn peer(&self) -> SocketAddr {
        let port = u16::from_be_bytes([self.id[2], self.id[3]]);
        let dst = &self.id[20..36];
        let ip = if self.family == libc::AF_INET as u8 {
            IpAddr::V4(Ipv4Addr::new(dst[0], dst[1], dst[2], dst[3]))
        } else {
            let mut b = [0u8; 16];
            b.copy_from_slice(dst);
            IpAddr::V6(Ipv6Addr::from(b))
        };
        SocketAddr::new(ip, port)
    }

    fn cookie(&self) -> u64 {
        let low = u32::from_ne_bytes(self.id[40..44].try_into().expect("4 bytes"));
        let high = u32::from_ne_bytes(self.id[44..48].try_into().expect("4 bytes"));
        u64::from(low) | (u64::from(high) << 32)
    }
}

/// Ends the TCP and UDP sockets of the current network namespace that are
/// connected to one of `peers` and whose cookie is one of `cookies`;
/// returns how many.
pub fn end(peers: &BTreeSet<SocketAddr>, cookies: &BTreeSet<u64>) -> Result<usize> {
    if peers.is_empty() || cookies.is_empty() {
        return Ok(0);
    }
    let mut sock = Socket::new(NETLINK_SOCK_DIAG).context("opening sock_diag")?;
    sock.bind_auto().context("binding sock_diag")?;
    sock.connect(&NetlinkAddr::new(0, 0))
        .context("connecting sock_diag")?;
    let families = [(libc::AF_INET, true), (libc::AF_INET6, false)];
    let mut ended = 0;
    for (family, v4) in families {
        if !peers.iter().any(|p| p.is_ipv4() == v4) {
            continue;
        }
        for proto in [libc::IPPROTO_TCP, libc::IPPROTO_UDP] {
            let listed = list(&sock, family as u8, proto as u8)?;
            for s in listed
                .iter()
                .filter(|s| peers.contains(&s.peer()) && cookies.contains(&s.cookie()))
            {
                if destroy(&sock, s)? {
                    ended += 1;
                }
            }
        }
    }
    Ok(ended)
}

/// A request: the netlink header and `struct inet_diag_req_v2`.
fn request(kind: u16, flags: u16, family: u8, proto: u8, id: &[u8; SOCKID]) -> Vec<u8> {
    let len = (HEADER + REQUEST) as u32;
    let mut b = Vec::with_capacity(len as usize);
    b.extend_from_slice(&len.to_ne_bytes());
    b.extend_from_slice(&kind.to_ne_bytes());
    b.extend_from_slice(&flags.to_ne_bytes());
    b.extend_from_slice(&1u32.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes());
    b.extend_from_slice(&[family, proto, 0, 0]);
    // Every state: UDP sockets are ESTABLISHED when connected, CLOSE when not.
    b.extend_from_slice(&u32::MAX.to_ne_bytes());
    b.extend_from_slice(id);
    b
}

/// The netlink messages of one datagram: (type, payload).
fn messages(buf: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + HEADER <= buf.len() {
        let len = u32::from_ne_bytes(buf[at..at + 4].try_into().expect("4 bytes")) as usize;
        let kind = u16::from_ne_bytes(buf[at + 4..at + 6].try_into().expect("2 bytes"));
        if len < HEADER || at + len > buf.len() {
            break;
        }
        out.push((kind, &buf[at + HEADER..at + len]));
        // Messages are aligned to 4 bytes.
        at += (len + 3) & !3;
    }
    out
}

/// The error an `NLMSG_ERROR` payload carries (0: an acknowledgement).
fn error_of(payload: &[u8]) -> i32 {
    payload.get(..4).map_or(-libc::EIO, |b| {
        i32::from_ne_bytes(b.try_into().expect("4 bytes"))
    })
}

/// Every socket of `family` and `proto` in the namespace.
fn list(sock: &Socket, family: u8, proto: u8) -> Result<Vec<Listed>> {
    let req = request(
        SOCK_DIAG_BY_FAMILY,
        NLM_F_REQUEST | NLM_F_DUMP,
        family,
        proto,
        &[0; SOCKID],
    );
    sock.send(&req, 0).context("asking for the sockets")?;
    let mut out = Vec::new();
    loop {
        let (buf, _) = sock.recv_from_full().context("reading the sockets")?;
        for (kind, payload) in messages(&buf) {
            match kind {
                NLMSG_DONE => return Ok(out),
                NLMSG_ERROR => {
                    let e = std::io::Error::from_raw_os_error(-error_of(payload));
                    return Err(e).context("listing the sockets");
                }
                SOCK_DIAG_BY_FAMILY if payload.len() >= 4 + SOCKID => {
                    let mut id = [0u8; SOCKID];
                    id.copy_from_slice(&payload[4..4 + SOCKID]);
                    out.push(Listed { family, proto, id });
                }
                _ => {}
            }
        }
    }
}

/// Ends one socket; whether it was there to end.
fn destroy(sock: &Socket, s: &Listed) -> Result<bool> {
    let req = request(
        SOCK_DESTROY,
        NLM_F_REQUEST | NLM_F_ACK,
        s.family,
        s.proto,
        &s.id,
    );
    sock.send(&req, 0).context("ending a socket")?;
    let (buf, _) = sock.recv_from_full().context("reading the answer")?;
    let Some(&(_, payload)) = messages(&buf).iter().find(|(k, _)| *k == NLMSG_ERROR) else {
        bail!("no answer to SOCK_DESTROY");
    };
    match -error_of(payload) {
        0 => Ok(true),
        // Closed meanwhile.
        libc::ENOENT => Ok(false),
        libc::EOPNOTSUPP => {
            bail!("this kernel cannot end sockets (built without CONFIG_INET_DIAG_DESTROY)")
        }
        e => Err(std::io::Error::from_raw_os_error(e)).context("ending a socket"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_socket_reads_its_peer_and_cookie() {
        let mut id = [0u8; SOCKID];
        id[2..4].copy_from_slice(&80u16.to_be_bytes());
        id[20..24].copy_from_slice(&[198, 51, 100, 2]);
        id[40..44].copy_from_slice(&0x1234_5678u32.to_ne_bytes());
        id[44..48].copy_from_slice(&0x9u32.to_ne_bytes());
        let s = Listed {
            family: libc::AF_INET as u8,
            proto: libc::IPPROTO_TCP as u8,
            id,
        };
        assert_eq!(s.peer(), "198.51.100.2:80".parse().unwrap());
        assert_eq!(s.cookie(), 0x9_1234_5678);
        let req = request(
            SOCK_DESTROY,
            NLM_F_REQUEST | NLM_F_ACK,
            s.family,
            s.proto,
            &s.id,
        );
        assert_eq!(req.len(), 72);
        assert_eq!(messages(&req), [(SOCK_DESTROY, &req[HEADER..])]);
    }
}
