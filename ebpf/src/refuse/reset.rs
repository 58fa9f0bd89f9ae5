//! A SYN made the reset that a closed port sends (RFC 9293, 3.10.7.1):
//! addressed back to its sender, sequence number zero, acknowledging the
//! SYN and any data it carried, its options overwritten with no-ops. The
//! data stays: a reset's data is ignored.
//!
//! Every change goes through the L4 checksum helper as data, never as
//! pseudo-header: swapping the addresses and the ports leaves both sums as
//! they were, and the helper keeps a `CHECKSUM_PARTIAL` packet partial.

use aya_ebpf::{
    helpers::{bpf_csum_diff, bpf_skb_load_bytes, bpf_skb_store_bytes},
    programs::TcContext,
};

use super::Built;
use crate::{
    family::Family,
    parse::{bytes_at, Packet, TCP_ACK, TCP_RST},
};

/// The largest TCP options area.
const MAX_OPTIONS: usize = 40;
const TCP_NOP: u8 = 1;

/// A subprogram of its own, as `Unreachable::port_unreachable`.
#[inline(never)]
pub fn from_syn<F: Family>(ctx: &TcContext, pkt: &Packet<F>) -> Result<(), Built> {
    let l4 = pkt.l4_off;
    let Some(hdr) = bytes_at::<20>(ctx, l4) else {
        return Err(Built::Untouched);
    };
    let hdr_len = usize::from(hdr[12] >> 4) * 4;
    let Some(payload) = pkt.end.checked_sub(l4 + hdr_len) else {
        return Err(Built::Untouched);
    };
    let word = |i: usize| u32::from_ne_bytes([hdr[i], hdr[i + 1], hdr[i + 2], hdr[i + 3]]);
    let seq = u32::from_be(word(4));
    let ack = seq.wrapping_add(1).wrapping_add(payload as u32).to_be();
    let flags_window = u32::from_ne_bytes([hdr[12], TCP_RST | TCP_ACK, 0, 0]);
    let urgent = u16::from_ne_bytes([hdr[18], hdr[19]]);
    let key = &pkt.key;

    ctx.store(F::SRC_OFF, &key.daddr, 0)?;
    ctx.store(F::DST_OFF, &key.saddr, 0)?;
    ctx.store(l4, &[key.dport, key.sport], 0)?;
    let csum = l4 + 16;
    for (off, old, new) in [
        (l4 + 4, word(4), 0),
        (l4 + 8, word(8), ack),
        (l4 + 12, word(12), flags_window),
    ] {
        ctx.store(off, &new, 0)?;
        ctx.l4_csum_replace(csum, u64::from(old), u64::from(new), 4)?;
    }
    if urgent != 0 {
        ctx.store(l4 + 18, &0u16, 0)?;
        ctx.l4_csum_replace(csum, u64::from(urgent), 0, 2)?;
    }
    let options = hdr_len.saturating_sub(20) & 0x3c;
    if options != 0 && options <= MAX_OPTIONS {
        no_ops(ctx, l4 + 20, options, csum)?;
    }
    Ok(())
}

/// Overwrites `len` bytes of options at `off` with no-ops, in one read, one
/// write and a checksum difference (no loop for the verifier to follow),
/// through one buffer: the frame is the last of the deepest call chain.
#[inline(always)]
fn no_ops(ctx: &TcContext, off: usize, len: usize, csum: usize) -> Result<(), Built> {
    let mut buf = [0u8; MAX_OPTIONS];
    let skb = ctx.skb.skb;
    let p: *mut u8 = buf.as_mut_ptr();
    // SAFETY: `buf` holds `MAX_OPTIONS` >= `len` bytes; `len` is a
    // multiple of 4, as the checksum helper wants.
    let diff = unsafe {
        if bpf_skb_load_bytes(skb.cast(), off as u32, p.cast(), len as u32) < 0 {
            return Err(Built::Broken);
        }
        let removed = bpf_csum_diff(p.cast(), len as u32, core::ptr::null_mut(), 0, 0);
        core::ptr::write_bytes(p, TCP_NOP, MAX_OPTIONS);
        let diff = bpf_csum_diff(
            core::ptr::null_mut(),
            0,
            p.cast(),
            len as u32,
            removed as u32,
        );
        if removed < 0
            || diff < 0
            || bpf_skb_store_bytes(skb, off as u32, p.cast(), len as u32, 0) < 0
        {
            return Err(Built::Broken);
        }
        diff as u32
    };
    ctx.l4_csum_replace(csum, 0, u64::from(diff), 0)?;
    Ok(())
}
