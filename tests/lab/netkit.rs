//! Pods on netkit devices (Linux 6.7+: the pod devices of Cilium 1.16+ and
//! of Calico's eBPF dataplane) served like pods on veths: the host-side
//! device's TCX hooks see a pod's packets and its replies as a veth's do.
//! Both modes frame packets in Ethernet (L3 mode, Cilium's default, with
//! zero addresses and no ARP), so the same programs serve them. The kernel
//! matrix runs this on Debian 13's 6.12 (`HAIRPIN_REQUIRE_NETKIT`); a
//! kernel without netkit skips it.

use std::time::Duration;

use crate::{
    curl, require_privileged,
    support::lab::{Cni, Lab},
    FRONTEND,
};

const CONFIG: &str = r#"
redirects:
  - name: web
    frontend: 203.0.113.10
    ports:
      - { port: 8080, protocol: TCP, targetPort: 80 }
      - { port: 5353, protocol: UDP, targetPort: 53 }
    backends: [{ ip: 198.51.100.2 }]
  - name: on-netkit
    frontend: 203.0.113.10
    ports: [{ port: 8090, protocol: TCP, targetPort: 80 }]
    backends: [{ ip: 198.51.100.6 }]
# No pattern names the netkit devices: they are pods by their kind.
interfaces: { uplink: auto, pods: ["veth*"] }
socket: { enabled: false }
"#;

/// Whether this kernel and `LAB_IPROUTE2` make netkit pairs: a pair made
/// and removed in node `n1`. Where it is required, its absence fails.
fn netkit(lab: &Lab) -> bool {
    let required = std::env::var_os("HAIRPIN_REQUIRE_NETKIT").is_some();
    let ip = std::env::var("LAB_IPROUTE2").unwrap_or_else(|_| "ip".into());
    let made = lab
        .sh(
            "n1",
            &format!("{ip} link add nkprobe type netkit && {ip} link del nkprobe"),
        )
        .status
        .success();
    assert!(
        made || !required,
        "HAIRPIN_REQUIRE_NETKIT: no netkit pair with {ip} on this kernel"
    );
    if !made {
        eprintln!("skipping test - no netkit here (Linux 6.7, iproute2 6.7 as LAB_IPROUTE2)");
    }
    made
}

#[test]
fn a_pod_on_a_netkit_device_in_l2_mode_is_served_like_a_pod_on_a_veth() {
    served_on("netkit-l2", Cni::Iptables);
}

#[test]
fn a_pod_on_a_netkit_device_in_l3_mode_is_served_like_a_pod_on_a_veth() {
    served_on("netkit-l3", Cni::Iptables);
}

/// As Cilium and Calico's eBPF dataplane run netkit pods: delivered into
/// with `bpf_redirect_peer`.
#[test]
fn a_pod_on_a_netkit_device_in_l3_mode_is_served_beside_an_ebpf_cni() {
    served_on("netkit-l3", Cni::Ebpf);
}

/// Pod k1 on a `link` device as a client; pod k2 on one as the backend of
/// port 8090, for the node itself, a veth pod and itself.
fn served_on(link: &str, cni: Cni) {
    require_privileged!();
    let lab = Lab::up_beside(cni);
    if !netkit(&lab) {
        return;
    }
    lab.add_pod_on(link, "n1", "k1", "198.51.100.5");
    lab.add_pod_on(link, "n1", "k2", "198.51.100.6");
    let site = lab.run_dir().join("k2-site");
    std::fs::create_dir_all(&site).expect("site dir");
    std::fs::write(site.join("index.html"), "k2\n").expect("index");
    let _server = lab.background(
        "n1-k2",
        &format!(
            "python3 -m http.server 80 --bind 198.51.100.6 --directory {}",
            site.display()
        ),
        "k2-server.out",
    );
    lab.wait_listening("n1-k2", 80);
    let agent = lab.agent("n1", CONFIG);
    agent.wait_for_log("interface=nkk1", Duration::from_secs(30));
    agent.wait_for_log("interface=nkk2", Duration::from_secs(30));
    for client in ["n1", "n1-c1", "n1-k1", "n1-k2"] {
        assert_eq!(
            curl(&lab, client, &format!("http://{FRONTEND}:8090/")),
            "k2",
            "{client} reaches the backend on {link}"
        );
    }
    // The device has hairpin's pod programs, once each way.
    let status = lab.hairpin("n1", &["status", "--output", "json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&status).expect("status json");
    if cni == Cni::Ebpf {
        // As Cilium's: the stand-in's pod program on the device's own hook
        // for what its pod sends, after hairpin's, which runs first there.
        let ingress = rows
            .iter()
            .find(|r| r["interface"] == "nkk1" && r["hook"] == "ingress")
            .map(|r| r["programs"].clone());
        assert_eq!(
            ingress,
            Some(serde_json::json!(["pod_ingress", "standin_netkit"])),
            "what nkk1's pod sends: {status}"
        );
    }
    for (hook, program) in [
        ("ingress", "pod_ingress"),
        ("egress", "pod_egress"),
        ("pod side ingress", "pod_receive"),
    ] {
        assert!(
            rows.iter().any(|r| r["interface"] == "nkk1"
                && r["hook"] == hook
                && r["hairpin"] == 1
                && r["programs"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|n| n == program))),
            "{program} on nkk1: {status}"
        );
    }
    assert_eq!(
        curl(&lab, "n1-k1", &format!("http://{FRONTEND}:8080/")),
        "b1",
        "TCP from the netkit pod reaches the backend, answered from the frontend"
    );
    let udp = lab.sh_ok(
        "n1-k1",
        &format!("echo ping | socat -t5 -T5 - UDP4:{FRONTEND}:5353"),
    );
    assert_eq!(udp.trim(), "b1 ping", "UDP from the netkit pod");
    // The pod-side view: the reply came from the frontend, not the backend.
    let peer = lab.sh_ok(
        "n1-k1",
        &format!("curl -s --max-time 5 -o /dev/null -w '%{{remote_ip}}' http://{FRONTEND}:8080/"),
    );
    assert_eq!(peer.trim(), FRONTEND, "the pod sees the frontend's address");
}
