//! ICMP that is no error about a flow: echo, redirects, neighbour
//! discovery, errors quoting what is no flow's packet. It passes
//! bit-identical, and no error is counted as translated.

use std::net::{Ipv4Addr, Ipv6Addr};

use hairpin_common::Counter;

use crate::{
    checks::{assert_untouched_everywhere, check_counters},
    families::{flow, Family, V4, V6},
    fixtures::standard_tables,
    frames::{self, Ext, Frame4, Frame6, Icmp, ETH_LEN, IPPROTO_UDP, POD_MAC},
    harness::Harness,
    model::Hook,
    require_privileged,
};

family_tests!(
    v4: [icmp_that_is_not_an_error_or_quotes_an_unknown_flow_passes_bit_identical]
    v6: [neighbour_discovery_echo_and_other_icmpv6_pass_bit_identical]
);

fn icmp_that_is_not_an_error_or_quotes_an_unknown_flow_passes_bit_identical() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    let client = V4::sock(V4::POD_CLIENT, 40008);
    let sent = h
        .expect_step(
            Hook::PodIngress,
            &flow::<V4>(IPPROTO_UDP, client, V4::SOLO, b"q").bytes(),
        )
        .out;
    let quoted = &sent[frames::ETH_LEN..];
    let unknown = flow::<V4>(
        IPPROTO_UDP,
        V4::sock(V4::POD_CLIENT, 40009),
        V4::SOLO_BACKEND,
        b"q",
    )
    .ip_packet();
    let icmp_about_flow = Frame4::icmp(
        V4::POD_CLIENT,
        *V4::SOLO_BACKEND.ip(),
        Icmp {
            icmp_type: frames::ICMP_ECHO_REQUEST,
            code: 0,
            rest: [0; 4],
            data: vec![],
        },
    )
    .ip_packet();
    let from_backend = |icmp_type: u8, code: u8, quote: &[u8], len: usize| {
        Frame4::icmp_error(
            *V4::SOLO_BACKEND.ip(),
            V4::POD_CLIENT,
            icmp_type,
            code,
            [0; 4],
            quote,
            len,
        )
        .bytes()
    };
    let mut bad_version = quoted.to_vec();
    bad_version[0] = 0x65;
    let mut bad_ihl = quoted.to_vec();
    bad_ihl[0] = 0x44;
    let cases = [
        (
            "an echo reply quoting a flow's packet",
            from_backend(frames::ICMP_ECHO_REPLY, 0, quoted, 28),
        ),
        (
            "a redirect quoting a flow's packet",
            from_backend(5, 1, quoted, 28),
        ),
        (
            "a parameter problem quoting a flow's packet",
            from_backend(12, 0, quoted, 28),
        ),
        (
            "an error quoting an unknown flow",
            from_backend(3, 3, &unknown, 28),
        ),
        (
            "an error quoting an ICMP packet",
            from_backend(3, 3, &icmp_about_flow, 28),
        ),
        (
            "an error quoting the IP header only",
            from_backend(3, 3, quoted, 20),
        ),
        (
            "an error quoting the ports cut short",
            from_backend(3, 3, quoted, 23),
        ),
        (
            "an error quoting a bad IP version",
            from_backend(3, 3, &bad_version, 28),
        ),
        (
            "an error quoting a bad IHL",
            from_backend(3, 3, &bad_ihl, 28),
        ),
    ];
    for (what, frame) in &cases {
        assert_untouched_everywhere(&mut h, frame, what);
    }
    assert_eq!(
        h.counter(Counter::IcmpTranslated),
        0,
        "no error was translated"
    );
    check_counters(&h);
}

/// An ICMPv6 message from the backend to the pod client.
fn icmp6_from_backend(icmp_type: u8, code: u8, rest: [u8; 4], data: Vec<u8>) -> Vec<u8> {
    Frame6::icmp(
        *V6::SOLO_BACKEND.ip(),
        V6::POD_CLIENT,
        Icmp {
            icmp_type,
            code,
            rest,
            data,
        },
    )
    .bytes()
}

fn neighbour_discovery_echo_and_other_icmpv6_pass_bit_identical() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    let client = V6::sock(V6::POD_CLIENT, 40009);
    let sent = h
        .expect_step(
            Hook::PodIngress,
            &flow::<V6>(IPPROTO_UDP, client, V6::SOLO, b"q").bytes(),
        )
        .out;
    let quoted = sent[ETH_LEN..].to_vec();
    let q = |len: usize| quoted[..len.min(quoted.len())].to_vec();
    let unknown = flow::<V6>(
        IPPROTO_UDP,
        V6::sock(V6::POD_CLIENT, 40010),
        V6::SOLO_BACKEND,
        b"q",
    )
    .ip_packet();
    let icmp_about_flow = Frame6::icmp(
        V6::POD_CLIENT,
        *V6::SOLO_BACKEND.ip(),
        Icmp {
            icmp_type: frames::ICMPV6_ECHO_REQUEST,
            code: 0,
            rest: [0; 4],
            data: vec![],
        },
    )
    .ip_packet();
    let mut bad_version = quoted.clone();
    bad_version[0] = 0x46;
    let with_ext = frames::Frame6::flow(IPPROTO_UDP, client, V6::SOLO_BACKEND, b"q")
        .with_ext(vec![Ext::HopByHop(vec![])])
        .ip_packet();
    assert_eq!(
        V6::endpoints_of_ip(&with_ext),
        V6::endpoints(&sent),
        "the quote with extension headers is of the flow"
    );
    // Neighbour discovery (RFC 4861) about the addresses of the tables.
    let target = |addr: Ipv6Addr, option: &[u8]| {
        let mut d = addr.octets().to_vec();
        d.extend_from_slice(option);
        d
    };
    let mac_option = |kind: u8| [&[kind, 1][..], &POD_MAC].concat();
    let nd = |src: Ipv6Addr, dst: Ipv6Addr, icmp_type: u8, rest: [u8; 4], data: Vec<u8>| {
        let mut f = Frame6::icmp(
            src,
            dst,
            Icmp {
                icmp_type,
                code: 0,
                rest,
                data,
            },
        );
        f.ip.hop_limit = 255;
        f.bytes()
    };
    let all_routers: Ipv6Addr = "ff02::2".parse().unwrap();
    let all_nodes: Ipv6Addr = "ff02::1".parse().unwrap();
    let solicited = |a: Ipv6Addr| {
        let o = a.octets();
        Ipv6Addr::new(
            0xff02,
            0,
            0,
            0,
            0,
            1,
            0xff00 | u16::from(o[13]),
            u16::from_be_bytes([o[14], o[15]]),
        )
    };
    let link_local: Ipv6Addr = "fe80::a".parse().unwrap();
    let mut redirect = target(*V6::SOLO.ip(), &V6::SOLO_BACKEND.ip().octets());
    redirect.extend_from_slice(&[4, 6, 0, 0, 0, 0, 0, 0]);
    redirect.extend_from_slice(&quoted[..40]);
    let cases = [
        (
            "a router solicitation",
            nd(
                link_local,
                all_routers,
                frames::ICMPV6_ROUTER_SOLICIT,
                [0; 4],
                mac_option(1),
            ),
        ),
        (
            "a router advertisement",
            nd(
                link_local,
                all_nodes,
                frames::ICMPV6_ROUTER_ADVERT,
                [64, 0, 7, 8],
                [vec![0; 8], mac_option(1)].concat(),
            ),
        ),
        (
            "a neighbour solicitation for a frontend",
            nd(
                V6::POD_CLIENT,
                solicited(*V6::SOLO.ip()),
                frames::ICMPV6_NEIGH_SOLICIT,
                [0; 4],
                target(*V6::SOLO.ip(), &mac_option(1)),
            ),
        ),
        (
            "a neighbour advertisement of a backend",
            nd(
                *V6::SOLO_BACKEND.ip(),
                V6::POD_CLIENT,
                frames::ICMPV6_NEIGH_ADVERT,
                [0x60, 0, 0, 0],
                target(*V6::SOLO_BACKEND.ip(), &mac_option(2)),
            ),
        ),
        (
            "a redirect quoting a flow's packet",
            nd(
                link_local,
                V6::POD_CLIENT,
                frames::ICMPV6_REDIRECT,
                [0; 4],
                redirect,
            ),
        ),
        (
            "an echo request to a frontend",
            Frame6::icmp(
                V6::POD_CLIENT,
                *V6::SOLO.ip(),
                Icmp {
                    icmp_type: frames::ICMPV6_ECHO_REQUEST,
                    code: 0,
                    rest: [0, 1, 0, 1],
                    data: b"ping".to_vec(),
                },
            )
            .bytes(),
        ),
        (
            "an echo reply quoting a flow's packet",
            icmp6_from_backend(frames::ICMPV6_ECHO_REPLY, 0, [0, 1, 0, 1], q(48)),
        ),
        (
            "a parameter problem quoting a flow's packet",
            icmp6_from_backend(frames::ICMPV6_PARAM_PROB, 0, [0, 0, 0, 6], q(48)),
        ),
        (
            "an error quoting an unknown flow",
            icmp6_from_backend(1, 4, [0; 4], unknown[..48].to_vec()),
        ),
        (
            "an error quoting an ICMPv6 packet",
            icmp6_from_backend(1, 4, [0; 4], icmp_about_flow),
        ),
        (
            "an error quoting the IPv6 header only",
            icmp6_from_backend(1, 4, [0; 4], q(40)),
        ),
        (
            "an error quoting the ports cut short",
            icmp6_from_backend(1, 4, [0; 4], q(43)),
        ),
        (
            "an error quoting a bad IP version",
            icmp6_from_backend(1, 4, [0; 4], bad_version),
        ),
        (
            "an error quoting a packet with extension headers (not walked)",
            icmp6_from_backend(1, 4, [0; 4], with_ext),
        ),
        ("an ICMP (for IPv4) error quoting the flow's packet", {
            let mut f = Frame4::icmp(
                Ipv4Addr::new(10, 0, 3, 1),
                Ipv4Addr::new(10, 0, 9, 7),
                Icmp {
                    icmp_type: 3,
                    code: 3,
                    rest: [0; 4],
                    data: q(48),
                },
            );
            f.ip.frag = 0;
            f.bytes()
        }),
    ];
    for (what, frame) in &cases {
        assert_untouched_everywhere(&mut h, frame, what);
    }
    assert_eq!(
        h.counter(Counter::IcmpTranslated),
        0,
        "no error was translated"
    );
    assert_eq!(
        h.counter(Counter::Unparsable),
        0,
        "nothing here is malformed"
    );
    check_counters(&h);
}
