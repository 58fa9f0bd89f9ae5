//! IPv4's strategies: headers with random options, TOS, TTL and DF, and
//! the checks that are IPv4's own.

use std::net::{Ipv4Addr, SocketAddrV4};

use proptest::prelude::*;

use super::per_family::{Properties, Run};
use crate::{
    families::{Family, V4},
    frames::{read, Frame4, ETH_LEN, IPPROTO_UDP},
    model::Action,
};

mod mutations;
mod noise;
mod segments;

use mutations::Mutation;
use noise::Noise;
use segments::{apply_ip, build, error_case, seg, ErrorCase, Seg};

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
