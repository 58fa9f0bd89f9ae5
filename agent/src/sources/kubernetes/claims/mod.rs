//! What the cluster asks of this node: `HairpinRedirect` resources and
//! annotated Services, with the backends their EndpointSlices or pods give,
//! turned into frontends for the one reconcile. Each object gets a report:
//! applied, skipped or refused, and why.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    net::IpAddr,
    sync::Arc,
};

use k8s_openapi::api::{
    core::v1::{Namespace, Node, Pod, Service},
    discovery::v1::EndpointSlice,
};
use kube::api::DynamicObject;
use serde::{Deserialize, Serialize};

mod annotated;
mod redirect;

use super::{
    admission::Admission,
    crd::{PortRef, Protocol},
    endpoints::{self, Want, SERVICE_NAME_LABEL},
};
use crate::{config::Frontend, sources::room::Room};

/// The objects the agent follows, as its reflectors hold them.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Not read yet (`redirect::decode`).
    pub redirects: Vec<Arc<DynamicObject>>,
    pub services: Vec<Arc<Service>>,
    pub slices: Vec<Arc<EndpointSlice>>,
    /// This node's pods.
    pub pods: Vec<Arc<Pod>>,
    /// Every node, for their addresses.
    pub nodes: Vec<Arc<Node>>,
    /// Every namespace, for its word on the socket path.
    pub namespaces: Vec<Arc<Namespace>>,
}

/// An object frontends come from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Source {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{ns}/{}", self.kind, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

/// What became of one object on this node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub source: Source,
    pub state: State,
    /// Why, where it is not simply applied.
    pub message: String,
    /// The later objects refused a frontend this one holds: a conflict is
    /// said on both sides, so the owner learns of it too. A slice: a
    /// report is the error of the claims, kept small.
    #[serde(default, skip_serializing_if = "<[String]>::is_empty")]
    pub contested_by: Box<[String]>,
}

impl Report {
    /// Everything the report says beyond its state, in a line.
    pub fn note(&self) -> String {
        let contest = match &*self.contested_by {
            [] => None,
            [one] => Some(format!("{one} claims its frontends too (refused there)")),
            [first, rest @ ..] => Some(format!(
                "{first} and {} more claim its frontends too (refused there)",
                rest.len()
            )),
        };
        [
            Some(self.message.clone()).filter(|m| !m.is_empty()),
            contest,
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("; ")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum State {
    Applied,
    /// Kubernetes serves the address already on every node.
    Skipped,
    Refused,
}

/// The frontends the cluster asks for, and a report per object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claimed {
    pub frontends: Vec<Frontend>,
    pub reports: Vec<Report>,
}

/// One object's frontends on their way to the node's.
struct Claim {
    source: Source,
    frontends: Vec<Frontend>,
    notes: Vec<String>,
}

/// What the objects of `snap` claim of this node: `admission` decides which
/// frontends the cluster may have, `taken` are the file's and its names'
/// (these win a conflict), `room` is what the datapath's tables have left for
/// the cluster: an object that does not fit is refused whole, the oldest
/// objects served first.
pub fn claimed(
    snap: &Snapshot,
    node: &str,
    admission: &Admission,
    taken: &[Frontend],
    mut room: Room,
) -> Claimed {
    let index = Index::new(snap);
    let admission = &admission.clone().beside(node_addresses(&snap.nodes));
    let mut out = Claimed::default();
    let mut held: BTreeMap<(IpAddr, u16, u8), String> = taken
        .iter()
        .map(|f| ((f.addr, f.port, f.proto), format!("the file's {}", f.name)))
        .collect();
    // The oldest object wins a conflict, whatever order the watch gave.
    let mut redirects: Vec<_> = snap.redirects.iter().collect();
    redirects.sort_by_key(|r| {
        (
            r.metadata.creation_timestamp.clone(),
            r.metadata.name.clone(),
        )
    });
    let mut services: Vec<_> = snap.services.iter().collect();
    services.sort_by_key(|s| {
        (
            s.metadata.creation_timestamp.clone(),
            s.metadata.name.clone(),
        )
    });
    let claims = redirects
        .into_iter()
        .map(|r| redirect::decode(r).and_then(|r| redirect::claim(&r, &index, node, admission)))
        .chain(
            services
                .into_iter()
                .filter_map(|s| annotated::claim(s, &index, node, admission)),
        );
    for claim in claims {
        let claim = match claim {
            Ok(c) => c,
            Err(report) => {
                out.reports.push(report);
                continue;
            }
        };
        let (fits, notes, owners) = settle(
            claim.frontends,
            claim.notes,
            &claim.source,
            admission,
            &mut held,
            &mut room,
        );
        let state = if fits.is_empty() {
            State::Refused
        } else {
            State::Applied
        };
        // The owners are older, so reported already.
        let loser = claim.source.to_string();
        for r in &mut out.reports {
            if owners.contains(&r.source.to_string()) && !r.contested_by.contains(&loser) {
                let mut by = std::mem::take(&mut r.contested_by).into_vec();
                by.push(loser.clone());
                r.contested_by = by.into();
            }
        }
        out.frontends.extend(fits);
        out.reports
            .push(report(claim.source, state, notes.join("; ")));
    }
    out
}

/// What of one object's `frontends` is served: its backends that pass the
/// file's test, its frontends that no older claim has, all of them if the
/// tables have room. Returns them with the notes that say what was not,
/// and the other objects that hold what it asked for.
fn settle(
    frontends: Vec<Frontend>,
    mut notes: Vec<String>,
    source: &Source,
    admission: &Admission,
    claimed: &mut BTreeMap<(IpAddr, u16, u8), String>,
    room: &mut Room,
) -> (Vec<Frontend>, Vec<String>, Vec<String>) {
    let mut fits: Vec<Frontend> = Vec::new();
    let mut taken: BTreeMap<String, Vec<std::net::SocketAddr>> = BTreeMap::new();
    for mut f in frontends {
        // The cluster's addresses pass the file's test for a backend.
        f.backends
            .retain(|b| match admission.backend(b.addr, f.addr) {
                Some(why) => {
                    let note = format!("backend {why}: left out");
                    if !notes.contains(&note) {
                        notes.push(note);
                    }
                    false
                }
                None => true,
            });
        let key = (f.addr, f.port, f.proto);
        let owner = claimed.get(&key).cloned().or_else(|| {
            let again = fits.iter().any(|g| (g.addr, g.port, g.proto) == key);
            again.then(|| source.to_string())
        });
        match owner {
            Some(owner) => taken
                .entry(owner)
                .or_default()
                .push(std::net::SocketAddr::new(f.addr, f.port)),
            None => fits.push(f),
        }
    }
    let me = source.to_string();
    let owners = taken.keys().filter(|o| **o != me).cloned().collect();
    // A few conflicts each, many summed up: a report is an Event's note.
    for (owner, at) in taken {
        match at.as_slice() {
            [first, _, _, _, ..] => notes.push(format!(
                "{first} and {} more are taken by {owner}",
                at.len() - 1
            )),
            _ => notes.extend(at.iter().map(|a| format!("{a} is taken by {owner}"))),
        }
    }
    if let Err(why) = room.take(&fits) {
        notes.push(why);
        fits.clear();
    }
    for f in &fits {
        claimed.insert((f.addr, f.port, f.proto), me.clone());
    }
    (fits, notes, owners)
}

/// The snapshot's Services and slices by namespace and name, and the
/// addresses Kubernetes itself translates on every node.
struct Index<'a> {
    services: BTreeMap<(&'a str, &'a str), &'a Arc<Service>>,
    slices: BTreeMap<(&'a str, &'a str), Vec<&'a Arc<EndpointSlice>>>,
    served: BTreeSet<IpAddr>,
    pods: &'a [Arc<Pod>],
}

impl<'a> Index<'a> {
    fn new(snap: &'a Snapshot) -> Self {
        let mut services = BTreeMap::new();
        let mut served = BTreeSet::new();
        for svc in &snap.services {
            let m = &svc.metadata;
            services.insert(
                (
                    m.namespace.as_deref().unwrap_or_default(),
                    m.name.as_deref().unwrap_or_default(),
                ),
                svc,
            );
            served.extend(served_by_kubernetes(svc));
        }
        let mut slices: BTreeMap<_, Vec<_>> = BTreeMap::new();
        for slice in &snap.slices {
            let m = &slice.metadata;
            let Some(svc) = m.labels.as_ref().and_then(|l| l.get(SERVICE_NAME_LABEL)) else {
                continue;
            };
            slices
                .entry((m.namespace.as_deref().unwrap_or_default(), svc.as_str()))
                .or_default()
                .push(slice);
        }
        Self {
            services,
            slices,
            served,
            pods: &snap.pods,
        }
    }

    /// The backends of `svc`'s port `port`, or why there are none.
    fn service_backends(
        &self,
        (ns, name): (&str, &str),
        port: &PortRef,
        proto: Protocol,
        want: Want<'_>,
    ) -> Result<Vec<crate::config::Backend>, String> {
        let svc = self
            .services
            .get(&(ns, name))
            .ok_or_else(|| format!("Service {ns}/{name} not found"))?;
        let sp = endpoints::service_port(svc, port, proto)?;
        let slices = self.slices.get(&(ns, name)).into_iter().flatten().copied();
        Ok(endpoints::from_slices(slices, sp, proto, want))
    }
}

/// A Service's `externalIPs`, and its load balancer's ingress addresses
/// whose `ipMode` is `VIP` (or unset): kube-proxy, or the CNI in its
/// place, translates these on every node already.
fn served_by_kubernetes(svc: &Service) -> impl Iterator<Item = IpAddr> + '_ {
    let external = svc
        .spec
        .iter()
        .flat_map(|s| s.external_ips.iter().flatten());
    let ingress = svc
        .status
        .iter()
        .flat_map(|s| s.load_balancer.iter())
        .flat_map(|lb| lb.ingress.iter().flatten())
        .filter(|i| i.ip_mode.as_deref().is_none_or(|m| m == "VIP"))
        .filter_map(|i| i.ip.as_ref());
    external.chain(ingress).filter_map(|a| a.parse().ok())
}

/// Every node's addresses (`status.addresses`), with its name.
fn node_addresses(nodes: &[Arc<Node>]) -> Vec<(IpAddr, String)> {
    nodes
        .iter()
        .flat_map(|n| {
            let name = n.metadata.name.clone().unwrap_or_default();
            n.status
                .iter()
                .flat_map(|s| s.addresses.iter().flatten())
                .filter_map(move |a| Some((a.address.parse().ok()?, name.clone())))
        })
        .collect()
}

fn proto_number(p: Protocol) -> u8 {
    match p {
        Protocol::Tcp => hairpin_common::IPPROTO_TCP,
        Protocol::Udp => hairpin_common::IPPROTO_UDP,
    }
}

fn refused(source: Source, message: String) -> Report {
    report(source, State::Refused, message)
}

fn skipped(source: Source, message: String) -> Report {
    report(source, State::Skipped, message)
}

fn report(source: Source, state: State, message: String) -> Report {
    Report {
        source,
        state,
        message,
        contested_by: Box::default(),
    }
}

#[cfg(test)]
mod tests;
