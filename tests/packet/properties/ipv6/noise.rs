//! Unrelated IPv6 frames: TCP and UDP of no frontend or whose ports are
//! hidden, jumbograms, other protocols, and any ICMPv6.

use std::net::{Ipv6Addr, SocketAddrV6};

use proptest::{collection::vec, prelude::*, sample::select};

use super::{
    chains::{any_chain, chain},
    segments::{apply_ip, build, ip_params, seg, IpParams, Seg},
};
use crate::{
    families::{Family, V6},
    fixtures::{frontends, standard_tables},
    frames::{
        self, Ext, Frame6, Icmp, ETH_LEN, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, L4,
        NEXTHDR_DEST, NEXTHDR_FRAGMENT, NEXTHDR_HOP, NEXTHDR_ROUTING,
    },
};

/// Addresses that matter to the tables (the IPv4 ones mapped into IPv6
/// among them), and random ones.
fn addr() -> impl Strategy<Value = Ipv6Addr> {
    let mut known: Vec<Ipv6Addr> = vec![V6::POD_CLIENT, V6::HOST_CLIENT, V6::ROUTER];
    for fe in standard_tables().frontends {
        for a in std::iter::once(fe.addr).chain(fe.backends) {
            known.push(match a.ip() {
                std::net::IpAddr::V4(a) => a.to_ipv6_mapped(),
                std::net::IpAddr::V6(a) => a,
            });
        }
    }
    prop_oneof![any::<u128>().prop_map(Ipv6Addr::from), select(known)]
}

fn port() -> impl Strategy<Value = u16> {
    let mut known: Vec<u16> = Vec::new();
    for fe in frontends::<V6>() {
        known.push(fe.addr.port());
        known.extend(fe.backends.iter().map(|b| b.port()));
    }
    prop_oneof![any::<u16>(), select(known)]
}

fn endpoint() -> impl Strategy<Value = SocketAddrV6> {
    (addr(), port()).prop_map(|(a, p)| SocketAddrV6::new(a, p, 0, 0))
}

fn is_frontend(proto: u8, dst: SocketAddrV6) -> bool {
    frontends::<V6>()
        .iter()
        .any(|f| f.proto == proto && f.addr == dst.into() && !f.backends.is_empty())
}

/// Whether the datapath cannot read the ports behind `ext`: a fragment
/// header among the four headers it walks, or a fifth header.
fn hides_ports(ext: &[Ext]) -> bool {
    ext.len() > 4 || ext.iter().any(|e| e.code() == frames::NEXTHDR_FRAGMENT)
}

#[derive(Clone, Debug)]
pub enum Noise {
    /// TCP or UDP to no frontend, or whose ports are hidden (behind a
    /// fragment header or five extension headers).
    Flow {
        proto: u8,
        src: SocketAddrV6,
        dst: SocketAddrV6,
        seg: Seg,
    },
    /// A jumbogram: payload length zero, a jumbo payload option.
    Jumbogram {
        proto: u8,
        src: SocketAddrV6,
        dst: SocketAddrV6,
        seg: Seg,
    },
    /// A protocol that is never translated.
    OtherProto {
        next: u8,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        bytes: Vec<u8>,
        ip: IpParams,
    },
    /// Any ICMPv6 message; errors quote a random packet of no flow.
    Icmp {
        src: Ipv6Addr,
        dst: Ipv6Addr,
        icmp_type: u8,
        code: u8,
        rest: [u8; 4],
        quoted: Option<(u8, SocketAddrV6, SocketAddrV6, Seg, usize)>,
        data: Vec<u8>,
        ip: IpParams,
    },
}

pub(super) fn noise() -> impl Strategy<Value = Noise> {
    let proto = prop_oneof![Just(IPPROTO_TCP), Just(IPPROTO_UDP)];
    let icmp_types = select(vec![
        1u8,
        2,
        3,
        4,
        frames::ICMPV6_ECHO_REQUEST,
        frames::ICMPV6_ECHO_REPLY,
        frames::ICMPV6_ROUTER_SOLICIT,
        frames::ICMPV6_ROUTER_ADVERT,
        frames::ICMPV6_NEIGH_SOLICIT,
        frames::ICMPV6_NEIGH_ADVERT,
        frames::ICMPV6_REDIRECT,
    ]);
    prop_oneof![
        4 => (proto.clone(), endpoint(), endpoint(), seg(any_chain()))
            .prop_filter("to no frontend, or hidden", |(proto, _, dst, seg)| {
                !is_frontend(*proto, *dst) || hides_ports(&seg.ip.ext)
            })
            .prop_map(|(proto, src, dst, seg)| Noise::Flow { proto, src, dst, seg }),
        1 => (proto.clone(), endpoint(), endpoint(), seg(chain(3)))
            .prop_map(|(proto, src, dst, seg)| Noise::Jumbogram { proto, src, dst, seg }),
        1 => (
            any::<u8>().prop_filter("not walked or translated", |p| {
                ![NEXTHDR_HOP, NEXTHDR_ROUTING, NEXTHDR_FRAGMENT, NEXTHDR_DEST,
                  IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6].contains(p)
            }),
            addr(),
            addr(),
            vec(any::<u8>(), 0..100),
            ip_params(any_chain()),
        )
            .prop_map(|(next, src, dst, bytes, ip)| Noise::OtherProto { next, src, dst, bytes, ip }),
        2 => (
            (addr(), addr(), prop_oneof![any::<u8>(), icmp_types], any::<u8>(), any::<[u8; 4]>()),
            prop::option::of((proto, endpoint(), endpoint(), seg(chain(4)), 0usize..140)),
            vec(any::<u8>(), 0..100),
            ip_params(any_chain()),
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
            Noise::Flow {
                proto,
                src,
                dst,
                seg,
            } => build(*proto, *src, *dst, seg),
            Noise::Jumbogram {
                proto,
                src,
                dst,
                seg,
            } => {
                let mut seg = seg.clone();
                let mut ext = vec![Ext::HopByHop(vec![0xc2, 4, 0, 1, 0, 0])];
                ext.extend(seg.ip.ext.into_iter().filter(|e| e.code() != NEXTHDR_HOP));
                seg.ip.ext = ext;
                let mut f = build(*proto, *src, *dst, &seg);
                f[ETH_LEN + 4..ETH_LEN + 6].fill(0);
                f
            }
            Noise::OtherProto {
                next,
                src,
                dst,
                bytes,
                ip,
            } => {
                let mut f = Frame6 {
                    l4: L4::Other {
                        proto: *next,
                        bytes: bytes.clone(),
                    },
                    ..Frame6::icmp(
                        *src,
                        *dst,
                        Icmp {
                            icmp_type: 0,
                            code: 0,
                            rest: [0; 4],
                            data: vec![],
                        },
                    )
                };
                apply_ip(&mut f, ip);
                f.bytes()
            }
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
                let mut f = Frame6::icmp(
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
