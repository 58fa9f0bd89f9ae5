//! Sockets do not outlive their backend: a socket the socket path sent to a
//! backend that its frontend no longer has is ended (`diag`), so that its
//! client reconnects, to a live backend, at once. The socket path's reverse
//! entries (`SOCK_REVNAT_V{4,6}`: backend and cookie → frontend) say which
//! sockets it sent where.

use std::{
    collections::BTreeSet,
    net::{IpAddr, SocketAddr},
};

use anyhow::{Context as _, Result};
use aya::maps::{HashMap, MapData};
use hairpin_common::{SockKey, SockNat, SOCK_REVNAT_V4, SOCK_REVNAT_V6};

use crate::{
    config::Frontend,
    datapath::{addr::Addr, loader::Datapath},
};

/// The sockets to end: their backends and cookies, and their entries.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stale {
    pub backends: BTreeSet<SocketAddr>,
    pub cookies: BTreeSet<u64>,
    v4: Vec<SockKey<u32>>,
    v6: Vec<SockKey<[u32; 4]>>,
}

impl Stale {
    pub fn is_empty(&self) -> bool {
        self.cookies.is_empty()
    }
}

/// The sockets the socket path sent to a backend that the frontend it
/// answers for (by address and port) does not have in `desired`.
pub fn stale(dp: &Datapath, desired: &[Frontend]) -> Result<Stale> {
    let mut out = Stale::default();
    out.v4 = family::<u32>(dp, SOCK_REVNAT_V4, desired, &mut out)?;
    out.v6 = family::<[u32; 4]>(dp, SOCK_REVNAT_V6, desired, &mut out)?;
    Ok(out)
}

/// Removes the entries of `stale`'s sockets, ended or closed: no later
/// apply looks for them again.
pub fn forget(dp: &mut Datapath, stale: &Stale) -> Result<()> {
    remove(dp, SOCK_REVNAT_V4, &stale.v4)?;
    remove(dp, SOCK_REVNAT_V6, &stale.v6)
}

fn remove<A: Addr>(dp: &mut Datapath, name: &str, keys: &[SockKey<A>]) -> Result<()> {
    let map = dp
        .ebpf
        .map_mut(name)
        .with_context(|| format!("map {name} missing from the object"))?;
    let mut map: HashMap<&mut MapData, SockKey<A>, SockNat<A>> = HashMap::try_from(map)?;
    for key in keys {
        // Ignored error: evicted meanwhile (the map is an LRU).
        let _ = map.remove(key);
    }
    Ok(())
}

/// One family's stale sockets, into `out`; returns their keys.
fn family<A: Addr>(
    dp: &Datapath,
    name: &str,
    desired: &[Frontend],
    out: &mut Stale,
) -> Result<Vec<SockKey<A>>> {
    let map = dp
        .ebpf
        .map(name)
        .with_context(|| format!("map {name} missing from the object"))?;
    let map: HashMap<&MapData, SockKey<A>, SockNat<A>> = HashMap::try_from(map)?;
    let mut keys = Vec::new();
    for entry in map.iter() {
        // An entry evicted meanwhile: nothing to end.
        let Ok((key, nat)) = entry else {
            continue;
        };
        let backend = SocketAddr::new(key.addr.ip(), u16::from_be(key.port));
        let frontend = (nat.addr.ip(), u16::from_be(nat.port));
        if !serves(desired, frontend, backend) {
            out.backends.insert(backend);
            out.cookies
                .insert(u64::from(key.cookie[0]) | (u64::from(key.cookie[1]) << 32));
            keys.push(key);
        }
    }
    Ok(keys)
}

/// Whether a frontend at `addr:port` (either protocol) has `backend`.
fn serves(desired: &[Frontend], (addr, port): (IpAddr, u16), backend: SocketAddr) -> bool {
    desired.iter().any(|f| {
        f.addr == addr
            && f.port == port
            && f.backends
                .iter()
                .any(|b| SocketAddr::new(b.addr, b.port) == backend)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Backend;

    #[test]
    fn a_socket_is_stale_once_its_frontend_lacks_its_backend() {
        let fe = |backends: &[&str]| Frontend {
            name: "web".into(),
            source: "t.yaml:1".into(),
            addr: "203.0.113.10".parse().unwrap(),
            port: 8080,
            proto: 6,
            backends: backends
                .iter()
                .map(|b| {
                    let b: SocketAddr = b.parse().unwrap();
                    Backend {
                        addr: b.ip(),
                        port: b.port(),
                        weight: 1,
                    }
                })
                .collect(),
            policy: Default::default(),
        };
        let at = ("203.0.113.10".parse().unwrap(), 8080);
        let b1: SocketAddr = "198.51.100.2:80".parse().unwrap();
        assert!(serves(&[fe(&["198.51.100.2:80"])], at, b1));
        assert!(!serves(&[fe(&["198.51.100.67:80"])], at, b1));
        assert!(!serves(&[fe(&["198.51.100.2:81"])], at, b1), "another port");
        assert!(!serves(&[], at, b1), "the frontend gone");
    }
}
