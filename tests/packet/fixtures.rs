//! The standard tables both families' frontends are loaded from, and the
//! ways a flow can be opened.

use std::net::SocketAddr;

use crate::{
    families::{Family, V4, V6},
    frames::{IPPROTO_TCP, IPPROTO_UDP},
    harness::{TC_ACT_REDIRECT, TC_ACT_UNSPEC},
    model::{FrontendCfg, Hook, Tables},
};

pub const UPLINK: (u32, [u8; 6]) = (2, [0x02, 0xfc, 0x00, 0x00, 0x00, 0x01]);

pub fn fe<S: Into<SocketAddr> + Copy>(id: u32, addr: S, proto: u8, backends: &[S]) -> FrontendCfg {
    FrontendCfg {
        id,
        addr: addr.into(),
        proto,
        backends: backends.iter().map(|&b| b.into()).collect(),
        flags: 0,
    }
}

/// The frontends of a family, ids `F::FIRST_ID` on.
pub fn frontends<F: Family>() -> Vec<FrontendCfg> {
    let id = F::FIRST_ID;
    vec![
        fe(id, F::WEB, IPPROTO_TCP, F::WEB_BACKENDS),
        fe(id + 1, F::DNS, IPPROTO_UDP, F::DNS_BACKENDS),
        fe(id + 2, F::SOLO, IPPROTO_TCP, &[F::SOLO_BACKEND]),
        fe(id + 3, F::SOLO, IPPROTO_UDP, &[F::SOLO_BACKEND]),
        fe(id + 4, F::EMPTY, IPPROTO_TCP, &[]),
        fe(id + 5, F::WEIGHTED, IPPROTO_UDP, F::WEIGHTED_BACKENDS),
    ]
}

/// The IPv4 frontends (ids 0-5) and the IPv6 ones (ids 6-11), on one
/// loaded datapath.
pub fn standard_tables() -> Tables {
    Tables {
        frontends: [frontends::<V4>(), frontends::<V6>()].concat(),
        uplink: Some(UPLINK),
    }
}

pub fn frontend_id(addr: impl Into<SocketAddr>, proto: u8) -> u32 {
    let addr = addr.into();
    standard_tables()
        .frontends
        .iter()
        .find(|f| f.addr == addr && f.proto == proto)
        .map(|f| f.id)
        .expect("a frontend of the standard tables")
}

/// The frontend of `proto` with several backends.
pub fn multi<F: Family>(proto: u8) -> (F::Sock, &'static [F::Sock]) {
    if proto == IPPROTO_TCP {
        (F::WEB, F::WEB_BACKENDS)
    } else {
        (F::DNS, F::DNS_BACKENDS)
    }
}

pub fn proto_name(proto: u8) -> &'static str {
    match proto {
        IPPROTO_TCP => "TCP",
        IPPROTO_UDP => "UDP",
        _ => "other",
    }
}

/// An origin of a flow: where its requests and replies are translated.
#[derive(Clone, Copy, Debug)]
pub enum Opened {
    /// By a pod; replies at pod egress.
    Pod,
    /// By the host; replies from the wire.
    HostViaUplink,
    /// By the host; replies from a local backend pod.
    HostViaPod,
    /// By the backend pod itself.
    Loop,
}

impl Opened {
    pub const ALL: [Opened; 4] = [
        Opened::Pod,
        Opened::HostViaUplink,
        Opened::HostViaPod,
        Opened::Loop,
    ];

    /// The client of a flow to SOLO opened this way.
    pub fn client<F: Family>(self, port: u16) -> F::Sock {
        let ip = match self {
            Opened::Pod => F::POD_CLIENT,
            Opened::HostViaUplink | Opened::HostViaPod => F::HOST_CLIENT,
            Opened::Loop => F::ip(F::SOLO_BACKEND),
        };
        F::sock(ip, port)
    }

    pub fn request_hook(self) -> Hook {
        match self {
            Opened::Pod | Opened::Loop => Hook::PodIngress,
            Opened::HostViaUplink | Opened::HostViaPod => Hook::UplinkEgress,
        }
    }

    pub fn reply_hook(self) -> Hook {
        match self {
            Opened::Pod => Hook::PodEgress,
            Opened::HostViaUplink => Hook::UplinkIngress,
            Opened::HostViaPod | Opened::Loop => Hook::PodIngress,
        }
    }

    pub fn reply_verdict(self) -> i32 {
        match self {
            Opened::Pod | Opened::HostViaUplink => TC_ACT_UNSPEC,
            Opened::HostViaPod | Opened::Loop => TC_ACT_REDIRECT,
        }
    }
}
