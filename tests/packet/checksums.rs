//! UDP checksums through a translation: none stays none, and a computed
//! zero is sent as all ones.

use crate::{
    checks::check_counters,
    families::{flow, Family},
    fixtures::standard_tables,
    frames::{internet_checksum, IpHeader as _, IPPROTO_UDP},
    harness::Harness,
    model::Hook,
    require_privileged,
};

family_tests!(both: [
    a_zero_udp_checksum_stays_zero,
    a_udp_checksum_that_computes_to_zero_is_sent_as_all_ones,
]);

/// A zero UDP checksum means none in IPv4 (RFC 768). It is not allowed in
/// IPv6 (RFC 8200 section 8.1), so no sender makes one; if one comes
/// anyway, the datapath treats it as in IPv4: its checksum helper
/// (`BPF_F_MARK_MANGLED_0`) leaves a zero alone, and the datagram is
/// translated with its checksum still zero.
fn a_zero_udp_checksum_stays_zero<F: Family>() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    let client = F::sock(F::POD_CLIENT, 40003);
    let f = flow::<F>(IPPROTO_UDP, client, F::SOLO, b"no checksum")
        .without_udp_checksum()
        .bytes();
    let step = h.expect_step(Hook::PodIngress, &f);
    assert_eq!(
        F::endpoints(&step.out).1,
        F::SOLO_BACKEND,
        "translated to the backend"
    );
    assert_eq!(&F::l4(&step.out)[6..8], &[0, 0], "the checksum stays zero");

    let r = flow::<F>(IPPROTO_UDP, F::SOLO_BACKEND, client, b"none either")
        .without_udp_checksum()
        .bytes();
    let step = h.expect_step(Hook::PodEgress, &r);
    assert_eq!(
        F::endpoints(&step.out).0,
        F::SOLO,
        "the reply is translated"
    );
    assert_eq!(
        &F::l4(&step.out)[6..8],
        &[0, 0],
        "the reply's checksum stays zero"
    );
    check_counters(&h);
}

fn a_udp_checksum_that_computes_to_zero_is_sent_as_all_ones<F: Family>() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    let client = F::sock(F::POD_CLIENT, 40004);
    // Choose the first payload word so that the datagram as the backend
    // receives it sums to 0xffff: its computed checksum is zero.
    let mut payload = vec![0u8; 12];
    let translated =
        flow::<F>(IPPROTO_UDP, client, F::SOLO_BACKEND, &payload).without_udp_checksum();
    let bytes = translated.l4.bytes(&translated.ip);
    let pseudo = translated.ip.pseudo_header(IPPROTO_UDP, bytes.len());
    let word = internet_checksum(&[&pseudo, &bytes]);
    payload[..2].copy_from_slice(&word.to_be_bytes());
    let check = flow::<F>(IPPROTO_UDP, client, F::SOLO_BACKEND, &payload).bytes();
    assert_eq!(
        &F::l4(&check)[6..8],
        &[0xff, 0xff],
        "the crafted datagram's computed checksum is zero"
    );

    let f = flow::<F>(IPPROTO_UDP, client, F::SOLO, &payload).bytes();
    assert_ne!(
        &F::l4(&f)[6..8],
        &[0xff, 0xff],
        "the client's datagram checksum is not zero"
    );
    let step = h.expect_step(Hook::PodIngress, &f);
    assert_eq!(
        F::endpoints(&step.out).1,
        F::SOLO_BACKEND,
        "translated to the backend"
    );
    assert_eq!(
        &F::l4(&step.out)[6..8],
        &[0xff, 0xff],
        "a computed zero is sent as 0xffff, not as 'no checksum'"
    );
    check_counters(&h);
}
