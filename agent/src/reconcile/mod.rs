//! Writes the desired frontends and backends into the maps: a plan per
//! family, made for both before anything is written (an apply that cannot
//! be made changes nothing), then carried out on the tables. Each family
//! has its maps; frontend ids (and so the counters) are shared.

pub mod address_filter;
mod plan;
mod tables;

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;

pub use self::plan::{addr_key, port_key};
use self::{
    plan::{plan, Ids, Plan},
    tables::{sync_addrs, Tables},
};
use crate::{config, conntrack::flows::Lingering, datapath::addr::Addr, datapath::loader::Maps};

/// What an apply changed, for the log.
#[derive(Default, PartialEq, Eq)]
pub struct Applied {
    pub added: usize,
    pub updated: usize,
    pub removed: usize,
    /// The flows ended, with their events for the monitors.
    pub ended: crate::conntrack::flows::Ended,
    /// Addresses of backends that are gone with flows just ended: they stay
    /// among the backend addresses a while (see `sync_backend_addrs`), so
    /// that the datapath still meets those flows' reverse entries.
    pub lingering: Lingering,
    /// Every frontend the maps hold: id → name.
    pub names: BTreeMap<u32, String>,
}

/// The log's line: the names are many.
impl std::fmt::Debug for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Applied")
            .field("added", &self.added)
            .field("updated", &self.updated)
            .field("removed", &self.removed)
            .field("ended", &self.ended)
            .field("lingering", &self.lingering)
            .finish_non_exhaustive()
    }
}

/// Applies `desired` to the maps. `max_frontends` bounds the ids.
pub fn apply(maps: &mut Maps, desired: &[config::Frontend], max_frontends: u32) -> Result<Applied> {
    let current4 = tables::Maps::of(&mut maps.v4, &mut maps.frontend_stats).installed()?;
    let current6 = tables::Maps::of(&mut maps.v6, &mut maps.frontend_stats).installed()?;
    let used = current4
        .iter()
        .map(|f| f.value.id)
        .chain(current6.iter().map(|f| f.value.id))
        .collect();
    let mut ids = Ids::new(used, max_frontends);
    let plan4 = plan(desired, &current4, &mut ids)?;
    let plan6 = plan(desired, &current6, &mut ids)?;
    let mut applied = Applied::default();
    let v4 = &mut tables::Maps::of(&mut maps.v4, &mut maps.frontend_stats);
    applied.lingering.v4 = carry_out(v4, plan4, &mut applied)?;
    let v6 = &mut tables::Maps::of(&mut maps.v6, &mut maps.frontend_stats);
    applied.lingering.v6 = carry_out(v6, plan6, &mut applied)?;
    sync_backend_addrs(maps, desired, &applied.lingering)?;
    Ok(applied)
}

/// Carries out one family's plan on `tables`; returns the backends of the
/// flows it ended.
fn carry_out<A: Addr>(
    tables: &mut impl Tables<A>,
    plan: Plan<A>,
    applied: &mut Applied,
) -> Result<BTreeSet<(A, u16)>> {
    for f in &plan.remove {
        tables.remove(f)?;
    }
    for w in &plan.write {
        tables.write(w)?;
    }
    tables.set_addrs(&plan.frontend_addrs, &plan.members)?;
    let (ended, lingering) = tables.end_flows(&plan.end)?;
    applied.added += plan.added();
    applied.updated += plan.updated();
    applied.removed += plan.remove.len();
    applied.ended.add(ended);
    applied.names.extend(plan.names);
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
    crate::reconcile::address_filter::sync(maps, lingering)
}

#[cfg(test)]
mod tests;
