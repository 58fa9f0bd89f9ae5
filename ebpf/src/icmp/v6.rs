//! ICMPv6 errors about a translated flow (destination unreachable, packet
//! too big, time exceeded), translated with the flow as for IPv4. The ICMPv6
//! checksum covers a pseudo-header and, IPv6 having no header checksum, the
//! quoted addresses too.

use aya_ebpf::programs::TcContext;
use hairpin_common::{CtEntry, CtEntryV6, IPPROTO_TCP, IPPROTO_UDP};

use super::quote::{quoted_l4_csum, quoted_ports, IcmpFamily, Quoted};
use crate::{
    csum::ICMP_CSUM_OFF,
    family::{addr6_diff, Family},
    parse::{words_at, Packet, IPV6_LEN},
};

const ICMPV6_DEST_UNREACH: u8 = 1;
const ICMPV6_PKT_TOOBIG: u8 = 2;
const ICMPV6_TIME_EXCEED: u8 = 3;
const ICMPV6_HDR_LEN: usize = 8;

type Addr6 = [u32; 4];

/// The quoted TCP or UDP packet of an ICMPv6 error, if `pkt` is one: an
/// IPv6 header directly followed by TCP or UDP (a quote with extension
/// headers is not translated).
#[inline(always)]
pub fn quoted(ctx: &TcContext, pkt: &Packet<Addr6>) -> Option<Quoted<Addr6>> {
    if !matches!(
        pkt.icmp_type,
        ICMPV6_DEST_UNREACH | ICMPV6_PKT_TOOBIG | ICMPV6_TIME_EXCEED
    ) {
        return None;
    }
    let ip_off = pkt.l4_off + ICMPV6_HDR_LEN;
    let l4_off = ip_off + IPV6_LEN;
    // The quote must lie within the error itself, not in padding after it.
    if l4_off + 4 > pkt.end {
        return None;
    }
    // A word at a time: read as bytes, the header took a stack slot per
    // byte on the error path, the deepest (kernels before 6.x count 512
    // bytes for its whole chain of calls).
    let ip = words_at::<{ IPV6_LEN / 4 }>(ctx, ip_off)?;
    let version = ip[0].to_ne_bytes()[0] >> 4;
    let proto = ip[1].to_ne_bytes()[2];
    if version != 6 || (proto != IPPROTO_TCP && proto != IPPROTO_UDP) {
        return None;
    }
    let [ports] = words_at::<1>(ctx, l4_off)?;
    let (saddr, daddr) = ([ip[2], ip[3], ip[4], ip[5]], [ip[6], ip[7], ip[8], ip[9]]);
    Some(Quoted::new(ip_off, l4_off, saddr, daddr, proto, ports))
}

/// Translates an ICMPv6 error with `e`, the entry of the error's direction,
/// like IPv4's `translate`.
#[inline(always)]
pub fn translate(
    ctx: &TcContext,
    pkt: &Packet<Addr6>,
    q: &Quoted<Addr6>,
    e: &CtEntryV6,
) -> Result<(), i64> {
    let key = q.error_key();
    let to = e.nat;
    let icmp_csum = pkt.l4_off + ICMP_CSUM_OFF;
    // The outer addresses are in the ICMPv6 checksum's pseudo-header.
    let pseudo = Some((icmp_csum, 0));
    if pkt.key.daddr == key.daddr && to.daddr != key.daddr {
        Addr6::set_addr(ctx, Addr6::DST_OFF, pseudo, key.daddr, to.daddr)?;
    }
    if pkt.key.saddr == key.saddr && to.saddr != key.saddr {
        Addr6::set_addr(ctx, Addr6::SRC_OFF, pseudo, key.saddr, to.saddr)?;
    }

    let inner = to.reversed();
    let l4 = quoted_l4_csum(ctx, pkt, q);

    // A quoted address is in the ICMPv6 checksum and in the quoted L4
    // checksum's pseudo-header: both change by its difference.
    for (off, old, new) in [
        (q.ip_off + 8, q.key.saddr, inner.saddr),
        (q.ip_off + 24, q.key.daddr, inner.daddr),
    ] {
        if old != new {
            ctx.store(off, &new, 0)?;
            let diff = addr6_diff(&old, &new);
            ctx.l3_csum_replace(icmp_csum, 0, diff, 0)?;
            if let Some((l4_off, _)) = l4 {
                ctx.l3_csum_replace(l4_off, 0, diff, 0)?;
            }
        }
    }
    quoted_ports(ctx, icmp_csum, l4, q, &inner)
}

impl IcmpFamily for [u32; 4] {
    #[inline(always)]
    fn quoted(ctx: &TcContext, pkt: &Packet<Self>) -> Option<Quoted<Self>> {
        quoted(ctx, pkt)
    }
    #[inline(always)]
    fn translate(
        ctx: &TcContext,
        pkt: &Packet<Self>,
        q: &Quoted<Self>,
        e: &CtEntry<Self>,
    ) -> Result<(), i64> {
        translate(ctx, pkt, q, e)
    }
}
