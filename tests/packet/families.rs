//! The IP family a scenario runs over: its addresses, the frontends and
//! clients of the standard tables, its ICMP errors, and how its frames are
//! built and read. Scenarios written over `F: Family` run once per family.
//!
//! ```text
//!   IPv4: frontends 192.168.100.10-13  ──▶  backend pods 10.0.1-4.x
//!         pod client 10.0.9.7, host client 192.0.2.2, router 10.255.0.1
//!   IPv6: frontends 2001:db8:f::10-13  ──▶  backend pods fd10:0:1-4::x
//!         pod client fd10:0:9::7, host client 2001:db8:2::2, router fd10:ff::1
//! ```

use std::{
    fmt::{Debug, Display},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6},
};

use crate::{
    frames::{self, read, read6, Frame, Ip, Ip6, IpHeader, ETH_LEN},
    harness::Harness,
    model::Tuple,
};

/// An ICMP error a backend or a router sends: name, type, code, and bytes
/// 4..8 of its header.
pub type IcmpError = (&'static str, u8, u8, [u8; 4]);

pub trait Family: 'static {
    type Addr: Copy + Debug + Display + PartialEq + Into<IpAddr>;
    type Sock: Copy + Debug + Display + PartialEq + Into<SocketAddr>;
    type Ip: IpHeader<Addr = Self::Addr, Sock = Self::Sock>;

    /// The id of the family's first frontend: both families count in one
    /// `FRONTEND_STATS`, so their ids differ.
    const FIRST_ID: u32;

    /// TCP frontend with three backends.
    const WEB: Self::Sock;
    const WEB_BACKENDS: &'static [Self::Sock];
    /// UDP frontend on WEB's address, with two backends.
    const DNS: Self::Sock;
    const DNS_BACKENDS: &'static [Self::Sock];
    /// TCP and UDP frontends on one address and port, with the same
    /// single backend.
    const SOLO: Self::Sock;
    const SOLO_BACKEND: Self::Sock;
    /// A frontend without backends.
    const EMPTY: Self::Sock;
    /// A UDP frontend with weighted slots, one backend shared with WEB.
    const WEIGHTED: Self::Sock;
    const WEIGHTED_BACKENDS: &'static [Self::Sock];
    /// An address of the frontends' range that is no frontend.
    const NOT_A_FRONTEND: Self::Addr;

    const POD_CLIENT: Self::Addr;
    const HOST_CLIENT: Self::Addr;
    const ROUTER: Self::Addr;

    /// The errors about a packet, translated with its flow.
    const ICMP_ERRORS: &'static [IcmpError];
    /// "time exceeded", as a router sends it.
    const TIME_EXCEEDED: u8;
    /// Quote lengths: the whole packet, or its IP header and 8 bytes (RFC
    /// 792, RFC 4443), which hold a UDP checksum but not a TCP one.
    const QUOTES: [(&'static str, usize); 2];
    /// The length of the IP header without options or extension headers.
    const IP_LEN: usize;

    fn sock(ip: Self::Addr, port: u16) -> Self::Sock;

    /// An address of the family's frontends or backends.
    fn sock_of(a: SocketAddr) -> Self::Sock;

    fn ip(sock: Self::Sock) -> Self::Addr {
        Self::Ip::split(sock).0
    }

    fn port(sock: Self::Sock) -> u16 {
        Self::Ip::split(sock).1
    }

    /// Source and destination of a TCP or UDP frame.
    fn endpoints(frame: &[u8]) -> (Self::Sock, Self::Sock);
    /// Source and destination of a TCP or UDP packet (no Ethernet), as far
    /// as its ports are there.
    fn endpoints_of_ip(ip: &[u8]) -> (Self::Sock, Self::Sock);
    fn src(frame: &[u8]) -> Self::Addr;
    fn dst(frame: &[u8]) -> Self::Addr;
    /// The upper-layer bytes of a frame.
    fn l4(frame: &[u8]) -> &[u8];
    /// The protocol of a frame's upper layer.
    fn proto(frame: &[u8]) -> u8;

    /// The quoted packet of an ICMP error frame.
    fn quote(frame: &[u8]) -> &[u8] {
        &Self::l4(frame)[8..]
    }

    /// Whether the conntrack map of the family holds `t`.
    fn in_conntrack(h: &Harness, t: &Tuple) -> bool;
}

/// A TCP segment (a bare SYN) or UDP datagram of the family, from a pod.
pub fn flow<F: Family>(proto: u8, src: F::Sock, dst: F::Sock, payload: &[u8]) -> Frame<F::Ip> {
    Frame::flow(proto, src, dst, payload)
}

/// The tuple of a frame as its header and first upper-layer bytes read.
pub fn tuple_of<F: Family>(frame: &[u8]) -> Tuple {
    let (src, dst) = F::endpoints(frame);
    Tuple::new(F::proto(frame), src, dst)
}

#[derive(Clone, Copy, Debug)]
pub struct V4;

const fn sa(a: [u8; 4], port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(a[0], a[1], a[2], a[3]), port)
}

impl Family for V4 {
    type Addr = Ipv4Addr;
    type Sock = SocketAddrV4;
    type Ip = Ip;

    const FIRST_ID: u32 = 0;
    const WEB: SocketAddrV4 = sa([192, 168, 100, 10], 80);
    const WEB_BACKENDS: &'static [SocketAddrV4] = &[
        sa([10, 0, 1, 1], 8080),
        sa([10, 0, 1, 2], 8080),
        sa([10, 0, 1, 3], 8081),
    ];
    const DNS: SocketAddrV4 = sa([192, 168, 100, 10], 53);
    const DNS_BACKENDS: &'static [SocketAddrV4] = &[sa([10, 0, 2, 1], 5353), sa([10, 0, 2, 2], 53)];
    const SOLO: SocketAddrV4 = sa([192, 168, 100, 11], 443);
    const SOLO_BACKEND: SocketAddrV4 = sa([10, 0, 3, 1], 8443);
    const EMPTY: SocketAddrV4 = sa([192, 168, 100, 12], 80);
    const WEIGHTED: SocketAddrV4 = sa([192, 168, 100, 13], 8080);
    const WEIGHTED_BACKENDS: &'static [SocketAddrV4] = &[
        sa([10, 0, 4, 1], 80),
        sa([10, 0, 4, 1], 80),
        sa([10, 0, 4, 2], 80),
        sa([10, 0, 1, 1], 8080),
    ];
    const NOT_A_FRONTEND: Ipv4Addr = Ipv4Addr::new(192, 168, 100, 99);

    const POD_CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 9, 7);
    const HOST_CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
    const ROUTER: Ipv4Addr = Ipv4Addr::new(10, 255, 0, 1);

    const ICMP_ERRORS: &'static [IcmpError] = &[
        (
            "port unreachable",
            frames::ICMP_DEST_UNREACH,
            frames::ICMP_PORT_UNREACH,
            [0; 4],
        ),
        (
            "fragmentation needed",
            frames::ICMP_DEST_UNREACH,
            frames::ICMP_FRAG_NEEDED,
            [0, 0, 0x05, 0x78],
        ),
        ("TTL exceeded", frames::ICMP_TIME_EXCEEDED, 0, [0; 4]),
    ];
    const TIME_EXCEEDED: u8 = frames::ICMP_TIME_EXCEEDED;
    const QUOTES: [(&'static str, usize); 2] = [("whole", usize::MAX), ("header and 8 bytes", 28)];
    const IP_LEN: usize = 20;

    fn sock(ip: Ipv4Addr, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(ip, port)
    }

    fn sock_of(a: SocketAddr) -> SocketAddrV4 {
        match a {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(a) => panic!("{a} among the IPv4 frontends"),
        }
    }

    fn endpoints(frame: &[u8]) -> (SocketAddrV4, SocketAddrV4) {
        read::endpoints(frame)
    }

    fn endpoints_of_ip(ip: &[u8]) -> (SocketAddrV4, SocketAddrV4) {
        read::endpoints_of_ip(ip)
    }

    fn src(frame: &[u8]) -> Ipv4Addr {
        read::src(frame)
    }

    fn dst(frame: &[u8]) -> Ipv4Addr {
        read::dst(frame)
    }

    fn l4(frame: &[u8]) -> &[u8] {
        read::l4(frame)
    }

    fn proto(frame: &[u8]) -> u8 {
        frame[ETH_LEN + 9]
    }

    fn in_conntrack(h: &Harness, t: &Tuple) -> bool {
        h.ct(t).is_some()
    }
}

#[derive(Clone, Copy, Debug)]
pub struct V6;

const fn sa6(a: [u16; 8], port: u16) -> SocketAddrV6 {
    SocketAddrV6::new(
        Ipv6Addr::new(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]),
        port,
        0,
        0,
    )
}

impl Family for V6 {
    type Addr = Ipv6Addr;
    type Sock = SocketAddrV6;
    type Ip = Ip6;

    const FIRST_ID: u32 = 6;
    const WEB: SocketAddrV6 = sa6([0x2001, 0xdb8, 0xf, 0, 0, 0, 0, 0x10], 80);
    const WEB_BACKENDS: &'static [SocketAddrV6] = &[
        sa6([0xfd10, 0, 1, 0, 0, 0, 0, 1], 8080),
        sa6([0xfd10, 0, 1, 0, 0, 0, 0, 2], 8080),
        sa6([0xfd10, 0, 1, 0, 0, 0, 0, 3], 8081),
    ];
    const DNS: SocketAddrV6 = sa6([0x2001, 0xdb8, 0xf, 0, 0, 0, 0, 0x10], 53);
    const DNS_BACKENDS: &'static [SocketAddrV6] = &[
        sa6([0xfd10, 0, 2, 0, 0, 0, 0, 1], 5353),
        sa6([0xfd10, 0, 2, 0, 0, 0, 0, 2], 53),
    ];
    const SOLO: SocketAddrV6 = sa6([0x2001, 0xdb8, 0xf, 0, 0, 0, 0, 0x11], 443);
    const SOLO_BACKEND: SocketAddrV6 = sa6([0xfd10, 0, 3, 0, 0, 0, 0, 1], 8443);
    const EMPTY: SocketAddrV6 = sa6([0x2001, 0xdb8, 0xf, 0, 0, 0, 0, 0x12], 80);
    const WEIGHTED: SocketAddrV6 = sa6([0x2001, 0xdb8, 0xf, 0, 0, 0, 0, 0x13], 8080);
    const WEIGHTED_BACKENDS: &'static [SocketAddrV6] = &[
        sa6([0xfd10, 0, 4, 0, 0, 0, 0, 1], 80),
        sa6([0xfd10, 0, 4, 0, 0, 0, 0, 1], 80),
        sa6([0xfd10, 0, 4, 0, 0, 0, 0, 2], 80),
        sa6([0xfd10, 0, 1, 0, 0, 0, 0, 1], 8080),
    ];
    const NOT_A_FRONTEND: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xf, 0, 0, 0, 0, 0x99);

    const POD_CLIENT: Ipv6Addr = Ipv6Addr::new(0xfd10, 0, 9, 0, 0, 0, 0, 7);
    const HOST_CLIENT: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 2);
    const ROUTER: Ipv6Addr = Ipv6Addr::new(0xfd10, 0xff, 0, 0, 0, 0, 0, 1);

    const ICMP_ERRORS: &'static [IcmpError] = &[
        (
            "port unreachable",
            frames::ICMPV6_DEST_UNREACH,
            frames::ICMPV6_PORT_UNREACH,
            [0; 4],
        ),
        (
            "address unreachable",
            frames::ICMPV6_DEST_UNREACH,
            frames::ICMPV6_ADDR_UNREACH,
            [0; 4],
        ),
        (
            "packet too big",
            frames::ICMPV6_PKT_TOOBIG,
            0,
            [0, 0, 0x05, 0x00],
        ),
        ("hop limit exceeded", frames::ICMPV6_TIME_EXCEED, 0, [0; 4]),
    ];
    const TIME_EXCEEDED: u8 = frames::ICMPV6_TIME_EXCEED;
    const QUOTES: [(&'static str, usize); 2] = [("whole", usize::MAX), ("header and 8 bytes", 48)];
    const IP_LEN: usize = 40;

    fn sock(ip: Ipv6Addr, port: u16) -> SocketAddrV6 {
        SocketAddrV6::new(ip, port, 0, 0)
    }

    fn sock_of(a: SocketAddr) -> SocketAddrV6 {
        match a {
            SocketAddr::V6(a) => a,
            SocketAddr::V4(a) => panic!("{a} among the IPv6 frontends"),
        }
    }

    fn endpoints(frame: &[u8]) -> (SocketAddrV6, SocketAddrV6) {
        read6::endpoints(frame)
    }

    fn endpoints_of_ip(ip: &[u8]) -> (SocketAddrV6, SocketAddrV6) {
        read6::endpoints_of_ip(ip)
    }

    fn src(frame: &[u8]) -> Ipv6Addr {
        read6::src(frame)
    }

    fn dst(frame: &[u8]) -> Ipv6Addr {
        read6::dst(frame)
    }

    fn l4(frame: &[u8]) -> &[u8] {
        read6::l4(frame)
    }

    fn proto(frame: &[u8]) -> u8 {
        read6::upper_layer(&frame[ETH_LEN..]).1
    }

    fn in_conntrack(h: &Harness, t: &Tuple) -> bool {
        h.ct6(t).is_some()
    }
}
