//! Frontend lookup, backend choice and the rewrite of a packet's tuple.

use aya_ebpf::{helpers::bpf_get_prandom_u32, programs::TcContext};
use hairpin_common::{
    endpoint_bit, filter_bit, Backend, BackendKey, CtKey, Frontend, FrontendKey, MemberKey,
    BACKEND_FILTER, FRONTEND_FILTER,
};

use crate::{
    csum::{l4_csum, set_port},
    family::Family,
    maps::maybe,
    parse::Packet,
};

/// The cheap first test of the forward path: the address filter, then one
/// lookup keyed by the destination address alone, before the ports are
/// looked at.
#[inline(always)]
pub fn is_frontend_addr<F: Family>(addr: F) -> bool {
    // SAFETY: the value is only tested for presence.
    maybe(FRONTEND_FILTER, filter_bit(addr)) && unsafe { F::frontend_addrs().get(addr).is_some() }
}

/// The cheap first test of the reverse path: a backend's address, with
/// the port of a backend's side of a flow (`port` as on the wire).
#[inline(always)]
pub fn is_backend<F: Family>(addr: F, port: u16) -> bool {
    // SAFETY: the value is only tested for presence.
    maybe(BACKEND_FILTER, endpoint_bit(addr, port))
        && unsafe { F::backend_addrs().get(addr).is_some() }
}

#[inline(always)]
pub fn frontend<F: Family>(key: &CtKey<F>) -> Option<Frontend> {
    frontend_of(key.daddr, key.dport, key.proto)
}

#[inline(always)]
pub fn frontend_of<F: Family>(addr: F, port: u16, proto: u8) -> Option<Frontend> {
    let fk = FrontendKey {
        addr,
        port,
        proto,
        _pad: 0,
    };
    // SAFETY: the value is copied out before any other map operation.
    unsafe { F::frontends().get(fk).copied() }
}

/// A backend for a new flow, chosen at random among the frontend's slots;
/// conntrack then keeps the flow on it.
#[inline(always)]
pub fn choose_backend<F: Family>(fe: &Frontend) -> Option<Backend<F>> {
    // SAFETY: helper without arguments.
    backend_at(fe, unsafe { bpf_get_prandom_u32() })
}

/// The backend of slot `n` modulo the frontend's slots.
#[inline(always)]
pub fn backend_at<F: Family>(fe: &Frontend, n: u32) -> Option<Backend<F>> {
    if fe.slots == 0 {
        return None;
    }
    let key = BackendKey {
        frontend_id: fe.id,
        slot: n % u32::from(fe.slots),
    };
    // SAFETY: the value is copied out before any other map operation.
    unsafe { F::backends().get(key).copied() }
}

/// Whether `addr` is one of the backends of `fe`.
#[inline(always)]
pub fn is_member<F: Family>(fe: &Frontend, addr: F) -> bool {
    let key = MemberKey {
        frontend_id: fe.id,
        addr,
    };
    // SAFETY: the value is only tested for presence.
    unsafe { F::backend_members().get(key).is_some() }
}

/// Rewrites the packet's addresses and ports to `to`, fixing checksums.
/// Fields that do not change are not touched.
#[inline(always)]
pub fn rewrite<F: Family>(ctx: &TcContext, pkt: &Packet<F>, to: &CtKey<F>) -> Result<(), i64> {
    let from = &pkt.key;
    let l4 = l4_csum(from.proto).map(|(off, flags)| (pkt.l4_off + off, flags));
    if to.saddr != from.saddr {
        F::set_addr(ctx, F::SRC_OFF, l4, from.saddr, to.saddr)?;
    }
    if to.daddr != from.daddr {
        F::set_addr(ctx, F::DST_OFF, l4, from.daddr, to.daddr)?;
    }
    if to.sport != from.sport {
        set_port(ctx, pkt.l4_off, l4, from.sport, to.sport)?;
    }
    if to.dport != from.dport {
        set_port(ctx, pkt.l4_off + 2, l4, from.dport, to.dport)?;
    }
    Ok(())
}
