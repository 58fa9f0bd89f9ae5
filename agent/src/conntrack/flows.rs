//! Flows in conntrack as the agent acts on them: ending those of removed
//! frontends and backends (or a flush), and finding those to an address;
//! the monitor event of a flow the agent ends.

use std::collections::BTreeSet;

use anyhow::{Context as _, Result};
use hairpin_common::{
    CtDir, CtEntry, CtKey, EndReason, Event, EventKind, WireAddr, EVENT_HOOK_AGENT, IPPROTO_TCP,
    SEEN_ENDED, SEEN_FIN, SEEN_RST,
};

use crate::{
    datapath::addr::Addr,
    datapath::loader::{Conntrack, Maps},
};

/// Backends (address, port as on the wire) kept for ended flows, per
/// family: their reverse entries must still be found until the resets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lingering {
    pub v4: BTreeSet<(u32, u16)>,
    pub v6: BTreeSet<([u32; 4], u16)>,
}

/// A flow as `end_flows` shows it to its predicate.
pub struct FlowView<A> {
    pub frontend_id: u32,
    /// The backend's side of the flow: its address and port as source.
    pub backend: CtKey<A>,
}

/// Flows ended: how many, and the events of those that were still open
/// (one per flow, for the monitors: a closing one was told of at its FIN
/// or RST). The log shows the count.
#[derive(Default, PartialEq, Eq)]
pub struct Ended {
    pub flows: usize,
    pub events: Vec<Event>,
}

impl std::fmt::Debug for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.flows)
    }
}

impl Ended {
    pub fn add(&mut self, other: Ended) {
        self.flows += other.flows;
        self.events.extend(other.events);
    }
}

/// Ends every flow for which `ended` holds. A TCP flow's
/// entries stay for the close timeout, marked ended: the datapath turns the
/// next segment of either end into a reset for the other. A UDP flow's
/// entries go: its next datagram opens a new flow.
pub fn end_flows<A: Addr>(
    ct: &mut Conntrack<A>,
    reason: EndReason,
    mut ended: impl FnMut(&FlowView<A>) -> bool,
) -> Result<Ended> {
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
    let now = crate::datapath::clock::monotonic_ns();
    let seen: std::collections::HashMap<CtKey<A>, u8> =
        doomed.iter().map(|(k, e)| (*k, e.seen)).collect();
    let mut out = Ended::default();
    for (k, mut e) in doomed {
        if e.dir == CtDir::Forward as u8 {
            out.flows += 1;
        }
        let both = e.seen | seen.get(&e.nat.reversed()).copied().unwrap_or(0);
        if both & (SEEN_FIN | SEEN_RST | SEEN_ENDED) == 0 {
            out.events.extend(ended_event(&k, &e, reason));
        }
        // Ignored errors: the LRU may have evicted the entry meanwhile.
        if k.proto == IPPROTO_TCP {
            e.seen |= SEEN_ENDED | SEEN_RST;
            e.last_seen_ns = now;
            let _ = ct.insert(k, e, 0);
        } else {
            let _ = ct.remove(&k);
        }
    }
    Ok(out)
}

/// Whether any flow was opened to `addr` (a frontend's address) and is
/// still in conntrack.
pub fn has_flows_to(maps: &Maps, addr: std::net::IpAddr) -> Result<bool> {
    fn family<A: Addr>(ct: &Conntrack<A>, addr: A) -> Result<bool> {
        for r in ct.iter() {
            let (k, e) = r.context("reading conntrack")?;
            if e.dir == CtDir::Forward as u8 && k.daddr == addr {
                return Ok(true);
            }
        }
        Ok(false)
    }
    match (u32::from_ip(addr), <[u32; 4]>::from_ip(addr)) {
        (Some(a), _) => family(&maps.v4.conntrack, a),
        (_, Some(a)) => family(&maps.v6.conntrack, a),
        _ => Ok(false),
    }
}

/// The event of a flow the agent ends, from its forward entry.
pub fn ended_event<A: WireAddr>(k: &CtKey<A>, e: &CtEntry<A>, reason: EndReason) -> Option<Event> {
    (e.dir == CtDir::Forward as u8).then(|| Event {
        ts_ns: crate::datapath::clock::monotonic_ns(),
        client: k.saddr.wide(),
        frontend: k.daddr.wide(),
        backend: e.nat.daddr.wide(),
        frontend_id: e.frontend_id,
        client_port: k.sport,
        frontend_port: k.dport,
        backend_port: e.nat.dport,
        kind: EventKind::Ended as u8,
        hook: EVENT_HOOK_AGENT,
        detail: reason as u8,
        proto: k.proto,
        family: A::FAMILY,
        ..Event::default()
    })
}

/// Ends the flows of frontend `id` (every flow without one) in the maps
/// pinned under `pin_dir`: `hairpin ct flush`, and the agent's
/// `POST /flush`, which tells the monitors.
pub fn flush(pin_dir: &std::path::Path, id: Option<u32>) -> Result<Ended> {
    let mut pinned = crate::datapath::pinned::Pinned::open(pin_dir)?;
    let ours = |f: &FlowView<_>| id.is_none_or(|id| f.frontend_id == id);
    let mut ended = end_flows(&mut pinned.v4.conntrack, EndReason::Flushed, ours)?;
    let ours = |f: &FlowView<_>| id.is_none_or(|id| f.frontend_id == id);
    ended.add(end_flows(
        &mut pinned.v6.conntrack,
        EndReason::Flushed,
        ours,
    )?);
    Ok(ended)
}
