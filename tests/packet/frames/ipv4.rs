//! IPv4 frames: the header with its options and checksum, ARP, and the
//! readers of IPv4 frames.

use std::net::{Ipv4Addr, SocketAddrV4};

use super::frame::{
    ethernet, internet_checksum, Frame, Icmp, IpHeader, ETH_LEN, ETH_P_ARP, L4, POD_MAC,
};

/// IPv4 flags and fragment offset field: don't fragment, more fragments.
pub const IP_DF: u16 = 0x4000;
pub const IP_MF: u16 = 0x2000;

pub const ICMP_ECHO_REPLY: u8 = 0;
pub const ICMP_DEST_UNREACH: u8 = 3;
pub const ICMP_ECHO_REQUEST: u8 = 8;
pub const ICMP_TIME_EXCEEDED: u8 = 11;
pub const ICMP_PORT_UNREACH: u8 = 3;
pub const ICMP_FRAG_NEEDED: u8 = 4;

/// An Ethernet frame carrying an IPv4 packet.
pub type Frame4 = Frame<Ip>;

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
    /// The header length in bytes, options padded.
    pub fn header_len(&self) -> usize {
        assert!(
            self.options.len() <= 40,
            "IPv4 options are at most 40 bytes"
        );
        20 + self.options.len().div_ceil(4) * 4
    }
}

impl IpHeader for Ip {
    type Addr = Ipv4Addr;
    type Sock = SocketAddrV4;
    const ETHERTYPE: u16 = super::ETH_P_IP;

    fn new(src: Ipv4Addr, dst: Ipv4Addr) -> Self {
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

    fn split(sock: SocketAddrV4) -> (Ipv4Addr, u16) {
        (*sock.ip(), sock.port())
    }

    fn header(&self, proto: u8, payload_len: usize) -> Vec<u8> {
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

    fn pseudo_header(&self, proto: u8, len: usize) -> Vec<u8> {
        let mut p = Vec::with_capacity(12);
        p.extend_from_slice(&self.src.octets());
        p.extend_from_slice(&self.dst.octets());
        p.extend_from_slice(&[0, proto]);
        p.extend_from_slice(&u16::try_from(len).expect("segment too long").to_be_bytes());
        p
    }

    fn icmp(icmp: Icmp) -> L4 {
        L4::Icmp(icmp)
    }

    /// Routers send errors without DF, as Linux does.
    fn for_error(&mut self) {
        self.frag = 0;
    }
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
}
