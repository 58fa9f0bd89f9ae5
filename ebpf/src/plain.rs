//! The decision that a plain IPv4 TCP or UDP packet is not hairpin's, made
//! from the address filter before the parse and the flow subprograms run:
//! most packets on a node are such, and those two cost them as much again
//! as the filter itself. Anything this does not recognise as plain (options, fragments,
//! lengths that disagree, ICMP) takes the full path, which counts and
//! reports what it finds; a plain packet that passes here is one the full
//! path would have passed untouched, with no side effect.

use aya_ebpf::programs::TcContext;
use hairpin_common::{
    endpoint_bit, filter_bit, BACKEND_FILTER, FRONTEND_FILTER, IPPROTO_TCP, IPPROTO_UDP,
};

use crate::{
    conntrack::{bare_syn, Hook},
    maps::maybe,
    parse::{ptr_at, IP_OFF},
};

/// The IPv4 header without options, and the first 16 bytes of a TCP
/// header (ports, sequence and acknowledgement numbers, offset and flags).
type Headers = [u32; 9];

/// Whether the packet, an IPv4 frame, is surely not hairpin's. In the
/// program's own frame: it needs registers only.
#[inline(always)]
pub fn not_ours_v4(ctx: &TcContext, hook: Hook) -> bool {
    let Some(p) = ptr_at::<Headers>(ctx, IP_OFF) else {
        return false;
    };
    // SAFETY: `ptr_at` checked the bounds; see `parse::words_at` on
    // misaligned words.
    let h = |i: usize| unsafe { (*p)[i] };
    let [vihl, _, len0, len1] = h(0).to_ne_bytes();
    let [_, _, frag0, frag1] = h(1).to_ne_bytes();
    let proto = h(2).to_ne_bytes()[1];
    let tot_len = usize::from(u16::from_be_bytes([len0, len1]));
    let [doff, flags, _, _] = h(8).to_ne_bytes();
    let l4_ok = match proto {
        IPPROTO_TCP => tot_len >= 40 && doff >> 4 >= 5,
        IPPROTO_UDP => tot_len >= 28,
        _ => false,
    };
    // Version 4, no options, not a fragment, the whole packet present.
    if vihl != 0x45
        || u16::from_be_bytes([frag0, frag1]) & 0x3fff != 0
        || !l4_ok
        || (ctx.len() as usize) < IP_OFF + tot_len
    {
        return false;
    }
    let (saddr, daddr) = (h(3), h(4));
    let [s0, s1, d0, d1] = h(5).to_ne_bytes();
    let (sport, dport) = (u16::from_ne_bytes([s0, s1]), u16::from_ne_bytes([d0, d1]));
    let forward_here = matches!(hook, Hook::PodIngress | Hook::UplinkEgress);
    let reverse_here = hook != Hook::UplinkEgress;
    let flags = if proto == IPPROTO_TCP { flags } else { 0 };
    // The full path's first tests (`flow`), and its bare SYN to a backend
    // (`conntrack::forget_stale`).
    !(forward_here && maybe(FRONTEND_FILTER, filter_bit(daddr)))
        && !(reverse_here && maybe(BACKEND_FILTER, endpoint_bit(saddr, sport)))
        && !(forward_here
            && bare_syn(proto, flags)
            && maybe(BACKEND_FILTER, endpoint_bit(daddr, dport)))
}
