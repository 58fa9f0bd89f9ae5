//! Which of the node's pods take the socket path. Translated at `connect`,
//! a pod's sockets cost nothing per packet; but a service mesh's proxy in
//! the pod (Istio's sidecar or ambient tunnel, Linkerd's proxy) routes by
//! the original destination, which the socket path has replaced by then.
//! So every pod takes it but those a mesh intercepts, as their own labels
//! and annotations say, and any pod or namespace may say `on` or `off`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use serde::{Deserialize, Serialize};

/// The annotation of a pod, or of its namespace: `on` or `off`.
pub const ANNOTATION: &str = "hairpin.dev/socket";

/// A pod's path, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodPath {
    /// namespace/name.
    pub pod: String,
    pub uid: String,
    /// Whether it takes the socket path (else the TC path).
    pub socket: bool,
    pub why: String,
}

/// The path of `pod`, in `namespace` (if known).
pub fn choose(pod: &Pod, namespace: Option<&Namespace>) -> PodPath {
    let m = &pod.metadata;
    let name = format!(
        "{}/{}",
        m.namespace.as_deref().unwrap_or_default(),
        m.name.as_deref().unwrap_or_default()
    );
    let (socket, why) = decide(pod, namespace);
    PodPath {
        pod: name,
        uid: m.uid.clone().unwrap_or_default(),
        socket,
        why,
    }
}

fn decide(pod: &Pod, namespace: Option<&Namespace>) -> (bool, String) {
    let mesh = mesh(pod, namespace);
    let said = [
        ("the pod's", pod.metadata.annotations.as_ref()),
        (
            "its namespace's",
            namespace.and_then(|n| n.metadata.annotations.as_ref()),
        ),
    ]
    .into_iter()
    .find_map(|(whose, a)| Some((whose, a?.get(ANNOTATION)?.as_str())));
    let beside = |said: String| match mesh {
        Some(m) => format!("{said}, though {m} intercepts it"),
        None => said,
    };
    match said {
        Some((whose, "on")) => (true, beside(format!("{whose} {ANNOTATION}: on"))),
        Some((whose, "off")) => (false, format!("{whose} {ANNOTATION}: off")),
        // Unknown words choose nothing: the TC path serves every pod.
        Some((whose, other)) => (
            false,
            format!("{whose} {ANNOTATION}: {other:?} is neither on nor off"),
        ),
        None => match mesh {
            Some(m) => (false, format!("{m} intercepts it")),
            None if host_network(pod) => (true, "host network: the node's own sockets".into()),
            None => (true, "the default".into()),
        },
    }
}

fn host_network(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false)
}

/// The mesh that intercepts `pod`'s traffic, if one does, from what the
/// mesh itself writes on the pod (or, for Istio's ambient mode, the label
/// that enrolls it or its namespace).
fn mesh(pod: &Pod, namespace: Option<&Namespace>) -> Option<&'static str> {
    let empty = BTreeMap::new();
    let m = &pod.metadata;
    let annotations = m.annotations.as_ref().unwrap_or(&empty);
    let labels = m.labels.as_ref().unwrap_or(&empty);
    let ns_labels = namespace
        .and_then(|n| n.metadata.labels.as_ref())
        .unwrap_or(&empty);
    let containers: Vec<&str> = pod
        .spec
        .iter()
        .flat_map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
        })
        .map(|c| c.name.as_str())
        .collect();
    let has = |name| containers.contains(&name);
    if annotations.contains_key("sidecar.istio.io/status") || has("istio-proxy") {
        return Some("Istio's sidecar");
    }
    let redirection = annotations.get("ambient.istio.io/redirection");
    let mode = |l: &BTreeMap<String, String>| l.get("istio.io/dataplane-mode").cloned();
    let ambient = matches!(redirection.map(String::as_str), Some("enabled" | "pending"))
        || match mode(labels).as_deref() {
            Some("ambient") => true,
            Some("none") => false,
            _ => mode(ns_labels).as_deref() == Some("ambient"),
        };
    if ambient && !host_network(pod) {
        return Some("Istio's ambient mode");
    }
    if labels.contains_key("linkerd.io/control-plane-ns")
        || annotations.contains_key("linkerd.io/proxy-version")
        || has("linkerd-proxy")
    {
        return Some("Linkerd's proxy");
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn pod(meta: Value, spec: Value) -> Pod {
        let mut metadata = json!({"namespace": "shop", "name": "web-1", "uid": "u-1"});
        metadata
            .as_object_mut()
            .unwrap()
            .extend(meta.as_object().unwrap().clone());
        let mut s = json!({"containers": [{"name": "web"}]});
        s.as_object_mut()
            .unwrap()
            .extend(spec.as_object().unwrap().clone());
        serde_json::from_value(json!({"metadata": metadata, "spec": s})).unwrap()
    }

    fn ns(meta: Value) -> Namespace {
        serde_json::from_value(json!({"metadata": meta})).unwrap()
    }

    fn path(p: &Pod, n: Option<&Namespace>) -> (bool, String) {
        let c = choose(p, n);
        assert_eq!((c.pod.as_str(), c.uid.as_str()), ("shop/web-1", "u-1"));
        (c.socket, c.why)
    }

    #[test]
    fn a_pod_takes_the_socket_path_unless_a_mesh_intercepts_it() {
        let plain = pod(json!({}), json!({}));
        assert_eq!(path(&plain, None), (true, "the default".into()));
        let meshed = [
            (
                json!({"annotations": {"sidecar.istio.io/status": "{}"}}),
                json!({}),
                "Istio's sidecar",
            ),
            (
                json!({}),
                json!({"initContainers": [{"name": "istio-proxy"}]}),
                "Istio's sidecar",
            ),
            (
                json!({"annotations": {"ambient.istio.io/redirection": "enabled"}}),
                json!({}),
                "Istio's ambient mode",
            ),
            (
                json!({"labels": {"istio.io/dataplane-mode": "ambient"}}),
                json!({}),
                "Istio's ambient mode",
            ),
            (
                json!({"labels": {"linkerd.io/control-plane-ns": "linkerd"}}),
                json!({}),
                "Linkerd's proxy",
            ),
            (
                json!({"annotations": {"linkerd.io/proxy-version": "edge"}}),
                json!({}),
                "Linkerd's proxy",
            ),
            (
                json!({}),
                json!({"containers": [{"name": "web"}, {"name": "linkerd-proxy"}]}),
                "Linkerd's proxy",
            ),
        ];
        for (meta, spec, mesh) in meshed {
            let p = pod(meta, spec);
            assert_eq!(path(&p, None), (false, format!("{mesh} intercepts it")));
        }
        // A namespace enrolled in ambient mode, and a pod that leaves it.
        let ambient = ns(json!({"name": "shop", "labels": {"istio.io/dataplane-mode": "ambient"}}));
        assert_eq!(
            path(&plain, Some(&ambient)),
            (false, "Istio's ambient mode intercepts it".into())
        );
        let leaves = pod(
            json!({"labels": {"istio.io/dataplane-mode": "none"}}),
            json!({}),
        );
        assert!(path(&leaves, Some(&ambient)).0);
        let host = pod(json!({}), json!({"hostNetwork": true}));
        assert_eq!(
            path(&host, Some(&ambient)),
            (true, "host network: the node's own sockets".into())
        );
    }

    #[test]
    fn a_pods_word_comes_before_its_namespaces_and_both_before_the_mesh() {
        let off_ns = ns(json!({"name": "shop", "annotations": {ANNOTATION: "off"}}));
        let on_ns = ns(json!({"name": "shop", "annotations": {ANNOTATION: "on"}}));
        let plain = pod(json!({}), json!({}));
        assert_eq!(
            path(&plain, Some(&off_ns)),
            (false, "its namespace's hairpin.dev/socket: off".into())
        );
        let on = pod(json!({"annotations": {ANNOTATION: "on"}}), json!({}));
        assert_eq!(
            path(&on, Some(&off_ns)),
            (true, "the pod's hairpin.dev/socket: on".into())
        );
        let sidecar = pod(
            json!({"annotations": {"sidecar.istio.io/status": "{}"}}),
            json!({}),
        );
        assert_eq!(
            path(&sidecar, Some(&on_ns)),
            (
                true,
                "its namespace's hairpin.dev/socket: on, though Istio's sidecar intercepts it"
                    .into()
            )
        );
        let odd = pod(json!({"annotations": {ANNOTATION: "yes"}}), json!({}));
        assert_eq!(
            path(&odd, None),
            (
                false,
                "the pod's hairpin.dev/socket: \"yes\" is neither on nor off".into()
            )
        );
    }
}
