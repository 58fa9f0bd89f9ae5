//! IPv6 segments, datagrams and ICMPv6 errors shaped by random header
//! fields and extension header chains.

use std::net::{Ipv6Addr, SocketAddrV6};

use proptest::{collection::vec, prelude::*, sample::Index};

use super::chains::chain;
use crate::frames::{Ext, Frame6, L4};

#[derive(Clone, Debug)]
pub struct IpParams {
    pub(super) traffic_class: u8,
    pub(super) flow_label: u32,
    pub(super) hop_limit: u8,
    pub(super) ext: Vec<Ext>,
}

pub(super) fn ip_params(ext: impl Strategy<Value = Vec<Ext>>) -> impl Strategy<Value = IpParams> {
    (any::<u8>(), 0u32..0x10_0000, 1..=255u8, ext).prop_map(
        |(traffic_class, flow_label, hop_limit, ext)| IpParams {
            traffic_class,
            flow_label,
            hop_limit,
            ext,
        },
    )
}

pub(super) fn apply_ip(f: &mut Frame6, ip: &IpParams) {
    f.ip.traffic_class = ip.traffic_class;
    f.ip.flow_label = ip.flow_label;
    f.ip.hop_limit = ip.hop_limit;
    f.ip.ext = ip.ext.clone();
}

#[derive(Clone, Debug)]
pub struct Seg {
    pub(super) flags: u8,
    pub(super) seq: u32,
    pub(super) ack: u32,
    pub(super) window: u16,
    /// A zero UDP checksum: not allowed in IPv6, kept zero if it comes.
    pub(super) no_udp_checksum: bool,
    pub(super) payload: Vec<u8>,
    pub(super) ip: IpParams,
}

pub(super) fn seg(ext: impl Strategy<Value = Vec<Ext>>) -> impl Strategy<Value = Seg> {
    (
        any::<u8>(),
        any::<u32>(),
        any::<u32>(),
        any::<u16>(),
        prop::bool::weighted(0.05),
        vec(any::<u8>(), 0..200),
        ip_params(ext),
    )
        .prop_map(
            |(flags, seq, ack, window, no_udp_checksum, payload, ip)| Seg {
                flags,
                seq,
                ack,
                window,
                no_udp_checksum,
                payload,
                ip,
            },
        )
}

/// A TCP segment or UDP datagram shaped by `seg`.
pub(super) fn build(proto: u8, src: SocketAddrV6, dst: SocketAddrV6, seg: &Seg) -> Vec<u8> {
    let mut f = Frame6::flow(proto, src, dst, &seg.payload);
    apply_ip(&mut f, &seg.ip);
    match &mut f.l4 {
        L4::Tcp(t) => {
            t.flags = seg.flags;
            t.seq = seg.seq;
            t.ack = seg.ack;
            t.window = seg.window;
        }
        L4::Udp(u) => u.no_checksum = seg.no_udp_checksum,
        _ => unreachable!("flows are TCP or UDP"),
    }
    f.bytes()
}

#[derive(Clone, Debug)]
pub struct ErrorCase {
    /// Index into `V6::ICMP_ERRORS`.
    pub(super) kind: Index,
    /// How much of the packet is quoted; long values quote all of it.
    pub(super) quote_len: usize,
    pub(super) from_router: bool,
    /// Quote the request with its extension headers (which the datapath
    /// does not walk in a quote), rather than without them.
    pub(super) quote_ext: bool,
    pub(super) ip: IpParams,
}

pub(super) fn error_case() -> impl Strategy<Value = ErrorCase> {
    (
        any::<Index>(),
        prop_oneof![Just(48usize), Just(usize::MAX), 40usize..160],
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.2),
        ip_params(chain(4)),
    )
        .prop_map(|(kind, quote_len, from_router, quote_ext, ip)| ErrorCase {
            kind,
            quote_len,
            from_router,
            quote_ext,
            ip,
        })
}

/// An address in `prefix`/16 with random low bits.
pub(super) fn addr_in(prefix: u16) -> impl Strategy<Value = Ipv6Addr> {
    any::<u128>().prop_map(move |x| Ipv6Addr::from(u128::from(prefix) << 112 | x >> 16))
}
