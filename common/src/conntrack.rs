//! Conntrack entries: two per flow, one keyed by each direction's tuple.

use crate::user_pod_generic;

/// Key of `CT_V4` and `CT_V6`: a packet's tuple as it is seen at the hook
/// that looks it up. `A` is the address: `u32` for IPv4, `[u32; 4]` for
/// IPv6, both as the bytes on the wire.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CtKey<A> {
    pub saddr: A,
    pub daddr: A,
    /// Network byte order.
    pub sport: u16,
    /// Network byte order.
    pub dport: u16,
    pub proto: u8,
    /// The three bytes after `proto`, in two fields so that zeroing them is
    /// two aligned stores: as `[u8; 3]` the eBPF build called `memset`, a
    /// subprogram whose frame counts against the 512-byte stack of the
    /// deepest chain of calls.
    pub _pad: u8,
    pub _pad2: u16,
}

pub type CtKeyV4 = CtKey<u32>;
pub type CtKeyV6 = CtKey<[u32; 4]>;

impl<A: Copy> CtKey<A> {
    /// The tuple of a packet going the other way.
    pub fn reversed(&self) -> Self {
        Self {
            saddr: self.daddr,
            daddr: self.saddr,
            sport: self.dport,
            dport: self.sport,
            proto: self.proto,
            _pad: 0,
            _pad2: 0,
        }
    }
}

/// Which way the packets that hit an entry travel.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtDir {
    /// Client to frontend: the destination becomes the backend.
    Forward = 0,
    /// Backend to client: the source becomes the frontend again.
    Reverse = 1,
}

/// Where a flow is translated, which decides the hooks that own its packets.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtOrigin {
    /// A pod client: translated on its veth (the pod's egress) before the
    /// node's netfilter, reversed on the same veth's egress after it.
    Pod = 0,
    /// A host process: translated on the uplink's egress after netfilter and
    /// re-routed; replies are reversed where they enter the node.
    Host = 1,
    /// A pod that reaches itself through a frontend: its source is translated
    /// too, and both directions are turned around on its own veth.
    Loop = 2,
}

impl CtOrigin {
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::Pod),
            1 => Some(Self::Host),
            2 => Some(Self::Loop),
            _ => None,
        }
    }
}

/// TCP flags seen in one direction of a flow (`CtEntryV4::seen`).
pub const SEEN_SYN: u8 = 1 << 0;
/// An ACK-bearing segment: the handshake is past for this side.
pub const SEEN_ACK: u8 = 1 << 1;
pub const SEEN_FIN: u8 = 1 << 2;
pub const SEEN_RST: u8 = 1 << 3;
/// Set on a reverse entry by the first packet that hits it, whatever the
/// protocol: the flow was answered. Recorded because the coarse clock can
/// give a quick answer the time of its request.
pub const SEEN_REPLY: u8 = 1 << 4;
/// Set by the agent on both entries of a TCP flow it ended (its backend or
/// frontend removed, or a flush): each end's next segment reaches the other
/// as a reset, so both learn at once, and a new connection on the tuple
/// opens a new flow.
pub const SEEN_ENDED: u8 = 1 << 7;

/// Value of `CT_V4` and `CT_V6`. The entry states the whole tuple a
/// matching packet leaves with, so one rewrite routine serves both
/// directions.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtEntry<A> {
    /// The tuple after translation (network byte order).
    pub nat: CtKey<A>,
    /// `bpf_ktime_get_coarse_ns` (CLOCK_MONOTONIC) when the flow was created.
    pub created_ns: u64,
    /// The same clock at the latest packet, refreshed at most once per
    /// `CT_REFRESH_NS` to keep the cache line quiet.
    pub last_seen_ns: u64,
    pub frontend_id: u32,
    /// `CtDir` as u8.
    pub dir: u8,
    /// `CtOrigin` as u8.
    pub origin: u8,
    /// `SEEN_*` flags of the packets that hit this entry: TCP flags, and
    /// `SEEN_REPLY` on a reverse entry.
    pub seen: u8,
    pub _pad: u8,
}

pub type CtEntryV4 = CtEntry<u32>;
pub type CtEntryV6 = CtEntry<[u32; 4]>;

user_pod_generic!(CtKey, CtEntry);

// Keep the compiler honest about the ABI.
const _: () =
    assert!(core::mem::size_of::<CtKeyV4>() == 16 && core::mem::size_of::<CtKeyV6>() == 40);
const _: () =
    assert!(core::mem::size_of::<CtEntryV4>() == 40 && core::mem::size_of::<CtEntryV6>() == 64);

/// Default lifetimes, overridable by the agent through the program globals.
pub const CT_TIMEOUT_SYN_NS: u64 = 60 * NS_PER_SEC;
pub const CT_TIMEOUT_TCP_NS: u64 = 6 * 3600 * NS_PER_SEC;
pub const CT_TIMEOUT_CLOSE_NS: u64 = 10 * NS_PER_SEC;
pub const CT_TIMEOUT_UDP_NS: u64 = 60 * NS_PER_SEC;
/// `last_seen_ns` is written at most this often per entry.
pub const CT_REFRESH_NS: u64 = NS_PER_SEC;
pub const NS_PER_SEC: u64 = 1_000_000_000;

/// How long an entry lives after its last packet, from the flags seen in
/// its direction. Shared by the datapath (is a forward entry still valid?)
/// and the agent's garbage collector, so they cannot disagree.
pub fn ct_lifetime(proto: u8, seen: u8, t: &CtTimeouts) -> u64 {
    if proto != crate::IPPROTO_TCP {
        t.udp
    } else if seen & (SEEN_FIN | SEEN_RST) != 0 {
        t.close
    } else if seen & SEEN_ACK != 0 {
        t.tcp
    } else {
        t.syn
    }
}

/// Lifetimes in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtTimeouts {
    pub syn: u64,
    pub tcp: u64,
    pub close: u64,
    pub udp: u64,
}

impl Default for CtTimeouts {
    fn default() -> Self {
        Self {
            syn: CT_TIMEOUT_SYN_NS,
            tcp: CT_TIMEOUT_TCP_NS,
            close: CT_TIMEOUT_CLOSE_NS,
            udp: CT_TIMEOUT_UDP_NS,
        }
    }
}
