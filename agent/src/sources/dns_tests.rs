//! The names' state: diffs as addresses change, the grace period, failures.

use std::net::IpAddr;

use super::*;
use crate::{config::Config, sources::room::Room};

const FILE: &str = r#"
redirects:
  - name: registry
    frontend: registry.lab
    ports: [{ port: 8080, protocol: TCP, targetPort: 80 }]
    backends: [{ ip: 198.51.100.2 }]
  - name: registry
    frontend: registry.lab
    ports: [{ port: 8080, protocol: TCP, targetPort: 80 }]
    backends: [{ ip: "2001:db8:0:51::2" }]
  - name: web
    frontend: 203.0.113.30
    ports: [{ port: 8080, protocol: TCP, targetPort: 80 }]
    backends: [{ ip: 198.51.100.2 }]
dns: { minTtl: 5, maxTtl: 60, grace: 10 }
"#;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn setup() -> (Config, Names, Instant) {
    let config = Config::parse(std::path::Path::new("t.yaml"), FILE).unwrap();
    let now = Instant::now();
    let mut names = Names::new(config.dns.clone());
    names.track(&config, now);
    (config, names, now)
}

/// Room for plenty, nothing applied yet.
fn bounds<'a>(config: &'a Config, node: &'a [IpAddr]) -> Bounds<'a> {
    Bounds {
        written: &config.frontends,
        node,
        room: Room::of(1024, 65_536),
        applied: &[],
    }
}

fn addrs(names: &Names, config: &Config, node: &[IpAddr]) -> Vec<IpAddr> {
    names
        .frontends(&config.named, &bounds(config, node))
        .0
        .iter()
        .map(|f| f.addr)
        .collect()
}

#[test]
fn a_name_is_due_at_once_and_again_within_its_ttl_bounds() {
    let (_, mut names, now) = setup();
    assert_eq!(names.due(now), ["registry.lab"]);
    names.started("registry.lab", now);
    assert!(names.due(now).is_empty(), "not twice at once");
    let got = Outcome::Addrs(vec![ip("203.0.113.10")], Duration::from_secs(1));
    assert!(names.resolved("registry.lab", got, now));
    assert!(
        names.due(now + Duration::from_secs(4)).is_empty(),
        "minTtl holds"
    );
    assert_eq!(names.due(now + Duration::from_secs(5)), ["registry.lab"]);
    let got = Outcome::Addrs(vec![ip("203.0.113.10")], Duration::from_secs(3600));
    assert!(
        !names.resolved("registry.lab", got, now),
        "the same addresses"
    );
    assert_eq!(
        names.due(now + Duration::from_secs(60)),
        ["registry.lab"],
        "maxTtl holds"
    );
}

#[test]
fn each_address_gets_the_frontends_of_its_family() {
    let (config, mut names, now) = setup();
    let got = Outcome::Addrs(
        vec![ip("203.0.113.10"), ip("2001:db8:0:113::10")],
        Duration::from_secs(30),
    );
    names.resolved("registry.lab", got, now);
    let (fes, refused) = names.frontends(&config.named, &bounds(&config, &[]));
    assert!(refused.is_empty());
    let got: Vec<(IpAddr, IpAddr)> = fes.iter().map(|f| (f.addr, f.backends[0].addr)).collect();
    assert_eq!(
        got,
        [
            (ip("203.0.113.10"), ip("198.51.100.2")),
            (ip("2001:db8:0:113::10"), ip("2001:db8:0:51::2"))
        ]
    );
}

#[test]
fn an_address_the_name_no_longer_has_lingers_for_the_grace_period() {
    let (config, mut names, now) = setup();
    let ttl = Duration::from_secs(30);
    names.resolved(
        "registry.lab",
        Outcome::Addrs(vec![ip("203.0.113.10")], ttl),
        now,
    );
    let later = now + Duration::from_secs(30);
    assert!(names.resolved(
        "registry.lab",
        Outcome::Addrs(vec![ip("203.0.113.11")], ttl),
        later
    ));
    assert_eq!(
        addrs(&names, &config, &[]),
        [ip("203.0.113.10"), ip("203.0.113.11")],
        "the old address still takes new flows"
    );
    assert!(!names.expire(later + Duration::from_secs(9), |_| false));
    assert!(
        !names.expire(later + Duration::from_secs(10), |a| a == ip("203.0.113.10")),
        "kept while flows through it live"
    );
    assert_eq!(addrs(&names, &config, &[]).len(), 2);
    assert!(names.expire(later + Duration::from_secs(10), |_| false));
    assert_eq!(addrs(&names, &config, &[]), [ip("203.0.113.11")]);
    let view = &names.views()[0];
    assert_eq!(view.addrs, [ip("203.0.113.11")]);
    assert!(view.lingering.is_empty());
}

#[test]
fn a_failure_keeps_the_last_known_addresses_and_backs_off() {
    let (config, mut names, now) = setup();
    names.resolved(
        "registry.lab",
        Outcome::Addrs(vec![ip("203.0.113.10")], Duration::from_secs(5)),
        now,
    );
    let mut at = now + Duration::from_secs(5);
    let mut waits = Vec::new();
    for _ in 0..8 {
        assert!(!names.resolved("registry.lab", Outcome::Failed("SERVFAIL".into()), at));
        let next = (1..=120)
            .map(|s| at + Duration::from_secs(s))
            .find(|t| !names.due(*t).is_empty())
            .unwrap();
        waits.push((next - at).as_secs());
        at = next;
    }
    assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60], "doubling up to maxTtl");
    assert_eq!(addrs(&names, &config, &[]), [ip("203.0.113.10")]);
    assert_eq!(names.views()[0].error.as_deref(), Some("SERVFAIL"));
    assert!(
        names.unresolved().is_empty(),
        "resolved once: not reported as never resolved"
    );
}

#[test]
fn a_name_never_resolved_is_reported() {
    let (config, mut names, now) = setup();
    names.resolved("registry.lab", Outcome::Failed("NXDOMAIN".into()), now);
    assert!(addrs(&names, &config, &[]).is_empty());
    assert_eq!(
        names.unresolved(),
        [("registry.lab".to_owned(), "NXDOMAIN".to_owned())]
    );
}

#[test]
fn a_name_that_resolves_to_a_node_address_or_loopback_is_refused() {
    let (config, mut names, now) = setup();
    names.resolved(
        "registry.lab",
        Outcome::Addrs(
            vec![
                ip("192.0.2.11"),
                ip("127.0.0.1"),
                ip("203.0.113.30"),
                ip("203.0.113.10"),
            ],
            Duration::from_secs(30),
        ),
        now,
    );
    let (fes, refused) = names.frontends(&config.named, &bounds(&config, &[ip("192.0.2.11")]));
    let got: Vec<IpAddr> = fes.iter().map(|f| f.addr).collect();
    assert_eq!(got, [ip("203.0.113.10")]);
    let why: Vec<&str> = refused.iter().map(|(_, w)| w.as_str()).collect();
    assert_eq!(
        why,
        [
            "127.0.0.1 is not a unicast address",
            "192.0.2.11 is an address of this node: hairpin would capture the node's own traffic",
            "203.0.113.30:8080 is another frontend's",
        ]
    );
}

#[test]
fn a_name_at_a_link_local_address_is_served_only_where_the_file_allows_it() {
    let (mut config, mut names, now) = setup();
    let answer = || {
        Outcome::Addrs(
            vec![ip("169.254.169.254"), ip("240.0.0.9")],
            Duration::from_secs(30),
        )
    };
    names.resolved("registry.lab", answer(), now);
    assert!(addrs(&names, &config, &[]).is_empty());
    config.allow_reserved = vec!["169.254.169.254/32".parse().unwrap()];
    names.track(&config, now);
    names.resolved("registry.lab", answer(), now);
    assert_eq!(addrs(&names, &config, &[]), [ip("169.254.169.254")]);
}

#[test]
fn a_name_removed_from_the_configuration_is_forgotten() {
    let (config, mut names, now) = setup();
    names.resolved(
        "registry.lab",
        Outcome::Addrs(vec![ip("203.0.113.10")], Duration::from_secs(30)),
        now,
    );
    let mut unnamed = config.clone();
    unnamed.named.clear();
    names.track(&unnamed, now);
    assert!(names.views().is_empty());
    assert!(addrs(&names, &config, &[]).is_empty());
}

#[test]
fn an_adopted_address_serves_until_the_name_resolves_then_lingers_if_gone() {
    let (config, mut names, now) = setup();
    names.adopt("registry.lab", ip("203.0.113.10"));
    names.adopt("unknown.lab", ip("203.0.113.11"));
    assert_eq!(addrs(&names, &config, &[]), [ip("203.0.113.10")]);
    assert_eq!(names.due(now), ["registry.lab"], "still resolved at once");
    let moved = Outcome::Addrs(vec![ip("203.0.113.12")], Duration::from_secs(30));
    assert!(names.resolved("registry.lab", moved, now));
    assert_eq!(
        addrs(&names, &config, &[]),
        [ip("203.0.113.10"), ip("203.0.113.12")],
        "the adopted address is in its grace period"
    );
    assert!(names.expire(now + Duration::from_secs(11), |_| false));
    assert_eq!(addrs(&names, &config, &[]), [ip("203.0.113.12")]);
}

#[test]
fn a_name_served_from_adopted_addresses_while_dns_is_away_is_not_unresolved() {
    let (config, mut names, now) = setup();
    names.adopt("registry.lab", ip("203.0.113.10"));
    let away = Outcome::Failed("timed out".into());
    names.resolved("registry.lab", away.clone(), now);
    assert!(names.unresolved().is_empty(), "{:?}", names.unresolved());
    assert_eq!(addrs(&names, &config, &[]), [ip("203.0.113.10")]);
    assert_eq!(names.views()[0].error.as_deref(), Some("timed out"));
    // Without an address of an earlier agent, the same failure is one.
    let (_, mut names, now) = setup();
    names.resolved("registry.lab", away, now);
    assert_eq!(
        names.unresolved(),
        [("registry.lab".to_owned(), "timed out".to_owned())]
    );
}

#[test]
fn a_name_is_served_at_its_lowest_addresses_up_to_the_cap_and_says_so() {
    let text = FILE.replace("grace: 10 }", "grace: 10, maxAddresses: 2 }");
    let config = Config::parse(std::path::Path::new("t.yaml"), &text).unwrap();
    let now = Instant::now();
    let mut names = Names::new(config.dns.clone());
    names.track(&config, now);
    // 3,000 records, as a hostile or broken server may answer, rotated.
    let many: Vec<IpAddr> = (0..3000u32)
        .rev()
        .map(|i| IpAddr::V4(std::net::Ipv4Addr::from(0xCB00_7100 + i)))
        .chain([ip("2001:db8:0:113::10")])
        .collect();
    names.resolved(
        "registry.lab",
        Outcome::Addrs(many, Duration::from_secs(30)),
        now,
    );
    assert_eq!(
        addrs(&names, &config, &[]),
        [
            ip("203.0.113.0"),
            ip("203.0.113.1"),
            ip("2001:db8:0:113::10")
        ],
        "the lowest two IPv4 addresses and the one IPv6 address"
    );
    let (_, refused) = names.frontends(&config.named, &bounds(&config, &[]));
    assert_eq!(
        refused,
        [(
            "registry.lab".to_owned(),
            "it has 3000 IPv4 addresses: served at the lowest 2 (dns.maxAddresses)".to_owned()
        )]
    );
    // The next answer within the cap clears the note.
    names.resolved(
        "registry.lab",
        Outcome::Addrs(vec![ip("203.0.113.1")], Duration::from_secs(30)),
        now,
    );
    let (_, refused) = names.frontends(&config.named, &bounds(&config, &[]));
    assert!(refused.is_empty(), "{refused:?}");
}

#[test]
fn a_name_resolving_into_the_clusters_pod_or_service_range_is_refused_there() {
    let text = format!(
        "{FILE}kubernetes: {{ allowedFrontends: [203.0.113.0/24], podCidrs: [10.244.0.0/16], \
         serviceCidrs: [10.96.0.0/12] }}\n"
    );
    let config = Config::parse(std::path::Path::new("t.yaml"), &text).unwrap();
    let now = Instant::now();
    let mut names = Names::new(config.dns.clone());
    names.track(&config, now);
    names.resolved(
        "registry.lab",
        Outcome::Addrs(
            vec![ip("10.96.0.10"), ip("10.244.1.5"), ip("203.0.113.10")],
            Duration::from_secs(30),
        ),
        now,
    );
    assert_eq!(addrs(&names, &config, &[]), [ip("203.0.113.10")]);
    let (_, refused) = names.frontends(&config.named, &bounds(&config, &[]));
    assert_eq!(
        refused,
        [
            (
                "registry.lab".to_owned(),
                "10.244.1.5 is inside the cluster's pod CIDR 10.244.0.0/16".to_owned()
            ),
            (
                "registry.lab".to_owned(),
                "10.96.0.10 is inside the cluster's service CIDR 10.96.0.0/12".to_owned()
            ),
        ]
    );
}

#[test]
fn a_name_takes_room_an_address_at_a_time_those_the_maps_hold_first() {
    let (config, mut names, now) = setup();
    let answer =
        |v4: &[&str]| Outcome::Addrs(v4.iter().map(|a| ip(a)).collect(), Duration::from_secs(30));
    names.resolved(
        "registry.lab",
        answer(&["203.0.113.11", "203.0.113.12"]),
        now,
    );
    // The file's frontend and one address of the name fit, not two.
    let mut b = bounds(&config, &[]);
    b.room = Room::of(2, 65_536).after(&config.frontends);
    let (fes, refused) = names.frontends(&config.named, &b);
    let got: Vec<IpAddr> = fes.iter().map(|f| f.addr).collect();
    assert_eq!(got, [ip("203.0.113.11")], "the lowest first");
    assert_eq!(
        refused,
        [(
            "registry.lab".to_owned(),
            "203.0.113.12 not served: the datapath's tables are full: it needs 1 frontends, \
             with room for 0"
                .to_owned()
        )]
    );

    // The record changes: the new address waits while the old one, which
    // the maps hold, lingers, and takes its room once it is let go.
    let applied = fes.clone();
    names.resolved("registry.lab", answer(&["203.0.113.10"]), now);
    b.applied = &applied;
    let got: Vec<IpAddr> = names
        .frontends(&config.named, &b)
        .0
        .iter()
        .map(|f| f.addr)
        .collect();
    assert_eq!(got, [ip("203.0.113.11")], "the held address keeps its room");
    names.expire(now + Duration::from_secs(11), |_| false);
    let (fes, refused) = names.frontends(&config.named, &b);
    let got: Vec<IpAddr> = fes.iter().map(|f| f.addr).collect();
    assert_eq!(got, [ip("203.0.113.10")]);
    assert!(refused.is_empty(), "{refused:?}");
}
