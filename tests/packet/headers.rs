//! What lies around a packet's ports: IPv4 options, IPv6 extension headers
//! (four walked at the most), link-layer padding. It is kept as it is, and
//! the ports behind it are translated; behind a fifth extension header a
//! packet passes.

use hairpin_common::Counter;

use crate::{
    checks::{assert_untouched_everywhere, check_counters},
    families::{flow, Family, V4, V6},
    fixtures::{proto_name, standard_tables},
    frames::{read, read6, Ext, Frame6, ICMPV6_DEST_UNREACH, ICMPV6_PORT_UNREACH, PROTOCOLS},
    harness::Harness,
    model::{Action, Hook},
    require_privileged,
};

family_tests!(
    v4: [ip_options_are_kept_and_the_ports_behind_them_translated]
    v6: [
        extension_headers_are_kept_and_the_ports_behind_them_translated,
        behind_a_fifth_extension_header_a_packet_passes_bit_identical_and_uncounted,
        link_layer_padding_after_the_packet_is_left_alone,
    ]
);

fn ip_options_are_kept_and_the_ports_behind_them_translated() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    let mut record_route = vec![7, 39, 4];
    record_route.resize(39, 0);
    let option_sets: [(&str, Vec<u8>); 4] = [
        ("one NOP word", vec![1, 1, 1, 1]),
        ("NOPs then EOL, 40 bytes", [vec![1; 39], vec![0]].concat()),
        ("record route", record_route),
        ("router alert", vec![0x94, 4, 0, 0]),
    ];
    let mut port = 41000;
    for proto in PROTOCOLS {
        for (name, options) in &option_sets {
            let p = format!("{} with {name}", proto_name(proto));
            port += 1;
            let client = V4::sock(V4::POD_CLIENT, port);
            let mut f = flow::<V4>(proto, client, V4::SOLO, b"options");
            f.ip.options = options.clone();
            let fwd = f.bytes();
            let hlen = read::ihl(&fwd);
            assert!(hlen > 20, "{p}: the frame has options");

            let step = h.expect_step(Hook::PodIngress, &fwd);
            assert_eq!(
                read::endpoints(&step.out),
                (client, V4::SOLO_BACKEND),
                "{p}: translated to the backend"
            );
            assert_eq!(
                &step.out[34..14 + hlen],
                &fwd[34..14 + hlen],
                "{p}: the options are kept"
            );

            let mut r = flow::<V4>(proto, V4::SOLO_BACKEND, client, b"back");
            r.ip.options = options.clone();
            let step = h.expect_step(Hook::PodEgress, &r.bytes());
            assert_eq!(
                read::endpoints(&step.out),
                (V4::SOLO, client),
                "{p}: reply translated"
            );
        }
    }
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
            vec![Ext::srh(*V6::SOLO.ip())],
        ),
        (
            "hop-by-hop, routing, destination options",
            vec![
                Ext::HopByHop(vec![]),
                Ext::srh(*V6::SOLO.ip()),
                Ext::DestOpts(vec![0x1e, 2, 0xab, 0xcd]),
            ],
        ),
        (
            "four extension headers, the most walked",
            vec![
                Ext::HopByHop(vec![]),
                Ext::DestOpts(vec![]),
                Ext::srh(*V6::SOLO.ip()),
                Ext::DestOpts(vec![0; 14]),
            ],
        ),
        (
            "a 1 KiB destination options header",
            vec![Ext::options_of_len(true, 1024)],
        ),
    ]
}

fn extension_headers_are_kept_and_the_ports_behind_them_translated() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    let mut port = 41000;
    for proto in PROTOCOLS {
        for (name, chain) in walked_chains() {
            let p = format!("{} with {name}", proto_name(proto));
            port += 1;
            let client = V6::sock(V6::POD_CLIENT, port);
            let fwd = flow::<V6>(proto, client, V6::SOLO, b"extensions")
                .with_ext(chain.clone())
                .bytes();
            assert!(!read6::ext(&fwd).is_empty(), "{p}: the frame has them");

            let step = h.expect_step(Hook::PodIngress, &fwd);
            assert_eq!(
                read6::endpoints(&step.out),
                (client, V6::SOLO_BACKEND),
                "{p}: translated to the backend"
            );
            assert_eq!(
                read6::ext(&step.out),
                read6::ext(&fwd),
                "{p}: the extension headers are kept"
            );

            let reply =
                flow::<V6>(proto, V6::SOLO_BACKEND, client, b"back").with_ext(chain.clone());
            let step = h.expect_step(Hook::PodEgress, &reply.bytes());
            assert_eq!(
                read6::endpoints(&step.out),
                (V6::SOLO, client),
                "{p}: reply translated"
            );
            assert_eq!(
                read6::ext(&step.out),
                read6::ext(&reply.bytes()),
                "{p}: the reply's extension headers are kept"
            );

            // An error that carries the extension headers itself, quoting
            // the request as the backend got it.
            let sent = flow::<V6>(proto, client, V6::SOLO_BACKEND, b"extensions").ip_packet();
            let err = Frame6::icmp_error(
                *V6::SOLO_BACKEND.ip(),
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
                *V6::SOLO.ip(),
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
        Ext::srh(*V6::SOLO.ip()),
        Ext::DestOpts(vec![]),
        last,
    ]
}

fn behind_a_fifth_extension_header_a_packet_passes_bit_identical_and_uncounted() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    for proto in PROTOCOLS {
        let client = V6::sock(V6::POD_CLIENT, 40100);
        // The flow exists: only what hides its ports keeps a packet out.
        let opened = h.expect_step(
            Hook::PodIngress,
            &flow::<V6>(proto, client, V6::SOLO, b"").bytes(),
        );
        assert!(opened.expected.translated(), "the flow opened");
        let fifths = [
            ("destination options", Ext::DestOpts(vec![])),
            ("routing", Ext::srh(*V6::SOLO.ip())),
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
            let request = flow::<V6>(proto, client, V6::SOLO, b"hidden")
                .with_ext(five_headers(last.clone()))
                .bytes();
            let reply = flow::<V6>(proto, V6::SOLO_BACKEND, client, b"hidden")
                .with_ext(five_headers(last.clone()))
                .bytes();
            let sent = flow::<V6>(proto, client, V6::SOLO_BACKEND, b"").ip_packet();
            let error = Frame6::icmp_error(
                *V6::SOLO_BACKEND.ip(),
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
            &flow::<V6>(proto, client, V6::SOLO, b"")
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

fn link_layer_padding_after_the_packet_is_left_alone() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    let padding = [0xa5u8; 12];
    for proto in PROTOCOLS {
        let p = proto_name(proto);
        let client = V6::sock(V6::POD_CLIENT, 40013);
        let plain = flow::<V6>(proto, client, V6::SOLO, b"padded").bytes();
        let fwd = [&plain[..], &padding].concat();
        let step = h.expect_step(Hook::PodIngress, &fwd);
        assert_eq!(
            read6::endpoints(&step.out),
            (client, V6::SOLO_BACKEND),
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
        let sent = flow::<V6>(proto, client, V6::SOLO_BACKEND, b"padded").ip_packet();
        let err = Frame6::icmp_error(
            *V6::SOLO_BACKEND.ip(),
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
            (client, V6::SOLO),
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
