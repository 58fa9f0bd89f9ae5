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
mod state;
mod tables;

use std::net::SocketAddr;

pub use expected::{Action, Expected, Verdict};
use packet::{classify, Class};
pub use state::Model;
pub use tables::{FrontendCfg, Hook, Origin, Tables, Tuple};

use crate::frames::{IPPROTO_ICMP, IPPROTO_ICMPV6};

impl Model {
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
}
