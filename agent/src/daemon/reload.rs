//! Reloads: the file is followed by its identity, a changed one validated
//! for this node and applied as a diff; a refused one leaves the last good
//! configuration in place.

use std::{
    net::IpAddr,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::Result;
use tracing::{info, warn};

use super::{apply::Cause, Agent};
use crate::{config::Config, links, reconcile};

/// Identity of the file behind the config path: a ConfigMap update swaps a
/// symlink, which changes the inode even when the time does not.
type Stamp = Option<(u64, i64, u64)>;

fn stamp(path: &Path) -> Stamp {
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.ino(), m.mtime_nsec() + m.mtime() * 1_000_000_000, m.len()))
}

/// The configuration file, as last read.
pub struct ConfigFile {
    path: PathBuf,
    stamp: Stamp,
    /// The command line's kubeconfig, which the file's gives way to.
    kubeconfig: Option<PathBuf>,
}

impl ConfigFile {
    /// Reads and validates the file for this node, whose addresses come
    /// with it.
    pub async fn open(
        path: &Path,
        kubeconfig: Option<PathBuf>,
        handle: &rtnetlink::Handle,
    ) -> Result<(Self, Config, Vec<IpAddr>)> {
        let mut file = Self {
            path: path.to_owned(),
            stamp: None,
            kubeconfig,
        };
        let (config, node) = file.read(handle).await?;
        Ok((file, config, node))
    }

    pub fn changed(&self) -> bool {
        stamp(&self.path) != self.stamp
    }

    async fn read(&mut self, handle: &rtnetlink::Handle) -> Result<(Config, Vec<IpAddr>)> {
        self.stamp = stamp(&self.path);
        let node = links::addresses(handle).await?;
        let mut config = Config::load_on_node(&self.path, &node)?;
        if let (Some(k), Some(path)) = (config.kubernetes.as_mut(), &self.kubeconfig) {
            k.kubeconfig = Some(path.clone());
        }
        Ok((config, node))
    }
}

impl Agent {
    /// Applies a changed configuration; a bad one is reported and counted,
    /// and the last good one keeps running.
    pub(super) async fn reload(&mut self, why: &str) {
        match self.try_reload().await {
            Ok(applied) => {
                self.published.metrics.reload(true);
                info!(why, ?applied, "configuration reloaded");
            }
            Err(e) => {
                self.published.metrics.reload(false);
                warn!(
                    why,
                    "reload refused, keeping the last good configuration: {e:#}"
                );
            }
        }
    }

    async fn try_reload(&mut self) -> Result<reconcile::Applied> {
        let (config, node) = self.sources.file.read(&self.datapath.handle).await?;
        self.sources.node = node;
        let now = Instant::now();
        self.sources.names.track(&config, now);
        let replaced = self.configure_cluster(config.kubernetes.clone()).await;
        let applied = match self.apply(&config, Cause::Reload) {
            Ok(applied) => applied,
            Err(e) => {
                // The maps are as they were: so are the names and the
                // cluster, as they followed the last good configuration.
                self.sources.names.track(&self.sources.config, now);
                if let Some(previous) = replaced {
                    self.restore_cluster(previous);
                }
                let last = self.sources.config.clone();
                self.desired(&last);
                return Err(e);
            }
        };
        if config.ct_entries != self.sources.config.ct_entries
            || config.timeouts != self.sources.config.timeouts
        {
            warn!("conntrack size and timeouts take effect at the next start");
        }
        let socket_changed = config.socket != self.sources.config.socket;
        self.sources.config = config;
        if socket_changed {
            self.set_socket_path();
        }
        self.follow_all();
        self.set_uplink().await;
        self.resolve_due();
        self.report_names();
        Ok(applied)
    }
}
