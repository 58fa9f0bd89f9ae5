//! Expired flows collected in bounded steps, room made in a full table,
//! and the backend addresses of flows just ended kept until their resets
//! have reached the clients.

use std::{collections::BTreeMap, net::IpAddr, time::Instant};

use tracing::{info, warn};

use super::Agent;
use hairpin_common::Counter;

use crate::{
    conntrack::flows, conntrack::pressure, conntrack::sweep, links,
    listener::metrics::InterfaceLabel, reconcile,
};

/// Entries looked at per sweep, to bound the work of one tick.
const GC_BUDGET: usize = 65_536;

#[derive(Default)]
pub struct Collector {
    /// Backend addresses kept for the reverse entries of flows just ended.
    lingering: Vec<(Instant, flows::Lingering)>,
    sweep_v4: sweep::Sweeper<u32>,
    sweep_v6: sweep::Sweeper<[u32; 4]>,
    /// `ct_insert_failed` at the last tick: when it moves, the table is
    /// full.
    insert_failed: u64,
}

impl Collector {
    pub fn linger(&mut self, until: Instant, addrs: flows::Lingering) {
        self.lingering.push((until, addrs));
    }

    /// Lets go of lingering addresses whose time is up; says whether any did.
    fn expire(&mut self) -> bool {
        let before = self.lingering.len();
        let now = Instant::now();
        self.lingering.retain(|(until, _)| *until > now);
        self.lingering.len() != before
    }

    fn lingering(&self) -> flows::Lingering {
        let mut all = flows::Lingering::default();
        for (_, l) in &self.lingering {
            all.v4.extend(&l.v4);
            all.v6.extend(&l.v6);
        }
        all
    }
}

impl Agent {
    pub(super) fn sync_lingering(&mut self) {
        let lingering = self.datapath.collector.lingering();
        if let Err(e) = reconcile::sync_backend_addrs(
            &mut self.datapath.maps,
            &self.datapath.applied,
            &lingering,
        ) {
            warn!("backend addresses: {e:#}");
        }
    }

    pub(super) async fn collect(&mut self) {
        if self.datapath.collector.expire() {
            self.sync_lingering();
        }
        self.published.metrics.gc_sweeps.inc();
        let (now, t) = (
            crate::datapath::clock::monotonic_ns(),
            &self.datapath.opts.timeouts,
        );
        let c = &mut self.datapath.collector;
        let swept = c
            .sweep_v4
            .step(&mut self.datapath.maps.v4.conntrack, t, now, GC_BUDGET)
            .and_then(|a| {
                Ok(a + c
                    .sweep_v6
                    .step(&mut self.datapath.maps.v6.conntrack, t, now, GC_BUDGET)?)
            });
        match swept {
            Ok(s) if s.removed > 0 => {
                self.published.monitor.publish(&s.expired);
                self.published.metrics.gc_removed.inc_by(s.removed as u64);
                info!(entries = s.entries, removed = s.removed, "conntrack sweep");
                self.count_unreplied(&s.unreplied_pods).await;
            }
            Ok(_) => {}
            Err(e) => warn!("conntrack sweep: {e:#}"),
        }
        self.relieve(now);
    }

    /// Counts unreplied pod flows by the interface of the route to their
    /// client, the pod.
    async fn count_unreplied(&mut self, clients: &[IpAddr]) {
        let mut by_oif: BTreeMap<u32, u64> = BTreeMap::new();
        for &client in clients {
            match links::route_oif(&self.datapath.handle, client).await {
                Ok(Some(oif)) => *by_oif.entry(oif).or_default() += 1,
                Ok(None) => {}
                Err(e) => return warn!("the route to a pod client: {e:#}"),
            }
        }
        for (oif, n) in by_oif {
            let interface = self
                .datapath
                .known
                .values()
                .find(|l| l.index == oif)
                .map_or_else(|| format!("#{oif}"), |l| l.name.clone());
            self.published
                .metrics
                .pod_flows_unreplied
                .get_or_create(&InterfaceLabel { interface })
                .inc_by(n);
        }
    }

    /// Makes room when conntrack refused new flows since the last tick.
    fn relieve(&mut self, now: u64) {
        let failed = match self
            .datapath
            .maps
            .global_stats
            .get(&(Counter::CtInsertFailed as u32), 0)
        {
            Ok(per_cpu) => per_cpu.iter().sum::<u64>(),
            Err(e) => return warn!("reading the datapath's counters: {e}"),
        };
        if failed == self.datapath.collector.insert_failed {
            return;
        }
        self.datapath.collector.insert_failed = failed;
        let relieved =
            pressure::relieve(&mut self.datapath.maps.v4.conntrack, now).and_then(|mut a| {
                a.extend(pressure::relieve(
                    &mut self.datapath.maps.v6.conntrack,
                    now,
                )?);
                Ok(a)
            });
        match relieved {
            Ok(ended) => {
                self.published
                    .metrics
                    .ct_relieved
                    .inc_by(ended.len() as u64);
                warn!(
                    flows = ended.len(),
                    "conntrack full: ended the flows that were not established"
                );
                self.published.monitor.publish(&ended);
            }
            Err(e) => warn!("conntrack relief: {e:#}"),
        }
    }
}
