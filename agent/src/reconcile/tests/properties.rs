//! Any apply from any state: whatever the maps held and whatever flows
//! lived, applying a plan to the fake leaves exactly the desired frontends,
//! with the ids, slots, addresses and flows they must have.

use proptest::prelude::*;

use super::*;

/// A frontend of the small universe the properties draw from: one of five
/// addresses, two ports and two protocols; up to three of four backends,
/// of weight 1-3; either policy.
fn frontend() -> impl Strategy<Value = Frontend> {
    (
        10u8..15,
        prop_oneof![Just(8080u16), Just(8081)],
        prop_oneof![Just(6u8), Just(17)],
        prop::collection::vec((2u8..6, 1u32..4), 0..4),
        any::<(bool, bool)>(),
    )
        .prop_map(|(a, port, proto, backends, (refuse, skip))| {
            let mut f = fe(&format!("203.0.113.{a}"), port, &[]);
            f.proto = proto;
            let mut seen = BTreeSet::new();
            f.backends = backends
                .into_iter()
                .filter(|(b, _)| seen.insert(*b))
                .map(|(b, weight)| Backend {
                    addr: format!("198.51.100.{b}").parse().unwrap(),
                    port: 80,
                    weight,
                })
                .collect();
            f.policy = Policy {
                refuse_when_empty: refuse,
                skip_backends: skip,
            };
            f
        })
}

/// A node's frontends: one per address, port and protocol.
fn frontends() -> impl Strategy<Value = Vec<Frontend>> {
    prop::collection::vec(frontend(), 0..8).prop_map(|mut fes| {
        let mut seen = BTreeSet::new();
        fes.retain(|f| seen.insert((f.addr, f.port, f.proto)));
        fes
    })
}

type Key = (u32, u16, u8);

fn key(f: &Frontend) -> Key {
    let std::net::IpAddr::V4(a) = f.addr else {
        unreachable!("IPv4 only")
    };
    (super::super::addr_key(a), f.port.to_be(), f.proto)
}

/// A frontend's slots: each backend once per unit of weight, sorted.
fn slots(f: &Frontend) -> Vec<(u32, u16)> {
    let mut slots: Vec<_> = f
        .backends
        .iter()
        .flat_map(|b| {
            let std::net::IpAddr::V4(a) = b.addr else {
                unreachable!("IPv4 only")
            };
            std::iter::repeat_n(
                (super::super::addr_key(a), b.port.to_be()),
                b.weight as usize,
            )
        })
        .collect();
    slots.sort();
    slots
}

fn flags(p: &Policy) -> u16 {
    (if p.refuse_when_empty {
        FRONTEND_REFUSE
    } else {
        0
    }) | (if p.skip_backends {
        FRONTEND_SKIP_BACKENDS
    } else {
        0
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn applying_a_plan_yields_the_desired_state_from_any_state(
        before in frontends(),
        after in frontends(),
        live in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let max = 16;
        let mut t = Fake::default();
        apply(&mut t, &before, max).unwrap();
        // Flows through some of the slots the maps hold.
        let held_before: Vec<Installed<u32>> = t.installed().unwrap();
        let all: Vec<(u32, u32, u16)> = held_before
            .iter()
            .flat_map(|f| f.backends.iter().map(move |b| (f.value.id, b.addr, b.port)))
            .collect();
        if !all.is_empty() {
            t.flows = live.iter().map(|i| *i.get(&all)).collect();
        }
        let flows_before = t.flows.clone();
        let id_before: BTreeMap<Key, u32> = held_before
            .iter()
            .map(|f| ((f.key.addr, f.key.port, f.key.proto), f.value.id))
            .collect();

        apply(&mut t, &after, max).unwrap();

        // Exactly the desired frontends, each with its slots and flags.
        let want: BTreeMap<Key, &Frontend> = after.iter().map(|f| (key(f), f)).collect();
        let got: BTreeMap<Key, &Installed<u32>> = t.frontends.iter().map(|(k, f)| (*k, f)).collect();
        prop_assert_eq!(want.keys().collect::<Vec<_>>(), got.keys().collect::<Vec<_>>());
        for (k, f) in &want {
            let i = got[k];
            let mut have: Vec<(u32, u16)> = i.backends.iter().map(|b| (b.addr, b.port)).collect();
            have.sort();
            prop_assert_eq!(have, slots(f));
            prop_assert_eq!(i.value.flags, flags(&f.policy));
        }
        // Ids: distinct, within the bound; a frontend the maps kept keeps its id.
        let ids: BTreeSet<u32> = got.values().map(|f| f.value.id).collect();
        prop_assert_eq!(ids.len(), got.len());
        prop_assert!(ids.iter().all(|id| *id < max));
        for (k, f) in &got {
            if let Some(id) = id_before.get(k) {
                prop_assert_eq!(f.value.id, *id, "a kept frontend keeps its id");
            }
        }
        // The address set: each frontend's address, once per frontend.
        let mut addrs: BTreeMap<u32, u32> = BTreeMap::new();
        for k in want.keys() {
            *addrs.entry(k.0).or_default() += 1;
        }
        prop_assert_eq!(&t.frontend_addrs, &addrs);
        // The members: the backends of frontends that skip them.
        let members: BTreeSet<(u32, u32)> = got
            .values()
            .filter(|f| f.value.flags & FRONTEND_SKIP_BACKENDS != 0)
            .flat_map(|f| f.backends.iter().map(move |b| (f.value.id, b.addr)))
            .collect();
        let have: BTreeSet<(u32, u32)> = t.members.keys().map(|m| (m.frontend_id, m.addr)).collect();
        prop_assert_eq!(have, members);
        // A flow lives on exactly when its frontend is still there, by the
        // same id, with its backend among the slots.
        let kept: BTreeSet<(u32, u32, u16)> = flows_before
            .iter()
            .copied()
            .filter(|(id, a, p)| {
                got.iter().any(|(k, f)| {
                    f.value.id == *id
                        && id_before.get(k) == Some(id)
                        && f.backends.iter().any(|b| (b.addr, b.port) == (*a, *p))
                })
            })
            .collect();
        prop_assert_eq!(&t.flows, &kept);

        // And the same frontends again change nothing.
        let (p, _) = apply(&mut t, &after, max).unwrap();
        prop_assert!(p.write.is_empty() && p.remove.is_empty());
    }
}
