//! A TCP connection's life on its flow: SYN retransmits stay on it, and a
//! bare SYN once the handshake completed opens a new flow.

use std::marker::PhantomData;

use hairpin_common::{CtDir, CtOrigin};

use crate::{
    checks::{assert_flow_entries, check_counters},
    families::{flow, Family, V4, V6},
    fixtures::{frontend_id, standard_tables},
    frames::{IPPROTO_TCP, TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN},
    harness::{Harness, Step},
    model::{Action, Hook, Tuple},
    require_privileged,
};

family_tests!(
    both: [a_host_syn_that_passes_the_uplink_egress_again_keeps_its_flow]
    v4: [
        a_bare_syn_after_a_completed_handshake_opens_a_new_flow,
        syn_retransmits_stay_on_their_flow,
    ]
    v6: [a_bare_syn_after_a_completed_handshake_opens_a_new_flow_and_retransmits_do_not]
);

/// A pod's connection to WEB, its segments run at pod ingress.
struct Conn<F: Family> {
    client: F::Sock,
    key: Tuple,
    id: u32,
    family: PhantomData<F>,
}

impl<F: Family> Conn<F> {
    fn new(port: u16) -> Self {
        let client = F::sock(F::POD_CLIENT, port);
        Self {
            client,
            key: Tuple::new(IPPROTO_TCP, client, F::WEB),
            id: frontend_id(F::WEB, IPPROTO_TCP),
            family: PhantomData,
        }
    }

    fn send(&self, h: &mut Harness, flags: u8) -> Step {
        let segment = flow::<F>(IPPROTO_TCP, self.client, F::WEB, b"")
            .with_tcp_flags(flags)
            .bytes();
        h.expect_step(Hook::PodIngress, &segment)
    }

    /// Sends a segment and asserts that it reached one of WEB's backends.
    fn send_to_backend(&self, h: &mut Harness, flags: u8, what: &str) -> Step {
        let step = self.send(h, flags);
        let backend = F::endpoints(&step.out).1;
        assert!(
            F::WEB_BACKENDS.contains(&backend),
            "{what} goes to a backend, not to {backend}"
        );
        step
    }

    /// When the flow's forward entry was made.
    fn created(&self, h: &Harness) -> u64 {
        let e = h.entry(&self.key).expect("the flow's forward entry");
        assert_eq!(e.dir, CtDir::Forward as u8, "a forward entry");
        e.created_ns
    }

    /// Resends the first SYN `times` times: each goes where it went, on
    /// the same entry.
    fn retransmit_syn(&self, h: &mut Harness, first: &Step, times: u32) {
        let entry = h.entry(&self.key).expect("the flow's forward entry");
        for retransmit in 1..=times {
            let again = self.send(h, TCP_SYN);
            assert!(
                again.out == first.out,
                "retransmit {retransmit} goes to the same backend"
            );
            assert_eq!(
                self.created(h),
                entry.created_ns,
                "retransmit {retransmit} keeps the entry"
            );
            let nat = h.entry(&self.key).expect("the flow's forward entry").nat;
            assert_eq!(nat, entry.nat, "retransmit {retransmit} keeps the backend");
        }
        assert_eq!(h.frontend_stats(self.id).flows, 1, "one flow");
    }

    /// Completes the handshake of the flow opened at `first` (its entry's
    /// creation), then opens a new flow with a bare SYN and ends it.
    fn new_flow_after_handshake(&self, h: &mut Harness, first: u64) {
        for (what, flags) in [
            ("the handshake's ACK", TCP_ACK),
            ("data", TCP_PSH | TCP_ACK),
        ] {
            self.send_to_backend(h, flags, what);
            assert_eq!(self.created(h), first, "{what} stays on the flow");
        }
        assert_eq!(h.frontend_stats(self.id).flows, 1, "one flow so far");

        let step = self.send_to_backend(h, TCP_SYN, "the new flow");
        assert!(
            matches!(step.expected.action, Action::Flow { new_flow: true, .. }),
            "the model opens a new flow"
        );
        let second = self.created(h);
        assert!(
            second >= first,
            "the new flow's entry is not older than the first (created {first}, then {second}; the coarse clock may not tick between them)"
        );
        assert_eq!(
            h.frontend_stats(self.id).flows,
            2,
            "the new flow is counted"
        );

        self.send_to_backend(h, TCP_FIN | TCP_ACK, "a FIN");
        assert_eq!(self.created(h), second, "a FIN stays on the new flow");
    }
}

fn a_bare_syn_after_a_completed_handshake_opens_a_new_flow() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    let conn = Conn::<V4>::new(40010);
    conn.send(&mut h, TCP_SYN);
    let first = conn.created(&h);
    conn.new_flow_after_handshake(&mut h, first);
    check_counters(&h);
}

fn syn_retransmits_stay_on_their_flow() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    let conn = Conn::<V4>::new(40011);
    let first = conn.send(&mut h, TCP_SYN);
    conn.retransmit_syn(&mut h, &first, 3);
    check_counters(&h);
}

fn a_bare_syn_after_a_completed_handshake_opens_a_new_flow_and_retransmits_do_not() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    let conn = Conn::<V6>::new(40011);
    let first = conn.send_to_backend(&mut h, TCP_SYN, "the SYN");
    let created = conn.created(&h);
    conn.retransmit_syn(&mut h, &first, 2);
    conn.new_flow_after_handshake(&mut h, created);
    check_counters(&h);
}

/// A host's SYN, translated and re-routed on the uplink's egress, waits in
/// the neighbour queue while the backend's address is resolved, then passes
/// the uplink's egress again addressed to the backend, from the flow's own
/// port: it is not a new direct connection, and the flow stays.
fn a_host_syn_that_passes_the_uplink_egress_again_keeps_its_flow<F: Family>() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    let client = F::sock(F::HOST_CLIENT, 50002);
    let syn = flow::<F>(IPPROTO_TCP, client, F::WEB, b"")
        .with_tcp_flags(TCP_SYN)
        .bytes();
    let first = h.expect_step(Hook::UplinkEgress, &syn);
    let backend = F::endpoints(&first.out).1;
    let key = Tuple::new(IPPROTO_TCP, client, F::WEB);
    let to = Tuple::new(IPPROTO_TCP, client, backend);
    assert_flow_entries(&h, &key, &to, CtOrigin::Host);

    let again = h.expect_step(Hook::UplinkEgress, &first.out);
    assert!(again.out == first.out, "the queued SYN passes untouched");
    assert_flow_entries(&h, &key, &to, CtOrigin::Host);

    let reply = flow::<F>(IPPROTO_TCP, backend, client, b"")
        .with_tcp_flags(TCP_SYN | TCP_ACK)
        .bytes();
    let step = h.expect_step(Hook::UplinkIngress, &reply);
    assert_eq!(
        F::endpoints(&step.out),
        (F::WEB, client),
        "the backend's answer comes from the frontend"
    );
    check_counters(&h);
}
