//! A reload that changes the `kubernetes` section: what the file allows the
//! cluster is enforced at once, Kubernetes mode goes off and comes back, and
//! the file's own redirects are never disturbed.

use std::{fs, time::Duration};

use serde_json::json;

use crate::{
    degraded::eventually,
    kubernetes::{answer, cluster_config, API, B1},
    require_privileged,
    support::{apiserver::ApiServer, lab::Lab},
};

const CLUSTER_URL: &str = "http://203.0.113.10:8080/";
const FILE_URL: &str = "http://203.0.113.10:8081/";

const FILE_REDIRECT: &str = r#"
redirects:
  - name: registry
    frontend: 203.0.113.10
    ports: [{ port: 8081, protocol: TCP, targetPort: 80 }]
    backends: [{ ip: 198.51.100.67 }]
"#;

/// Two redirects of 157 backends of weight 256 each: within a frontend's
/// 65,535 slots, beyond the maps' 65,536 together.
fn beyond_the_backend_slots() -> String {
    let mut out = String::new();
    for port in [9001, 9002] {
        out += &format!(
            "  - name: wide{port}\n    frontend: 203.0.113.10\n    \
             ports: [{{ port: {port}, protocol: TCP, targetPort: 80 }}]\n    backends:\n"
        );
        for i in 1..=157 {
            out += &format!("      - {{ ip: 198.51.100.{i}, weight: 256 }}\n");
        }
    }
    out
}

#[test]
fn a_reload_of_the_kubernetes_section_applies_at_once_and_spares_the_files_redirects() {
    require_privileged!();
    let lab = Lab::up();
    let mut api = ApiServer::start(&lab.ns("rtr"), API.parse().unwrap());
    api.apply(json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"namespace": "web", "name": "web"},
           "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 80}]}}));
    api.apply(
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"namespace": "web", "name": "web-x1",
                        "labels": {"kubernetes.io/service-name": "web"}},
           "addressType": "IPv4",
           "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
           "endpoints": [{"addresses": [B1.0], "nodeName": B1.1,
                          "conditions": {"ready": true}}]}),
    );
    api.apply(
        json!({"apiVersion": "hairpin.dev/v1alpha1", "kind": "HairpinRedirect",
           "metadata": {"name": "web"},
           "spec": {"frontend": {"address": "203.0.113.10", "toPorts": [{"port": 8080}]},
                    "backend": {"service": {"namespace": "web", "name": "web"},
                                "toPorts": [{"port": "http"}]}}}),
    );
    let cluster = cluster_config(&lab, &api, "n1", "[]", "{ enabled: false }");
    let with_cluster = format!("{cluster}{FILE_REDIRECT}");
    let agent = lab.agent_with("n1", &with_cluster, &["--node-name", "n1"]);
    let mut reloads = 0;
    let mut reload = |config: &str| {
        fs::write(&agent.config, config).expect("write the configuration");
        reloads += 1;
        agent.wait_for_count("configuration reloaded", reloads, Duration::from_secs(10));
    };
    let clients = ["n1-c1", "n1"];
    let all = |url: &str, who: &str| clients.iter().all(|ns| answer(&lab, ns, url) == who);
    eventually(10, "the cluster's redirect is served", || {
        all(CLUSTER_URL, "b1") && all(FILE_URL, "b2")
    });

    // The file no longer allows the frontend: it goes, and says why.
    reload(&with_cluster.replace("[203.0.113.0/24]", "[198.51.100.128/25]"));
    eventually(5, "a frontend the file no longer allows goes", || {
        all(CLUSTER_URL, "")
    });
    assert!(all(FILE_URL, "b2"), "the file's redirect stays");
    let list = lab.hairpin("n1", &["list"]);
    assert!(!list.contains("203.0.113.10:8080"), "{list}");

    reload(&with_cluster);
    eventually(5, "allowed again, it is served again", || {
        all(CLUSTER_URL, "b1")
    });

    // A reload that check passes and the maps cannot hold (more backend
    // slots than they have) is refused whole: the allow-list it would
    // narrow too stays as it was, and so does every frontend.
    let refused = format!(
        "{}{}",
        with_cluster.replace("[203.0.113.0/24]", "[198.51.100.128/25]"),
        beyond_the_backend_slots()
    );
    fs::write(&agent.config, refused).expect("write the configuration");
    agent.wait_for_log("reload refused", Duration::from_secs(20));
    // The cluster is compared with what the file allows at every change.
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        all(CLUSTER_URL, "b1") && all(FILE_URL, "b2"),
        "a refused reload changes nothing"
    );
    let list = lab.hairpin("n1", &["list"]);
    assert!(
        list.contains("203.0.113.10:8080") && !list.contains(":9001"),
        "{list}"
    );

    // Kubernetes mode off: the cluster's frontends go, the file's stay.
    let without = lab.hairpin("n1", &["status"]);
    assert!(without.contains("connected"), "status while on:\n{without}");
    reload(&format!(
        "interfaces: {{ uplink: auto, pods: [\"veth*\"] }}\nsocket: {{ enabled: false }}\n{FILE_REDIRECT}"
    ));
    eventually(
        5,
        "kubernetes mode off removes the cluster's frontends",
        || all(CLUSTER_URL, ""),
    );
    assert!(all(FILE_URL, "b2"), "the file's redirect stays");

    // And on again: the cluster's redirect comes back.
    reload(&with_cluster);
    eventually(10, "kubernetes mode on again", || all(CLUSTER_URL, "b1"));
    assert!(all(FILE_URL, "b2"), "the file's redirect stays");
    api.stop();
}
