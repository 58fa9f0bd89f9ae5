//! IPv6's strategies: headers with random traffic class, flow label, hop
//! limit and extension header chains, and the checks that are IPv6's own.

use std::net::{Ipv6Addr, SocketAddrV6};

use proptest::prelude::*;

use super::per_family::{Properties, Run};
use crate::{
    families::{Family, V6},
    frames::{self, read6, Frame6, ETH_LEN, IPPROTO_UDP},
    model::Action,
};

mod chains;
mod mutations;
mod noise;
mod segments;

use chains::chain;
use mutations::Mutation;
use noise::Noise;
use segments::{addr_in, apply_ip, build, error_case, seg, ErrorCase, Seg};

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
