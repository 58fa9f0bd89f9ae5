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
    /// packet passes untranslated, as if there were no frontend, unless
    /// `FRONTEND_REFUSE` is set).
    pub slots: u16,
    /// `FRONTEND_*` bits. Where an older datapath had a 32-bit `slots`,
    /// these were its high, always-zero bits: its pinned values read the same.
    pub flags: u16,
}

/// Without backends, new flows are refused: a TCP reset answers a SYN,
/// an ICMP port unreachable a UDP datagram.
pub const FRONTEND_REFUSE: u16 = 1;
/// Packets from the frontend's own backends (by address) pass
/// untranslated: a backend calling the frontend reaches the real one.
/// The addresses are in `BACKEND_MEMBERS_V{4,6}`.
pub const FRONTEND_SKIP_BACKENDS: u16 = 2;

/// Key of `BACKEND_MEMBERS_V{4,6}`: a backend address of a frontend that
/// has `FRONTEND_SKIP_BACKENDS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MemberKey<A> {
    pub frontend_id: u32,
    /// As on the wire.
    pub addr: A,
}

pub type MemberKeyV4 = MemberKey<u32>;
pub type MemberKeyV6 = MemberKey<[u32; 4]>;

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
    /// Sockets in the node's own network namespace, and those of the
    /// processes in the cgroups chosen for it (`SOCK_CGROUPS`).
    Host = 1,
    /// Every socket of the cgroup.
    All = 2,
}

/// Key of `SOCK_REVNAT_V{4,6}`: a socket and the backend it was sent to.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SockKey<A> {
    /// The backend's address, as on the wire.
    pub addr: A,
    /// The backend's port, network byte order.
    pub port: u16,
    pub _pad: u16,
    /// `bpf_get_socket_cookie`, as two words: 4-byte alignment keeps both
    /// families' keys free of implicit padding.
    pub cookie: [u32; 2],
}

/// Value of `SOCK_REVNAT_V{4,6}`: the frontend the socket asked for, which
/// `getpeername` and `recvmsg` report instead of the backend.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SockNat<A> {
    pub addr: A,
    pub port: u16,
    pub _pad: u16,
}

pub type SockKeyV4 = SockKey<u32>;
pub type SockKeyV6 = SockKey<[u32; 4]>;
pub type SockNatV4 = SockNat<u32>;
pub type SockNatV6 = SockNat<[u32; 4]>;

user_pod!(Frontend, BackendKey, NodeConfig);
user_pod_generic!(FrontendKey, Backend, SockKey, SockNat, MemberKey);

const _: () =
    assert!(core::mem::size_of::<FrontendKeyV6>() == 20 && core::mem::size_of::<BackendV6>() == 20);
// The frontend value keeps the size older datapaths pinned.
const _: () = assert!(core::mem::size_of::<Frontend>() == 8);
const _: () = assert!(core::mem::size_of::<MemberKeyV6>() == 20);
