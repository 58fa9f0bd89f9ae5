//! The cluster's objects into this node's frontends: backends from
//! EndpointSlices and pods and the policies (backends.rs), objects
//! skipped or refused, each with its exact message (objects.rs), who gets
//! a frontend: conflicts, room, nodes' addresses (claims.rs), and nothing
//! refused installed, whatever the objects (properties.rs).

use std::{net::IpAddr, path::PathBuf, sync::Arc};

use serde_json::{json, Value};

mod backends;
mod claims;
mod objects;
mod properties;

use super::{claimed, Claimed, Snapshot, State};
use crate::{
    config::{Backend, Frontend, Kubernetes},
    sources::{kubernetes::admission::Admission, room::Room},
};

const NODE: &str = "n1";

/// Addresses no backend of the usual frontend (203.0.113.10) may have.
const REFUSED_BACKENDS: [&str; 7] = [
    "0.0.0.0",
    "127.0.0.1",
    "224.0.0.1",
    "255.255.255.255",
    "169.254.169.254",
    "240.0.0.1",
    "203.0.113.10",
];

fn settings() -> Kubernetes {
    Kubernetes {
        kubeconfig: None,
        allowed_frontends: vec![
            "203.0.113.0/24".parse().unwrap(),
            "2001:db8:113::/48".parse().unwrap(),
        ],
        annotation_namespaces: vec!["web".into()],
        pod_cidrs: vec!["10.244.0.0/16".parse().unwrap()],
        service_cidrs: vec!["10.96.0.0/12".parse().unwrap()],
        state_file: PathBuf::from("/nonexistent"),
    }
}

fn obj<T: serde::de::DeserializeOwned>(v: Value) -> Arc<T> {
    Arc::new(serde_json::from_value(v).expect("a valid object"))
}

fn service(ns: &str, name: &str, extra: Value) -> Value {
    let mut svc = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"namespace": ns, "name": name, "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"ports": [
            {"name": "http", "port": 80, "targetPort": 8080},
            {"name": "dns", "port": 53, "protocol": "UDP"}
        ]}
    });
    merge(&mut svc, extra);
    svc
}

fn merge(a: &mut Value, b: Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

/// An EndpointSlice of `svc` with endpoints (address, node, ready,
/// serving, terminating).
fn slice(ns: &str, svc: &str, family: &str, eps: &[(&str, &str, bool, bool, bool)]) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"namespace": ns, "name": format!("{svc}-{family}"),
                     "labels": {"kubernetes.io/service-name": svc}},
        "addressType": family,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"},
                  {"name": "dns", "port": 5353, "protocol": "UDP"}],
        "endpoints": eps.iter().map(|(a, n, r, s, t)| json!({
            "addresses": [a], "nodeName": n,
            "conditions": {"ready": r, "serving": s, "terminating": t}
        })).collect::<Vec<_>>()
    })
}

fn redirect(name: &str, address: &str, backend: Value, extra: Value) -> Value {
    let mut r = json!({
        "apiVersion": "hairpin.dev/v1alpha1", "kind": "HairpinRedirect",
        "metadata": {"name": name, "creationTimestamp": "2026-01-02T00:00:00Z"},
        "spec": {
            "frontend": {"address": address, "toPorts": [{"port": 8080}]},
            "backend": backend
        }
    });
    merge(&mut r, json!({"spec": extra}));
    r
}

/// The usual redirect: 203.0.113.10:8080 to Service web/web's port http.
fn web_redirect() -> Value {
    redirect("web", "203.0.113.10", to_service(json!("http")), json!({}))
}

fn to_service(port: Value) -> Value {
    json!({"service": {"namespace": "web", "name": "web"}, "toPorts": [{"port": port}]})
}

struct World {
    snap: Snapshot,
    node_addrs: Vec<IpAddr>,
    file: Vec<Frontend>,
    room: Room,
    allow_reserved: Vec<ipnet::IpNet>,
    settings: Kubernetes,
}

impl World {
    fn new() -> Self {
        Self {
            snap: Snapshot::default(),
            node_addrs: vec!["192.0.2.2".parse().unwrap()],
            file: Vec::new(),
            room: Room::of(1024, 65_536),
            allow_reserved: Vec::new(),
            settings: settings(),
        }
    }
    fn redirect(mut self, v: Value) -> Self {
        self.snap.redirects.push(obj(v));
        self
    }
    fn service(mut self, v: Value) -> Self {
        self.snap.services.push(obj(v));
        self
    }
    fn slice(mut self, v: Value) -> Self {
        self.snap.slices.push(obj(v));
        self
    }
    fn pod(mut self, v: Value) -> Self {
        self.snap.pods.push(obj(v));
        self
    }
    fn node(mut self, v: Value) -> Self {
        self.snap.nodes.push(obj(v));
        self
    }
    fn run(&self) -> Claimed {
        let admission = Admission::new(&self.settings, &self.node_addrs, &self.allow_reserved);
        claimed(&self.snap, NODE, &admission, &self.file, self.room)
    }
}

fn backends(d: &Claimed) -> Vec<String> {
    d.frontends[0]
        .backends
        .iter()
        .map(|b| format!("{}", std::net::SocketAddr::new(b.addr, b.port)))
        .collect()
}

/// The one report's state and message.
fn report(d: &Claimed) -> (State, String) {
    assert_eq!(d.reports.len(), 1, "{:?}", d.reports);
    (d.reports[0].state, d.reports[0].message.clone())
}

fn web_world() -> World {
    World::new()
        .service(service("web", "web", json!({})))
        .slice(slice(
            "web",
            "web",
            "IPv4",
            &[
                ("10.244.1.5", "n1", true, true, false),
                ("10.244.2.7", "n2", true, true, false),
                ("10.244.2.8", "n2", false, true, true),
                ("10.244.2.9", "n2", false, false, false),
            ],
        ))
}
