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

const DNS: &str = "192.0.2.1";
const OLD: &str = "203.0.113.10";
const NEW: &str = "203.0.113.11";

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
fn dns_server(lab: &Lab, addr: &str) -> (Background, PathBuf) {
    let hosts = lab.run_dir().join("dns-hosts");
    fs::write(&hosts, format!("{addr} registry.lab\n")).expect("hosts");
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

fn config(lab: &Lab) -> String {
    let resolv = lab.run_dir().join("agent-resolv.conf");
    fs::write(&resolv, format!("nameserver {DNS}\n")).expect("resolv");
    format!(
        r#"
redirects:
  - name: registry
    frontend: registry.lab
    ports: [{{ port: 8080, protocol: TCP, targetPort: 80 }}]
    backends: [{{ ip: 198.51.100.2 }}]
interfaces: {{ uplink: auto, pods: ["veth*"] }}
socket: {{ enabled: false }}
conntrack: {{ timeouts: {{ close: 2 }} }}
dns: {{ resolvConf: {}, minTtl: 1, maxTtl: 3, grace: 3 }}
"#,
        resolv.display()
    )
}

/// The addresses of the frontends `hairpin list` shows, with their names.
fn listed(lab: &Lab) -> Vec<(String, String)> {
    let list: Vec<serde_json::Value> =
        serde_json::from_str(&lab.hairpin("n1", &["list", "--output", "json"])).expect("list");
    list.iter()
        .map(|f| {
            (
                f["addr"].as_str().unwrap_or_default().to_owned(),
                f["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn addrs(lab: &Lab) -> Vec<String> {
    listed(lab).into_iter().map(|(a, _)| a).collect()
}

/// Who answers `http://registry.lab:8080/` from `ns`, and at which address.
fn by_name(lab: &Lab, ns: &str) -> String {
    lab.sh_ok(
        ns,
        "curl -s --max-time 3 -w ' %{remote_ip}' http://registry.lab:8080/",
    )
    .replace('\n', "")
}

#[test]
fn clients_reach_a_frontend_by_name_and_follow_it_when_its_address_changes() {
    require_privileged!();
    let lab = Lab::up();
    let _resolvers: Vec<NetnsResolver> = ["n1", "n1-c1"]
        .iter()
        .map(|n| NetnsResolver::new(&lab.ns(n)))
        .collect();
    let (dns, hosts) = dns_server(&lab, OLD);
    std::thread::sleep(Duration::from_millis(500));
    let agent = lab.agent("n1", &config(&lab));
    crate::degraded::eventually(10, "the name resolved and applied", || addrs(&lab) == [OLD]);
    let (_, name) = &listed(&lab)[0];
    assert!(
        name.starts_with("registry.lab (resolved "),
        "list shows the name beside the address: {name}"
    );
    for ns in ["n1-c1", "n1"] {
        assert_eq!(by_name(&lab, ns), format!("b1 {OLD}"), "{ns} by name");
    }

    // A transfer through the old address, across the change.
    let data = serve_file(&lab, "n1-b1", "big.bin", 16);
    let (transfer, out) = download_from(&lab, "n1-c1", OLD, "big.bin", 8080, "1M");
    std::thread::sleep(Duration::from_secs(1));
    fs::write(&hosts, format!("{NEW} registry.lab\n")).expect("hosts");
    dns.signal(libc::SIGHUP);
    crate::degraded::eventually(10, "the new address installed beside the old", || {
        addrs(&lab) == [OLD, NEW]
    });
    for ns in ["n1-c1", "n1"] {
        assert_eq!(
            by_name(&lab, ns),
            format!("b1 {NEW}"),
            "{ns} follows the name"
        );
    }
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        addrs(&lab).contains(&OLD.to_owned()),
        "past the grace period, the old address stays while its flow lives"
    );
    assert_eq!(
        finish_download(transfer, Duration::from_secs(30)),
        COMPLETE,
        "the transfer through the old address"
    );
    assert_same(&out, &data, "the transfer through the old address");
    crate::degraded::eventually(20, "the old address removed once its flow ended", || {
        addrs(&lab) == [NEW]
    });

    // The DNS server goes away: the last known address keeps serving.
    dns.finish();
    agent.wait_for_log("keeping the last known addresses", Duration::from_secs(45));
    assert_eq!(addrs(&lab), [NEW]);
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
}
