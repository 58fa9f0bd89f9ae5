//! What the agent tells the platform about itself: alive (`/healthz`: its
//! loop turns), ready (`/readyz`: the datapath loaded and on the uplink),
//! what it cannot serve on this node (degraded items) and the names it
//! follows, shared between the agent's loop and the listener's thread.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};

use crate::{
    config::Frontend,
    sources::{
        dns::NameView,
        kubernetes::{claims::Report, socket_choice::PodPath},
    },
};

/// How long the loop may go without a turn before the agent counts as hung:
/// well above its tick and the netlink calls a turn may wait on.
const HUNG_AFTER: Duration = Duration::from_secs(30);

/// One thing this node cannot serve now, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Degraded {
    /// `uplink`, `route`, `interface` or `socket-path`.
    pub kind: String,
    /// What is not served: an interface's name, a frontend's address.
    pub item: String,
    pub reason: String,
    /// Seconds since the epoch when it first failed.
    pub since: u64,
    /// Attempts since then, the first included.
    pub attempts: u32,
}

#[derive(Debug)]
struct State {
    beat: Instant,
    ready: bool,
    /// By (kind, item).
    degraded: BTreeMap<(String, String), Degraded>,
    failures: BTreeMap<String, u64>,
    names: Vec<NameView>,
    cluster: ClusterView,
    frontends: Vec<Frontend>,
    sockets: SocketView,
}

/// Who takes the socket path beside the node's own processes, as `hairpin
/// status` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketView {
    /// The cgroups chosen, and by what.
    pub cgroups: Vec<ChosenCgroup>,
    /// In Kubernetes mode, each pod of the node: its path, and why.
    pub pods: Vec<PodPath>,
}

/// A cgroup whose processes take the socket path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChosenCgroup {
    /// Its path under the socket path's cgroup.
    pub path: String,
    /// A pattern of `socket.cgroups`, or a pod.
    pub by: String,
    /// Why the datapath does not see it, if it does not (too deep).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unseen: Option<String>,
}

/// Kubernetes mode as `hairpin status` and `list` show it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterView {
    pub enabled: bool,
    /// Whether the last request to the API server succeeded.
    pub connected: bool,
    /// Every kind has been listed since the agent started: until then it
    /// serves the redirects it last knew.
    pub synced: bool,
    /// Seconds since the epoch of the last word from the API server.
    pub last_sync: Option<u64>,
    pub error: Option<String>,
    /// What became of each object on this node.
    pub reports: Vec<Report>,
}

/// The shared view; cheap to clone.
#[derive(Clone, Debug)]
pub struct Health(Arc<Mutex<State>>);

impl Default for Health {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(State {
            beat: Instant::now(),
            ready: false,
            degraded: BTreeMap::new(),
            failures: BTreeMap::new(),
            names: Vec::new(),
            cluster: ClusterView::default(),
            frontends: Vec::new(),
            sockets: SocketView::default(),
        })))
    }
}

/// What changed with a report: the log says each change once.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// Newly degraded, or degraded for another reason.
    Failed,
    /// Still degraded for the same reason.
    Same,
    /// Served again.
    Cured,
    /// Was not degraded, still is not.
    None,
}

impl Health {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere must not take the probes down with it.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The loop has turned.
    pub fn beat(&self) {
        self.lock().beat = Instant::now();
    }

    pub fn set_ready(&self, ready: bool) {
        self.lock().ready = ready;
    }

    pub fn fail(&self, kind: &str, item: &str, reason: &str) -> Change {
        let mut s = self.lock();
        let key = (kind.to_owned(), item.to_owned());
        if let Some(d) = s.degraded.get_mut(&key) {
            d.attempts += 1;
            if d.reason == reason {
                return Change::Same;
            }
            d.reason = reason.to_owned();
        } else {
            let since = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            s.degraded.insert(
                key,
                Degraded {
                    kind: kind.to_owned(),
                    item: item.to_owned(),
                    reason: reason.to_owned(),
                    since,
                    attempts: 1,
                },
            );
        }
        *s.failures.entry(kind.to_owned()).or_default() += 1;
        Change::Failed
    }

    pub fn cure(&self, kind: &str, item: &str) -> Change {
        match self
            .lock()
            .degraded
            .remove(&(kind.to_owned(), item.to_owned()))
        {
            Some(_) => Change::Cured,
            None => Change::None,
        }
    }

    pub fn degraded(&self) -> Vec<Degraded> {
        self.lock().degraded.values().cloned().collect()
    }

    /// Failures by kind since start (each change of reason counts once).
    pub fn failures(&self) -> BTreeMap<String, u64> {
        self.lock().failures.clone()
    }

    /// The frontends' names as last resolved, for `/names`.
    pub fn set_name_views(&self, names: Vec<NameView>) {
        self.lock().names = names;
    }

    pub fn names(&self) -> Vec<NameView> {
        self.lock().names.clone()
    }

    /// The frontends as applied, for `/frontends`: their names say where
    /// each comes from.
    pub fn set_frontends(&self, frontends: Vec<Frontend>) {
        self.lock().frontends = frontends;
    }

    pub fn frontends(&self) -> Vec<Frontend> {
        self.lock().frontends.clone()
    }

    pub fn set_cluster(&self, view: ClusterView) {
        self.lock().cluster = view;
    }

    pub fn cluster(&self) -> ClusterView {
        self.lock().cluster.clone()
    }

    pub fn set_sockets(&self, view: SocketView) {
        self.lock().sockets = view;
    }

    pub fn sockets(&self) -> SocketView {
        self.lock().sockets.clone()
    }

    /// `/healthz`: the status code and body.
    pub fn healthz(&self) -> (u16, String) {
        let idle = self.lock().beat.elapsed();
        if idle < HUNG_AFTER {
            (200, "ok\n".into())
        } else {
            (
                503,
                format!("the agent's loop has not turned for {idle:?}\n"),
            )
        }
    }

    /// `/readyz`: ready once the datapath is loaded and on the uplink; a
    /// degraded node is ready (it serves what it can) and lists the rest.
    pub fn readyz(&self) -> (u16, String) {
        let s = self.lock();
        let mut body = String::from(if s.ready { "ready\n" } else { "not ready\n" });
        for d in s.degraded.values() {
            body.push_str(&format!("degraded: {} {}: {}\n", d.kind, d.item, d.reason));
        }
        (if s.ready { 200 } else { 503 }, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_reported_once_per_reason_and_cured_once() {
        let h = Health::default();
        assert_eq!(h.fail("interface", "veth1", "busy"), Change::Failed);
        assert_eq!(h.fail("interface", "veth1", "busy"), Change::Same);
        assert_eq!(h.fail("interface", "veth1", "gone"), Change::Failed);
        assert_eq!(h.degraded()[0].attempts, 3, "every attempt is counted");
        assert_eq!(h.failures()["interface"], 2, "each reason counts once");
        assert_eq!(h.cure("interface", "veth1"), Change::Cured);
        assert_eq!(h.cure("interface", "veth1"), Change::None);
        assert!(h.degraded().is_empty());
    }

    #[test]
    fn a_degraded_node_is_ready_and_says_what_it_cannot_serve() {
        let h = Health::default();
        assert_eq!(h.readyz().0, 503, "not ready before the uplink");
        h.set_ready(true);
        h.fail("route", "2001:db8::10", "Network is unreachable");
        let (code, body) = h.readyz();
        assert_eq!(code, 200);
        assert_eq!(
            body,
            "ready\ndegraded: route 2001:db8::10: Network is unreachable\n"
        );
        assert_eq!(h.healthz().0, 200);
    }
}
