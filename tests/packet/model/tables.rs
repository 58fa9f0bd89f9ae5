//! What the model reasons over: hooks, tuples, the frontends' tables, and
//! the conntrack entries of flows.

use std::net::{IpAddr, SocketAddr};

/// Where a program runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hook {
    /// What a pod sends (its veth's ingress on the node side).
    PodIngress,
    /// What a pod receives.
    PodEgress,
    /// What the node sends out of its uplink.
    UplinkEgress,
    /// What the node receives on its uplink.
    UplinkIngress,
    /// What a pod receives, seen inside the pod: after `PodEgress` when
    /// the node's stack delivered it, alone when a CNI's
    /// `bpf_redirect_peer` did.
    PodReceive,
}

impl Hook {
    pub const ALL: [Hook; 5] = [
        Hook::PodIngress,
        Hook::PodEgress,
        Hook::UplinkEgress,
        Hook::UplinkIngress,
        Hook::PodReceive,
    ];

    pub fn program(self) -> &'static str {
        match self {
            Hook::PodIngress => hairpin_common::PROG_POD_INGRESS,
            Hook::PodEgress => hairpin_common::PROG_POD_EGRESS,
            Hook::UplinkEgress => hairpin_common::PROG_UPLINK_EGRESS,
            Hook::UplinkIngress => hairpin_common::PROG_UPLINK_INGRESS,
            Hook::PodReceive => hairpin_common::PROG_POD_RECEIVE,
        }
    }
}

/// A packet's addresses, ports and protocol, of either family (IPv6
/// socket addresses have no flow information or scope).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tuple {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub proto: u8,
}

impl Tuple {
    pub fn new(proto: u8, src: impl Into<SocketAddr>, dst: impl Into<SocketAddr>) -> Self {
        Self {
            src: src.into(),
            dst: dst.into(),
            proto,
        }
    }

    pub fn reversed(&self) -> Self {
        Self {
            src: self.dst,
            dst: self.src,
            proto: self.proto,
        }
    }
}

/// A frontend of either family; its backends are of its family.
#[derive(Clone, Debug)]
pub struct FrontendCfg {
    /// Unique across both families: they share `FRONTEND_STATS`.
    pub id: u32,
    pub addr: SocketAddr,
    pub proto: u8,
    /// One backend per slot; empty: the frontend translates nothing.
    pub backends: Vec<SocketAddr>,
    /// `FRONTEND_*` flags. The model knows none: frames of frontends with
    /// flags are run with `Harness::run_unmodelled` and checked by their test.
    pub flags: u16,
}

#[derive(Clone, Debug, Default)]
pub struct Tables {
    /// IPv4 and IPv6 frontends.
    pub frontends: Vec<FrontendCfg>,
    /// The uplink's interface index and MAC address, once known.
    pub uplink: Option<(u32, [u8; 6])>,
}

impl Tables {
    pub(super) fn frontend(&self, t: &Tuple) -> Option<&FrontendCfg> {
        self.frontends
            .iter()
            .find(|f| f.addr == t.dst && f.proto == t.proto && !f.backends.is_empty())
    }

    pub fn is_frontend_addr(&self, addr: IpAddr) -> bool {
        self.frontends.iter().any(|f| f.addr.ip() == addr)
    }

    pub fn is_backend_addr(&self, addr: IpAddr) -> bool {
        self.frontends
            .iter()
            .any(|f| f.backends.iter().any(|b| b.ip() == addr))
    }
}

/// Where a flow was opened, which decides where its packets are translated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Pod,
    Host,
    Loop,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    Forward,
    Reverse,
}

/// Whether packets of a flow of `origin` travelling `dir` are translated at
/// `hook`: a pod's flows where the pod sends (forward) and receives
/// (replies, on either side of its interface: the first to see one
/// translates it); a host's flows on the uplink's egress, and their replies
/// wherever they enter the node (the uplink, or a local backend pod's veth);
/// a loop's on the pod's own veth both ways.
pub fn owns(hook: Hook, dir: Dir, origin: Origin) -> bool {
    match (dir, origin) {
        (Dir::Forward, Origin::Pod | Origin::Loop) => hook == Hook::PodIngress,
        (Dir::Forward, Origin::Host) => hook == Hook::UplinkEgress,
        (Dir::Reverse, Origin::Pod) => matches!(hook, Hook::PodEgress | Hook::PodReceive),
        (Dir::Reverse, Origin::Host) => matches!(hook, Hook::UplinkIngress | Hook::PodIngress),
        (Dir::Reverse, Origin::Loop) => hook == Hook::PodIngress,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub dir: Dir,
    pub origin: Origin,
    /// The tuple a matching packet leaves with.
    pub to: Tuple,
    pub frontend_id: u32,
    /// The client's side of the flow sent an ACK (forward entries only).
    pub ack_seen: bool,
}
