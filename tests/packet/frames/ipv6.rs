//! IPv6 frames: the header and its extension headers, and the readers of
//! IPv6 frames.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6};

use super::frame::{ethernet, Frame, Icmp, IpHeader, ETH_LEN, ETH_P_IPV6, IPPROTO_UDP, L4};

/// IPv6 next-header values of the extension headers (RFC 8200 section 4).
pub const NEXTHDR_HOP: u8 = 0;
pub const NEXTHDR_ROUTING: u8 = 43;
pub const NEXTHDR_FRAGMENT: u8 = 44;
pub const NEXTHDR_NONE: u8 = 59;
pub const NEXTHDR_DEST: u8 = 60;

/// ICMPv6 types (RFC 4443, RFC 4861).
pub const ICMPV6_DEST_UNREACH: u8 = 1;
pub const ICMPV6_PKT_TOOBIG: u8 = 2;
pub const ICMPV6_TIME_EXCEED: u8 = 3;
pub const ICMPV6_PARAM_PROB: u8 = 4;
pub const ICMPV6_ECHO_REQUEST: u8 = 128;
pub const ICMPV6_ECHO_REPLY: u8 = 129;
pub const ICMPV6_ROUTER_SOLICIT: u8 = 133;
pub const ICMPV6_ROUTER_ADVERT: u8 = 134;
pub const ICMPV6_NEIGH_SOLICIT: u8 = 135;
pub const ICMPV6_NEIGH_ADVERT: u8 = 136;
pub const ICMPV6_REDIRECT: u8 = 137;
/// Destination unreachable codes.
pub const ICMPV6_ADDR_UNREACH: u8 = 3;
pub const ICMPV6_PORT_UNREACH: u8 = 4;

/// An Ethernet frame carrying an IPv6 packet.
pub type Frame6 = Frame<Ip6>;

/// An IPv6 extension header; its next-header byte is written by the
/// builder, from what follows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ext {
    /// Hop-by-hop options (0): the options as given, then Pad1 or PadN up
    /// to a multiple of 8 bytes.
    HopByHop(Vec<u8>),
    /// Destination options (60), padded likewise.
    DestOpts(Vec<u8>),
    /// A routing header (43): type, segments left, then the type-specific
    /// data, padded with zeros to a multiple of 8 bytes.
    Routing {
        routing_type: u8,
        segments_left: u8,
        data: Vec<u8>,
    },
    /// A fragment header (44): offset in 8-byte units, more fragments.
    Fragment { offset: u16, more: bool, id: u32 },
}

impl Ext {
    pub fn code(&self) -> u8 {
        match self {
            Ext::HopByHop(_) => NEXTHDR_HOP,
            Ext::DestOpts(_) => NEXTHDR_DEST,
            Ext::Routing { .. } => NEXTHDR_ROUTING,
            Ext::Fragment { .. } => NEXTHDR_FRAGMENT,
        }
    }

    /// An options header of `len` bytes (a multiple of 8): a PadN, then
    /// experimental options (type 0x1e: skip if unknown, RFC 4727) of 8
    /// bytes each.
    pub fn options_of_len(dest: bool, len: usize) -> Self {
        assert!(
            len >= 8 && len.is_multiple_of(8),
            "options headers are 8n bytes"
        );
        let mut opts = vec![1, 4, 0, 0, 0, 0];
        for i in 0..(len - 8) / 8 {
            opts.extend_from_slice(&[0x1e, 6, 0, 0, 0, 0, (i >> 8) as u8, i as u8]);
        }
        if dest {
            Ext::DestOpts(opts)
        } else {
            Ext::HopByHop(opts)
        }
    }

    /// A Segment Routing header (routing type 4, RFC 8754) at its last
    /// segment: segments left 0, the destination its only segment.
    pub fn srh(last: Ipv6Addr) -> Self {
        let mut data = vec![0, 0, 0, 0];
        data.extend_from_slice(&last.octets());
        Ext::Routing {
            routing_type: 4,
            segments_left: 0,
            data,
        }
    }

    /// The header, followed by a header of type `next`.
    pub fn bytes(&self, next: u8) -> Vec<u8> {
        let mut b = vec![next, 0];
        match self {
            Ext::HopByHop(opts) | Ext::DestOpts(opts) => {
                b.extend_from_slice(opts);
                match (8 - b.len() % 8) % 8 {
                    0 => {}
                    1 => b.push(0),
                    n => {
                        b.extend_from_slice(&[1, (n - 2) as u8]);
                        b.resize(b.len() + n - 2, 0);
                    }
                }
            }
            Ext::Routing {
                routing_type,
                segments_left,
                data,
            } => {
                b.extend_from_slice(&[*routing_type, *segments_left]);
                b.extend_from_slice(data);
                b.resize(b.len().max(8).div_ceil(8) * 8, 0);
            }
            Ext::Fragment { offset, more, id } => {
                assert!(*offset < 0x2000, "fragment offset of 13 bits");
                let field = offset << 3 | u16::from(*more);
                b.extend_from_slice(&field.to_be_bytes());
                b.extend_from_slice(&id.to_be_bytes());
            }
        }
        let len = b.len() / 8 - 1;
        if !matches!(self, Ext::Fragment { .. }) {
            b[1] = u8::try_from(len).expect("extension header too long");
        }
        b
    }
}

/// The IPv6 header of a frame and its extension headers, apart from what
/// follows from its payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ip6 {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub traffic_class: u8,
    /// 20 bits.
    pub flow_label: u32,
    pub hop_limit: u8,
    pub ext: Vec<Ext>,
}

impl IpHeader for Ip6 {
    type Addr = Ipv6Addr;
    type Sock = SocketAddrV6;
    const ETHERTYPE: u16 = ETH_P_IPV6;

    fn new(src: Ipv6Addr, dst: Ipv6Addr) -> Self {
        Self {
            src,
            dst,
            traffic_class: 0,
            flow_label: 0x12345,
            hop_limit: 64,
            ext: Vec::new(),
        }
    }

    fn split(sock: SocketAddrV6) -> (Ipv6Addr, u16) {
        (*sock.ip(), sock.port())
    }

    /// With the extension headers, for an upper-layer packet.
    fn header(&self, proto: u8, payload_len: usize) -> Vec<u8> {
        let mut ext = Vec::new();
        for (i, e) in self.ext.iter().enumerate() {
            let next = self.ext.get(i + 1).map_or(proto, Ext::code);
            ext.extend_from_slice(&e.bytes(next));
        }
        let first = self.ext.first().map_or(proto, Ext::code);
        let payload = u16::try_from(ext.len() + payload_len).expect("IPv6 payload too long");
        let mut h = Vec::with_capacity(40 + ext.len());
        let word = 6 << 28 | u32::from(self.traffic_class) << 20 | (self.flow_label & 0xf_ffff);
        h.extend_from_slice(&word.to_be_bytes());
        h.extend_from_slice(&payload.to_be_bytes());
        h.extend_from_slice(&[first, self.hop_limit]);
        h.extend_from_slice(&self.src.octets());
        h.extend_from_slice(&self.dst.octets());
        h.extend_from_slice(&ext);
        h
    }

    /// RFC 8200 section 8.1. Its destination is the header's: the final
    /// one, as long as no routing header has segments left.
    fn pseudo_header(&self, proto: u8, len: usize) -> Vec<u8> {
        let mut p = Vec::with_capacity(40);
        p.extend_from_slice(&self.src.octets());
        p.extend_from_slice(&self.dst.octets());
        p.extend_from_slice(&u32::try_from(len).unwrap().to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, proto]);
        p
    }

    fn icmp(icmp: Icmp) -> L4 {
        L4::Icmp6(icmp)
    }
}

impl Frame6 {
    /// Sets the extension headers.
    pub fn with_ext(mut self, ext: Vec<Ext>) -> Self {
        self.ip.ext = ext;
        self
    }
}

/// `packet` (IPv6, no Ethernet) without its extension headers: the
/// upper-layer packet directly behind the IPv6 header, as a packet of the
/// same flow sent without them.
pub fn strip_ext(packet: &[u8]) -> Vec<u8> {
    let (off, proto) = read6::upper_layer(packet);
    let mut p = packet[..40].to_vec();
    p[6] = proto;
    let payload = u16::from_be_bytes([packet[4], packet[5]]) - (off - 40) as u16;
    p[4..6].copy_from_slice(&payload.to_be_bytes());
    p.extend_from_slice(&packet[off..]);
    p
}

/// An IPv6 UDP datagram whose first bytes would read, as IPv4, like a
/// datagram to `lookalike_dst:port` (the addresses overlap where IPv4's are).
pub fn ipv6_udp(lookalike_dst: Ipv4Addr, port: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&u16::try_from(8 + payload.len()).unwrap().to_be_bytes());
    p.extend_from_slice(&[IPPROTO_UDP, 64]);
    let mut src = [0u8; 16];
    src[..2].copy_from_slice(&[0xfd, 0x00]);
    // IPv4's source and destination sit at bytes 12..20 of the header.
    src[4..8].copy_from_slice(&[10, 0, 9, 7]);
    src[8..12].copy_from_slice(&lookalike_dst.octets());
    p.extend_from_slice(&src);
    let mut dst = [0u8; 16];
    dst[..2].copy_from_slice(&[0xfd, 0x00]);
    dst[15] = 1;
    p.extend_from_slice(&dst);
    p.extend_from_slice(&1234u16.to_be_bytes());
    p.extend_from_slice(&port.to_be_bytes());
    p.extend_from_slice(&u16::try_from(8 + payload.len()).unwrap().to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    ethernet(ETH_P_IPV6, &p)
}

/// Readers of the fields of a (valid) IPv6 frame, for assertions.
pub mod read6 {
    use super::*;

    /// Offset (in the IPv6 packet) and protocol of the upper-layer header,
    /// behind every extension header.
    pub fn upper_layer(ip: &[u8]) -> (usize, u8) {
        let (mut off, mut next) = (40, ip[6]);
        loop {
            match next {
                NEXTHDR_HOP | NEXTHDR_ROUTING | NEXTHDR_DEST => {
                    next = ip[off];
                    off += (usize::from(ip[off + 1]) + 1) * 8;
                }
                NEXTHDR_FRAGMENT => {
                    next = ip[off];
                    off += 8;
                }
                _ => return (off, next),
            }
        }
    }

    fn addr(ip: &[u8], off: usize) -> Ipv6Addr {
        Ipv6Addr::from(<[u8; 16]>::try_from(&ip[off..off + 16]).unwrap())
    }

    pub fn src(frame: &[u8]) -> Ipv6Addr {
        addr(&frame[ETH_LEN..], 8)
    }

    pub fn dst(frame: &[u8]) -> Ipv6Addr {
        addr(&frame[ETH_LEN..], 24)
    }

    /// The upper-layer bytes of a frame.
    pub fn l4(frame: &[u8]) -> &[u8] {
        let ip = &frame[ETH_LEN..];
        &ip[upper_layer(ip).0..]
    }

    /// The extension headers of a frame, as bytes.
    pub fn ext(frame: &[u8]) -> &[u8] {
        let ip = &frame[ETH_LEN..];
        &ip[40..upper_layer(ip).0]
    }

    /// Source and destination of a TCP or UDP frame.
    pub fn endpoints(frame: &[u8]) -> (SocketAddrV6, SocketAddrV6) {
        endpoints_of_ip(&frame[ETH_LEN..])
    }

    /// Source and destination of a TCP or UDP packet (no Ethernet), as far
    /// as its ports are there.
    pub fn endpoints_of_ip(ip: &[u8]) -> (SocketAddrV6, SocketAddrV6) {
        let (l4, _) = upper_layer(ip);
        let port = |off: usize| u16::from_be_bytes([ip[l4 + off], ip[l4 + off + 1]]);
        (
            SocketAddrV6::new(addr(ip, 8), port(0), 0, 0),
            SocketAddrV6::new(addr(ip, 24), port(2), 0, 0),
        )
    }

    /// The quoted packet of an ICMPv6 error frame.
    pub fn quote(frame: &[u8]) -> &[u8] {
        &l4(frame)[8..]
    }
}
