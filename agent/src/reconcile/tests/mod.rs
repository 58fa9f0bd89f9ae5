//! Plans, and plans carried out on a fake of the tables: every case of an
//! apply without root (here), and any apply from any state (properties.rs).
//! The lab's tests carry them out on the real maps.

use std::collections::{BTreeMap, BTreeSet, HashMap};

mod properties;

use anyhow::Result;
use hairpin_common::{MemberKey, FRONTEND_REFUSE, FRONTEND_SKIP_BACKENDS};

use super::{
    carry_out,
    plan::{plan, Ends, Ids, Installed, Plan, Write},
    tables::Tables,
    Applied,
};
use crate::{
    config::{Backend, Frontend, Policy},
    conntrack::flows::Ended,
};

/// One family's tables as plain collections, with flows as (frontend id,
/// backend address, backend port).
#[derive(Debug, Default)]
struct Fake {
    frontends: BTreeMap<(u32, u16, u8), Installed<u32>>,
    frontend_addrs: BTreeMap<u32, u32>,
    members: HashMap<MemberKey<u32>, u32>,
    flows: BTreeSet<(u32, u32, u16)>,
    /// Ids whose counters were reset.
    reset: Vec<u32>,
}

impl Tables<u32> for Fake {
    fn installed(&self) -> Result<Vec<Installed<u32>>> {
        Ok(self.frontends.values().cloned().collect())
    }
    fn remove(&mut self, f: &Installed<u32>) -> Result<()> {
        self.frontends
            .remove(&(f.key.addr, f.key.port, f.key.proto));
        Ok(())
    }
    fn write(&mut self, w: &Write<u32>) -> Result<()> {
        if w.new {
            self.reset.push(w.value.id);
        }
        let installed = Installed {
            key: w.key,
            value: w.value,
            backends: w.backends.clone(),
        };
        self.frontends
            .insert((w.key.addr, w.key.port, w.key.proto), installed);
        Ok(())
    }
    fn set_addrs(&mut self, frontend_addrs: &[u32], members: &[MemberKey<u32>]) -> Result<()> {
        self.frontend_addrs.clear();
        for a in frontend_addrs {
            *self.frontend_addrs.entry(*a).or_default() += 1;
        }
        self.members.clear();
        for m in members {
            *self.members.entry(*m).or_default() += 1;
        }
        Ok(())
    }
    fn end_flows(&mut self, ends: &Ends<u32>) -> Result<(Ended, BTreeSet<(u32, u16)>)> {
        let (gone, kept) = self
            .flows
            .iter()
            .partition(|(id, a, p)| ends.cover(*id, *a, *p));
        self.flows = kept;
        let gone: BTreeSet<(u32, u32, u16)> = gone;
        let ended = Ended {
            flows: gone.len(),
            events: Vec::new(),
        };
        Ok((ended, gone.into_iter().map(|(_, a, p)| (a, p)).collect()))
    }
}

fn fe(addr: &str, port: u16, backends: &[(&str, u32)]) -> Frontend {
    Frontend {
        name: format!("{addr}:{port}"),
        source: "t.yaml:1".into(),
        addr: addr.parse().unwrap(),
        port,
        proto: 6,
        backends: backends
            .iter()
            .map(|(a, w)| Backend {
                addr: a.parse().unwrap(),
                port: 80,
                weight: *w,
            })
            .collect(),
        policy: Policy::default(),
    }
}

fn v4(addr: &str) -> u32 {
    super::addr_key(addr.parse().unwrap())
}

/// Plans `desired` against the fake with `max` ids and carries it out.
fn apply(t: &mut Fake, desired: &[Frontend], max: u32) -> Result<(Plan<u32>, Applied)> {
    let current = t.installed()?;
    let mut ids = Ids::new(current.iter().map(|f| f.value.id).collect(), max);
    let p = plan(desired, &current, &mut ids)?;
    let mut applied = Applied::default();
    applied.lingering.v4 = carry_out(t, p.clone(), &mut applied)?;
    Ok((p, applied))
}

/// Each frontend of the fake: (address:port, id, slots' backends, flags).
fn held(t: &Fake) -> Vec<(String, u32, Vec<u32>, u16)> {
    t.frontends
        .values()
        .map(|f| {
            let addr = std::net::Ipv4Addr::from(f.key.addr.to_ne_bytes());
            (
                format!("{addr}:{}", u16::from_be(f.key.port)),
                f.value.id,
                f.backends.iter().map(|b| b.addr).collect(),
                f.value.flags,
            )
        })
        .collect()
}

#[test]
fn new_frontends_take_the_lowest_free_ids_a_slot_per_unit_of_weight() {
    let mut t = Fake::default();
    let desired = [
        fe(
            "203.0.113.10",
            8080,
            &[("198.51.100.2", 2), ("198.51.100.3", 1)],
        ),
        fe("203.0.113.11", 8080, &[]),
        fe("2001:db8::10", 8080, &[("2001:db8::2", 1)]),
    ];
    let (p, applied) = apply(&mut t, &desired, 16).unwrap();
    let (b2, b3) = (v4("198.51.100.2"), v4("198.51.100.3"));
    assert_eq!(
        held(&t),
        [
            ("203.0.113.10:8080".into(), 0, vec![b2, b2, b3], 0),
            // Written without backends: it passes its packets through.
            ("203.0.113.11:8080".into(), 1, vec![], 0),
        ],
        "IPv4's frontends only"
    );
    assert_eq!((p.added(), p.updated(), applied.removed), (2, 0, 0));
    assert_eq!(t.reset, [0, 1], "new ids' counters start from zero");
    assert_eq!(
        t.frontend_addrs,
        BTreeMap::from([(v4("203.0.113.10"), 1), (v4("203.0.113.11"), 1)])
    );
    assert_eq!(
        applied.names,
        BTreeMap::from([
            (0, "203.0.113.10:8080".into()),
            (1, "203.0.113.11:8080".into())
        ])
    );
}

#[test]
fn applying_the_same_frontends_again_writes_nothing() {
    let mut t = Fake::default();
    let desired = [fe("203.0.113.10", 8080, &[("198.51.100.2", 1)])];
    apply(&mut t, &desired, 16).unwrap();
    let (p, _) = apply(&mut t, &desired, 16).unwrap();
    assert!(p.write.is_empty() && p.remove.is_empty(), "{p:?}");
    assert_eq!(p.names, BTreeMap::from([(0, "203.0.113.10:8080".into())]));
}

#[test]
fn a_changed_backend_set_keeps_the_id_and_ends_only_the_flows_of_the_backend_gone() {
    let mut t = Fake::default();
    let both = [fe(
        "203.0.113.10",
        8080,
        &[("198.51.100.2", 1), ("198.51.100.3", 2)],
    )];
    apply(&mut t, &both, 16).unwrap();
    let (b2, b3) = (v4("198.51.100.2"), v4("198.51.100.3"));
    let port = 80u16.to_be();
    t.flows = BTreeSet::from([(0, b2, port), (0, b3, port)]);
    let one = [fe("203.0.113.10", 8080, &[("198.51.100.2", 1)])];
    let (p, applied) = apply(&mut t, &one, 16).unwrap();
    assert_eq!((p.added(), p.updated()), (0, 1));
    assert_eq!(p.write[0].stale, 1..3, "the slots beyond the new one go");
    assert!(!p.write[0].new, "its counters stay");
    assert_eq!(held(&t), [("203.0.113.10:8080".into(), 0, vec![b2], 0)]);
    assert_eq!(
        t.flows,
        BTreeSet::from([(0, b2, port)]),
        "the kept backend's flow lives"
    );
    assert_eq!(applied.ended.flows, 1);
    assert_eq!(
        applied.lingering,
        crate::conntrack::flows::Lingering {
            v4: BTreeSet::from([(b3, port)]),
            v6: BTreeSet::new()
        },
        "the gone backend's address lingers for its flows' resets"
    );
}

#[test]
fn a_removed_frontend_ends_its_flows_and_its_id_serves_a_new_one_in_the_same_apply() {
    let mut t = Fake::default();
    apply(
        &mut t,
        &[fe("203.0.113.10", 8080, &[("198.51.100.2", 1)])],
        1,
    )
    .unwrap();
    let b2 = v4("198.51.100.2");
    t.flows = BTreeSet::from([(0, b2, 80u16.to_be())]);
    // One id only: the new frontend can have it because the old one goes
    // first.
    let (p, applied) = apply(
        &mut t,
        &[fe("203.0.113.11", 8080, &[("198.51.100.2", 1)])],
        1,
    )
    .unwrap();
    assert_eq!((p.added(), applied.removed), (1, 1));
    assert_eq!(held(&t), [("203.0.113.11:8080".into(), 0, vec![b2], 0)]);
    assert!(t.flows.is_empty(), "the removed frontend's flow ended");
    assert_eq!(p.end.frontends, BTreeSet::from([0]));
}

#[test]
fn a_plan_beyond_the_ids_fails_before_anything_is_written() {
    let mut t = Fake::default();
    apply(&mut t, &[fe("203.0.113.10", 8080, &[])], 2).unwrap();
    let before = held(&t);
    let three = [
        fe("203.0.113.10", 8080, &[("198.51.100.2", 1)]),
        fe("203.0.113.11", 8080, &[]),
        fe("203.0.113.12", 8080, &[]),
    ];
    let e = apply(&mut t, &three, 2).unwrap_err();
    assert_eq!(
        e.to_string(),
        "no free frontend id: raise the frontend limit"
    );
    assert_eq!(
        held(&t),
        before,
        "nothing changed, not even the first frontend's backends"
    );
}

#[test]
fn a_frontend_beyond_its_slots_fails_the_plan() {
    let mut t = Fake::default();
    let wide = [fe(
        "203.0.113.10",
        8080,
        &[("198.51.100.2", 65_535), ("198.51.100.3", 1)],
    )];
    let e = apply(&mut t, &wide, 2).unwrap_err();
    assert_eq!(
        e.to_string(),
        "frontend 203.0.113.10:8080 has 65536 backend slots (weights summed): at most 65535 are served"
    );
    assert!(t.frontends.is_empty());
}

#[test]
fn a_policy_change_rewrites_the_flags_and_ends_no_flow() {
    let mut t = Fake::default();
    let mut f = fe("203.0.113.10", 8080, &[("198.51.100.2", 1)]);
    apply(&mut t, std::slice::from_ref(&f), 16).unwrap();
    let b2 = v4("198.51.100.2");
    t.flows = BTreeSet::from([(0, b2, 80u16.to_be())]);
    f.policy = Policy {
        refuse_when_empty: true,
        skip_backends: true,
    };
    let (p, applied) = apply(&mut t, &[f], 16).unwrap();
    assert_eq!(p.updated(), 1);
    assert_eq!(
        held(&t),
        [(
            "203.0.113.10:8080".into(),
            0,
            vec![b2],
            FRONTEND_REFUSE | FRONTEND_SKIP_BACKENDS
        )]
    );
    assert_eq!(applied.ended.flows, 0);
    assert_eq!(
        t.members,
        HashMap::from([(
            MemberKey {
                frontend_id: 0,
                addr: b2
            },
            1
        )]),
        "a frontend that skips its backends names them"
    );
}
