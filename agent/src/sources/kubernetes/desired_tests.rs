//! The cluster's objects into this node's frontends: backends from
//! EndpointSlices and pods, the policies, and every refusal with its
//! exact message.

use std::{net::IpAddr, path::PathBuf, sync::Arc};

use serde_json::{json, Value};

use super::{
    admission::Admission,
    desired::{desired, Desired, Snapshot, State},
};
use crate::config::{Backend, Frontend, Kubernetes};

const NODE: &str = "n1";

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

fn to_service(port: Value) -> Value {
    json!({"service": {"namespace": "web", "name": "web"}, "toPorts": [{"port": port}]})
}

struct World {
    snap: Snapshot,
    node_addrs: Vec<IpAddr>,
    file: Vec<Frontend>,
}

impl World {
    fn new() -> Self {
        Self {
            snap: Snapshot::default(),
            node_addrs: vec!["192.0.2.2".parse().unwrap()],
            file: Vec::new(),
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
    fn run(&self) -> Desired {
        let admission = Admission::new(&settings(), &self.node_addrs);
        desired(&self.snap, NODE, &admission, &self.file)
    }
}

fn backends(d: &Desired) -> Vec<String> {
    d.frontends[0]
        .backends
        .iter()
        .map(|b| format!("{}", std::net::SocketAddr::new(b.addr, b.port)))
        .collect()
}

/// The one report's state and message.
fn report(d: &Desired) -> (State, String) {
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

#[test]
fn a_service_redirect_leads_to_the_ready_endpoints_at_their_target_port() {
    let d = web_world()
        .redirect(redirect(
            "web",
            "203.0.113.10",
            to_service(json!("http")),
            json!({}),
        ))
        .run();
    assert_eq!(
        d.frontends,
        vec![Frontend {
            name: "HairpinRedirect/web/8080/tcp".into(),
            source: "HairpinRedirect/web".into(),
            addr: "203.0.113.10".parse().unwrap(),
            port: 8080,
            proto: 6,
            backends: vec![
                Backend {
                    addr: "10.244.1.5".parse().unwrap(),
                    port: 8080,
                    weight: 1
                },
                Backend {
                    addr: "10.244.2.7".parse().unwrap(),
                    port: 8080,
                    weight: 1
                },
            ],
        }]
    );
    assert_eq!(report(&d), (State::Applied, String::new()));
}

#[test]
fn the_service_port_by_number_and_a_udp_port_by_name() {
    let mut r = redirect("dns", "203.0.113.10", to_service(json!("dns")), json!({}));
    r["spec"]["frontend"]["toPorts"] = json!([{"port": 53, "protocol": "UDP"}]);
    r["spec"]["backend"]["toPorts"] = json!([{"port": "dns", "protocol": "UDP"}]);
    let d = web_world().redirect(r).run();
    assert_eq!(d.frontends[0].proto, 17);
    assert_eq!(backends(&d), ["10.244.1.5:5353", "10.244.2.7:5353"]);
    let d = web_world()
        .redirect(redirect(
            "web",
            "203.0.113.10",
            to_service(json!(80)),
            json!({}),
        ))
        .run();
    assert_eq!(backends(&d), ["10.244.1.5:8080", "10.244.2.7:8080"]);
}

#[test]
fn serving_terminating_endpoints_serve_only_when_no_ready_one_is_left() {
    let d = World::new()
        .service(service("web", "web", json!({})))
        .slice(slice(
            "web",
            "web",
            "IPv4",
            &[
                ("10.244.2.8", "n2", false, true, true),
                ("10.244.2.9", "n2", false, false, true),
                ("10.244.2.10", "n2", false, false, false),
            ],
        ))
        .redirect(redirect(
            "web",
            "203.0.113.10",
            to_service(json!("http")),
            json!({}),
        ))
        .run();
    assert_eq!(backends(&d), ["10.244.2.8:8080"]);
}

#[test]
fn an_ipv6_frontend_takes_the_ipv6_slices_only() {
    let d = web_world()
        .slice(slice(
            "web",
            "web",
            "IPv6",
            &[("fd00:244::5", "n1", true, true, false)],
        ))
        .redirect(redirect(
            "web6",
            "2001:db8:113::10",
            to_service(json!("http")),
            json!({}),
        ))
        .run();
    assert_eq!(backends(&d), ["[fd00:244::5]:8080"]);
}

#[test]
fn prefer_local_takes_this_nodes_endpoints_while_there_are_any_and_local_only_those() {
    let policy = |p: &str, w: World| {
        w.redirect(redirect(
            "web",
            "203.0.113.10",
            to_service(json!("http")),
            json!({"backendPolicy": p}),
        ))
        .run()
    };
    assert_eq!(
        backends(&policy("preferLocal", web_world())),
        ["10.244.1.5:8080"]
    );
    assert_eq!(backends(&policy("local", web_world())), ["10.244.1.5:8080"]);
    let elsewhere = || {
        World::new()
            .service(service("web", "web", json!({})))
            .slice(slice(
                "web",
                "web",
                "IPv4",
                &[("10.244.2.7", "n2", true, true, false)],
            ))
    };
    assert_eq!(
        backends(&policy("preferLocal", elsewhere())),
        ["10.244.2.7:8080"]
    );
    assert!(backends(&policy("local", elsewhere())).is_empty());
}

#[test]
fn a_local_endpoint_selector_takes_this_nodes_ready_matching_pods() {
    let pod = |name: &str, ip: &str, labels: Value, ready: &str| {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"namespace": "default", "name": name, "labels": labels},
            "spec": {"nodeName": NODE, "containers": [{"name": "nginx",
                     "ports": [{"name": "http", "containerPort": 80}]}]},
            "status": {"phase": "Running", "podIPs": [{"ip": ip}],
                       "conditions": [{"type": "Ready", "status": ready}]}
        })
    };
    let selector = json!({
        "localEndpointSelector": {"namespace": "default", "matchLabels": {"run": "nginx"}},
        "toPorts": [{"port": "http"}]
    });
    let d = World::new()
        .pod(pod("a", "10.244.1.5", json!({"run": "nginx"}), "True"))
        .pod(pod("b", "10.244.1.6", json!({"run": "nginx"}), "False"))
        .pod(pod("c", "10.244.1.7", json!({"run": "other"}), "True"))
        .redirect(redirect("nginx", "203.0.113.10", selector, json!({})))
        .run();
    assert_eq!(backends(&d), ["10.244.1.5:80"]);
}

#[test]
fn an_address_kubernetes_serves_is_skipped_unless_forced() {
    let lb = json!({"spec": {"externalIPs": ["203.0.113.20"]},
                    "status": {"loadBalancer": {"ingress": [
                        {"ip": "203.0.113.21"},
                        {"ip": "203.0.113.22", "ipMode": "Proxy"}]}}});
    let world = |addr: &str, extra: Value| {
        World::new()
            .service(service("web", "web", lb.clone()))
            .redirect(redirect("web", addr, to_service(json!("http")), extra))
            .run()
    };
    for addr in ["203.0.113.20", "203.0.113.21"] {
        let d = world(addr, json!({}));
        assert!(d.frontends.is_empty());
        assert_eq!(
            report(&d),
            (
                State::Skipped,
                format!(
                    "{addr} is a Service's external IP or load balancer VIP, which Kubernetes \
                     already serves on every node (force: true redirects it anyway)"
                )
            )
        );
        assert_eq!(world(addr, json!({"force": true})).frontends.len(), 1);
    }
    assert_eq!(
        world("203.0.113.22", json!({})).frontends.len(),
        1,
        "ipMode Proxy is not served"
    );
}

#[test]
fn every_refusal_says_why() {
    let refusal = |addr: &str| {
        let d = web_world()
            .redirect(redirect("web", addr, to_service(json!("http")), json!({})))
            .run();
        assert!(d.frontends.is_empty());
        let (state, msg) = report(&d);
        assert_eq!(state, State::Refused);
        msg
    };
    assert_eq!(
        refusal("198.51.100.10"),
        "198.51.100.10 is outside kubernetes.allowedFrontends (203.0.113.0/24, 2001:db8:113::/48)"
    );
    assert_eq!(
        refusal("10.244.3.3"),
        "10.244.3.3 is inside the cluster's pod CIDR 10.244.0.0/16"
    );
    assert_eq!(
        refusal("10.96.0.10"),
        "10.96.0.10 is inside the cluster's service CIDR 10.96.0.0/12"
    );
    assert_eq!(refusal("127.0.0.1"), "127.0.0.1 is not a unicast address");
    assert_eq!(
        refusal("203.0.113.x"),
        "frontend.address \"203.0.113.x\" is not an IP address"
    );
    let mut w = web_world();
    w.node_addrs.push("203.0.113.5".parse().unwrap());
    let d = w
        .redirect(redirect(
            "web",
            "203.0.113.5",
            to_service(json!("http")),
            json!({}),
        ))
        .run();
    assert_eq!(
        report(&d).1,
        "203.0.113.5 is an address of this node: hairpin would capture the node's own traffic"
    );
}

#[test]
fn malformed_redirects_are_refused_with_their_reason() {
    let refusal = |r: Value| report(&web_world().redirect(r).run());
    let both = json!({"service": {"namespace": "web", "name": "web"},
                      "localEndpointSelector": {"namespace": "web", "matchLabels": {}},
                      "toPorts": [{"port": 80}]});
    assert_eq!(
        refusal(redirect("web", "203.0.113.10", both, json!({}))),
        (
            State::Refused,
            "backend needs exactly one of service and localEndpointSelector".into()
        )
    );
    let mut r = redirect("web", "203.0.113.10", to_service(json!("http")), json!({}));
    r["spec"]["frontend"]["toPorts"] = json!([{"port": 8080}, {"port": 5353, "protocol": "UDP"}]);
    assert_eq!(
        refusal(r).1,
        "frontend port 8080 needs a name: with several ports, each pairs with the backend port of its name"
    );
    let missing =
        json!({"service": {"namespace": "web", "name": "gone"}, "toPorts": [{"port": 80}]});
    let d = web_world()
        .redirect(redirect("web", "203.0.113.10", missing, json!({})))
        .run();
    assert_eq!(
        d.frontends[0].backends,
        [],
        "no backend: the frontend passes through"
    );
    assert_eq!(
        report(&d),
        (State::Applied, "Service web/gone not found".into())
    );
    let d = web_world()
        .redirect(redirect(
            "web",
            "203.0.113.10",
            to_service(json!("https")),
            json!({}),
        ))
        .run();
    assert_eq!(report(&d).1, "Service web has no TCP port named \"https\"");
}

fn annotated(ns: &str, value: &str) -> Value {
    let mut svc = service(ns, "web", json!({}));
    svc["metadata"]["annotations"] = json!({"hairpin.dev/frontends": value});
    svc
}

#[test]
fn an_annotated_service_redirects_to_its_endpoints() {
    let d = World::new()
        .service(annotated(
            "web",
            "203.0.113.10:8080=http, 203.0.113.10:5353=dns",
        ))
        .slice(slice(
            "web",
            "web",
            "IPv4",
            &[("10.244.1.5", "n1", true, true, false)],
        ))
        .run();
    let got: Vec<_> = d
        .frontends
        .iter()
        .map(|f| (f.name.as_str(), f.port, f.proto, f.backends[0].port))
        .collect();
    assert_eq!(
        got,
        [
            ("Service/web/web/203.0.113.10:8080/tcp", 8080, 6, 8080),
            ("Service/web/web/203.0.113.10:5353/udp", 5353, 17, 5353),
        ]
    );
    assert_eq!(report(&d), (State::Applied, String::new()));
}

#[test]
fn annotations_outside_the_listed_namespaces_and_malformed_ones_are_refused() {
    let d = World::new()
        .service(annotated("other", "203.0.113.10:8080=http"))
        .run();
    assert_eq!(
        report(&d),
        (
            State::Refused,
            "hairpin.dev/frontends is not honoured in namespace other: it is not in kubernetes.annotationNamespaces".into()
        )
    );
    let d = World::new()
        .service(annotated("web", "203.0.113.10=http"))
        .run();
    assert_eq!(
        report(&d).1,
        "malformed hairpin.dev/frontends: entry 1: \"203.0.113.10\" is not ADDRESS:PORT (IPv6 in brackets: [2001:db8::1]:80)"
    );
    assert!(d.frontends.is_empty());
}

#[test]
fn the_file_and_then_the_oldest_object_win_a_frontend() {
    let mut w = web_world()
        .redirect(redirect(
            "newer",
            "203.0.113.10",
            to_service(json!("http")),
            json!({}),
        ))
        .service(annotated("web", "203.0.113.11:8080=http"));
    let mut older = redirect(
        "older",
        "203.0.113.10",
        to_service(json!("http")),
        json!({}),
    );
    older["metadata"]["creationTimestamp"] = json!("2025-06-01T00:00:00Z");
    w = w.redirect(older);
    w.file.push(Frontend {
        name: "registry/8080/tcp".into(),
        source: "hairpin.yaml:3".into(),
        addr: "203.0.113.11".parse().unwrap(),
        port: 8080,
        proto: 6,
        backends: Vec::new(),
    });
    let d = w.run();
    let names: Vec<_> = d.frontends.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["HairpinRedirect/older/8080/tcp"]);
    let msgs: Vec<_> = d
        .reports
        .iter()
        .map(|r| (r.source.to_string(), r.state, r.message.as_str()))
        .collect();
    assert_eq!(
        msgs,
        [
            ("HairpinRedirect/older".to_string(), State::Applied, ""),
            (
                "HairpinRedirect/newer".to_string(),
                State::Refused,
                "203.0.113.10:8080 is taken by HairpinRedirect/older"
            ),
            (
                "Service/web/web".to_string(),
                State::Refused,
                "203.0.113.11:8080 is taken by the file's registry/8080/tcp"
            ),
        ]
    );
}

#[test]
fn options_the_datapath_does_not_serve_yet_are_said() {
    let d = web_world()
        .redirect(redirect(
            "web",
            "203.0.113.10",
            to_service(json!("http")),
            json!({"skipRedirectFromBackend": true, "whenNoBackend": "reject"}),
        ))
        .run();
    assert_eq!(d.frontends.len(), 1);
    assert_eq!(
        report(&d),
        (
            State::Applied,
            "skipRedirectFromBackend is not served yet: backends are redirected too; \
             whenNoBackend: reject is not served yet: without a backend, clients pass through"
                .into()
        )
    );
}
