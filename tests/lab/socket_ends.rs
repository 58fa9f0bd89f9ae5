//! Sockets do not outlive their backend: a backend removed while a client
//! on the socket path holds a connection to it (TCP keep-alive, or a
//! connected UDP socket) has that socket ended at once, in the node's
//! namespace and in a pod's, and the client's next connection reaches a
//! backend that remains.

use std::{fs, time::Duration};

use crate::{
    degraded::eventually,
    require_privileged,
    support::lab::{Cni, Lab, FRONTEND},
};

/// A frontend per client and protocol (TCP 8080 and UDP 5353 for the pod,
/// 8081 and 5354 for the node's process), each to b1 and b2 unless
/// `gone` names its port and the backend it lost.
fn config(cgroup: &std::path::Path, gone: &[(u16, &str)]) -> String {
    let mut redirects = String::new();
    for (port, proto, target) in [
        (8080, "TCP", 80),
        (5353, "UDP", 53),
        (8081, "TCP", 80),
        (5354, "UDP", 53),
    ] {
        let backends: Vec<String> = ["198.51.100.2", "198.51.100.67"]
            .into_iter()
            .filter(|b| !gone.contains(&(port, *b)))
            .map(|b| format!("{{ ip: {b} }}"))
            .collect();
        redirects.push_str(&format!(
            "  - name: p{port}\n    frontend: {FRONTEND}\n    ports: [{{ port: {port}, protocol: {proto}, targetPort: {target} }}]\n    backends: [{}]\n",
            backends.join(", ")
        ));
    }
    format!(
        "redirects:\n{redirects}interfaces: {{ uplink: auto, pods: [\"veth*\"] }}\nsocket: {{ scope: host, cgroup: {}, cgroups: [pod] }}\n",
        cgroup.display()
    )
}

/// Holds a TCP connection (a request answered, kept alive) and a connected
/// UDP socket to the frontend; says which backend each reached; once the
/// file `go` exists, says what each socket gives next (an errno, or what
/// it read), then what a new connection reaches. Arguments: frontend,
/// TCP port, UDP port, the file.
const CLIENT: &str = r#"
import os, socket, sys, time
fe, tport, uport, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def ask(s):
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while True:
        data += s.recv(4096)
        head, _, body = data.partition(b"\r\n\r\n")
        length = [l for l in head.lower().split(b"\r\n") if l.startswith(b"content-length:")]
        if _ and length and len(body) >= int(length[0].split(b":")[1]):
            return body.decode().strip()
t = socket.create_connection((fe, tport), timeout=5)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(5)
u.connect((fe, uport))
u.send(b"ping")
print("first", ask(t), u.recv(100).decode().split()[0], flush=True)
deadline = time.time() + 60
while not os.path.exists(go) and time.time() < deadline:
    time.sleep(0.1)
t.settimeout(3)
u.settimeout(3)
try:
    got = t.recv(100)
    print("tcp", "closed" if not got else "read")
except OSError as e:
    print("tcp", e.errno)
try:
    got = u.recv(100)
    print("udp", "read")
except OSError as e:
    print("udp", e.errno)
again = socket.create_connection((fe, tport), timeout=5)
print("again", ask(again), flush=True)
"#;

/// The line of `out` that starts with `what`, without it.
fn said<'a>(out: &'a str, what: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(what))
        .unwrap_or_else(|| panic!("no {what:?} in:\n{out}"))
        .trim()
}

#[test]
fn a_removed_backend_takes_its_socket_path_connections_with_it_beside_an_iptables_cni() {
    require_privileged!();
    removed_backend(Cni::Iptables);
}

#[test]
fn a_removed_backend_takes_its_socket_path_connections_with_it_beside_an_ebpf_cni() {
    require_privileged!();
    removed_backend(Cni::Ebpf);
}

fn removed_backend(cni: Cni) {
    let lab = Lab::up_beside(cni);
    let node = lab.cgroup("n1");
    let pod = lab.cgroup_under("n1", "pod");
    let agent = lab.agent("n1", &config(&node, &[]));
    let script = lab.run_dir().join("hold.py");
    fs::write(&script, CLIENT).expect("client");
    let go = lab.run_dir().join("go");
    let clients = [("n1-c1", &pod, 8080, 5353), ("n1", &node, 8081, 5354)].map(
        |(ns, cgroup, tport, uport)| {
            let cmd = format!(
                "exec python3 {} {FRONTEND} {tport} {uport} {}",
                script.display(),
                go.display()
            );
            let client = lab.background_in(cgroup, ns, &cmd, &format!("hold-{ns}.txt"));
            (client, tport, uport)
        },
    );
    // Which backend each socket reached, from what the clients said.
    let mut gone = Vec::new();
    for (client, tport, uport) in &clients {
        eventually(20, "the client holds its sockets", || {
            client.output().contains("first ")
        });
        let out = client.output();
        let mut first = said(&out, "first").split_whitespace();
        let (tcp, udp) = (first.next().expect("tcp"), first.next().expect("udp"));
        let addr = |b: &str| {
            if b == "b1" {
                "198.51.100.2"
            } else {
                "198.51.100.67"
            }
        };
        gone.push((*tport, addr(tcp)));
        gone.push((*uport, addr(udp)));
    }
    agent.reload_with(&config(&node, &gone));
    eventually(10, "the agent ended both clients' sockets", || {
        agent
            .log_text()
            .contains("sockets to backends gone ended ended=4")
    });
    fs::write(&go, "").expect("go");
    for (client, tport, _) in clients {
        let out = client.wait(Duration::from_secs(20));
        // ECONNABORTED: ended by the agent, not by a timeout (EAGAIN).
        assert_eq!(said(&out, "tcp"), "103", "{tport}: TCP:\n{out}");
        assert_eq!(said(&out, "udp"), "103", "{tport}: connected UDP:\n{out}");
        let left = if gone.contains(&(tport, "198.51.100.2")) {
            "b2"
        } else {
            "b1"
        };
        assert_eq!(said(&out, "again"), left, "{tport}: a new connection");
    }
}
