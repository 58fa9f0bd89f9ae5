//! Delivery of translated packets that must leave by another way than the
//! one they came: re-routing after a destination change on egress, and
//! handing replies to the stack where it expects them.

use aya_ebpf::{
    bindings::{
        bpf_fib_lookup as FibParams, BPF_FIB_LKUP_RET_NO_NEIGH, BPF_FIB_LKUP_RET_SUCCESS,
        BPF_F_INGRESS, TC_ACT_UNSPEC,
    },
    helpers::{bpf_fib_lookup, bpf_redirect, bpf_redirect_neigh},
    programs::TcContext,
};
use hairpin_common::Counter;

use crate::{family::Family, maps::count, maps::NODE, parse::bytes_at};

#[inline(always)]
pub fn ifindex(ctx: &TcContext) -> u32 {
    // SAFETY: the context points at the program's `__sk_buff`.
    unsafe { (*ctx.skb.skb).ifindex }
}

/// The interface a packet was received on; zero for one the node's own
/// sockets sent.
#[inline(always)]
pub fn ingress_ifindex(ctx: &TcContext) -> u32 {
    // SAFETY: the context points at the program's `__sk_buff`.
    unsafe { (*ctx.skb.skb).ingress_ifindex }
}

/// The packet's mark: a local socket's `SO_MARK` on the uplink's egress.
#[inline(always)]
pub fn mark(ctx: &TcContext) -> u32 {
    // SAFETY: the context points at the program's `__sk_buff`.
    unsafe { (*ctx.skb.skb).mark }
}

#[inline(always)]
fn set_macs(ctx: &TcContext, dst: &[u8; 6], src: &[u8; 6]) -> Result<(), i64> {
    ctx.store(0, dst, 0)?;
    ctx.store(6, src, 0)
}

/// Sends a packet whose destination changed on egress to wherever the
/// node's routing table now sends it: a local pod's veth, or the uplink
/// toward another node. The lookup is made as if the packet arrived on this
/// interface; with no length given the helper checks the MTU the GSO-aware
/// way (net/core/filter.c, `bpf_skb_fib_lookup`).
#[inline(always)]
pub fn reroute<F: Family>(ctx: &TcContext, saddr: F, daddr: F) -> i32 {
    let here = ifindex(ctx);
    // SAFETY: all-zero is a valid `bpf_fib_lookup`.
    let mut p: FibParams = unsafe { core::mem::zeroed() };
    p.family = F::AF;
    p.ifindex = here;
    F::fib_addrs(&mut p, saddr, daddr);
    // SAFETY: `p` is a valid, writable parameter block of the size given.
    let rc = unsafe {
        bpf_fib_lookup(
            ctx.skb.skb.cast(),
            &mut p,
            core::mem::size_of::<FibParams>() as i32,
            0,
        )
    };
    match rc as u32 {
        BPF_FIB_LKUP_RET_SUCCESS => {
            if set_macs(ctx, &p.dmac, &p.smac).is_err() {
                count(Counter::RedirectFailed);
                return TC_ACT_UNSPEC;
            }
            if p.ifindex == here {
                TC_ACT_UNSPEC
            } else {
                // SAFETY: plain helper call.
                unsafe { bpf_redirect(p.ifindex, 0) as i32 }
            }
        }
        // The neighbour is not resolved yet: let the helper resolve it.
        // SAFETY: no parameters, the helper looks the route up itself.
        BPF_FIB_LKUP_RET_NO_NEIGH => unsafe {
            bpf_redirect_neigh(p.ifindex, core::ptr::null_mut(), 0, 0) as i32
        },
        _ => {
            count(Counter::RedirectFailed);
            TC_ACT_UNSPEC
        }
    }
}

/// Whether the uplink is known, so that `to_uplink_ingress` can deliver.
#[inline(always)]
pub fn uplink_known() -> bool {
    NODE.get(0).is_some_and(|n| n.uplink_ifindex != 0)
}

/// Hands a reply, now from the frontend's address, to the uplink's ingress:
/// arriving there it passes the node's reverse-path checks, which would drop
/// it on the pod's veth, and meets the flow's netfilter entry as a reply.
#[inline(always)]
pub fn to_uplink_ingress(ctx: &TcContext) -> i32 {
    let Some(node) = NODE.get(0).copied() else {
        count(Counter::RedirectFailed);
        return TC_ACT_UNSPEC;
    };
    if ctx.store(0, &node.uplink_mac, 0).is_err() {
        count(Counter::RedirectFailed);
        return TC_ACT_UNSPEC;
    }
    // SAFETY: plain helper call.
    unsafe { bpf_redirect(node.uplink_ifindex, u64::from(BPF_F_INGRESS)) as i32 }
}

/// Turns a packet around to the pod it came from, without the node's stack:
/// the looped flow's addresses would fail the node's reverse-path checks.
#[inline(always)]
pub fn back_to_pod(ctx: &TcContext) -> i32 {
    let Some(eth) = bytes_at::<12>(ctx, 0) else {
        count(Counter::RedirectFailed);
        return TC_ACT_UNSPEC;
    };
    let (dst, src) = eth.split_at(6);
    let mut swapped = [0u8; 12];
    swapped[..6].copy_from_slice(src);
    swapped[6..].copy_from_slice(dst);
    if ctx.store(0, &swapped, 0).is_err() {
        count(Counter::RedirectFailed);
        return TC_ACT_UNSPEC;
    }
    // SAFETY: plain helper call.
    unsafe { bpf_redirect(ifindex(ctx), 0) as i32 }
}
