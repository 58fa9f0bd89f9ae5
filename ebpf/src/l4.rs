//! TCP segment surgery beyond the tuple.

use aya_ebpf::programs::TcContext;

use crate::parse::{bytes_at, Packet, TCP_ACK, TCP_RST};

/// Turns the segment into a reset (keeping its ACK flag and sequence
/// number, so that the receiver finds it in its window), fixing the
/// checksum for the 16-bit word that holds the flags.
#[inline(always)]
pub fn make_reset<A>(ctx: &TcContext, pkt: &Packet<A>) -> Result<(), i64> {
    let off = pkt.l4_off + 12;
    let Some(old) = bytes_at::<2>(ctx, off) else {
        return Err(-1);
    };
    let new = [old[0], (old[1] & TCP_ACK) | TCP_RST];
    ctx.store(off, &new, 0)?;
    ctx.l4_csum_replace(
        pkt.l4_off + 16,
        u64::from(u16::from_ne_bytes(old)),
        u64::from(u16::from_ne_bytes(new)),
        2,
    )
}
