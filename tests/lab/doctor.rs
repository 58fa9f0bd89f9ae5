//! `hairpin doctor` on a lab node: the missing NAT loopback before hairpin,
//! all well with the agent running, and the faults it must name: a pod
//! interface no pattern matches, a hand-written DNAT rule for a frontend, a
//! pin directory off bpffs, a missing uplink or socket cgroup, a frontend
//! routed past a strict uplink, kube-proxy's IPVS address, a foreign TC
//! program ahead of hairpin's.

mod foreign;

use std::{fs, process::Command};

use aya::programs::TcAttachType;

use serde_json::Value;

use crate::{
    agent::ONE,
    require_privileged,
    support::lab::{Lab, HAIRPIN},
};

/// The doctor's checklist in node `node`, and whether it passed.
pub fn doctor(lab: &Lab, node: &str, args: &[&str]) -> (Vec<Value>, bool) {
    let out = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", lab.ns(node)))
        .arg(HAIRPIN)
        .env("HAIRPIN_SOCKET", lab.socket(node))
        .arg("doctor")
        .args(args)
        .args(["--output", "json"])
        .output()
        .expect("hairpin doctor");
    let checks = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor's JSON: {e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (checks, out.status.success())
}

/// The verdict and evidence of check `name`.
pub fn check<'a>(checks: &'a [Value], name: &str) -> (&'a str, &'a str) {
    let c = checks
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {checks:?}"));
    (
        c["verdict"].as_str().unwrap_or_default(),
        c["evidence"].as_str().unwrap_or_default(),
    )
}

#[test]
fn doctor_finds_the_node_well_then_names_each_fault() {
    require_privileged!();
    let lab = Lab::up();
    // Before hairpin: the doctor finds the problem.
    let plain = lab.run_dir().join("one.yaml");
    fs::write(&plain, ONE).unwrap();
    let plain = plain.display().to_string();
    let none = format!("/sys/fs/bpf/{}-none", lab.prefix);
    // Counts the probe's SYNs that carry PROBE_MARK, which the datapath
    // honours: without hairpin there is one probe, the marked one.
    lab.sh_ok(
        "n1",
        &format!(
            "iptables -t mangle -A OUTPUT -d 203.0.113.10/32 -p tcp --dport 8080 --syn \
             -m mark --mark {:#x} -j ACCEPT",
            hairpin_common::PROBE_MARK
        ),
    );
    let (checks, passed) = doctor(&lab, "n1", &["--config", &plain, "--pin-dir", &none]);
    assert!(!passed, "the missing NAT loopback fails the doctor");
    let marked = lab.sh_ok(
        "n1",
        "iptables -t mangle -L OUTPUT -nvx | awk '/mark match/ {print $1}'",
    );
    assert_ne!(marked.trim(), "0", "the probe's SYNs carry PROBE_MARK");
    assert!(!marked.trim().is_empty(), "the mangle rule is listed");
    let (verdict, evidence) = check(&checks, "nat loopback");
    assert_eq!(verdict, "fail");
    assert!(
        evidence.contains(
            "198.51.100.2:80 answer directly: the router does no NAT loopback, hairpin is needed"
        ),
        "{evidence}"
    );
    assert_eq!(
        check(&checks, "backends"),
        ("ok", "203.0.113.10:8080: 198.51.100.2:80 answer directly")
    );
    assert!(
        !checks.iter().any(|c| c["check"] == "through hairpin"),
        "no datapath, no probe through it: {checks:?}"
    );

    let agent = lab.agent("n1", ONE);
    let config = agent.config.display().to_string();
    let pins = agent.pin_dir.display().to_string();
    let base = ["--config", config.as_str(), "--pin-dir", pins.as_str()];

    let (checks, passed) = doctor(&lab, "n1", &base);
    assert!(passed, "{checks:?}");
    for name in [
        "btf",
        "pin directory",
        "cgroup v2",
        "capabilities",
        "locked memory",
        "pod interfaces",
        "netfilter",
        "ipvs",
        "datapath",
        "verifier",
        "programs",
        "nat loopback",
        "backends",
    ] {
        assert_eq!(check(&checks, name).0, "ok", "{name}: {checks:?}");
    }
    // What the kernel lacks is named, with what serves instead.
    let kernel = hairpin::datapath::kernel::Kernel::probe();
    let (verdict, evidence) = check(&checks, "kernel");
    assert_eq!(verdict == "ok", kernel.lacks().is_empty(), "{evidence}");
    for lack in kernel.lacks() {
        assert!(
            evidence.contains(lack.what),
            "{evidence} names {}",
            lack.what
        );
    }
    assert_eq!(
        check(&checks, "uplink"),
        ("ok", "auto: eth0 (203.0.113.10)")
    );
    // n1 filters strictly (scripts/lab.sh), its pods' veths by default too;
    // the frontend routes through the uplink, so that is fine.
    assert_eq!(
        check(&checks, "rp_filter"),
        ("ok", "uplink eth0 1 (strict); 1 (strict) on vethb1, vethc1")
    );
    assert_eq!(
        check(&checks, "through hairpin"),
        ("ok", "203.0.113.10:8080 reaches a backend through hairpin")
    );
    assert!(
        !checks.iter().any(|c| c["check"] == "program order"),
        "nothing runs ahead of hairpin: {checks:?}"
    );

    // A pod interface that no pattern matches.
    let cali = lab.run_dir().join("cali-only.yaml");
    fs::write(
        &cali,
        ONE.replace(r#"pods: ["veth*"]"#, r#"pods: ["cali*"]"#),
    )
    .unwrap();
    let cali = cali.display().to_string();
    let (checks, _) = doctor(&lab, "n1", &["--config", &cali, "--pin-dir", &pins]);
    let (verdict, evidence) = check(&checks, "pod interfaces");
    assert_eq!(verdict, "warn");
    assert!(
        evidence.contains("vethb1") && evidence.contains("vethc1"),
        "{evidence}"
    );

    // A hand-written DNAT rule for the frontend.
    lab.sh_ok(
        "n1",
        "iptables -t nat -A PREROUTING -d 203.0.113.10/32 -p tcp --dport 8080 \
         -j DNAT --to-destination 198.51.100.2:80",
    );
    let (checks, _) = doctor(&lab, "n1", &base);
    let (verdict, evidence) = check(&checks, "netfilter");
    assert_eq!(verdict, "warn");
    assert!(evidence.contains("203.0.113.10/32"), "{evidence}");

    // A pin directory that is not on bpffs fails the doctor.
    let off = lab.run_dir().join("pins");
    let off = off.display().to_string();
    let (checks, passed) = doctor(&lab, "n1", &["--config", &config, "--pin-dir", &off]);
    assert!(!passed, "a failed check fails the doctor");
    let (verdict, evidence) = check(&checks, "pin directory");
    assert_eq!(verdict, "fail");
    assert!(evidence.contains("not bpffs"), "{evidence}");

    network_faults(&lab, &none);
}

/// Writes a variant of `ONE` into the lab's run directory.
fn variant(lab: &Lab, file: &str, from: &str, to: &str) -> String {
    let path = lab.run_dir().join(file);
    let text = ONE.replace(from, to);
    assert_ne!(text, ONE, "{from:?} is in ONE");
    fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Faults of the node's network and system, found without an agent: an
/// uplink that does not exist, a socket cgroup that does not exist, a
/// frontend routed past the strict uplink, kube-proxy's IPVS address.
fn network_faults(lab: &Lab, none: &str) {
    let eth9 = variant(lab, "eth9.yaml", "uplink: auto", "uplink: eth9");
    let (checks, passed) = doctor(lab, "n1", &["--config", &eth9, "--pin-dir", none]);
    assert!(!passed);
    assert_eq!(
        check(&checks, "uplink"),
        ("fail", "eth9, as configured: no such interface")
    );

    // The socket path on: its cgroup must exist, on cgroup2.
    let cgroup = lab.cgroup("n1");
    let on = variant(
        lab,
        "socket-on.yaml",
        "socket: { enabled: false }",
        &format!("socket: {{ enabled: true, cgroup: {} }}", cgroup.display()),
    );
    let (checks, _) = doctor(lab, "n1", &["--config", &on, "--pin-dir", none]);
    assert_eq!(check(&checks, "cgroup v2").0, "ok");
    assert_eq!(
        check(&checks, "socket cgroup"),
        ("ok", format!("{} on cgroup2", cgroup.display()).as_str())
    );
    let gone = cgroup.join("absent");
    let off = variant(
        lab,
        "socket-gone.yaml",
        "socket: { enabled: false }",
        &format!("socket: {{ enabled: true, cgroup: {} }}", gone.display()),
    );
    let (checks, passed) = doctor(lab, "n1", &["--config", &off, "--pin-dir", none]);
    assert!(!passed);
    assert_eq!(
        check(&checks, "socket cgroup"),
        (
            "fail",
            format!("{}: no such directory", gone.display()).as_str()
        )
    );

    // A second frontend routed through a pod's veth: `auto` sees two
    // interfaces, and the strict eth0 would drop replies translated back
    // to it. UDP, so that no probe waits for it.
    lab.sh_ok("n1", "ip route add 192.0.2.200/32 dev vethc1");
    let two = variant(
        lab,
        "two-routes.yaml",
        "interfaces:",
        "  - name: away\n    frontend: 192.0.2.200\n    \
         ports: [{ port: 5353, protocol: UDP, targetPort: 53 }]\n    \
         backends: [{ ip: 198.51.100.2 }]\ninterfaces:",
    );
    let (checks, _) = doctor(lab, "n1", &["--config", &two, "--pin-dir", none]);
    assert_eq!(
        check(&checks, "uplink"),
        (
            "warn",
            "auto: the frontends route through eth0 (203.0.113.10), vethc1 (192.0.2.200); \
             the agent attaches to eth0"
        )
    );
    let (verdict, evidence) = check(&checks, "rp_filter");
    assert_eq!(verdict, "warn");
    assert!(
        evidence.contains("routed elsewhere: 192.0.2.200 via vethc1"),
        "{evidence}"
    );

    // kube-proxy in IPVS mode holds the frontend on kube-ipvs0 (a dummy
    // there; a bridge here, since the lab's kernel may lack the dummy
    // driver; left down, so that the address routes nothing).
    lab.sh_ok(
        "n1",
        "ip link add kube-ipvs0 type bridge && ip addr add 203.0.113.10/32 dev kube-ipvs0",
    );
    let (checks, _) = doctor(lab, "n1", &["--config", &two, "--pin-dir", none]);
    assert_eq!(
        check(&checks, "ipvs"),
        (
            "warn",
            "kube-ipvs0 holds 203.0.113.10: kube-proxy (IPVS) serves it on the node"
        )
    );
}

#[test]
fn doctor_names_a_foreign_program_that_ends_the_chain_ahead_of_hairpins() {
    require_privileged!();
    let lab = Lab::up();
    let agent = lab.agent("n1", ONE);
    let config = agent.config.display().to_string();
    let pins = agent.pin_dir.display().to_string();
    let base = ["--config", config.as_str(), "--pin-dir", pins.as_str()];
    let netns = format!("/run/netns/{}", lab.ns("n1"));
    let mut first =
        foreign::Foreign::attach(lab.run_dir(), &netns, "vethc1", TcAttachType::Ingress);
    let (checks, _) = doctor(&lab, "n1", &base);
    assert_eq!(
        check(&checks, "program order"),
        (
            "warn",
            format!(
                "{} (tcx) run before hairpin's on vethc1 ingress",
                foreign::NAME
            )
            .as_str()
        )
    );
    assert_eq!(check(&checks, "programs").0, "ok", "hairpin's are attached");

    first.detach();
    let (checks, _) = doctor(&lab, "n1", &base);
    assert!(
        !checks.iter().any(|c| c["check"] == "program order"),
        "detached: {checks:?}"
    );
}

/// With hairpin running, the doctor's marked probe passes the datapath by
/// (`PROBE_MARK`): it still finds that the router does no NAT loopback,
/// while the unmarked one goes through hairpin to a backend.
#[test]
fn doctor_probes_past_a_running_hairpin() {
    require_privileged!();
    let lab = Lab::up();
    let agent = lab.agent("n1", ONE);
    let config = agent.config.display().to_string();
    let pins = agent.pin_dir.display().to_string();
    let (checks, passed) = doctor(&lab, "n1", &["--config", &config, "--pin-dir", &pins]);
    assert!(passed, "{checks:?}");
    let (verdict, evidence) = check(&checks, "nat loopback");
    assert_eq!(verdict, "ok");
    assert!(
        evidence.ends_with(
            "198.51.100.2:80 answer directly: the router does no NAT loopback, hairpin is needed"
        ),
        "the marked probe was translated: {evidence}"
    );
    assert_eq!(
        check(&checks, "through hairpin"),
        ("ok", "203.0.113.10:8080 reaches a backend through hairpin")
    );
}
