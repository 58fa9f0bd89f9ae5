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
    core::v1::{Pod, Service},
    discovery::v1::EndpointSlice,
};
use serde::{Deserialize, Serialize};

use super::{
    admission::Admission,
    annotation::{self, FRONTENDS_ANNOTATION},
    crd::{BackendPolicy, HairpinRedirect, PortRef, Protocol},
    endpoints::{self, Want, SERVICE_NAME_LABEL},
};
use crate::config::Frontend;

/// The objects the agent follows, as its reflectors hold them.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub redirects: Vec<Arc<HairpinRedirect>>,
    pub services: Vec<Arc<Service>>,
    pub slices: Vec<Arc<EndpointSlice>>,
    /// This node's pods.
    pub pods: Vec<Arc<Pod>>,
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
pub struct Desired {
    pub frontends: Vec<Frontend>,
    pub reports: Vec<Report>,
}

/// One object's frontends on their way to the desired state.
struct Claim {
    source: Source,
    frontends: Vec<Frontend>,
    notes: Vec<String>,
}

/// The objects of `snap` as this node's desired state: `admission` decides
/// which frontends the cluster may have, `taken` are the file's (the file
/// wins a conflict).
pub fn desired(snap: &Snapshot, node: &str, admission: &Admission, taken: &[Frontend]) -> Desired {
    let index = Index::new(snap);
    let mut out = Desired::default();
    let mut claimed: BTreeMap<(IpAddr, u16, u8), String> = taken
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
        .map(|r| redirect(r, &index, node, admission))
        .chain(
            services
                .into_iter()
                .filter_map(|s| annotated(s, &index, node, admission)),
        );
    for claim in claims {
        let claim = match claim {
            Ok(c) => c,
            Err(report) => {
                out.reports.push(report);
                continue;
            }
        };
        let mut notes = claim.notes;
        let mut applied = 0;
        for f in claim.frontends {
            let key = (f.addr, f.port, f.proto);
            if let Some(owner) = claimed.get(&key) {
                notes.push(format!(
                    "{}:{} is taken by {owner}",
                    fmt_addr(f.addr),
                    f.port
                ));
                continue;
            }
            claimed.insert(key, claim.source.to_string());
            out.frontends.push(f);
            applied += 1;
        }
        let state = if applied > 0 {
            State::Applied
        } else {
            State::Refused
        };
        out.reports.push(Report {
            source: claim.source,
            state,
            message: notes.join("; "),
        });
    }
    out
}

fn fmt_addr(a: IpAddr) -> String {
    match a {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    }
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

fn proto_number(p: Protocol) -> u8 {
    match p {
        Protocol::Tcp => hairpin_common::IPPROTO_TCP,
        Protocol::Udp => hairpin_common::IPPROTO_UDP,
    }
}

fn refused(source: Source, message: String) -> Report {
    Report {
        source,
        state: State::Refused,
        message,
    }
}

/// A `HairpinRedirect`'s frontends on this node.
fn redirect(
    r: &HairpinRedirect,
    index: &Index<'_>,
    node: &str,
    admission: &Admission,
) -> Result<Claim, Report> {
    let name = r.metadata.name.clone().unwrap_or_default();
    let source = Source {
        kind: "HairpinRedirect".into(),
        namespace: None,
        name: name.clone(),
    };
    let spec = &r.spec;
    let fail = |m: String| refused(source.clone(), m);
    let addr: IpAddr = spec.frontend.address.parse().map_err(|_| {
        fail(format!(
            "frontend.address {:?} is not an IP address",
            spec.frontend.address
        ))
    })?;
    admission.admit(addr).map_err(&fail)?;
    if index.served.contains(&addr) && !spec.force {
        return Err(Report {
            source,
            state: State::Skipped,
            message: format!(
                "{addr} is a Service's external IP or load balancer VIP, which Kubernetes \
                 already serves on every node (force: true redirects it anyway)"
            ),
        });
    }
    let backend = &spec.backend;
    let (policy, local) = match (&backend.service, &backend.local_endpoint_selector) {
        (Some(_), None) => (spec.backend_policy.unwrap_or(BackendPolicy::Any), false),
        (None, Some(_)) => match spec.backend_policy {
            None | Some(BackendPolicy::Local) => (BackendPolicy::Local, true),
            Some(p) => {
                return Err(fail(format!(
                    "backendPolicy {p:?} needs backend.service: localEndpointSelector selects this node's pods only"
                )))
            }
        },
        _ => {
            return Err(fail(
                "backend needs exactly one of service and localEndpointSelector".into(),
            ))
        }
    };
    let want = Want {
        node,
        ipv4: addr.is_ipv4(),
        policy,
    };
    let mut claim = Claim {
        source: source.clone(),
        frontends: Vec::new(),
        notes: unserved_options(spec),
    };
    for (i, fp) in spec.frontend.to_ports.iter().enumerate() {
        let bp = pair(&spec.frontend.to_ports, &backend.to_ports, i).map_err(&fail)?;
        if bp.protocol != fp.protocol {
            return Err(fail(format!(
                "frontend port {} is {} but its backend port is {}",
                fp.port,
                fp.protocol.name(),
                bp.protocol.name()
            )));
        }
        let backends = if local {
            let sel = backend
                .local_endpoint_selector
                .as_ref()
                .expect("checked above");
            endpoints::from_pods(index.pods, sel, &bp.port, fp.protocol, want)
        } else {
            let svc = backend.service.as_ref().expect("checked above");
            index
                .service_backends((&svc.namespace, &svc.name), &bp.port, fp.protocol, want)
                .unwrap_or_else(|why| {
                    claim.notes.push(why);
                    Vec::new()
                })
        };
        let label = fp.name.clone().unwrap_or_else(|| fp.port.to_string());
        claim.frontends.push(Frontend {
            source: source.to_string(),
            name: format!("{source}/{label}/{}", fp.protocol.name().to_lowercase()),
            addr,
            port: fp.port,
            proto: proto_number(fp.protocol),
            backends,
        });
    }
    Ok(claim)
}

/// The options this agent's datapath does not serve yet: said, never
/// silently ignored.
fn unserved_options(spec: &super::crd::HairpinRedirectSpec) -> Vec<String> {
    let mut notes = Vec::new();
    if spec.skip_redirect_from_backend {
        notes.push("skipRedirectFromBackend is not served yet: backends are redirected too".into());
    }
    if spec.when_no_backend == Some(super::crd::WhenNoBackend::Reject) {
        notes.push(
            "whenNoBackend: reject is not served yet: without a backend, clients pass through"
                .into(),
        );
    }
    notes
}

/// The backend port of frontend port `i`: the only one, or the one of the
/// same name.
fn pair<'a>(
    front: &[super::crd::FrontendPort],
    back: &'a [super::crd::BackendPort],
    i: usize,
) -> Result<&'a super::crd::BackendPort, String> {
    if front.len() == 1 && back.len() == 1 {
        return Ok(&back[0]);
    }
    let fp = &front[i];
    let name = fp.name.as_deref().ok_or_else(|| {
        format!(
            "frontend port {} needs a name: with several ports, each pairs with the backend port of its name",
            fp.port
        )
    })?;
    back.iter()
        .find(|b| b.name.as_deref() == Some(name))
        .ok_or_else(|| {
            format!(
                "no backend port named {name:?} for frontend port {}",
                fp.port
            )
        })
}

/// An annotated Service's frontends, if it has the annotation.
fn annotated(
    svc: &Service,
    index: &Index<'_>,
    node: &str,
    admission: &Admission,
) -> Option<Result<Claim, Report>> {
    let value = svc
        .metadata
        .annotations
        .as_ref()?
        .get(FRONTENDS_ANNOTATION)?;
    let ns = svc.metadata.namespace.clone().unwrap_or_default();
    let name = svc.metadata.name.clone().unwrap_or_default();
    let source = Source {
        kind: "Service".into(),
        namespace: Some(ns.clone()),
        name: name.clone(),
    };
    Some(annotated_claim(value, source, index, node, admission))
}

fn annotated_claim(
    value: &str,
    source: Source,
    index: &Index<'_>,
    node: &str,
    admission: &Admission,
) -> Result<Claim, Report> {
    let fail = |m: String| refused(source.clone(), m);
    let ns = source.namespace.clone().unwrap_or_default();
    if !admission.annotations_in(&ns) {
        return Err(fail(format!(
            "{FRONTENDS_ANNOTATION} is not honoured in namespace {ns}: it is not in kubernetes.annotationNamespaces"
        )));
    }
    let entries = annotation::parse(value)
        .map_err(|why| fail(format!("malformed {FRONTENDS_ANNOTATION}: {why}")))?;
    let mut claim = Claim {
        source: source.clone(),
        frontends: Vec::new(),
        notes: Vec::new(),
    };
    for e in entries {
        let addr = e.frontend.ip();
        admission.admit(addr).map_err(&fail)?;
        if index.served.contains(&addr) {
            claim.notes.push(format!(
                "{addr} is a Service's external IP or load balancer VIP, which Kubernetes already serves on every node"
            ));
            continue;
        }
        let svc = index
            .services
            .get(&(ns.as_str(), source.name.as_str()))
            .expect("the annotated Service is in the index");
        // The Service port's protocol is the frontend's.
        let proto = [Protocol::Tcp, Protocol::Udp]
            .into_iter()
            .find(|p| endpoints::service_port(svc, &e.port, *p).is_ok())
            .ok_or_else(|| {
                fail(endpoints::service_port(svc, &e.port, Protocol::Tcp).unwrap_err())
            })?;
        let want = Want {
            node,
            ipv4: addr.is_ipv4(),
            policy: BackendPolicy::Any,
        };
        let backends = index
            .service_backends((&ns, &source.name), &e.port, proto, want)
            .map_err(&fail)?;
        claim.frontends.push(Frontend {
            source: source.to_string(),
            name: format!("{source}/{}/{}", e.frontend, proto.name().to_lowercase()),
            addr,
            port: e.frontend.port(),
            proto: proto_number(proto),
            backends,
        });
    }
    if claim.frontends.is_empty() {
        return Err(Report {
            source,
            state: State::Skipped,
            message: claim.notes.join("; "),
        });
    }
    Ok(claim)
}
