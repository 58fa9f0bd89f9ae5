//! Backends from the cluster: a Service's EndpointSlices, or this node's
//! pods that match a selector. Ready endpoints serve; serving endpoints
//! that are terminating serve only when no ready one is left, as kube-proxy
//! does, so that a rollout's last old pod still answers.

use std::{collections::BTreeSet, net::IpAddr, sync::Arc};

use k8s_openapi::api::{
    core::v1::{Pod, Service, ServicePort},
    discovery::v1::{Endpoint, EndpointSlice},
};

use super::crd::{BackendPolicy, PodSelector, PortRef, Protocol};
use crate::config::Backend;

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// One candidate backend, before the policy picks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Candidate {
    addr: IpAddr,
    port: u16,
    ready: bool,
    local: bool,
}

/// Who the endpoints are for: this node, one family.
#[derive(Clone, Copy, Debug)]
pub struct Want<'a> {
    pub node: &'a str,
    pub ipv4: bool,
    pub policy: BackendPolicy,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
        }
    }

    /// Kubernetes leaves the protocol out where it is TCP.
    fn is(self, written: Option<&str>) -> bool {
        written.unwrap_or("TCP") == self.name()
    }
}

/// The Service's port that `port` names (by its name or its number).
pub fn service_port<'s>(
    svc: &'s Service,
    port: &PortRef,
    proto: Protocol,
) -> Result<&'s ServicePort, String> {
    let ports = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_deref())
        .unwrap_or_default();
    ports
        .iter()
        .filter(|p| proto.is(p.protocol.as_deref()))
        .find(|p| match port {
            PortRef::Number(n) => p.port == i32::from(*n),
            PortRef::Name(n) => p.name.as_deref() == Some(n.as_str()),
        })
        .ok_or_else(|| {
            let name = svc.metadata.name.as_deref().unwrap_or_default();
            match port {
                PortRef::Number(n) => format!("Service {name} has no {} port {n}", proto.name()),
                PortRef::Name(n) => {
                    format!("Service {name} has no {} port named {n:?}", proto.name())
                }
            }
        })
}

/// The backends of the Service port `sp` among `slices` (all of the
/// Service's), with each endpoint's own target port.
pub fn from_slices<'a>(
    slices: impl IntoIterator<Item = &'a Arc<EndpointSlice>>,
    sp: &ServicePort,
    proto: Protocol,
    want: Want<'_>,
) -> Vec<Backend> {
    let family = if want.ipv4 { "IPv4" } else { "IPv6" };
    let mut found = BTreeSet::new();
    for slice in slices {
        if slice.address_type != family {
            continue;
        }
        // The slice's port of the Service port's name: unnamed ports match
        // the one unnamed Service port.
        let Some(port) = slice.ports.iter().flatten().find_map(|p| {
            let same = p.name.as_deref().unwrap_or_default()
                == sp.name.as_deref().unwrap_or_default()
                && proto.is(p.protocol.as_deref());
            same.then_some(p.port).flatten()
        }) else {
            continue;
        };
        let Ok(port) = u16::try_from(port) else {
            continue;
        };
        for ep in &slice.endpoints {
            let Some(ready) = usable(ep) else { continue };
            let local = ep.node_name.as_deref() == Some(want.node);
            for addr in ep.addresses.iter().filter_map(|a| a.parse::<IpAddr>().ok()) {
                if addr.is_ipv4() == want.ipv4 {
                    found.insert(Candidate {
                        addr,
                        port,
                        ready,
                        local,
                    });
                }
            }
        }
    }
    pick(found, want.policy)
}

/// `Some(ready)` for an endpoint that may serve: ready, or serving while
/// terminating. Kubernetes reads an unset `ready` or `serving` as true.
fn usable(ep: &Endpoint) -> Option<bool> {
    let c = ep.conditions.clone().unwrap_or_default();
    let terminating = c.terminating.unwrap_or(false);
    if c.ready.unwrap_or(true) && !terminating {
        Some(true)
    } else if terminating && c.serving.unwrap_or(true) {
        Some(false)
    } else {
        None
    }
}

/// The pods of this node's `pods` that `sel` selects, at `port` (a
/// container port's name, or a number).
pub fn from_pods<'a>(
    pods: impl IntoIterator<Item = &'a Arc<Pod>>,
    sel: &PodSelector,
    port: &PortRef,
    proto: Protocol,
    want: Want<'_>,
) -> Vec<Backend> {
    let mut found = BTreeSet::new();
    for pod in pods {
        let meta = &pod.metadata;
        if meta.namespace.as_deref() != Some(sel.namespace.as_str()) {
            continue;
        }
        let labels = meta.labels.as_ref();
        let selected = sel
            .match_labels
            .iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v));
        // The watch asks for this node's pods; a pod is taken as local
        // only when it says so itself too.
        let here = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(want.node);
        if !selected || !here {
            continue;
        }
        let Some(status) = &pod.status else { continue };
        let ready = status.phase.as_deref() == Some("Running")
            && status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True");
        if !ready {
            continue;
        }
        let Some(port) = container_port(pod, port, proto) else {
            continue;
        };
        let ips = status.pod_ips.iter().flatten().map(|p| p.ip.as_str());
        for addr in ips.filter_map(|a| a.parse::<IpAddr>().ok()) {
            if addr.is_ipv4() == want.ipv4 {
                found.insert(Candidate {
                    addr,
                    port,
                    // A pod being deleted still serves while it is ready,
                    // but only when no other is.
                    ready: meta.deletion_timestamp.is_none(),
                    local: true,
                });
            }
        }
    }
    pick(found, want.policy)
}

fn container_port(pod: &Pod, port: &PortRef, proto: Protocol) -> Option<u16> {
    match port {
        PortRef::Number(n) => Some(*n),
        PortRef::Name(name) => {
            let spec = pod.spec.as_ref()?;
            let p = spec
                .containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| p.name.as_deref() == Some(name) && proto.is(p.protocol.as_deref()))?;
            u16::try_from(p.container_port).ok()
        }
    }
}

/// The policy's choice among the candidates: ready ones, or the serving
/// terminating ones when none is ready; this node's alone for `local`,
/// and for `preferLocal` while there are any.
fn pick(found: BTreeSet<Candidate>, policy: BackendPolicy) -> Vec<Backend> {
    let serving = |only_local: bool| {
        let pool: Vec<_> = found.iter().filter(|c| c.local || !only_local).collect();
        let ready: Vec<_> = pool.iter().filter(|c| c.ready).copied().collect();
        if ready.is_empty() {
            pool
        } else {
            ready
        }
    };
    let chosen = match policy {
        BackendPolicy::Any => serving(false),
        BackendPolicy::Local => serving(true),
        BackendPolicy::PreferLocal => {
            let local = serving(true);
            if local.is_empty() {
                serving(false)
            } else {
                local
            }
        }
    };
    let mut backends: Vec<Backend> = chosen
        .into_iter()
        .map(|c| Backend {
            addr: c.addr,
            port: c.port,
            weight: 1,
        })
        .collect();
    backends.dedup();
    backends
}
