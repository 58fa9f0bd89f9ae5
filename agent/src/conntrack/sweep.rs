//! Conntrack garbage collection. The datapath only judges a flow's forward
//! entry when a packet meets it; expired flows are removed here, both
//! entries together, judged on the most recent packet either way.

use std::net::IpAddr;

use anyhow::{Context as _, Result};
use hairpin_common::{
    ct_lifetime, CtDir, CtEntry, CtKey, CtOrigin, CtTimeouts, EndReason, Event, SEEN_ENDED,
    SEEN_FIN, SEEN_REPLY, SEEN_RST,
};

use crate::{datapath::addr::Addr, datapath::loader::Conntrack};

/// What a sweep found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    pub entries: usize,
    pub removed: usize,
    /// Flows that expired, for the monitors; those that closed or that the
    /// agent ended were told of when it happened.
    pub expired: Vec<Event>,
    /// The clients of pod flows that expired without a reply translated:
    /// a backend that never answered, or replies that bypass hairpin.
    pub unreplied_pods: Vec<IpAddr>,
}

impl std::ops::Add for Sweep {
    type Output = Sweep;

    fn add(mut self, o: Sweep) -> Sweep {
        self.expired.extend(o.expired);
        self.unreplied_pods.extend(o.unreplied_pods);
        Sweep {
            entries: self.entries + o.entries,
            removed: self.removed + o.removed,
            expired: self.expired,
            unreplied_pods: self.unreplied_pods,
        }
    }
}

/// The key of the other entry of `e`'s flow.
pub fn partner<A: Addr>(e: &CtEntry<A>) -> CtKey<A> {
    e.nat.reversed()
}

/// Removes expired flows among the first `budget` entries of the map.
pub fn sweep<A: Addr>(
    ct: &mut Conntrack<A>,
    t: &CtTimeouts,
    now_ns: u64,
    budget: usize,
) -> Result<Sweep> {
    Sweeper::<A>::default().step(ct, t, now_ns, budget)
}

/// Sweeps the map a part at a time: each step looks at no more than its
/// budget of entries, from where the last one stopped, so that a large
/// table is covered over several steps at a bounded cost each.
#[derive(Debug)]
pub struct Sweeper<A> {
    /// The last key looked at; `None` starts from the map's beginning.
    cursor: Option<CtKey<A>>,
}

impl<A> Default for Sweeper<A> {
    fn default() -> Self {
        Self { cursor: None }
    }
}

impl<A: Addr> Sweeper<A> {
    pub fn step(
        &mut self,
        ct: &mut Conntrack<A>,
        t: &CtTimeouts,
        now_ns: u64,
        budget: usize,
    ) -> Result<Sweep> {
        let keys = keys_after(ct, self.cursor, budget)?;
        let at_end = keys.len() < budget;
        let (sweep, kept) = judge(ct, &keys, t, now_ns)?;
        // A short batch reached the end: the next step starts over. Else
        // the next one goes on after the last key still in the map, since
        // the kernel restarts from the top after a key that is gone.
        self.cursor = if at_end { None } else { kept };
        Ok(sweep)
    }
}

/// Up to `n` keys of `ct` after `cursor`, in the kernel's order
/// (`BPF_MAP_GET_NEXT_KEY`; a cursor that is gone starts from the top).
fn keys_after<A: Addr>(
    ct: &Conntrack<A>,
    mut cursor: Option<CtKey<A>>,
    n: usize,
) -> Result<Vec<CtKey<A>>> {
    use aya::maps::IterableMap as _;

    let mut keys = Vec::with_capacity(n.min(65_536));
    while keys.len() < n {
        let mut next = CtKey::<A>::default();
        if !crate::datapath::map_keys::next_key_of(ct.map(), cursor.as_ref(), &mut next)
            .context("BPF_MAP_GET_NEXT_KEY on conntrack")?
        {
            break;
        }
        keys.push(next);
        cursor = Some(next);
    }
    Ok(keys)
}

/// Removes the expired flows among `keys`; returns what it did and the last
/// of `keys` that it left in the map.
fn judge<A: Addr>(
    ct: &mut Conntrack<A>,
    keys: &[CtKey<A>],
    t: &CtTimeouts,
    now_ns: u64,
) -> Result<(Sweep, Option<CtKey<A>>)> {
    let mut sweep = Sweep::default();
    let mut doomed = std::collections::HashSet::new();
    for &k in keys {
        // An entry gone since its key was read needs no judging.
        let Ok(e) = ct.get(&k, 0) else {
            continue;
        };
        sweep.entries += 1;
        if e.dir != CtDir::Forward as u8 {
            // Judged with its forward partner; an orphan alone.
            if ct.get(&partner(&e), 0).is_err() && expired(&e, None, t, now_ns) {
                doomed.insert(k);
            }
            continue;
        }
        let rev = ct.get(&partner(&e), 0).ok();
        if expired(&e, rev.as_ref(), t, now_ns) {
            let seen = e.seen | rev.map_or(0, |r| r.seen);
            if seen & (SEEN_FIN | SEEN_RST | SEEN_ENDED) == 0 {
                sweep.expired.extend(crate::conntrack::flows::ended_event(
                    &k,
                    &e,
                    EndReason::Expired,
                ));
            }
            let replied = rev.is_some_and(|r| r.seen & SEEN_REPLY != 0);
            if e.origin == CtOrigin::Pod as u8 && !replied && seen & SEEN_ENDED == 0 {
                sweep.unreplied_pods.push(k.saddr.ip());
            }
            doomed.insert(k);
            if rev.is_some() {
                doomed.insert(partner(&e));
            }
        }
    }
    for k in &doomed {
        // Ignored error: the LRU or the datapath may have replaced it.
        if ct.remove(k).is_ok() {
            sweep.removed += 1;
        }
    }
    let kept = keys.iter().rev().find(|k| !doomed.contains(k)).copied();
    Ok((sweep, kept))
}

fn expired<A>(e: &CtEntry<A>, other: Option<&CtEntry<A>>, t: &CtTimeouts, now_ns: u64) -> bool {
    let (last, seen) = match other {
        Some(o) => (e.last_seen_ns.max(o.last_seen_ns), e.seen | o.seen),
        None => (e.last_seen_ns, e.seen),
    };
    now_ns.saturating_sub(last) > ct_lifetime(e.nat.proto, seen, t)
}
