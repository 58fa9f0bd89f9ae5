//! IPv6's strategies: headers with random traffic class, flow label, hop
//! limit and extension header chains, and the checks that are IPv6's own.

use std::net::{Ipv6Addr, SocketAddrV6};

use proptest::{collection::vec, prelude::*, sample::Index};

use super::{Properties, Run};
use crate::{
    family::{Family, V6},
    frames::{self, read6, Ext, Frame6, ETH_LEN, IPPROTO_UDP, L4},
    model::Action,
};

mod chains;
mod mutations;
mod noise;

use chains::chain;
use mutations::Mutation;
use noise::Noise;

#[derive(Clone, Debug)]
pub struct IpParams {
    traffic_class: u8,
    flow_label: u32,
    hop_limit: u8,
    ext: Vec<Ext>,
}

fn ip_params(ext: impl Strategy<Value = Vec<Ext>>) -> impl Strategy<Value = IpParams> {
    (any::<u8>(), 0u32..0x10_0000, 1..=255u8, ext).prop_map(
        |(traffic_class, flow_label, hop_limit, ext)| IpParams {
            traffic_class,
            flow_label,
            hop_limit,
            ext,
        },
    )
}

fn apply_ip(f: &mut Frame6, ip: &IpParams) {
    f.ip.traffic_class = ip.traffic_class;
    f.ip.flow_label = ip.flow_label;
    f.ip.hop_limit = ip.hop_limit;
    f.ip.ext = ip.ext.clone();
}

#[derive(Clone, Debug)]
pub struct Seg {
    flags: u8,
    seq: u32,
    ack: u32,
    window: u16,
    /// A zero UDP checksum: not allowed in IPv6, kept zero if it comes.
    no_udp_checksum: bool,
    payload: Vec<u8>,
    ip: IpParams,
}

fn seg(ext: impl Strategy<Value = Vec<Ext>>) -> impl Strategy<Value = Seg> {
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
fn build(proto: u8, src: SocketAddrV6, dst: SocketAddrV6, seg: &Seg) -> Vec<u8> {
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
    kind: Index,
    /// How much of the packet is quoted; long values quote all of it.
    quote_len: usize,
    from_router: bool,
    /// Quote the request with its extension headers (which the datapath
    /// does not walk in a quote), rather than without them.
    quote_ext: bool,
    ip: IpParams,
}

fn error_case() -> impl Strategy<Value = ErrorCase> {
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
fn addr_in(prefix: u16) -> impl Strategy<Value = Ipv6Addr> {
    any::<u128>().prop_map(move |x| Ipv6Addr::from(u128::from(prefix) << 112 | x >> 16))
}

/// The packet the error quotes: the request as the backend received it,
/// with or without its extension headers.
fn quoted(error: &ErrorCase, sent: &[u8]) -> Vec<u8> {
    if error.quote_ext {
        sent[ETH_LEN..].to_vec()
    } else {
        frames::strip_ext(&sent[ETH_LEN..])
    }
}

/// Whether the error must be translated: its quote holds an IPv6 header
/// directly followed by the ports.
fn error_translatable(error: &ErrorCase, sent: &[u8]) -> bool {
    let quoted = quoted(error, sent);
    let request_proto = read6::upper_layer(&sent[ETH_LEN..]).1;
    quoted[6] == request_proto && error.quote_len.min(quoted.len()) >= 44
}

impl Properties for V6 {
    type Seg = Seg;
    type Error = ErrorCase;
    type Noise = Noise;
    type Mutation = Mutation;

    const UNRELATED: Run = Run {
        cases: 20_000,
        min_frames: 80_000,
    };
    const TRANSLATED: Run = Run {
        cases: 12_000,
        min_frames: 72_000,
    };
    const CLIENT: Run = Run {
        cases: 10_000,
        min_frames: 60_000,
    };
    const MUTATED: Run = Run {
        cases: 20_000,
        min_frames: 50_000,
    };
    const UDP_CHECKSUM_REQUIRED: bool = true;

    fn pod() -> BoxedStrategy<Ipv6Addr> {
        addr_in(0xfd10).boxed()
    }

    fn host() -> BoxedStrategy<Ipv6Addr> {
        prop_oneof![
            Just(V6::HOST_CLIENT),
            any::<u128>().prop_map(Ipv6Addr::from)
        ]
        .boxed()
    }

    fn seg() -> BoxedStrategy<Seg> {
        seg(chain(4)).boxed()
    }

    fn error_case() -> BoxedStrategy<ErrorCase> {
        error_case().boxed()
    }

    fn noise() -> BoxedStrategy<Noise> {
        noise::noise().boxed()
    }

    fn mutation() -> BoxedStrategy<Mutation> {
        mutations::mutation().boxed()
    }

    fn build(proto: u8, src: SocketAddrV6, dst: SocketAddrV6, seg: &Seg) -> Vec<u8> {
        build(proto, src, dst, seg)
    }

    fn error(error: &ErrorCase, sent: &[u8]) -> Vec<u8> {
        let (seen_src, backend) = read6::endpoints(sent);
        let (_, icmp_type, code, rest) = *error.kind.get(V6::ICMP_ERRORS);
        let src = if error.from_router {
            V6::ROUTER
        } else {
            *backend.ip()
        };
        let mut f = Frame6::icmp_error(
            src,
            *seen_src.ip(),
            icmp_type,
            code,
            rest,
            &quoted(error, sent),
            error.quote_len,
        );
        apply_ip(&mut f, &error.ip);
        f.bytes()
    }

    fn from_router(error: &ErrorCase) -> bool {
        error.from_router
    }

    /// Translated exactly when the quote holds the ports right behind the
    /// IPv6 header (the datapath does not walk a quote's extension headers).
    fn check_error_action(error: &ErrorCase, sent: &[u8], action: &Action) -> Result<(), String> {
        ensure!(
            matches!(action, Action::IcmpError { .. }) == error_translatable(error, sent),
            "an error quoting {} bytes, extension headers {}: {action:?}",
            error.quote_len,
            error.quote_ext
        );
        Ok(())
    }

    /// A translated error quotes the ports: its quote is checked whole.
    fn check_quote(
        quote: &[u8],
        client: SocketAddrV6,
        fe: SocketAddrV6,
        _: &[u8],
    ) -> Result<(), String> {
        ensure!(
            read6::endpoints_of_ip(quote) == (client, fe),
            "the error quotes {:?}",
            read6::endpoints_of_ip(quote)
        );
        Ok(())
    }

    fn check_kept(what: &str, input: &[u8], out: &[u8]) -> Result<(), String> {
        ensure!(
            read6::ext(out) == read6::ext(input),
            "the {what}'s extension headers were changed"
        );
        Ok(())
    }

    fn noise_bytes(noise: &Noise) -> Vec<u8> {
        noise.bytes()
    }

    fn mutate(frame: &[u8], mutations: &[Mutation]) -> Vec<u8> {
        mutations::mutate(frame, mutations)
    }

    fn zero_udp_checksum(frame: &[u8]) -> bool {
        let (off, proto) = read6::upper_layer(&frame[ETH_LEN..]);
        proto == IPPROTO_UDP && frame[ETH_LEN + off + 6..ETH_LEN + off + 8] == [0, 0]
    }
}
