//! The socket-level path: the nodes' own processes, in a cgroup of the
//! test's, reach the frontends through cgroup hooks, from the same maps as
//! the TC path, and are never translated twice.

use std::path::Path;

use crate::{
    require_privileged,
    support::lab::{Lab, FRONTEND},
};

/// The lab's frontends plus one whose backend listens on node n1's own
/// address (a hostNetwork backend), with the socket path on `cgroup`.
fn config(cgroup: &Path) -> String {
    format!(
        r#"
redirects:
  - name: web
    frontend: 203.0.113.10
    ports:
      - {{ port: 8080, protocol: TCP, targetPort: 80 }}
      - {{ port: 5353, protocol: UDP, targetPort: 53 }}
    backends: [{{ ip: 198.51.100.2 }}]
  - name: hostnet
    frontend: 203.0.113.10
    ports: [{{ port: 8095, protocol: TCP, targetPort: 8000 }}]
    backends: [{{ ip: 192.0.2.11 }}]
interfaces: {{ uplink: auto, pods: ["veth*"] }}
socket: {{ scope: host, cgroup: {} }}
"#,
        cgroup.display()
    )
}

/// Sends one datagram from an unconnected socket and prints who answered.
const SENDTO: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(b"ping", (sys.argv[1], int(sys.argv[2])))
data, peer = s.recvfrom(100)
print("%s:%d %s" % (peer[0], peer[1], data.decode().strip()))
"#;

/// Per frontend of `hairpin list`: (TC flows, socket connects, socket datagrams).
fn counts(lab: &Lab, node: &str, frontend: &str) -> (u64, u64, u64) {
    let list: Vec<serde_json::Value> =
        serde_json::from_str(&lab.hairpin(node, &["list", "--output", "json"])).expect("list json");
    let f = list
        .iter()
        .find(|f| f["frontend"] == frontend)
        .unwrap_or_else(|| panic!("{frontend} in {list:?}"));
    assert_eq!(
        f["paths"],
        serde_json::json!(["tc", "socket"]),
        "paths of {frontend}"
    );
    let n = |k: &str| f["stats"][k].as_u64().expect("a count");
    (n("flows"), n("sock_connects"), n("sock_datagrams"))
}

fn out(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

#[test]
fn host_processes_reach_the_frontends_through_the_socket_path_only() {
    require_privileged!();
    let lab = Lab::up();
    // A hostNetwork backend: a server in node n1's own namespace.
    let www = lab.run_dir().join("hostnet");
    std::fs::create_dir_all(&www).expect("www");
    std::fs::write(www.join("index.html"), "hostnet\n").expect("index");
    let _hostnet = lab.background(
        "n1",
        &format!(
            "python3 -m http.server 8000 --bind 192.0.2.11 --directory {}",
            www.display()
        ),
        "hostnet.txt",
    );
    lab.wait_listening("n1", 8000);
    let cgroups = [("n1", lab.cgroup("n1")), ("n2", lab.cgroup("n2"))];
    let _agents: Vec<_> = cgroups
        .iter()
        .map(|(n, cg)| lab.agent(n, &config(cg)))
        .collect();

    for (node, cg) in &cgroups {
        let tcp = lab.sh_in(cg, node, &format!("curl -s --max-time 3 -w ' %{{remote_ip}}:%{{remote_port}}' http://{FRONTEND}:8080/"));
        assert_eq!(
            out(&tcp),
            "b1\n 203.0.113.10:8080",
            "TCP from host {node}; getpeername shows the frontend"
        );
        let dgram = lab.sh_in(cg, node, &format!("python3 -c '{SENDTO}' {FRONTEND} 5353"));
        assert_eq!(
            out(&dgram),
            "203.0.113.10:5353 b1 ping",
            "unconnected UDP from host {node} is answered from the frontend: {dgram:?}"
        );
        let connected = lab.sh_in(
            cg,
            node,
            &format!("echo ping | timeout 5 socat -T2 - UDP4:{FRONTEND}:5353"),
        );
        assert_eq!(out(&connected), "b1 ping", "connected UDP from host {node}");
        let hostnet = lab.sh_in(
            cg,
            node,
            &format!("curl -s --max-time 3 http://{FRONTEND}:8095/"),
        );
        assert_eq!(
            out(&hostnet),
            "hostnet",
            "a backend on node n1's own address, from host {node}"
        );
    }
    for pod in ["n1-c1", "n2-c2"] {
        let got = lab.sh_ok(
            pod,
            &format!("curl -s --max-time 3 http://{FRONTEND}:8080/"),
        );
        assert_eq!(
            got.trim(),
            "b1",
            "pod {pod} beside the socket path, through TC"
        );
    }
    for (node, _) in &cgroups {
        assert_eq!(
            counts(&lab, node, "203.0.113.10:8080/TCP"),
            (1, 1, 0),
            "TCP on {node}: the host's connect on the socket path, the pod's flow on TC"
        );
        assert_eq!(
            counts(&lab, node, "203.0.113.10:5353/UDP"),
            (0, 1, 1),
            "UDP on {node}: one connect, one datagram"
        );
        assert_eq!(
            counts(&lab, node, "203.0.113.10:8095/TCP"),
            (0, 1, 0),
            "hostnet on {node}: socket path only"
        );
    }

    // Outside the cgroup, or in another namespace (scope host), the TC
    // path serves instead.
    assert_eq!(
        lab.sh_ok(
            "n1",
            &format!("curl -s --max-time 3 http://{FRONTEND}:8080/")
        )
        .trim(),
        "b1"
    );
    assert_eq!(
        counts(&lab, "n1", "203.0.113.10:8080/TCP"),
        (2, 1, 0),
        "a host process in another cgroup goes through TC"
    );
    let pod = lab.sh_in(
        &cgroups[0].1,
        "n1-c1",
        &format!("curl -s --max-time 3 http://{FRONTEND}:8080/"),
    );
    assert_eq!(out(&pod), "b1", "a pod process in the cgroup: {pod:?}");
    assert_eq!(
        counts(&lab, "n1", "203.0.113.10:8080/TCP"),
        (3, 1, 0),
        "scope host leaves the pod's socket to TC"
    );
}

#[test]
fn the_socket_path_outlives_the_agent_and_detach_removes_it() {
    require_privileged!();
    let lab = Lab::up();
    let cg = lab.cgroup("n1");
    let mut agent = lab.agent("n1", &config(&cg));
    agent.stop(libc::SIGKILL);
    let tcp = lab.sh_in(
        &cg,
        "n1",
        &format!("curl -s --max-time 3 -w ' %{{remote_ip}}' http://{FRONTEND}:8080/"),
    );
    assert_eq!(out(&tcp), "b1\n 203.0.113.10", "served after kill -9");
    agent.start();
    assert_eq!(
        counts(&lab, "n1", "203.0.113.10:8080/TCP"),
        (0, 1, 0),
        "the restarted agent adopted the socket path"
    );
    let tcp = lab.sh_in(
        &cg,
        "n1",
        &format!("curl -s --max-time 3 http://{FRONTEND}:8080/"),
    );
    assert_eq!(out(&tcp), "b1", "served after the restart");
    assert_eq!(
        counts(&lab, "n1", "203.0.113.10:8080/TCP"),
        (0, 2, 0),
        "translated once, by one program"
    );
    agent.stop(libc::SIGTERM);
    let removed = lab.hairpin("n1", &["detach"]);
    assert!(
        removed.contains("cgroup/sock_connect4"),
        "detach names the cgroup links:\n{removed}"
    );
    assert!(!agent.pin_dir.exists(), "pins left behind");
    let tcp = lab.sh_in(
        &cg,
        "n1",
        &format!("curl -s --max-time 2 http://{FRONTEND}:8080/"),
    );
    assert!(
        !tcp.status.success(),
        "after detach nothing translates: {tcp:?}"
    );
}

#[test]
fn ipv6_host_processes_go_through_the_socket_path_too() {
    require_privileged!();
    let lab = Lab::up();
    let cg = lab.cgroup("n2");
    let config = config(&cg).replace(
        "interfaces:",
        "  - name: web6\n    frontend: 2001:db8:0:113::10\n    ports:\n      - { port: 8080, protocol: TCP, targetPort: 80 }\n      - { port: 5353, protocol: UDP, targetPort: 53 }\n    backends: [{ ip: \"2001:db8:0:51::2\" }]\ninterfaces:",
    );
    let _n2 = lab.agent("n2", &config);
    let fe6 = "2001:db8:0:113::10";
    let tcp = lab.sh_in(
        &cg,
        "n2",
        &format!(
            "curl -gs --max-time 3 -w ' %{{remote_ip}}:%{{remote_port}}' http://[{fe6}]:8080/"
        ),
    );
    assert_eq!(
        out(&tcp),
        format!("b1\n {fe6}:8080"),
        "TCP over IPv6 from host n2; getpeername shows the frontend"
    );
    let dgram = lab.sh_in(
        &cg,
        "n2",
        &format!(
            "python3 -c '{}' {fe6} 5353",
            SENDTO.replace("AF_INET,", "AF_INET6,")
        ),
    );
    assert_eq!(
        out(&dgram),
        format!("{fe6}:5353 b1 ping"),
        "unconnected UDP over IPv6 is answered from the frontend: {dgram:?}"
    );
    assert_eq!(
        counts(&lab, "n2", &format!("[{fe6}]:8080/TCP")),
        (0, 1, 0),
        "TCP over IPv6: the socket path only"
    );
    assert_eq!(
        counts(&lab, "n2", &format!("[{fe6}]:5353/UDP")),
        (0, 0, 1),
        "UDP over IPv6: one datagram, at the socket"
    );
}
