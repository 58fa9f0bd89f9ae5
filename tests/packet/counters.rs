//! Frontend counters: packets, bytes and flows, each frontend its own, both
//! families in one `FRONTEND_STATS` and each in its own conntrack.

use std::collections::HashMap;

use crate::{
    checks::check_counters,
    families::{flow, Family, V4, V6},
    fixtures::{frontend_id, standard_tables},
    frames::{Ext, IPPROTO_UDP},
    harness::Harness,
    model::{Hook, Tuple},
    require_privileged,
};

family_tests!(
    v4: [frontend_counters_count_packets_bytes_and_flows]
    v6: [both_families_count_in_their_own_frontends_and_keep_their_own_conntrack]
);

/// Asserts that no frontend but `ids` counted a packet.
fn assert_only_counted(h: &Harness, ids: &[u32]) {
    for other in standard_tables()
        .frontends
        .iter()
        .filter(|f| !ids.contains(&f.id))
    {
        assert_eq!(
            h.frontend_stats(other.id).packets,
            0,
            "frontend {} counted another frontend's packets",
            other.id
        );
    }
}

fn frontend_counters_count_packets_bytes_and_flows() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    let client = V4::sock(V4::POD_CLIENT, 40012);
    let id = frontend_id(V4::SOLO, IPPROTO_UDP);
    let udp = |src, dst, payload: &[u8]| flow::<V4>(IPPROTO_UDP, src, dst, payload).bytes();
    let frames = [
        (Hook::PodIngress, udp(client, V4::SOLO, b"one")),
        (Hook::PodIngress, udp(client, V4::SOLO, b"two, longer")),
        (Hook::PodEgress, udp(V4::SOLO_BACKEND, client, b"reply")),
    ];
    let mut bytes = 0;
    for (hook, frame) in &frames {
        h.expect_step(*hook, frame);
        bytes += frame.len() as u64;
    }
    // Not counted: no frontend's packet.
    h.expect_step(Hook::PodIngress, &udp(client, V4::EMPTY, b""));
    let stats = h.frontend_stats(id);
    assert_eq!(stats.packets, 3, "both directions' packets are counted");
    assert_eq!(stats.bytes, bytes, "whole frames are counted");
    assert_eq!(stats.flows, 1, "one flow was opened");
    assert_only_counted(&h, &[id]);
    check_counters(&h);
}

fn both_families_count_in_their_own_frontends_and_keep_their_own_conntrack() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    let (id4, id6) = (
        frontend_id(V4::SOLO, IPPROTO_UDP),
        frontend_id(V6::SOLO, IPPROTO_UDP),
    );
    assert_ne!(id4, id6, "the families' frontends have their own ids");
    let client4 = V4::sock(V4::POD_CLIENT, 40012);
    let client6 = V6::sock(V6::POD_CLIENT, 40012);
    let frames: [(Hook, Vec<u8>, u32); 5] = [
        (
            Hook::PodIngress,
            flow::<V6>(IPPROTO_UDP, client6, V6::SOLO, b"one").bytes(),
            id6,
        ),
        (
            Hook::PodIngress,
            flow::<V4>(IPPROTO_UDP, client4, V4::SOLO, b"four").bytes(),
            id4,
        ),
        (
            Hook::PodIngress,
            flow::<V6>(IPPROTO_UDP, client6, V6::SOLO, b"two, longer")
                .with_ext(vec![Ext::HopByHop(vec![])])
                .bytes(),
            id6,
        ),
        (
            Hook::PodEgress,
            flow::<V6>(IPPROTO_UDP, V6::SOLO_BACKEND, client6, b"reply").bytes(),
            id6,
        ),
        (
            Hook::PodEgress,
            flow::<V4>(IPPROTO_UDP, V4::SOLO_BACKEND, client4, b"four back").bytes(),
            id4,
        ),
    ];
    let mut want = HashMap::<u32, (u64, u64)>::new();
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
    assert_only_counted(&h, &[id4, id6]);
    let v6_key = Tuple::new(IPPROTO_UDP, client6, V6::SOLO);
    let v4_key = Tuple::new(IPPROTO_UDP, client4, V4::SOLO);
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
