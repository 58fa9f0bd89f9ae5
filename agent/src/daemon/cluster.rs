//! Kubernetes mode in the daemon: the watches run beside the loop and say
//! when a store changed; the loop then turns the stores into this node's
//! frontends and applies them, with the file's, as one diff. Until every
//! kind has been listed once, the frontends last known (the state file)
//! are served; an API server that goes away changes nothing.

use std::{
    collections::BTreeSet,
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::Result;
use kube::runtime::events::Recorder;
use tokio::sync::mpsc::UnboundedSender;
use tracing::{info, warn};

use super::{apply::Cause, degraded::Item, Agent};
use crate::{
    config::{Frontend, Kubernetes},
    desired::{self, ClusterOutcome, Objects},
    listener::published::ClusterView,
    sources::kubernetes::{
        claims::{Report, Snapshot, State},
        events, state,
        watch::{self, Message, Watches, KINDS},
    },
};

pub struct Cluster {
    settings: Kubernetes,
    node: String,
    watches: Option<Watches>,
    synced: BTreeSet<&'static str>,
    /// The frontends the state file kept, served until the stores are
    /// synced.
    saved: Vec<Frontend>,
    /// The cluster's frontends this node serves: computed from the stores
    /// once they are synced, else fitted from `saved`.
    frontends: Vec<Frontend>,
    /// Whether `frontends` changed since they were last saved.
    unsaved: bool,
    view: ClusterView,
    /// Says each object's outcome on this node as an Event of the object.
    recorder: Option<Recorder>,
}

impl Cluster {
    fn new(settings: Kubernetes, node: String) -> Self {
        let saved = state::load(&settings.state_file).unwrap_or_else(|e| {
            warn!("{e:#}; starting without the cluster's last redirects");
            Vec::new()
        });
        if !saved.is_empty() {
            info!(
                frontends = saved.len(),
                "serving the cluster's last known redirects until the watches have synced"
            );
        }
        Self {
            settings,
            node,
            watches: None,
            recorder: None,
            synced: BTreeSet::new(),
            saved,
            frontends: Vec::new(),
            unsaved: false,
            view: ClusterView {
                enabled: true,
                ..ClusterView::default()
            },
        }
    }

    fn synced(&self) -> bool {
        self.watches.is_some() && KINDS.iter().all(|k| self.synced.contains(k))
    }

    /// The cluster's side of the merge: the objects `listed` (the
    /// watches' snapshot, once every kind is listed), else the state
    /// file's frontends.
    pub(super) fn input<'a>(&'a self, listed: Option<&'a Snapshot>) -> desired::Cluster<'a> {
        desired::Cluster {
            settings: &self.settings,
            node: &self.node,
            objects: match listed {
                Some(snap) => Objects::Listed(snap),
                None => Objects::Saved(&self.saved),
            },
        }
    }

    /// The watches' objects, once every kind has been listed.
    pub(super) fn listed(&self) -> Option<Snapshot> {
        self.watches
            .as_ref()
            .filter(|_| self.synced())
            .map(Watches::snapshot)
    }

    /// Takes what the merge made of the cluster: its `frontends` on this
    /// node, and each object's outcome, said where it changed.
    pub(super) fn update(&mut self, frontends: &[Frontend], outcome: ClusterOutcome) {
        match outcome {
            ClusterOutcome::Listed(reports) => {
                for r in changed(&self.view.reports, &reports) {
                    log_report(r);
                    if let Some(rec) = &self.recorder {
                        events::publish(rec, &self.node, r);
                    }
                }
                self.view.reports = reports;
            }
            ClusterOutcome::Saved(left_out) if frontends != self.frontends => {
                for (object, why) in left_out {
                    warn!(%object, "not served from the state file: {why}");
                }
            }
            ClusterOutcome::Saved(_) => {}
        }
        if frontends != self.frontends {
            self.frontends = frontends.to_vec();
            // Only what the cluster says now is kept for the next start.
            self.unsaved |= self.synced();
        }
    }

    /// Keeps the frontends as applied, for an agent that starts while the
    /// API server is away: saved only once the maps hold them, so that a
    /// state that could not be applied is never the next start's.
    fn save(&mut self) {
        if !std::mem::take(&mut self.unsaved) {
            return;
        }
        if let Err(e) = state::save(&self.settings.state_file, &self.frontends) {
            warn!("saving the cluster state: {e:#}");
        }
    }
}

/// The reports whose outcome changed: each is said once.
fn changed<'a>(old: &'a [Report], new: &'a [Report]) -> impl Iterator<Item = &'a Report> {
    new.iter().filter(move |r| !old.contains(r))
}

fn log_report(r: &Report) {
    let note = r.note();
    match r.state {
        State::Applied if !r.message.is_empty() => {
            warn!(object = %r.source, "applied in part: {note}")
        }
        State::Applied if !note.is_empty() => warn!(object = %r.source, "applied: {note}"),
        State::Applied => info!(object = %r.source, "applied"),
        State::Skipped => info!(object = %r.source, "skipped: {note}"),
        State::Refused => warn!(object = %r.source, "refused: {note}"),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The node's name as the API server knows it: `--node-name` (`NODE_NAME`,
/// from the downward API in the DaemonSet), else the host name, as the
/// kubelet's default.
pub fn node_name(given: Option<&str>) -> String {
    given.map(str::to_owned).unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default()
    })
}

impl Agent {
    /// Follows the cluster as the configuration says: starts, restarts
    /// (other settings) or stops the watches. Returns what it replaced or
    /// stopped, `Some(previous)`, for a refused reload to put back.
    pub(super) async fn configure_cluster(
        &mut self,
        wanted: Option<Kubernetes>,
    ) -> Option<Option<Cluster>> {
        match (&self.sources.cluster, wanted) {
            (None, None) => None,
            (Some(c), Some(k)) if c.settings == k => None,
            (_, None) => {
                info!("kubernetes mode off");
                self.published.retries.forget(&Item::Kubernetes);
                self.published.health.set_cluster(ClusterView::default());
                Some(self.sources.cluster.take())
            }
            (_, Some(k)) => {
                let previous = self
                    .sources
                    .cluster
                    .replace(Cluster::new(k, self.sources.node_name.clone()));
                self.connect_cluster().await;
                Some(previous)
            }
        }
    }

    /// Puts back the cluster a refused reload replaced: its watches, its
    /// state and its settings (what the cluster may ask) are as before.
    pub(super) fn restore_cluster(&mut self, previous: Option<Cluster>) {
        match previous {
            Some(c) => {
                self.sources.cluster = Some(c);
                self.publish_cluster();
            }
            None => {
                self.sources.cluster = None;
                self.published.retries.forget(&Item::Kubernetes);
                self.published.health.set_cluster(ClusterView::default());
            }
        }
    }

    /// Makes the client and starts the watches; a failure is reported and
    /// retried.
    pub(super) async fn connect_cluster(&mut self) {
        let tx: UnboundedSender<Message> = self.sources.cluster_tx.clone();
        let Some(c) = self
            .sources
            .cluster
            .as_mut()
            .filter(|c| c.watches.is_none())
        else {
            return;
        };
        match watch::client(c.settings.kubeconfig.as_deref()).await {
            Ok(client) => {
                c.watches = Some(Watches::start(&client, &c.node, &tx));
                c.recorder = Some(events::recorder(client, &c.node));
                info!(node = %c.node, "following the cluster");
            }
            Err(e) => {
                c.view.error = Some(format!("{e:#}"));
                self.published.retries.failed(Item::Kubernetes, &e);
            }
        }
        self.publish_cluster();
    }

    /// A batch of the watches' messages: the stores changed, or a request
    /// failed (the stores keep their contents and the watch retries).
    pub(super) async fn cluster_messages(&mut self, batch: Vec<Message>) {
        let Some(c) = self.sources.cluster.as_mut() else {
            return;
        };
        let was_synced = c.synced();
        let mut changed = false;
        let mut failed = None;
        for m in batch {
            match m {
                Message::Changed { kind, synced } => {
                    if synced {
                        c.synced.insert(kind);
                    }
                    c.view.connected = true;
                    c.view.error = None;
                    c.view.last_sync = Some(unix_now());
                    changed = true;
                    failed = None;
                }
                Message::Failed { kind, error } => {
                    // Each is said: a relist after 410 Gone recovers at
                    // once, and would otherwise leave no trace.
                    warn!(kind, "watch: {error}");
                    c.view.connected = false;
                    failed = Some(format!("{kind}: {error}"));
                }
            }
        }
        if c.synced() && !was_synced {
            info!("the cluster's objects are listed; serving them");
        }
        match failed {
            Some(why) => {
                c.view.error = Some(why.clone());
                self.published.retries.failed(
                    Item::Kubernetes,
                    &anyhow::anyhow!("{why}; serving the last known state"),
                );
            }
            None => self.published.retries.served(&Item::Kubernetes),
        }
        if changed {
            self.apply_desired(Cause::Cluster).await;
            self.choose_cgroups();
        }
        self.publish_cluster();
    }

    /// Saves the cluster's frontends once an apply put them in the maps.
    pub(super) fn save_cluster(&mut self) {
        if let Some(c) = self.sources.cluster.as_mut() {
            c.save();
        }
    }

    fn publish_cluster(&self) {
        if let Some(c) = &self.sources.cluster {
            let mut view = c.view.clone();
            view.synced = c.synced();
            self.published.health.set_cluster(view);
        }
    }
}

/// Whether the configuration asks for Kubernetes mode on a node whose name
/// is known.
pub fn check_node_name(config: &crate::config::Config, node: &str) -> Result<()> {
    if config.kubernetes.is_some() && node.is_empty() {
        anyhow::bail!("kubernetes mode needs the node's name: --node-name or NODE_NAME");
    }
    Ok(())
}
