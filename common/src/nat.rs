//! Frontends, backends and the node facts the datapath needs to re-route.

use crate::{user_pod, user_pod_generic};

/// Key of `FRONTENDS_V{4,6}`: a frontend is an external address, port and
/// protocol.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FrontendKey<A> {
    /// As on the wire.
    pub addr: A,
    /// Network byte order.
    pub port: u16,
    /// `IPPROTO_TCP` or `IPPROTO_UDP`.
    pub proto: u8,
    pub _pad: u8,
}

/// Value of `FRONTENDS_V{4,6}`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Frontend {
    /// Index of this frontend in `FRONTEND_STATS` and in `BackendKey`.
    pub id: u32,
    /// Number of backend slots `0..slots` in `BACKENDS_V{4,6}`; weights are
    /// expressed by giving a backend several slots. Zero: no backend (the
    /// packet passes untranslated, as if there were no frontend).
    pub slots: u32,
}

/// Key of `BACKENDS_V{4,6}`: one slot of one frontend.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BackendKey {
    pub frontend_id: u32,
    pub slot: u32,
}

pub type FrontendKeyV4 = FrontendKey<u32>;
pub type FrontendKeyV6 = FrontendKey<[u32; 4]>;

/// Value of `BACKENDS_V{4,6}`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Backend<A> {
    /// As on the wire.
    pub addr: A,
    /// Network byte order.
    pub port: u16,
    pub _pad: u16,
}

pub type BackendV4 = Backend<u32>;
pub type BackendV6 = Backend<[u32; 4]>;

/// Value of the one-element `NODE` array: what the datapath needs to hand a
/// reply to the stack where the stack expects it (the uplink).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeConfig {
    /// Interface index of the uplink; zero while the agent has not found it.
    pub uplink_ifindex: u32,
    /// The uplink's own MAC address, so that a frame handed to its ingress is
    /// taken as addressed to this host.
    pub uplink_mac: [u8; 6],
    /// `SockScope` as u8: which sockets the socket-level path translates.
    pub sock_scope: u8,
    pub _pad: u8,
    /// The network namespace cookie of the node's own namespace (the
    /// `host` scope's sockets).
    pub host_netns_cookie: u64,
}

/// Which sockets the socket-level path translates (`NodeConfig::sock_scope`).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockScope {
    /// None: the socket-level path is off.
    Off = 0,
    /// Sockets in the node's own network namespace.
    Host = 1,
    /// Every socket of the cgroup.
    All = 2,
}

/// Key of `SOCK_REVNAT_V4`: a socket and the backend it was sent to.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SockKeyV4 {
    /// `bpf_get_socket_cookie`.
    pub cookie: u64,
    /// The backend's address and port, network byte order.
    pub addr: u32,
    pub port: u16,
    pub _pad: u16,
}

/// Value of `SOCK_REVNAT_V4`: the frontend the socket asked for, which
/// `getpeername` and `recvmsg` report instead of the backend.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SockNatV4 {
    pub addr: u32,
    pub port: u16,
    pub _pad: u16,
}

user_pod!(Frontend, BackendKey, NodeConfig, SockKeyV4, SockNatV4);
user_pod_generic!(FrontendKey, Backend);

const _: () =
    assert!(core::mem::size_of::<FrontendKeyV6>() == 20 && core::mem::size_of::<BackendV6>() == 20);
