//! A `HairpinRedirect` into this node's frontends.

use std::net::IpAddr;

use kube::api::DynamicObject;

use super::{proto_number, refused, skipped, Claim, Index, Report, Source};
use crate::{
    config::{Frontend, Policy},
    sources::kubernetes::{
        admission::Admission,
        crd::{BackendPolicy, BackendPort, FrontendPort, HairpinRedirect, WhenNoBackend},
        endpoints::{self, Want},
    },
};

/// The source of the redirect named `name`.
fn source(name: &str) -> Source {
    Source {
        kind: "HairpinRedirect".into(),
        namespace: None,
        name: name.to_owned(),
    }
}

/// An object of the kind, read alone: one with a field out of range or of
/// the wrong type is refused, with the field's path, and the others served.
pub(super) fn decode(obj: &DynamicObject) -> Result<HairpinRedirect, Report> {
    let name = obj.metadata.name.as_deref().unwrap_or_default();
    let value = serde_json::to_value(obj).map_err(|e| refused(source(name), e.to_string()))?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        refused(
            source(name),
            format!("not a HairpinRedirect: {}: {}", e.path(), e.inner()),
        )
    })
}

/// A `HairpinRedirect`'s frontends on this node.
pub(super) fn claim(
    r: &HairpinRedirect,
    index: &Index<'_>,
    node: &str,
    admission: &Admission,
) -> Result<Claim, Report> {
    let name = r.metadata.name.clone().unwrap_or_default();
    let source = source(&name);
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
        return Err(skipped(
            source,
            format!(
                "{addr} is a Service's external IP or load balancer VIP, which Kubernetes \
                 already serves on every node (force: true redirects it anyway)"
            ),
        ));
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
        notes: Vec::new(),
    };
    let frontend_policy = Policy {
        refuse_when_empty: spec.when_no_backend == Some(WhenNoBackend::Reject),
        skip_backends: spec.skip_redirect_from_backend,
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
            policy: frontend_policy,
        });
    }
    Ok(claim)
}

/// The backend port of frontend port `i`: the only one, or the one of the
/// same name.
fn pair<'a>(
    front: &[FrontendPort],
    back: &'a [BackendPort],
    i: usize,
) -> Result<&'a BackendPort, String> {
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
