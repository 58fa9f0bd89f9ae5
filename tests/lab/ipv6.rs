//! IPv6 and dual stack: the lab's IPv6 frontends (the router's IPv6 port
//! forward, with no NAT loopback) served like the IPv4 ones.

use crate::{require_privileged, support::lab::Lab};

const FRONTEND6: &str = "2001:db8:0:113::10";

/// One name with both families: a redirect per family.
const DUAL: &str = r#"
redirects:
  - name: web
    frontend: 203.0.113.10
    ports:
      - { port: 8080, protocol: TCP, targetPort: 80 }
      - { port: 5353, protocol: UDP, targetPort: 53 }
    backends: [{ ip: 198.51.100.2 }]
  - name: web6
    frontend: 2001:db8:0:113::10
    ports:
      - { port: 8080, protocol: TCP, targetPort: 80 }
      - { port: 5353, protocol: UDP, targetPort: 53 }
      - { port: 5354, protocol: UDP, targetPort: 54 }
    backends: [{ ip: "2001:db8:0:51::2" }]
interfaces: { uplink: auto, pods: ["veth*"] }
socket: { enabled: false }
"#;

#[test]
fn ipv6_clients_reach_ipv6_frontends_beside_ipv4() {
    require_privileged!();
    let lab = Lab::up();
    let before = lab.probe_family("6");
    assert!(
        before.iter().all(|((c, _), r)| (c == "ext") == (r == "ok")),
        "without hairpin only the external client reaches the IPv6 frontends: {before:?}"
    );
    let _n1 = lab.agent("n1", DUAL);
    let _n2 = lab.agent("n2", DUAL);
    let after = lab.probe_family("all");
    assert_eq!(after.len(), 20, "5 clients × 4 frontends: {after:?}");
    assert!(
        after.values().all(|r| r == "ok"),
        "every client reaches every frontend of both families: {after:?}"
    );

    for (ns, who) in [
        ("n1-b1", "the backend pod itself"),
        ("n1", "host n1"),
        ("n1-c1", "pod c1"),
    ] {
        let got = lab.sh_ok(
            ns,
            &format!("curl -gs --max-time 3 -w ' %{{remote_ip}}' http://[{FRONTEND6}]:8080/"),
        );
        assert_eq!(
            got.trim(),
            format!("b1\n {FRONTEND6}"),
            "TCP over IPv6 from {who}"
        );
        let router = lab.sh_ok(ns, &format!("curl -gs --max-time 3 http://[{FRONTEND6}]/"));
        assert_eq!(
            router.trim(),
            "router",
            "other IPv6 ports still reach the router, from {who}"
        );
        let refused = lab.sh(
            ns,
            &format!("echo ping | timeout 5 socat -t2 -T2 - UDP6:[{FRONTEND6}]:5354"),
        );
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("Connection refused"),
            "a closed UDP backend port is refused over IPv6 (translated ICMPv6 error), from {who}: {refused:?}"
        );
    }
    let flows: Vec<serde_json::Value> = serde_json::from_str(&lab.hairpin(
        "n1",
        &[
            "ct",
            "list",
            "--output",
            "json",
            "--frontend",
            &format!("[{FRONTEND6}]:8080/TCP"),
        ],
    ))
    .expect("ct json");
    assert!(
        flows
            .iter()
            .any(|f| f["backend"] == "[2001:db8:0:51::2]:80"),
        "IPv6 flows are listed with their backend: {flows:?}"
    );
}

#[test]
fn rewritten_ipv6_checksums_are_exact_without_checksum_offload() {
    require_privileged!();
    let lab = Lab::up();
    for ns in ["n1", "n2", "n1-b1", "n1-c1", "n2-c2", "n2-b2"] {
        lab.sh_ok(ns, "for i in $(ls /sys/class/net | grep -v '^lo$'); do ethtool -K $i tx off >/dev/null; done");
    }
    let filter = format!(
        "'ip6 and ((src host {FRONTEND6} and (tcp src port 8080 or udp src port 5353)) or dst port 80 or dst port 53)'"
    );
    let captures = ["n1-b1", "n1-c1", "n2-c2", "n1", "n2"].map(|ns| {
        (
            ns,
            lab.background(
                ns,
                &format!("tcpdump -n -l -vv -i eth0 {filter}"),
                &format!("csum6-{ns}.txt"),
            ),
        )
    });
    let _n1 = lab.agent("n1", DUAL);
    let _n2 = lab.agent("n2", DUAL);
    for ns in ["n1-c1", "n1", "n2-c2", "n2"] {
        let got = lab.sh_ok(
            ns,
            &format!("curl -gs --max-time 3 http://[{FRONTEND6}]:8080/"),
        );
        assert_eq!(got.trim(), "b1", "TCP over IPv6 from {ns}");
        let echo = lab.sh(
            ns,
            &format!("echo ping | timeout 5 socat -t2 -T2 - UDP6:[{FRONTEND6}]:5353"),
        );
        assert!(
            String::from_utf8_lossy(&echo.stdout).contains("b1 ping"),
            "UDP over IPv6 from {ns}: {echo:?}"
        );
    }
    for (ns, capture) in captures {
        let text = capture.finish();
        assert!(
            text.matches("(correct)").count() > 0,
            "tcpdump in {ns} judged no rewritten TCP checksum:\n{text}"
        );
        assert!(
            text.contains("udp sum ok"),
            "tcpdump in {ns} judged no rewritten UDP checksum:\n{text}"
        );
        assert!(
            !text.contains("incorrect") && !text.contains("bad udp"),
            "a rewritten IPv6 checksum is wrong in {ns}:\n{text}"
        );
    }
}
