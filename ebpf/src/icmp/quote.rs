//! What ICMP and ICMPv6 errors share: the quoted packet, its L4 checksum
//! and ports, and the family trait the datapath calls.

use aya_ebpf::programs::TcContext;
use hairpin_common::{CtEntry, CtKey, IPPROTO_TCP};

use crate::{
    csum::{fix_field, l4_csum},
    family::Family,
    parse::{bytes_at, set_ports, Packet},
};

/// The packet quoted by an ICMP (or ICMPv6) error: its IP header and first
/// L4 bytes.
pub struct Quoted<A> {
    pub ip_off: usize,
    pub l4_off: usize,
    /// The quoted packet's tuple, as it was sent.
    pub key: CtKey<A>,
}

impl<A: Copy> Quoted<A> {
    /// The quote of a packet from `saddr` to `daddr`, its ports the L4
    /// header's first word `ports`, as read.
    #[inline(always)]
    pub fn new(ip_off: usize, l4_off: usize, saddr: A, daddr: A, proto: u8, ports: u32) -> Self {
        let mut key = CtKey {
            saddr,
            daddr,
            sport: 0,
            dport: 0,
            proto,
            _pad: 0,
            _pad2: 0,
        };
        set_ports(&mut key, ports);
        Self {
            ip_off,
            l4_off,
            key,
        }
    }

    /// The tuple of a packet travelling like the error: the lookup key.
    #[inline(always)]
    pub fn error_key(&self) -> CtKey<A> {
        self.key.reversed()
    }
}

/// The quoted packet's L4 checksum (offset, value), if the error quoted
/// enough bytes for it (a TCP checksum lies beyond the 8 bytes RFC 792
/// guarantees) within the error itself; a zero UDP checksum means none.
#[inline(always)]
pub fn quoted_l4_csum<A>(ctx: &TcContext, pkt: &Packet<A>, q: &Quoted<A>) -> Option<(usize, u16)> {
    l4_csum(q.key.proto)
        .map(|(off, _)| q.l4_off + off)
        .filter(|&off| off + 2 <= pkt.end)
        .and_then(|off| bytes_at::<2>(ctx, off).map(|c| (off, u16::from_ne_bytes(c))))
        .filter(|&(_, c)| q.key.proto == IPPROTO_TCP || c != 0)
}

/// Rewrites the quoted ports to `inner`'s, fixing the ICMP checksum and the
/// quoted L4 checksum `l4` for them, then the ICMP checksum for the L4
/// checksum's own change. Address changes come first, by the caller.
#[inline(always)]
pub fn quoted_ports<A>(
    ctx: &TcContext,
    icmp_csum: usize,
    l4: Option<(usize, u16)>,
    q: &Quoted<A>,
    inner: &CtKey<A>,
) -> Result<(), i64> {
    for (off, old, new) in [
        (q.l4_off, q.key.sport, inner.sport),
        (q.l4_off + 2, q.key.dport, inner.dport),
    ] {
        if old != new {
            ctx.store(off, &new, 0)?;
            fix_field(ctx, icmp_csum, old.into(), new.into(), 2)?;
            if let Some((l4_off, _)) = l4 {
                fix_field(ctx, l4_off, old.into(), new.into(), 2)?;
            }
        }
    }
    if let Some((l4_off, old)) = l4 {
        let new = bytes_at::<2>(ctx, l4_off).map_or(old, u16::from_ne_bytes);
        fix_field(ctx, icmp_csum, old.into(), new.into(), 2)?;
    }
    Ok(())
}

/// ICMP for IPv4, ICMPv6 for IPv6.
pub trait IcmpFamily: Family {
    fn quoted(ctx: &TcContext, pkt: &Packet<Self>) -> Option<Quoted<Self>>;
    fn translate(
        ctx: &TcContext,
        pkt: &Packet<Self>,
        q: &Quoted<Self>,
        e: &CtEntry<Self>,
    ) -> Result<(), i64>;
}
