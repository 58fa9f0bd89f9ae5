//! Frame building shared by the families: Ethernet, the upper layers and
//! their checksums, and `IpHeader`, what a family adds.

use std::fmt::Debug;

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

/// What a family's network header brings to a frame: its ethertype, its
/// bytes, the pseudo-header of its upper-layer checksums, its ICMP.
pub trait IpHeader: Clone + Debug + PartialEq + Eq {
    type Addr: Copy;
    /// An address and port of the family.
    type Sock: Copy;
    const ETHERTYPE: u16;

    fn new(src: Self::Addr, dst: Self::Addr) -> Self;

    fn split(sock: Self::Sock) -> (Self::Addr, u16);

    /// The header (and anything between it and the upper layer) for an
    /// upper-layer packet of `payload_len` bytes of protocol `proto`.
    fn header(&self, proto: u8, payload_len: usize) -> Vec<u8>;

    /// The pseudo-header of an upper-layer packet of `len` bytes.
    fn pseudo_header(&self, proto: u8, len: usize) -> Vec<u8>;

    /// The family's ICMP message.
    fn icmp(icmp: Icmp) -> L4;

    /// Makes the header one of an ICMP error.
    fn for_error(&mut self) {}
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

    /// The bytes, checksummed for the addresses of the header `ip`.
    pub fn bytes(&self, ip: &impl IpHeader) -> Vec<u8> {
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
                let csum = internet_checksum(&[&ip.pseudo_header(IPPROTO_TCP, b.len()), &b]);
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
                    let csum = match internet_checksum(&[&ip.pseudo_header(IPPROTO_UDP, len), &b]) {
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
                    internet_checksum(&[&ip.pseudo_header(IPPROTO_ICMPV6, b.len()), &b])
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

/// An Ethernet frame carrying an IP packet of the family of `H`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame<H> {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub ip: H,
    pub l4: L4,
}

impl<H: IpHeader> Frame<H> {
    /// A frame from a pod's side of its veth.
    pub fn new(ip: H, l4: L4) -> Self {
        Self {
            dst_mac: NODE_MAC,
            src_mac: POD_MAC,
            ip,
            l4,
        }
    }

    /// A TCP segment (a bare SYN) or UDP datagram (`proto`) from `src` to
    /// `dst`, sent by a pod.
    pub fn flow(proto: u8, src: H::Sock, dst: H::Sock, payload: &[u8]) -> Self {
        let ((src, sport), (dst, dport)) = (H::split(src), H::split(dst));
        Self::new(H::new(src, dst), L4::flow(proto, sport, dport, payload))
    }

    /// An ICMP (or ICMPv6) message from `src` to `dst`.
    pub fn icmp(src: H::Addr, dst: H::Addr, icmp: Icmp) -> Self {
        Self::new(H::new(src, dst), H::icmp(icmp))
    }

    /// An ICMP error of `icmp_type`/`code` from `src` about `quoted` (an IP
    /// packet without Ethernet), of which the first `quote_len` bytes are
    /// quoted (all of it if shorter).
    pub fn icmp_error(
        src: H::Addr,
        dst: H::Addr,
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
        f.ip.for_error();
        f
    }

    /// Sets the TCP flags; no effect on other protocols.
    pub fn with_tcp_flags(mut self, flags: u8) -> Self {
        if let L4::Tcp(t) = &mut self.l4 {
            t.flags = flags;
        }
        self
    }

    /// Sets a UDP datagram's checksum to zero ("none").
    pub fn without_udp_checksum(mut self) -> Self {
        let L4::Udp(u) = &mut self.l4 else {
            panic!("not UDP")
        };
        u.no_checksum = true;
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
        f.extend_from_slice(&H::ETHERTYPE.to_be_bytes());
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

/// The MAC addresses of a frame: destination, source.
pub fn macs(frame: &[u8]) -> ([u8; 6], [u8; 6]) {
    (
        frame[..6].try_into().unwrap(),
        frame[6..12].try_into().unwrap(),
    )
}
