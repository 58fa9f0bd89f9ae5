//! Malformed packets, fragments among them: they pass bit-identical at
//! every hook, counted as unparsable, and open no flow.

use crate::{
    checks::{assert_unparsable_everywhere, check_counters},
    families::{flow, Family, V4, V6},
    fixtures::{proto_name, standard_tables},
    frames::{
        self, Ext, Frame, Frame6, ETH_LEN, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP,
        L4, PROTOCOLS,
    },
    harness::Harness,
    model::Tuple,
    require_privileged,
};

family_tests!(
    v4: [malformed_ipv4_passes_bit_identical_and_is_counted_as_unparsable]
    v6: [
        malformed_ipv6_passes_bit_identical_and_is_counted_as_unparsable,
        fragments_pass_bit_identical_and_are_counted_as_unparsable,
    ]
);

type Cases = Vec<(&'static str, Vec<u8>)>;

/// Where a family says how long its upper layer is.
trait UpperLength: Family {
    /// Sets the length field(s) of a frame without options or extension
    /// headers so that its upper layer is `len` bytes long.
    fn set_upper_len(frame: &mut [u8], len: usize);
}

impl UpperLength for V4 {
    fn set_upper_len(frame: &mut [u8], len: usize) {
        let total = (V4::IP_LEN + len) as u16;
        frame[ETH_LEN + 2..ETH_LEN + 4].copy_from_slice(&total.to_be_bytes());
    }
}

impl UpperLength for V6 {
    fn set_upper_len(frame: &mut [u8], len: usize) {
        frame[ETH_LEN + 4..ETH_LEN + 6].copy_from_slice(&(len as u16).to_be_bytes());
    }
}

/// `good` with its bytes edited by `f`.
fn edit<F: Family>(good: &Frame<F::Ip>, f: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
    let mut b = good.bytes();
    f(&mut b);
    b
}

/// What both families make of a bad upper layer: cut short, or a TCP
/// header shorter than its fixed part.
fn upper_layer_cases<F: UpperLength>(good: &Frame<F::Ip>, proto: u8) -> Cases {
    let l4_min = if proto == IPPROTO_TCP { 20 } else { 8 };
    let l4 = ETH_LEN + F::IP_LEN;
    let mut cases = vec![
        (
            "a truncated packet",
            edit::<F>(good, |b| b.truncate(b.len() - 1)),
        ),
        (
            "an L4 header cut short",
            edit::<F>(good, |b| {
                F::set_upper_len(b, l4_min - 1);
                b.truncate(l4 + l4_min - 1);
            }),
        ),
    ];
    if proto == IPPROTO_TCP {
        cases.push((
            "a TCP data offset of 4",
            edit::<F>(good, |b| b[l4 + 12] = 4 << 4),
        ));
        cases.push((
            "a TCP data offset of 0",
            edit::<F>(good, |b| b[l4 + 12] = 0),
        ));
    }
    cases
}

fn malformed_ipv4_passes_bit_identical_and_is_counted_as_unparsable() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    for proto in PROTOCOLS {
        let client = V4::sock(V4::POD_CLIENT, 40007);
        let good = flow::<V4>(proto, client, V4::SOLO, b"sixteen bytes!!!");
        let fragment = |frag: u16| {
            let mut g = good.clone();
            g.ip.frag = frag;
            g.bytes()
        };
        let edit = |f: fn(&mut Vec<u8>)| edit::<V4>(&good, f);
        let mut cases = vec![
            ("a first fragment (MF)", fragment(frames::IP_MF)),
            ("a later fragment (offset)", fragment(185)),
            (
                "a last fragment (offset, no MF)",
                fragment(frames::IP_DF | 1),
            ),
            ("options beyond the packet's end", edit(|b| b[14] = 0x4f)),
            ("an IHL of 4", edit(|b| b[14] = 0x44)),
            ("an IHL of 0", edit(|b| b[14] = 0x40)),
            ("version 6 in an IPv4 frame", edit(|b| b[14] = 0x65)),
            ("version 5", edit(|b| b[14] = 0x55)),
            (
                "a total length below the header",
                edit(|b| b[16..18].copy_from_slice(&16u16.to_be_bytes())),
            ),
        ];
        cases.extend(upper_layer_cases::<V4>(&good, proto));
        let key = Tuple::new(proto, client, V4::SOLO);
        for (what, frame) in &cases {
            let what = format!("{} {what}", proto_name(proto));
            assert_unparsable_everywhere(&mut h, frame, &what, &key);
        }
    }
    let short_icmp = Frame {
        l4: L4::Other {
            proto: IPPROTO_ICMP,
            bytes: vec![3, 3, 0, 0],
        },
        ..flow::<V4>(IPPROTO_UDP, V4::sock(V4::POD_CLIENT, 1), V4::SOLO, b"")
    }
    .bytes();
    let key = Tuple::new(IPPROTO_UDP, V4::sock(V4::POD_CLIENT, 1), V4::SOLO);
    assert_unparsable_everywhere(&mut h, &short_icmp, "a 4-byte ICMP message", &key);
    check_counters(&h);
}

fn malformed_ipv6_passes_bit_identical_and_is_counted_as_unparsable() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    for proto in PROTOCOLS {
        let client = V6::sock(V6::POD_CLIENT, 40008);
        let good = flow::<V6>(proto, client, V6::SOLO, b"sixteen bytes!!!");
        let edit = |f: &dyn Fn(&mut Vec<u8>)| edit::<V6>(&good, f);
        let payload_len = good.bytes().len() - ETH_LEN - 40;
        let l4_min = if proto == IPPROTO_TCP { 20 } else { 8 };
        // A jumbogram (RFC 2675): payload length zero, the length in a
        // hop-by-hop option.
        let mut jumbo = good
            .clone()
            .with_ext(vec![Ext::HopByHop(vec![0xc2, 4, 0, 1, 0, 0])])
            .bytes();
        V6::set_upper_len(&mut jumbo, 0);
        let mut long_ext = good.clone().with_ext(vec![Ext::DestOpts(vec![])]).bytes();
        // Its length byte: 8 * (1 + 60) bytes, beyond the payload.
        long_ext[ETH_LEN + 41] = 60;
        let mut cases = vec![
            ("a jumbogram", jumbo),
            (
                "a payload length of zero",
                edit(&|b| V6::set_upper_len(b, 0)),
            ),
            (
                "a payload length beyond the frame",
                edit(&|b| V6::set_upper_len(b, payload_len + 1)),
            ),
            ("version 4 in an IPv6 frame", edit(&|b| b[ETH_LEN] = 0x46)),
            ("version 7", edit(&|b| b[ETH_LEN] = 0x70)),
            ("an extension header beyond the payload", long_ext),
            (
                "an L4 header cut short by the payload length, bytes after it",
                edit(&|b| V6::set_upper_len(b, l4_min - 1)),
            ),
        ];
        cases.extend(upper_layer_cases::<V6>(&good, proto));
        let key = Tuple::new(proto, client, V6::SOLO);
        for (what, frame) in &cases {
            let what = format!("{} {what}", proto_name(proto));
            assert_unparsable_everywhere(&mut h, frame, &what, &key);
        }
    }
    let client = V6::sock(V6::POD_CLIENT, 1);
    let short_icmp = Frame6 {
        l4: L4::Other {
            proto: IPPROTO_ICMPV6,
            bytes: vec![1, 4, 0, 0, 0, 0, 0],
        },
        ..flow::<V6>(IPPROTO_UDP, client, V6::SOLO, b"")
    }
    .bytes();
    let key = Tuple::new(IPPROTO_UDP, client, V6::SOLO);
    assert_unparsable_everywhere(&mut h, &short_icmp, "a 7-byte ICMPv6 message", &key);
    check_counters(&h);
}

fn fragment(offset: u16, more: bool) -> Ext {
    Ext::Fragment {
        offset,
        more,
        id: 0x1234_5678,
    }
}

fn fragments_pass_bit_identical_and_are_counted_as_unparsable() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    for proto in PROTOCOLS {
        let client = V6::sock(V6::POD_CLIENT, 40007);
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
                    Ext::srh(V6::ip(V6::SOLO)),
                    fragment(0, true),
                ],
            ),
        ];
        let key = Tuple::new(proto, client, V6::SOLO);
        for (name, chain) in chains {
            let what = format!("{} {name}", proto_name(proto));
            let frame = flow::<V6>(proto, client, V6::SOLO, b"sixteen bytes!!!")
                .with_ext(chain)
                .bytes();
            assert_unparsable_everywhere(&mut h, &frame, &what, &key);
        }
    }
    check_counters(&h);
}
