//! A UDP datagram made the ICMP (or ICMPv6) port unreachable that a closed
//! port sends: the datagram is cut to its IP and UDP headers, the quote
//! that the sender's stack matches to its socket (RFC 792, RFC 4443), and
//! a new IP and ICMP header is put before it, from the frontend to the
//! sender.
//!
//! The new checksums are computed whole, over bytes known here: the quote
//! is read before the packet changes, and nothing after the new headers is
//! left but the quote.

use aya_ebpf::{
    bindings::bpf_adj_room_mode::BPF_ADJ_ROOM_MAC,
    helpers::{bpf_csum_diff, bpf_skb_change_tail},
    programs::TcContext,
};
use hairpin_common::{WireAddr, IPPROTO_ICMP, IPPROTO_ICMPV6};

use super::Built;
use crate::{
    family::Family,
    parse::{bytes_at, Packet, IPV6_LEN, IP_OFF},
};

const UDP_HDR_LEN: usize = 8;
const ICMP_HDR_LEN: usize = 8;
const ICMP_DEST_UNREACH: u8 = 3;
const ICMP_PORT_UNREACH: u8 = 3;
const ICMPV6_DEST_UNREACH: u8 = 1;
const ICMPV6_PORT_UNREACH: u8 = 4;
const HOP_LIMIT: u8 = 64;
/// An IPv4 header without options, and its UDP header.
const QUOTE_V4: usize = 20 + UDP_HDR_LEN;
/// An IPv6 header without extension headers, and its UDP header.
const QUOTE_V6: usize = IPV6_LEN + UDP_HDR_LEN;

/// A family's port unreachable.
pub trait Unreachable: Family {
    /// A subprogram of its own: the refusal's frame is the last on the
    /// programs' deepest call chain.
    fn port_unreachable(ctx: &TcContext, pkt: &Packet<Self>) -> Result<(), Built>;
}

/// The ones' complement sum of `len` bytes of `b` from `at`, added to
/// `seed` (bytes in wire order, read natively, as checksum fields hold
/// them). In place: copies would cost stack that the programs lack.
#[inline(always)]
fn sum<const N: usize>(b: &mut [u8; N], at: usize, len: usize, seed: u32) -> u32 {
    if at + len > N {
        return seed;
    }
    // SAFETY: `at + len` bytes lie within `b`; `len` is a multiple of 4.
    unsafe {
        bpf_csum_diff(
            core::ptr::null_mut(),
            0,
            b.as_mut_ptr().add(at).cast(),
            len as u32,
            seed,
        ) as u32
    }
}

#[inline(always)]
fn fold(sum: u32) -> [u8; 2] {
    let s = (sum & 0xffff) + (sum >> 16);
    let s = (s & 0xffff) + (s >> 16);
    (!(s as u16)).to_ne_bytes()
}

/// Leaves the first `quote` bytes of the IP packet and makes room for
/// `room` bytes of new headers before them, after the Ethernet header.
#[inline(always)]
fn reshape(ctx: &TcContext, quote: usize, room: usize) -> Result<(), Built> {
    // SAFETY: the context's `__sk_buff`, a length within the packet.
    if unsafe { bpf_skb_change_tail(ctx.skb.skb, (IP_OFF + quote) as u32, 0) } < 0 {
        return Err(Built::Untouched);
    }
    ctx.adjust_room(room as i32, BPF_ADJ_ROOM_MAC, 0)?;
    Ok(())
}

impl Unreachable for u32 {
    #[inline(never)]
    fn port_unreachable(ctx: &TcContext, pkt: &Packet<u32>) -> Result<(), Built> {
        if pkt.l4_off != IP_OFF + 20 {
            return Err(Built::Untouched);
        }
        let mut quote = bytes_at::<QUOTE_V4>(ctx, IP_OFF).ok_or(Built::Untouched)?;
        let mut hdr = [0u8; 20 + ICMP_HDR_LEN];
        let total = (hdr.len() + QUOTE_V4) as u16;
        hdr[0] = 0x45;
        hdr[1] = quote[1];
        hdr[2..4].copy_from_slice(&total.to_be_bytes());
        hdr[8] = HOP_LIMIT;
        hdr[9] = IPPROTO_ICMP;
        hdr[12..16].copy_from_slice(&pkt.key.daddr.octets());
        hdr[16..20].copy_from_slice(&pkt.key.saddr.octets());
        hdr[20] = ICMP_DEST_UNREACH;
        hdr[21] = ICMP_PORT_UNREACH;
        let ip_csum = fold(sum(&mut hdr, 0, 20, 0));
        hdr[10..12].copy_from_slice(&ip_csum);
        let icmp = sum(&mut hdr, 20, ICMP_HDR_LEN, 0);
        let icmp_csum = fold(sum(&mut quote, 0, QUOTE_V4, icmp));
        hdr[22..24].copy_from_slice(&icmp_csum);
        reshape(ctx, QUOTE_V4, hdr.len())?;
        ctx.store(IP_OFF, &hdr, 0)?;
        Ok(())
    }
}

impl Unreachable for [u32; 4] {
    #[inline(never)]
    fn port_unreachable(ctx: &TcContext, pkt: &Packet<[u32; 4]>) -> Result<(), Built> {
        if pkt.l4_off != IP_OFF + IPV6_LEN {
            return Err(Built::Untouched);
        }
        let mut quote = bytes_at::<QUOTE_V6>(ctx, IP_OFF).ok_or(Built::Untouched)?;
        let mut hdr = [0u8; IPV6_LEN + ICMP_HDR_LEN];
        let payload = (ICMP_HDR_LEN + QUOTE_V6) as u16;
        hdr[0] = 0x60;
        hdr[4..6].copy_from_slice(&payload.to_be_bytes());
        hdr[6] = IPPROTO_ICMPV6;
        hdr[7] = HOP_LIMIT;
        hdr[8..24].copy_from_slice(&pkt.key.daddr.octets());
        hdr[24..40].copy_from_slice(&pkt.key.saddr.octets());
        hdr[40] = ICMPV6_DEST_UNREACH;
        hdr[41] = ICMPV6_PORT_UNREACH;
        // The pseudo-header: both addresses (with the ICMPv6 header, as
        // they lie), the upper-layer length and the next header.
        let mut len_next = [0u8; 8];
        len_next[2..4].copy_from_slice(&payload.to_be_bytes());
        len_next[7] = IPPROTO_ICMPV6;
        let addrs_icmp = sum(&mut hdr, 8, 40, 0);
        let pseudo = sum(&mut len_next, 0, 8, addrs_icmp);
        let csum = fold(sum(&mut quote, 0, QUOTE_V6, pseudo));
        hdr[42..44].copy_from_slice(&csum);
        reshape(ctx, QUOTE_V6, hdr.len())?;
        ctx.store(IP_OFF, &hdr, 0)?;
        Ok(())
    }
}
