//! Frontends with a policy: one without backends that refuses new flows
//! (a reset for a SYN, a port unreachable for a datagram, sent back to the
//! client), and one whose own backends are not redirected. The model knows
//! no policy: each frame's fate is asserted here, its checksums with
//! etherparse.

use std::net::{IpAddr, SocketAddr};

use etherparse::{PacketBuilder, TcpOptionElement};
use hairpin_common::{Counter, FRONTEND_REFUSE, FRONTEND_SKIP_BACKENDS};

use crate::{
    families::{flow, tuple_of, Family},
    fixtures::{fe, UPLINK},
    frames::{macs, IPPROTO_TCP, IPPROTO_UDP, NODE_MAC, POD_MAC, TCP_ACK},
    harness::{verify_checksums, Harness, TC_ACT_REDIRECT, TC_ACT_UNSPEC},
    model::{Hook, Tables},
    require_privileged,
};

family_tests!(both: [
    a_syn_to_a_refusing_frontend_is_answered_with_a_reset_to_its_sender,
    a_syns_options_become_no_ops_in_its_reset_and_its_data_is_acknowledged,
    a_datagram_to_a_refusing_frontend_is_answered_with_a_port_unreachable,
    only_a_new_flows_first_packet_is_refused,
    a_backend_calling_a_frontend_that_skips_its_backends_reaches_the_real_address,
]);

const TCP_RST: u8 = 0x04;

/// EMPTY refuses (TCP and UDP); SOLO skips its backend (TCP).
fn tables<F: Family>() -> Tables {
    let id = F::FIRST_ID;
    let mut refusing_tcp = fe(id, F::EMPTY, IPPROTO_TCP, &[]);
    refusing_tcp.flags = FRONTEND_REFUSE;
    let mut refusing_udp = fe(id + 1, F::EMPTY, IPPROTO_UDP, &[]);
    refusing_udp.flags = FRONTEND_REFUSE;
    let mut skipping = fe(id + 2, F::SOLO, IPPROTO_TCP, &[F::SOLO_BACKEND]);
    skipping.flags = FRONTEND_SKIP_BACKENDS;
    Tables {
        frontends: vec![refusing_tcp, refusing_udp, skipping],
        uplink: Some(UPLINK),
    }
}

/// The TCP header of a frame.
fn tcp<F: Family>(frame: &[u8]) -> &[u8] {
    F::l4(frame)
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().unwrap())
}

fn a_syn_to_a_refusing_frontend_is_answered_with_a_reset_to_its_sender<F: Family>() {
    require_privileged!();
    let mut h = Harness::new(tables::<F>());
    for (hook, client, dst_mac) in [
        (Hook::PodIngress, F::POD_CLIENT, POD_MAC),
        (Hook::UplinkEgress, F::HOST_CLIENT, UPLINK.1),
    ] {
        let client = F::sock(client, 40100);
        let syn = flow::<F>(IPPROTO_TCP, client, F::EMPTY, b"").bytes();
        let (verdict, out) = h.run_unmodelled(hook, &syn);
        assert_eq!(verdict, TC_ACT_REDIRECT, "{hook:?}: the reset goes back");
        assert_eq!(
            F::endpoints(&out),
            (F::EMPTY, client),
            "{hook:?}: the reset is from the frontend to the client"
        );
        let t = tcp::<F>(&out);
        assert_eq!(t[13], TCP_RST | TCP_ACK, "{hook:?}: flags RST and ACK");
        assert_eq!(be32(&t[4..]), 0, "{hook:?}: sequence number zero");
        assert_eq!(
            be32(&t[8..]),
            be32(&tcp::<F>(&syn)[4..]) + 1,
            "{hook:?}: the SYN is acknowledged"
        );
        assert_eq!(&t[14..16], &[0, 0], "{hook:?}: window zero");
        assert_eq!(
            out.len(),
            syn.len(),
            "{hook:?}: the segment keeps its length"
        );
        assert_eq!(macs(&out).0, dst_mac, "{hook:?}: addressed to the sender");
        verify_checksums(&out).unwrap_or_else(|e| panic!("{hook:?}: {e}"));
        assert!(
            h.entry(&tuple_of::<F>(&syn)).is_none(),
            "{hook:?}: a refusal opens no flow"
        );
    }
    assert_eq!(h.counter(Counter::Refused), 2);
}

/// A SYN as Linux sends it, built by etherparse.
fn syn_with_options<F: Family>(client: F::Sock, payload: &[u8]) -> Vec<u8> {
    let (client, frontend): (SocketAddr, SocketAddr) = (client.into(), F::EMPTY.into());
    let ip = match (client.ip(), frontend.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            PacketBuilder::ethernet2(POD_MAC, NODE_MAC).ipv4(s.octets(), d.octets(), 64)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            PacketBuilder::ethernet2(POD_MAC, NODE_MAC).ipv6(s.octets(), d.octets(), 64)
        }
        _ => unreachable!("one family"),
    };
    let builder = ip
        .tcp(client.port(), frontend.port(), 7_777_777, 64240)
        .syn()
        .options(&[
            TcpOptionElement::MaximumSegmentSize(1460),
            TcpOptionElement::SelectiveAcknowledgementPermitted,
            TcpOptionElement::Timestamp(123_456, 0),
            TcpOptionElement::Noop,
            TcpOptionElement::WindowScale(7),
        ])
        .expect("valid TCP options");
    let mut frame = Vec::new();
    builder.write(&mut frame, payload).expect("a frame");
    frame
}

fn a_syns_options_become_no_ops_in_its_reset_and_its_data_is_acknowledged<F: Family>() {
    require_privileged!();
    let mut h = Harness::new(tables::<F>());
    let syn = syn_with_options::<F>(F::sock(F::POD_CLIENT, 40101), b"fast open");
    verify_checksums(&syn).expect("the SYN's own checksums");
    let (verdict, out) = h.run_unmodelled(Hook::PodIngress, &syn);
    assert_eq!(verdict, TC_ACT_REDIRECT);
    let t = tcp::<F>(&out);
    let hdr_len = usize::from(t[12] >> 4) * 4;
    assert_eq!(hdr_len, 40, "the header keeps its length");
    assert!(
        t[20..hdr_len].iter().all(|&b| b == 1),
        "options made no-ops: {:02x?}",
        &t[20..hdr_len]
    );
    assert_eq!(
        be32(&t[8..]),
        7_777_777 + 1 + 9,
        "the SYN and its 9 bytes of data are acknowledged"
    );
    verify_checksums(&out).unwrap_or_else(|e| panic!("{e}"));
}

fn a_datagram_to_a_refusing_frontend_is_answered_with_a_port_unreachable<F: Family>() {
    require_privileged!();
    let mut h = Harness::new(tables::<F>());
    let (_, unreach_type, unreach_code, _) = F::ICMP_ERRORS[0];
    for (hook, client, dst_mac) in [
        (Hook::PodIngress, F::POD_CLIENT, POD_MAC),
        (Hook::UplinkEgress, F::HOST_CLIENT, UPLINK.1),
    ] {
        let client = F::sock(client, 40200);
        let query = flow::<F>(IPPROTO_UDP, client, F::EMPTY, &[0x5a; 100]).bytes();
        let (verdict, out) = h.run_unmodelled(hook, &query);
        assert_eq!(verdict, TC_ACT_REDIRECT, "{hook:?}: the error goes back");
        assert_eq!(F::src(&out), F::ip(F::EMPTY), "{hook:?}: from the frontend");
        assert_eq!(F::dst(&out), F::ip(client), "{hook:?}: to the client");
        let icmp = F::l4(&out);
        assert_eq!(
            (icmp[0], icmp[1]),
            (unreach_type, unreach_code),
            "{hook:?}: port unreachable"
        );
        let quoted = &query[crate::frames::ETH_LEN..crate::frames::ETH_LEN + F::IP_LEN + 8];
        assert_eq!(
            F::quote(&out),
            quoted,
            "{hook:?}: the quote is the datagram's IP and UDP headers"
        );
        assert_eq!(macs(&out).0, dst_mac, "{hook:?}: addressed to the sender");
        verify_checksums(&out).unwrap_or_else(|e| panic!("{hook:?}: {e}"));
    }
    assert_eq!(h.counter(Counter::Refused), 2);
}

fn only_a_new_flows_first_packet_is_refused<F: Family>() {
    require_privileged!();
    let mut h = Harness::new(tables::<F>());
    let client = F::sock(F::POD_CLIENT, 40300);
    let ack = flow::<F>(IPPROTO_TCP, client, F::EMPTY, b"late")
        .with_tcp_flags(TCP_ACK)
        .bytes();
    let (verdict, out) = h.run_unmodelled(Hook::PodIngress, &ack);
    assert_eq!(
        (verdict, out),
        (TC_ACT_UNSPEC, ack),
        "a segment of no new connection passes"
    );
    for hook in [Hook::PodEgress, Hook::UplinkIngress] {
        let syn = flow::<F>(IPPROTO_TCP, client, F::EMPTY, b"").bytes();
        let (verdict, out) = h.run_unmodelled(hook, &syn);
        assert_eq!(
            (verdict, out),
            (TC_ACT_UNSPEC, syn),
            "{hook:?}: refusals are made where flows open only"
        );
    }
    assert_eq!(h.counter(Counter::Refused), 0);
}

fn a_backend_calling_a_frontend_that_skips_its_backends_reaches_the_real_address<F: Family>() {
    require_privileged!();
    let mut h = Harness::new(tables::<F>());
    let from_backend = F::sock(F::ip(F::SOLO_BACKEND), 40400);
    let syn = flow::<F>(IPPROTO_TCP, from_backend, F::SOLO, b"").bytes();
    let (verdict, out) = h.run_unmodelled(Hook::PodIngress, &syn);
    assert_eq!(
        (verdict, &out),
        (TC_ACT_UNSPEC, &syn),
        "the backend's SYN passes untouched"
    );
    assert!(h.entry(&tuple_of::<F>(&syn)).is_none(), "no flow for it");
    assert_eq!(h.counter(Counter::BackendSkipped), 1);

    let client = F::sock(F::POD_CLIENT, 40401);
    let syn = flow::<F>(IPPROTO_TCP, client, F::SOLO, b"").bytes();
    let (verdict, out) = h.run_unmodelled(Hook::PodIngress, &syn);
    assert_eq!(verdict, TC_ACT_UNSPEC);
    assert_eq!(
        F::endpoints(&out),
        (client, F::SOLO_BACKEND),
        "another client is redirected"
    );
    verify_checksums(&out).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.counter(Counter::BackendSkipped), 1);
}
