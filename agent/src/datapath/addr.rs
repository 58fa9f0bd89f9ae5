//! The agent's view of an address family: how an address is written in the
//! maps (`u32` for IPv4, `[u32; 4]` for IPv6, both as on the wire), the
//! family's maps, and the names and forms shown to people.

use std::{
    fmt::Debug,
    hash::Hash,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use aya::{
    maps::{HashMap, MapData},
    Pod,
};
use hairpin_common::{
    Backend, BackendKey, CtEntry, CtKey, Frontend, FrontendKey, MemberKey, WireAddr, BACKENDS_V4,
    BACKENDS_V6, BACKEND_ADDRS_V4, BACKEND_ADDRS_V6, BACKEND_MEMBERS_V4, BACKEND_MEMBERS_V6, CT_V4,
    CT_V6, FRONTENDS_V4, FRONTENDS_V6, FRONTEND_ADDRS_V4, FRONTEND_ADDRS_V6,
};

/// An address as the maps hold it.
pub trait Addr: WireAddr + Pod + Debug + Eq + Ord + Hash + Send + Sync {
    /// The names of the family's maps: frontends, frontend addresses,
    /// backends, backend addresses, backend members, conntrack.
    const MAPS: [&'static str; 6];

    fn from_ip(ip: IpAddr) -> Option<Self>;
    fn ip(self) -> IpAddr;
}

impl Addr for u32 {
    const MAPS: [&'static str; 6] = [
        FRONTENDS_V4,
        FRONTEND_ADDRS_V4,
        BACKENDS_V4,
        BACKEND_ADDRS_V4,
        BACKEND_MEMBERS_V4,
        CT_V4,
    ];

    fn from_ip(ip: IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V4(a) => Some(u32::from_octets(a.octets())),
            IpAddr::V6(_) => None,
        }
    }

    fn ip(self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(self.octets()))
    }
}

impl Addr for [u32; 4] {
    const MAPS: [&'static str; 6] = [
        FRONTENDS_V6,
        FRONTEND_ADDRS_V6,
        BACKENDS_V6,
        BACKEND_ADDRS_V6,
        BACKEND_MEMBERS_V6,
        CT_V6,
    ];

    fn from_ip(ip: IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V6(a) => Some(<[u32; 4]>::from_octets(a.octets())),
            IpAddr::V4(_) => None,
        }
    }

    fn ip(self) -> IpAddr {
        IpAddr::V6(Ipv6Addr::from(self.octets()))
    }
}

/// `addr:port`, with brackets for IPv6, as written everywhere.
pub fn endpoint<A: Addr>(addr: A, port: u16) -> String {
    match addr.ip() {
        IpAddr::V4(a) => format!("{a}:{}", u16::from_be(port)),
        IpAddr::V6(a) => format!("[{a}]:{}", u16::from_be(port)),
    }
}

/// The maps of one family.
pub struct FamilyMaps<A: Addr> {
    pub frontends: HashMap<MapData, FrontendKey<A>, Frontend>,
    pub frontend_addrs: HashMap<MapData, A, u32>,
    pub backends: HashMap<MapData, BackendKey, Backend<A>>,
    pub backend_addrs: HashMap<MapData, A, u32>,
    /// Backend addresses of the frontends that skip their backends.
    pub backend_members: HashMap<MapData, MemberKey<A>, u32>,
    pub conntrack: HashMap<MapData, CtKey<A>, CtEntry<A>>,
}
