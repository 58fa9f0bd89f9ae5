//! Frames that are no frontend's, or not IP of the family at all: they
//! pass bit-identical at every hook and open nothing.

use std::net::Ipv4Addr;

use hairpin_common::Counter;

use crate::{
    checks::{assert_untouched_everywhere, check_counters},
    families::{flow, tuple_of, Family, V4, V6},
    fixtures::standard_tables,
    frames::{self, Frame, Frame4, Icmp, IpHeader, IPPROTO_TCP, IPPROTO_UDP, L4},
    harness::Harness,
    model::Hook,
    require_privileged,
};

family_tests!(
    both: [packets_to_no_frontend_pass_bit_identical]
    v4: [frames_that_are_not_ipv4_pass_bit_identical]
);

/// A frame of protocol `proto` from `client` to SOLO's address.
fn other<F: Family>(client: F::Sock, proto: u8, bytes: Vec<u8>) -> Vec<u8> {
    Frame {
        l4: L4::Other { proto, bytes },
        ..flow::<F>(IPPROTO_UDP, client, F::SOLO, b"")
    }
    .bytes()
}

/// What a family adds to the packets that are no frontend's.
trait NoFrontend: Family {
    fn more_cases(client: Self::Sock) -> Vec<(&'static str, Vec<u8>)>;
}

impl NoFrontend for V4 {
    fn more_cases(_: Self::Sock) -> Vec<(&'static str, Vec<u8>)> {
        let echo = Frame4::icmp(
            V4::POD_CLIENT,
            V4::ip(V4::SOLO),
            Icmp {
                icmp_type: frames::ICMP_ECHO_REQUEST,
                code: 0,
                rest: [0, 1, 0, 1],
                data: b"ping".to_vec(),
            },
        );
        vec![("an echo request to a frontend address", echo.bytes())]
    }
}

impl NoFrontend for V6 {
    fn more_cases(client: Self::Sock) -> Vec<(&'static str, Vec<u8>)> {
        let to = |proto, dst| flow::<V6>(proto, client, dst, b"not for us").bytes();
        let sent_udp = flow::<V6>(IPPROTO_UDP, client, V6::SOLO_BACKEND, b"").ip_packet();
        let icmpv4_in_ipv6 = other::<V6>(
            client,
            1,
            [&[3, 3, 0, 0, 0, 0, 0, 0], &sent_udp[..]].concat(),
        );
        // The IPv4 frontend SOLO's address, mapped into IPv6 (RFC 4291 2.5.5.2).
        let mapped = V6::sock(V4::ip(V4::SOLO).to_ipv6_mapped(), V4::port(V4::SOLO));
        vec![
            (
                "TCP to an IPv4 frontend's IPv4-mapped address",
                to(IPPROTO_TCP, mapped),
            ),
            (
                "UDP to an IPv4 frontend's IPv4-mapped address",
                to(IPPROTO_UDP, mapped),
            ),
            (
                "ESP to a frontend address",
                other::<V6>(client, 50, vec![0, 0, 1, 0, 0, 0, 0, 1, 9, 9]),
            ),
            // With bytes after it (ignored, RFC 8200 section 4.7): an empty
            // payload has the jumbogram's payload length, zero.
            (
                "no next header (59) to a frontend address",
                other::<V6>(client, frames::NEXTHDR_NONE, vec![0; 8]),
            ),
            ("ICMP (for IPv4) inside IPv6", icmpv4_in_ipv6),
        ]
    }
}

fn packets_to_no_frontend_pass_bit_identical<F: NoFrontend>() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    let client = F::sock(F::POD_CLIENT, 40006);
    let to = |proto, dst| flow::<F>(proto, client, dst, b"not for us").bytes();
    let [t0, t1] = F::Ip::ETHERTYPE.to_be_bytes();
    let mut cases = vec![
        (
            "TCP to an address that is no frontend",
            to(IPPROTO_TCP, F::sock(F::NOT_A_FRONTEND, 80)),
        ),
        (
            "UDP to a backend directly",
            to(IPPROTO_UDP, F::SOLO_BACKEND),
        ),
        (
            "TCP to a frontend address on another port",
            to(IPPROTO_TCP, F::sock(F::ip(F::WEB), 81)),
        ),
        ("UDP to a TCP frontend's port", to(IPPROTO_UDP, F::WEB)),
        ("TCP to a UDP frontend's port", to(IPPROTO_TCP, F::DNS)),
        (
            "TCP to a frontend without backends",
            to(IPPROTO_TCP, F::EMPTY),
        ),
        (
            "GRE to a frontend address",
            other::<F>(client, 47, vec![0, 0, t0, t1, 1, 2, 3, 4]),
        ),
    ];
    cases.extend(F::more_cases(client));
    for (what, frame) in &cases {
        let before = h.counter(Counter::Unparsable);
        assert_untouched_everywhere(&mut h, frame, what);
        assert_eq!(
            h.counter(Counter::Unparsable),
            before,
            "{what} is not malformed"
        );
        let key = tuple_of::<F>(frame);
        assert!(h.entry(&key).is_none(), "{what} opened a flow");
    }
    assert_eq!(
        h.counter(Counter::Unparsable),
        0,
        "nothing here is malformed"
    );
    check_counters(&h);
}

fn frames_that_are_not_ipv4_pass_bit_identical() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    // Open a flow, so that frames that look like its packets exist.
    let client = V4::sock(V4::POD_CLIENT, 40005);
    let solo: Ipv4Addr = V4::ip(V4::SOLO);
    h.expect_step(
        Hook::PodIngress,
        &flow::<V4>(IPPROTO_UDP, client, V4::SOLO, b"").bytes(),
    );
    let ip_like = flow::<V4>(IPPROTO_UDP, client, V4::SOLO, b"").ip_packet();
    let cases = [
        (
            "an ARP request for a frontend",
            frames::arp_request(V4::POD_CLIENT, solo),
        ),
        (
            "an IPv6 datagram",
            frames::ipv6_udp(solo, V4::port(V4::SOLO), b"v6"),
        ),
        (
            "an IPv4 packet behind a VLAN tag",
            frames::ethernet(0x8100, &[&[0, 5, 0x08, 0x00][..], &ip_like].concat()),
        ),
        (
            "an IPv4 packet with the ARP ethertype",
            frames::ethernet(frames::ETH_P_ARP, &ip_like),
        ),
        ("an Ethernet header alone", frames::ethernet(0x88cc, &[])),
    ];
    let unparsable = h.counter(Counter::Unparsable);
    for (what, frame) in &cases {
        assert_untouched_everywhere(&mut h, frame, what);
    }
    assert_eq!(
        h.counter(Counter::Unparsable),
        unparsable,
        "non-IPv4 is not counted as unparsable"
    );
    check_counters(&h);
}
