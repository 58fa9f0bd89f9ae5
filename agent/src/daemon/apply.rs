//! The one way frontends reach the maps. Whatever changed (the agent
//! started, the file, a name's addresses, the cluster's objects), the
//! sources are merged (`desired::merge`) and what they ask for is applied
//! as a diff (`reconcile::apply`).

use std::{fmt, time::Instant};

use anyhow::Result;
use tracing::{info, warn};

use super::{Agent, TICK};
use crate::{
    config::{Config, Frontend},
    desired::{self, Desired, Inputs},
    reconcile,
    sources::room::Room,
};

/// Why an apply runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    Start,
    Reload,
    Name,
    Cluster,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cause::Start => "start",
            Cause::Reload => "reload",
            Cause::Name => "name",
            Cause::Cluster => "cluster",
        })
    }
}

impl Agent {
    /// The sources beside `config` (the file applied, or one being tried),
    /// with `cluster` as the merge should see it.
    pub(super) fn inputs<'a>(
        &'a self,
        config: &'a Config,
        cluster: Option<desired::Cluster<'a>>,
    ) -> Inputs<'a> {
        Inputs {
            config,
            names: &self.sources.names,
            cluster,
            node: &self.sources.node,
            room: Room::of(
                self.datapath.opts.max_frontends,
                self.datapath.opts.max_backend_slots,
            ),
            applied: &self.datapath.applied,
        }
    }

    /// Every frontend the maps should hold, merged from the sources; the
    /// cluster takes what became of its objects.
    pub(super) fn desired(&mut self, config: &Config) -> Desired {
        let listed = self.sources.cluster.as_ref().and_then(|c| c.listed());
        let cluster = self
            .sources
            .cluster
            .as_ref()
            .map(|c| c.input(listed.as_ref()));
        let mut d = desired::merge(&self.inputs(config, cluster));
        if let (Some(c), Some(outcome)) = (self.sources.cluster.as_mut(), d.cluster.take()) {
            c.update(d.cluster_frontends(), outcome);
        }
        d
    }

    /// Applies what `config` and the sources ask for. All or nothing: on a
    /// failure what the maps held is put back, but at start, when what
    /// they hold is an earlier agent's and stays as it is. A change that
    /// leaves the desired frontends as they are touches no map.
    pub(super) fn apply(&mut self, config: &Config, cause: Cause) -> Result<reconcile::Applied> {
        let desired = self.desired(config).frontends;
        if matches!(cause, Cause::Name | Cause::Cluster) && desired == self.datapath.applied {
            self.save_cluster();
            return Ok(reconcile::Applied::default());
        }
        let max = self.datapath.opts.max_frontends;
        match reconcile::apply(&mut self.datapath.maps, &desired, max) {
            Ok(applied) => {
                info!(%cause, ?applied, "applied");
                self.record_applied(desired, &applied);
                self.flows_ended(&applied);
                if applied.removed + applied.updated > 0 {
                    self.end_stale_sockets();
                }
                Ok(applied)
            }
            Err(e) if cause == Cause::Start => Err(e),
            Err(e) => {
                let last = self.datapath.applied.clone();
                if let Err(e) = reconcile::apply(&mut self.datapath.maps, &last, max) {
                    warn!("restoring what was applied: {e:#}");
                }
                Err(e)
            }
        }
    }

    /// Applies the running configuration after a name or the cluster
    /// changed.
    pub(super) async fn apply_desired(&mut self, cause: Cause) {
        let config = self.sources.config.clone();
        match self.apply(&config, cause) {
            Ok(_) => self.set_uplink().await,
            Err(e) => warn!(%cause, "applying: {e:#}; keeping what was applied"),
        }
        self.report_names();
    }

    /// Records the frontends the maps now hold, for the loop, the listener,
    /// the metrics' names and the cluster's state file.
    fn record_applied(&mut self, desired: Vec<Frontend>, applied: &reconcile::Applied) {
        self.save_cluster();
        self.published.health.set_frontends(desired.clone());
        self.published.metrics.set_names(applied.names.clone());
        self.datapath.applied = desired;
    }

    /// Tells the monitors of the flows an apply ended, and keeps their
    /// backends' addresses until their resets have reached the clients.
    fn flows_ended(&mut self, applied: &reconcile::Applied) {
        self.published.monitor.publish(&applied.ended.events);
        let until = Instant::now()
            + std::time::Duration::from_nanos(self.datapath.opts.timeouts.close)
            + TICK;
        self.datapath
            .collector
            .linger(until, applied.lingering.clone());
        self.sync_lingering();
    }
}
