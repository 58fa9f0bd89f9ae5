//! Frame builders: Ethernet, IPv4 (with options) or IPv6 (with extension
//! headers), then TCP, UDP, ICMP or ICMPv6, with every checksum computed here
//! (RFC 1071; the IPv6 pseudo-header of RFC 8200 section 8.1), so that a
//! frame is valid unless a test breaks it on purpose.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

pub const ETH_LEN: usize = 14;
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_ICMPV6: u8 = 58;
/// Both protocols a frontend may serve: the parameter of per-protocol cases.
pub const PROTOCOLS: [u8; 2] = [IPPROTO_TCP, IPPROTO_UDP];

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_PSH: u8 = 0x08;
pub const TCP_ACK: u8 = 0x10;

/// IPv4 flags and fragment offset field: don't fragment, more fragments.
pub const IP_DF: u16 = 0x4000;
pub const IP_MF: u16 = 0x2000;

pub const ICMP_ECHO_REPLY: u8 = 0;
pub const ICMP_DEST_UNREACH: u8 = 3;
pub const ICMP_ECHO_REQUEST: u8 = 8;
pub const ICMP_TIME_EXCEEDED: u8 = 11;
pub const ICMP_PORT_UNREACH: u8 = 3;
pub const ICMP_FRAG_NEEDED: u8 = 4;

/// MAC addresses of the pod side and the node side of a veth.
pub const POD_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x0a];
pub const NODE_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x0b];

/// The folded 16-bit ones' complement sum of `data` (RFC 1071), an odd
/// length padded with a zero byte.
pub fn ones_sum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let hi = u32::from(chunk[0]) << 8;
        let lo = chunk.get(1).copied().map_or(0, u32::from);
        sum += hi | lo;
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The Internet checksum of the concatenation of `parts`; every part but
/// the last must have an even length.
pub fn internet_checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for part in parts {
        sum += u32::from(ones_sum(part));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The IPv4 header of a frame, apart from what follows from its payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ip {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub tos: u8,
    pub ttl: u8,
    pub id: u16,
    /// Flags and fragment offset, as on the wire.
    pub frag: u16,
    /// Options, at most 40 bytes; padded with End of Option List to a
    /// multiple of four when written.
    pub options: Vec<u8>,
}

impl Ip {
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr) -> Self {
        Self {
            src,
            dst,
            tos: 0,
            ttl: 64,
            id: 0x1234,
            frag: IP_DF,
            options: Vec::new(),
        }
    }

    /// The header length in bytes, options padded.
    pub fn header_len(&self) -> usize {
        assert!(
            self.options.len() <= 40,
            "IPv4 options are at most 40 bytes"
        );
        20 + self.options.len().div_ceil(4) * 4
    }

    /// The header for a payload of `payload_len` bytes of protocol `proto`.
    pub fn header(&self, proto: u8, payload_len: usize) -> Vec<u8> {
        let hlen = self.header_len();
        let total = u16::try_from(hlen + payload_len).expect("IPv4 packet too long");
        let mut h = Vec::with_capacity(hlen);
        h.push(0x40 | (hlen / 4) as u8);
        h.push(self.tos);
        h.extend_from_slice(&total.to_be_bytes());
        h.extend_from_slice(&self.id.to_be_bytes());
        h.extend_from_slice(&self.frag.to_be_bytes());
        h.push(self.ttl);
        h.push(proto);
        h.extend_from_slice(&[0, 0]);
        h.extend_from_slice(&self.src.octets());
        h.extend_from_slice(&self.dst.octets());
        h.extend_from_slice(&self.options);
        h.resize(hlen, 0);
        let csum = internet_checksum(&[&h]);
        h[10..12].copy_from_slice(&csum.to_be_bytes());
        h
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tcp {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub payload: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Udp {
    pub sport: u16,
    pub dport: u16,
    /// Send a zero checksum ("none", RFC 768) instead of the computed one.
    pub no_checksum: bool,
    pub payload: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Icmp {
    pub icmp_type: u8,
    pub code: u8,
    /// Bytes 4..8 of the header: identifier and sequence, or the next-hop
    /// MTU of a "fragmentation needed", or unused.
    pub rest: [u8; 4],
    /// For an error, the quoted packet: an IP header and what followed it.
    pub data: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum L4 {
    Tcp(Tcp),
    Udp(Udp),
    Icmp(Icmp),
    /// An ICMPv6 message: its checksum covers the IPv6 pseudo-header.
    Icmp6(Icmp),
    /// Any other protocol, its bytes as given.
    Other {
        proto: u8,
        bytes: Vec<u8>,
    },
}

impl L4 {
    /// A TCP segment (a bare SYN) or UDP datagram from `sport` to `dport`.
    pub fn flow(proto: u8, sport: u16, dport: u16, payload: &[u8]) -> Self {
        match proto {
            IPPROTO_TCP => L4::Tcp(Tcp {
                sport,
                dport,
                seq: 1000,
                ack: 0,
                flags: TCP_SYN,
                window: 64240,
                payload: payload.to_vec(),
            }),
            IPPROTO_UDP => L4::Udp(Udp {
                sport,
                dport,
                no_checksum: false,
                payload: payload.to_vec(),
            }),
            _ => panic!("no flow frames for protocol {proto}"),
        }
    }

    pub fn proto(&self) -> u8 {
        match self {
            L4::Tcp(_) => IPPROTO_TCP,
            L4::Udp(_) => IPPROTO_UDP,
            L4::Icmp(_) => IPPROTO_ICMP,
            L4::Icmp6(_) => IPPROTO_ICMPV6,
            L4::Other { proto, .. } => *proto,
        }
    }

    /// The segment or datagram, checksummed for the addresses of `ip`.
    pub fn bytes(&self, ip: &Ip) -> Vec<u8> {
        self.bytes_with(&|proto: u8, len: usize| {
            let mut p = Vec::with_capacity(12);
            p.extend_from_slice(&ip.src.octets());
            p.extend_from_slice(&ip.dst.octets());
            p.extend_from_slice(&[0, proto]);
            p.extend_from_slice(&u16::try_from(len).expect("segment too long").to_be_bytes());
            p
        })
    }

    /// The segment, datagram or ICMPv6 message, checksummed for the
    /// addresses of the IPv6 header `ip`.
    pub fn bytes6(&self, ip: &Ip6) -> Vec<u8> {
        self.bytes_with(&|proto: u8, len: usize| ip.pseudo_header(proto, len))
    }

    /// The bytes, checksummed with the pseudo-header `pseudo(proto, len)`.
    fn bytes_with(&self, pseudo: &dyn Fn(u8, usize) -> Vec<u8>) -> Vec<u8> {
        match self {
            L4::Tcp(t) => {
                let mut b = Vec::with_capacity(20 + t.payload.len());
                b.extend_from_slice(&t.sport.to_be_bytes());
                b.extend_from_slice(&t.dport.to_be_bytes());
                b.extend_from_slice(&t.seq.to_be_bytes());
                b.extend_from_slice(&t.ack.to_be_bytes());
                b.extend_from_slice(&[5 << 4, t.flags]);
                b.extend_from_slice(&t.window.to_be_bytes());
                b.extend_from_slice(&[0, 0, 0, 0]);
                b.extend_from_slice(&t.payload);
                let csum = internet_checksum(&[&pseudo(IPPROTO_TCP, b.len()), &b]);
                b[16..18].copy_from_slice(&csum.to_be_bytes());
                b
            }
            L4::Udp(u) => {
                let len = 8 + u.payload.len();
                let mut b = Vec::with_capacity(len);
                b.extend_from_slice(&u.sport.to_be_bytes());
                b.extend_from_slice(&u.dport.to_be_bytes());
                b.extend_from_slice(&u16::try_from(len).expect("datagram too long").to_be_bytes());
                b.extend_from_slice(&[0, 0]);
                b.extend_from_slice(&u.payload);
                if !u.no_checksum {
                    let csum = match internet_checksum(&[&pseudo(IPPROTO_UDP, len), &b]) {
                        // A computed zero is sent as all ones (RFC 768).
                        0 => 0xffff,
                        c => c,
                    };
                    b[6..8].copy_from_slice(&csum.to_be_bytes());
                }
                b
            }
            L4::Icmp(i) | L4::Icmp6(i) => {
                let mut b = Vec::with_capacity(8 + i.data.len());
                b.extend_from_slice(&[i.icmp_type, i.code, 0, 0]);
                b.extend_from_slice(&i.rest);
                b.extend_from_slice(&i.data);
                let csum = if let L4::Icmp6(_) = self {
                    // RFC 4443 section 2.3: with the pseudo-header.
                    internet_checksum(&[&pseudo(IPPROTO_ICMPV6, b.len()), &b])
                } else {
                    internet_checksum(&[&b])
                };
                b[2..4].copy_from_slice(&csum.to_be_bytes());
                b
            }
            L4::Other { bytes, .. } => bytes.clone(),
        }
    }
}

/// An Ethernet frame carrying an IPv4 packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub ip: Ip,
    pub l4: L4,
}

impl Frame {
    /// A TCP segment or UDP datagram (`proto`) from `src` to `dst`, sent by
    /// a pod: a TCP segment is a bare SYN.
    pub fn flow(proto: u8, src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) -> Self {
        Self {
            dst_mac: NODE_MAC,
            src_mac: POD_MAC,
            ip: Ip::new(*src.ip(), *dst.ip()),
            l4: L4::flow(proto, src.port(), dst.port(), payload),
        }
    }

    /// An ICMP message from `src` to `dst`.
    pub fn icmp(src: Ipv4Addr, dst: Ipv4Addr, icmp: Icmp) -> Self {
        Self {
            dst_mac: NODE_MAC,
            src_mac: POD_MAC,
            ip: Ip::new(src, dst),
            l4: L4::Icmp(icmp),
        }
    }

    /// An ICMP error of `icmp_type`/`code` from `src` about `quoted` (an IP
    /// packet without Ethernet), of which the first `quote_len` bytes are
    /// quoted (all of it if shorter).
    pub fn icmp_error(
        src: Ipv4Addr,
        dst: Ipv4Addr,
        icmp_type: u8,
        code: u8,
        rest: [u8; 4],
        quoted: &[u8],
        quote_len: usize,
    ) -> Self {
        let data = quoted[..quote_len.min(quoted.len())].to_vec();
        let mut f = Self::icmp(
            src,
            dst,
            Icmp {
                icmp_type,
                code,
                rest,
                data,
            },
        );
        // Routers send errors without DF, as Linux does.
        f.ip.frag = 0;
        f
    }

    /// Sets the TCP flags; no effect on other protocols.
    pub fn with_tcp_flags(mut self, flags: u8) -> Self {
        if let L4::Tcp(t) = &mut self.l4 {
            t.flags = flags;
        }
        self
    }

    /// The IP packet, without Ethernet.
    pub fn ip_packet(&self) -> Vec<u8> {
        let l4 = self.l4.bytes(&self.ip);
        let mut p = self.ip.header(self.l4.proto(), l4.len());
        p.extend_from_slice(&l4);
        p
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut f = Vec::with_capacity(ETH_LEN + 60 + 256);
        f.extend_from_slice(&self.dst_mac);
        f.extend_from_slice(&self.src_mac);
        f.extend_from_slice(&ETH_P_IP.to_be_bytes());
        f.extend_from_slice(&self.ip_packet());
        f
    }
}

// ---------------------------------------------------------------------------
// IPv6

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

impl Ip6 {
    pub fn new(src: Ipv6Addr, dst: Ipv6Addr) -> Self {
        Self {
            src,
            dst,
            traffic_class: 0,
            flow_label: 0x12345,
            hop_limit: 64,
            ext: Vec::new(),
        }
    }

    /// The pseudo-header of an upper-layer packet of `len` bytes of protocol
    /// `proto` (RFC 8200 section 8.1). Its destination is the header's: the
    /// final one, as long as no routing header has segments left.
    pub fn pseudo_header(&self, proto: u8, len: usize) -> Vec<u8> {
        let mut p = Vec::with_capacity(40);
        p.extend_from_slice(&self.src.octets());
        p.extend_from_slice(&self.dst.octets());
        p.extend_from_slice(&u32::try_from(len).unwrap().to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, proto]);
        p
    }

    /// The header and extension headers for an upper-layer packet of
    /// `payload_len` bytes of protocol `proto`.
    pub fn header(&self, proto: u8, payload_len: usize) -> Vec<u8> {
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
}

/// An Ethernet frame carrying an IPv6 packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame6 {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub ip: Ip6,
    pub l4: L4,
}

impl Frame6 {
    /// A TCP segment (a bare SYN) or UDP datagram (`proto`) from `src` to
    /// `dst`, sent by a pod.
    pub fn flow(proto: u8, src: SocketAddrV6, dst: SocketAddrV6, payload: &[u8]) -> Self {
        Self {
            dst_mac: NODE_MAC,
            src_mac: POD_MAC,
            ip: Ip6::new(*src.ip(), *dst.ip()),
            l4: L4::flow(proto, src.port(), dst.port(), payload),
        }
    }

    /// An ICMPv6 message from `src` to `dst`.
    pub fn icmp(src: Ipv6Addr, dst: Ipv6Addr, icmp: Icmp) -> Self {
        Self {
            dst_mac: NODE_MAC,
            src_mac: POD_MAC,
            ip: Ip6::new(src, dst),
            l4: L4::Icmp6(icmp),
        }
    }

    /// An ICMPv6 error of `icmp_type`/`code` from `src` about `quoted` (an
    /// IPv6 packet without Ethernet), of which the first `quote_len` bytes
    /// are quoted (all of it if shorter).
    pub fn icmp_error(
        src: Ipv6Addr,
        dst: Ipv6Addr,
        icmp_type: u8,
        code: u8,
        rest: [u8; 4],
        quoted: &[u8],
        quote_len: usize,
    ) -> Self {
        let data = quoted[..quote_len.min(quoted.len())].to_vec();
        Self::icmp(
            src,
            dst,
            Icmp {
                icmp_type,
                code,
                rest,
                data,
            },
        )
    }

    /// Sets the TCP flags; no effect on other protocols.
    pub fn with_tcp_flags(mut self, flags: u8) -> Self {
        if let L4::Tcp(t) = &mut self.l4 {
            t.flags = flags;
        }
        self
    }

    /// Sets the extension headers.
    pub fn with_ext(mut self, ext: Vec<Ext>) -> Self {
        self.ip.ext = ext;
        self
    }

    /// The IP packet, without Ethernet.
    pub fn ip_packet(&self) -> Vec<u8> {
        let l4 = self.l4.bytes6(&self.ip);
        let mut p = self.ip.header(self.l4.proto(), l4.len());
        p.extend_from_slice(&l4);
        p
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut f = Vec::with_capacity(ETH_LEN + 40 + 256);
        f.extend_from_slice(&self.dst_mac);
        f.extend_from_slice(&self.src_mac);
        f.extend_from_slice(&ETH_P_IPV6.to_be_bytes());
        f.extend_from_slice(&self.ip_packet());
        f
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

/// A frame of another ethertype with the given payload.
pub fn ethernet(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(ETH_LEN + payload.len());
    f.extend_from_slice(&NODE_MAC);
    f.extend_from_slice(&POD_MAC);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An ARP request for `target` from `sender`.
pub fn arp_request(sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut a = vec![0, 1, 0x08, 0x00, 6, 4, 0, 1];
    a.extend_from_slice(&POD_MAC);
    a.extend_from_slice(&sender.octets());
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&target.octets());
    let mut f = ethernet(ETH_P_ARP, &a);
    f[..6].copy_from_slice(&[0xff; 6]);
    f
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

/// Readers of the fields of a (valid) frame, for assertions.
pub mod read {
    use super::*;

    pub fn ihl(frame: &[u8]) -> usize {
        usize::from(frame[ETH_LEN] & 0x0f) * 4
    }

    pub fn src(frame: &[u8]) -> Ipv4Addr {
        Ipv4Addr::from(<[u8; 4]>::try_from(&frame[ETH_LEN + 12..ETH_LEN + 16]).unwrap())
    }

    pub fn dst(frame: &[u8]) -> Ipv4Addr {
        Ipv4Addr::from(<[u8; 4]>::try_from(&frame[ETH_LEN + 16..ETH_LEN + 20]).unwrap())
    }

    pub fn l4(frame: &[u8]) -> &[u8] {
        &frame[ETH_LEN + ihl(frame)..]
    }

    /// Source and destination of a TCP or UDP frame.
    pub fn endpoints(frame: &[u8]) -> (SocketAddrV4, SocketAddrV4) {
        endpoints_of_ip(&frame[ETH_LEN..])
    }

    /// Source and destination of a TCP or UDP packet (no Ethernet), as far
    /// as its ports are there.
    pub fn endpoints_of_ip(ip: &[u8]) -> (SocketAddrV4, SocketAddrV4) {
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let port = |off: usize| u16::from_be_bytes([ip[ihl + off], ip[ihl + off + 1]]);
        let addr = |off: usize| Ipv4Addr::from(<[u8; 4]>::try_from(&ip[off..off + 4]).unwrap());
        (
            SocketAddrV4::new(addr(12), port(0)),
            SocketAddrV4::new(addr(16), port(2)),
        )
    }

    /// The quoted packet of an ICMP error frame.
    pub fn quote(frame: &[u8]) -> &[u8] {
        &l4(frame)[8..]
    }

    pub fn macs(frame: &[u8]) -> ([u8; 6], [u8; 6]) {
        (
            frame[..6].try_into().unwrap(),
            frame[6..12].try_into().unwrap(),
        )
    }
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
