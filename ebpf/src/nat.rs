//! Frontend lookup, backend choice and the rewrite of a packet's tuple.

use aya_ebpf::{helpers::bpf_get_prandom_u32, programs::TcContext};
use hairpin_common::{BackendKey, BackendV4, CtKeyV4, Frontend, FrontendKeyV4};

use crate::{
    csum::{l4_csum, set_addr, set_port},
    maps::{BACKENDS_V4, FRONTENDS_V4, FRONTEND_ADDRS_V4},
    parse::{Packet, IP_CSUM_OFF, IP_DST_OFF, IP_SRC_OFF},
};

/// The cheap first test of the forward path: one lookup keyed by the
/// destination address alone, before the ports are looked at.
#[inline(always)]
pub fn is_frontend_addr(addr: u32) -> bool {
    // SAFETY: the value is only tested for presence.
    unsafe { FRONTEND_ADDRS_V4.get(addr).is_some() }
}

#[inline(always)]
pub fn frontend(key: &CtKeyV4) -> Option<Frontend> {
    frontend_of(key.daddr, key.dport, key.proto)
}

#[inline(always)]
pub fn frontend_of(addr: u32, port: u16, proto: u8) -> Option<Frontend> {
    let fk = FrontendKeyV4 {
        addr,
        port,
        proto,
        _pad: 0,
    };
    // SAFETY: the value is copied out before any other map operation.
    unsafe { FRONTENDS_V4.get(fk).copied() }
}

/// A backend for a new flow, chosen at random among the frontend's slots;
/// conntrack then keeps the flow on it.
#[inline(always)]
pub fn choose_backend(fe: &Frontend) -> Option<BackendV4> {
    // SAFETY: helper without arguments.
    backend_at(fe, unsafe { bpf_get_prandom_u32() })
}

/// The backend of slot `n` modulo the frontend's slots.
#[inline(always)]
pub fn backend_at(fe: &Frontend, n: u32) -> Option<BackendV4> {
    if fe.slots == 0 {
        return None;
    }
    let slot = n % fe.slots;
    let key = BackendKey {
        frontend_id: fe.id,
        slot,
    };
    // SAFETY: the value is copied out before any other map operation.
    unsafe { BACKENDS_V4.get(key).copied() }
}

/// Rewrites the packet's addresses and ports to `to`, fixing checksums.
/// Fields that do not change are not touched.
#[inline(always)]
pub fn rewrite(ctx: &TcContext, pkt: &Packet, to: &CtKeyV4) -> Result<(), i64> {
    let from = &pkt.key;
    let l4 = l4_csum(from.proto).map(|(off, flags)| (pkt.l4_off + off, flags));
    if to.saddr != from.saddr {
        set_addr(ctx, IP_SRC_OFF, IP_CSUM_OFF, l4, from.saddr, to.saddr)?;
    }
    if to.daddr != from.daddr {
        set_addr(ctx, IP_DST_OFF, IP_CSUM_OFF, l4, from.daddr, to.daddr)?;
    }
    if to.sport != from.sport {
        set_port(ctx, pkt.l4_off, l4, from.sport, to.sport)?;
    }
    if to.dport != from.dport {
        set_port(ctx, pkt.l4_off + 2, l4, from.dport, to.dport)?;
    }
    Ok(())
}
