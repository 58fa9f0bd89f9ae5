//! ICMP errors (destination unreachable, time exceeded) for IPv4.

use aya_ebpf::programs::TcContext;
use hairpin_common::{CtEntry, CtEntryV4, IPPROTO_TCP, IPPROTO_UDP};

use super::quote::{quoted_l4_csum, quoted_ports, IcmpFamily, Quoted};
use crate::{
    csum::{fix_field, ICMP_CSUM_OFF},
    family::Family,
    parse::{words_at, Packet},
};

const ICMP_DEST_UNREACH: u8 = 3;
const ICMP_TIME_EXCEEDED: u8 = 11;
const ICMP_HDR_LEN: usize = 8;

/// The quoted TCP or UDP packet of an ICMP error, if `pkt` is one.
#[inline(always)]
pub fn quoted(ctx: &TcContext, pkt: &Packet<u32>) -> Option<Quoted<u32>> {
    if pkt.icmp_type != ICMP_DEST_UNREACH && pkt.icmp_type != ICMP_TIME_EXCEEDED {
        return None;
    }
    // The quote must lie within the error itself, not in padding after it.
    let ip_off = pkt.l4_off + ICMP_HDR_LEN;
    if ip_off + 20 > pkt.end {
        return None;
    }
    // A word at a time, as IPv6's (see there).
    let ip = words_at::<5>(ctx, ip_off)?;
    let vihl = ip[0].to_ne_bytes()[0];
    let proto = ip[2].to_ne_bytes()[1];
    let ihl = usize::from(vihl & 0x0f) * 4;
    if vihl >> 4 != 4 || ihl < 20 || (proto != IPPROTO_TCP && proto != IPPROTO_UDP) {
        return None;
    }
    let l4_off = ip_off + ihl;
    if l4_off + 4 > pkt.end {
        return None;
    }
    let [ports] = words_at::<1>(ctx, l4_off)?;
    let (saddr, daddr) = (ip[3], ip[4]);
    Some(Quoted::new(ip_off, l4_off, saddr, daddr, proto, ports))
}

/// Translates an ICMP error with `e`, the entry of the error's direction.
/// The outer destination (the quoted packet's sender) always changes; the
/// outer source only when the error came from the flow's peer itself, not
/// from a router on the way. The quoted packet gets the reverse tuple.
#[inline(always)]
pub fn translate(
    ctx: &TcContext,
    pkt: &Packet<u32>,
    q: &Quoted<u32>,
    e: &CtEntryV4,
) -> Result<(), i64> {
    let key = q.error_key();
    let to = e.nat;
    if pkt.key.daddr == key.daddr && to.daddr != key.daddr {
        u32::set_addr(ctx, u32::DST_OFF, None, key.daddr, to.daddr)?;
    }
    if pkt.key.saddr == key.saddr && to.saddr != key.saddr {
        u32::set_addr(ctx, u32::SRC_OFF, None, key.saddr, to.saddr)?;
    }

    let inner = to.reversed();
    let icmp_csum = pkt.l4_off + ICMP_CSUM_OFF;
    let ip_csum = q.ip_off + 10;
    let l4 = quoted_l4_csum(ctx, pkt, q);

    // Each quoted address change is offset by its IP header checksum fixup,
    // so it leaves the ICMP checksum as it was; the L4 changes do not.
    for (off, old, new) in [
        (q.ip_off + 12, q.key.saddr, inner.saddr),
        (q.ip_off + 16, q.key.daddr, inner.daddr),
    ] {
        if old != new {
            ctx.store(off, &new, 0)?;
            fix_field(ctx, ip_csum, old, new, 4)?;
            if let Some((l4_off, _)) = l4 {
                fix_field(ctx, l4_off, old, new, 4)?;
            }
        }
    }
    quoted_ports(ctx, icmp_csum, l4, q, &inner)
}

impl IcmpFamily for u32 {
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
