//! The datapath's maps as the tests fill and read them: addresses and
//! ports in their wire format, written here rather than with the agent's
//! helpers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use hairpin::{
    datapath::addr::{Addr, FamilyMaps},
    datapath::loader::Maps,
};
use hairpin_common::{
    Backend, BackendKey, CtEntry, CtKey, Frontend, FrontendKey, MemberKey, FRONTEND_SKIP_BACKENDS,
};

use crate::model::{FrontendCfg, Tuple};

/// An address as the maps hold it, written here from the wire format
/// (each 4-byte group read in native order), not with the agent's helpers.
pub(super) trait Wire: Addr {
    fn of(ip: IpAddr) -> Self;
    fn to_ip(self) -> IpAddr;
}

impl Wire for u32 {
    fn of(ip: IpAddr) -> Self {
        let IpAddr::V4(a) = ip else {
            panic!("{ip} in an IPv4 map")
        };
        u32::from_ne_bytes(a.octets())
    }

    fn to_ip(self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(self.to_ne_bytes()))
    }
}

impl Wire for [u32; 4] {
    fn of(ip: IpAddr) -> Self {
        let IpAddr::V6(a) = ip else {
            panic!("{ip} in an IPv6 map")
        };
        let o = a.octets();
        std::array::from_fn(|i| u32::from_ne_bytes(o[i * 4..i * 4 + 4].try_into().unwrap()))
    }

    fn to_ip(self) -> IpAddr {
        let mut o = [0u8; 16];
        for (i, w) in self.iter().enumerate() {
            o[i * 4..i * 4 + 4].copy_from_slice(&w.to_ne_bytes());
        }
        IpAddr::V6(Ipv6Addr::from(o))
    }
}

/// A port as the maps hold it: network byte order.
fn wire_port(port: u16) -> u16 {
    u16::from_ne_bytes(port.to_be_bytes())
}

pub(super) fn ct_key<A: Wire>(t: &Tuple) -> CtKey<A> {
    CtKey {
        saddr: A::of(t.src.ip()),
        daddr: A::of(t.dst.ip()),
        sport: wire_port(t.src.port()),
        dport: wire_port(t.dst.port()),
        proto: t.proto,
        _pad: 0,
        _pad2: 0,
    }
}

fn tuple_of<A: Wire>(k: &CtKey<A>) -> Tuple {
    let ep =
        |addr: A, port: u16| SocketAddr::new(addr.to_ip(), u16::from_be_bytes(port.to_ne_bytes()));
    Tuple::new(k.proto, ep(k.saddr, k.sport), ep(k.daddr, k.dport))
}

/// A conntrack entry of either family, its tuple read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtView {
    pub dir: u8,
    pub origin: u8,
    pub nat: Tuple,
    pub frontend_id: u32,
    pub created_ns: u64,
    pub seen: u8,
}

impl<A: Wire> From<CtEntry<A>> for CtView {
    fn from(e: CtEntry<A>) -> Self {
        Self {
            dir: e.dir,
            origin: e.origin,
            nat: tuple_of(&e.nat),
            frontend_id: e.frontend_id,
            created_ns: e.created_ns,
            seen: e.seen,
        }
    }
}

/// The entry of `t` in the conntrack map of its family.
pub(super) fn ct_entry(maps: &Maps, t: &Tuple) -> Option<CtView> {
    match t.src {
        SocketAddr::V4(_) => maps.v4.conntrack.get(&ct_key(t), 0).ok().map(CtView::from),
        SocketAddr::V6(_) => maps.v6.conntrack.get(&ct_key(t), 0).ok().map(CtView::from),
    }
}

/// Writes a frontend and its backends into the maps of its family.
pub(super) fn insert_frontend<A: Wire>(maps: &mut FamilyMaps<A>, fe: &FrontendCfg) {
    let key = FrontendKey {
        addr: A::of(fe.addr.ip()),
        port: wire_port(fe.addr.port()),
        proto: fe.proto,
        _pad: 0,
    };
    let value = Frontend {
        id: fe.id,
        slots: fe.backends.len() as u16,
        flags: fe.flags,
    };
    maps.frontends
        .insert(key, value, 0)
        .expect("inserting a frontend");
    let users = maps.frontend_addrs.get(&key.addr, 0).unwrap_or(0);
    maps.frontend_addrs
        .insert(key.addr, users + 1, 0)
        .expect("inserting a frontend address");
    for (slot, b) in fe.backends.iter().enumerate() {
        let backend = Backend {
            addr: A::of(b.ip()),
            port: wire_port(b.port()),
            _pad: 0,
        };
        let key = BackendKey {
            frontend_id: fe.id,
            slot: slot as u32,
        };
        maps.backends
            .insert(key, backend, 0)
            .expect("inserting a backend");
        let users = maps.backend_addrs.get(&backend.addr, 0).unwrap_or(0);
        maps.backend_addrs
            .insert(backend.addr, users + 1, 0)
            .expect("inserting a backend address");
        if fe.flags & FRONTEND_SKIP_BACKENDS != 0 {
            let member = MemberKey {
                frontend_id: fe.id,
                addr: backend.addr,
            };
            maps.backend_members
                .insert(member, 1, 0)
                .expect("inserting a backend member");
        }
    }
}
