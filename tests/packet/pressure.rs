//! A full conntrack table: a new flow it cannot take passes untranslated,
//! counted, and every flow it holds is still translated both ways; no entry
//! is ever evicted to make room.

use hairpin_common::Counter;

use crate::{
    families::{flow, Family},
    fixtures::standard_tables,
    frames::{IPPROTO_TCP, IPPROTO_UDP, TCP_ACK, TCP_SYN},
    harness::{Harness, TC_ACT_UNSPEC},
    model::{Hook, Tuple},
    require_privileged,
};

family_tests!(both: [a_full_table_refuses_new_flows_and_keeps_every_flow_it_holds]);

/// Entries of the table: room for 32 flows.
const ENTRIES: u32 = 64;

fn a_full_table_refuses_new_flows_and_keeps_every_flow_it_holds<F: Family>() {
    require_privileged!();
    let mut h = Harness::with_conntrack(standard_tables(), ENTRIES);
    // A pod's established connection, checked against the model.
    let client = F::sock(F::POD_CLIENT, 40000);
    let syn = flow::<F>(IPPROTO_TCP, client, F::WEB, b"").bytes();
    let backend = F::endpoints(&h.expect_step(Hook::PodIngress, &syn).out).1;
    let segment = |src, dst, flags| {
        flow::<F>(IPPROTO_TCP, src, dst, b"data")
            .with_tcp_flags(flags)
            .bytes()
    };
    h.expect_step(
        Hook::PodEgress,
        &segment(backend, client, TCP_SYN | TCP_ACK),
    );
    h.expect_step(Hook::PodIngress, &segment(client, F::WEB, TCP_ACK));

    // New flows, many more than the table holds: those it cannot take pass
    // as they came, counted.
    let before = h.counter(Counter::CtInsertFailed);
    let (mut opened, mut refused) = (0u64, 0u64);
    for port in 0..200 {
        let other = F::sock(F::POD_CLIENT, 20_000 + port);
        let frame = flow::<F>(IPPROTO_UDP, other, F::DNS, b"q").bytes();
        let (verdict, out) = h.run_unmodelled(Hook::PodIngress, &frame);
        assert_eq!(verdict, TC_ACT_UNSPEC);
        if out == frame {
            refused += 1;
        } else {
            opened += 1;
        }
    }
    assert_eq!(opened, u64::from(ENTRIES / 2) - 1, "the table filled, once");
    assert_eq!(h.counter(Counter::CtInsertFailed) - before, refused);
    assert!(F::in_conntrack(
        &h,
        &Tuple::new(IPPROTO_TCP, client, F::WEB)
    ));

    // The established connection is still translated, both ways.
    for _ in 0..3 {
        let fwd = h.expect_step(Hook::PodIngress, &segment(client, F::WEB, TCP_ACK));
        assert_eq!(F::endpoints(&fwd.out).1, backend, "to its backend");
        let back = h.expect_step(Hook::PodEgress, &segment(backend, client, TCP_ACK));
        assert_eq!(F::endpoints(&back.out).0, F::WEB, "from the frontend");
    }
}
