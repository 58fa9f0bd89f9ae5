//! IPv4's strategies: headers with random options, TOS, TTL and DF, and
//! the checks that are IPv4's own.

use std::net::{Ipv4Addr, SocketAddrV4};

use proptest::{collection::vec, prelude::*, sample::Index};

use super::{Properties, Run};
use crate::{
    family::{Family, V4},
    frames::{read, Frame4, ETH_LEN, IPPROTO_UDP, IP_DF, L4},
    model::Action,
};

mod mutations;
mod noise;

use mutations::Mutation;
use noise::Noise;

#[derive(Clone, Debug)]
pub struct IpParams {
    tos: u8,
    ttl: u8,
    id: u16,
    df: bool,
    options: Vec<u8>,
}

/// IPv4 options: none, NOPs ended by EOL, or random bytes (padded with EOL
/// by the builder); the datapath must not care which.
fn options() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => Just(Vec::new()),
        1 => (1usize..=39).prop_map(|n| [vec![1u8; n], vec![0]].concat()),
        1 => vec(any::<u8>(), 1..=40),
    ]
}

fn ip_params() -> impl Strategy<Value = IpParams> {
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
    flags: u8,
    seq: u32,
    ack: u32,
    window: u16,
    no_udp_checksum: bool,
    payload: Vec<u8>,
    ip: IpParams,
}

fn seg() -> impl Strategy<Value = Seg> {
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

fn apply_ip(f: &mut Frame4, ip: &IpParams) {
    f.ip.tos = ip.tos;
    f.ip.ttl = ip.ttl;
    f.ip.id = ip.id;
    f.ip.frag = if ip.df { IP_DF } else { 0 };
    f.ip.options = ip.options.clone();
}

/// A TCP segment or UDP datagram shaped by `seg`.
fn build(proto: u8, src: SocketAddrV4, dst: SocketAddrV4, seg: &Seg) -> Vec<u8> {
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
    kind: Index,
    /// How much of the packet is quoted; long values quote all of it.
    quote_len: usize,
    from_router: bool,
    ip: IpParams,
}

fn error_case() -> impl Strategy<Value = ErrorCase> {
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

impl Properties for V4 {
    type Seg = Seg;
    type Error = ErrorCase;
    type Noise = Noise;
    type Mutation = Mutation;

    const UNRELATED: Run = Run {
        cases: 25_000,
        min_frames: 100_000,
    };
    const TRANSLATED: Run = Run {
        cases: 25_000,
        min_frames: 150_000,
    };
    const CLIENT: Run = Run {
        cases: 10_000,
        min_frames: 60_000,
    };
    const MUTATED: Run = Run {
        cases: 50_000,
        min_frames: 125_000,
    };
    const UDP_CHECKSUM_REQUIRED: bool = false;

    fn pod() -> BoxedStrategy<Ipv4Addr> {
        any::<u32>()
            .prop_map(|x| Ipv4Addr::from(0x0a00_0000 | (x & 0x00ff_ffff)))
            .boxed()
    }

    fn host() -> BoxedStrategy<Ipv4Addr> {
        prop_oneof![Just(V4::HOST_CLIENT), any::<u32>().prop_map(Ipv4Addr::from)].boxed()
    }

    fn seg() -> BoxedStrategy<Seg> {
        seg().boxed()
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

    fn build(proto: u8, src: SocketAddrV4, dst: SocketAddrV4, seg: &Seg) -> Vec<u8> {
        build(proto, src, dst, seg)
    }

    fn error(error: &ErrorCase, sent: &[u8]) -> Vec<u8> {
        let (seen_src, backend) = read::endpoints(sent);
        let (_, icmp_type, code, rest) = *error.kind.get(V4::ICMP_ERRORS);
        let src = if error.from_router {
            V4::ROUTER
        } else {
            *backend.ip()
        };
        let mut f = Frame4::icmp_error(
            src,
            *seen_src.ip(),
            icmp_type,
            code,
            rest,
            &sent[ETH_LEN..],
            error.quote_len,
        );
        apply_ip(&mut f, &error.ip);
        f.bytes()
    }

    fn from_router(error: &ErrorCase) -> bool {
        error.from_router
    }

    /// An error quoting the IP header and the ports must be translated.
    fn check_error_action(error: &ErrorCase, sent: &[u8], action: &Action) -> Result<(), String> {
        if error.quote_len >= read::ihl(sent) + 4 {
            ensure!(
                matches!(action, Action::IcmpError { .. }),
                "an error quoting {} bytes was not translated",
                error.quote_len
            );
        }
        Ok(())
    }

    /// The quoted addresses always, the ports when they are quoted.
    fn check_quote(
        quote: &[u8],
        client: SocketAddrV4,
        fe: SocketAddrV4,
        request: &[u8],
    ) -> Result<(), String> {
        let q_src = Ipv4Addr::from(<[u8; 4]>::try_from(&quote[12..16]).unwrap());
        let q_dst = Ipv4Addr::from(<[u8; 4]>::try_from(&quote[16..20]).unwrap());
        ensure!(
            (q_src, q_dst) == (*client.ip(), *fe.ip()),
            "the error quotes {q_src} -> {q_dst}"
        );
        if quote.len() >= read::ihl(request) + 4 {
            ensure!(
                read::endpoints_of_ip(quote) == (client, fe),
                "the error quotes {:?}",
                read::endpoints_of_ip(quote)
            );
        }
        Ok(())
    }

    /// Options are checked against the model byte for byte already.
    fn check_kept(_: &str, _: &[u8], _: &[u8]) -> Result<(), String> {
        Ok(())
    }

    fn noise_bytes(noise: &Noise) -> Vec<u8> {
        noise.bytes()
    }

    fn mutate(frame: &[u8], mutations: &[Mutation]) -> Vec<u8> {
        mutations::mutate(frame, mutations)
    }

    fn zero_udp_checksum(frame: &[u8]) -> bool {
        frame[ETH_LEN + 9] == IPPROTO_UDP && read::l4(frame)[6..8] == [0, 0]
    }
}
