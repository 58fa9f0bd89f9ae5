//! The socket-level path: attached to its cgroup, or detached when the
//! configuration turns it off; and who takes it beside the node's own
//! processes (the cgroups the file names, the pods the cluster leaves on
//! it), given to the datapath before its programs attach and followed as
//! pods come and go.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::Result;
use hairpin_common::SockScope;
use tracing::{info, warn};

use super::{degraded::Item, Agent};
use crate::{
    config::SocketScope,
    datapath::{
        pod_side::PodSide,
        sockets::{self, cgroups, diag, ends},
    },
    links::Peer,
    listener::published::{ChosenCgroup, SocketView},
    sources::kubernetes::socket_choice::{self, PodPath},
};

/// How often the cgroup tree is read again for cgroups not found yet (a
/// pod's may come after its object) and for the file's patterns.
const RESCAN: Duration = Duration::from_secs(5);

impl Agent {
    /// Sets the socket-level path up as configured; a failure (a cgroup not
    /// mounted yet) is reported and retried, and leaves the TC path serving.
    pub(super) fn set_socket_path(&mut self) {
        match self.try_socket_path() {
            Ok(()) => self.published.retries.served(&Item::SocketPath),
            Err(e) => self.published.retries.failed(Item::SocketPath, &e),
        }
    }

    /// Attaches the socket-level path (or detaches it) and tells the
    /// datapath its scope.
    fn try_socket_path(&mut self) -> Result<()> {
        let lb = &self.sources.config.socket;
        let pin_dir = &self.settings.pin_dir;
        if !lb.enabled {
            self.datapath
                .maps
                .update_node(|n| n.sock_scope = SockScope::Off as u8)?;
            for pin in sockets::detach(pin_dir)? {
                info!(pin = %pin.display(), "socket-level path off: detached");
            }
            return Ok(());
        }
        let cookie = sockets::host_cookie(&mut self.datapath.dp)?;
        let scope = match lb.scope {
            SocketScope::Host => SockScope::Host,
            SocketScope::All => SockScope::All,
        };
        self.datapath.maps.update_node(|n| {
            n.sock_scope = scope as u8;
            n.host_netns_cookie = cookie;
        })?;
        let cgroup = self.socket_cgroup()?;
        // Those chosen are in the map before the programs that read it run.
        self.choose_cgroups();
        let lb = &self.sources.config.socket;
        sockets::attach(&mut self.datapath.dp, &cgroup, &self.settings.pin_dir)?;
        info!(cgroup = %cgroup.display(), scope = ?lb.scope, "socket-level path attached");
        Ok(())
    }

    fn socket_cgroup(&self) -> Result<PathBuf> {
        match &self.sources.config.socket.cgroup {
            Some(c) => Ok(c.clone()),
            None => sockets::cgroup2_root(),
        }
    }

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
        let view = match self.chosen() {
            Ok(view) => view,
            Err(e) => {
                warn!("choosing the socket path's cgroups: {e:#}");
                return;
            }
        };
        let ids: BTreeSet<u64> = view.1.iter().copied().collect();
        if let Err(e) = cgroups::sync(&mut self.datapath.dp, &ids) {
            warn!("giving the datapath the socket path's cgroups: {e:#}");
            return;
        }
        if view.0 != self.published.health.sockets() {
            info!(
                cgroups = view.0.cgroups.len(),
                pods = view.0.pods.iter().filter(|p| p.socket).count(),
                "the socket path's cgroups"
            );
        }
        self.published.health.set_sockets(view.0);
    }

    /// What takes the socket path, and the ids of the cgroups chosen.
    fn chosen(&self) -> Result<(SocketView, Vec<u64>)> {
        let lb = &self.sources.config.socket;
        if !lb.enabled || lb.scope == SocketScope::All {
            return Ok((SocketView::default(), Vec::new()));
        }
        let under = self.socket_cgroup()?;
        let level = cgroups::level(&sockets::cgroup2_root()?, &under);
        let mut view = SocketView::default();
        let mut ids = Vec::new();
        let mut take = |found: &cgroups::Found, by: String, view: &mut SocketView| {
            match found.unseen() {
                Some(why) => warn!(by, "{why}"),
                None => ids.push(found.id),
            }
            view.cgroups.push(ChosenCgroup {
                path: found.path.display().to_string(),
                by,
            });
        };
        for found in cgroups::matching(&under, level, &lb.cgroups) {
            take(&found, "socket.cgroups".into(), &mut view);
        }
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
            match found.get(&p.uid) {
                Some(f) => take(f, format!("pod {}", p.pod), &mut view),
                None => {
                    p.socket = false;
                    p.why = format!(
                        "{}; but {NOT_FOUND} under {}: the TC path serves it meanwhile",
                        p.why,
                        under.display()
                    );
                }
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

impl Agent {
    /// Ends the sockets the socket path sent to a backend their frontend
    /// no longer has, in the node's namespace and in each pod's, so that
    /// their clients reconnect to a live backend at once.
    pub(super) fn end_stale_sockets(&mut self) {
        if !self.sources.config.socket.enabled {
            return;
        }
        let stale = match ends::stale(&self.datapath.dp, &self.datapath.applied) {
            Ok(s) if s.is_empty() => return,
            Ok(s) => s,
            Err(e) => {
                warn!("finding the sockets of backends gone: {e:#}");
                return;
            }
        };
        let mut ended = 0;
        let mut failed = Vec::new();
        match diag::end(&stale.backends, &stale.cookies) {
            Ok(n) => ended += n,
            Err(e) => failed.push(format!("the node's: {e:#}")),
        }
        let pods: Vec<(String, Peer)> = self
            .datapath
            .known
            .values()
            .filter(|l| self.is_pod(&l.name))
            .filter_map(|l| Some((l.name.clone(), l.peer?)))
            .collect();
        for (name, peer) in pods {
            let in_pod = PodSide::find(&peer)
                .and_then(|side| side.within(|_| diag::end(&stale.backends, &stale.cookies)));
            match in_pod {
                Ok(n) => ended += n,
                Err(e) => failed.push(format!("{name}'s pod: {e:#}")),
            }
        }
        info!(
            ended,
            backends = ?stale.backends,
            "sockets to backends gone ended"
        );
        if !failed.is_empty() {
            warn!("ending sockets to backends gone: {}", failed.join("; "));
        }
    }
}

/// Said of a chosen pod whose cgroup is not in the tree (yet).
const NOT_FOUND: &str = "no cgroup named for it";
