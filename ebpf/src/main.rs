//! hairpin's TC programs: translation of frontends to backends and back.
//! Every packet hairpin does not own leaves with `TC_ACT_UNSPEC`, so that
//! the programs after it on the hook (a CNI's) still run; so do translated
//! packets that the stack should route, so that those programs see them
//! with their real addresses.
#![no_std]
#![no_main]

mod conntrack;
mod csum;
mod icmp;
mod l4;
mod maps;
mod nat;
mod parse;
mod redirect;
mod sock;

use aya_ebpf::{
    bindings::TC_ACT_UNSPEC,
    macros::{cgroup_sock_addr, classifier},
    programs::{SockAddrContext, TcContext},
};
use aya_log_ebpf::debug;
use hairpin_common::{Counter, CtDir, CtEntryV4, CtOrigin, IPPROTO_ICMP, IPPROTO_TCP, SEEN_ENDED};

use conntrack::Hook;
use parse::{Packet, Parsed};

#[classifier]
pub fn pod_ingress(ctx: TcContext) -> i32 {
    process(&ctx, Hook::PodIngress)
}

#[classifier]
pub fn pod_egress(ctx: TcContext) -> i32 {
    process(&ctx, Hook::PodEgress)
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
    sock::to_backend(&ctx, sock::Call::Connect)
}

#[cgroup_sock_addr(sendmsg4)]
pub fn sock_sendmsg4(ctx: SockAddrContext) -> i32 {
    sock::to_backend(&ctx, sock::Call::Datagram)
}

#[cgroup_sock_addr(recvmsg4)]
pub fn sock_recvmsg4(ctx: SockAddrContext) -> i32 {
    sock::to_frontend(&ctx)
}

#[cgroup_sock_addr(getpeername4)]
pub fn sock_getpeername4(ctx: SockAddrContext) -> i32 {
    sock::to_frontend(&ctx)
}

#[inline(always)]
fn process(ctx: &TcContext, hook: Hook) -> i32 {
    match parse::parse(ctx) {
        Parsed::Other => TC_ACT_UNSPEC,
        Parsed::Malformed => {
            maps::count(Counter::Unparsable);
            TC_ACT_UNSPEC
        }
        Parsed::Ipv4(pkt) if pkt.key.proto == IPPROTO_ICMP => icmp_error(ctx, &pkt, hook),
        Parsed::Ipv4(pkt) => flow(ctx, &pkt, hook),
    }
}

/// A TCP or UDP packet: translated when it belongs to a frontend's flow.
#[inline(always)]
fn flow(ctx: &TcContext, pkt: &Packet, hook: Hook) -> i32 {
    let key = &pkt.key;
    let forward_here = matches!(hook, Hook::PodIngress | Hook::UplinkEgress);
    let mut hit = None;
    if forward_here && nat::is_frontend_addr(key.daddr) {
        hit = conntrack::forward(key, pkt.tcp_flags, hook).map(|(e, fe)| (e, fe.is_some()));
    }
    if hit.is_none() && hook != Hook::UplinkEgress {
        hit = conntrack::reverse(key, pkt.tcp_flags, hook).map(|e| (e, false));
    }
    let Some((e, new_flow)) = hit else {
        return TC_ACT_UNSPEC;
    };
    if needs_uplink(hook, &e) && !redirect::uplink_known() {
        maps::count(Counter::RedirectFailed);
        return TC_ACT_UNSPEC;
    }
    if nat::rewrite(ctx, pkt, &e.nat).is_err() {
        // The helpers fail only on a packet too short for the offsets that
        // the parser checked, which cannot happen; pass it on regardless.
        return TC_ACT_UNSPEC;
    }
    // A flow the agent ended: each end learns from the other's next
    // segment, made a reset (its sequence number is the one it expects).
    if e.seen & SEEN_ENDED != 0 && key.proto == IPPROTO_TCP && l4::make_reset(ctx, pkt).is_err() {
        return TC_ACT_UNSPEC;
    }
    maps::account(e.frontend_id, ctx.len(), new_flow);
    if new_flow {
        debug!(
            ctx,
            "new flow {:i}:{} -> {:i}:{} to {:i}:{}",
            u32::from_be(key.saddr),
            u16::from_be(key.sport),
            u32::from_be(key.daddr),
            u16::from_be(key.dport),
            u32::from_be(e.nat.daddr),
            u16::from_be(e.nat.dport)
        );
    }
    deliver(ctx, hook, &e)
}

/// An ICMP error quoting a packet of a translated flow.
#[inline(always)]
fn icmp_error(ctx: &TcContext, pkt: &Packet, hook: Hook) -> i32 {
    let Some(q) = icmp::quoted(ctx, pkt) else {
        return TC_ACT_UNSPEC;
    };
    let Some(e) = conntrack::quoted(&q.error_key(), hook) else {
        return TC_ACT_UNSPEC;
    };
    if needs_uplink(hook, &e) && !redirect::uplink_known() {
        maps::count(Counter::RedirectFailed);
        return TC_ACT_UNSPEC;
    }
    if icmp::translate(ctx, pkt, &q, &e).is_err() {
        return TC_ACT_UNSPEC;
    }
    maps::count(Counter::IcmpTranslated);
    deliver(ctx, hook, &e)
}

/// Whether a packet of `e` translated at `hook` is handed to the uplink.
#[inline(always)]
fn needs_uplink(hook: Hook, e: &CtEntryV4) -> bool {
    hook == Hook::PodIngress && e.dir == CtDir::Reverse as u8 && e.origin == CtOrigin::Host as u8
}

/// Sends a translated packet on its way (see `Hook::owns` for who gets what).
#[inline(always)]
fn deliver(ctx: &TcContext, hook: Hook, e: &CtEntryV4) -> i32 {
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
