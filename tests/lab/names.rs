//! Frontends by name: a DNS server of the lab's own (dnsmasq on the
//! router's LAN address) answers for `registry.lab`; the nodes' clients
//! resolve through it (`ip netns exec` mounts `/etc/netns/<ns>/resolv.conf`),
//! the agent through a resolver file of the test's.

use std::{fs, path::PathBuf, time::Duration};

use crate::{
    require_privileged,
    support::lab::{Background, Lab},
    transfers::{assert_same, download_from, finish_download, serve_file, COMPLETE},
};

pub const DNS: &str = "192.0.2.1";
pub const OLD: &str = "203.0.113.10";
const NEW: &str = "203.0.113.11";
const OLD6: &str = "2001:db8:0:113::10";

/// The resolver configuration of a lab namespace, removed on drop.
struct NetnsResolver(PathBuf);

impl NetnsResolver {
    fn new(ns: &str) -> Self {
        let dir = PathBuf::from("/etc/netns").join(ns);
        fs::create_dir_all(&dir).expect("netns dir");
        fs::write(dir.join("resolv.conf"), format!("nameserver {DNS}\n")).expect("resolv.conf");
        Self(dir)
    }
}

impl Drop for NetnsResolver {
    fn drop(&mut self) {
        // Ignored error: nothing to remove.
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// dnsmasq answering `registry.lab` from a hosts file, TTL 1 s.
pub fn dns_server(lab: &Lab, records: &str) -> (Background, PathBuf) {
    let hosts = lab.run_dir().join("dns-hosts");
    fs::write(&hosts, records).expect("hosts");
    let bg = lab.background(
        "rtr",
        &format!(
            "dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts --addn-hosts={} \
             --listen-address={DNS} --bind-interfaces --port=53 --local-ttl=1 \
             --pid-file= --user=root",
            hosts.display()
        ),
        "dnsmasq.txt",
    );
    (bg, hosts)
}

/// `registry.lab` in both families, with `socket` as the socket section.
pub fn config(lab: &Lab, socket: &str) -> String {
    let resolv = lab.run_dir().join("agent-resolv.conf");
    fs::write(&resolv, format!("nameserver {DNS}\n")).expect("resolv");
    format!(
        r#"
redirects:
  - name: registry
    frontend: registry.lab
    ports: [{{ port: 8080, protocol: TCP, targetPort: 80 }}]
    backends: [{{ ip: 198.51.100.2 }}]
  - name: registry
    frontend: registry.lab
    ports: [{{ port: 8080, protocol: TCP, targetPort: 80 }}]
    backends: [{{ ip: "2001:db8:0:51::2" }}]
interfaces: {{ uplink: auto, pods: ["veth*"] }}
socket: {socket}
conntrack: {{ timeouts: {{ close: 2 }} }}
dns: {{ resolvConf: {resolv}, minTtl: 1, maxTtl: 3, grace: 3 }}
"#,
        resolv = resolv.display()
    )
}

/// The addresses of the frontends `hairpin list` shows, with their names.
pub fn listed(lab: &Lab, node: &str) -> Vec<(String, String)> {
    let list: Vec<serde_json::Value> =
        serde_json::from_str(&lab.hairpin(node, &["list", "--output", "json"])).expect("list");
    list.iter()
        .map(|f| {
            (
                f["addr"].as_str().unwrap_or_default().to_owned(),
                f["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The frontends' addresses, sorted.
pub fn addrs(lab: &Lab, node: &str) -> Vec<String> {
    let mut addrs: Vec<String> = listed(lab, node).into_iter().map(|(a, _)| a).collect();
    addrs.sort();
    addrs
}

/// The records of `registry.lab`: an A and an AAAA.
fn records(v4: &str) -> String {
    format!("{v4} registry.lab\n{OLD6} registry.lab\n")
}

/// Who answers `http://registry.lab:8080/` from `ns` over `family` (4 or
/// 6), and at which address and port its socket says it is connected.
fn by_name(lab: &Lab, ns: &str, family: u8) -> String {
    curl_by_name(&lab.sh(ns, &curl(family)))
}

fn curl(family: u8) -> String {
    format!(
        "curl -{family} -s --max-time 3 -w ' %{{remote_ip}}:%{{remote_port}}' \
         http://registry.lab:8080/"
    )
}

fn curl_by_name(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).replace('\n', "")
}

#[test]
fn clients_reach_a_frontend_by_name_and_follow_it_when_its_address_changes() {
    require_privileged!();
    let lab = Lab::up();
    let _resolvers: Vec<NetnsResolver> = ["n1", "n1-c1"]
        .iter()
        .map(|n| NetnsResolver::new(&lab.ns(n)))
        .collect();
    let (dns, hosts) = dns_server(&lab, &records(OLD));
    std::thread::sleep(Duration::from_millis(500));
    let mut agent = lab.agent("n1", &config(&lab, "{ enabled: false }"));
    crate::degraded::eventually(10, "the name resolved and applied", || {
        addrs(&lab, "n1") == [OLD6, OLD]
    });
    let (_, name) = &listed(&lab, "n1")[0];
    assert!(
        name.starts_with("registry.lab (resolved "),
        "list shows the name beside the address: {name}"
    );
    for ns in ["n1-c1", "n1"] {
        assert_eq!(
            by_name(&lab, ns, 4),
            format!("b1 {OLD}:8080"),
            "{ns} by name"
        );
        assert_eq!(
            by_name(&lab, ns, 6),
            format!("b1 {OLD6}:8080"),
            "{ns} by name"
        );
    }

    // A transfer through the old address, across the change.
    let data = serve_file(&lab, "n1-b1", "big.bin", 16);
    let (transfer, out) = download_from(&lab, "n1-c1", OLD, "big.bin", 8080, "1M");
    std::thread::sleep(Duration::from_secs(1));
    fs::write(&hosts, records(NEW)).expect("hosts");
    dns.signal(libc::SIGHUP);
    crate::degraded::eventually(10, "the new address installed beside the old", || {
        addrs(&lab, "n1") == [OLD6, OLD, NEW]
    });
    for ns in ["n1-c1", "n1"] {
        assert_eq!(
            by_name(&lab, ns, 4),
            format!("b1 {NEW}:8080"),
            "{ns} follows the name"
        );
        assert_eq!(
            by_name(&lab, ns, 6),
            format!("b1 {OLD6}:8080"),
            "{ns}: the address the name kept"
        );
    }
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        addrs(&lab, "n1").contains(&OLD.to_owned()),
        "past the grace period, the old address stays while its flow lives"
    );
    assert_eq!(
        finish_download(transfer, Duration::from_secs(30)),
        COMPLETE,
        "the transfer through the old address"
    );
    assert_same(&out, &data, "the transfer through the old address");
    crate::degraded::eventually(20, "the old address removed once its flow ended", || {
        addrs(&lab, "n1") == [OLD6, NEW]
    });

    // The DNS server goes away: the last known address keeps serving.
    dns.finish();
    agent.wait_for_log("keeping the last known addresses", Duration::from_secs(45));
    assert_eq!(addrs(&lab, "n1"), [OLD6, NEW]);
    assert_eq!(
        lab.sh_ok("n1-c1", &format!("curl -s --max-time 3 http://{NEW}:8080/"))
            .trim(),
        "b1"
    );
    let metrics = lab.sh_ok("n1", "curl -s http://127.0.0.1:9469/metrics");
    assert!(
        metrics.contains(r#"hairpin_dns_resolutions_total{name="registry.lab",result="failed"}"#),
        "failures are counted:\n{metrics}"
    );

    // A restart while DNS is away keeps the name's addresses and the
    // flows through them.
    let (transfer, out) = download_from(&lab, "n1-c1", NEW, "big.bin", 8080, "2M");
    std::thread::sleep(Duration::from_secs(1));
    agent.stop(libc::SIGKILL);
    let failed = "keeping the last known addresses";
    let before = agent.log_text().matches(failed).count();
    agent.start();
    assert_eq!(addrs(&lab, "n1"), [OLD6, NEW], "kept across the restart");
    // Served from the kept addresses, the name is no alarm, as before.
    agent.wait_for_count(failed, before + 1, Duration::from_secs(45));
    let metrics = lab.sh_ok("n1", "curl -s http://127.0.0.1:9469/metrics");
    assert!(
        metrics.contains("hairpin_degraded_items 0"),
        "a name served from kept addresses is not degraded:\n{metrics}"
    );
    assert_eq!(
        finish_download(transfer, Duration::from_secs(30)),
        COMPLETE,
        "a transfer through a named frontend across a restart"
    );
    assert_same(&out, &data, "the transfer across the restart");
}

/// Per frontend of node `node`'s `hairpin list`: (TC flows, socket connects).
fn paths(lab: &Lab, node: &str, frontend: &str) -> (u64, u64) {
    let list: Vec<serde_json::Value> =
        serde_json::from_str(&lab.hairpin(node, &["list", "--output", "json"])).expect("list");
    let f = list
        .iter()
        .find(|f| f["frontend"] == frontend)
        .unwrap_or_else(|| panic!("{frontend} in {list:?}"));
    let n = |k: &str| f["stats"][k].as_u64().expect("a count");
    (n("flows"), n("sock_connects"))
}

#[test]
fn every_kind_of_client_reaches_a_named_frontend_and_the_socket_path_answers_from_it() {
    require_privileged!();
    let lab = Lab::up();
    let clients = ["n1", "n2", "n1-c1", "n2-c2", "n1-b1"];
    let _resolvers: Vec<NetnsResolver> = clients
        .iter()
        .map(|n| NetnsResolver::new(&lab.ns(n)))
        .collect();
    let (_dns, _) = dns_server(&lab, &records(OLD));
    std::thread::sleep(Duration::from_millis(500));
    let cgroups = [("n1", lab.cgroup("n1")), ("n2", lab.cgroup("n2"))];
    let _agents: Vec<_> = cgroups
        .iter()
        .map(|(n, cg)| {
            let socket = format!("{{ scope: host, cgroup: {} }}", cg.display());
            lab.agent(n, &config(&lab, &socket))
        })
        .collect();
    for (node, _) in &cgroups {
        crate::degraded::eventually(10, &format!("the name resolved on {node}"), || {
            addrs(&lab, node) == [OLD6, OLD]
        });
    }

    for (family, addr) in [(4, OLD.to_owned()), (6, format!("[{OLD6}]"))] {
        let want = format!("b1 {}:8080", addr.trim_matches(['[', ']']));
        // Pods on the backend's node and the other, the backend itself,
        // and a host process outside the socket path's cgroup: TC.
        for ns in clients {
            assert_eq!(by_name(&lab, ns, family), want, "{ns} by name, IPv{family}");
        }
        // Host processes in the cgroup: the socket path, and getpeername
        // (curl's remote address) shows the frontend, not the backend.
        for (node, cg) in &cgroups {
            let got = curl_by_name(&lab.sh_in(cg, node, &curl(family)));
            assert_eq!(got, want, "host {node} on the socket path, IPv{family}");
        }
        let frontend = format!("{addr}:8080/TCP");
        assert_eq!(
            paths(&lab, "n1", &frontend),
            (3, 1),
            "n1, IPv{family}: c1, b1 and the host outside the cgroup on TC, one socket connect"
        );
        assert_eq!(
            paths(&lab, "n2", &frontend),
            (2, 1),
            "n2, IPv{family}: c2 and the host outside the cgroup on TC, one socket connect"
        );
    }
}
