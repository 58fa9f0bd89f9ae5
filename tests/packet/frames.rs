//! Frame builders: Ethernet, IPv4 (with options), then TCP, UDP or ICMP, with
//! every checksum computed here (RFC 1071), so that a frame is valid unless a
//! test breaks it on purpose.

use std::net::{Ipv4Addr, SocketAddrV4};

pub const ETH_LEN: usize = 14;
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
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
    /// Any other protocol, its bytes as given.
    Other {
        proto: u8,
        bytes: Vec<u8>,
    },
}

impl L4 {
    pub fn proto(&self) -> u8 {
        match self {
            L4::Tcp(_) => IPPROTO_TCP,
            L4::Udp(_) => IPPROTO_UDP,
            L4::Icmp(_) => IPPROTO_ICMP,
            L4::Other { proto, .. } => *proto,
        }
    }

    /// The segment or datagram, checksummed for the addresses of `ip`.
    pub fn bytes(&self, ip: &Ip) -> Vec<u8> {
        let pseudo = |proto: u8, len: usize| {
            let mut p = Vec::with_capacity(12);
            p.extend_from_slice(&ip.src.octets());
            p.extend_from_slice(&ip.dst.octets());
            p.extend_from_slice(&[0, proto]);
            p.extend_from_slice(&u16::try_from(len).expect("segment too long").to_be_bytes());
            p
        };
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
            L4::Icmp(i) => {
                let mut b = Vec::with_capacity(8 + i.data.len());
                b.extend_from_slice(&[i.icmp_type, i.code, 0, 0]);
                b.extend_from_slice(&i.rest);
                b.extend_from_slice(&i.data);
                let csum = internet_checksum(&[&b]);
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
        let l4 = match proto {
            IPPROTO_TCP => L4::Tcp(Tcp {
                sport: src.port(),
                dport: dst.port(),
                seq: 1000,
                ack: 0,
                flags: TCP_SYN,
                window: 64240,
                payload: payload.to_vec(),
            }),
            IPPROTO_UDP => L4::Udp(Udp {
                sport: src.port(),
                dport: dst.port(),
                no_checksum: false,
                payload: payload.to_vec(),
            }),
            _ => panic!("no flow frames for protocol {proto}"),
        };
        Self {
            dst_mac: NODE_MAC,
            src_mac: POD_MAC,
            ip: Ip::new(*src.ip(), *dst.ip()),
            l4,
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
