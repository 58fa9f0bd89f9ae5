//! Beside an eBPF CNI (the lab's stand-in, tests/cni, as Cilium's host
//! routing and Calico's eBPF dataplane deliver): packets into a pod come by
//! `bpf_redirect_peer`, which skips the host-side interface's egress where
//! `pod_egress` translates a pod client's replies. `pod_receive`, on the
//! pod side's ingress, translates them wherever they come from.

use std::time::{Duration, Instant};

use crate::{
    curl,
    doctor::{check, doctor},
    require_privileged,
    support::lab::{Cni, Lab, FRONTEND},
    transfers::{assert_same, download, finish_download, serve_file, COMPLETE},
};

const FRONTEND6: &str = "2001:db8:0:113::10";

/// Both families; the TC path serves the host clients.
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
    backends: [{ ip: "2001:db8:0:51::2" }]
interfaces: { uplink: auto, pods: ["veth*"] }
socket: { enabled: false }
"#;

/// Requests from pod c1 to both families' frontends, with what crossed
/// the host side of c1's veth toward the pod meanwhile.
fn c1_requests_and_what_crossed_vethc1(lab: &Lab) -> (Vec<String>, String) {
    let capture = lab.background(
        "n1",
        "tcpdump -n -l -Q out -i vethc1 'tcp port 80 or tcp port 8080'",
        "vethc1-out.txt",
    );
    std::thread::sleep(Duration::from_millis(500));
    let answers = vec![
        curl(lab, "n1-c1", &format!("http://{FRONTEND}:8080/")),
        curl(lab, "n1-c1", &format!("-g http://[{FRONTEND6}]:8080/")),
    ];
    std::thread::sleep(Duration::from_millis(500));
    (answers, capture.finish())
}

#[test]
fn beside_an_ebpf_cni_every_client_reaches_every_frontend() {
    require_privileged!();
    let lab = Lab::up_beside(Cni::Ebpf);
    let before = lab.probe_family("all");
    assert!(
        before.iter().all(|((c, _), r)| (c == "ext") == (r == "ok")),
        "beside the stand-in and without hairpin, only the external client is served: {before:?}"
    );
    let _n1 = lab.agent("n1", DUAL);
    let _n2 = lab.agent("n2", DUAL);
    let after = lab.probe_family("all");
    assert_eq!(after.len(), 20, "5 clients × 4 frontends: {after:?}");
    assert!(
        after.values().all(|r| r == "ok"),
        "every client reaches every frontend of both families beside the eBPF CNI: {after:?}"
    );
    for url in [
        format!("http://{FRONTEND}:8080/"),
        format!("-g http://[{FRONTEND6}]:8080/"),
    ] {
        assert_eq!(curl(&lab, "n1-b1", &url), "b1", "the backend itself: {url}");
    }
    // The stand-in does deliver past the host side: c1 is answered while
    // nothing of its flows leaves vethc1 toward it.
    let (answers, crossed) = c1_requests_and_what_crossed_vethc1(&lab);
    assert_eq!(answers, ["b1", "b1"], "pod c1, both families");
    assert!(
        crossed.lines().all(|l| !l.contains(" > ")),
        "the replies came by bpf_redirect_peer, not through vethc1:\n{crossed}"
    );
}

/// `DUAL` with short lifetimes for flows that get no answer, so that the
/// agent counts them soon.
fn dual_short() -> String {
    DUAL.replace(
        "socket: { enabled: false }",
        "socket: { enabled: false }\nconntrack: { timeouts: { syn: 3, udp: 3 } }",
    )
}

#[test]
fn without_its_pod_side_program_a_pod_client_fails_beside_an_ebpf_cni_and_doctor_says_why() {
    require_privileged!();
    let lab = Lab::up_beside(Cni::Ebpf);
    let config = dual_short();
    let mut agent = lab.agent("n1", &config);
    let url = format!("http://{FRONTEND}:8080/");
    assert_eq!(curl(&lab, "n1-c1", &url), "b1", "served with the pod side");
    let status = lab.hairpin("n1", &["status", "--output", "json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&status).expect("status json");
    let pod_side = |ifname: &str| {
        rows.iter()
            .find(|r| r["interface"] == ifname && r["hook"] == "pod side ingress")
            .map(|r| r["programs"].clone())
    };
    for pod in ["vethb1", "vethc1"] {
        assert_eq!(
            pod_side(pod),
            Some(serde_json::json!(["pod_receive"])),
            "status shows {pod}'s pod side: {status}"
        );
    }
    let cfg = agent.config.display().to_string();
    let pins = agent.pin_dir.display().to_string();
    let args = ["--config", &cfg, "--pin-dir", &pins];
    let (checks, passed) = doctor(&lab, "n1", &args);
    assert!(passed, "doctor passes with the pod sides: {checks:#?}");
    let (_, datapath) = check(&checks, "cni datapath");
    // The stand-in attaches as clsact filters, after hairpin's programs.
    assert!(
        datapath.contains("standin_pod (clsact) on")
            && datapath.contains("standin_uplink (clsact) on eth0"),
        "doctor names the eBPF dataplane's programs and how they are attached: {datapath}"
    );

    // Take the pod side away, as an agent without it would leave c1.
    agent.stop(libc::SIGKILL);
    if lab
        .sh("n1-c1", "tc filter show dev eth0 ingress")
        .stdout
        .is_empty()
    {
        let pin = agent.pin_dir.join("links/pod_receive/vethc1");
        std::fs::remove_file(&pin).expect("unpin the pod side's link");
    } else {
        lab.sh_ok("n1-c1", "tc filter del dev eth0 ingress");
    }
    let out = lab.sh("n1-c1", &format!("curl -s --max-time 3 {url}"));
    assert!(
        !out.status.success(),
        "without pod_receive, c1's replies bypass hairpin beside the eBPF CNI: {out:?}"
    );
    assert_eq!(curl(&lab, "n1", &url), "b1", "the backend answers the host");
    let (checks, passed) = doctor(&lab, "n1", &args);
    assert!(!passed, "doctor fails without the pod side: {checks:#?}");
    let (verdict, datapath) = check(&checks, "cni datapath");
    assert!(
        verdict == "warn" && datapath.contains("pod_receive inside 1 of 2 pods"),
        "doctor names the missing pod side: {datapath}"
    );
    let (verdict, replies) = check(&checks, "pod replies");
    assert!(
        verdict == "fail" && replies.contains("bypass hairpin") && replies.contains("on vethc1"),
        "doctor names the symptom: {replies}"
    );

    agent.start();
    agent.wait_for_log(
        "pod interface attached interface=vethc1",
        Duration::from_secs(20),
    );
    assert_eq!(
        curl(&lab, "n1-c1", &url),
        "b1",
        "served again after the restart"
    );
    // The flow left unanswered expires (3 s) and is counted by interface.
    let deadline = Instant::now() + Duration::from_secs(20);
    let counted = loop {
        let metrics = lab.sh_ok("n1", "curl -s http://127.0.0.1:9469/metrics");
        let line = metrics
            .lines()
            .find(|l| l.starts_with("hairpin_pod_flows_unreplied_total{interface=\"vethc1\"}"))
            .map(str::to_owned);
        if line.is_some() || Instant::now() > deadline {
            break line;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        counted.is_some_and(|l| !l.ends_with(" 0")),
        "the agent counts the unanswered pod flow on vethc1"
    );
    let (checks, passed) = doctor(&lab, "n1", &args);
    assert!(passed, "doctor passes again: {checks:#?}");
}

#[test]
fn a_pod_added_beside_an_ebpf_cni_is_served_and_detach_leaves_its_namespace_clean() {
    pod_added_then_detached(&[]);
}

#[test]
fn the_clsact_fallback_serves_pod_sides_once_across_a_restart_and_detaches_them() {
    pod_added_then_detached(&["--attach", "clsact"]);
}

/// hairpin's filters on the ingress of pod `pod`'s own end (clsact mode).
fn pod_side_filters(lab: &Lab, pod: &str) -> usize {
    lab.sh_ok(pod, "tc filter show dev eth0 ingress")
        .lines()
        .filter(|l| l.contains("pod_receive"))
        .count()
}

fn pod_added_then_detached(extra: &[&str]) {
    require_privileged!();
    let lab = Lab::up_beside(Cni::Ebpf);
    let clsact = extra.contains(&"clsact");
    let mut agent = lab.agent_with("n1", DUAL, extra);
    lab.add_pod("n1", "c3", "198.51.100.4");
    agent.wait_for_log("interface=vethc3", Duration::from_secs(10));
    let url = format!("http://{FRONTEND}:8080/");
    assert_eq!(
        curl(&lab, "n1-c3", &url),
        "b1",
        "the new pod reaches the frontend"
    );
    if clsact {
        agent.stop(libc::SIGTERM);
        agent.start();
        agent.wait_for_log(
            "pod interface attached interface=vethc3",
            Duration::from_secs(20),
        );
        for pod in ["n1-c1", "n1-c3", "n1-b1"] {
            assert_eq!(
                pod_side_filters(&lab, pod),
                1,
                "{pod}: one pod_receive filter"
            );
        }
        assert_eq!(curl(&lab, "n1-c3", &url), "b1", "served after a restart");
    }
    agent.stop(libc::SIGTERM);
    lab.hairpin("n1", &["detach"]);
    let status = lab.hairpin("n1", &["status", "--output", "json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&status).expect("status json");
    assert!(
        rows.iter().all(|r| r["hairpin"] == 0),
        "detach leaves no hairpin program on any hook, pod sides included: {status}"
    );
    for pod in ["n1-c1", "n1-c3", "n1-b1"] {
        assert_eq!(
            pod_side_filters(&lab, pod),
            0,
            "{pod}: a filter left in the pod"
        );
    }
}

#[test]
fn a_transfer_from_a_pod_beside_an_ebpf_cni_survives_a_kill_9_and_a_restart() {
    require_privileged!();
    let lab = Lab::up_beside(Cni::Ebpf);
    let data = serve_file(&lab, "n1-b1", "big.bin", 16);
    let mut agent = lab.agent("n1", DUAL);
    let _n2 = lab.agent("n2", DUAL);
    let (same, same_out) = download(&lab, "n1-c1", "big.bin", 8080, "3M");
    let (other, other_out) = download(&lab, "n2-c2", "big.bin", 8080, "3M");
    std::thread::sleep(Duration::from_secs(2));
    agent.stop(libc::SIGKILL);
    std::thread::sleep(Duration::from_secs(1));
    agent.start();
    for (bg, out, who) in [
        (same, same_out, "pod on the backend's node"),
        (other, other_out, "pod on the other node"),
    ] {
        assert_eq!(
            finish_download(bg, Duration::from_secs(30)),
            COMPLETE,
            "{who}"
        );
        assert_same(&out, &data, who);
    }
}

/// The socket path with scope `all` serves pods whose sockets are in its
/// cgroup at `connect`, so nothing of theirs needs translating on the way
/// back: beside an eBPF CNI they need no pod side.
#[test]
fn pods_on_the_socket_path_are_served_beside_an_ebpf_cni_without_a_pod_side() {
    require_privileged!();
    let lab = Lab::up_beside(Cni::Ebpf);
    let cgroup = lab.cgroup("n1");
    let config = DUAL.replace(
        "socket: { enabled: false }",
        &format!("socket: {{ scope: all, cgroup: {} }}", cgroup.display()),
    );
    let mut agent = lab.agent("n1", &config);
    agent.stop(libc::SIGKILL);
    if lab
        .sh("n1-c1", "tc filter show dev eth0 ingress")
        .stdout
        .is_empty()
    {
        std::fs::remove_file(agent.pin_dir.join("links/pod_receive/vethc1")).expect("unpin");
    } else {
        lab.sh_ok("n1-c1", "tc filter del dev eth0 ingress");
    }
    for (url, peer) in [
        (format!("http://{FRONTEND}:8080/"), FRONTEND),
        (format!("-g http://[{FRONTEND6}]:8080/"), FRONTEND6),
    ] {
        let out = lab.sh_in(
            &cgroup,
            "n1-c1",
            &format!("curl -s --max-time 5 -w ' %{{remote_ip}}' {url}"),
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("b1\n {peer}"),
            "pod c1 on the socket path, {url}: it sees the frontend"
        );
    }
    let udp = lab.sh_in(
        &cgroup,
        "n1-c1",
        &format!("echo ping | timeout 5 socat -t2 -T2 - UDP4:{FRONTEND}:5353"),
    );
    assert!(
        String::from_utf8_lossy(&udp.stdout).contains("b1 ping"),
        "UDP from pod c1 on the socket path: {udp:?}"
    );
    let host = lab.sh_in(
        &cgroup,
        "n1",
        &format!("curl -s --max-time 5 http://{FRONTEND}:8080/"),
    );
    assert_eq!(
        String::from_utf8_lossy(&host.stdout).trim(),
        "b1",
        "a host process on the socket path"
    );
    let out = lab.sh(
        "n1-c1",
        &format!("curl -s --max-time 3 http://{FRONTEND}:8080/"),
    );
    assert!(
        !out.status.success(),
        "outside the cgroup, c1 is on the TC path, which lacks its pod side here"
    );
}
