//! What the agent could not serve on this node: each item is reported once
//! (log, metrics, `/readyz`, `hairpin list`), retried with backoff, and at
//! once on the netlink event that may cure it.

use std::{
    collections::BTreeMap,
    fmt,
    net::IpAddr,
    time::{Duration, Instant},
};

use tracing::{debug, info, warn};

use crate::listener::published::{Change, Health};

/// The first retry comes this soon; each failure doubles the wait.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(60);

/// A unit of work that may fail on its own.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Item {
    /// No uplink: host replies and host clients through TC are not served.
    Uplink,
    /// No route from the node to a frontend's address.
    Route(IpAddr),
    /// A pod interface the programs could not be attached to.
    Interface(String),
    /// The socket-level path's cgroup attachment.
    SocketPath,
    /// A frontend's name: never resolved yet, or resolved to an address
    /// that cannot be a frontend. Its own schedule retries it.
    Name(String),
    /// The API server, in Kubernetes mode: the last known state is served.
    Kubernetes,
    /// A listener (`metrics.address`, or the control socket) that could
    /// not be bound: the datapath serves without it.
    Listener(&'static str),
}

impl Item {
    fn kind(&self) -> &'static str {
        match self {
            Item::Uplink => "uplink",
            Item::Route(_) => "route",
            Item::Interface(_) => "interface",
            Item::SocketPath => "socket-path",
            Item::Name(_) => "name",
            Item::Kubernetes => "kubernetes",
            Item::Listener(_) => "listener",
        }
    }

    fn name(&self) -> String {
        match self {
            Item::Uplink => "uplink".into(),
            Item::Route(a) => a.to_string(),
            Item::Interface(n) | Item::Name(n) => n.clone(),
            Item::SocketPath => "cgroup".into(),
            Item::Kubernetes => "api-server".into(),
            Item::Listener(which) => (*which).into(),
        }
    }
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind(), self.name())
    }
}

pub struct Retries {
    health: Health,
    /// When each failed item is tried next, and the wait after that.
    next: BTreeMap<Item, (Instant, Duration)>,
}

impl Retries {
    pub fn new(health: Health) -> Self {
        Self {
            health,
            next: BTreeMap::new(),
        }
    }

    pub fn failed(&mut self, item: Item, err: &anyhow::Error) {
        let reason = format!("{err:#}");
        match self.health.fail(item.kind(), &item.name(), &reason) {
            Change::Failed => warn!(%item, "not served, retrying: {reason}"),
            _ => debug!(%item, "still not served: {reason}"),
        }
        if matches!(item, Item::Name(_)) {
            return;
        }
        let wait = self.next.get(&item).map_or(FIRST_RETRY, |(_, w)| *w);
        self.next
            .insert(item, (Instant::now() + wait, (wait * 2).min(MAX_RETRY)));
    }

    pub fn served(&mut self, item: &Item) {
        self.next.remove(item);
        if self.health.cure(item.kind(), &item.name()) == Change::Cured {
            info!(%item, "served again");
        }
    }

    /// Forgets an item that no longer needs serving (an interface gone).
    pub fn forget(&mut self, item: &Item) {
        self.next.remove(item);
        self.health.cure(item.kind(), &item.name());
    }

    /// The failed items whose retry is due.
    pub fn due(&self, now: Instant) -> Vec<Item> {
        self.next
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(i, _)| i.clone())
            .collect()
    }

    /// The failed items a change of routes or addresses may cure.
    pub fn routing(&self) -> Vec<Item> {
        self.next
            .keys()
            .filter(|i| matches!(i, Item::Uplink | Item::Route(_)))
            .cloned()
            .collect()
    }

    /// Routes that are degraded but no longer asked for.
    pub fn routes(&self) -> Vec<IpAddr> {
        self.next
            .keys()
            .filter_map(|i| match i {
                Item::Route(a) => Some(*a),
                _ => None,
            })
            .collect()
    }
}
