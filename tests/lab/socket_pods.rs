//! The socket path per pod: the processes of the cgroups chosen for it
//! (named by the file's patterns, or the pods the cluster leaves on it) are
//! translated at `connect` and `sendmsg`, so nothing of theirs carries the
//! frontend past their interface; every other process of the same pod
//! keeps the TC path. Beside both kinds of CNI.

use std::{net::SocketAddr, time::Duration};

use serde_json::{json, Value};

use crate::{
    degraded::eventually,
    doctor::{check, doctor},
    kubernetes::{cluster_config, redirect, service, slice, API, B1},
    require_privileged,
    support::{
        apiserver::ApiServer,
        lab::{Cni, Lab, FRONTEND},
    },
};

const FRONTEND6: &str = "2001:db8:0:113::10";

/// Both families, TCP and UDP; the socket path with its `socket:` line.
fn config(socket: &str) -> String {
    format!(
        r#"
redirects:
  - name: web
    frontend: 203.0.113.10
    ports:
      - {{ port: 8080, protocol: TCP, targetPort: 80 }}
      - {{ port: 5353, protocol: UDP, targetPort: 53 }}
    backends: [{{ ip: 198.51.100.2 }}]
  - name: web6
    frontend: 2001:db8:0:113::10
    ports:
      - {{ port: 8080, protocol: TCP, targetPort: 80 }}
      - {{ port: 5353, protocol: UDP, targetPort: 53 }}
    backends: [{{ ip: "2001:db8:0:51::2" }}]
interfaces: {{ uplink: auto, pods: ["veth*"] }}
socket: {socket}
"#
    )
}

/// A UDP exchange with the frontend, connected (`send`) or not
/// (`sendto`): the answer and the address it came from (arguments:
/// frontend, connected or not).
const UDP: &str = r#"
import socket, sys
addr, connected = sys.argv[1], sys.argv[2] == "connected"
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
if connected:
    s.connect((addr, 5353)); s.send(b"ping")
else:
    s.sendto(b"ping", (addr, 5353))
data, peer = s.recvfrom(100)
print(data.decode().strip(), peer[0])
"#;

/// What a client in pod c1's namespace, inside `cgroup`, gets from each
/// frontend: TCP (the answer and getpeername's address), UDP connected and
/// not (the answer and recvmsg's address).
fn answers(lab: &Lab, cgroup: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for (url, addr) in [
        (format!("http://{FRONTEND}:8080/"), FRONTEND),
        (format!("-g http://[{FRONTEND6}]:8080/"), FRONTEND6),
    ] {
        let curl = format!("curl -s --max-time 5 -w ' %{{remote_ip}}' {url}");
        out.push(text(lab.sh_in(cgroup, "n1-c1", &curl)).replace('\n', ""));
        for how in ["connected", "unconnected"] {
            let udp = format!("python3 -c '{UDP}' {addr} {how}");
            out.push(text(lab.sh_in(cgroup, "n1-c1", &udp)));
        }
    }
    out
}

fn text(o: std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

/// Every answer from b1, each from the frontend's address.
fn served_from_the_frontend() -> Vec<String> {
    let mut want = Vec::new();
    for addr in [FRONTEND, FRONTEND6] {
        want.push(format!("b1 {addr}"));
        want.push(format!("b1 ping {addr}"));
        want.push(format!("b1 ping {addr}"));
    }
    want
}

/// What pod c1 sent to either frontend, as vethc1 took it from the pod
/// (before any program ran), while `f` ran.
fn frontend_packets_from_c1(lab: &Lab, f: impl FnOnce()) -> usize {
    let capture = lab.background(
        "n1",
        &format!("tcpdump -n -l -Q in -i vethc1 'dst host {FRONTEND} or dst host {FRONTEND6}'"),
        "c1-to-frontends.txt",
    );
    std::thread::sleep(Duration::from_millis(500));
    f();
    std::thread::sleep(Duration::from_millis(500));
    capture
        .finish()
        .lines()
        .filter(|l| l.contains(" > "))
        .count()
}

fn cgroups_chosen_by_the_file(cni: Cni) {
    let lab = Lab::up_beside(cni);
    let node = lab.cgroup("n1");
    let chosen = lab.cgroup_under("n1", "kubepods/pod-c1");
    let other = lab.cgroup_under("n1", "mesh/pod-c1");
    let socket = format!(
        "{{ scope: host, cgroup: {}, cgroups: [\"kubepods/*\"] }}",
        node.display()
    );
    let _n1 = lab.agent("n1", &config(&socket));
    let _n2 = lab.agent("n2", &config("{ enabled: false }"));
    let status = lab.hairpin("n1", &["status"]);
    assert!(
        status.contains("socket path: cgroup kubepods/pod-c1 (socket.cgroups)")
            && !status.contains("mesh/pod-c1"),
        "status names the chosen cgroup alone:\n{status}"
    );
    let mut got = Vec::new();
    let seen = frontend_packets_from_c1(&lab, || got = answers(&lab, &chosen));
    assert_eq!(got, served_from_the_frontend(), "chosen: {cni:?}");
    assert_eq!(
        seen, 0,
        "a chosen cgroup's packets leave the pod for the backend itself"
    );
    let seen = frontend_packets_from_c1(&lab, || got = answers(&lab, &other));
    assert_eq!(got, served_from_the_frontend(), "not chosen: {cni:?}");
    assert!(
        seen >= 6,
        "the same pod's other cgroup keeps the TC path: {seen} packets to the frontends"
    );
}

#[test]
fn cgroups_the_file_chooses_take_the_socket_path_beside_an_iptables_cni() {
    require_privileged!();
    cgroups_chosen_by_the_file(Cni::Iptables);
}

#[test]
fn cgroups_the_file_chooses_take_the_socket_path_beside_an_ebpf_cni() {
    require_privileged!();
    cgroups_chosen_by_the_file(Cni::Ebpf);
}

/// A pod of n1 with `uid`, its metadata merged with `meta`.
fn pod(name: &str, uid: &str, meta: Value) -> Value {
    let mut p = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"namespace": "shop", "name": name, "uid": uid},
        "spec": {"nodeName": "n1", "containers": [{"name": "app"}]},
        "status": {"phase": "Running"}});
    for (k, v) in meta.as_object().expect("an object") {
        p["metadata"][k] = v.clone();
    }
    p
}

/// The cgroup the kubelet's systemd driver gives a burstable pod.
fn pod_cgroup(lab: &Lab, uid: &str) -> std::path::PathBuf {
    let uid = uid.replace('-', "_");
    lab.cgroup_under(
        "n1",
        &format!(
            "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid}.slice/cri-containerd-app.scope"
        ),
    )
}

fn pods_the_cluster_chooses(cni: Cni) {
    let lab = Lab::up_beside(cni);
    let api = ApiServer::start(&lab.ns("rtr"), API.parse::<SocketAddr>().unwrap());
    api.apply(service());
    api.apply(slice(B1));
    api.apply(redirect());
    api.apply(json!({"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": "shop"}}));
    let plain = ("plain", "0a0a0a0a-0000-0000-0000-000000000001");
    let sidecar = ("sidecar", "0a0a0a0a-0000-0000-0000-000000000002");
    let off = ("off", "0a0a0a0a-0000-0000-0000-000000000003");
    api.apply(pod(plain.0, plain.1, json!({})));
    api.apply(pod(
        sidecar.0,
        sidecar.1,
        json!({"annotations": {"sidecar.istio.io/status": "{\"containers\":[\"istio-proxy\"]}"}}),
    ));
    api.apply(pod(
        off.0,
        off.1,
        json!({"annotations": {"hairpin.dev/socket": "off"}}),
    ));
    let cgroups = [plain, sidecar, off].map(|(_, uid)| pod_cgroup(&lab, uid));
    let socket = format!("{{ scope: host, cgroup: {} }}", lab.cgroup("n1").display());
    let config = cluster_config(&lab, &api, "n1", "[]", &socket);
    let n1 = lab.agent_with("n1", &config, &["--node-name", "n1"]);
    let url = "http://203.0.113.10:8080/";
    let ask = |cg: &std::path::Path| {
        text(lab.sh_in(
            cg,
            "n1-c1",
            &format!("curl -s --max-time 5 -w ' %{{remote_ip}}' {url}"),
        ))
        .replace('\n', "")
    };
    eventually(20, "the plain pod takes the socket path", || {
        lab.hairpin("n1", &["status"])
            .contains("pod shop/plain: socket path: the default")
    });
    let status = lab.hairpin("n1", &["status"]);
    let list = lab.hairpin("n1", &["list"]);
    for line in [
        "pod shop/sidecar: TC path: Istio's sidecar intercepts it",
        "pod shop/off: TC path: the pod's hairpin.dev/socket: off",
    ] {
        assert!(status.contains(line), "{line}:\n{status}");
        assert!(list.contains(line), "{line}:\n{list}");
    }
    let pin_dir = n1.pin_dir.display().to_string();
    let config_path = n1.config.display().to_string();
    let (checks, _) = doctor(
        &lab,
        "n1",
        &["--config", &config_path, "--pin-dir", &pin_dir],
    );
    assert_eq!(
        check(&checks, "socket pods"),
        (
            "ok",
            "1 pods on the socket path, 2 on the TC path; 1 cgroups chosen \
             (shop/off: the pod's hairpin.dev/socket: off; \
             shop/sidecar: Istio's sidecar intercepts it)"
        )
    );
    assert_eq!(check(&checks, "socket ends").0, "ok", "{checks:?}");
    for (cg, socket_path) in cgroups.iter().zip([true, false, false]) {
        let mut got = String::new();
        let seen = frontend_packets_from_c1(&lab, || got = ask(cg));
        assert_eq!(got, "b1 203.0.113.10", "{}: {cni:?}", cg.display());
        assert_eq!(seen == 0, socket_path, "{}: {seen} packets", cg.display());
    }

    // A pod that opts out later leaves the socket path for new sockets.
    api.apply(pod(
        plain.0,
        plain.1,
        json!({"annotations": {"hairpin.dev/socket": "off"}}),
    ));
    eventually(10, "the pod's word is heard", || {
        lab.hairpin("n1", &["status"])
            .contains("pod shop/plain: TC path: the pod's hairpin.dev/socket: off")
    });
    let seen = frontend_packets_from_c1(&lab, || assert_eq!(ask(&cgroups[0]), "b1 203.0.113.10"));
    assert!(seen > 0, "the pod is on the TC path now");
}

#[test]
fn pods_the_cluster_leaves_to_the_socket_path_take_it_beside_an_iptables_cni() {
    require_privileged!();
    pods_the_cluster_chooses(Cni::Iptables);
}

#[test]
fn pods_the_cluster_leaves_to_the_socket_path_take_it_beside_an_ebpf_cni() {
    require_privileged!();
    pods_the_cluster_chooses(Cni::Ebpf);
}
