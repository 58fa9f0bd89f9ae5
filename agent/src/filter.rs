//! The datapath's address filter (`hairpin_common::filter`), kept in step
//! with the address maps: written after every change to them, from what
//! they hold. An address added is served once its bit is written, a moment
//! after its map entry, as if it had been added then.

use std::collections::BTreeSet;

use anyhow::{Context as _, Result};
use aya::maps::{Array, HashMap, MapData};
use hairpin_common::{filter_bit, BACKEND_FILTER, FILTER_WORDS, FRONTEND_FILTER};

use crate::{family::Addr, loader::Maps};

/// Sets the bits of the addresses of `map` in `out`.
fn words<A: Addr>(map: &HashMap<MapData, A, u32>, out: &mut [u64]) -> Result<()> {
    for addr in map.keys() {
        let bit = filter_bit(addr.context("reading an address map")?);
        out[(bit / 64) as usize] |= 1 << (bit % 64);
    }
    Ok(())
}

/// Writes the filter from the address maps, only the words that changed.
pub fn sync(maps: &mut Maps) -> Result<()> {
    let n = FILTER_WORDS as usize;
    let mut want = vec![0u64; 2 * n];
    let (front, back) = want.split_at_mut(BACKEND_FILTER as usize);
    words(
        &maps.v4.frontend_addrs,
        &mut front[FRONTEND_FILTER as usize..],
    )?;
    words(
        &maps.v6.frontend_addrs,
        &mut front[FRONTEND_FILTER as usize..],
    )?;
    words(&maps.v4.backend_addrs, back)?;
    words(&maps.v6.backend_addrs, back)?;
    write(&mut maps.addr_filter, &want)
}

fn write(filter: &mut Array<MapData, u64>, want: &[u64]) -> Result<()> {
    let changed: BTreeSet<u32> = (0..want.len() as u32)
        .filter(|&i| filter.get(&i, 0).ok() != Some(want[i as usize]))
        .collect();
    for i in changed {
        filter
            .set(i, want[i as usize], 0)
            .context("writing the address filter")?;
    }
    Ok(())
}
