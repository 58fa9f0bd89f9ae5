//! A `HairpinRedirect`'s policies end to end: `whenNoBackend: reject`
//! refuses at once where `passThrough` reaches the real address (a server
//! of the router's own here, so that a refusal cannot be the router's), and
//! `skipRedirectFromBackend` sends a backend calling its own frontend to
//! the real address while every other client is redirected. Clients are
//! pods and host processes, on the TC path and on the socket path.

use std::path::PathBuf;

use serde_json::{json, Value};

use crate::{
    degraded::eventually,
    kubernetes::{
        answer, cluster_config, local_redirect, metrics, pod, without_kubeconfig, API, B1, B2,
    },
    require_privileged,
    support::{apiserver::ApiServer, lab::Lab},
};

const SKIP_URL: &str = "http://203.0.113.10:8083/";
const CLOSED_URL: &str = "http://203.0.113.10:8084/";

/// A client: a namespace, and the socket path's cgroup for host processes
/// that it serves.
struct Client {
    ns: &'static str,
    cgroup: Option<PathBuf>,
}

impl Client {
    fn sh(&self, lab: &Lab, cmd: &str) -> String {
        let out = match &self.cgroup {
            Some(cg) => lab.sh_in(cg, self.ns, cmd),
            None => lab.sh(self.ns, cmd),
        };
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// What a TCP client meets at `url`: the answer, `refused` or `failed`.
    fn tcp(&self, lab: &Lab, url: &str) -> String {
        self.sh(
            lab,
            &format!(
                "curl -s --max-time 3 {url} || {{ [ $? = 7 ] && echo refused || echo failed; }}"
            ),
        )
    }

    /// What a connected UDP socket meets at port 8084: the answer,
    /// `refused` or `timeout`.
    fn udp(&self, lab: &Lab) -> String {
        self.sh(lab, &format!("python3 -c \"{UDP_CLIENT}\""))
    }

    fn who(&self) -> String {
        match self.cgroup {
            Some(_) => format!("{} (socket path)", self.ns),
            None => self.ns.to_owned(),
        }
    }
}

const UDP_CLIENT: &str = "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.connect(('203.0.113.10', 8084))
s.send(b'ping')
try:
    print(s.recv(100).decode().strip())
except ConnectionRefusedError:
    print('refused')
except socket.timeout:
    print('timeout')
";

fn closed(when_no_backend: &str) -> Value {
    json!({"apiVersion": "hairpin.dev/v1alpha1", "kind": "HairpinRedirect",
        "metadata": {"name": "closed"},
        "spec": {"frontend": {"address": "203.0.113.10", "toPorts": [
                    {"port": 8084, "protocol": "TCP", "name": "web"},
                    {"port": 8084, "protocol": "UDP", "name": "dns"}]},
                 "backend": {"localEndpointSelector": {"namespace": "default",
                                                       "matchLabels": {"run": "none"}},
                             "toPorts": [{"port": 80, "protocol": "TCP", "name": "web"},
                                         {"port": 53, "protocol": "UDP", "name": "dns"}]},
                 "whenNoBackend": when_no_backend}})
}

#[test]
fn reject_refuses_at_once_and_a_backend_skipped_reaches_the_real_address() {
    require_privileged!();
    let lab = Lab::up();
    let mut api = ApiServer::start(&lab.ns("rtr"), API.parse().unwrap());
    api.apply(pod("b1", B1));
    api.apply(pod("b2", B2));
    let mut skip = local_redirect("skip", 8083, "nginx", json!("http"));
    skip["spec"]["skipRedirectFromBackend"] = json!(true);
    api.apply(skip);
    api.apply(closed("reject"));
    // The real address serves every port the test uses.
    let _router: Vec<_> = [
        "socat TCP-LISTEN:8083,bind=203.0.113.10,reuseaddr,fork SYSTEM:'echo HTTP/1.0 200 OK; echo; echo router'",
        "socat TCP-LISTEN:8084,bind=203.0.113.10,reuseaddr,fork SYSTEM:'echo HTTP/1.0 200 OK; echo; echo router'",
        "socat UDP4-RECVFROM:8084,bind=203.0.113.10,fork SYSTEM:'echo router'",
    ]
    .iter()
    .enumerate()
    .map(|(i, cmd)| lab.background("rtr", cmd, &format!("router-{i}.txt")))
    .collect();
    let kubeconfig = lab.run_dir().join("kubeconfig");
    let socket = format!("{{ scope: host, cgroup: {} }}", lab.cgroup("n1").display());
    let _agents = [
        lab.agent_with(
            "n1",
            &cluster_config(&lab, &api, "n1", "[]", &socket),
            &["--node-name", "n1"],
        ),
        // n2's kubeconfig comes from its command line.
        lab.agent_with(
            "n2",
            &without_kubeconfig(&cluster_config(
                &lab,
                &api,
                "n2",
                "[]",
                "{ enabled: false }",
            )),
            &[
                "--node-name",
                "n2",
                "--kubeconfig",
                kubeconfig.to_str().unwrap(),
            ],
        ),
    ];
    let client = |ns: &'static str| Client { ns, cgroup: None };
    let clients = [
        client("n1-c1"),
        client("n2-c2"),
        client("n1"),
        Client {
            ns: "n1",
            cgroup: Some(lab.cgroup("n1")),
        },
    ];

    // skipRedirectFromBackend: the backends reach the router, everyone
    // else their node's backend.
    eventually(10, "clients reach their node's backend", || {
        clients.iter().all(|c| {
            let want = if c.ns.starts_with("n2") { "b2" } else { "b1" };
            c.tcp(&lab, SKIP_URL) == want
        })
    });
    for backend in ["n1-b1", "n2-b2"] {
        // Retried: the router's answer is a process forked per connection,
        // slow on a busy machine.
        eventually(
            10,
            &format!("backend {backend} calling its frontend reaches the real address"),
            || answer(&lab, backend, SKIP_URL) == "router",
        );
    }

    let list: Vec<Value> =
        serde_json::from_str(&lab.hairpin("n1", &["list", "--output", "json"])).expect("list json");
    let policy = |frontend: &str| {
        list.iter()
            .find(|f| f["frontend"] == frontend)
            .map(|f| f["policy"].clone())
            .unwrap_or_else(|| panic!("{frontend} in {list:?}"))
    };
    assert_eq!(policy("203.0.113.10:8083/TCP"), json!(["skips-backends"]));
    for proto in ["TCP", "UDP"] {
        assert_eq!(
            policy(&format!("203.0.113.10:8084/{proto}")),
            json!(["refuses-without-backends"])
        );
    }

    // whenNoBackend: reject refuses TCP and UDP at once.
    for c in &clients {
        assert_eq!(c.tcp(&lab, CLOSED_URL), "refused", "TCP from {}", c.who());
        assert_eq!(c.udp(&lab), "refused", "UDP from {}", c.who());
    }
    let refused = metrics(&lab)
        .lines()
        .find(|l| l.contains("counter=\"refused\""))
        .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .expect("the refused counter in the metrics");
    assert!(refused >= 6, "n1 counted its refusals: {refused}");
    let table = lab.hairpin("n1", &["list"]);
    assert!(
        table.contains(&format!("refused={refused}")),
        "list shows the counter: {table}"
    );

    // passThrough instead: the same clients reach the real address.
    api.apply(closed("passThrough"));
    eventually(5, "passThrough: clients reach the router", || {
        clients
            .iter()
            .all(|c| c.tcp(&lab, CLOSED_URL) == "router" && c.udp(&lab) == "router")
    });
    api.stop();
}
