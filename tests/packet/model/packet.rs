//! A frame as the specification reads it: which family, which protocol,
//! where its upper layer starts, or why it is malformed; and the checksum
//! arithmetic the translations use.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::tables::Tuple;
use crate::frames::{
    ETH_LEN, ETH_P_IP, ETH_P_IPV6, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, IP_MF,
    NEXTHDR_DEST, NEXTHDR_FRAGMENT, NEXTHDR_HOP, NEXTHDR_ROUTING,
};

/// Ones' complement checksum update (RFC 1624 eqn. 3): HC' = ~(~HC + ~m + m')
/// over the 16-bit words of the changed fields, `old` and `new` of equal,
/// even length.
pub fn csum_update(csum: u16, old: &[u8], new: &[u8]) -> u16 {
    assert_eq!(old.len(), new.len(), "changed fields of different lengths");
    let mut sum = u32::from(!csum);
    for (o, n) in old.chunks(2).zip(new.chunks(2)) {
        sum += u32::from(!u16::from_be_bytes([o[0], o[1]]));
        sum += u32::from(u16::from_be_bytes([n[0], n[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

pub(super) fn get16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}

pub(super) fn put16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_be_bytes());
}

pub(super) fn addr_at(b: &[u8], off: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[off], b[off + 1], b[off + 2], b[off + 3])
}

pub(super) fn addr6_at(b: &[u8], off: usize) -> Ipv6Addr {
    Ipv6Addr::from(<[u8; 16]>::try_from(&b[off..off + 16]).unwrap())
}

pub(super) fn octets(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// The bytes of a tuple's fields as they sit in the headers: source and
/// destination address, then source and destination port.
pub(super) fn tuple_fields(t: &Tuple) -> Vec<u8> {
    let mut v = Vec::with_capacity(36);
    v.extend_from_slice(&octets(t.src.ip()));
    v.extend_from_slice(&octets(t.dst.ip()));
    v.extend_from_slice(&t.src.port().to_be_bytes());
    v.extend_from_slice(&t.dst.port().to_be_bytes());
    v
}

/// A TCP, UDP, ICMP or ICMPv6 packet as the spec reads it.
pub(super) struct Ip<'a> {
    pub(super) src: IpAddr,
    pub(super) dst: IpAddr,
    pub(super) proto: u8,
    /// Offset of the L4 header in the frame.
    pub(super) l4_off: usize,
    /// The L4 bytes, up to the IP packet's end (total or payload length).
    pub(super) l4: &'a [u8],
}

impl Ip<'_> {
    pub(super) fn v6(&self) -> bool {
        self.src.is_ipv6()
    }

    /// Offsets of the source and destination addresses in the frame, and
    /// their length.
    pub(super) fn addr_offsets(&self) -> (usize, usize, usize) {
        if self.v6() {
            (ETH_LEN + 8, ETH_LEN + 24, 16)
        } else {
            (ETH_LEN + 12, ETH_LEN + 16, 4)
        }
    }
}

pub(super) enum Class<'a> {
    /// Neither IPv4 nor IPv6, or a protocol that is not translated.
    Other,
    /// A bad, truncated or fragmented packet.
    Malformed,
    Ip(Ip<'a>),
}

pub(super) fn classify(frame: &[u8]) -> Class<'_> {
    if frame.len() < ETH_LEN {
        return Class::Other;
    }
    match get16(frame, 12) {
        ETH_P_IP => classify_ipv4(&frame[ETH_LEN..]),
        ETH_P_IPV6 => classify_ipv6(&frame[ETH_LEN..]),
        _ => Class::Other,
    }
}

fn classify_ipv4(ip: &[u8]) -> Class<'_> {
    if ip.len() < 20 {
        return Class::Malformed;
    }
    let version = ip[0] >> 4;
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(get16(ip, 2));
    let frag = get16(ip, 6);
    let fragment = frag & IP_MF != 0 || frag & 0x1fff != 0;
    if version != 4 || ihl < 20 || total < ihl || total > ip.len() || fragment {
        return Class::Malformed;
    }
    upper_layer(
        ip[9],
        IpAddr::V4(addr_at(ip, 12)),
        IpAddr::V4(addr_at(ip, 16)),
        ihl,
        &ip[ihl..total],
        IPPROTO_ICMP,
    )
}

/// Extension headers walked to find the upper-layer header.
const IPV6_EXT_WALKED: usize = 4;

fn classify_ipv6(ip: &[u8]) -> Class<'_> {
    if ip.len() < 40 {
        return Class::Malformed;
    }
    let payload = usize::from(get16(ip, 4));
    // A zero payload length announces a jumbogram (RFC 2675): not handled.
    if ip[0] >> 4 != 6 || payload == 0 || 40 + payload > ip.len() {
        return Class::Malformed;
    }
    let end = 40 + payload;
    let (mut next, mut off) = (ip[6], 40);
    for _ in 0..IPV6_EXT_WALKED {
        match next {
            NEXTHDR_HOP | NEXTHDR_ROUTING | NEXTHDR_DEST => {
                // Its next header and length, then all of it, within the
                // payload.
                if off + 2 > end {
                    return Class::Malformed;
                }
                let len = (usize::from(ip[off + 1]) + 1) * 8;
                if off + len > end {
                    return Class::Malformed;
                }
                next = ip[off];
                off += len;
            }
            NEXTHDR_FRAGMENT => return Class::Malformed,
            _ => break,
        }
    }
    // Behind a fifth extension header, `next` is an extension header's
    // number: no protocol hairpin translates.
    upper_layer(
        next,
        IpAddr::V6(addr6_at(ip, 8)),
        IpAddr::V6(addr6_at(ip, 24)),
        off,
        &ip[off..end],
        IPPROTO_ICMPV6,
    )
}

/// The packet of protocol `proto` whose upper-layer bytes `l4` start at
/// `off` in the IP packet; `icmp` is the family's ICMP.
fn upper_layer(proto: u8, src: IpAddr, dst: IpAddr, off: usize, l4: &[u8], icmp: u8) -> Class<'_> {
    let min = match proto {
        IPPROTO_TCP => 20,
        IPPROTO_UDP => 8,
        p if p == icmp => 8,
        _ => return Class::Other,
    };
    if l4.len() < min || (proto == IPPROTO_TCP && usize::from(l4[12] >> 4) < 5) {
        return Class::Malformed;
    }
    Class::Ip(Ip {
        src,
        dst,
        proto,
        l4_off: ETH_LEN + off,
        l4,
    })
}

/// Offset of the TCP or UDP checksum in its header.
pub(super) fn l4_csum_off(proto: u8) -> usize {
    if proto == IPPROTO_TCP {
        16
    } else {
        6
    }
}

/// The ICMP message of `p` in `frame` and in `out`, checksum zeroed and
/// padded to whole 16-bit words, for a checksum update over all of it.
pub(super) fn message_words(frame: &[u8], out: &[u8], p: &Ip<'_>) -> (Vec<u8>, Vec<u8>) {
    let end = p.l4_off + p.l4.len();
    let mut old_msg = frame[p.l4_off..end].to_vec();
    let mut new_msg = out[p.l4_off..end].to_vec();
    for m in [&mut old_msg, &mut new_msg] {
        m[2..4].fill(0);
        if m.len() % 2 == 1 {
            m.push(0);
        }
    }
    (old_msg, new_msg)
}
