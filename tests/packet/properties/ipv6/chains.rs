//! Extension header chains: the ones the datapath walks, and any chain,
//! fragment headers and routing headers with segments left among them.

use proptest::{collection::vec, prelude::*};

use crate::frames::Ext;

/// Options of a hop-by-hop or destination options header: none (a PadN
/// only), or random bytes (padded by the builder): the datapath does not
/// read them.
fn options() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![Just(Vec::new()), vec(any::<u8>(), 1..=30)]
}

/// A routing header: any type, its data random. `segments_left` zero
/// keeps the header's destination the final one, which the checksums'
/// pseudo-header holds.
fn routing(segments_left: impl Strategy<Value = u8>) -> impl Strategy<Value = Ext> {
    (any::<u8>(), segments_left, vec(any::<u8>(), 4..=36)).prop_map(
        |(routing_type, segments_left, data)| Ext::Routing {
            routing_type,
            segments_left,
            data,
        },
    )
}

/// An extension header that may follow others: destination options or
/// routing.
fn later_ext() -> impl Strategy<Value = Ext> {
    prop_oneof![options().prop_map(Ext::DestOpts), routing(Just(0))]
}

/// A valid chain of at most `max` extension headers the datapath walks:
/// hop-by-hop only first (RFC 8200 section 4.1).
pub(super) fn chain(max: usize) -> impl Strategy<Value = Vec<Ext>> {
    prop_oneof![
        2 => Just(Vec::new()),
        3 => (prop::option::weighted(0.4, options()), vec(later_ext(), 0..=max)).prop_map(
            move |(hbh, rest)| {
                let mut c: Vec<Ext> = hbh.map(Ext::HopByHop).into_iter().collect();
                c.extend(rest);
                c.truncate(max);
                c
            }
        ),
    ]
}

fn fragment_ext() -> impl Strategy<Value = Ext> {
    (0u16..0x2000, any::<bool>(), any::<u32>()).prop_map(|(offset, more, id)| Ext::Fragment {
        offset,
        more,
        id,
    })
}

/// Any extension header, in any order: fragment headers and routing
/// headers with segments left among them.
pub(super) fn any_ext() -> impl Strategy<Value = Ext> {
    prop_oneof![
        options().prop_map(Ext::HopByHop),
        options().prop_map(Ext::DestOpts),
        routing(any::<u8>()),
        fragment_ext(),
    ]
}

/// Any extension header chain, up to six headers.
pub(super) fn any_chain() -> impl Strategy<Value = Vec<Ext>> {
    prop_oneof![chain(4), vec(any_ext(), 0..=6)]
}
