//! The values a valid file gives.

use super::*;

#[test]
fn a_full_configuration_gives_every_frontend_with_its_backends() {
    let config = parse(&[
        "redirects:",
        "  - name: registry",
        "    frontend: 203.0.113.10",
        "    ports:",
        "      - { name: https, port: 443, protocol: TCP, targetPort: 5000 }",
        "      - { port: 8443, protocol: tcp }",
        "    backends:",
        "      - { ip: 198.51.100.2 }",
        "      - { ip: 198.51.100.67, weight: 2 }",
        "      - { ip: 198.51.100.68, port: 6000, weight: 256 }",
        "  - name: dns",
        "    frontend: 203.0.113.11",
        "    ports:",
        "      - { name: dns, port: 53, protocol: UDP }",
        "    backends:",
        "      - ip: 198.51.100.53",
        "interfaces:",
        "  uplink: eth1",
        "  pods: [\"veth*\", \"cni?\"]",
        "conntrack:",
        "  maxEntries: 1024",
        "  timeouts: { syn: 30, tcp: 3600, close: 1, udp: 120 }",
        "metrics:",
        "  address: 0.0.0.0:9469",
        "  exposed: true",
        "  maxConnections: 2048",
        "  maxMonitors: 8",
        "socket:",
        "  enabled: false",
        "  scope: all",
        "  cgroup: /sys/fs/cgroup/kubepods.slice",
        "  pods: false",
        "  cgroups: [\"kubepods-*.slice/*pod*\", lab/c1]",
    ])
    .unwrap();
    let backend = |addr: [u8; 4], port, weight| Backend {
        addr: Ipv4Addr::from(addr).into(),
        port,
        weight,
    };
    assert_eq!(
        config,
        Config {
            named: Vec::new(),
            kubernetes: None,
            allow_reserved: Vec::new(),
            dns: DnsSettings::default(),
            frontends: vec![
                Frontend {
                    policy: Default::default(),
                    name: "registry/https/TCP".into(),
                    source: "test.yaml:2".into(),
                    addr: Ipv4Addr::new(203, 0, 113, 10).into(),
                    port: 443,
                    proto: IPPROTO_TCP,
                    backends: vec![
                        backend([198, 51, 100, 2], 5000, 1),
                        backend([198, 51, 100, 67], 5000, 2),
                        backend([198, 51, 100, 68], 6000, 256),
                    ],
                },
                Frontend {
                    policy: Default::default(),
                    name: "registry/8443/TCP".into(),
                    source: "test.yaml:2".into(),
                    addr: Ipv4Addr::new(203, 0, 113, 10).into(),
                    port: 8443,
                    proto: IPPROTO_TCP,
                    backends: vec![
                        backend([198, 51, 100, 2], 8443, 1),
                        backend([198, 51, 100, 67], 8443, 2),
                        backend([198, 51, 100, 68], 6000, 256),
                    ],
                },
                Frontend {
                    policy: Default::default(),
                    name: "dns/dns/UDP".into(),
                    source: "test.yaml:11".into(),
                    addr: Ipv4Addr::new(203, 0, 113, 11).into(),
                    port: 53,
                    proto: IPPROTO_UDP,
                    backends: vec![backend([198, 51, 100, 53], 53, 1)],
                },
            ],
            interfaces: Interfaces {
                uplink: Some("eth1".into()),
                pods: vec![pattern("veth*"), pattern("cni?")],
            },
            ct_entries: 1024,
            timeouts: CtTimeouts {
                syn: 30 * NS_PER_SEC,
                tcp: 3600 * NS_PER_SEC,
                close: NS_PER_SEC,
                udp: 120 * NS_PER_SEC,
            },
            metrics: Some(SocketAddr::from(([0, 0, 0, 0], 9469))),
            listener: ListenerLimits {
                connections: 2048,
                monitors: 8,
            },
            socket: SocketLb {
                enabled: false,
                scope: SocketScope::All,
                cgroup: Some(PathBuf::from("/sys/fs/cgroup/kubepods.slice")),
                pods: false,
                cgroups: vec![pattern("kubepods-*.slice/*pod*"), pattern("lab/c1")],
            },
        }
    );
}

#[test]
fn a_minimal_configuration_takes_the_defaults() {
    let config = parse(&web_and(&[])).unwrap();
    assert_eq!(
        config,
        Config {
            named: Vec::new(),
            kubernetes: None,
            allow_reserved: Vec::new(),
            dns: DnsSettings::default(),
            frontends: vec![Frontend {
                policy: Default::default(),
                name: "web/http/TCP".into(),
                source: "test.yaml:2".into(),
                addr: Ipv4Addr::new(203, 0, 113, 10).into(),
                port: 8080,
                proto: IPPROTO_TCP,
                backends: vec![Backend {
                    addr: Ipv4Addr::new(198, 51, 100, 2).into(),
                    port: 80,
                    weight: 1,
                }],
            }],
            interfaces: Interfaces {
                uplink: None,
                pods: DEFAULT_POD_PATTERNS.iter().map(|p| pattern(p)).collect(),
            },
            ct_entries: DEFAULT_CT_ENTRIES,
            timeouts: CtTimeouts::default(),
            metrics: Some(SocketAddr::from(([127, 0, 0, 1], 9469))),
            listener: ListenerLimits::default(),
            socket: SocketLb {
                enabled: true,
                scope: SocketScope::Host,
                cgroup: None,
                pods: true,
                cgroups: Vec::new(),
            },
        }
    );
}

#[test]
fn an_uplink_of_auto_means_the_route_to_the_frontends() {
    let config = parse(&web_and(&["interfaces:", "  uplink: auto"])).unwrap();
    assert_eq!(config.interfaces.uplink, None);
}

#[test]
fn metrics_address_off_disables_the_metrics_endpoint() {
    let config = parse(&web_and(&["metrics: { address: off }"])).unwrap();
    assert_eq!(config.metrics, None);
}

#[test]
fn a_timeout_of_many_centuries_saturates_instead_of_overflowing() {
    let config = parse(&web_and(&[
        "conntrack:",
        "  timeouts: { tcp: 18446744073709551615 }",
    ]))
    .unwrap();
    assert_eq!(config.timeouts.tcp, u64::MAX);
}

#[test]
fn a_backend_may_listen_elsewhere_for_some_ports_only() {
    let config = parse(&[
        "redirects:",
        "  - name: web",
        "    frontend: 203.0.113.10",
        "    ports:",
        "      - { name: http, port: 80, protocol: TCP, targetPort: 8080 }",
        "      - { name: https, port: 443, protocol: TCP, targetPort: 8443 }",
        "    backends:",
        "      - { ip: 198.51.100.2, ports: { https: 9443 } }",
        "      - { ip: 198.51.100.3 }",
    ])
    .unwrap();
    let ports: Vec<Vec<u16>> = config
        .frontends
        .iter()
        .map(|f| f.backends.iter().map(|b| b.port).collect())
        .collect();
    assert_eq!(ports, [vec![8080, 8080], vec![9443, 8443]]);
}

#[test]
fn a_frontend_may_be_a_name_resolved_in_the_family_of_its_backends() {
    let config = parse(&[
        "redirects:",
        "  - name: registry",
        "    frontend: Registry.Lab.",
        "    ports: [{ port: 8080, protocol: TCP, targetPort: 80 }]",
        "    backends: [{ ip: 198.51.100.2 }]",
        "  - name: registry",
        "    frontend: registry.lab",
        "    ports: [{ port: 8080, protocol: TCP, targetPort: 80 }]",
        "    backends: [{ ip: \"2001:db8:0:51::2\" }]",
        "dns: { minTtl: 2, maxTtl: 60, grace: 3, resolvConf: /tmp/resolv.conf, maxAddresses: 4 }",
    ])
    .unwrap();
    assert!(config.frontends.is_empty(), "no frontend at an address");
    let named: Vec<(&str, bool)> = config
        .named
        .iter()
        .map(|n| (n.host.as_str(), n.is_ipv4()))
        .collect();
    assert_eq!(named, [("registry.lab", true), ("registry.lab", false)]);
    let at = config.named[0].at("203.0.113.10".parse().unwrap());
    assert_eq!(at.addr, "203.0.113.10".parse::<std::net::IpAddr>().unwrap());
    assert_eq!(at.name, "registry/8080/TCP");
    assert_eq!(
        config.dns,
        DnsSettings {
            resolv_conf: PathBuf::from("/tmp/resolv.conf"),
            min_ttl: std::time::Duration::from_secs(2),
            max_ttl: std::time::Duration::from_secs(60),
            grace: std::time::Duration::from_secs(3),
            max_addresses: 4,
        }
    );
}
