//! A reference model of hairpin's translation, written from its
//! specification rather than from the datapath: given the frontends, the
//! flows opened so far and a frame arriving at a hook, it says which verdict
//! and which bytes must come out, and which counters move.
//!
//! The specification, in short:
//! - A TCP or UDP packet to a frontend (address, port, protocol) that has
//!   backends opens a flow where flows open (a pod's egress, or the uplink's
//!   egress for host clients): its destination becomes a backend, and two
//!   conntrack entries remember the flow, one keyed by the packet's tuple
//!   (forward) and one by the tuple of the backend's replies (reverse).
//! - Replies get the frontend back as their source at the hook that owns
//!   them. A pod reaching itself ("loop") gets the frontend's address as its
//!   source too, and both directions are turned around on its own veth.
//! - A bare SYN on a tuple whose last connection got past the handshake
//!   opens a new flow; anything else follows the existing flow.
//! - ICMP errors quoting a packet of a flow are translated with it.
//! - Everything else, malformed IPv4 included, passes bit-identical.
//!
//! IPv6 follows the same rules over its own tables and conntrack, with
//! these differences:
//! - No header checksum: an address change shows in the L4 checksum only,
//!   through its pseudo-header (RFC 8200 section 8.1).
//! - Extension headers (hop-by-hop, routing, destination options) are
//!   walked, four at the most, to find TCP, UDP or ICMPv6 behind them; they
//!   stay as they are. Behind a fifth one the walk stops: what the fourth
//!   announces is taken as the protocol, which is none hairpin translates,
//!   so the packet passes (not counted as unparsable).
//! - A fragment header met on the walk, a jumbogram (payload length 0), an
//!   extension header beyond the payload, or a short upper-layer header make
//!   the packet unparsable: it passes, counted.
//! - ICMPv6 errors (destination unreachable, packet too big, time exceeded)
//!   quoting an IPv6 header directly followed by TCP or UDP of a flow are
//!   translated as ICMP ones are; the ICMPv6 checksum covers the outer
//!   addresses (pseudo-header) and the whole message. Everything else of
//!   ICMPv6 (neighbour discovery, echo) passes.
//! - A zero UDP checksum is not allowed in IPv6 (RFC 8200 section 8.1), but
//!   if one comes it is treated as in IPv4: it stays zero.
//!
//! Checksums are updated incrementally (RFC 1624, eqn. 3), so that an input
//! with a wrong checksum keeps exactly the same error; the comparison allows
//! the ones' complement equivalence of 0x0000 and 0xffff.

mod expected;
mod flow;
mod icmp;
mod packet;

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
};

pub use expected::{Action, Counters, CsumKind, Expected, Verdict};
use packet::{classify, Class};

use crate::frames::{IPPROTO_ICMP, IPPROTO_ICMPV6};

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
}

impl Hook {
    pub const ALL: [Hook; 4] = [
        Hook::PodIngress,
        Hook::PodEgress,
        Hook::UplinkEgress,
        Hook::UplinkIngress,
    ];

    pub fn program(self) -> &'static str {
        match self {
            Hook::PodIngress => hairpin_common::PROG_POD_INGRESS,
            Hook::PodEgress => hairpin_common::PROG_POD_EGRESS,
            Hook::UplinkEgress => hairpin_common::PROG_UPLINK_EGRESS,
            Hook::UplinkIngress => hairpin_common::PROG_UPLINK_INGRESS,
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
}

#[derive(Clone, Debug, Default)]
pub struct Tables {
    /// IPv4 and IPv6 frontends.
    pub frontends: Vec<FrontendCfg>,
    /// The uplink's interface index and MAC address, once known.
    pub uplink: Option<(u32, [u8; 6])>,
}

impl Tables {
    fn frontend(&self, t: &Tuple) -> Option<&FrontendCfg> {
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
/// (replies); a host's flows on the uplink's egress, and their replies
/// wherever they enter the node (the uplink, or a local backend pod's veth);
/// a loop's on the pod's own veth both ways.
pub fn owns(hook: Hook, dir: Dir, origin: Origin) -> bool {
    match (dir, origin) {
        (Dir::Forward, Origin::Pod | Origin::Loop) => hook == Hook::PodIngress,
        (Dir::Forward, Origin::Host) => hook == Hook::UplinkEgress,
        (Dir::Reverse, Origin::Pod) => hook == Hook::PodEgress,
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

pub struct Model {
    pub tables: Tables,
    ct: HashMap<Tuple, Entry>,
    pub counters: Counters,
}

impl Model {
    pub fn new(tables: Tables) -> Self {
        Self {
            tables,
            ct: HashMap::new(),
            counters: Counters::default(),
        }
    }

    /// The conntrack keys the model holds.
    pub fn keys(&self) -> Vec<Tuple> {
        self.ct.keys().copied().collect()
    }

    /// Forgets every flow (the counters stay).
    pub fn clear_flows(&mut self) {
        self.ct.clear();
    }

    /// What must come out of `hook` for `frame`. `chosen` tells which
    /// backend the datapath picked for a new flow (the choice is random):
    /// the model checks that it is one of the frontend's.
    pub fn process(
        &mut self,
        hook: Hook,
        frame: &[u8],
        chosen: impl FnOnce(&Tuple) -> Option<SocketAddr>,
    ) -> Result<Expected, String> {
        let untouched = Expected {
            action: Action::Untouched,
            key: None,
            verdict: Verdict::Pass,
            frame: frame.to_vec(),
            check_macs: true,
            csums: Vec::new(),
        };
        match classify(frame) {
            Class::Other => Ok(untouched),
            Class::Malformed => {
                self.counters.unparsable += 1;
                Ok(untouched)
            }
            Class::Ip(p) if p.proto == IPPROTO_ICMP => Ok(self.icmp(hook, frame, &p, untouched)),
            Class::Ip(p) if p.proto == IPPROTO_ICMPV6 => Ok(self.icmp6(hook, frame, &p, untouched)),
            Class::Ip(p) => self.flow(hook, frame, &p, chosen, untouched),
        }
    }

    /// Whether a packet of `e` translated at `hook` can be sent where it
    /// must go: a host's reply leaving a pod is handed to the uplink, which
    /// must be known.
    fn can_deliver(&mut self, hook: Hook, e: &Entry) -> bool {
        let to_uplink =
            hook == Hook::PodIngress && e.dir == Dir::Reverse && e.origin == Origin::Host;
        if to_uplink && self.tables.uplink.is_none() {
            self.counters.redirect_failed += 1;
            return false;
        }
        true
    }

    /// The verdict of a translated packet, and its Ethernet header.
    fn deliver(&self, hook: Hook, e: &Entry, out: &mut [u8]) -> (Verdict, bool) {
        match hook {
            Hook::PodIngress if e.origin == Origin::Loop => {
                // Back to the pod it came from: the MACs swap.
                let (dst, src) = (out[..6].to_vec(), out[6..12].to_vec());
                out[..6].copy_from_slice(&src);
                out[6..12].copy_from_slice(&dst);
                (Verdict::Redirect, true)
            }
            Hook::PodIngress if e.dir == Dir::Reverse => {
                // To the uplink's ingress, addressed to the node.
                let (_, mac) = self.tables.uplink.expect("checked by can_deliver");
                out[..6].copy_from_slice(&mac);
                (Verdict::Redirect, true)
            }
            // Re-routed by the namespace's routes: MACs and verdict vary.
            Hook::UplinkEgress => (Verdict::Any, false),
            _ => (Verdict::Pass, true),
        }
    }

    /// The flow entry an ICMP or ICMPv6 error quoting `quoted` belongs to,
    /// if it is translated at `hook`. The error travels the other way than
    /// the packet it quotes: it belongs where a packet of the reversed tuple
    /// would be translated.
    fn error_entry(&mut self, hook: Hook, quoted: &Tuple) -> Option<Entry> {
        let entry = *self.ct.get(&quoted.reversed())?;
        if !owns(hook, entry.dir, entry.origin) || !self.can_deliver(hook, &entry) {
            return None;
        }
        Some(entry)
    }
}
