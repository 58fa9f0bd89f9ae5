//! Refusals: a new flow at a frontend without backends that asks for it
//! (`whenNoBackend: reject`) is answered at once, as a closed port would
//! answer it, instead of passing to the real address. The packet itself
//! becomes the answer and goes back to its sender without crossing the
//! node: a TCP SYN is made a reset (`reset`), a UDP datagram an ICMP port
//! unreachable (`unreachable`).

mod reset;
mod unreachable;

use aya_ebpf::{
    bindings::{TC_ACT_SHOT, TC_ACT_UNSPEC},
    programs::TcContext,
};
use hairpin_common::{Counter, IPPROTO_TCP};

pub use unreachable::Unreachable;

use crate::{conntrack::Hook, maps::count, parse::Packet, redirect};

/// Answers `pkt`, a new flow's first packet, with a refusal. A packet that
/// cannot be answered (IP options or extension headers before a UDP
/// header) passes as if the frontend did not exist; one whose answer failed
/// half-built is dropped.
#[inline(never)]
pub fn refuse<F: Unreachable>(ctx: &TcContext, pkt: &Packet<F>, hook: Hook) -> i32 {
    if hook == Hook::UplinkEgress && !redirect::uplink_known() {
        count(Counter::RedirectFailed);
        return TC_ACT_UNSPEC;
    }
    let built = if pkt.key.proto == IPPROTO_TCP {
        reset::from_syn(ctx, pkt)
    } else {
        F::port_unreachable(ctx, pkt)
    };
    match built {
        Ok(()) => {}
        Err(Built::Untouched) => return TC_ACT_UNSPEC,
        Err(Built::Broken) => {
            count(Counter::RewriteFailed);
            return TC_ACT_SHOT;
        }
    }
    count(Counter::Refused);
    match hook {
        Hook::UplinkEgress => redirect::to_uplink_ingress(ctx),
        _ => redirect::back_to_pod(ctx),
    }
}

/// Why no answer was built.
pub enum Built {
    /// The packet was not changed: it may go on.
    Untouched,
    /// The packet was changed part-way.
    Broken,
}

impl From<i64> for Built {
    fn from(_: i64) -> Self {
        Built::Broken
    }
}
