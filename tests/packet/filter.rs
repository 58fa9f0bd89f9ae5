//! The address filter decides first: a frontend's packet whose address
//! the filter lacks passes as if the frontend did not exist, and is
//! translated once the filter is written from the maps again.

use crate::{
    families::{flow, Family},
    fixtures::standard_tables,
    frames::IPPROTO_TCP,
    harness::{Harness, TC_ACT_UNSPEC},
    model::Hook,
    require_privileged,
};

family_tests!(both: [the_address_filter_is_asked_before_the_maps]);

fn the_address_filter_is_asked_before_the_maps<F: Family>() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    let empty = [0u64; hairpin_common::FILTER_LEN];
    h.maps.addr_filter.set(0, empty, 0).unwrap();
    let client = F::sock(F::POD_CLIENT, 40100);
    let syn = flow::<F>(IPPROTO_TCP, client, F::WEB, b"").bytes();
    let (verdict, out) = h.run_unmodelled(Hook::PodIngress, &syn);
    assert_eq!(
        (verdict, &out),
        (TC_ACT_UNSPEC, &syn),
        "an empty filter: not ours"
    );

    hairpin::reconcile::address_filter::sync(&mut h.maps, &Default::default()).unwrap();
    let step = h.expect_step(Hook::PodIngress, &syn);
    assert_ne!(F::endpoints(&step.out).1, F::WEB, "translated to a backend");
}
