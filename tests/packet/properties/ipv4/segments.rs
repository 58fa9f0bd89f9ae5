//! IPv4 segments, datagrams and ICMP errors shaped by random header fields
//! and options.

use std::net::SocketAddrV4;

use proptest::{collection::vec, prelude::*, sample::Index};

use crate::frames::{Frame4, IP_DF, L4};

#[derive(Clone, Debug)]
pub struct IpParams {
    pub(super) tos: u8,
    pub(super) ttl: u8,
    pub(super) id: u16,
    pub(super) df: bool,
    pub(super) options: Vec<u8>,
}

/// IPv4 options: none, NOPs ended by EOL, or random bytes (padded with EOL
/// by the builder); the datapath must not care which.
pub(super) fn options() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => Just(Vec::new()),
        1 => (1usize..=39).prop_map(|n| [vec![1u8; n], vec![0]].concat()),
        1 => vec(any::<u8>(), 1..=40),
    ]
}

pub(super) fn ip_params() -> impl Strategy<Value = IpParams> {
    (
        any::<u8>(),
        1..=255u8,
        any::<u16>(),
        any::<bool>(),
        options(),
    )
        .prop_map(|(tos, ttl, id, df, options)| IpParams {
            tos,
            ttl,
            id,
            df,
            options,
        })
}

#[derive(Clone, Debug)]
pub struct Seg {
    pub(super) flags: u8,
    pub(super) seq: u32,
    pub(super) ack: u32,
    pub(super) window: u16,
    pub(super) no_udp_checksum: bool,
    pub(super) payload: Vec<u8>,
    pub(super) ip: IpParams,
}

pub(super) fn seg() -> impl Strategy<Value = Seg> {
    (
        any::<u8>(),
        any::<u32>(),
        any::<u32>(),
        any::<u16>(),
        prop::bool::weighted(0.2),
        vec(any::<u8>(), 0..200),
        ip_params(),
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

pub(super) fn apply_ip(f: &mut Frame4, ip: &IpParams) {
    f.ip.tos = ip.tos;
    f.ip.ttl = ip.ttl;
    f.ip.id = ip.id;
    f.ip.frag = if ip.df { IP_DF } else { 0 };
    f.ip.options = ip.options.clone();
}

/// A TCP segment or UDP datagram shaped by `seg`.
pub(super) fn build(proto: u8, src: SocketAddrV4, dst: SocketAddrV4, seg: &Seg) -> Vec<u8> {
    let mut f = Frame4::flow(proto, src, dst, &seg.payload);
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
    /// Index into `ICMP_ERRORS`.
    pub(super) kind: Index,
    /// How much of the packet is quoted; long values quote all of it.
    pub(super) quote_len: usize,
    pub(super) from_router: bool,
    pub(super) ip: IpParams,
}

pub(super) fn error_case() -> impl Strategy<Value = ErrorCase> {
    (
        any::<Index>(),
        prop_oneof![Just(28usize), Just(usize::MAX), 20usize..120],
        prop::bool::weighted(0.2),
        ip_params(),
    )
        .prop_map(|(kind, quote_len, from_router, ip)| ErrorCase {
            kind,
            quote_len,
            from_router,
            ip,
        })
}
