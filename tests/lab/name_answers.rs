//! What a name's answers may install: the addresses no frontend may have
//! are refused, a long answer is capped, and the tables' room is taken an
//! address at a time; each said on the name, the rest served.

use std::fs;

use crate::{
    degraded::{eventually, readyz},
    names::{addrs, config, dns_server, listed, DNS, OLD},
    require_privileged,
    support::lab::Lab,
};

/// A name of 1,100 ports: 16 addresses (the cap) make 17,600 frontends,
/// more than the table's 16,384.
fn wide_config(lab: &Lab) -> String {
    let resolv = lab.run_dir().join("agent-resolv.conf");
    fs::write(&resolv, format!("nameserver {DNS}\n")).expect("resolv");
    let ports: Vec<String> = (10_000..11_100)
        .map(|p| format!("{{ port: {p}, protocol: TCP, targetPort: 80 }}"))
        .collect();
    format!(
        r#"
redirects:
  - name: wide
    frontend: registry.lab
    ports: [{ports}]
    backends: [{{ ip: 198.51.100.2 }}]
interfaces: {{ uplink: auto, pods: ["veth*"] }}
socket: {{ enabled: false }}
conntrack: {{ timeouts: {{ close: 2 }} }}
dns: {{ resolvConf: {resolv}, minTtl: 1, maxTtl: 3, grace: 3 }}
"#,
        ports = ports.join(", "),
        resolv = resolv.display()
    )
}

#[test]
fn a_name_the_tables_cannot_hold_is_served_where_it_fits_and_follows_a_changed_record() {
    require_privileged!();
    let lab = Lab::up();
    let (dns, hosts) = dns_server(&lab, &format!("{OLD} registry.lab\n"));
    let _agent = lab.agent("n1", &wide_config(&lab));
    eventually(10, "the name's 1,100 frontends applied", || {
        listed(&lab, "n1").len() == 1_100
    });
    let served = |addr: &str| {
        lab.sh_ok(
            "n1-c1",
            &format!("curl -s --max-time 3 http://{addr}:10999/"),
        )
        .trim()
        .to_owned()
    };
    assert_eq!(served(OLD), "b1");

    // Sixteen addresses: fourteen fit, the one served first among them.
    let sixteen: String = (10..26)
        .map(|a| format!("203.0.113.{a} registry.lab\n"))
        .collect();
    fs::write(&hosts, sixteen).expect("hosts");
    // dnsmasq reads its hosts file again on SIGHUP.
    dns.signal(libc::SIGHUP);
    // Asked of readyz, which is cheap: the name's report comes once the
    // apply is done. A listing of 15,400 frontends is read once.
    eventually(15, "readyz says what of the name is not served", || {
        let (code, body) = readyz(&lab, "n1");
        code == "200"
            && body.contains("203.0.113.24 not served: the datapath's tables are full")
            && body.contains("registry.lab")
    });
    let listed = listed(&lab, "n1");
    assert_eq!(
        listed.len(),
        14 * 1_100,
        "fourteen addresses of 1,100 ports"
    );
    let mut held: Vec<String> = listed.into_iter().map(|(a, _)| a).collect();
    held.sort();
    held.dedup();
    let want: Vec<String> = (10..24).map(|a| format!("203.0.113.{a}")).collect();
    assert_eq!(held, want, "the lowest, beside the one served before");
    assert_eq!(served(OLD), "b1", "what was served still is");
    assert_eq!(served("203.0.113.23"), "b1");

    // The record changes after the refusal: once the old addresses are let
    // go, the new one takes their room.
    fs::write(&hosts, "203.0.113.99 registry.lab\n").expect("hosts");
    dns.signal(libc::SIGHUP);
    eventually(30, "nothing of the name degraded", || {
        readyz(&lab, "n1").1 == "ready"
    });
    // The new address fits once most old ones are gone; the last of them
    // go once their flows have.
    eventually(15, "the changed record served alone", || {
        let mut a = addrs(&lab, "n1");
        a.dedup();
        a == ["203.0.113.99"]
    });
    assert_eq!(served("203.0.113.99"), "b1");
}

/// `registry.lab` on port 8080 in both families, in a cluster whose API
/// server is away (its ranges still hold).
fn cluster_config(lab: &Lab) -> String {
    let kubeconfig = lab.run_dir().join("away.kubeconfig");
    fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\n\
         clusters: [{name: c, cluster: {server: \"http://127.0.0.1:9\"}}]\n\
         users: [{name: u, user: {}}]\n\
         contexts: [{name: x, context: {cluster: c, user: u}}]\n\
         current-context: x\n",
    )
    .expect("kubeconfig");
    format!(
        "{}kubernetes:\n  kubeconfig: {}\n  podCidrs: [198.51.100.0/24]\n  \
         serviceCidrs: [203.0.113.192/26]\n  stateFile: {}\n",
        config(lab, "{ enabled: false }"),
        kubeconfig.display(),
        lab.run_dir().join("n1-cluster.json").display()
    )
}

#[test]
fn a_hostile_answer_installs_only_what_a_frontend_may_be() {
    require_privileged!();
    let lab = Lab::up();
    // The node's own address, a pod's and a Service's, one good address;
    // and 2,000 IPv6 ones (over TCP: the answer is 56 kB).
    let mut records: String = [
        "192.0.2.11",
        "198.51.100.40",
        "203.0.113.200",
        "203.0.113.50",
    ]
    .iter()
    .map(|a| format!("{a} registry.lab\n"))
    .collect();
    for i in 1..=2_000u32 {
        records.push_str(&format!("2001:db8:ffff::{i:x} registry.lab\n"));
    }
    let (_dns, _) = dns_server(&lab, &records);
    let _agent = lab.agent("n1", &cluster_config(&lab));
    eventually(20, "the name's good addresses applied", || {
        listed(&lab, "n1").len() == 17
    });
    let mut want = vec!["203.0.113.50".to_owned()];
    want.extend((1..=16u32).map(|i| format!("2001:db8:ffff::{i:x}")));
    want.sort();
    assert_eq!(
        addrs(&lab, "n1"),
        want,
        "one IPv4 address, the lowest 16 IPv6"
    );
    // The name is reported, and the uplink found, once the apply is done.
    let whys = [
        "192.0.2.11 is an address of this node",
        "198.51.100.40 is inside the cluster's pod CIDR 198.51.100.0/24",
        "203.0.113.200 is inside the cluster's service CIDR 203.0.113.192/26",
        "it has 2000 IPv6 addresses: served at the lowest 16 (dns.maxAddresses)",
    ];
    eventually(
        10,
        "readyz ready, saying what of the name is refused",
        || {
            let (code, body) = readyz(&lab, "n1");
            code == "200" && whys.iter().all(|w| body.contains(w))
        },
    );
    let served = lab.sh_ok("n1-c1", "curl -s --max-time 3 http://203.0.113.50:8080/");
    assert_eq!(served.trim(), "b1");
    let served = lab.sh_ok(
        "n1-c1",
        "curl -gs --max-time 3 http://[2001:db8:ffff::10]:8080/",
    );
    assert_eq!(served.trim(), "b1");
}
