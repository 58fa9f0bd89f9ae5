//! Field rewrites with incremental checksum fixups through the kernel's
//! helpers, which also keep `CHECKSUM_PARTIAL` and `CHECKSUM_COMPLETE`
//! packets right (net/core/filter.c, `bpf_l4_csum_replace`).

use aya_ebpf::{bindings::BPF_F_MARK_MANGLED_0, programs::TcContext};
use hairpin_common::{IPPROTO_TCP, IPPROTO_UDP};

/// Offset of the TCP or UDP checksum field from the L4 header, and the
/// helper flags it needs: UDP marks a computed zero as 0xffff and leaves an
/// absent (zero) checksum alone, as RFC 768 asks.
#[inline(always)]
pub fn l4_csum(proto: u8) -> Option<(usize, u64)> {
    match proto {
        IPPROTO_TCP => Some((16, 0)),
        IPPROTO_UDP => Some((6, u64::from(BPF_F_MARK_MANGLED_0))),
        _ => None,
    }
}

/// Offset of the ICMP checksum from the ICMP header (no pseudo-header).
pub const ICMP_CSUM_OFF: usize = 2;

/// Adjusts the 16-bit ones' complement checksum at `csum_off` for a field
/// that changed from `old` to `new` (`size` 2 or 4 bytes). Unlike the L4
/// helper this never touches `skb->csum`: it serves checksums inside an ICMP
/// error's quoted packet, which no offload knows about.
#[inline(always)]
pub fn fix_field(
    ctx: &TcContext,
    csum_off: usize,
    old: u32,
    new: u32,
    size: u64,
) -> Result<(), i64> {
    ctx.l3_csum_replace(csum_off, u64::from(old), u64::from(new), size)
}

/// Writes a 2-byte port at `port_off` and fixes the L4 checksum.
#[inline(always)]
pub fn set_port(
    ctx: &TcContext,
    port_off: usize,
    l4: Option<(usize, u64)>,
    old: u16,
    new: u16,
) -> Result<(), i64> {
    ctx.store(port_off, &new, 0)?;
    if let Some((off, flags)) = l4 {
        ctx.l4_csum_replace(off, u64::from(old), u64::from(new), flags | 2)?;
    }
    Ok(())
}
