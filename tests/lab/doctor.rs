//! `hairpin doctor` on a lab node: the missing NAT loopback before hairpin,
//! all well with the agent running, and the faults it must name: a pod
//! interface no pattern matches, a hand-written DNAT rule for a frontend, a
//! pin directory off bpffs.

use std::{fs, process::Command};

use serde_json::Value;

use crate::{
    agent::ONE,
    require_privileged,
    support::lab::{Lab, HAIRPIN},
};

/// The doctor's checklist in node `node`, and whether it passed.
fn doctor(lab: &Lab, node: &str, args: &[&str]) -> (Vec<Value>, bool) {
    let out = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", lab.ns(node)))
        .arg(HAIRPIN)
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
fn check<'a>(checks: &'a [Value], name: &str) -> (&'a str, &'a str) {
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
    let (checks, passed) = doctor(&lab, "n1", &["--config", &plain, "--pin-dir", &none]);
    assert!(!passed, "the missing NAT loopback fails the doctor");
    let (verdict, evidence) = check(&checks, "nat loopback");
    assert_eq!(verdict, "fail");
    assert!(
        evidence.contains("198.51.100.2:80 answer directly: the router does no NAT loopback"),
        "{evidence}"
    );

    let agent = lab.agent("n1", ONE);
    let config = agent.config.display().to_string();
    let pins = agent.pin_dir.display().to_string();
    let base = ["--config", config.as_str(), "--pin-dir", pins.as_str()];

    let (checks, passed) = doctor(&lab, "n1", &base);
    assert!(passed, "{checks:?}");
    for name in [
        "pin directory",
        "capabilities",
        "pod interfaces",
        "netfilter",
        "datapath",
        "programs",
    ] {
        assert_eq!(check(&checks, name).0, "ok", "{name}: {checks:?}");
    }

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
}
