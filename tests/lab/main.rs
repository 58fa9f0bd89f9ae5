//! End-to-end tests in the namespace lab of scripts/lab.sh: real traffic
//! through the kernel, with hairpin's programs attached to the nodes.
//!
//! ```text
//!  ext ── wan0 [rtr: 203.0.113.10, no NAT loopback] lan0 ──┬── eth0 [n1 rp_filter=1] ─ vethb1 ─ b1 (backend)
//!                                                          │                        └ vethc1 ─ c1
//!                                                          └── eth0 [n2 rp_filter=2] ─ vethc2 ─ c2
//!                                                                                   └ vethb2 ─ b2 (backend)
//! ```

#[path = "../support/mod.rs"]
mod support;

mod agent;
mod capacity;
mod clsact;
mod cluster_reload;
mod conntrack_layouts;
mod counting;
mod degraded;
mod doctor;
mod ebpf_cni;
mod image;
mod in_cluster;
mod ipv6;
mod kubernetes;
mod listener;
mod monitor;
mod name_answers;
mod names;
mod netkit;
mod ownership;
mod policies;
mod pressure;
mod release;
mod signals;
mod socket_ends;
mod socket_pods;
mod sockets;
mod transfers;
mod upgrade;

use std::collections::BTreeSet;

use support::lab::{Lab, FRONTEND};

/// Frontends of the lab: the router's two port forwards (to b1), a
/// frontend with two backends and a UDP frontend whose backend port is
/// closed, all on the router's external address.
const CONFIG: &str = r#"
redirects:
  - name: web
    frontend: 203.0.113.10
    ports:
      - { name: http, port: 8080, protocol: TCP, targetPort: 80 }
      - { name: echo, port: 5353, protocol: UDP, targetPort: 53 }
    backends: [{ ip: 198.51.100.2 }]
  - name: pair
    frontend: 203.0.113.10
    ports: [{ port: 8081, protocol: TCP, targetPort: 80 }]
    backends: [{ ip: 198.51.100.2 }, { ip: 198.51.100.67 }]
  - name: closed
    frontend: 203.0.113.10
    ports: [{ port: 5354, protocol: UDP, targetPort: 54 }]
    backends: [{ ip: 198.51.100.2 }]
interfaces:
  uplink: auto
  pods: ["veth*"]
# The TC path serves the host clients here (tests/lab/sockets.rs has
# the socket path).
socket: { enabled: false }
"#;

/// In-cluster clients: (namespace, description).
const CLIENTS: [(&str, &str); 5] = [
    ("n1-c1", "pod on the backend's node"),
    ("n1", "host process on the backend's node"),
    ("n2-c2", "pod on the other node"),
    ("n2", "host process on the other node"),
    ("n1-b1", "the backend pod itself"),
];

/// A request's answer; 5 s allows for SYN retransmits on a loaded machine
/// (CI runs the lab tests two at a time on two cores).
fn curl(lab: &Lab, ns: &str, url: &str) -> String {
    lab.sh_ok(ns, &format!("curl -s --max-time 5 {url}"))
        .trim()
        .to_owned()
}

/// Sends one datagram to the frontend's UDP port 5353 from each of `n`
/// ports from `first` on (arguments: frontend, n, first): each a new flow.
const NEW_UDP_FLOWS: &str = r#"
import socket, sys
n, first = int(sys.argv[2]), int(sys.argv[3])
for port in range(first, first + n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    s.sendto(b"x", (sys.argv[1], 5353))
    s.close()
"#;

fn udp(lab: &Lab, ns: &str, port: u16) -> std::process::Output {
    lab.sh(
        ns,
        &format!("echo ping | timeout 5 socat -t2 -T2 - UDP4:{FRONTEND}:{port}"),
    )
}

#[test]
fn without_hairpin_the_lab_reproduces_the_missing_nat_loopback() {
    require_privileged!();
    let lab = Lab::up();
    let matrix = lab.probe();
    assert_eq!(matrix.len(), 10, "5 clients × 2 frontends: {matrix:?}");
    for ((client, frontend), result) in &matrix {
        let want = if client == "ext" { "ok" } else { "FAIL" };
        assert_eq!(result, want, "{client} → {frontend} without hairpin");
    }
    let prefix = lab.prefix.clone();
    drop(lab);
    let left = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let left = String::from_utf8_lossy(&left.stdout);
    assert!(
        !left.lines().any(|l| l.starts_with(&format!("{prefix}-"))),
        "the lab left namespaces behind:\n{left}"
    );
}

#[test]
fn hairpin_serves_every_in_cluster_client_and_nothing_else() {
    require_privileged!();
    let lab = Lab::up();
    // Anything hairpin misses reaches the router addressed to a frontend.
    let leak = lab.background(
        "rtr",
        "tcpdump -n -l -i lan0 'dst host 203.0.113.10 and (tcp dst port 8080 or tcp dst port 8081 or udp dst port 5353 or udp dst port 5354)'",
        "leak.txt",
    );
    let _n1 = lab.agent("n1", CONFIG);
    let _n2 = lab.agent("n2", CONFIG);

    for (ns, who) in CLIENTS {
        assert_eq!(
            curl(&lab, ns, &format!("http://{FRONTEND}:8080/")),
            "b1",
            "TCP 8080→80 from the {who}"
        );
        let echo = udp(&lab, ns, 5353);
        assert!(
            String::from_utf8_lossy(&echo.stdout).contains("b1 ping"),
            "UDP 5353→53 from the {who}: {echo:?}"
        );
        assert_eq!(
            curl(&lab, ns, &format!("http://{FRONTEND}/")),
            "router",
            "other ports still reach the router, from the {who}"
        );
        let refused = udp(&lab, ns, 5354);
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("Connection refused"),
            "a closed UDP backend port is refused (translated ICMP error), from the {who}: {refused:?}"
        );
    }

    for (ns, who) in [CLIENTS[0], CLIENTS[3]] {
        let seen: BTreeSet<String> = (0..16)
            .map(|_| curl(&lab, ns, &format!("http://{FRONTEND}:8081/")))
            .collect();
        assert_eq!(
            seen,
            BTreeSet::from(["b1".to_owned(), "b2".to_owned()]),
            "both backends get flows from the {who}"
        );
        // One connection, five requests: a flow that moved would be reset.
        let url = format!("http://{FRONTEND}:8081/");
        let out = lab.sh_ok(
            ns,
            &format!(
                "curl -s --max-time 5 -w '%{{num_connects}}\\n' {}",
                [url.as_str(); 5].join(" ")
            ),
        );
        let lines: Vec<&str> = out.lines().filter(|l| l.starts_with('b')).collect();
        assert_eq!(
            lines.len(),
            5,
            "five answers on one connection from the {who}: {out}"
        );
        assert!(
            lines.iter().all(|l| *l == lines[0]),
            "a flow stays on its backend, from the {who}: {out}"
        );
    }

    let matrix = lab.probe();
    assert!(
        matrix.values().all(|r| r == "ok"),
        "every client reaches every frontend: {matrix:?}"
    );

    let leaked = leak.finish();
    assert!(
        leaked.lines().all(|l| !l.contains(" > ")),
        "packets to a frontend reached the router's LAN side:\n{leaked}"
    );
}

#[test]
fn rewritten_checksums_are_exact_without_checksum_offload() {
    require_privileged!();
    // tcpdump taps a pod's interface before its TC ingress, where
    // pod_receive rewrites beside an eBPF CNI: what it sees there is the
    // reply before hairpin (the packet tests judge pod_receive's sums).
    let lab = Lab::up_beside(support::lab::Cni::Iptables);
    // Full checksums everywhere: tcpdump then judges every rewritten one.
    for ns in ["n1", "n2", "n1-b1", "n1-c1", "n2-c2", "n2-b2"] {
        lab.sh_ok(ns, "for i in $(ls /sys/class/net | grep -v '^lo$'); do ethtool -K $i tx off >/dev/null; done");
    }
    let filter = "'(src host 203.0.113.10 and (tcp src port 8080 or udp src port 5353)) or dst port 80 or dst port 53'";
    let captures = [
        ("n1-b1", "eth0"),
        ("n1-c1", "eth0"),
        ("n2-c2", "eth0"),
        ("n1", "eth0"),
        ("n2", "eth0"),
    ]
    .map(|(ns, dev)| {
        (
            ns,
            lab.background(
                ns,
                &format!("tcpdump -n -l -vv -i {dev} {filter}"),
                &format!("csum-{ns}.txt"),
            ),
        )
    });
    let _n1 = lab.agent("n1", CONFIG);
    let _n2 = lab.agent("n2", CONFIG);
    for (ns, who) in &CLIENTS[..4] {
        assert_eq!(
            curl(&lab, ns, &format!("http://{FRONTEND}:8080/")),
            "b1",
            "TCP from the {who}"
        );
        let echo = udp(&lab, ns, 5353);
        assert!(
            String::from_utf8_lossy(&echo.stdout).contains("b1 ping"),
            "UDP from the {who}: {echo:?}"
        );
    }
    for (ns, capture) in captures {
        let text = capture.finish();
        let judged = text.matches("(correct)").count();
        assert!(
            judged > 0,
            "tcpdump in {ns} judged no rewritten checksum:\n{text}"
        );
        assert!(
            !text.contains("incorrect") && !text.contains("bad cksum"),
            "a rewritten checksum is wrong in {ns}:\n{text}"
        );
    }
}
