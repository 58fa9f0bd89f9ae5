//! A Service's `hairpin.dev/frontends` annotation into this node's
//! frontends.

use k8s_openapi::api::core::v1::Service;

use super::{proto_number, refused, skipped, Claim, Index, Report, Source};
use crate::{
    config::Frontend,
    sources::kubernetes::{
        admission::Admission,
        annotation::{self, FRONTENDS_ANNOTATION},
        crd::{BackendPolicy, Protocol},
        endpoints::{self, Want},
    },
};

/// An annotated Service's frontends, if it has the annotation.
pub(super) fn claim(
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
            policy: Default::default(),
        });
    }
    if claim.frontends.is_empty() {
        return Err(skipped(source, claim.notes.join("; ")));
    }
    Ok(claim)
}
