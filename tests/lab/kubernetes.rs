//! Kubernetes mode end to end: the agents of both nodes follow an API
//! server of the test's own (tests/support/apiserver/, on the router's
//! LAN address) and redirect the frontend to wherever the Service's
//! EndpointSlice says its pod is.

use std::{fs, net::SocketAddr, time::Duration};

use serde_json::{json, Value};

use crate::{
    degraded::eventually,
    require_privileged,
    support::{apiserver::ApiServer, lab::Lab},
    transfers::{assert_same, download, finish_download, serve_file, COMPLETE},
};

pub const API: &str = "192.0.2.1:6443";
pub const URL: &str = "http://203.0.113.10:8080/";
/// The backend pods: b1 on n1, b2 on n2.
pub const B1: (&str, &str) = ("198.51.100.2", "n1");
pub const B2: (&str, &str) = ("198.51.100.67", "n2");

fn config(lab: &Lab, api: &ApiServer, node: &str) -> String {
    config_with(lab, api, node, "[]")
}

/// With the namespaces whose annotations are honoured.
fn config_with(lab: &Lab, api: &ApiServer, node: &str, namespaces: &str) -> String {
    cluster_config(lab, api, node, namespaces, "{ enabled: false }")
}

/// With the socket path's settings too.
pub fn cluster_config(
    lab: &Lab,
    api: &ApiServer,
    node: &str,
    namespaces: &str,
    socket: &str,
) -> String {
    let kubeconfig = lab.run_dir().join("kubeconfig");
    fs::write(&kubeconfig, api.kubeconfig()).expect("kubeconfig");
    format!(
        r#"
interfaces: {{ uplink: auto, pods: ["veth*"] }}
socket: {socket}
kubernetes:
  kubeconfig: {kubeconfig}
  allowedFrontends: [203.0.113.0/24]
  annotationNamespaces: {namespaces}
  stateFile: {state}
"#,
        kubeconfig = kubeconfig.display(),
        state = lab.run_dir().join(format!("{node}-cluster.json")).display()
    )
}

pub fn service() -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"namespace": "web", "name": "web"},
           "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 80}]}})
}

/// The Service's one EndpointSlice, with its pod at `(addr, node)`.
pub fn slice((addr, node): (&str, &str)) -> Value {
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"namespace": "web", "name": "web-x1",
                        "labels": {"kubernetes.io/service-name": "web"}},
           "addressType": "IPv4",
           "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
           "endpoints": [{"addresses": [addr], "nodeName": node,
                          "conditions": {"ready": true}}]})
}

pub fn redirect() -> Value {
    json!({"apiVersion": "hairpin.dev/v1alpha1", "kind": "HairpinRedirect",
           "metadata": {"name": "web"},
           "spec": {"frontend": {"address": "203.0.113.10", "toPorts": [{"port": 8080}]},
                    "backend": {"service": {"namespace": "web", "name": "web"},
                                "toPorts": [{"port": "http"}]}}})
}

/// A configuration without its `kubernetes.kubeconfig` line.
pub fn without_kubeconfig(config: &str) -> String {
    config
        .lines()
        .filter(|l| !l.trim_start().starts_with("kubeconfig:"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A redirect of 203.0.113.10:`port` to the pods labelled `run: <run>` on
/// each node, at their `backend_port`.
pub fn local_redirect(name: &str, port: u16, run: &str, backend_port: Value) -> Value {
    json!({"apiVersion": "hairpin.dev/v1alpha1", "kind": "HairpinRedirect",
           "metadata": {"name": name},
           "spec": {"frontend": {"address": "203.0.113.10", "toPorts": [{"port": port}]},
                    "backend": {"localEndpointSelector": {"namespace": "default",
                                                          "matchLabels": {"run": run}},
                                "toPorts": [{"port": backend_port}]}}})
}

/// Whether an Event of redirect `name` has this reason and note.
fn event_of(api: &ApiServer, name: &str, reason: &str, note: &str) -> bool {
    api.events()
        .iter()
        .any(|e| e["regarding"]["name"] == name && e["reason"] == reason && e["note"] == note)
}

pub fn metrics(lab: &Lab) -> String {
    lab.sh_ok("n1", "curl -s http://127.0.0.1:9469/metrics")
}

/// Clients of both nodes, pods and host processes, and the backend pod b1
/// itself.
const CLIENTS: [&str; 5] = ["n1-c1", "n1", "n2-c2", "n2", "n1-b1"];

/// Whether every client gets its answer from `who` (a failure is a no).
fn all_reach(lab: &Lab, who: &str) -> bool {
    CLIENTS.iter().all(|ns| answer(lab, ns, URL) == who)
}

/// Who answers `url` from `ns`; empty when nobody does.
pub fn answer(lab: &Lab, ns: &str, url: &str) -> String {
    let out = lab.sh(ns, &format!("curl -s --max-time 2 {url}"));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A backend pod of this lab, labelled `run: nginx`, ready.
pub fn pod(name: &str, (addr, node): (&str, &str)) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"namespace": "default", "name": name, "labels": {"run": "nginx"}},
           "spec": {"nodeName": node, "containers": [{"name": "nginx",
                    "ports": [{"name": "http", "containerPort": 80}]}]},
           "status": {"phase": "Running", "podIPs": [{"ip": addr}],
                      "conditions": [{"type": "Ready", "status": "True"}]}})
}

#[test]
fn backends_follow_their_pod_and_an_absent_api_server_changes_nothing() {
    require_privileged!();
    let lab = Lab::up();
    let addr: SocketAddr = API.parse().unwrap();
    let mut api = ApiServer::start(&lab.ns("rtr"), addr);
    api.apply(service());
    api.apply(slice(B1));
    api.apply(redirect());
    let mut agents: Vec<_> = ["n1", "n2"]
        .iter()
        .map(|n| lab.agent_with(n, &config(&lab, &api, n), &["--node-name", n]))
        .collect();
    eventually(10, "every client reaches b1 through the frontend", || {
        all_reach(&lab, "b1")
    });
    let list: Vec<Value> =
        serde_json::from_str(&lab.hairpin("n1", &["list", "--output", "json"])).expect("list");
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(
        list[0]["source"], "HairpinRedirect/web",
        "list says where it comes from"
    );
    assert_eq!(list[0]["backends"][0][0], "198.51.100.2:80");
    assert!(metrics(&lab).contains("hairpin_kubernetes_connected 1"));
    for agent in &agents {
        assert_eq!(
            agent
                .log_text()
                .matches("the cluster's objects are listed; serving them")
                .count(),
            1,
            "said once, when every kind is listed:\n{}",
            agent.log_text()
        );
    }
    for node in ["n1", "n2"] {
        let note = format!("node {node}: applied");
        eventually(5, "each node says the redirect is applied", || {
            event_of(&api, "web", "Applied", &note)
        });
    }

    // A redirect outside allowedFrontends is refused, and each node says why.
    let mut outside = redirect();
    outside["metadata"]["name"] = json!("outside");
    outside["spec"]["frontend"]["address"] = json!("198.51.100.99");
    api.apply(outside);
    let note = "node n2: 198.51.100.99 is outside kubernetes.allowedFrontends (203.0.113.0/24)";
    eventually(5, "the refusal is an Event", || {
        event_of(&api, "outside", "Refused", note)
    });
    api.delete("HairpinRedirect", "", "outside");

    // One that does not read as a HairpinRedirect (a port out of range,
    // which a CRD without bounds lets through) is refused alone: the list
    // still reads, and the valid redirect is served.
    let mut bad = redirect();
    bad["metadata"]["name"] = json!("bad");
    bad["spec"]["frontend"]["address"] = json!("203.0.113.12");
    bad["spec"]["backend"]["toPorts"][0]["port"] = json!(70000);
    api.apply(bad);
    eventually(5, "the malformed redirect's refusal is an Event", || {
        api.events().iter().any(|e| {
            e["regarding"]["name"] == "bad"
                && e["reason"] == "Refused"
                && e["note"].as_str().is_some_and(|n| {
                    n.contains("not a HairpinRedirect: spec.backend.toPorts[0].port")
                })
        })
    });
    assert!(all_reach(&lab, "b1"), "the valid redirect is served");
    api.delete("HairpinRedirect", "", "bad");

    // The pod moves: recreated on n2 with a new address.
    api.apply(slice(B2));
    eventually(5, "every client follows the pod to b2", || {
        all_reach(&lab, "b2")
    });

    // The API server goes away: nothing changes; a change made meanwhile
    // is applied once it is back.
    let data = serve_file(&lab, "n2-b2", "big.bin", 8);
    let (transfer, got) = download(&lab, "n1-c1", "big.bin", 8080, "2M");
    std::thread::sleep(Duration::from_secs(1));
    api.stop();
    assert_eq!(
        finish_download(transfer, Duration::from_secs(30)),
        COMPLETE,
        "a transfer while the API server goes away"
    );
    assert_same(&got, &data, "the transfer while the API server goes away");
    assert!(
        all_reach(&lab, "b2"),
        "the last state is served without the API server"
    );
    eventually(10, "the agents say the API server is away", || {
        metrics(&lab).contains("hairpin_kubernetes_connected 0")
    });
    let status = lab.hairpin("n1", &["status"]);
    assert!(
        status.contains("kubernetes: not connected, serving the last known state"),
        "status: {status}"
    );
    assert!(
        status.contains("degraded: kubernetes api-server"),
        "status: {status}"
    );
    api.apply(slice(B1));
    assert!(
        all_reach(&lab, "b2"),
        "nothing changes while the API server is away"
    );
    api.restart();
    eventually(
        15,
        "the change waiting is applied after reconnecting",
        || all_reach(&lab, "b1"),
    );

    // A compacted history: the watch gets 410 Gone, relists, converges.
    api.compact();
    api.drop_connections();
    api.apply(slice(B2));
    eventually(15, "after 410 Gone the agent relists and converges", || {
        all_reach(&lab, "b2")
    });
    for a in &agents {
        assert!(
            a.log_text().contains("too old resource version"),
            "the agent was told 410 Gone"
        );
    }

    // An agent restarted while the API server is down serves what it last
    // knew from the cluster.
    api.stop();
    for a in &mut agents {
        a.stop(libc::SIGKILL);
        a.start();
    }
    assert!(
        all_reach(&lab, "b2"),
        "the last known redirects after a restart"
    );
    api.restart();
    api.delete("HairpinRedirect", "", "web");
    eventually(15, "a deleted redirect is removed", || {
        !lab.hairpin("n1", &["list", "--output", "json"])
            .contains("203.0.113.10")
    });
}

#[test]
fn local_pods_serve_their_own_node_and_an_annotation_comes_and_goes() {
    require_privileged!();
    let lab = Lab::up();
    let mut api = ApiServer::start(&lab.ns("rtr"), API.parse().unwrap());
    api.apply(pod("b1", B1));
    api.apply(pod("b2", B2));
    api.apply(local_redirect("nginx", 8080, "nginx", json!("http")));
    let _agents: Vec<_> = ["n1", "n2"]
        .iter()
        .map(|n| lab.agent_with(n, &config_with(&lab, &api, n, "[web]"), &["--node-name", n]))
        .collect();
    eventually(10, "each node's clients reach their own node's pod", || {
        ["n1-c1", "n1"]
            .iter()
            .all(|ns| answer(&lab, ns, URL) == "b1")
            && ["n2-c2", "n2"]
                .iter()
                .all(|ns| answer(&lab, ns, URL) == "b2")
    });

    // An annotation on a Service redirects another port to its endpoints.
    let url = "http://203.0.113.10:8081/";
    assert_eq!(
        answer(&lab, "n2-c2", url),
        "",
        "no NAT loopback before the annotation"
    );
    let mut svc = service();
    api.apply(slice(B1));
    svc["metadata"]["annotations"] = json!({"hairpin.dev/frontends": "203.0.113.10:8081=http"});
    api.apply(svc.clone());
    eventually(5, "every client reaches b1 through the annotation", || {
        CLIENTS.iter().all(|ns| answer(&lab, ns, url) == "b1")
    });
    svc["metadata"]["annotations"] = json!({});
    api.apply(svc);
    eventually(5, "the annotation removed, the frontend is gone", || {
        answer(&lab, "n2-c2", url).is_empty()
    });
    assert_eq!(
        answer(&lab, "n1-c1", URL),
        "b1",
        "the other redirect is untouched"
    );

    // Without a backend, clients reach the real address (a server of the
    // router's own here), as without hairpin; with one, the backend.
    let _router = lab.background(
        "rtr",
        "socat TCP-LISTEN:8082,bind=203.0.113.10,reuseaddr,fork SYSTEM:'echo HTTP/1.0 200 OK; echo; echo router'",
        "router-8082.txt",
    );
    let url = "http://203.0.113.10:8082/";
    let mut empty = local_redirect("empty", 8082, "none", json!(80));
    api.apply(empty.clone());
    eventually(5, "the frontend without backends is installed", || {
        lab.hairpin("n1", &["list"]).contains("203.0.113.10:8082")
    });
    eventually(5, "passThrough: clients reach the real address", || {
        ["n1-c1", "n2-c2", "n1"]
            .iter()
            .all(|ns| answer(&lab, ns, url) == "router")
    });
    empty["spec"]["backend"]["localEndpointSelector"]["matchLabels"] = json!({"run": "nginx"});
    api.apply(empty);
    eventually(5, "with backends, the redirect", || {
        answer(&lab, "n1-c1", url) == "b1" && answer(&lab, "n2-c2", url) == "b2"
    });
    api.stop();
}
