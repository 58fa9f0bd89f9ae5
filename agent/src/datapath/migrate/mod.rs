//! Pinned maps against the ones this binary makes, before it loads. A map
//! of the same type, key and value sizes and capacity is adopted. One that
//! differs in capacity (a resized conntrack table, more counters), in kind
//! (an LRU conntrack table of an earlier release) or by values of an
//! earlier layout (`copy::EARLIER_VALUES`) only is migrated: a new map is
//! made and pinned, and every entry copied into it, once at load and once
//! more after the programs moved over, for what the old programs wrote
//! meanwhile. Any other difference: the map is replaced, the log says what
//! is lost, and a conntrack table's TCP flows are ended (`salvage`). No map
//! whose layout differs is reused.
//! The old pins are set aside (`NAME_OLD`: bpffs takes no dot in a name)
//! until the new datapath is in place: a start that fails puts them back,
//! and the old datapath keeps serving with every entry, for the next start.

mod copy;

use std::{fs, mem::size_of, net::IpAddr, path::Path};

use anyhow::{Context as _, Result};
use aya::maps::{Array, MapData, MapInfo, MapType};
use hairpin_common::{
    BackendKey, BackendV4, BackendV6, CtEntryV4, CtEntryV6, CtKeyV4, CtKeyV6, Frontend,
    FrontendKeyV4, FrontendKeyV6, FrontendStats, MemberKeyV4, MemberKeyV6, NodeConfig, SockKeyV4,
    SockKeyV6, SockNatV4, SockNatV6, BACKENDS_V4, BACKENDS_V6, BACKEND_ADDRS_V4, BACKEND_ADDRS_V6,
    BACKEND_MEMBERS_V4, BACKEND_MEMBERS_V6, CT_V4, CT_V6, FRONTENDS_V4, FRONTENDS_V6,
    FRONTEND_ADDRS_V4, FRONTEND_ADDRS_V6, FRONTEND_STATS, GLOBAL_STATS, LAYOUT, LAYOUT_VERSION,
    NODE, SOCK_REVNAT_V4, SOCK_REVNAT_V6,
};
use tracing::{info, warn};

use crate::{
    datapath::loader::{LoadOptions, Maps},
    datapath::pins::map_pin,
};
use copy::{copy_map, typed, EARLIER_VALUES};

/// What this binary makes of a map.
#[derive(Debug, PartialEq)]
struct Shape {
    map_type: MapType,
    key: u32,
    value: u32,
    max: u32,
}

/// A map's shape but its capacity, which `LoadOptions` says.
fn shape<K, V>(map_type: MapType) -> Shape {
    Shape {
        map_type,
        key: size_of::<K>() as u32,
        value: size_of::<V>() as u32,
        max: 0,
    }
}

/// Every pinned map's shape for `opts`, with what a replacement loses.
fn wanted(opts: &LoadOptions) -> [(&'static str, Shape, &'static str); 18] {
    use MapType::{Array as A, Hash as H, LruHash as L, PerCpuArray as P};
    let rebuilt = "rebuilt from the configuration";
    [
        (FRONTENDS_V4, shape::<FrontendKeyV4, Frontend>(H), rebuilt),
        (FRONTEND_ADDRS_V4, shape::<u32, u32>(H), rebuilt),
        (BACKENDS_V4, shape::<BackendKey, BackendV4>(H), rebuilt),
        (BACKEND_ADDRS_V4, shape::<u32, u32>(H), rebuilt),
        (BACKEND_MEMBERS_V4, shape::<MemberKeyV4, u32>(H), rebuilt),
        (
            CT_V4,
            shape::<CtKeyV4, CtEntryV4>(H),
            "its IPv4 flows are lost",
        ),
        (FRONTENDS_V6, shape::<FrontendKeyV6, Frontend>(H), rebuilt),
        (FRONTEND_ADDRS_V6, shape::<[u32; 4], u32>(H), rebuilt),
        (BACKENDS_V6, shape::<BackendKey, BackendV6>(H), rebuilt),
        (BACKEND_ADDRS_V6, shape::<[u32; 4], u32>(H), rebuilt),
        (BACKEND_MEMBERS_V6, shape::<MemberKeyV6, u32>(H), rebuilt),
        (
            CT_V6,
            shape::<CtKeyV6, CtEntryV6>(H),
            "its IPv6 flows are lost",
        ),
        (
            FRONTEND_STATS,
            shape::<u32, FrontendStats>(P),
            "frontend counters restart from zero",
        ),
        (
            GLOBAL_STATS,
            shape::<u32, u64>(P),
            "datapath counters restart from zero",
        ),
        (NODE, shape::<u32, NodeConfig>(A), rebuilt),
        (LAYOUT, shape::<u32, u32>(A), rebuilt),
        (
            SOCK_REVNAT_V4,
            shape::<SockKeyV4, SockNatV4>(L),
            "connected sockets report their backend as peer",
        ),
        (
            SOCK_REVNAT_V6,
            shape::<SockKeyV6, SockNatV6>(L),
            "connected sockets report their backend as peer",
        ),
    ]
    .map(|(name, shape, loss)| {
        let max = opts.max_entries(name);
        (name, Shape { max, ..shape }, loss)
    })
}

/// What `prepare` decided.
pub struct Migrations {
    /// The old maps being migrated, still open after their pins went.
    old: Vec<(&'static str, MapData)>,
    /// What became of every map not adopted: (map, `migrated` or `replaced`).
    pub outcomes: Vec<(&'static str, &'static str)>,
    /// The flows of each conntrack table replaced: (map, flows).
    pub flows_lost: Vec<(&'static str, usize)>,
    /// Those tables, still open after their pins went (see `salvage`).
    unreadable: Vec<(&'static str, MapData)>,
}

/// Whether `found`'s entries of map `name` can be copied into a map of
/// shape `want`: the same key, the same value or an earlier one, in a map
/// of the same kind or in a hash for an LRU hash (conntrack before it
/// stopped evicting).
fn convertible(name: &str, found: &Shape, want: &Shape) -> bool {
    let kinds = matches!(
        (found.map_type, want.map_type),
        (MapType::LruHash, MapType::Hash)
    ) || found.map_type == want.map_type;
    let value = found.value == want.value || EARLIER_VALUES.contains(&(name, found.value));
    kinds && found.key == want.key && value
}

/// Moves a map's pin from `from` to `to`.
fn repin(from: &Path, to: &Path) -> Result<()> {
    MapData::from_pin(from)?.pin(to)?;
    fs::remove_file(from)?;
    Ok(())
}

/// Where the pin of a map being migrated or replaced waits meanwhile.
fn aside(pin_dir: &Path, name: &str) -> std::path::PathBuf {
    map_pin(pin_dir, &format!("{name}_OLD"))
}

/// Decides for every map pinned under `pin_dir`, before the load: the pins
/// of maps to migrate or replace are removed (the load then pins new ones),
/// the maps to migrate are kept open.
pub fn prepare(pin_dir: &Path, opts: &LoadOptions) -> Result<Migrations> {
    if let Some(pinned) = pinned_layout(pin_dir)? {
        anyhow::ensure!(
            pinned <= LAYOUT_VERSION,
            "the datapath pinned under {} has layout {pinned}, newer than this binary's \
             {LAYOUT_VERSION}: it is not adopted, and keeps running as it is; run the newer \
             hairpin, or remove it with `hairpin detach`",
            pin_dir.display()
        );
    }
    let mut m = Migrations {
        old: Vec::new(),
        outcomes: Vec::new(),
        flows_lost: Vec::new(),
        unreadable: Vec::new(),
    };
    for (name, want, loss) in wanted(opts) {
        let path = map_pin(pin_dir, name);
        // Left by a start that did not finish: the map pinned now is the
        // one its programs use.
        if aside(pin_dir, name).exists() {
            fs::remove_file(aside(pin_dir, name))?;
        }
        if !path.exists() {
            continue;
        }
        let info =
            MapInfo::from_pin(&path).with_context(|| format!("reading {}", path.display()))?;
        let found = Shape {
            map_type: info.map_type()?,
            key: info.key_size(),
            value: info.value_size(),
            max: info.max_entries(),
        };
        if found == want {
            continue;
        }
        if convertible(name, &found, &want) {
            if found.value != want.value {
                info!(
                    map = name,
                    "pinned with values of {} bytes, an earlier layout of this binary's {}: \
                     migrating its entries",
                    found.value,
                    want.value
                );
            } else if found.map_type == want.map_type {
                info!(
                    map = name,
                    "pinned with {} entries, {} wanted: migrating its entries", found.max, want.max
                );
            } else {
                info!(
                    map = name,
                    "pinned as {:?} of {} entries, {:?} of {} wanted: migrating its entries",
                    found.map_type,
                    found.max,
                    want.map_type,
                    want.max
                );
            }
            m.old.push((name, MapData::from_pin(&path)?));
            m.outcomes.push((name, "migrated"));
        } else if matches!(name, CT_V4 | CT_V6) {
            // Both entries of a flow went into the table together.
            let table = MapData::from_pin(&path)?;
            let entries = crate::datapath::map_keys::count(&table)?;
            let flows = entries.div_ceil(2);
            m.outcomes.push((name, "replaced"));
            m.flows_lost.push((name, flows));
            m.unreadable.push((name, table));
            warn!(
                map = name,
                flows,
                entries,
                "pinned as {found:?}, this binary makes {want:?}: replaced, {loss}: \
                 {flows} flows ({entries} entries)"
            );
        } else {
            m.outcomes.push((name, "replaced"));
            warn!(
                map = name,
                "pinned as {found:?}, this binary makes {want:?}: replaced, {loss}"
            );
        }
        // bpffs renames nothing: the map is pinned again, then unpinned.
        repin(&path, &aside(pin_dir, name))
            .with_context(|| format!("setting {} aside", path.display()))?;
    }
    Ok(m)
}

/// The layout version of the datapath pinned under `pin_dir`, if any; a
/// datapath from before versions were recorded is of version 1.
pub fn pinned_layout(pin_dir: &Path) -> Result<Option<u32>> {
    let path = map_pin(pin_dir, LAYOUT);
    if !path.exists() {
        let any = map_pin(pin_dir, CT_V4).exists();
        return Ok(any.then_some(1));
    }
    let map: Array<MapData, u32> = typed(&MapData::from_pin(&path)?)?;
    Ok(Some(map.get(&0, 0)?))
}

impl Migrations {
    /// After a failed load: the old pins back in place of any new ones.
    pub fn restore(&self, pin_dir: &Path) {
        for &(name, _) in &self.outcomes {
            let path = map_pin(pin_dir, name);
            // Ignored error: the load may not have got as far as this map.
            let _ = fs::remove_file(&path);
            match repin(&aside(pin_dir, name), &path) {
                Ok(()) => info!(map = name, "kept as it was pinned"),
                Err(e) => warn!(map = name, "putting its old pin back: {e}"),
            }
        }
    }

    /// Ends the TCP flows of the conntrack tables replaced, in the new
    /// ones (see `salvage`); `node`: the node's own addresses. `again`:
    /// after the programs moved over, the flows the old ones opened since.
    pub fn end_unreadable(&self, maps: &mut Maps, node: &[IpAddr], again: bool) {
        for (name, old) in &self.unreadable {
            let ended = if *name == CT_V4 {
                crate::datapath::unreadable::end_unreadable(old, &mut maps.v4, node, again)
            } else {
                crate::datapath::unreadable::end_unreadable(old, &mut maps.v6, node, again)
            };
            match ended {
                Ok(Some(flows)) => info!(
                    map = name,
                    flows,
                    again,
                    "TCP flows of the replaced table entered ended: each end is reset at its next segment"
                ),
                Ok(None) => warn!(
                    map = name,
                    "its keys are of another layout too: its flows are not ended, their next \
                     segments meet no entry"
                ),
                Err(e) => warn!(map = name, "ending the replaced table's flows: {e:#}"),
            }
        }
    }

    /// Once the new programs are in place: the old pins go.
    pub fn finish(&self, pin_dir: &Path) {
        for &(name, _) in &self.outcomes {
            if let Err(e) = fs::remove_file(aside(pin_dir, name)) {
                warn!(map = name, "removing its old pin: {e}");
            }
        }
    }

    /// Copies the old maps' entries into the new ones pinned under
    /// `pin_dir`; `again`: only what the new ones lack (after the switch,
    /// the new programs' entries are the newer).
    pub fn copy(&self, pin_dir: &Path, again: bool) -> Result<()> {
        for (name, old) in &self.old {
            let new = MapData::from_pin(map_pin(pin_dir, name))?;
            // Not copied: on the second pass, entries the new map has
            // already; else entries beyond its capacity.
            let (copied, not_copied) = copy_map(name, old, new, again)?;
            info!(map = name, copied, not_copied, again, "entries migrated");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pinned_map_has_its_shape() {
        let names: Vec<&str> = wanted(&LoadOptions::default())
            .iter()
            .map(|w| w.0)
            .collect();
        let mut pinned = hairpin_common::PINNED_MAPS.to_vec();
        pinned.sort_unstable();
        let mut names_sorted = names.clone();
        names_sorted.sort_unstable();
        assert_eq!(names_sorted, pinned);
    }
}
