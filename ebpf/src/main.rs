//! hairpin's programs: the TC classifiers that translate frontends to
//! backends and back, and the cgroup hooks of the socket-level path.
//! Every packet hairpin does not own leaves with `TC_ACT_UNSPEC`, so that
//! the programs after it on the hook (a CNI's) still run; so do translated
//! packets that the stack should route, so that those programs see them
//! with their real addresses.
#![no_std]
#![no_main]

mod clock;
mod conntrack;
mod csum;
mod debug_log;
mod family;
mod icmp;
mod l4;
mod maps;
mod monitor;
mod nat;
mod parse;
mod plain;
mod redirect;
mod refuse;
mod sock;

use aya_ebpf::{
    bindings::TC_ACT_UNSPEC,
    macros::{cgroup_sock_addr, classifier},
    programs::{SockAddrContext, TcContext},
};
use hairpin_common::{
    Counter, CtDir, CtEntry, CtKey, CtOrigin, EndReason, EventKind, IPPROTO_ICMP, IPPROTO_ICMPV6,
    IPPROTO_TCP, SEEN_ENDED,
};

use conntrack::{Forward, Hook};
use debug_log::Loggable;
use family::Family;
use icmp::IcmpFamily;
use monitor::{emit_flow, emit_packet, Cause};
use parse::{Packet, Parsed, ETH_P_IP, ETH_P_IPV6, TCP_RST};

#[classifier]
pub fn pod_ingress(ctx: TcContext) -> i32 {
    process(&ctx, Hook::PodIngress)
}

#[classifier]
pub fn pod_egress(ctx: TcContext) -> i32 {
    process(&ctx, Hook::PodEgress)
}

/// On a pod interface's ingress inside the pod's namespace, where every
/// delivery arrives: the node's stack through the host side's egress, and
/// a CNI's `bpf_redirect_peer`, which skips it. A reply `pod_egress`
/// translated no longer comes from a backend and passes untouched.
#[classifier]
pub fn pod_receive(ctx: TcContext) -> i32 {
    process(&ctx, Hook::PodReceive)
}

#[classifier]
pub fn uplink_egress(ctx: TcContext) -> i32 {
    process(&ctx, Hook::UplinkEgress)
}

#[classifier]
pub fn uplink_ingress(ctx: TcContext) -> i32 {
    process(&ctx, Hook::UplinkIngress)
}

#[cgroup_sock_addr(connect4)]
pub fn sock_connect4(ctx: SockAddrContext) -> i32 {
    sock::to_backend::<u32>(&ctx, sock::Call::Connect)
}

#[cgroup_sock_addr(sendmsg4)]
pub fn sock_sendmsg4(ctx: SockAddrContext) -> i32 {
    sock::to_backend::<u32>(&ctx, sock::Call::Datagram)
}

#[cgroup_sock_addr(recvmsg4)]
pub fn sock_recvmsg4(ctx: SockAddrContext) -> i32 {
    sock::to_frontend::<u32>(&ctx)
}

#[cgroup_sock_addr(getpeername4)]
pub fn sock_getpeername4(ctx: SockAddrContext) -> i32 {
    sock::to_frontend::<u32>(&ctx)
}

#[cgroup_sock_addr(connect6)]
pub fn sock_connect6(ctx: SockAddrContext) -> i32 {
    sock::to_backend::<[u32; 4]>(&ctx, sock::Call::Connect)
}

#[cgroup_sock_addr(sendmsg6)]
pub fn sock_sendmsg6(ctx: SockAddrContext) -> i32 {
    sock::to_backend::<[u32; 4]>(&ctx, sock::Call::Datagram)
}

#[cgroup_sock_addr(recvmsg6)]
pub fn sock_recvmsg6(ctx: SockAddrContext) -> i32 {
    sock::to_frontend::<[u32; 4]>(&ctx)
}

#[cgroup_sock_addr(getpeername6)]
pub fn sock_getpeername6(ctx: SockAddrContext) -> i32 {
    sock::to_frontend::<[u32; 4]>(&ctx)
}

/// Attached for a moment to the agent's own cgroup on kernels without
/// `SO_NETNS_COOKIE`: the node's namespace cookie, for the hooks above.
#[cgroup_sock_addr(connect4)]
pub fn netns_probe(ctx: SockAddrContext) -> i32 {
    sock::learn_netns_cookie(&ctx)
}

#[inline(always)]
fn process(ctx: &TcContext, hook: Hook) -> i32 {
    match parse::ethertype(ctx) {
        Some(ETH_P_IP) if plain::not_ours_v4(ctx, hook) => TC_ACT_UNSPEC,
        Some(ETH_P_IP) => ipv4(ctx, hook),
        Some(ETH_P_IPV6) => ipv6(ctx, hook),
        _ => TC_ACT_UNSPEC,
    }
}

// One function (a BPF subprogram) per family: inlined together, the two
// paths would share one frame and pass the 512-byte stack limit.
#[inline(never)]
fn ipv4(ctx: &TcContext, hook: Hook) -> i32 {
    match &parse::parse_ipv4(ctx) {
        Parsed::Packet(pkt) if pkt.key.proto == IPPROTO_ICMP => icmp_error(ctx, pkt, hook),
        Parsed::Packet(pkt) => match flow(ctx, pkt, hook) {
            REFUSE => refuse::refuse(ctx, pkt, hook),
            verdict => verdict,
        },
        Parsed::Malformed => malformed::<u32>(ctx, hook),
        Parsed::Other => TC_ACT_UNSPEC,
    }
}

#[inline(never)]
fn ipv6(ctx: &TcContext, hook: Hook) -> i32 {
    match &parse::parse_ipv6(ctx) {
        Parsed::Packet(pkt) if pkt.key.proto == IPPROTO_ICMPV6 => icmp_error(ctx, pkt, hook),
        Parsed::Packet(pkt) => match flow(ctx, pkt, hook) {
            REFUSE => refuse::refuse(ctx, pkt, hook),
            verdict => verdict,
        },
        Parsed::Malformed => malformed::<[u32; 4]>(ctx, hook),
        Parsed::Other => TC_ACT_UNSPEC,
    }
}

/// `flow`'s answer for a new flow to refuse: no TC action has this value.
/// The refusal is built from the caller, so that its frames do not stack
/// on `flow`'s.
const REFUSE: i32 = i32::MIN;

/// A subprogram: the key of its event must not take room in the caller's
/// frame, which the error path's frames share.
#[inline(never)]
fn malformed<F: Family>(ctx: &TcContext, hook: Hook) -> i32 {
    maps::count(Counter::Unparsable);
    emit_packet::<F>(
        ctx,
        EventKind::Malformed,
        hook,
        0,
        &CtKey::default(),
        None,
        0,
    );
    TC_ACT_UNSPEC
}

/// Counts a packet of a frontend's flow left untranslated, and reports it.
#[inline(always)]
fn untranslated<F: Family>(
    ctx: &TcContext,
    hook: Hook,
    c: Counter,
    key: &CtKey<F>,
    e: &CtEntry<F>,
) -> i32 {
    maps::count(c);
    emit_flow(
        ctx,
        Cause::new(EventKind::Untranslated, hook, c as u8),
        key,
        e,
    );
    TC_ACT_UNSPEC
}

/// A TCP or UDP packet: translated when it belongs to a frontend's flow.
/// A subprogram of its own, like the ICMP paths, to keep each frame small.
#[inline(never)]
fn flow<F: Family + Loggable + refuse::Unreachable>(
    ctx: &TcContext,
    pkt: &Packet<F>,
    hook: Hook,
) -> i32 {
    let key = &pkt.key;
    let forward_here = matches!(hook, Hook::PodIngress | Hook::UplinkEgress);
    // The cheap tests first: most packets are to no frontend and from no
    // backend, and leave here.
    let reverse_here = hook != Hook::UplinkEgress;
    let to_frontend = forward_here && nat::is_frontend_addr(key.daddr);
    // The backend test is made only when it decides something: a packet to
    // a frontend (every client packet of a flow) skips it unless its flow is
    // not found (a looped pod's reply is addressed to the frontend too).
    if !to_frontend && !(reverse_here && nat::is_backend(key.saddr, key.sport)) {
        if forward_here && conntrack::bare_syn(key.proto, pkt.tcp_flags) {
            conntrack::forget_stale(key, hook);
        }
        return TC_ACT_UNSPEC;
    }
    // The entry lives in this CPU's scratch slot, not in this frame (see
    // `maps::SCRATCH_V4`); `forward` and `reverse` write all of it, or for
    // a flow not opened its frontend's id, which alone is read then.
    let Some(e) = F::scratch().get_ptr_mut(0) else {
        return TC_ACT_UNSPEC;
    };
    // SAFETY: this CPU's slot, which no other program run uses meanwhile.
    let e = unsafe { &mut *e };
    let new_flow = if to_frontend {
        conntrack::forward(ctx, key, pkt.tcp_flags, hook, e)
    } else {
        None
    };
    let from_backend = || !to_frontend || (reverse_here && nat::is_backend(key.saddr, key.sport));
    let found = match new_flow {
        None if from_backend() => conntrack::reverse(key, pkt.tcp_flags, hook, e),
        found => found,
    };
    let e: &CtEntry<F> = e;
    // Emitted through `emit_flow`, a subprogram: built here, the events would
    // take room in this frame, which the refusals' path shares.
    let new_flow = match found {
        Some(Forward::Known) => false,
        Some(Forward::Opened) => true,
        Some(Forward::Closing) => {
            let how = if pkt.tcp_flags & TCP_RST != 0 {
                EndReason::Rst
            } else {
                EndReason::Fin
            };
            emit_flow(ctx, Cause::new(EventKind::Ended, hook, how as u8), key, e);
            false
        }
        Some(Forward::Refuse) => {
            emit_flow(ctx, Cause::new(EventKind::Refused, hook, 0).alone(), key, e);
            return REFUSE;
        }
        Some(Forward::Skipped) => {
            maps::count(Counter::BackendSkipped);
            emit_flow(ctx, Cause::new(EventKind::Skipped, hook, 0).alone(), key, e);
            return TC_ACT_UNSPEC;
        }
        Some(Forward::InsertFailed) => {
            let c = Counter::CtInsertFailed;
            maps::count(c);
            let cause = Cause::new(EventKind::Untranslated, hook, c as u8).alone();
            emit_flow(ctx, cause, key, e);
            return TC_ACT_UNSPEC;
        }
        None => return TC_ACT_UNSPEC,
    };
    if needs_uplink(hook, e) && !redirect::uplink_known() {
        return untranslated(ctx, hook, Counter::RedirectFailed, key, e);
    }
    // The helpers fail only on a packet too short for the offsets that the
    // parser checked; such a packet goes on regardless, counted. A flow the
    // agent ended: each end learns from the other's next segment, made a
    // reset (its sequence number is the one it expects).
    let failed = if nat::rewrite(ctx, pkt, &e.nat).is_err() {
        Some(Counter::RewriteFailed)
    } else if e.seen & SEEN_ENDED != 0
        && key.proto == IPPROTO_TCP
        && l4::make_reset(ctx, pkt).is_err()
    {
        Some(Counter::ResetFailed)
    } else {
        None
    };
    if let Some(c) = failed {
        return untranslated(ctx, hook, c, key, e);
    }
    maps::account(e.frontend_id, ctx.len(), new_flow);
    if new_flow {
        F::log_new_flow(ctx, key, &e.nat);
        emit_flow(ctx, Cause::new(EventKind::Opened, hook, e.origin), key, e);
    }
    deliver(ctx, hook, e)
}

/// An ICMP or ICMPv6 error quoting a packet of a translated flow.
#[inline(never)]
fn icmp_error<F: IcmpFamily>(ctx: &TcContext, pkt: &Packet<F>, hook: Hook) -> i32 {
    let Some(q) = F::quoted(ctx, pkt) else {
        return TC_ACT_UNSPEC;
    };
    let Some(e) = conntrack::quoted(&q.error_key(), hook) else {
        return TC_ACT_UNSPEC;
    };
    if needs_uplink(hook, e) && !redirect::uplink_known() {
        maps::count(Counter::RedirectFailed);
        return TC_ACT_UNSPEC;
    }
    if F::translate(ctx, pkt, &q, e).is_err() {
        maps::count(Counter::RewriteFailed);
        return TC_ACT_UNSPEC;
    }
    maps::count(Counter::IcmpTranslated);
    if let Some(m) = monitor::wanted(EventKind::Icmp) {
        monitor::emit_icmp_error(m, hook, e, redirect::ifindex(ctx));
    }
    deliver(ctx, hook, e)
}

/// Whether a packet of `e` translated at `hook` is handed to the uplink.
#[inline(always)]
fn needs_uplink<F>(hook: Hook, e: &CtEntry<F>) -> bool {
    hook == Hook::PodIngress && e.dir == CtDir::Reverse as u8 && e.origin == CtOrigin::Host as u8
}

/// Sends a translated packet on its way (see `Hook::owns` for who gets what).
#[inline(always)]
fn deliver<F: Family>(ctx: &TcContext, hook: Hook, e: &CtEntry<F>) -> i32 {
    match hook {
        Hook::PodIngress if e.origin == CtOrigin::Loop as u8 => redirect::back_to_pod(ctx),
        Hook::PodIngress if e.dir == CtDir::Reverse as u8 => redirect::to_uplink_ingress(ctx),
        Hook::UplinkEgress => redirect::reroute(ctx, e.nat.saddr, e.nat.daddr),
        _ => TC_ACT_UNSPEC,
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
