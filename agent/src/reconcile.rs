//! Writes the desired frontends and backends into the maps as a diff: a
//! frontend that did not change keeps its id, its slots and its flows.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, Result};
use aya::maps::{MapError, PerCpuValues};
use hairpin_common::{
    BackendKey, BackendV4, CtDir, CtKeyV4, Frontend, FrontendKeyV4, FrontendStats, IPPROTO_TCP,
    SEEN_ENDED, SEEN_RST,
};

use crate::{
    config,
    loader::{ConntrackV4, Maps},
};

/// What an apply changed, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub added: usize,
    pub updated: usize,
    pub removed: usize,
    pub flows_ended: usize,
    /// Addresses of backends that are gone with flows just ended: they stay
    /// in `BACKEND_ADDRS` a while (see `sync_backend_addrs`), so that the
    /// datapath still meets those flows' reverse entries.
    #[doc(hidden)]
    pub lingering: BTreeSet<u32>,
}

pub fn addr_key(addr: std::net::Ipv4Addr) -> u32 {
    u32::from_ne_bytes(addr.octets())
}

pub fn port_key(port: u16) -> u16 {
    u16::from_ne_bytes(port.to_be_bytes())
}

pub fn frontend_key(fe: &config::Frontend) -> FrontendKeyV4 {
    FrontendKeyV4 {
        addr: addr_key(fe.addr),
        port: port_key(fe.port),
        proto: fe.proto,
        _pad: 0,
    }
}

/// One slot per unit of weight, in a stable order.
fn slots(fe: &config::Frontend) -> Vec<BackendV4> {
    let mut backends = fe.backends.clone();
    backends.sort();
    backends
        .iter()
        .flat_map(|b| {
            let v = BackendV4 {
                addr: addr_key(b.addr),
                port: port_key(b.port),
                _pad: 0,
            };
            std::iter::repeat_n(v, b.weight as usize)
        })
        .collect()
}

/// Applies `desired` to the maps. `max_frontends` bounds the ids.
pub fn apply(maps: &mut Maps, desired: &[config::Frontend], max_frontends: u32) -> Result<Applied> {
    let current: BTreeMap<FrontendKeyV4Ord, Frontend> = maps
        .frontends
        .iter()
        .map(|r| r.map(|(k, v)| (FrontendKeyV4Ord(k), v)))
        .collect::<Result<_, MapError>>()
        .context("reading frontends")?;
    let mut used: BTreeSet<u32> = current.values().map(|f| f.id).collect();
    let mut applied = Applied::default();
    let mut keep = BTreeSet::new();
    let mut ended_backends: Vec<(u32, BTreeSet<(u32, u16)>)> = Vec::new();

    for fe in desired {
        let key = frontend_key(fe);
        keep.insert(FrontendKeyV4Ord(key));
        let new_slots = slots(fe);
        let (id, old_slots) = match current.get(&FrontendKeyV4Ord(key)) {
            Some(f) => (f.id, f.slots),
            None => {
                let id = (0..max_frontends)
                    .find(|i| !used.contains(i))
                    .context("no free frontend id: raise the frontend limit")?;
                used.insert(id);
                let zero = PerCpuValues::try_from(vec![
                    FrontendStats::default();
                    aya::util::nr_cpus().map_err(|(_, e)| e)?
                ])?;
                maps.frontend_stats.set(id, zero, 0)?;
                (id, 0)
            }
        };
        let old: Vec<BackendV4> = (0..old_slots)
            .filter_map(|slot| {
                maps.backends
                    .get(
                        &BackendKey {
                            frontend_id: id,
                            slot,
                        },
                        0,
                    )
                    .ok()
            })
            .collect();
        if old == new_slots {
            continue;
        }
        for (slot, b) in new_slots.iter().enumerate() {
            let k = BackendKey {
                frontend_id: id,
                slot: slot as u32,
            };
            maps.backends.insert(k, b, 0)?;
        }
        maps.frontends.insert(
            key,
            Frontend {
                id,
                slots: new_slots.len() as u32,
            },
            0,
        )?;
        for slot in new_slots.len() as u32..old_slots {
            // Ignored error: a slot already gone needs no removal.
            let _ = maps.backends.remove(&BackendKey {
                frontend_id: id,
                slot,
            });
        }
        if old_slots == 0 {
            applied.added += 1;
        } else {
            applied.updated += 1;
            let gone: BTreeSet<(u32, u16)> = old
                .iter()
                .filter(|b| !new_slots.contains(b))
                .map(|b| (b.addr, b.port))
                .collect();
            if !gone.is_empty() {
                ended_backends.push((id, gone));
            }
        }
    }

    let mut removed_ids = BTreeSet::new();
    for (key, f) in &current {
        if keep.contains(key) {
            continue;
        }
        maps.frontends.remove(&key.0)?;
        for slot in 0..f.slots {
            // Ignored error: a slot already gone needs no removal.
            let _ = maps.backends.remove(&BackendKey {
                frontend_id: f.id,
                slot,
            });
        }
        removed_ids.insert(f.id);
        applied.removed += 1;
    }

    sync_addrs(
        &mut maps.frontend_addrs,
        desired.iter().map(|f| addr_key(f.addr)),
    )?;

    // Flows of removed frontends and backends end now (see `end_flows`).
    let ended = |e: &FlowView| {
        removed_ids.contains(&e.frontend_id)
            || ended_backends.iter().any(|(id, gone)| {
                *id == e.frontend_id && gone.contains(&(e.backend.saddr, e.backend.sport))
            })
    };
    let mut lingering = BTreeSet::new();
    applied.flows_ended = end_flows(&mut maps.conntrack, |e| {
        let end = ended(e);
        if end {
            lingering.insert(e.backend.saddr);
        }
        end
    })?;
    applied.lingering = lingering;
    sync_backend_addrs(maps, desired, &applied.lingering)?;
    Ok(applied)
}

/// Makes `BACKEND_ADDRS_V4` hold the configured backends' addresses and the
/// `lingering` ones of flows ended a moment ago.
pub fn sync_backend_addrs(
    maps: &mut Maps,
    desired: &[config::Frontend],
    lingering: &BTreeSet<u32>,
) -> Result<()> {
    sync_addrs(
        &mut maps.backend_addrs,
        desired
            .iter()
            .flat_map(|f| f.backends.iter().map(|b| addr_key(b.addr)))
            .chain(lingering.iter().copied()),
    )
}

/// A flow as `end_flows` shows it to its predicate.
pub struct FlowView {
    pub frontend_id: u32,
    /// The backend's side of the flow: its address and port as source.
    pub backend: CtKeyV4,
}

/// Ends every flow for which `ended` holds; returns how many. A TCP flow's
/// entries stay for the close timeout, marked ended: the datapath turns the
/// next segment of either end into a reset for the other. A UDP flow's
/// entries go: its next datagram opens a new flow.
pub fn end_flows(ct: &mut ConntrackV4, mut ended: impl FnMut(&FlowView) -> bool) -> Result<usize> {
    let mut doomed = Vec::new();
    for r in ct.iter() {
        let (k, e) = r.context("reading conntrack")?;
        // The reverse entry's key is the backend → client tuple.
        let backend = if e.dir == CtDir::Reverse as u8 {
            k
        } else {
            e.nat.reversed()
        };
        if ended(&FlowView {
            frontend_id: e.frontend_id,
            backend,
        }) {
            doomed.push((k, e));
        }
    }
    let now = crate::gc::monotonic_ns();
    let mut flows = 0;
    for (k, mut e) in doomed {
        // Ignored errors: the LRU may have evicted the entry meanwhile.
        if e.dir == CtDir::Forward as u8 {
            flows += 1;
        }
        if k.proto == IPPROTO_TCP {
            e.seen |= SEEN_ENDED | SEEN_RST;
            e.last_seen_ns = now;
            let _ = ct.insert(k, e, 0);
        } else {
            let _ = ct.remove(&k);
        }
    }
    Ok(flows)
}

/// Makes an address map hold exactly `addrs`, each with its use count.
fn sync_addrs(map: &mut crate::loader::AddrsV4, addrs: impl Iterator<Item = u32>) -> Result<()> {
    let mut want: BTreeMap<u32, u32> = BTreeMap::new();
    for a in addrs {
        *want.entry(a).or_default() += 1;
    }
    for (a, n) in &want {
        map.insert(a, n, 0)?;
    }
    let stale: Vec<u32> = map
        .keys()
        .filter_map(Result::ok)
        .filter(|a| !want.contains_key(a))
        .collect();
    for a in stale {
        map.remove(&a)?;
    }
    Ok(())
}

/// `FrontendKeyV4` ordered for use in a `BTreeMap`.
#[derive(Clone, Copy, PartialEq, Eq)]
struct FrontendKeyV4Ord(FrontendKeyV4);

impl Ord for FrontendKeyV4Ord {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let k = |f: &FrontendKeyV4| (f.addr, f.port, f.proto);
        k(&self.0).cmp(&k(&other.0))
    }
}

impl PartialOrd for FrontendKeyV4Ord {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
