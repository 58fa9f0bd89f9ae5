//! IPv6 packet tests: the frontends of main.rs again, in IPv6, on the same
//! loaded datapath as the IPv4 ones (their ids follow the IPv4 ones: both
//! families count in one `FRONTEND_STATS`).
//!
//! ```text
//!   frontends 2001:db8:f::10-13  ──▶  backend pods fd10:0:1-4::x
//!   pod client fd10:0:9::7, host client 2001:db8:2::2, router fd10:ff::1
//! ```

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6};

use hairpin_common::{Counter, CtDir, CtOrigin};

use crate::{
    assert_flow_entries, assert_untouched_everywhere, check_counters, fe,
    frames::IpHeader as _,
    frames::{
        self, read6, Ext, Frame4, Frame6, Icmp, ETH_LEN, ICMPV6_DEST_UNREACH, ICMPV6_PKT_TOOBIG,
        ICMPV6_PORT_UNREACH, ICMPV6_TIME_EXCEED, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, L4,
        NODE_MAC, POD_MAC, PROTOCOLS, TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN,
    },
    frontend_id,
    harness::{Harness, TC_ACT_REDIRECT, TC_ACT_UNSPEC},
    model::{Action, FrontendCfg, Hook, Tables, Tuple},
    proto_name, require_privileged, standard_tables, Opened, UPLINK,
};

const fn sa6(a: [u16; 8], port: u16) -> SocketAddrV6 {
    SocketAddrV6::new(
        Ipv6Addr::new(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]),
        port,
        0,
        0,
    )
}

/// TCP frontend with three backends.
pub const WEB6: SocketAddrV6 = sa6([0x2001, 0xdb8, 0xf, 0, 0, 0, 0, 0x10], 80);
pub const WEB6_BACKENDS: [SocketAddrV6; 3] = [
    sa6([0xfd10, 0, 1, 0, 0, 0, 0, 1], 8080),
    sa6([0xfd10, 0, 1, 0, 0, 0, 0, 2], 8080),
    sa6([0xfd10, 0, 1, 0, 0, 0, 0, 3], 8081),
];
/// UDP frontend on WEB6's address, with two backends.
pub const DNS6: SocketAddrV6 = sa6([0x2001, 0xdb8, 0xf, 0, 0, 0, 0, 0x10], 53);
pub const DNS6_BACKENDS: [SocketAddrV6; 2] = [
    sa6([0xfd10, 0, 2, 0, 0, 0, 0, 1], 5353),
    sa6([0xfd10, 0, 2, 0, 0, 0, 0, 2], 53),
];
/// TCP and UDP frontends on one address and port, with the same single backend.
pub const SOLO6: SocketAddrV6 = sa6([0x2001, 0xdb8, 0xf, 0, 0, 0, 0, 0x11], 443);
pub const SOLO6_BACKEND: SocketAddrV6 = sa6([0xfd10, 0, 3, 0, 0, 0, 0, 1], 8443);
/// A frontend without backends.
pub const EMPTY6: SocketAddrV6 = sa6([0x2001, 0xdb8, 0xf, 0, 0, 0, 0, 0x12], 80);
/// A UDP frontend with weighted slots, one backend shared with WEB6.
pub const WEIGHTED6: SocketAddrV6 = sa6([0x2001, 0xdb8, 0xf, 0, 0, 0, 0, 0x13], 8080);
pub const WEIGHTED6_BACKENDS: [SocketAddrV6; 4] = [
    sa6([0xfd10, 0, 4, 0, 0, 0, 0, 1], 80),
    sa6([0xfd10, 0, 4, 0, 0, 0, 0, 1], 80),
    sa6([0xfd10, 0, 4, 0, 0, 0, 0, 2], 80),
    sa6([0xfd10, 0, 1, 0, 0, 0, 0, 1], 8080),
];

pub const POD_CLIENT6: Ipv6Addr = Ipv6Addr::new(0xfd10, 0, 9, 0, 0, 0, 0, 7);
pub const HOST_CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 2);
pub const ROUTER6: Ipv6Addr = Ipv6Addr::new(0xfd10, 0xff, 0, 0, 0, 0, 0, 1);

/// The IPv6 frontends of the standard tables, ids 6-11.
pub fn frontends() -> Vec<FrontendCfg> {
    vec![
        fe(6, WEB6, IPPROTO_TCP, &WEB6_BACKENDS),
        fe(7, DNS6, IPPROTO_UDP, &DNS6_BACKENDS),
        fe(8, SOLO6, IPPROTO_TCP, &[SOLO6_BACKEND]),
        fe(9, SOLO6, IPPROTO_UDP, &[SOLO6_BACKEND]),
        fe(10, EMPTY6, IPPROTO_TCP, &[]),
        fe(11, WEIGHTED6, IPPROTO_UDP, &WEIGHTED6_BACKENDS),
    ]
}

/// The IPv6 frontend of `proto` with several backends.
fn multi6(proto: u8) -> (SocketAddrV6, &'static [SocketAddrV6]) {
    if proto == IPPROTO_TCP {
        (WEB6, &WEB6_BACKENDS)
    } else {
        (DNS6, &DNS6_BACKENDS)
    }
}

fn at(ip: Ipv6Addr, port: u16) -> SocketAddrV6 {
    SocketAddrV6::new(ip, port, 0, 0)
}

fn flow6(proto: u8, src: SocketAddrV6, dst: SocketAddrV6, payload: &[u8]) -> Frame6 {
    Frame6::flow(proto, src, dst, payload)
}

impl Opened {
    fn client6(self, port: u16) -> SocketAddrV6 {
        match self {
            Opened::Pod => at(POD_CLIENT6, port),
            Opened::HostViaUplink | Opened::HostViaPod => at(HOST_CLIENT6, port),
            Opened::Loop => at(*SOLO6_BACKEND.ip(), port),
        }
    }
}

#[test]
fn a_pod_flow_goes_to_one_of_the_frontends_backends_and_replies_come_back_from_the_frontend() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    for proto in PROTOCOLS {
        let p = proto_name(proto);
        let (fe, backends) = multi6(proto);
        let client = at(POD_CLIENT6, 40001);
        let fwd = flow6(proto, client, fe, b"hello").bytes();

        let step = h.expect_step(Hook::PodIngress, &fwd);
        assert_eq!(
            step.verdict, TC_ACT_UNSPEC,
            "{p}: a pod's packet goes on to the stack"
        );
        let (src, backend) = read6::endpoints(&step.out);
        assert_eq!(src, client, "{p}: the backend sees the client as it is");
        assert!(
            backends.contains(&backend),
            "{p}: {backend} is not a backend of {fe}"
        );
        assert_eq!(
            frames::macs(&step.out),
            (NODE_MAC, POD_MAC),
            "{p}: MACs unchanged"
        );
        let key = Tuple::new(proto, client, fe);
        assert_flow_entries(&h, &key, &Tuple::new(proto, client, backend), CtOrigin::Pod);
        assert!(
            h.ct6(&key).is_some(),
            "{p}: the flow is in the IPv6 conntrack"
        );

        let reply = flow6(proto, backend, client, b"world")
            .with_tcp_flags(TCP_SYN | TCP_ACK)
            .bytes();
        let step = h.expect_step(Hook::PodEgress, &reply);
        assert_eq!(
            step.verdict, TC_ACT_UNSPEC,
            "{p}: a reply goes on to the pod"
        );
        assert_eq!(
            read6::endpoints(&step.out),
            (fe, client),
            "{p}: the reply comes from the frontend"
        );

        // Each packet is translated at one hook only.
        for hook in [Hook::PodIngress, Hook::UplinkIngress, Hook::UplinkEgress] {
            let step = h.expect_step(hook, &reply);
            assert!(
                step.out == reply,
                "{p}: a pod flow's reply was changed at {hook:?}"
            );
        }
        for hook in [Hook::PodEgress, Hook::UplinkEgress, Hook::UplinkIngress] {
            let step = h.expect_step(hook, &fwd);
            assert!(
                step.out == fwd,
                "{p}: a pod flow's request was changed at {hook:?}"
            );
        }
    }
    check_counters(&h);
}

#[test]
fn a_pod_reaching_itself_through_a_frontend_is_turned_around_on_its_own_veth() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    for proto in PROTOCOLS {
        let p = proto_name(proto);
        let client = at(*SOLO6_BACKEND.ip(), 40002);
        let fwd = flow6(proto, client, SOLO6, b"me?").bytes();

        let step = h.expect_step(Hook::PodIngress, &fwd);
        assert_eq!(
            step.verdict, TC_ACT_REDIRECT,
            "{p}: the packet goes back to the pod"
        );
        let looped_src = at(*SOLO6.ip(), client.port());
        assert_eq!(
            read6::endpoints(&step.out),
            (looped_src, SOLO6_BACKEND),
            "{p}: the pod receives its request from the frontend's address"
        );
        assert_eq!(
            frames::macs(&step.out),
            (POD_MAC, NODE_MAC),
            "{p}: MACs swapped"
        );
        let key = Tuple::new(proto, client, SOLO6);
        assert_flow_entries(
            &h,
            &key,
            &Tuple::new(proto, looped_src, SOLO6_BACKEND),
            CtOrigin::Loop,
        );

        let reply = flow6(proto, SOLO6_BACKEND, looped_src, b"you!")
            .with_tcp_flags(TCP_SYN | TCP_ACK)
            .bytes();
        let step = h.expect_step(Hook::PodIngress, &reply);
        assert_eq!(
            step.verdict, TC_ACT_REDIRECT,
            "{p}: the reply goes back to the pod"
        );
        assert_eq!(
            read6::endpoints(&step.out),
            (SOLO6, client),
            "{p}: the reply comes from the frontend"
        );
        assert_eq!(
            frames::macs(&step.out),
            (POD_MAC, NODE_MAC),
            "{p}: MACs swapped"
        );
        let step = h.expect_step(Hook::PodEgress, &reply);
        assert!(
            step.out == reply,
            "{p}: a looped reply was changed at pod egress"
        );
    }
    check_counters(&h);
}

#[test]
fn a_host_flow_is_translated_on_the_uplink_egress_and_its_replies_where_they_enter() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    for proto in PROTOCOLS {
        let p = proto_name(proto);
        let (fe, backends) = multi6(proto);
        let client = at(HOST_CLIENT6, 50001);
        let fwd = flow6(proto, client, fe, b"from the host").bytes();

        // The verdict depends on the routes of the test's namespace; the
        // bytes other than the MACs are checked against the model.
        let step = h.expect_step(Hook::UplinkEgress, &fwd);
        let (src, backend) = read6::endpoints(&step.out);
        assert_eq!(src, client, "{p}: the backend sees the host as it is");
        assert!(
            backends.contains(&backend),
            "{p}: {backend} is not a backend of {fe}"
        );
        let key = Tuple::new(proto, client, fe);
        assert_flow_entries(
            &h,
            &key,
            &Tuple::new(proto, client, backend),
            CtOrigin::Host,
        );

        let reply = flow6(proto, backend, client, b"to the host")
            .with_tcp_flags(TCP_SYN | TCP_ACK)
            .bytes();
        let step = h.expect_step(Hook::UplinkIngress, &reply);
        assert_eq!(
            step.verdict, TC_ACT_UNSPEC,
            "{p}: a reply from the wire goes on"
        );
        assert_eq!(
            read6::endpoints(&step.out),
            (fe, client),
            "{p}: from the frontend"
        );

        let step = h.expect_step(Hook::PodIngress, &reply);
        assert_eq!(
            step.verdict, TC_ACT_REDIRECT,
            "{p}: a reply from a local pod is redirected to the uplink's ingress"
        );
        assert_eq!(
            read6::endpoints(&step.out),
            (fe, client),
            "{p}: from the frontend"
        );
        assert_eq!(
            frames::macs(&step.out),
            (UPLINK.1, POD_MAC),
            "{p}: addressed to the uplink's MAC"
        );

        let step = h.expect_step(Hook::PodEgress, &reply);
        assert!(
            step.out == reply,
            "{p}: a host flow's reply was changed at pod egress"
        );
        let step = h.expect_step(Hook::PodIngress, &fwd);
        assert!(
            step.out == fwd,
            "{p}: a host flow's request was changed at pod ingress"
        );
    }
    check_counters(&h);
}

#[test]
fn a_host_flows_reply_from_a_pod_passes_untouched_while_the_uplink_is_unknown() {
    require_privileged!();
    let mut h = Harness::new(Tables {
        uplink: None,
        ..standard_tables()
    });
    for proto in PROTOCOLS {
        let p = proto_name(proto);
        let client = at(HOST_CLIENT6, 50002);
        let fwd = flow6(proto, client, SOLO6, b"").bytes();
        h.expect_step(Hook::UplinkEgress, &fwd);
        let reply = flow6(proto, SOLO6_BACKEND, client, b"").bytes();
        let failed = h.counter(Counter::RedirectFailed);
        let step = h.expect_step(Hook::PodIngress, &reply);
        assert_eq!(
            step.verdict, TC_ACT_UNSPEC,
            "{p}: verdict without an uplink"
        );
        assert!(
            step.out == reply,
            "{p}: the reply was changed without an uplink to send it to"
        );
        assert_eq!(
            h.counter(Counter::RedirectFailed),
            failed + 1,
            "{p}: the failed redirect is counted"
        );
        let step = h.expect_step(Hook::UplinkIngress, &reply);
        assert_eq!(
            read6::endpoints(&step.out),
            (SOLO6, client),
            "{p}: on the uplink it is translated"
        );
    }
    check_counters(&h);
}

/// A zero UDP checksum is not allowed in IPv6 (RFC 8200 section 8.1), so
/// no sender makes one; if one comes anyway, the datapath treats it as in
/// IPv4: its checksum helper (`BPF_F_MARK_MANGLED_0`) leaves a zero alone,
/// and the datagram is translated with its checksum still zero.
#[test]
fn a_zero_udp_checksum_stays_zero() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    let client = at(POD_CLIENT6, 40003);
    let f = flow6(IPPROTO_UDP, client, SOLO6, b"no checksum")
        .without_udp_checksum()
        .bytes();
    let step = h.expect_step(Hook::PodIngress, &f);
    assert_eq!(
        read6::endpoints(&step.out).1,
        SOLO6_BACKEND,
        "translated to the backend"
    );
    assert_eq!(
        &read6::l4(&step.out)[6..8],
        &[0, 0],
        "the checksum stays zero"
    );

    let r = flow6(IPPROTO_UDP, SOLO6_BACKEND, client, b"none either").without_udp_checksum();
    let step = h.expect_step(Hook::PodEgress, &r.bytes());
    assert_eq!(
        read6::endpoints(&step.out).0,
        SOLO6,
        "the reply is translated"
    );
    assert_eq!(
        &read6::l4(&step.out)[6..8],
        &[0, 0],
        "the reply's checksum stays zero"
    );
    check_counters(&h);
}

#[test]
fn a_udp_checksum_that_computes_to_zero_is_sent_as_all_ones() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    let client = at(POD_CLIENT6, 40004);
    // Choose the first payload word so that the datagram as the backend
    // receives it sums to 0xffff: its computed checksum is zero.
    let mut payload = vec![0u8; 12];
    let translated = flow6(IPPROTO_UDP, client, SOLO6_BACKEND, &payload).without_udp_checksum();
    let bytes = translated.l4.bytes(&translated.ip);
    let pseudo = translated.ip.pseudo_header(IPPROTO_UDP, bytes.len());
    let word = frames::internet_checksum(&[&pseudo, &bytes]);
    payload[..2].copy_from_slice(&word.to_be_bytes());
    let check = flow6(IPPROTO_UDP, client, SOLO6_BACKEND, &payload).bytes();
    assert_eq!(
        &read6::l4(&check)[6..8],
        &[0xff, 0xff],
        "the crafted datagram's computed checksum is zero"
    );

    let f = flow6(IPPROTO_UDP, client, SOLO6, &payload).bytes();
    assert_ne!(
        &read6::l4(&f)[6..8],
        &[0xff, 0xff],
        "the client's datagram checksum is not zero"
    );
    let step = h.expect_step(Hook::PodIngress, &f);
    assert_eq!(
        read6::endpoints(&step.out).1,
        SOLO6_BACKEND,
        "translated to the backend"
    );
    assert_eq!(
        &read6::l4(&step.out)[6..8],
        &[0xff, 0xff],
        "a computed zero is sent as 0xffff, not as 'no checksum'"
    );
    check_counters(&h);
}

/// Extension header chains the datapath walks (four at the most).
fn walked_chains() -> Vec<(&'static str, Vec<Ext>)> {
    vec![
        ("hop-by-hop with a PadN", vec![Ext::HopByHop(vec![])]),
        (
            "hop-by-hop with a router alert (RFC 2711)",
            vec![Ext::HopByHop(vec![5, 2, 0, 0])],
        ),
        (
            "destination options of Pad1s",
            vec![Ext::DestOpts(vec![0; 6])],
        ),
        (
            "a segment routing header at its last segment",
            vec![Ext::srh(*SOLO6.ip())],
        ),
        (
            "hop-by-hop, routing, destination options",
            vec![
                Ext::HopByHop(vec![]),
                Ext::srh(*SOLO6.ip()),
                Ext::DestOpts(vec![0x1e, 2, 0xab, 0xcd]),
            ],
        ),
        (
            "four extension headers, the most walked",
            vec![
                Ext::HopByHop(vec![]),
                Ext::DestOpts(vec![]),
                Ext::srh(*SOLO6.ip()),
                Ext::DestOpts(vec![0; 14]),
            ],
        ),
        (
            "a 1 KiB destination options header",
            vec![Ext::options_of_len(true, 1024)],
        ),
    ]
}

#[test]
fn extension_headers_are_kept_and_the_ports_behind_them_translated() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    let mut port = 41000;
    for proto in PROTOCOLS {
        for (name, chain) in walked_chains() {
            let p = format!("{} with {name}", proto_name(proto));
            port += 1;
            let client = at(POD_CLIENT6, port);
            let fwd = flow6(proto, client, SOLO6, b"extensions")
                .with_ext(chain.clone())
                .bytes();
            assert!(!read6::ext(&fwd).is_empty(), "{p}: the frame has them");

            let step = h.expect_step(Hook::PodIngress, &fwd);
            assert_eq!(
                read6::endpoints(&step.out),
                (client, SOLO6_BACKEND),
                "{p}: translated to the backend"
            );
            assert_eq!(
                read6::ext(&step.out),
                read6::ext(&fwd),
                "{p}: the extension headers are kept"
            );

            let reply = flow6(proto, SOLO6_BACKEND, client, b"back").with_ext(chain.clone());
            let step = h.expect_step(Hook::PodEgress, &reply.bytes());
            assert_eq!(
                read6::endpoints(&step.out),
                (SOLO6, client),
                "{p}: reply translated"
            );
            assert_eq!(
                read6::ext(&step.out),
                read6::ext(&reply.bytes()),
                "{p}: the reply's extension headers are kept"
            );

            // An error that carries the extension headers itself, quoting
            // the request as the backend got it.
            let sent = flow6(proto, client, SOLO6_BACKEND, b"extensions").ip_packet();
            let err = Frame6::icmp_error(
                *SOLO6_BACKEND.ip(),
                *client.ip(),
                ICMPV6_DEST_UNREACH,
                ICMPV6_PORT_UNREACH,
                [0; 4],
                &sent,
                usize::MAX,
            )
            .with_ext(chain.clone())
            .bytes();
            let step = h.expect_step(Hook::PodEgress, &err);
            assert!(
                matches!(step.expected.action, Action::IcmpError { .. }),
                "{p}: the error is translated"
            );
            assert_eq!(
                read6::src(&step.out),
                *SOLO6.ip(),
                "{p}: the error comes from the frontend"
            );
            assert_eq!(
                read6::ext(&step.out),
                read6::ext(&err),
                "{p}: the error's extension headers are kept"
            );
        }
    }
    check_counters(&h);
}

/// Five extension headers: the walk stops after four.
fn five_headers(last: Ext) -> Vec<Ext> {
    vec![
        Ext::HopByHop(vec![]),
        Ext::DestOpts(vec![]),
        Ext::srh(*SOLO6.ip()),
        Ext::DestOpts(vec![]),
        last,
    ]
}

#[test]
fn behind_a_fifth_extension_header_a_packet_passes_bit_identical_and_uncounted() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    for proto in PROTOCOLS {
        let client = at(POD_CLIENT6, 40100);
        // The flow exists: only what hides its ports keeps a packet out.
        let opened = h.expect_step(Hook::PodIngress, &flow6(proto, client, SOLO6, b"").bytes());
        assert!(opened.expected.translated(), "the flow opened");
        let fifths = [
            ("destination options", Ext::DestOpts(vec![])),
            ("routing", Ext::srh(*SOLO6.ip())),
            (
                "a fragment header, beyond the walk",
                Ext::Fragment {
                    offset: 0,
                    more: true,
                    id: 7,
                },
            ),
        ];
        for (name, last) in fifths {
            let what = format!("{} behind a fifth header, {name}", proto_name(proto));
            let request = flow6(proto, client, SOLO6, b"hidden")
                .with_ext(five_headers(last.clone()))
                .bytes();
            let reply = flow6(proto, SOLO6_BACKEND, client, b"hidden")
                .with_ext(five_headers(last.clone()))
                .bytes();
            let sent = flow6(proto, client, SOLO6_BACKEND, b"").ip_packet();
            let error = Frame6::icmp_error(
                *SOLO6_BACKEND.ip(),
                *client.ip(),
                ICMPV6_DEST_UNREACH,
                ICMPV6_PORT_UNREACH,
                [0; 4],
                &sent,
                usize::MAX,
            )
            .with_ext(five_headers(last))
            .bytes();
            let before = (
                h.counter(Counter::Unparsable),
                h.counter(Counter::IcmpTranslated),
            );
            for (frame, kind) in [(request, "request"), (reply, "reply"), (error, "error")] {
                assert_untouched_everywhere(&mut h, &frame, &format!("{what}: a {kind}"));
            }
            assert_eq!(
                (
                    h.counter(Counter::Unparsable),
                    h.counter(Counter::IcmpTranslated)
                ),
                before,
                "{what}: not counted as unparsable, nor translated"
            );
        }
        let step = h.expect_step(
            Hook::PodIngress,
            &flow6(proto, client, SOLO6, b"")
                .with_ext(five_headers(Ext::DestOpts(vec![]))[..4].to_vec())
                .bytes(),
        );
        assert!(
            step.expected.translated(),
            "{}: with four headers the packet is translated",
            proto_name(proto)
        );
    }
    check_counters(&h);
}

fn fragment(offset: u16, more: bool) -> Ext {
    Ext::Fragment {
        offset,
        more,
        id: 0x1234_5678,
    }
}

#[test]
fn fragments_pass_bit_identical_and_are_counted_as_unparsable() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    for proto in PROTOCOLS {
        let client = at(POD_CLIENT6, 40007);
        let chains = [
            ("a first fragment (M set)", vec![fragment(0, true)]),
            ("a later fragment (offset)", vec![fragment(185, true)]),
            (
                "a last fragment (offset, M clear)",
                vec![fragment(185, false)],
            ),
            (
                "an atomic fragment (offset 0, M clear; RFC 6946)",
                vec![fragment(0, false)],
            ),
            (
                "a fragment header behind hop-by-hop",
                vec![Ext::HopByHop(vec![]), fragment(0, true)],
            ),
            (
                "a fragment header as the fourth header",
                vec![
                    Ext::HopByHop(vec![]),
                    Ext::DestOpts(vec![]),
                    Ext::srh(*SOLO6.ip()),
                    fragment(0, true),
                ],
            ),
        ];
        for (name, chain) in chains {
            let what = format!("{} {name}", proto_name(proto));
            let frame = flow6(proto, client, SOLO6, b"sixteen bytes!!!")
                .with_ext(chain)
                .bytes();
            let before = h.counter(Counter::Unparsable);
            assert_untouched_everywhere(&mut h, &frame, &what);
            assert_eq!(
                h.counter(Counter::Unparsable),
                before + 4,
                "{what} is counted as unparsable at each of the 4 hooks"
            );
            assert!(
                h.entry(&Tuple::new(proto, client, SOLO6)).is_none(),
                "{what} opened a flow"
            );
        }
    }
    check_counters(&h);
}

#[test]
fn malformed_ipv6_passes_bit_identical_and_is_counted_as_unparsable() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    let set_payload_len = |b: &mut Vec<u8>, len: u16| {
        b[ETH_LEN + 4..ETH_LEN + 6].copy_from_slice(&len.to_be_bytes());
    };
    for proto in PROTOCOLS {
        let client = at(POD_CLIENT6, 40008);
        let good = flow6(proto, client, SOLO6, b"sixteen bytes!!!");
        let edit = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut b = good.bytes();
            f(&mut b);
            b
        };
        let payload_len = good.bytes().len() - ETH_LEN - 40;
        let l4_min = if proto == IPPROTO_TCP { 20 } else { 8 };
        // A jumbogram (RFC 2675): payload length zero, the length in a
        // hop-by-hop option.
        let mut jumbo = good
            .clone()
            .with_ext(vec![Ext::HopByHop(vec![0xc2, 4, 0, 1, 0, 0])])
            .bytes();
        set_payload_len(&mut jumbo, 0);
        let mut long_ext = good.clone().with_ext(vec![Ext::DestOpts(vec![])]).bytes();
        // Its length byte: 8 * (1 + 60) bytes, beyond the payload.
        long_ext[ETH_LEN + 41] = 60;
        let mut cases = vec![
            ("a jumbogram", jumbo),
            ("a payload length of zero", edit(&|b| set_payload_len(b, 0))),
            ("a truncated packet", edit(&|b| b.truncate(b.len() - 1))),
            (
                "a payload length beyond the frame",
                edit(&|b| set_payload_len(b, payload_len as u16 + 1)),
            ),
            ("version 4 in an IPv6 frame", edit(&|b| b[ETH_LEN] = 0x46)),
            ("version 7", edit(&|b| b[ETH_LEN] = 0x70)),
            ("an extension header beyond the payload", long_ext),
            (
                "an L4 header cut short",
                edit(&|b| {
                    set_payload_len(b, l4_min as u16 - 1);
                    b.truncate(ETH_LEN + 40 + l4_min - 1);
                }),
            ),
            (
                "an L4 header cut short by the payload length, bytes after it",
                edit(&|b| set_payload_len(b, l4_min as u16 - 1)),
            ),
        ];
        if proto == IPPROTO_TCP {
            cases.push((
                "a TCP data offset of 4",
                edit(&|b| b[ETH_LEN + 40 + 12] = 4 << 4),
            ));
            cases.push((
                "a TCP data offset of 0",
                edit(&|b| b[ETH_LEN + 40 + 12] = 0),
            ));
        }
        for (what, frame) in &cases {
            let what = format!("{} {what}", proto_name(proto));
            let before = h.counter(Counter::Unparsable);
            assert_untouched_everywhere(&mut h, frame, &what);
            assert_eq!(
                h.counter(Counter::Unparsable),
                before + 4,
                "{what} is counted as unparsable at each of the 4 hooks"
            );
            assert!(
                h.entry(&Tuple::new(proto, client, SOLO6)).is_none(),
                "{what} opened a flow"
            );
        }
    }
    let short_icmp = Frame6 {
        l4: L4::Other {
            proto: IPPROTO_ICMPV6,
            bytes: vec![1, 4, 0, 0, 0, 0, 0],
        },
        ..flow6(IPPROTO_UDP, at(POD_CLIENT6, 1), SOLO6, b"")
    }
    .bytes();
    let before = h.counter(Counter::Unparsable);
    assert_untouched_everywhere(&mut h, &short_icmp, "a 7-byte ICMPv6 message");
    assert_eq!(
        h.counter(Counter::Unparsable),
        before + 4,
        "a short ICMPv6 message is unparsable"
    );
    check_counters(&h);
}

#[test]
fn packets_to_no_frontend_pass_bit_identical() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    let client = at(POD_CLIENT6, 40006);
    let to = |proto, dst| flow6(proto, client, dst, b"not for us").bytes();
    let other = |proto: u8, bytes: Vec<u8>| {
        Frame6 {
            l4: L4::Other { proto, bytes },
            ..flow6(IPPROTO_UDP, client, SOLO6, b"")
        }
        .bytes()
    };
    let sent_udp = flow6(IPPROTO_UDP, client, SOLO6_BACKEND, b"").ip_packet();
    let icmpv4_in_ipv6 = other(1, {
        let mut m = vec![3, 3, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&sent_udp);
        m
    });
    // The IPv4 frontend SOLO's address, mapped into IPv6 (RFC 4291 2.5.5.2).
    let mapped = at(Ipv4Addr::new(192, 168, 100, 11).to_ipv6_mapped(), 443);
    let cases = [
        (
            "TCP to an address that is no frontend",
            to(IPPROTO_TCP, at("2001:db8:f::99".parse().unwrap(), 80)),
        ),
        ("UDP to a backend directly", to(IPPROTO_UDP, SOLO6_BACKEND)),
        (
            "TCP to a frontend address on another port",
            to(IPPROTO_TCP, at(*WEB6.ip(), 81)),
        ),
        ("UDP to a TCP frontend's port", to(IPPROTO_UDP, WEB6)),
        ("TCP to a UDP frontend's port", to(IPPROTO_TCP, DNS6)),
        (
            "TCP to a frontend without backends",
            to(IPPROTO_TCP, EMPTY6),
        ),
        (
            "TCP to an IPv4 frontend's IPv4-mapped address",
            to(IPPROTO_TCP, mapped),
        ),
        (
            "UDP to an IPv4 frontend's IPv4-mapped address",
            to(IPPROTO_UDP, mapped),
        ),
        (
            "GRE to a frontend address",
            other(47, vec![0, 0, 0x86, 0xdd, 1, 2, 3, 4]),
        ),
        (
            "ESP to a frontend address",
            other(50, vec![0, 0, 1, 0, 0, 0, 0, 1, 9, 9]),
        ),
        // With bytes after it (ignored, RFC 8200 section 4.7): an empty
        // payload has the jumbogram's payload length, zero.
        (
            "no next header (59) to a frontend address",
            other(frames::NEXTHDR_NONE, vec![0; 8]),
        ),
        ("ICMP (for IPv4) inside IPv6", icmpv4_in_ipv6),
    ];
    for (what, frame) in &cases {
        let before = h.counter(Counter::Unparsable);
        assert_untouched_everywhere(&mut h, frame, what);
        assert_eq!(
            h.counter(Counter::Unparsable),
            before,
            "{what} is not malformed"
        );
    }
    for (proto, dst) in [
        (IPPROTO_TCP, at("2001:db8:f::99".parse().unwrap(), 80)),
        (IPPROTO_UDP, SOLO6_BACKEND),
        (IPPROTO_TCP, at(*WEB6.ip(), 81)),
        (IPPROTO_UDP, WEB6),
        (IPPROTO_TCP, DNS6),
        (IPPROTO_TCP, EMPTY6),
        (IPPROTO_TCP, mapped),
    ] {
        let key = Tuple::new(proto, client, dst);
        assert!(h.entry(&key).is_none(), "{key:?} opened a flow");
    }
    assert_eq!(
        h.counter(Counter::Unparsable),
        0,
        "nothing here is malformed"
    );
    check_counters(&h);
}

/// An ICMPv6 message from the backend to the pod client.
fn icmp6_from_backend(icmp_type: u8, code: u8, rest: [u8; 4], data: Vec<u8>) -> Vec<u8> {
    Frame6::icmp(
        *SOLO6_BACKEND.ip(),
        POD_CLIENT6,
        Icmp {
            icmp_type,
            code,
            rest,
            data,
        },
    )
    .bytes()
}

#[test]
fn neighbour_discovery_echo_and_other_icmpv6_pass_bit_identical() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    let client = at(POD_CLIENT6, 40009);
    let sent = h
        .expect_step(
            Hook::PodIngress,
            &flow6(IPPROTO_UDP, client, SOLO6, b"q").bytes(),
        )
        .out;
    let quoted = sent[ETH_LEN..].to_vec();
    let q = |len: usize| quoted[..len.min(quoted.len())].to_vec();
    let unknown = flow6(IPPROTO_UDP, at(POD_CLIENT6, 40010), SOLO6_BACKEND, b"q").ip_packet();
    let icmp_about_flow = Frame6::icmp(
        POD_CLIENT6,
        *SOLO6_BACKEND.ip(),
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
    let with_ext = frames::Frame6::flow(IPPROTO_UDP, client, SOLO6_BACKEND, b"q")
        .with_ext(vec![Ext::HopByHop(vec![])])
        .ip_packet();
    assert_eq!(
        read6::endpoints_of_ip(&with_ext),
        read6::endpoints(&sent),
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
    let mut redirect = target(*SOLO6.ip(), &SOLO6_BACKEND.ip().octets());
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
                POD_CLIENT6,
                solicited(*SOLO6.ip()),
                frames::ICMPV6_NEIGH_SOLICIT,
                [0; 4],
                target(*SOLO6.ip(), &mac_option(1)),
            ),
        ),
        (
            "a neighbour advertisement of a backend",
            nd(
                *SOLO6_BACKEND.ip(),
                POD_CLIENT6,
                frames::ICMPV6_NEIGH_ADVERT,
                [0x60, 0, 0, 0],
                target(*SOLO6_BACKEND.ip(), &mac_option(2)),
            ),
        ),
        (
            "a redirect quoting a flow's packet",
            nd(
                link_local,
                POD_CLIENT6,
                frames::ICMPV6_REDIRECT,
                [0; 4],
                redirect,
            ),
        ),
        (
            "an echo request to a frontend",
            Frame6::icmp(
                POD_CLIENT6,
                *SOLO6.ip(),
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

/// The ICMPv6 errors a backend or a router sends about a packet.
pub const ICMP6_ERRORS: [(&str, u8, u8, [u8; 4]); 4] = [
    (
        "port unreachable",
        ICMPV6_DEST_UNREACH,
        ICMPV6_PORT_UNREACH,
        [0; 4],
    ),
    (
        "address unreachable",
        ICMPV6_DEST_UNREACH,
        frames::ICMPV6_ADDR_UNREACH,
        [0; 4],
    ),
    ("packet too big", ICMPV6_PKT_TOOBIG, 0, [0, 0, 0x05, 0x00]),
    ("hop limit exceeded", ICMPV6_TIME_EXCEED, 0, [0; 4]),
];

/// Quote lengths: the whole packet, or its IPv6 header and 8 bytes, which
/// hold a UDP checksum but not a TCP one.
const QUOTES6: [(&str, usize); 2] = [("whole", usize::MAX), ("header and 8 bytes", 48)];

#[test]
fn icmp_errors_from_a_backend_reach_the_client_as_from_the_frontend() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    for proto in PROTOCOLS {
        for opened in Opened::ALL {
            for (error, icmp_type, code, rest) in ICMP6_ERRORS {
                for (quote, quote_len) in QUOTES6 {
                    let p = format!("{} {opened:?} {error}, {quote} quoted", proto_name(proto));
                    h.clear_flows();
                    let client = opened.client6(42000);
                    let fwd = flow6(proto, client, SOLO6, b"are you there?").bytes();
                    let sent = h.expect_step(opened.request_hook(), &fwd).out;
                    let (seen_src, backend) = read6::endpoints(&sent);
                    assert_eq!(
                        backend, SOLO6_BACKEND,
                        "{p}: the request reached the backend"
                    );

                    let err = Frame6::icmp_error(
                        *backend.ip(),
                        *seen_src.ip(),
                        icmp_type,
                        code,
                        rest,
                        &sent[ETH_LEN..],
                        quote_len,
                    )
                    .bytes();
                    let translated = h.counter(Counter::IcmpTranslated);
                    let step = h.expect_step(opened.reply_hook(), &err);
                    assert!(
                        matches!(step.expected.action, Action::IcmpError { .. }),
                        "{p}: the model translates the error"
                    );
                    assert_eq!(step.verdict, opened.reply_verdict(), "{p}: verdict");
                    assert_eq!(
                        read6::src(&step.out),
                        *SOLO6.ip(),
                        "{p}: the error comes from the frontend"
                    );
                    assert_eq!(
                        read6::dst(&step.out),
                        *client.ip(),
                        "{p}: the error goes to the client"
                    );
                    assert_eq!(
                        &read6::l4(&step.out)[..2],
                        &[icmp_type, code],
                        "{p}: type and code"
                    );
                    assert_eq!(
                        &read6::l4(&step.out)[4..8],
                        &rest,
                        "{p}: the MTU and unused bytes"
                    );
                    assert_eq!(
                        read6::endpoints_of_ip(read6::quote(&step.out)),
                        (client, SOLO6),
                        "{p}: the quoted packet is the client's, to the frontend"
                    );
                    crate::harness::verify_checksums(&step.out)
                        .unwrap_or_else(|e| panic!("{p}: checksums of the translated error: {e}"));
                    assert_eq!(
                        h.counter(Counter::IcmpTranslated),
                        translated + 1,
                        "{p}: the translated error is counted"
                    );
                }
            }
        }
    }
    check_counters(&h);
}

#[test]
fn icmp_errors_from_a_router_keep_the_routers_source() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    for proto in PROTOCOLS {
        for opened in [Opened::Pod, Opened::HostViaUplink] {
            let p = format!("{} {opened:?}", proto_name(proto));
            let client = opened.client6(42100);
            let fwd = flow6(proto, client, SOLO6, b"far away").bytes();
            let sent = h.expect_step(opened.request_hook(), &fwd).out;
            let err = Frame6::icmp_error(
                ROUTER6,
                *client.ip(),
                ICMPV6_TIME_EXCEED,
                0,
                [0; 4],
                &sent[ETH_LEN..],
                usize::MAX,
            )
            .bytes();
            let step = h.expect_step(opened.reply_hook(), &err);
            assert_eq!(
                read6::src(&step.out),
                ROUTER6,
                "{p}: the router stays the source"
            );
            assert_eq!(read6::dst(&step.out), *client.ip(), "{p}: to the client");
            assert_eq!(
                read6::endpoints_of_ip(read6::quote(&step.out)),
                (client, SOLO6),
                "{p}: the quoted packet is the client's, to the frontend"
            );
            crate::harness::verify_checksums(&step.out)
                .unwrap_or_else(|e| panic!("{p}: checksums of the translated error: {e}"));
        }
    }
    check_counters(&h);
}

#[test]
fn a_bare_syn_after_a_completed_handshake_opens_a_new_flow_and_retransmits_do_not() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    let client = at(POD_CLIENT6, 40011);
    let key = Tuple::new(IPPROTO_TCP, client, WEB6);
    let segment = |flags| {
        flow6(IPPROTO_TCP, client, WEB6, b"")
            .with_tcp_flags(flags)
            .bytes()
    };
    let created = |h: &Harness| {
        let e = h.entry(&key).expect("the flow's forward entry");
        assert_eq!(e.dir, CtDir::Forward as u8, "a forward entry");
        e.created_ns
    };
    let id = frontend_id(WEB6, IPPROTO_TCP);
    let backend_of = |out: &[u8]| {
        let b = read6::endpoints(out).1;
        assert!(WEB6_BACKENDS.contains(&b), "{b} is not a backend of WEB6");
        b
    };

    let first_out = h.expect_step(Hook::PodIngress, &segment(TCP_SYN)).out;
    let first = created(&h);
    for retransmit in 1..=2 {
        let again = h.expect_step(Hook::PodIngress, &segment(TCP_SYN));
        assert!(
            again.out == first_out,
            "retransmit {retransmit} goes to the same backend"
        );
        assert_eq!(
            created(&h),
            first,
            "retransmit {retransmit} keeps the entry"
        );
    }
    for (what, flags) in [
        ("the handshake's ACK", TCP_ACK),
        ("data", TCP_PSH | TCP_ACK),
    ] {
        let step = h.expect_step(Hook::PodIngress, &segment(flags));
        backend_of(&step.out);
        assert_eq!(created(&h), first, "{what} stays on the flow");
    }
    assert_eq!(h.frontend_stats(id).flows, 1, "one flow so far");

    let step = h.expect_step(Hook::PodIngress, &segment(TCP_SYN));
    assert!(
        matches!(step.expected.action, Action::Flow { new_flow: true, .. }),
        "the model opens a new flow"
    );
    backend_of(&step.out);
    let second = created(&h);
    assert!(
        second >= first,
        "the new flow's entry is not older than the first (created {first}, then {second}; the coarse clock may not tick between them)"
    );
    assert_eq!(h.frontend_stats(id).flows, 2, "the new flow is counted");

    let step = h.expect_step(Hook::PodIngress, &segment(TCP_FIN | TCP_ACK));
    backend_of(&step.out);
    assert_eq!(created(&h), second, "a FIN stays on the new flow");
    check_counters(&h);
}

#[test]
fn both_families_count_in_their_own_frontends_and_keep_their_own_conntrack() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    let (id4, id6) = (
        frontend_id(crate::SOLO, IPPROTO_UDP),
        frontend_id(SOLO6, IPPROTO_UDP),
    );
    assert_ne!(id4, id6, "the families' frontends have their own ids");
    let client4 = std::net::SocketAddrV4::new(crate::POD_CLIENT, 40012);
    let client6 = at(POD_CLIENT6, 40012);
    let frames: [(Hook, Vec<u8>, u32); 5] = [
        (
            Hook::PodIngress,
            flow6(IPPROTO_UDP, client6, SOLO6, b"one").bytes(),
            id6,
        ),
        (
            Hook::PodIngress,
            Frame4::flow(IPPROTO_UDP, client4, crate::SOLO, b"four").bytes(),
            id4,
        ),
        (
            Hook::PodIngress,
            flow6(IPPROTO_UDP, client6, SOLO6, b"two, longer")
                .with_ext(vec![Ext::HopByHop(vec![])])
                .bytes(),
            id6,
        ),
        (
            Hook::PodEgress,
            flow6(IPPROTO_UDP, SOLO6_BACKEND, client6, b"reply").bytes(),
            id6,
        ),
        (
            Hook::PodEgress,
            Frame4::flow(IPPROTO_UDP, crate::SOLO_BACKEND, client4, b"four back").bytes(),
            id4,
        ),
    ];
    let mut want = std::collections::HashMap::<u32, (u64, u64)>::new();
    for (hook, frame, id) in &frames {
        let step = h.expect_step(*hook, frame);
        assert!(step.expected.translated(), "translated at {hook:?}");
        let w = want.entry(*id).or_default();
        w.0 += 1;
        w.1 += frame.len() as u64;
    }
    for (id, (packets, bytes)) in want {
        let stats = h.frontend_stats(id);
        assert_eq!(
            (stats.packets, stats.bytes, stats.flows),
            (packets, bytes, 1),
            "frontend {id}: packets, bytes, flows"
        );
    }
    for other in standard_tables()
        .frontends
        .iter()
        .filter(|f| f.id != id4 && f.id != id6)
    {
        assert_eq!(
            h.frontend_stats(other.id).packets,
            0,
            "frontend {} counted another frontend's packets",
            other.id
        );
    }
    let v6_key = Tuple::new(IPPROTO_UDP, client6, SOLO6);
    let v4_key = Tuple::new(IPPROTO_UDP, client4, crate::SOLO);
    assert!(h.ct6(&v6_key).is_some(), "the IPv6 flow is in CT_V6");
    assert!(h.ct(&v4_key).is_some(), "the IPv4 flow is in CT_V4");
    assert_eq!(
        h.maps.v6.conntrack.keys().filter(Result::is_ok).count(),
        2,
        "CT_V6 holds the IPv6 flow's two entries only"
    );
    assert_eq!(
        h.maps.v4.conntrack.keys().filter(Result::is_ok).count(),
        2,
        "CT_V4 holds the IPv4 flow's two entries only"
    );
    check_counters(&h);
}

#[test]
fn link_layer_padding_after_the_packet_is_left_alone() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    let padding = [0xa5u8; 12];
    for proto in PROTOCOLS {
        let p = proto_name(proto);
        let client = at(POD_CLIENT6, 40013);
        let plain = flow6(proto, client, SOLO6, b"padded").bytes();
        let fwd = [&plain[..], &padding].concat();
        let step = h.expect_step(Hook::PodIngress, &fwd);
        assert_eq!(
            read6::endpoints(&step.out),
            (client, SOLO6_BACKEND),
            "{p}: translated with padding after it"
        );
        assert_eq!(
            &step.out[plain.len()..],
            &padding,
            "{p}: the padding is left alone"
        );

        // An error quoting 48 bytes of the request, followed by padding
        // that happens to hold the rest of the quoted header: what lies
        // beyond the error (a TCP checksum) is not the error's.
        let sent = flow6(proto, client, SOLO6_BACKEND, b"padded").ip_packet();
        let err = Frame6::icmp_error(
            *SOLO6_BACKEND.ip(),
            *client.ip(),
            ICMPV6_DEST_UNREACH,
            ICMPV6_PORT_UNREACH,
            [0; 4],
            &sent,
            48,
        )
        .bytes();
        let trailer = &sent[48..sent.len().min(60)];
        let framed = [&err[..], trailer].concat();
        let step = h.expect_step(Hook::PodEgress, &framed);
        assert!(
            matches!(step.expected.action, Action::IcmpError { .. }),
            "{p}: the error is translated"
        );
        assert_eq!(
            read6::endpoints_of_ip(&read6::quote(&step.out)[..48]),
            (client, SOLO6),
            "{p}: the quoted packet is the client's"
        );
        assert_eq!(
            &step.out[err.len()..],
            trailer,
            "{p}: the bytes after the error are left alone"
        );
    }
    check_counters(&h);
}
