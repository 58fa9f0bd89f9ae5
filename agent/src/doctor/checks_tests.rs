//! Each check's verdict from recorded inputs.

use super::*;
use crate::datapath::hooks::OnHook;
use crate::doctor::Verdict;

fn verdicts(checks: &[Check]) -> Vec<(&'static str, Verdict)> {
    checks.iter().map(|c| (c.check, c.verdict)).collect()
}

fn probed(version: (u32, u32), coarse_clock: bool, tcx: bool, csum_ipv6: bool) -> Kernel {
    Kernel {
        version,
        coarse_clock,
        tcx,
        csum_ipv6,
        netns_cookie: version >= (5, 14),
    }
}

#[test]
fn the_kernel_names_what_it_lacks_and_what_serves_instead() {
    let new = kernel(&probed((6, 18), true, true, true));
    assert_eq!(new.verdict, Verdict::Ok);
    let debian12 = kernel(&probed((6, 1), true, false, false));
    assert_eq!(debian12.verdict, Verdict::Warn);
    assert_eq!(debian12.evidence, "6.1: no TCX (6.6), no BPF_F_IPV6 (6.16)");
    assert!(
        debian12.advice.contains("clsact filters"),
        "{}",
        debian12.advice
    );
    let debian11 = kernel(&probed((5, 10), false, false, false));
    assert!(
        debian11
            .evidence
            .starts_with("5.10: no bpf_ktime_get_coarse_ns (5.11)"),
        "{}",
        debian11.evidence
    );
    assert!(
        debian11.advice.contains("full monotonic clock"),
        "{}",
        debian11.advice
    );
    assert_eq!(
        kernel(&probed((5, 4), false, false, false)).verdict,
        Verdict::Fail
    );
}

#[test]
fn a_program_the_verifier_refuses_fails_the_datapath_or_degrades_the_socket_path() {
    let refused = Err("pod_ingress: combined stack size of 3 calls is 576".to_string());
    assert_eq!(verifier(&Ok(4), &Ok(8), true).verdict, Verdict::Ok);
    let tc = verifier(&refused, &Ok(8), true);
    assert_eq!(tc.verdict, Verdict::Fail);
    assert!(
        tc.evidence.contains("combined stack size"),
        "{}",
        tc.evidence
    );
    assert_eq!(verifier(&Ok(4), &refused, true).verdict, Verdict::Warn);
    assert_eq!(verifier(&Ok(4), &refused, false).verdict, Verdict::Ok);
}

#[test]
fn a_pin_directory_off_bpffs_fails() {
    assert_eq!(
        pin_dir("/sys/fs/bpf/hairpin", Some(BPF_FS_MAGIC)).verdict,
        Verdict::Ok
    );
    let tmpfs = pin_dir("/run/x", Some(0x0102_1994));
    assert_eq!(tmpfs.verdict, Verdict::Fail);
    assert_eq!(
        tmpfs.evidence,
        "/run/x is on a filesystem of type 0x1021994, not bpffs"
    );
}

#[test]
fn pod_interfaces_that_no_pattern_matches_are_named() {
    let ifs: Vec<String> = ["lo", "eth0", "vethb1", "cali12", "cali34"]
        .map(String::from)
        .to_vec();
    let pats = |p: &[&str]| -> Vec<glob::Pattern> {
        p.iter().map(|p| glob::Pattern::new(p).unwrap()).collect()
    };
    assert_eq!(
        pod_patterns(&ifs, &pats(&["veth*", "cali*"])).verdict,
        Verdict::Ok
    );
    let c = pod_patterns(&ifs, &pats(&["cali*"]));
    assert_eq!(c.verdict, Verdict::Warn);
    assert_eq!(c.evidence, "vethb1 match no pattern of [\"cali*\"]");
    assert_eq!(cni(&ifs).evidence, "Calico, a veth-based CNI");
}

#[test]
fn a_rule_that_translates_a_frontend_is_found_and_a_longer_address_is_not() {
    let fe: Vec<IpAddr> = vec!["203.0.113.10".parse().unwrap()];
    let rules = "-A PREROUTING -d 203.0.113.100/32 -p tcp -j DNAT --to-destination 10.0.0.1\n\
                 -A OUTPUT -d 203.0.113.1/32 -j ACCEPT\n";
    assert_eq!(netfilter(&fe, rules).verdict, Verdict::Ok);
    let rules = "-A PREROUTING -d 203.0.113.10/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 198.51.100.2:80\n";
    let c = netfilter(&fe, rules);
    assert_eq!(c.verdict, Verdict::Warn);
    assert!(
        c.evidence.contains("--dport 8080 -j DNAT"),
        "{}",
        c.evidence
    );
    let nft = "ip daddr 203.0.113.10 tcp dport 8080 dnat to 198.51.100.2:80";
    assert_eq!(netfilter(&fe, nft).verdict, Verdict::Warn);
}

#[test]
fn missing_programs_fail_and_a_program_ahead_of_hairpins_is_named() {
    let hook = |i: &str, progs: &[&str], wanted| Hook {
        interface: i.into(),
        hook: "ingress",
        programs: progs.iter().map(|p| OnHook::new(*p, "tcx")).collect(),
        wanted,
    };
    let is_hairpin = |p: &str| p.starts_with("pod_") || p.starts_with("uplink_");
    // A pod side without pod_receive is cni datapath's to judge.
    let pod_side = Hook {
        hook: crate::datapath::attach::POD_SIDE_HOOK,
        ..hook("vethb1", &[], true)
    };
    let ok = programs(
        &[hook("vethb1", &["pod_ingress", "cil_from"], true), pod_side],
        is_hairpin,
    );
    assert_eq!(verdicts(&ok), [("programs", Verdict::Ok)]);
    let bad = programs(
        &[
            hook("vethb1", &[], true),
            hook("vethc1", &["cil_from", "pod_ingress"], true),
        ],
        is_hairpin,
    );
    assert_eq!(
        verdicts(&bad),
        [
            ("programs", Verdict::Fail),
            ("program order", Verdict::Warn)
        ]
    );
    assert_eq!(bad[0].evidence, "not attached on vethb1 ingress");
    assert_eq!(
        bad[1].evidence,
        "cil_from (tcx) run before hairpin's on vethc1 ingress"
    );
}

#[test]
fn the_layout_and_the_counters() {
    assert_eq!(layout(Some(2), 2).verdict, Verdict::Ok);
    assert_eq!(layout(Some(1), 2).verdict, Verdict::Warn);
    assert_eq!(layout(Some(3), 2).verdict, Verdict::Fail);
    assert_eq!(layout(None, 2).verdict, Verdict::Warn);
    assert_eq!(
        counters(&[("refused", 3), ("unparsable", 9)]).verdict,
        Verdict::Ok
    );
    let c = counters(&[("ct_insert_failed", 2)]);
    assert_eq!(
        (c.verdict, c.evidence.as_str()),
        (Verdict::Warn, "ct_insert_failed=2")
    );
    assert_eq!(capabilities(&["CAP_BPF (x)".into()]).verdict, Verdict::Fail);
}

#[test]
fn the_agent_its_degraded_items_the_table_and_the_socket_path() {
    assert_eq!(agent("127.0.0.1:9469", None)[0].verdict, Verdict::Warn);
    let items = [(
        "route".to_string(),
        "203.0.113.10".to_string(),
        "no route".to_string(),
    )];
    let c = agent("127.0.0.1:9469", Some(&items));
    assert_eq!(
        verdicts(&c),
        [("agent", Verdict::Ok), ("not served", Verdict::Warn)]
    );
    assert_eq!(c[1].evidence, "route 203.0.113.10: no route");
    assert_eq!(conntrack(10, 1024).verdict, Verdict::Ok);
    let full = conntrack(950, 1024);
    assert_eq!(
        (full.verdict, full.evidence.as_str()),
        (Verdict::Warn, "950 entries of 1024 (92 %)")
    );
    assert_eq!(socket_path(true, 0).verdict, Verdict::Warn);
    assert_eq!(socket_path(true, 8).verdict, Verdict::Ok);
    assert_eq!(socket_path(false, 0).verdict, Verdict::Ok);
}
