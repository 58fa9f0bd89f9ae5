//! The tables a plan is carried out on: the maps in the agent, a fake in
//! the tests.

use std::{collections::BTreeSet, collections::HashMap, hash::Hash};

use anyhow::{Context as _, Result};
use aya::{
    maps::{MapData, PerCpuArray, PerCpuValues},
    Pod,
};
use hairpin_common::{BackendKey, EndReason, FrontendStats, MemberKey};

use super::plan::{Ends, Installed, Write};
use crate::{
    conntrack::flows::Ended,
    datapath::addr::{Addr, FamilyMaps},
};

/// One family's tables, as a plan changes them.
pub trait Tables<A: Addr> {
    /// Every frontend the tables hold, with its backend slots.
    fn installed(&self) -> Result<Vec<Installed<A>>>;
    /// Removes a frontend and its slots.
    fn remove(&mut self, f: &Installed<A>) -> Result<()>;
    /// Writes a frontend: its slots first, then its entry, then drops the
    /// stale slots, so that the datapath never meets an entry whose slots
    /// are missing.
    fn write(&mut self, w: &Write<A>) -> Result<()>;
    /// Makes the frontend addresses and the members be exactly these (each
    /// with its count).
    fn set_addrs(&mut self, frontend_addrs: &[A], members: &[MemberKey<A>]) -> Result<()>;
    /// Ends the flows `ends` covers; returns them, and the backends they
    /// went to.
    fn end_flows(&mut self, ends: &Ends<A>) -> Result<(Ended, BTreeSet<(A, u16)>)>;
}

/// The agent's maps of one family, and the counters both families share.
pub struct Maps<'a, A: Addr> {
    family: &'a mut FamilyMaps<A>,
    stats: &'a mut PerCpuArray<MapData, FrontendStats>,
}

impl<'a, A: Addr> Maps<'a, A> {
    pub fn of(
        family: &'a mut FamilyMaps<A>,
        stats: &'a mut PerCpuArray<MapData, FrontendStats>,
    ) -> Self {
        Self { family, stats }
    }
}

impl<A: Addr> Tables<A> for Maps<'_, A> {
    fn installed(&self) -> Result<Vec<Installed<A>>> {
        let fm = &self.family;
        fm.frontends
            .iter()
            .map(|r| {
                let (key, value) = r.context("reading frontends")?;
                let backends = (0..u32::from(value.slots))
                    .filter_map(|slot| {
                        let k = BackendKey {
                            frontend_id: value.id,
                            slot,
                        };
                        fm.backends.get(&k, 0).ok()
                    })
                    .collect();
                Ok(Installed {
                    key,
                    value,
                    backends,
                })
            })
            .collect()
    }

    fn remove(&mut self, f: &Installed<A>) -> Result<()> {
        let fm = &mut self.family;
        fm.frontends.remove(&f.key)?;
        for slot in 0..u32::from(f.value.slots) {
            // Ignored error: a slot already gone needs no removal.
            let _ = fm.backends.remove(&BackendKey {
                frontend_id: f.value.id,
                slot,
            });
        }
        Ok(())
    }

    fn write(&mut self, w: &Write<A>) -> Result<()> {
        let id = w.value.id;
        if w.new {
            let cpus = aya::util::nr_cpus().map_err(|(_, e)| e)?;
            let zero = PerCpuValues::try_from(vec![FrontendStats::default(); cpus])?;
            self.stats.set(id, zero, 0)?;
        }
        let fm = &mut self.family;
        let slot_key = |slot: u32| BackendKey {
            frontend_id: id,
            slot,
        };
        for (slot, b) in (0u32..).zip(&w.backends) {
            fm.backends.insert(slot_key(slot), b, 0)?;
        }
        fm.frontends.insert(w.key, w.value, 0)?;
        for slot in w.stale.clone() {
            // Ignored error: a slot already gone needs no removal.
            let _ = fm.backends.remove(&slot_key(slot));
        }
        Ok(())
    }

    fn set_addrs(&mut self, frontend_addrs: &[A], members: &[MemberKey<A>]) -> Result<()> {
        sync_addrs(
            &mut self.family.frontend_addrs,
            frontend_addrs.iter().copied(),
        )?;
        sync_addrs(&mut self.family.backend_members, members.iter().copied())
    }

    fn end_flows(&mut self, ends: &Ends<A>) -> Result<(Ended, BTreeSet<(A, u16)>)> {
        let mut gone = BTreeSet::new();
        let ended = crate::conntrack::flows::end_flows(
            &mut self.family.conntrack,
            EndReason::Removed,
            |e| {
                let end = ends.cover(e.frontend_id, e.backend.saddr, e.backend.sport);
                if end {
                    gone.insert((e.backend.saddr, e.backend.sport));
                }
                end
            },
        )?;
        Ok((ended, gone))
    }
}

/// Makes an address map hold exactly `addrs`, each with its use count.
pub fn sync_addrs<K: Pod + Eq + Hash>(
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
