//! Writes the desired frontends and backends into the maps as a diff: a
//! frontend that did not change keeps its id, its slots and its flows.
//! Each family has its maps; frontend ids (and so the counters) are shared.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    hash::Hash,
};

use anyhow::{Context as _, Result};
use aya::{
    maps::{MapData, PerCpuArray, PerCpuValues},
    Pod,
};
use hairpin_common::{
    Backend, BackendKey, Frontend, FrontendKey, FrontendStats, MemberKey, WireAddr,
    FRONTEND_REFUSE, FRONTEND_SKIP_BACKENDS,
};

use crate::{
    config,
    family::{Addr, FamilyMaps},
    flows::Lingering,
    loader::Maps,
};

/// What an apply changed, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub added: usize,
    pub updated: usize,
    pub removed: usize,
    /// The flows ended, with their events for the monitors.
    pub ended: crate::flows::Ended,
    /// Addresses of backends that are gone with flows just ended: they stay
    /// among the backend addresses a while (see `sync_backend_addrs`), so
    /// that the datapath still meets those flows' reverse entries.
    pub lingering: Lingering,
}

/// The map form of an IPv4 address.
pub fn addr_key(addr: std::net::Ipv4Addr) -> u32 {
    u32::from_octets(addr.octets())
}

pub fn port_key(port: u16) -> u16 {
    port.to_be()
}

/// The map key of a frontend of family `A`, if it is of that family.
pub fn frontend_key<A: Addr>(fe: &config::Frontend) -> Option<FrontendKey<A>> {
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

/// Applies `desired` to the maps. `max_frontends` bounds the ids.
pub fn apply(maps: &mut Maps, desired: &[config::Frontend], max_frontends: u32) -> Result<Applied> {
    let mut used = ids(&maps.v4)?;
    used.extend(ids(&maps.v6)?);
    let mut ids = Ids {
        used,
        next: 0,
        max: max_frontends,
    };
    let mut applied = Applied::default();
    applied.lingering.v4 = apply_family(
        &mut maps.v4,
        &mut maps.frontend_stats,
        desired,
        &mut ids,
        &mut applied,
    )?;
    applied.lingering.v6 = apply_family(
        &mut maps.v6,
        &mut maps.frontend_stats,
        desired,
        &mut ids,
        &mut applied,
    )?;
    sync_backend_addrs(maps, desired, &applied.lingering)?;
    Ok(applied)
}

fn ids<A: Addr>(fm: &FamilyMaps<A>) -> Result<BTreeSet<u32>> {
    fm.frontends
        .iter()
        .map(|r| r.map(|(_, f)| f.id))
        .collect::<Result<_, _>>()
        .context("reading frontends")
}

/// Frontend ids in use, and their bound. Ids are handed out upwards from
/// where the last one was found, so that applying n new frontends stays
/// O(n log n), not a scan from zero each.
struct Ids {
    used: BTreeSet<u32>,
    next: u32,
    max: u32,
}

impl Ids {
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
}

/// The (address, port, protocol) of a frontend key, ordered.
type FrontendTuple<A> = (A, u16, u8);

/// Applies the frontends of family `A`; returns the addresses of backends
/// whose flows it ended.
fn apply_family<A: Addr>(
    fm: &mut FamilyMaps<A>,
    stats: &mut PerCpuArray<MapData, FrontendStats>,
    desired: &[config::Frontend],
    ids: &mut Ids,
    applied: &mut Applied,
) -> Result<BTreeSet<(A, u16)>> {
    let current: BTreeMap<FrontendTuple<A>, (FrontendKey<A>, Frontend)> = fm
        .frontends
        .iter()
        .map(|r| r.map(|(k, v)| ((k.addr, k.port, k.proto), (k, v))))
        .collect::<Result<_, _>>()
        .context("reading frontends")?;
    let mut members = Vec::new();
    let mut ended_backends: Vec<(u32, BTreeSet<(A, u16)>)> = Vec::new();
    let mine: Vec<(&config::Frontend, FrontendKey<A>)> = desired
        .iter()
        .filter_map(|fe| Some((fe, frontend_key::<A>(fe)?)))
        .collect();

    let keep: BTreeSet<FrontendTuple<A>> = mine
        .iter()
        .map(|(_, k)| (k.addr, k.port, k.proto))
        .collect();

    // Removals first: the ids and slots they free may be the ones the new
    // frontends need.
    let mut removed_ids = BTreeSet::new();
    for (tuple, (key, f)) in &current {
        if keep.contains(tuple) {
            continue;
        }
        fm.frontends.remove(key)?;
        for slot in 0..u32::from(f.slots) {
            // Ignored error: a slot already gone needs no removal.
            let _ = fm.backends.remove(&BackendKey {
                frontend_id: f.id,
                slot,
            });
        }
        ids.used.remove(&f.id);
        removed_ids.insert(f.id);
        applied.removed += 1;
    }

    for (fe, key) in &mine {
        let new_slots = slots::<A>(fe);
        let slot_count = u16::try_from(new_slots.len()).with_context(|| {
            format!(
                "frontend {} has {} backend slots (weights summed): at most {} are served",
                fe.name,
                new_slots.len(),
                u16::MAX
            )
        })?;
        let new_flags = flags(&fe.policy);
        let existing = current.get(&(key.addr, key.port, key.proto));
        let (id, old_slots) = match existing {
            Some((_, f)) => (f.id, u32::from(f.slots)),
            None => {
                let id = ids.take()?;
                let cpus = aya::util::nr_cpus().map_err(|(_, e)| e)?;
                stats.set(
                    id,
                    PerCpuValues::try_from(vec![FrontendStats::default(); cpus])?,
                    0,
                )?;
                (id, 0)
            }
        };
        let slot_key = |slot: u32| BackendKey {
            frontend_id: id,
            slot,
        };
        let old: Vec<Backend<A>> = (0..old_slots)
            .filter_map(|slot| fm.backends.get(&slot_key(slot), 0).ok())
            .collect();
        if fe.policy.skip_backends {
            members.extend(new_slots.iter().map(|b| MemberKey {
                frontend_id: id,
                addr: b.addr,
            }));
        }
        // A new frontend is written even without backends: it then passes
        // its packets through (or refuses them), and shows in the listings.
        if old == new_slots && existing.is_some_and(|(_, f)| f.flags == new_flags) {
            continue;
        }
        for (slot, b) in new_slots.iter().enumerate() {
            fm.backends.insert(slot_key(slot as u32), b, 0)?;
        }
        fm.frontends.insert(
            key,
            Frontend {
                id,
                slots: slot_count,
                flags: new_flags,
            },
            0,
        )?;
        for slot in new_slots.len() as u32..old_slots {
            // Ignored error: a slot already gone needs no removal.
            let _ = fm.backends.remove(&slot_key(slot));
        }
        if existing.is_none() {
            applied.added += 1;
        } else {
            applied.updated += 1;
            let gone: BTreeSet<(A, u16)> = old
                .iter()
                .filter(|b| !new_slots.contains(b))
                .map(|b| (b.addr, b.port))
                .collect();
            if !gone.is_empty() {
                ended_backends.push((id, gone));
            }
        }
    }

    sync_addrs(&mut fm.frontend_addrs, mine.iter().map(|(_, k)| k.addr))?;
    sync_addrs(&mut fm.backend_members, members.into_iter())?;

    // Flows of removed frontends and backends end now (see `end_flows`).
    let mut lingering = BTreeSet::new();
    let reason = hairpin_common::EndReason::Removed;
    let ended = crate::flows::end_flows(&mut fm.conntrack, reason, |e| {
        let end = removed_ids.contains(&e.frontend_id)
            || ended_backends.iter().any(|(id, gone)| {
                *id == e.frontend_id && gone.contains(&(e.backend.saddr, e.backend.sport))
            });
        if end {
            lingering.insert((e.backend.saddr, e.backend.sport));
        }
        end
    })?;
    applied.ended.add(ended);
    Ok(lingering)
}

/// Makes the backend address maps hold the configured backends' addresses
/// and the `lingering` ones of flows ended a moment ago.
pub fn sync_backend_addrs(
    maps: &mut Maps,
    desired: &[config::Frontend],
    lingering: &Lingering,
) -> Result<()> {
    let backends = || {
        desired
            .iter()
            .flat_map(|f| f.backends.iter().map(|b| b.addr))
    };
    sync_addrs(
        &mut maps.v4.backend_addrs,
        backends()
            .filter_map(u32::from_ip)
            .chain(lingering.v4.iter().map(|&(a, _)| a)),
    )?;
    sync_addrs(
        &mut maps.v6.backend_addrs,
        backends()
            .filter_map(<[u32; 4]>::from_ip)
            .chain(lingering.v6.iter().map(|&(a, _)| a)),
    )?;
    // Every apply ends here, after the frontend addresses too.
    crate::filter::sync(maps, lingering)
}

/// Makes an address map hold exactly `addrs`, each with its use count.
fn sync_addrs<K: Pod + Eq + Hash>(
    map: &mut aya::maps::HashMap<MapData, K, u32>,
    addrs: impl Iterator<Item = K>,
) -> Result<()> {
    let mut want: HashMap<K, u32> = HashMap::new();
    for a in addrs {
        *want.entry(a).or_default() += 1;
    }
    for (a, n) in &want {
        map.insert(a, n, 0)?;
    }
    let stale: Vec<K> = map
        .keys()
        .filter_map(Result::ok)
        .filter(|a| !want.contains_key(a))
        .collect();
    for a in stale {
        map.remove(&a)?;
    }
    Ok(())
}
