//! Bounds-checked parsing of the headers hairpin looks at. Anything it does
//! not understand is reported as such, so the caller passes it on untouched.

use aya_ebpf::programs::TcContext;
use hairpin_common::{CtKey, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP};

pub const ETH_LEN: usize = 14;
pub const ETH_P_IP: u16 = 0x0800;
pub const IP_OFF: usize = ETH_LEN;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const IPV4_CSUM_OFF: usize = IP_OFF + 10;
pub const IPV6_LEN: usize = 40;
/// Extension headers walked before giving up on a packet (hop-by-hop,
/// routing, destination options; a fragment header ends the walk).
const IPV6_MAX_EXT: usize = 4;
const NEXTHDR_HOP: u8 = 0;
const NEXTHDR_ROUTING: u8 = 43;
const NEXTHDR_FRAGMENT: u8 = 44;
const NEXTHDR_DEST: u8 = 60;
const IP_MIN_LEN: usize = 20;
const IP_MF: u16 = 0x2000;
const IP_OFFSET_MASK: u16 = 0x1fff;
const TCP_MIN_LEN: usize = 20;
const UDP_LEN: usize = 8;
const ICMP_LEN: usize = 8;
/// Headers this long are wanted in the linear area: Ethernet, the largest
/// IPv4 header and an ICMP error quoting another one (150 bytes), or an
/// IPv6 header with some extension headers and an ICMPv6 error's quote.
const PULL_LEN: u32 = 256;

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_ACK: u8 = 0x10;

/// A TCP, UDP or ICMP packet whose headers are all present; `A` is its
/// address family (`u32` IPv4, `[u32; 4]` IPv6).
pub struct Packet<A> {
    /// Its tuple; ports are zero for ICMP.
    pub key: CtKey<A>,
    pub l4_off: usize,
    /// Offset just past the IP packet (its total length): bytes beyond it
    /// are link-layer padding, not part of the packet.
    pub end: usize,
    /// TCP flags byte; zero for other protocols.
    pub tcp_flags: u8,
    /// ICMP (or ICMPv6) type; zero for other protocols.
    pub icmp_type: u8,
}

pub enum Parsed<A> {
    /// A protocol hairpin does not translate.
    Other,
    /// A bad or truncated header, or a fragment.
    Malformed,
    Packet(Packet<A>),
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

/// Reads `N` 32-bit words at `off` from the linear data, a load each,
/// where `bytes_at` would load and store every byte: the headers of every
/// packet are read this way. The JIT loads a misaligned word as it is, and
/// the verifier allows misaligned packet reads (the programs are not
/// loaded with `BPF_F_STRICT_ALIGNMENT`).
#[inline(always)]
pub fn words_at<const N: usize>(ctx: &TcContext, off: usize) -> Option<[u32; N]> {
    // SAFETY: `ptr_at` checked the bounds.
    ptr_at::<[u32; N]>(ctx, off).map(|p| unsafe { *p })
}

/// The frame's Ethernet protocol, its headers made readable.
#[inline(always)]
pub fn ethertype(ctx: &TcContext) -> Option<u16> {
    // Headers of locally built or GRO'd packets may sit partly outside the
    // linear area; pull them in once rather than misreading a packet as short.
    let want = ctx.len().min(PULL_LEN);
    if ctx.data() + want as usize > ctx.data_end() && ctx.pull_data(want).is_err() {
        return None;
    }
    bytes_at::<2>(ctx, 12).map(u16::from_be_bytes)
}

#[inline(always)]
pub fn parse_ipv4(ctx: &TcContext) -> Parsed<u32> {
    let Some(ip) = words_at::<5>(ctx, IP_OFF) else {
        return Parsed::Malformed;
    };
    let [vihl, _, len0, len1] = ip[0].to_ne_bytes();
    let [_, _, frag0, frag1] = ip[1].to_ne_bytes();
    let ihl = usize::from(vihl & 0x0f) * 4;
    let tot_len = usize::from(u16::from_be_bytes([len0, len1]));
    let frag = u16::from_be_bytes([frag0, frag1]);
    if vihl >> 4 != 4
        || ihl < IP_MIN_LEN
        || tot_len < ihl
        || (ctx.len() as usize) < IP_OFF + tot_len
        || frag & (IP_MF | IP_OFFSET_MASK) != 0
    {
        return Parsed::Malformed;
    }
    let proto = ip[2].to_ne_bytes()[1];
    let l4_off = IP_OFF + ihl;
    let l4_len = tot_len - ihl;
    let pkt = Packet {
        key: CtKey {
            saddr: ip[3],
            daddr: ip[4],
            proto,
            ..CtKey::default()
        },
        l4_off,
        end: IP_OFF + tot_len,
        tcp_flags: 0,
        icmp_type: 0,
    };
    parse_l4(ctx, pkt, l4_len, IPPROTO_ICMP)
}

// A subprogram: the IPv6 header's copy stays off the translation's frame.
#[inline(never)]
pub fn parse_ipv6(ctx: &TcContext) -> Parsed<[u32; 4]> {
    let Some(ip) = words_at::<{ IPV6_LEN / 4 }>(ctx, IP_OFF) else {
        return Parsed::Malformed;
    };
    let version = ip[0].to_ne_bytes()[0] >> 4;
    let [len0, len1, first_next, _] = ip[1].to_ne_bytes();
    let payload = usize::from(u16::from_be_bytes([len0, len1]));
    // A zero payload length is a jumbogram, which hairpin does not handle.
    if version != 6 || payload == 0 || (ctx.len() as usize) < IP_OFF + IPV6_LEN + payload {
        return Parsed::Malformed;
    }
    let end = IP_OFF + IPV6_LEN + payload;
    let mut next = first_next;
    let mut l4_off = IP_OFF + IPV6_LEN;
    for _ in 0..IPV6_MAX_EXT {
        match next {
            NEXTHDR_HOP | NEXTHDR_ROUTING | NEXTHDR_DEST => {
                let Some(ext) = bytes_at::<2>(ctx, l4_off) else {
                    return Parsed::Malformed;
                };
                next = ext[0];
                l4_off += (usize::from(ext[1]) + 1) * 8;
            }
            NEXTHDR_FRAGMENT => return Parsed::Malformed,
            _ => break,
        }
    }
    if l4_off > end {
        return Parsed::Malformed;
    }
    let pkt = Packet {
        key: CtKey {
            saddr: [ip[2], ip[3], ip[4], ip[5]],
            daddr: [ip[6], ip[7], ip[8], ip[9]],
            proto: next,
            ..CtKey::default()
        },
        l4_off,
        end,
        tcp_flags: 0,
        icmp_type: 0,
    };
    parse_l4(ctx, pkt, end - l4_off, IPPROTO_ICMPV6)
}

/// The source and destination ports, as on the wire, from the L4 header's
/// first word.
#[inline(always)]
pub fn set_ports<A>(key: &mut CtKey<A>, word: u32) {
    let [s0, s1, d0, d1] = word.to_ne_bytes();
    key.sport = u16::from_ne_bytes([s0, s1]);
    key.dport = u16::from_ne_bytes([d0, d1]);
}

/// Reads the ports (or the ICMP type) and TCP flags of `pkt`, whose L4
/// header and `l4_len` bytes after it the caller located; `icmp` is the
/// family's ICMP protocol.
#[inline(always)]
fn parse_l4<A>(ctx: &TcContext, mut pkt: Packet<A>, l4_len: usize, icmp: u8) -> Parsed<A> {
    let proto = pkt.key.proto;
    let l4_off = pkt.l4_off;
    let min_l4 = match proto {
        IPPROTO_TCP => TCP_MIN_LEN,
        IPPROTO_UDP => UDP_LEN,
        p if p == icmp => ICMP_LEN,
        _ => return Parsed::Other,
    };
    if l4_len < min_l4 {
        return Parsed::Malformed;
    }
    if proto == icmp {
        // Type, code and checksum: reading one byte alone lets the compiler
        // fold the bounds check into a form the verifier cannot use.
        let Some(h) = bytes_at::<4>(ctx, l4_off) else {
            return Parsed::Malformed;
        };
        pkt.icmp_type = h[0];
        return Parsed::Packet(pkt);
    }
    if proto == IPPROTO_TCP {
        let Some(tcp) = words_at::<{ TCP_MIN_LEN / 4 }>(ctx, l4_off) else {
            return Parsed::Malformed;
        };
        let [doff, flags, _, _] = tcp[3].to_ne_bytes();
        // A data offset below the minimum header is a malformed segment.
        if usize::from(doff >> 4) * 4 < TCP_MIN_LEN {
            return Parsed::Malformed;
        }
        pkt.tcp_flags = flags;
        set_ports(&mut pkt.key, tcp[0]);
        return Parsed::Packet(pkt);
    }
    let Some([ports]) = words_at::<1>(ctx, l4_off) else {
        return Parsed::Malformed;
    };
    set_ports(&mut pkt.key, ports);
    Parsed::Packet(pkt)
}
