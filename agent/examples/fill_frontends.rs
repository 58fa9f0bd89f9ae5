//! Puts more frontends in a node's datapath than `hairpin run` accepts from
//! its configuration file (the YAML parser's budget of 250,000 nodes stops
//! it short of 50,000 frontends), so that scripts/bench.sh can measure the
//! datapath with 100,000.
//!
//! ```sh
//! fill_frontends --pin-dir DIR --create N   # before the agent starts:
//!                                           # pin maps with room for N
//! fill_frontends --pin-dir DIR --add N      # once it is ready: add N
//! ```
//!
//! The agent adopts maps already pinned under its `--pin-dir` whatever
//! their size, and leaves frontends it does not know alone until its next
//! reload. Added frontends sit on 203.0.113.1-250, ports from 10000, all to
//! 198.51.100.2:80, with ids after the agent's own.

use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{bail, Context as _, Result};
use aya::maps::{HashMap, Map, MapData, MapError};
use hairpin::{
    datapath::loader::{Datapath, LoadOptions},
    datapath::pins,
    reconcile::{addr_key, port_key},
};
use hairpin_common::{
    BackendKey, BackendV4, Frontend, FrontendKeyV4, BACKENDS_V4, FRONTENDS_V4, FRONTEND_ADDRS_V4,
    IPPROTO_TCP,
};

const BACKEND: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);

fn pinned<K: aya::Pod, V: aya::Pod>(dir: &Path, name: &str) -> Result<HashMap<MapData, K, V>> {
    let pin = pins::map_pin(dir, name);
    let data = MapData::from_pin(&pin).with_context(|| format!("opening {}", pin.display()))?;
    Ok(HashMap::try_from(Map::from_map_data(data)?)?)
}

fn create(dir: &Path, n: u32) -> Result<()> {
    let cap = n.saturating_mul(2).next_power_of_two();
    let defaults = LoadOptions::default();
    let opts = LoadOptions {
        max_frontends: cap.max(defaults.max_frontends),
        max_backend_slots: cap.max(defaults.max_backend_slots),
        ..defaults
    };
    std::fs::create_dir_all(dir.join(pins::MAPS_DIR))?;
    // Loading with a pin directory pins every map there; they outlive us.
    Datapath::load(&opts, Some(dir))?;
    Ok(())
}

fn add(dir: &Path, n: u32) -> Result<()> {
    let mut frontends: HashMap<_, FrontendKeyV4, Frontend> = pinned(dir, FRONTENDS_V4)?;
    let mut backends: HashMap<_, BackendKey, BackendV4> = pinned(dir, BACKENDS_V4)?;
    let mut addrs: HashMap<_, u32, u32> = pinned(dir, FRONTEND_ADDRS_V4)?;
    let mut next_id = 0;
    for r in frontends.iter() {
        next_id = next_id.max(r?.1.id + 1);
    }
    let mut added = 0;
    for i in 0.. {
        if added == n {
            break;
        }
        let addr = Ipv4Addr::new(203, 0, 113, (1 + i % 250) as u8);
        let port = u16::try_from(10_000 + i / 250).context("out of ports")?;
        let key = FrontendKeyV4 {
            addr: addr_key(addr),
            port: port_key(port),
            proto: IPPROTO_TCP,
            _pad: 0,
        };
        match frontends.get(&key, 0) {
            Ok(_) => continue,
            Err(MapError::KeyNotFound) => {}
            Err(e) => return Err(e.into()),
        }
        let id = next_id;
        next_id += 1;
        let slot = BackendKey {
            frontend_id: id,
            slot: 0,
        };
        let backend = BackendV4 {
            addr: addr_key(BACKEND),
            port: port_key(80),
            _pad: 0,
        };
        backends.insert(slot, backend, 0)?;
        frontends.insert(
            key,
            Frontend {
                id,
                slots: 1,
                flags: 0,
            },
            0,
        )?;
        let count = match addrs.get(&key.addr, 0) {
            Ok(c) => c,
            Err(MapError::KeyNotFound) => 0,
            Err(e) => return Err(e.into()),
        };
        addrs.insert(key.addr, count + 1, 0)?;
        added += 1;
    }
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: fill_frontends --pin-dir DIR (--create N | --add N)";
    let (dir, mode, n) = match args.as_slice() {
        [p, dir, mode, n] if p == "--pin-dir" => (PathBuf::from(dir), mode.as_str(), n),
        _ => bail!(usage),
    };
    let n: u32 = n.replace('_', "").parse().context("N: not a number")?;
    let t = Instant::now();
    match mode {
        "--create" => create(&dir, n)?,
        "--add" => add(&dir, n)?,
        _ => bail!(usage),
    }
    println!("{mode} {n}: {:.3} s", t.elapsed().as_secs_f64());
    Ok(())
}
