//! Prometheus metrics, served on the listener's `/metrics`: the datapath's
//! counters, read from the pinned maps at each scrape so that they stay
//! right across agent restarts, and the agent's own (reloads, attach
//! errors, conntrack GC, degraded items).

use std::{
    collections::BTreeMap,
    path::Path,
    sync::{Arc, Mutex},
};

use anyhow::Result;
use prometheus_client::{
    encoding::{text::encode, EncodeLabelSet},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use crate::{
    datapath::pinned::{self, Pinned},
    listener::published::{ClusterView, Health},
    monitor::Hub,
    sources::kubernetes::claims::State,
};

/// The agent's own counters, shared with the scrape thread.
#[derive(Clone, Debug, Default)]
pub struct AgentMetrics {
    pub reloads: Family<ResultLabel, Counter>,
    pub attach_errors: Counter,
    pub gc_removed: Counter,
    pub gc_sweeps: Counter,
    pub ct_relieved: Counter,
    /// Pod flows that expired without a reply translated, by the pod's
    /// interface.
    pub pod_flows_unreplied: Family<InterfaceLabel, Counter>,
    /// Resolutions of frontends' names, by name and result.
    pub resolutions: Family<NameLabel, Counter>,
    /// Frontend id → name, as last applied.
    pub names: Arc<Mutex<BTreeMap<u32, String>>>,
    /// The pinned maps this agent did not adopt as they were, by outcome.
    pub maps_at_start: Family<MapLabel, Gauge>,
    /// The flows of the conntrack tables replaced at start.
    pub flows_lost_at_start: Family<MapName, Gauge>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MapName {
    pub map: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MapLabel {
    pub map: &'static str,
    /// `migrated` or `replaced`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InterfaceLabel {
    pub interface: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FrontendLabel {
    frontend: String,
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NameLabel {
    pub name: String,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CounterLabel {
    counter: &'static str,
}

impl AgentMetrics {
    /// Records the names of the frontends the maps hold, by id.
    pub fn set_names(&self, names: BTreeMap<u32, String>) {
        *self.names.lock().expect("names lock") = names;
    }

    pub fn reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.reloads.get_or_create(&ResultLabel { result }).inc();
    }
}

/// The metrics' text, read at each scrape.
pub fn render(pin_dir: &Path, agent: &AgentMetrics, health: &Health, hub: &Hub) -> Result<String> {
    let pinned = Pinned::open(pin_dir)?;
    let mut reg = Registry::with_prefix("hairpin");
    let packets = Family::<FrontendLabel, Counter>::default();
    let bytes = Family::<FrontendLabel, Counter>::default();
    let flows = Family::<FrontendLabel, Counter>::default();
    let connects = Family::<FrontendLabel, Counter>::default();
    let datagrams = Family::<FrontendLabel, Counter>::default();
    let names = agent.names.lock().expect("names lock").clone();
    for fe in pinned::frontends(&pinned)? {
        let label = FrontendLabel {
            frontend: fe.frontend.clone(),
            name: names.get(&fe.id).cloned().unwrap_or_default(),
        };
        packets.get_or_create(&label).inc_by(fe.stats.packets);
        bytes.get_or_create(&label).inc_by(fe.stats.bytes);
        flows.get_or_create(&label).inc_by(fe.stats.flows);
        connects
            .get_or_create(&label)
            .inc_by(fe.stats.sock_connects);
        datagrams
            .get_or_create(&label)
            .inc_by(fe.stats.sock_datagrams);
    }
    reg.register(
        "frontend_packets",
        "Packets of a frontend's flows, both ways (TC path)",
        packets,
    );
    reg.register(
        "frontend_bytes",
        "Bytes of a frontend's flows, both ways (TC path)",
        bytes,
    );
    reg.register(
        "frontend_flows",
        "Flows opened to a frontend (TC path)",
        flows,
    );
    reg.register(
        "frontend_socket_connects",
        "Connects to a frontend translated at the socket (socket path)",
        connects,
    );
    reg.register(
        "frontend_socket_datagrams",
        "Unconnected datagrams to a frontend translated at the socket (socket path)",
        datagrams,
    );

    let datapath = Family::<CounterLabel, Counter>::default();
    for (c, v) in pinned::global_counters(&pinned)? {
        datapath
            .get_or_create(&CounterLabel { counter: c.name() })
            .inc_by(v);
    }
    reg.register(
        "datapath_events",
        "Datapath events (see docs/datapath.md)",
        datapath,
    );

    let entries = Gauge::<i64>::default();
    entries.set(pinned::conntrack_len(&pinned)? as i64);
    reg.register(
        "conntrack_entries",
        "Conntrack entries (two per flow)",
        entries,
    );
    reg.register(
        "conntrack_gc_removed",
        "Expired conntrack entries removed",
        agent.gc_removed.clone(),
    );
    reg.register(
        "pod_flows_unreplied",
        "Pod flows that expired without a reply translated, by the pod's interface: \
         replies that bypass hairpin (see hairpin doctor), or a backend that never answered",
        agent.pod_flows_unreplied.clone(),
    );
    reg.register(
        "conntrack_relieved_flows",
        "Flows not established ended to make room in a full conntrack table",
        agent.ct_relieved.clone(),
    );
    reg.register(
        "conntrack_gc_sweeps",
        "Conntrack sweeps",
        agent.gc_sweeps.clone(),
    );
    reg.register(
        "maps_at_start",
        "Pinned maps this agent found of another shape: migrated (entries kept) or replaced (docs/datapath.md, Upgrades)",
        agent.maps_at_start.clone(),
    );
    reg.register(
        "flows_lost_at_start",
        "Flows of the conntrack tables this agent found in a layout it cannot read, lost when it replaced them",
        agent.flows_lost_at_start.clone(),
    );
    reg.register(
        "config_reloads",
        "Configuration reloads",
        agent.reloads.clone(),
    );
    reg.register(
        "dns_resolutions",
        "Resolutions of frontends' names, by name and result",
        agent.resolutions.clone(),
    );
    reg.register(
        "attach_errors",
        "Interfaces hairpin failed to attach to",
        agent.attach_errors.clone(),
    );
    let degraded = Gauge::<i64>::default();
    degraded.set(health.degraded().len() as i64);
    reg.register(
        "degraded_items",
        "Items this node cannot serve now (see /readyz)",
        degraded,
    );
    let failures = Family::<KindLabel, Counter>::default();
    for (kind, n) in health.failures() {
        failures.get_or_create(&KindLabel { kind }).inc_by(n);
    }
    reg.register(
        "degraded_failures",
        "Items found not servable, by kind (each reason once)",
        failures,
    );

    register_cluster(&mut reg, &health.cluster());

    let (listening, lost) = hub.stats();
    let monitors = Gauge::<i64>::default();
    monitors.set(listening as i64);
    reg.register("monitors", "hairpin monitors listening now", monitors);
    let missed = Counter::<u64>::default();
    missed.inc_by(lost);
    reg.register(
        "monitor_events_lost",
        "Events a monitor missed because it read too slowly (the datapath's own losses are \
         hairpin_datapath_events{counter=\"events_lost\"})",
        missed,
    );

    let mut text = String::new();
    encode(&mut text, &reg)?;
    Ok(text)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

/// Kubernetes mode: whether the API server answers, since when, and what
/// became of the objects.
fn register_cluster(reg: &mut Registry, view: &ClusterView) {
    if !view.enabled {
        return;
    }
    let connected = Gauge::<i64>::default();
    connected.set(i64::from(view.connected));
    reg.register(
        "kubernetes_connected",
        "Whether the last request to the API server succeeded",
        connected,
    );
    let synced = Gauge::<i64>::default();
    synced.set(i64::from(view.synced));
    reg.register(
        "kubernetes_synced",
        "Whether every kind was listed since start (else the last known state is served)",
        synced,
    );
    let last = Gauge::<i64>::default();
    last.set(view.last_sync.map_or(0, |t| t as i64));
    reg.register(
        "kubernetes_last_sync_timestamp_seconds",
        "When the API server last said something",
        last,
    );
    let objects = Family::<StateLabel, Gauge<i64>>::default();
    for state in [State::Applied, State::Skipped, State::Refused] {
        let n = view.reports.iter().filter(|r| r.state == state).count();
        let state = match state {
            State::Applied => "applied",
            State::Skipped => "skipped",
            State::Refused => "refused",
        };
        objects.get_or_create(&StateLabel { state }).set(n as i64);
    }
    reg.register(
        "kubernetes_objects",
        "Redirects and annotated Services on this node, by outcome",
        objects,
    );
}
