//! Who takes the socket path beside the node's own processes: the cgroups
//! the file names and the pods the cluster leaves on it, found in the
//! cgroup tree and given to the datapath before its programs attach, then
//! followed as pods come and go.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use anyhow::Result;
use tracing::{info, warn};

use super::Agent;
use crate::{
    config::SocketScope,
    datapath::sockets::{self, cgroups},
    listener::published::{ChosenCgroup, SocketView},
    sources::kubernetes::socket_choice::{self, PodPath},
};

/// How often the cgroup tree is read again for cgroups not found yet (a
/// pod's may come after its object) and for the file's patterns.
const RESCAN: Duration = Duration::from_secs(5);

/// Said of a chosen pod whose cgroup is not in the tree (yet).
const NOT_FOUND: &str = "no cgroup named for it";

impl Agent {
    /// Reads the cgroup tree again when it is due: a chosen pod's cgroup
    /// not found yet, or the file's patterns.
    pub(super) fn rescan_cgroups(&mut self) {
        let due = self
            .sources
            .cgroups_read
            .is_none_or(|t| t.elapsed() >= RESCAN);
        let view = self.published.health.sockets();
        let missing = view.pods.iter().any(|p| p.why.contains(NOT_FOUND));
        if due && (missing || !self.sources.config.socket.cgroups.is_empty()) {
            self.choose_cgroups();
        }
    }

    /// Finds the cgroups whose processes take the socket path beside the
    /// node's own, gives them to the datapath, and shows them.
    pub(super) fn choose_cgroups(&mut self) {
        self.sources.cgroups_read = Some(Instant::now());
        let (view, ids) = match self.chosen() {
            Ok(chosen) => chosen,
            Err(e) => {
                warn!("choosing the socket path's cgroups: {e:#}");
                return;
            }
        };
        if let Err(e) = cgroups::sync(&mut self.datapath.dp, &ids) {
            warn!("giving the datapath the socket path's cgroups: {e:#}");
            return;
        }
        if view != self.published.health.sockets() {
            let unseen: Vec<&str> = view
                .cgroups
                .iter()
                .filter_map(|c| c.unseen.as_deref())
                .collect();
            info!(
                cgroups = view.cgroups.len(),
                pods = view.pods.iter().filter(|p| p.socket).count(),
                "the socket path's cgroups"
            );
            if !unseen.is_empty() {
                warn!("not served by the socket path: {}", unseen.join("; "));
            }
        }
        self.published.health.set_sockets(view);
    }

    /// What takes the socket path, and the ids of the cgroups chosen that
    /// the datapath sees.
    fn chosen(&self) -> Result<(SocketView, BTreeSet<u64>)> {
        let lb = &self.sources.config.socket;
        if !lb.enabled || lb.scope == SocketScope::All {
            return Ok((SocketView::default(), BTreeSet::new()));
        }
        let under = self.socket_cgroup()?;
        let level = cgroups::level(&sockets::cgroup2_root()?, &under);
        let mut view = SocketView::default();
        let mut ids = BTreeSet::new();
        // Takes a cgroup found; says why the datapath does not see it, if
        // it does not.
        let mut take = |found: &cgroups::Found, by: String, view: &mut SocketView| {
            let unseen = found.unseen();
            if unseen.is_none() {
                ids.insert(found.id);
            }
            view.cgroups.push(ChosenCgroup {
                path: found.path.display().to_string(),
                by,
                unseen: unseen.clone(),
            });
            unseen
        };
        for found in cgroups::matching(&under, level, &lb.cgroups) {
            take(&found, "socket.cgroups".into(), &mut view);
        }
        // A pod is on the socket path once its cgroup is found where the
        // datapath sees it; until then, on the TC path, and said so.
        let mut pods = self.pod_paths();
        let uids: BTreeSet<String> = pods
            .iter()
            .filter(|(p, needs)| p.socket && *needs)
            .map(|(p, _)| p.uid.clone())
            .collect();
        let found = cgroups::of_pods(&under, level, &uids);
        for (p, needs) in &mut pods {
            if !(p.socket && *needs) {
                continue;
            }
            let lack = match found.get(&p.uid) {
                Some(f) => take(f, format!("pod {}", p.pod), &mut view),
                None => Some(format!("{NOT_FOUND} under {}", under.display())),
            };
            if let Some(lack) = lack {
                p.socket = false;
                p.why = format!("{}; but {lack}: the TC path serves it meanwhile", p.why);
            }
        }
        view.pods = pods.into_iter().map(|(p, _)| p).collect();
        Ok((view, ids))
    }

    /// The node's pods with their paths, once the cluster's objects are
    /// listed, each with whether its cgroup must be found (not a pod of
    /// the node's own network).
    fn pod_paths(&self) -> Vec<(PodPath, bool)> {
        if !self.sources.config.socket.pods {
            return Vec::new();
        }
        let Some(snap) = self.sources.cluster.as_ref().and_then(|c| c.listed()) else {
            return Vec::new();
        };
        let namespaces: BTreeMap<&str, _> = snap
            .namespaces
            .iter()
            .filter_map(|n| Some((n.metadata.name.as_deref()?, n.as_ref())))
            .collect();
        let mut pods: Vec<(PodPath, bool)> = snap
            .pods
            .iter()
            .filter(|p| {
                let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
                !matches!(phase, Some("Succeeded" | "Failed"))
            })
            .map(|p| {
                let ns = p.metadata.namespace.as_deref().unwrap_or_default();
                let own = p.spec.as_ref().and_then(|s| s.host_network) == Some(true);
                (socket_choice::choose(p, namespaces.get(ns).copied()), !own)
            })
            .collect();
        pods.sort_by(|a, b| a.0.pod.cmp(&b.0.pod));
        pods
    }
}
