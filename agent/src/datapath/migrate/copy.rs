//! The copy of a map's entries into its replacement, each map by its
//! types, converting values of an earlier layout.

use std::{mem::size_of, os::fd::AsFd as _};

use anyhow::Result;
use aya::{
    maps::{Array, HashMap, Map, MapData, MapType, PerCpuArray, PerCpuValues},
    Pod,
};
use hairpin_common::{
    BackendKey, BackendV4, BackendV6, CtEntryV4, CtEntryV6, CtKeyV4, CtKeyV6, Frontend,
    FrontendKeyV4, FrontendKeyV6, FrontendStats, MemberKeyV4, MemberKeyV6, NodeConfig, SockKeyV4,
    SockKeyV6, SockNatV4, SockNatV6, BACKENDS_V4, BACKENDS_V6, BACKEND_ADDRS_V4, BACKEND_ADDRS_V6,
    BACKEND_MEMBERS_V4, BACKEND_MEMBERS_V6, CT_V4, CT_V6, FRONTENDS_V4, FRONTENDS_V6,
    FRONTEND_ADDRS_V4, FRONTEND_ADDRS_V6, FRONTEND_STATS, GLOBAL_STATS, LAYOUT, NODE,
    SOCK_REVNAT_V4, SOCK_REVNAT_V6,
};

/// Values of an earlier layout that this binary converts: (map, the size
/// the value had). Fields are only ever added at a value's end, so such a
/// value is the first bytes of this binary's, the rest starting at zero.
pub(super) const EARLIER_VALUES: [(&str, u32); 1] = [(FRONTEND_STATS, STATS_BEFORE_SOCKETS as u32)];

/// The per-frontend counters before the socket path's two (layout 1).
const STATS_BEFORE_SOCKETS: usize = 24;

/// A map by the kind the kernel reports, over its data (the fd is
/// duplicated: the old map stays open for the second copy).
pub(super) fn typed<T: TryFrom<Map, Error = aya::maps::MapError>>(data: &MapData) -> Result<T> {
    let fd = data.fd().as_fd().try_clone_to_owned()?;
    let data = MapData::from_fd(fd)?;
    let map = match data.info()?.map_type()? {
        MapType::Hash => Map::HashMap(data),
        MapType::LruHash => Map::LruHashMap(data),
        MapType::PerCpuArray => Map::PerCpuArray(data),
        _ => Map::Array(data),
    };
    Ok(T::try_from(map)?)
}

fn copy_hash<K: Pod, V: Pod>(old: &MapData, new: MapData, again: bool) -> Result<(usize, usize)> {
    let old: HashMap<MapData, K, V> = typed(old)?;
    let mut new: HashMap<MapData, K, V> = typed(&new)?;
    // BPF_NOEXIST on the second pass.
    let flags = if again { 1 } else { 0 };
    let (mut copied, mut left) = (0, 0);
    for (k, v) in old.iter().filter_map(Result::ok) {
        match new.insert(k, v, flags) {
            Ok(()) => copied += 1,
            Err(_) => left += 1,
        }
    }
    Ok((copied, left))
}

fn copy_per_cpu<V: Pod>(old: &MapData, new: MapData) -> Result<(usize, usize)> {
    let old: PerCpuArray<MapData, V> = typed(old)?;
    let mut new: PerCpuArray<MapData, V> = typed(&new)?;
    let n = old.len().min(new.len());
    for i in 0..n {
        new.set(i, old.get(&i, 0)?, 0)?;
    }
    Ok((n as usize, old.len().saturating_sub(n) as usize))
}

/// Per-CPU values of an earlier, shorter layout (`N` bytes) into this
/// binary's `V`s: the earlier bytes first, the rest zero.
fn copy_per_cpu_grown<const N: usize, V: Pod + Default>(
    old: &MapData,
    new: MapData,
) -> Result<(usize, usize)> {
    let old: PerCpuArray<MapData, [u8; N]> = typed(old)?;
    let mut new: PerCpuArray<MapData, V> = typed(&new)?;
    let n = old.len().min(new.len());
    for i in 0..n {
        let grown: Vec<V> = old
            .get(&i, 0)?
            .iter()
            .map(|earlier| {
                let mut v = V::default();
                // SAFETY: `V` is `Pod`, and `N` is within its size (an
                // earlier layout of it).
                let bytes = unsafe {
                    std::slice::from_raw_parts_mut((&mut v as *mut V).cast::<u8>(), size_of::<V>())
                };
                bytes[..N].copy_from_slice(earlier);
                v
            })
            .collect();
        new.set(i, PerCpuValues::try_from(grown)?, 0)?;
    }
    Ok((n as usize, old.len().saturating_sub(n) as usize))
}

pub(super) fn copy_map(
    name: &str,
    old: &MapData,
    new: MapData,
    again: bool,
) -> Result<(usize, usize)> {
    match name {
        FRONTENDS_V4 => copy_hash::<FrontendKeyV4, Frontend>(old, new, again),
        FRONTEND_ADDRS_V4 | BACKEND_ADDRS_V4 => copy_hash::<u32, u32>(old, new, again),
        BACKENDS_V4 => copy_hash::<BackendKey, BackendV4>(old, new, again),
        BACKEND_MEMBERS_V4 => copy_hash::<MemberKeyV4, u32>(old, new, again),
        CT_V4 => copy_hash::<CtKeyV4, CtEntryV4>(old, new, again),
        FRONTENDS_V6 => copy_hash::<FrontendKeyV6, Frontend>(old, new, again),
        FRONTEND_ADDRS_V6 | BACKEND_ADDRS_V6 => copy_hash::<[u32; 4], u32>(old, new, again),
        BACKENDS_V6 => copy_hash::<BackendKey, BackendV6>(old, new, again),
        BACKEND_MEMBERS_V6 => copy_hash::<MemberKeyV6, u32>(old, new, again),
        CT_V6 => copy_hash::<CtKeyV6, CtEntryV6>(old, new, again),
        SOCK_REVNAT_V4 => copy_hash::<SockKeyV4, SockNatV4>(old, new, again),
        SOCK_REVNAT_V6 => copy_hash::<SockKeyV6, SockNatV6>(old, new, again),
        // Counters are copied once: a second pass would count twice.
        _ if again => Ok((0, 0)),
        FRONTEND_STATS if old.info()?.value_size() as usize == STATS_BEFORE_SOCKETS => {
            copy_per_cpu_grown::<STATS_BEFORE_SOCKETS, FrontendStats>(old, new)
        }
        FRONTEND_STATS => copy_per_cpu::<FrontendStats>(old, new),
        GLOBAL_STATS => copy_per_cpu::<u64>(old, new),
        LAYOUT => Ok((0, 0)),
        NODE => {
            let old: Array<MapData, NodeConfig> = typed(old)?;
            let mut new: Array<MapData, NodeConfig> = typed(&new)?;
            new.set(0, old.get(&0, 0)?, 0)?;
            Ok((1, 0))
        }
        _ => Ok((0, 0)),
    }
}
