//! Bounds-checked parsing of the headers hairpin looks at. Anything it does
//! not understand is reported as such, so the caller passes it on untouched.

use aya_ebpf::programs::TcContext;
use hairpin_common::{CtKeyV4, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP};

pub const ETH_LEN: usize = 14;
pub const ETH_P_IP: u16 = 0x0800;
pub const IP_OFF: usize = ETH_LEN;
pub const IP_CSUM_OFF: usize = IP_OFF + 10;
pub const IP_SRC_OFF: usize = IP_OFF + 12;
pub const IP_DST_OFF: usize = IP_OFF + 16;
const IP_MIN_LEN: usize = 20;
const IP_MF: u16 = 0x2000;
const IP_OFFSET_MASK: u16 = 0x1fff;
const TCP_MIN_LEN: usize = 20;
const UDP_LEN: usize = 8;
const ICMP_LEN: usize = 8;
/// Headers this long are wanted in the linear area: Ethernet, the largest
/// IPv4 header, and an ICMP error quoting another largest IPv4 header.
const PULL_LEN: u32 = (ETH_LEN + 60 + ICMP_LEN + 60 + 8) as u32;

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_ACK: u8 = 0x10;

/// An IPv4 TCP, UDP or ICMP packet whose headers are all present.
pub struct Packet {
    /// Its tuple; ports are zero for ICMP.
    pub key: CtKeyV4,
    pub l4_off: usize,
    /// Offset just past the IP packet (its total length): bytes beyond it
    /// are link-layer padding, not part of the packet.
    pub end: usize,
    /// TCP flags byte; zero for other protocols.
    pub tcp_flags: u8,
    /// ICMP type; zero for other protocols.
    pub icmp_type: u8,
}

pub enum Parsed {
    /// Not IPv4, or a protocol hairpin does not translate.
    Other,
    /// IPv4 with a bad or truncated header, or a fragment.
    Malformed,
    Ipv4(Packet),
}

/// A pointer to a `T` at `off`, when the linear data holds all of it.
#[inline(always)]
pub fn ptr_at<T>(ctx: &TcContext, off: usize) -> Option<*const T> {
    let start = ctx.data();
    if start + off + core::mem::size_of::<T>() > ctx.data_end() {
        return None;
    }
    Some((start + off) as *const T)
}

/// Reads `N` bytes at `off` from the linear data.
#[inline(always)]
pub fn bytes_at<const N: usize>(ctx: &TcContext, off: usize) -> Option<[u8; N]> {
    // SAFETY: `ptr_at` checked the bounds; byte arrays have no alignment.
    ptr_at::<[u8; N]>(ctx, off).map(|p| unsafe { *p })
}

#[inline(always)]
pub fn parse(ctx: &TcContext) -> Parsed {
    // Headers of locally built or GRO'd packets may sit partly outside the
    // linear area; pull them in once rather than misreading a packet as short.
    let want = ctx.len().min(PULL_LEN);
    if ctx.data() + want as usize > ctx.data_end() && ctx.pull_data(want).is_err() {
        return Parsed::Other;
    }
    match bytes_at::<2>(ctx, 12) {
        Some(t) if u16::from_be_bytes(t) == ETH_P_IP => parse_ipv4(ctx),
        _ => Parsed::Other,
    }
}

#[inline(always)]
fn parse_ipv4(ctx: &TcContext) -> Parsed {
    let Some(ip) = bytes_at::<IP_MIN_LEN>(ctx, IP_OFF) else {
        return Parsed::Malformed;
    };
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let tot_len = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let frag = u16::from_be_bytes([ip[6], ip[7]]);
    if ip[0] >> 4 != 4
        || ihl < IP_MIN_LEN
        || tot_len < ihl
        || (ctx.len() as usize) < IP_OFF + tot_len
        || frag & (IP_MF | IP_OFFSET_MASK) != 0
    {
        return Parsed::Malformed;
    }
    let proto = ip[9];
    let l4_off = IP_OFF + ihl;
    let l4_len = tot_len - ihl;
    let mut pkt = Packet {
        key: CtKeyV4 {
            saddr: u32::from_ne_bytes([ip[12], ip[13], ip[14], ip[15]]),
            daddr: u32::from_ne_bytes([ip[16], ip[17], ip[18], ip[19]]),
            proto,
            ..CtKeyV4::default()
        },
        l4_off,
        end: IP_OFF + tot_len,
        tcp_flags: 0,
        icmp_type: 0,
    };
    let min_l4 = match proto {
        IPPROTO_TCP => TCP_MIN_LEN,
        IPPROTO_UDP => UDP_LEN,
        IPPROTO_ICMP => ICMP_LEN,
        _ => return Parsed::Other,
    };
    if l4_len < min_l4 {
        return Parsed::Malformed;
    }
    if proto == IPPROTO_ICMP {
        // Type, code and checksum: reading one byte alone lets the compiler
        // fold the bounds check into a form the verifier cannot use.
        let Some(icmp) = bytes_at::<4>(ctx, l4_off) else {
            return Parsed::Malformed;
        };
        pkt.icmp_type = icmp[0];
        return Parsed::Ipv4(pkt);
    }
    let Some(l4) = bytes_at::<4>(ctx, l4_off) else {
        return Parsed::Malformed;
    };
    pkt.key.sport = u16::from_ne_bytes([l4[0], l4[1]]);
    pkt.key.dport = u16::from_ne_bytes([l4[2], l4[3]]);
    if proto == IPPROTO_TCP {
        let Some(tcp) = bytes_at::<TCP_MIN_LEN>(ctx, l4_off) else {
            return Parsed::Malformed;
        };
        // A data offset below the minimum header is a malformed segment.
        if usize::from(tcp[12] >> 4) * 4 < TCP_MIN_LEN {
            return Parsed::Malformed;
        }
        pkt.tcp_flags = tcp[13];
    }
    Parsed::Ipv4(pkt)
}
