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

/// The sockets to end: their entries, which name their backends and
/// cookies.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stale {
    v4: Vec<SockKey<u32>>,
    v6: Vec<SockKey<[u32; 4]>>,
}

impl Stale {
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// The backends the sockets were sent to.
    pub fn backends(&self) -> BTreeSet<SocketAddr> {
        let v4 = self.v4.iter().map(backend);
        v4.chain(self.v6.iter().map(backend)).collect()
    }

    /// The sockets' cookies.
    pub fn cookies(&self) -> BTreeSet<u64> {
        let v4 = self.v4.iter().map(cookie);
        v4.chain(self.v6.iter().map(cookie)).collect()
    }
}

fn backend<A: Addr>(key: &SockKey<A>) -> SocketAddr {
    SocketAddr::new(key.addr.ip(), u16::from_be(key.port))
}

fn cookie<A>(key: &SockKey<A>) -> u64 {
    u64::from(key.cookie[0]) | (u64::from(key.cookie[1]) << 32)
}

/// The sockets the socket path sent to a backend that the frontend it
/// answers for (by address and port) does not have in `desired`.
pub fn stale(dp: &Datapath, desired: &[Frontend]) -> Result<Stale> {
    Ok(Stale {
        v4: family(dp, SOCK_REVNAT_V4, desired)?,
        v6: family(dp, SOCK_REVNAT_V6, desired)?,
    })
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

/// The entries of one family's stale sockets.
fn family<A: Addr>(dp: &Datapath, name: &str, desired: &[Frontend]) -> Result<Vec<SockKey<A>>> {
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
        let frontend = (nat.addr.ip(), u16::from_be(nat.port));
        if !serves(desired, frontend, backend(&key)) {
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
