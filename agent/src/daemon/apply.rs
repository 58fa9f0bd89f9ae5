//! The one way frontends reach the maps. Whatever changed (the agent
//! started, the file, a name's addresses, the cluster's objects), the
//! desired frontends are merged here in one order (the file's, then its
//! names' at the addresses they have, then the cluster's that these leave
//! free, each taking the room the tables have left) and applied as a diff.

use std::{fmt, time::Instant};

use anyhow::Result;
use tracing::{info, warn};

use super::{Agent, TICK};
use crate::{
    config::{Config, Frontend},
    reconcile,
    sources::dns::Bounds,
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
    /// The frontends of `config` at their written addresses and at the
    /// addresses their names have.
    pub(super) fn base(&self, config: &Config) -> Vec<Frontend> {
        let (named, _) = self
            .sources
            .names
            .frontends(&config.named, &self.name_bounds(config));
        config.frontends.iter().cloned().chain(named).collect()
    }

    /// What `config`'s names must leave alone.
    pub(super) fn name_bounds<'a>(&'a self, config: &'a Config) -> Bounds<'a> {
        Bounds {
            written: &config.frontends,
            node: &self.sources.node,
            room: self.room().after(&config.frontends),
            applied: &self.datapath.applied,
        }
    }

    /// Every frontend the maps should hold: the file's, its names' and the
    /// cluster's that these leave free (refreshed against them first).
    fn desired(&mut self, config: &Config) -> Vec<Frontend> {
        let mut all = self.base(config);
        self.refresh_cluster(config, &all);
        all.extend_from_slice(self.cluster_frontends());
        all
    }

    /// Applies what `config` and the sources ask for. All or nothing: on a
    /// failure what the maps held is put back, but at start, when what
    /// they hold is an earlier agent's and stays as it is. A change that
    /// leaves the desired frontends as they are touches no map.
    pub(super) fn apply(&mut self, config: &Config, cause: Cause) -> Result<reconcile::Applied> {
        let desired = self.desired(config);
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
