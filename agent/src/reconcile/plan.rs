//! What an apply changes in one family's tables, decided without touching a
//! map: a frontend that did not change keeps its id, its slots and its
//! flows. Pure, so that every case is tested without root.

use std::{
    collections::{BTreeMap, BTreeSet},
    ops::Range,
};

use anyhow::{Context as _, Result};
use hairpin_common::{
    Backend, Frontend, FrontendKey, MemberKey, WireAddr, FRONTEND_REFUSE, FRONTEND_SKIP_BACKENDS,
};

use crate::{config, datapath::addr::Addr};

/// A frontend as the maps hold it: its entry and its backend slots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installed<A> {
    pub key: FrontendKey<A>,
    pub value: Frontend,
    pub backends: Vec<Backend<A>>,
}

/// A frontend to write, new or changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write<A> {
    pub key: FrontendKey<A>,
    pub value: Frontend,
    pub backends: Vec<Backend<A>>,
    /// The slots of its former self beyond the new ones.
    pub stale: Range<u32>,
    /// A new id: its counters start from zero.
    pub new: bool,
}

/// The flows an apply ends: of frontends removed, and to backends that a
/// frontend lost.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ends<A> {
    pub frontends: BTreeSet<u32>,
    pub backends: BTreeSet<(u32, A, u16)>,
}

impl<A: Addr> Ends<A> {
    /// Whether a flow of frontend `id` to backend `addr:port` ends.
    pub fn cover(&self, id: u32, addr: A, port: u16) -> bool {
        self.frontends.contains(&id) || self.backends.contains(&(id, addr, port))
    }
}

/// One family's part of an apply, in the order it is carried out: removals
/// first (the ids and slots they free may be the ones new frontends need),
/// then writes, then the address sets, then the flows that end.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan<A> {
    pub remove: Vec<Installed<A>>,
    pub write: Vec<Write<A>>,
    /// Every frontend's address, once per frontend.
    pub frontend_addrs: Vec<A>,
    /// The backends of frontends that skip their backends' own traffic.
    pub members: Vec<MemberKey<A>>,
    pub end: Ends<A>,
    /// Every frontend of the family after the apply: id → name.
    pub names: BTreeMap<u32, String>,
}

impl<A> Plan<A> {
    /// Frontends the plan adds.
    pub fn added(&self) -> usize {
        self.write.iter().filter(|w| w.new).count()
    }

    /// Frontends the plan changes.
    pub fn updated(&self) -> usize {
        self.write.len() - self.added()
    }
}

/// Frontend ids in use, and their bound. Ids are handed out upwards from
/// where the last one was found, so that applying n new frontends stays
/// O(n log n), not a scan from zero each.
#[derive(Debug)]
pub struct Ids {
    used: BTreeSet<u32>,
    next: u32,
    max: u32,
}

impl Ids {
    pub fn new(used: BTreeSet<u32>, max: u32) -> Self {
        Self { used, next: 0, max }
    }

    fn take(&mut self) -> Result<u32> {
        while self.next < self.max && self.used.contains(&self.next) {
            self.next += 1;
        }
        anyhow::ensure!(
            self.next < self.max,
            "no free frontend id: raise the frontend limit"
        );
        let id = self.next;
        self.used.insert(id);
        Ok(id)
    }

    fn free(&mut self, id: u32) {
        self.used.remove(&id);
    }
}

/// The map form of an IPv4 address.
pub fn addr_key(addr: std::net::Ipv4Addr) -> u32 {
    u32::from_octets(addr.octets())
}

/// The map form of a port.
pub fn port_key(port: u16) -> u16 {
    port.to_be()
}

/// The map key of a frontend of family `A`, if it is of that family.
fn frontend_key<A: Addr>(fe: &config::Frontend) -> Option<FrontendKey<A>> {
    Some(FrontendKey {
        addr: A::from_ip(fe.addr)?,
        port: port_key(fe.port),
        proto: fe.proto,
        _pad: 0,
    })
}

/// One slot per unit of weight, in a stable order.
fn slots<A: Addr>(fe: &config::Frontend) -> Vec<Backend<A>> {
    let mut backends = fe.backends.clone();
    backends.sort();
    backends
        .iter()
        .filter_map(|b| {
            let v = Backend {
                addr: A::from_ip(b.addr)?,
                port: port_key(b.port),
                _pad: 0,
            };
            Some(std::iter::repeat_n(v, b.weight as usize))
        })
        .flatten()
        .collect()
}

/// The datapath's flags for a frontend's policy.
fn flags(policy: &config::Policy) -> u16 {
    let mut flags = 0;
    if policy.refuse_when_empty {
        flags |= FRONTEND_REFUSE;
    }
    if policy.skip_backends {
        flags |= FRONTEND_SKIP_BACKENDS;
    }
    flags
}

/// The (address, port, protocol) of a frontend key, ordered.
fn tuple<A: Addr>(k: &FrontendKey<A>) -> (A, u16, u8) {
    (k.addr, k.port, k.proto)
}

/// What makes the tables of family `A`, holding `current`, hold the
/// frontends of `desired` that are of that family. Fails, before anything
/// is written, when an id or a frontend's slots run out.
pub fn plan<A: Addr>(
    desired: &[config::Frontend],
    current: &[Installed<A>],
    ids: &mut Ids,
) -> Result<Plan<A>> {
    let mine: Vec<(&config::Frontend, FrontendKey<A>)> = desired
        .iter()
        .filter_map(|fe| Some((fe, frontend_key::<A>(fe)?)))
        .collect();
    let keep: BTreeSet<_> = mine.iter().map(|(_, k)| tuple(k)).collect();
    let held: BTreeMap<_, &Installed<A>> = current.iter().map(|f| (tuple(&f.key), f)).collect();
    let mut plan = Plan::default();
    for f in current.iter().filter(|f| !keep.contains(&tuple(&f.key))) {
        ids.free(f.value.id);
        plan.end.frontends.insert(f.value.id);
        plan.remove.push(f.clone());
    }
    for (fe, key) in &mine {
        let backends = slots::<A>(fe);
        let count = u16::try_from(backends.len()).with_context(|| {
            format!(
                "frontend {} has {} backend slots (weights summed): at most {} are served",
                fe.name,
                backends.len(),
                u16::MAX
            )
        })?;
        let existing = held.get(&tuple(key));
        let id = match existing {
            Some(f) => f.value.id,
            None => ids.take()?,
        };
        let value = Frontend {
            id,
            slots: count,
            flags: flags(&fe.policy),
        };
        plan.names.insert(id, fe.name.clone());
        plan.frontend_addrs.push(key.addr);
        if fe.policy.skip_backends {
            plan.members.extend(backends.iter().map(|b| MemberKey {
                frontend_id: id,
                addr: b.addr,
            }));
        }
        // A new frontend is written even without backends: it then passes
        // its packets through (or refuses them), and shows in the listings.
        let old = existing.map(|f| (f.value, &f.backends));
        if old.is_some_and(|(v, b)| v == value && *b == backends) {
            continue;
        }
        if let Some((_, was)) = old {
            plan.end.backends.extend(
                was.iter()
                    .filter(|b| !backends.contains(b))
                    .map(|b| (id, b.addr, b.port)),
            );
        }
        let old_slots = old.map_or(0, |(v, _)| u32::from(v.slots));
        plan.write.push(Write {
            key: *key,
            value,
            stale: u32::from(count)..old_slots.max(u32::from(count)),
            new: existing.is_none(),
            backends,
        });
    }
    Ok(plan)
}
