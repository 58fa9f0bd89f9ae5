//! Unrelated IPv4 frames: other ethertypes, ARP, IPv6 look-alikes, other
//! protocols, TCP and UDP of no frontend, and any ICMP.

use std::net::{Ipv4Addr, SocketAddrV4};

use proptest::{collection::vec, prelude::*, sample::select};

use super::segments::{apply_ip, build, ip_params, seg, IpParams, Seg};
use crate::{
    families::{Family, V4},
    fixtures::frontends,
    frames::{self, Frame4, Icmp, ETH_LEN, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, L4},
};

/// Addresses that matter to the tables, and random ones.
fn addr() -> impl Strategy<Value = Ipv4Addr> {
    let mut known: Vec<Ipv4Addr> = vec![V4::POD_CLIENT, V4::HOST_CLIENT, V4::ROUTER];
    for fe in frontends::<V4>() {
        known.push(*V4::sock_of(fe.addr).ip());
        known.extend(fe.backends.iter().map(|b| *V4::sock_of(*b).ip()));
    }
    prop_oneof![any::<u32>().prop_map(Ipv4Addr::from), select(known)]
}

fn port() -> impl Strategy<Value = u16> {
    let mut known: Vec<u16> = Vec::new();
    for fe in frontends::<V4>() {
        known.push(fe.addr.port());
        known.extend(fe.backends.iter().map(|b| b.port()));
    }
    prop_oneof![any::<u16>(), select(known)]
}

fn endpoint() -> impl Strategy<Value = SocketAddrV4> {
    (addr(), port()).prop_map(|(a, p)| SocketAddrV4::new(a, p))
}

#[derive(Clone, Debug)]
pub enum Noise {
    /// Any ethertype but IPv4, any payload.
    Ethertype {
        ethertype: u16,
        payload: Vec<u8>,
    },
    Arp {
        sender: Ipv4Addr,
        target: Ipv4Addr,
    },
    Ipv6 {
        dst: SocketAddrV4,
        payload: Vec<u8>,
    },
    /// IPv4 of a protocol that is never translated.
    OtherProto {
        proto: u8,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        bytes: Vec<u8>,
        ip: IpParams,
    },
    /// TCP or UDP that belongs to no frontend.
    Flow {
        proto: u8,
        src: SocketAddrV4,
        dst: SocketAddrV4,
        seg: Seg,
    },
    /// Any ICMP message; errors quote a random packet of no flow.
    Icmp {
        src: Ipv4Addr,
        dst: Ipv4Addr,
        icmp_type: u8,
        code: u8,
        rest: [u8; 4],
        quoted: Option<(u8, SocketAddrV4, SocketAddrV4, Seg, usize)>,
        data: Vec<u8>,
        ip: IpParams,
    },
}

fn is_frontend(proto: u8, dst: SocketAddrV4) -> bool {
    frontends::<V4>()
        .iter()
        .any(|f| f.proto == proto && f.addr == dst.into() && !f.backends.is_empty())
}

pub(super) fn noise() -> impl Strategy<Value = Noise> {
    let proto = prop_oneof![Just(IPPROTO_TCP), Just(IPPROTO_UDP)];
    prop_oneof![
        1 => (
            any::<u16>().prop_filter("not IP", |t| ![frames::ETH_P_IP, frames::ETH_P_IPV6].contains(t)),
            vec(any::<u8>(), 0..120),
        )
            .prop_map(|(ethertype, payload)| Noise::Ethertype { ethertype, payload }),
        1 => (addr(), addr()).prop_map(|(sender, target)| Noise::Arp { sender, target }),
        1 => (endpoint(), vec(any::<u8>(), 0..100)).prop_map(|(dst, payload)| Noise::Ipv6 { dst, payload }),
        1 => (
            any::<u8>().prop_filter("not translated", |p| ![IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP].contains(p)),
            addr(),
            addr(),
            vec(any::<u8>(), 0..100),
            ip_params(),
        )
            .prop_map(|(proto, src, dst, bytes, ip)| Noise::OtherProto { proto, src, dst, bytes, ip }),
        4 => (proto.clone(), endpoint(), endpoint(), seg())
            .prop_filter("to no frontend", |(proto, _, dst, _)| !is_frontend(*proto, *dst))
            .prop_map(|(proto, src, dst, seg)| Noise::Flow { proto, src, dst, seg }),
        2 => (
            (addr(), addr(), prop_oneof![any::<u8>(), select(vec![0u8, 3, 8, 11])], any::<u8>(), any::<[u8; 4]>()),
            prop::option::of((proto, endpoint(), endpoint(), seg(), 0usize..100)),
            vec(any::<u8>(), 0..100),
            ip_params(),
        )
            .prop_map(|((src, dst, icmp_type, code, rest), quoted, data, ip)| Noise::Icmp {
                src,
                dst,
                icmp_type,
                code,
                rest,
                quoted,
                data,
                ip,
            }),
    ]
}

impl Noise {
    pub(super) fn bytes(&self) -> Vec<u8> {
        match self {
            Noise::Ethertype { ethertype, payload } => frames::ethernet(*ethertype, payload),
            Noise::Arp { sender, target } => frames::arp_request(*sender, *target),
            Noise::Ipv6 { dst, payload } => frames::ipv6_udp(*dst.ip(), dst.port(), payload),
            Noise::OtherProto {
                proto,
                src,
                dst,
                bytes,
                ip,
            } => {
                let mut f = Frame4::icmp(
                    *src,
                    *dst,
                    Icmp {
                        icmp_type: 0,
                        code: 0,
                        rest: [0; 4],
                        data: vec![],
                    },
                );
                f.l4 = L4::Other {
                    proto: *proto,
                    bytes: bytes.clone(),
                };
                apply_ip(&mut f, ip);
                f.bytes()
            }
            Noise::Flow {
                proto,
                src,
                dst,
                seg,
            } => build(*proto, *src, *dst, seg),
            Noise::Icmp {
                src,
                dst,
                icmp_type,
                code,
                rest,
                quoted,
                data,
                ip,
            } => {
                let data = match quoted {
                    Some((proto, qsrc, qdst, seg, len)) => {
                        let q = build(*proto, *qsrc, *qdst, seg);
                        q[ETH_LEN..(ETH_LEN + len).min(q.len())].to_vec()
                    }
                    None => data.clone(),
                };
                let mut f = Frame4::icmp(
                    *src,
                    *dst,
                    Icmp {
                        icmp_type: *icmp_type,
                        code: *code,
                        rest: *rest,
                        data,
                    },
                );
                apply_ip(&mut f, ip);
                f.bytes()
            }
        }
    }
}
