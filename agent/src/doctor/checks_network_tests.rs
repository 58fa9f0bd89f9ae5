//! The network checks' verdicts from recorded inputs.

use super::*;
use crate::doctor::Verdict;

fn route(fe: &str, oif: Option<(u32, &str)>) -> Route {
    Route {
        frontend: fe.parse().unwrap(),
        oif: oif
            .map(|(i, n)| (i, n.to_owned()))
            .ok_or_else(|| "network is unreachable".to_owned()),
    }
}

fn names(n: &[&str]) -> Vec<String> {
    n.iter().map(|s| s.to_string()).collect()
}

#[test]
fn auto_takes_the_routes_interface_and_says_when_there_are_several() {
    let ifs = names(&["lo", "eth0", "eth1"]);
    let one = [
        route("203.0.113.10", Some((2, "eth0"))),
        route("203.0.113.11", Some((2, "eth0"))),
    ];
    let c = uplink(None, &ifs, &one);
    assert_eq!(
        (c[0].verdict, c[0].evidence.as_str()),
        (Verdict::Ok, "auto: eth0 (203.0.113.10, 203.0.113.11)")
    );
    let two = [
        route("203.0.113.10", Some((3, "eth1"))),
        route("192.0.2.7", Some((2, "eth0"))),
    ];
    assert_eq!(auto_uplink(&two), Some("eth0"), "the lowest index");
    let c = uplink(None, &ifs, &two);
    assert_eq!(
        (c[0].verdict, c[0].evidence.as_str()),
        (
            Verdict::Warn,
            "auto: the frontends route through eth0 (192.0.2.7), eth1 (203.0.113.10); \
             the agent attaches to eth0"
        )
    );
    let lost = [
        route("203.0.113.10", Some((2, "eth0"))),
        route("2001:db8::1", None),
    ];
    let c = uplink(None, &ifs, &lost);
    assert_eq!(
        c.iter().map(|c| (c.check, c.verdict)).collect::<Vec<_>>(),
        [("uplink", Verdict::Ok), ("route", Verdict::Warn)]
    );
    assert_eq!(c[1].evidence, "2001:db8::1: network is unreachable");
    let none = uplink(None, &ifs, &[route("2001:db8::1", None)]);
    assert_eq!(none[0].verdict, Verdict::Warn);
    assert_eq!(uplink(None, &ifs, &[])[0].verdict, Verdict::Ok);
}

#[test]
fn a_configured_uplink_must_exist() {
    let ifs = names(&["lo", "eth0", "eth1"]);
    let routes = [route("203.0.113.10", Some((2, "eth0")))];
    assert_eq!(uplink(Some("eth0"), &ifs, &routes)[0].verdict, Verdict::Ok);
    let gone = uplink(Some("bond0"), &ifs, &routes);
    assert_eq!(
        (gone[0].verdict, gone[0].evidence.as_str()),
        (Verdict::Fail, "bond0, as configured: no such interface")
    );
    let elsewhere = uplink(Some("eth1"), &ifs, &routes);
    assert_eq!(elsewhere[0].verdict, Verdict::Warn);
    assert!(
        elsewhere[0]
            .evidence
            .contains("route through eth0 (203.0.113.10)"),
        "{}",
        elsewhere[0].evidence
    );
}

#[test]
fn strict_filtering_on_the_uplink_warns_only_for_frontends_routed_elsewhere() {
    assert_eq!(effective_rp_filter(0, 1), 1);
    assert_eq!(effective_rp_filter(2, 1), 2, "all's loose wins");
    let pods = vec![("vethb1".to_owned(), 0), ("vethc1".to_owned(), 0)];
    let here = [route("203.0.113.10", Some((2, "eth0")))];
    let c = rp_filter(Some(("eth0", 1)), &pods, &here);
    assert_eq!(
        (c.verdict, c.evidence.as_str()),
        (
            Verdict::Ok,
            "uplink eth0 1 (strict); 0 (off) on vethb1, vethc1"
        )
    );
    let away = [
        route("203.0.113.10", Some((2, "eth0"))),
        route("192.0.2.7", Some((3, "eth1"))),
    ];
    let c = rp_filter(Some(("eth0", 1)), &pods, &away);
    assert_eq!(c.verdict, Verdict::Warn);
    assert!(
        c.evidence.contains("routed elsewhere: 192.0.2.7 via eth1"),
        "{}",
        c.evidence
    );
    assert!(c.advice.contains("net.ipv4.conf.eth0.rp_filter=2"), "{c:?}");
    let v6 = [route("2001:db8::7", Some((3, "eth1")))];
    assert_eq!(
        rp_filter(Some(("eth0", 1)), &pods, &v6).verdict,
        Verdict::Ok,
        "IPv4's filter only"
    );
    // Loose filtering accepts them.
    assert_eq!(
        rp_filter(Some(("eth0", 2)), &pods, &away).verdict,
        Verdict::Ok
    );
    assert_eq!(rp_filter(None, &[], &away).verdict, Verdict::Ok);
}

#[test]
fn a_frontend_on_kube_ipvs0_is_kube_proxys() {
    let fe: Vec<IpAddr> = vec!["203.0.113.10".parse().unwrap()];
    assert_eq!(ipvs(&fe, None).verdict, Verdict::Ok);
    let others: Vec<IpAddr> = vec![
        "10.96.0.1".parse().unwrap(),
        "203.0.113.100".parse().unwrap(),
    ];
    assert_eq!(ipvs(&fe, Some(&others)).verdict, Verdict::Ok);
    let with: Vec<IpAddr> = vec![
        "10.96.0.1".parse().unwrap(),
        "203.0.113.10".parse().unwrap(),
    ];
    let c = ipvs(&fe, Some(&with));
    assert_eq!(
        (c.verdict, c.evidence.as_str()),
        (
            Verdict::Warn,
            "kube-ipvs0 holds 203.0.113.10: kube-proxy (IPVS) serves it on the node"
        )
    );
}
