//! Conntrack at scale: the kernel memory of `CT_V4` sized for a million
//! entries, and the time of the agent's collector (`hairpin::conntrack::sweep::sweep`)
//! over a full table.
//!
//! ```sh
//! cargo run --release --example ct_bench            # a table
//! cargo run --release --example ct_bench -- --tsv   # raw values
//! ```
//!
//! The table is filled through the userspace map API with established
//! flows (two entries each, as the datapath writes them); the datapath's
//! programs are loaded but run nothing.

use std::{
    collections::BTreeMap,
    fs,
    net::Ipv4Addr,
    os::fd::{AsFd as _, AsRawFd as _},
    time::Instant,
};

use anyhow::{bail, ensure, Context as _, Result};
use aya::maps::IterableMap as _;
use hairpin::{
    conntrack::sweep,
    datapath::loader::{Conntrack, Datapath, LoadOptions},
    reconcile::{addr_key, port_key},
};
use hairpin_common::{
    CtDir, CtEntryV4, CtKeyV4, CtOrigin, CtTimeouts, IPPROTO_TCP, NS_PER_SEC, SEEN_ACK, SEEN_SYN,
};

const FRONTEND: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
const BACKEND: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
/// Entries the agent's collector looks at per tick (`GC_BUDGET` in
/// agent/src/cli/run.rs, one tick every 2 s).
const TICK_BUDGET: usize = 65_536;

struct Opts {
    flows: u32,
    ct_entries: u32,
    tsv: bool,
}

fn parse_args() -> Result<Opts> {
    let mut o = Opts {
        flows: 500_000,
        ct_entries: 1 << 20,
        tsv: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |name: &str| -> Result<u32> {
            args.next()
                .with_context(|| format!("{name} needs a value"))?
                .replace('_', "")
                .parse()
                .with_context(|| format!("{name}: not a number"))
        };
        match a.as_str() {
            "--flows" => o.flows = num("--flows")?,
            "--ct-entries" => o.ct_entries = num("--ct-entries")?,
            "--tsv" => o.tsv = true,
            _ => bail!("usage: ct_bench [--flows N] [--ct-entries N] [--tsv]"),
        }
    }
    ensure!(
        u64::from(o.flows) * 2 <= u64::from(o.ct_entries),
        "--ct-entries must hold two entries per flow"
    );
    Ok(o)
}

/// `key: value` lines of a /proc file, the first number of each value.
fn proc_numbers(path: &str) -> Result<BTreeMap<String, u64>> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let n = v.split_whitespace().next()?.parse().ok()?;
            Some((k.trim().to_owned(), n))
        })
        .collect())
}

/// `memlock` of every BPF map this process holds, by fd: the kernel's own
/// account of a map's memory (`map->ops->map_mem_usage` since 6.4).
fn maps_memlock() -> Result<BTreeMap<i32, (u64, u64)>> {
    let mut out = BTreeMap::new();
    for e in fs::read_dir("/proc/self/fdinfo")? {
        let e = e?;
        let Ok(fd) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        // Ignored error: an fd may close while we look.
        let Ok(info) = proc_numbers(&e.path().to_string_lossy()) else {
            continue;
        };
        if let (Some(_), Some(memlock), Some(max)) = (
            info.get("map_type"),
            info.get("memlock"),
            info.get("max_entries"),
        ) {
            out.insert(fd, (*memlock, *max));
        }
    }
    Ok(out)
}

fn flow_keys(i: u32) -> (CtKeyV4, CtKeyV4, CtKeyV4, CtKeyV4) {
    let client = addr_key(Ipv4Addr::new(198, 51, 100, 128 + (i >> 16) as u8));
    let port = port_key(i as u16);
    let fe = addr_key(FRONTEND);
    let be = addr_key(BACKEND);
    let k = |saddr, daddr, sport, dport| CtKeyV4 {
        saddr,
        daddr,
        sport,
        dport,
        proto: IPPROTO_TCP,
        _pad: 0,
        _pad2: 0,
    };
    (
        k(client, fe, port, port_key(8080)), // the client's packet
        k(client, be, port, port_key(80)),   // ... as it leaves
        k(be, client, port_key(80), port),   // the backend's reply
        k(fe, client, port_key(8080), port), // ... as it leaves
    )
}

/// Inserts `flows` established flows seen at `now`, two entries each.
fn fill(ct: &mut Conntrack<u32>, flows: u32, now: u64) -> Result<()> {
    for i in 0..flows {
        let (fwd_key, fwd_nat, rev_key, rev_nat) = flow_keys(i);
        let fwd = CtEntryV4 {
            nat: fwd_nat,
            created_ns: now,
            last_seen_ns: now,
            frontend_id: 0,
            dir: CtDir::Forward as u8,
            origin: CtOrigin::Pod as u8,
            seen: SEEN_SYN | SEEN_ACK,
            _pad: 0,
        };
        let rev = CtEntryV4 {
            nat: rev_nat,
            dir: CtDir::Reverse as u8,
            seen: SEEN_SYN | SEEN_ACK,
            ..fwd
        };
        ct.insert(rev_key, rev, 0)?;
        ct.insert(fwd_key, fwd, 0)?;
    }
    Ok(())
}

fn main() -> Result<()> {
    let o = parse_args()?;
    let timeouts = CtTimeouts::default();
    let opts = LoadOptions {
        ct_entries: o.ct_entries,
        timeouts,
        ..LoadOptions::default()
    };

    let mut dp = Datapath::load(&opts, None)?;
    let mut maps = dp.take_maps()?;
    let ct = &mut maps.v4.conntrack;
    let ct_fd = ct.map().fd().as_fd().as_raw_fd();
    let all = maps_memlock()?;
    let (ct_memlock, ct_max) = *all.get(&ct_fd).context("no fdinfo for CT_V4")?;
    ensure!(
        ct_max == u64::from(o.ct_entries),
        "CT_V4 has {ct_max} slots"
    );
    let all_memlock: u64 = all.values().map(|(m, _)| m).sum();

    // Fill: established flows, both entries, as the datapath writes them.
    let now = hairpin::datapath::clock::monotonic_ns();
    let t = Instant::now();
    fill(ct, o.flows, now)?;
    let fill_s = t.elapsed().as_secs_f64();
    let entries = ct.keys().count();
    ensure!(
        entries == 2 * o.flows as usize,
        "{entries} entries after inserting {}: the LRU evicted some",
        2 * o.flows
    );

    // A full sweep with nothing expired: the collector's reading cost.
    let t = Instant::now();
    let s = sweep::sweep(
        ct,
        &timeouts,
        hairpin::datapath::clock::monotonic_ns(),
        usize::MAX,
    )?;
    let sweep_live_s = t.elapsed().as_secs_f64();
    ensure!(s.entries == entries && s.removed == 0, "live sweep: {s:?}");

    // One tick of the agent's collector.
    let t = Instant::now();
    let s = sweep::Sweeper::default().step(
        ct,
        &timeouts,
        hairpin::datapath::clock::monotonic_ns(),
        TICK_BUDGET,
    )?;
    let tick_s = t.elapsed().as_secs_f64();
    ensure!(s.entries == TICK_BUDGET.min(entries), "tick: {s:?}");

    // Seven hours on, every flow has expired: a full sweep removes them.
    let later = now + 7 * 3600 * NS_PER_SEC;
    let t = Instant::now();
    let s = sweep::sweep(ct, &timeouts, later, usize::MAX)?;
    let sweep_expired_s = t.elapsed().as_secs_f64();
    let removed = s.removed;
    ensure!(
        ct.keys().count() == 0,
        "expired entries left after a full sweep"
    );

    // The agent's way: ticks of a bounded budget. Filled again, all expired
    // but the first tick's worth of entries in the map's order, which have
    // just seen a packet: the ticks must get past them to the rest.
    fill(ct, o.flows, now)?;
    let head: Vec<CtKeyV4> = ct.keys().take(TICK_BUDGET).collect::<Result<_, _>>()?;
    for k in &head {
        let mut e = ct.get(k, 0)?;
        e.last_seen_ns = later;
        ct.insert(k, e, 0)?;
    }
    let expired_behind = ct.keys().count() - head.len();
    let mut sweeper = sweep::Sweeper::default();
    let (mut ticks, mut tick_removed) = (0, 0);
    let t = Instant::now();
    // Twice the ticks a full pass needs: the cursor must come round.
    while ticks < 2 * (entries / TICK_BUDGET + 1) {
        let s = sweeper.step(ct, &timeouts, later, TICK_BUDGET)?;
        ticks += 1;
        tick_removed += s.removed;
        if s.entries < TICK_BUDGET {
            break;
        }
    }
    let ticks_s = t.elapsed().as_secs_f64();
    let left = ct.keys().count();

    let rows: Vec<(&str, String, f64)> = vec![
        (
            "ct_slots",
            "CT_V4 slots (max_entries)".into(),
            ct_max as f64,
        ),
        ("ct_entries", "entries filled".into(), entries as f64),
        (
            "ct_memlock_mib",
            "CT_V4 kernel memory, fdinfo memlock (MiB)".into(),
            ct_memlock as f64 / 1048576.0,
        ),
        (
            "ct_bytes_per_slot",
            "  bytes per slot".into(),
            ct_memlock as f64 / ct_max as f64,
        ),
        (
            "maps_memlock_mib",
            "all maps of the datapath, memlock (MiB)".into(),
            all_memlock as f64 / 1048576.0,
        ),
        (
            "fill_s",
            format!("fill {entries} entries from userspace (s)"),
            fill_s,
        ),
        (
            "sweep_live_s",
            "full GC sweep, nothing expired (s)".into(),
            sweep_live_s,
        ),
        (
            "sweep_live_ns_per_entry",
            "  ns per entry".into(),
            sweep_live_s * 1e9 / entries as f64,
        ),
        (
            "sweep_expired_s",
            format!("full GC sweep removing {removed} expired entries (s)"),
            sweep_expired_s,
        ),
        ("sweep_removed", "  entries removed".into(), removed as f64),
        (
            "tick_s",
            format!("one agent tick ({TICK_BUDGET} entries) (s)"),
            tick_s,
        ),
        (
            "ticks_expired_behind",
            format!("ticks over {expired_behind} expired entries behind {TICK_BUDGET} live:"),
            expired_behind as f64,
        ),
        (
            "ticks",
            "  ticks until the end of the map".into(),
            ticks as f64,
        ),
        ("ticks_s", "  their time (s)".into(), ticks_s),
        (
            "ticks_removed",
            "  entries removed".into(),
            tick_removed as f64,
        ),
        ("ticks_left", "  entries left".into(), left as f64),
    ];
    if o.tsv {
        for (name, _, v) in &rows {
            println!("ct\t{name}\t{v}");
        }
    } else {
        for (_, label, v) in &rows {
            println!("{label:<66} {v:>12.3}");
        }
    }
    Ok(())
}
