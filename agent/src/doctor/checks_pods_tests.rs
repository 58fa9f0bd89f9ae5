//! The pod checks' verdicts from recorded inputs.

use super::*;
use crate::datapath::hooks::OnHook;
use crate::doctor::Verdict;

const POD_SIDE: &str = "pod side ingress";

fn hook(interface: &str, hook: &'static str, programs: &[&str], wanted: bool) -> Hook {
    Hook {
        interface: interface.to_owned(),
        hook,
        programs: programs.iter().map(|p| OnHook::new(*p, "tcx")).collect(),
        wanted,
    }
}

fn is_hairpin(p: &str) -> bool {
    hairpin_common::TC_PROGRAMS.contains(&p)
}

#[test]
fn an_ebpf_dataplane_is_named_with_where_its_programs_run() {
    let hooks = [
        hook(
            "eth0",
            "ingress",
            &["uplink_ingress", "cil_from_netdev"],
            false,
        ),
        hook(
            "lxc1",
            "ingress",
            &["pod_ingress", "cil_from_container"],
            true,
        ),
        hook(
            "lxc2",
            "ingress",
            &["pod_ingress", "cil_from_container"],
            true,
        ),
        hook("lxc1", POD_SIDE, &["pod_receive"], true),
        hook("lxc2", POD_SIDE, &[], true),
        hook("docker0", "ingress", &["other"], false),
    ];
    let mut hooks = hooks;
    hooks[0].programs[1].via = "clsact";
    let c = datapath(&hooks, Some("eth0"), &["lxc2".into()], is_hairpin, POD_SIDE);
    assert_eq!(c.verdict, Verdict::Warn, "lxc2 lacks pod_receive");
    assert!(
        c.evidence.contains("cil_from_netdev (clsact) on eth0")
            && c.evidence
                .contains("cil_from_container (tcx) on 2 interfaces")
            && c.evidence.contains("netkit devices lxc2")
            && c.evidence.contains("inside 1 of 2 pods")
            && !c.evidence.contains("other"),
        "{}",
        c.evidence
    );
    let mut served = hooks;
    served[4].programs = vec![OnHook::new("pod_receive", "tcx")];
    let c = datapath(&served, Some("eth0"), &[], is_hairpin, POD_SIDE);
    assert_eq!(c.verdict, Verdict::Ok, "{}", c.evidence);
}

#[test]
fn a_stack_routed_cni_is_said_to_be_one() {
    let hooks = [hook("veth1", "ingress", &["pod_ingress"], true)];
    let c = datapath(&hooks, Some("eth0"), &[], is_hairpin, POD_SIDE);
    assert!(
        c.evidence.contains("the node's stack routes pods"),
        "{}",
        c.evidence
    );
}

fn flow(interface: &str, backend: &str, replied: bool, age_s: u64) -> PodFlow {
    PodFlow {
        interface: Some(interface.to_owned()),
        backend: backend.to_owned(),
        replied,
        age_s,
    }
}

#[test]
fn unanswered_pod_flows_whose_backend_answers_others_fail_as_bypassed() {
    let flows = [
        flow("vethc1", "198.51.100.2:80", false, 10),
        flow("vethc1", "198.51.100.2:80", false, 5),
        flow("vethc2", "198.51.100.2:80", true, 5),
    ];
    let answered = BTreeSet::from(["198.51.100.2:80".to_owned()]);
    let c = replies(&flows, &answered);
    assert_eq!(c.verdict, Verdict::Fail);
    assert!(
        c.evidence.contains("bypass hairpin") && c.evidence.contains("2 on vethc1"),
        "{}",
        c.evidence
    );
    assert!(!c.evidence.contains("vethc2"), "{}", c.evidence);
}

#[test]
fn unanswered_flows_to_a_backend_no_one_hears_from_only_warn() {
    let flows = [flow("vethc1", "198.51.100.9:80", false, 10)];
    let c = replies(&flows, &BTreeSet::new());
    assert_eq!(c.verdict, Verdict::Warn);
    assert!(c.evidence.contains("1 on vethc1"), "{}", c.evidence);
}

#[test]
fn a_flow_still_within_its_first_seconds_is_not_yet_unanswered() {
    let answered = BTreeSet::from(["198.51.100.2:80".to_owned()]);
    let young = [flow(
        "vethc1",
        "198.51.100.2:80",
        false,
        UNANSWERED_AFTER_S - 1,
    )];
    assert_eq!(replies(&young, &answered).verdict, Verdict::Ok);
    assert_eq!(replies(&[], &answered).verdict, Verdict::Ok);
}
