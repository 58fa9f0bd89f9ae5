//! The datapath's address filter (`hairpin_common::filter`), kept in step
//! with the maps: written after every change to them, from the frontend
//! addresses and the backends (address and port) they hold, and the
//! backends of flows ended a moment ago. An address added is served once
//! its bit is written, a moment after its map entry, as if it had been
//! added then.

use anyhow::{Context as _, Result};
use aya::maps::{Array, HashMap, MapData};
use hairpin_common::{
    endpoint_bit, filter_bit, Backend, BackendKey, BACKEND_FILTER, FILTER_LEN, FRONTEND_FILTER,
};

use crate::{conntrack::flows::Lingering, datapath::addr::Addr, datapath::loader::Maps};

fn set(out: &mut [u64], bit: u32) {
    out[(bit / 64) as usize] |= 1 << (bit % 64);
}

/// Sets the bits of the addresses of `map` in `out`.
fn addrs<A: Addr>(map: &HashMap<MapData, A, u32>, out: &mut [u64]) -> Result<()> {
    for addr in map.keys() {
        set(out, filter_bit(addr.context("reading an address map")?));
    }
    Ok(())
}

/// Sets the bits of the backends of `map`, and of `ended`, in `out`.
fn endpoints<'a, A: Addr + 'a>(
    map: &HashMap<MapData, BackendKey, Backend<A>>,
    ended: impl Iterator<Item = &'a (A, u16)>,
    out: &mut [u64],
) -> Result<()> {
    for r in map.iter() {
        let (_, b) = r.context("reading the backends")?;
        set(out, endpoint_bit(b.addr, b.port));
    }
    for &(addr, port) in ended {
        set(out, endpoint_bit(addr, port));
    }
    Ok(())
}

/// Writes the filter from the maps and the backends of flows that
/// `lingering` keeps, only the words that changed.
pub fn sync(maps: &mut Maps, lingering: &Lingering) -> Result<()> {
    let mut want = [0u64; FILTER_LEN];
    let (front, back) = want.split_at_mut(BACKEND_FILTER as usize);
    let front = &mut front[FRONTEND_FILTER as usize..];
    addrs(&maps.v4.frontend_addrs, front)?;
    addrs(&maps.v6.frontend_addrs, front)?;
    endpoints(&maps.v4.backends, lingering.v4.iter(), back)?;
    endpoints(&maps.v6.backends, lingering.v6.iter(), back)?;
    write(&mut maps.addr_filter, &want)
}

/// Writes the filter, whole, when it changed. A program reading it
/// meanwhile may see some bytes old and some new: a bit set in both is
/// set in any mix, so a kept address is never missed.
fn write(filter: &mut Array<MapData, [u64; FILTER_LEN]>, want: &[u64; FILTER_LEN]) -> Result<()> {
    if filter.get(&0, 0).ok().as_ref() != Some(want) {
        filter
            .set(0, want, 0)
            .context("writing the address filter")?;
    }
    Ok(())
}
