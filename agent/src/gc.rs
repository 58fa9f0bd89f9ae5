//! Conntrack garbage collection. The datapath only judges a flow's forward
//! entry when a packet meets it; expired flows are removed here, both
//! entries together, judged on the most recent packet either way.

use anyhow::{Context as _, Result};
use hairpin_common::{ct_lifetime, CtDir, CtEntryV4, CtKeyV4, CtTimeouts};

use crate::loader::ConntrackV4;

/// What a sweep found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    pub entries: usize,
    pub removed: usize,
}

/// The key of the other entry of `e`'s flow.
pub fn partner(e: &CtEntryV4) -> CtKeyV4 {
    e.nat.reversed()
}

/// Removes expired flows, looking at no more than `budget` entries.
pub fn sweep(ct: &mut ConntrackV4, t: &CtTimeouts, now_ns: u64, budget: usize) -> Result<Sweep> {
    let mut sweep = Sweep::default();
    let mut doomed = Vec::new();
    for r in ct.iter().take(budget) {
        let (k, e) = r.context("reading conntrack")?;
        sweep.entries += 1;
        if e.dir != CtDir::Forward as u8 {
            // Judged with its forward partner; an orphan alone.
            if ct.get(&partner(&e), 0).is_err() && expired(&e, None, t, now_ns) {
                doomed.push(k);
            }
            continue;
        }
        let rev = ct.get(&partner(&e), 0).ok();
        if expired(&e, rev.as_ref(), t, now_ns) {
            doomed.push(k);
            if rev.is_some() {
                doomed.push(partner(&e));
            }
        }
    }
    for k in doomed {
        // Ignored error: the LRU or the datapath may have replaced it.
        if ct.remove(&k).is_ok() {
            sweep.removed += 1;
        }
    }
    Ok(sweep)
}

fn expired(e: &CtEntryV4, other: Option<&CtEntryV4>, t: &CtTimeouts, now_ns: u64) -> bool {
    let (last, seen) = match other {
        Some(o) => (e.last_seen_ns.max(o.last_seen_ns), e.seen | o.seen),
        None => (e.last_seen_ns, e.seen),
    };
    now_ns.saturating_sub(last) > ct_lifetime(e.nat.proto, seen, t)
}

/// CLOCK_MONOTONIC in nanoseconds, the clock of `bpf_ktime_get_ns`.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write into.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
