//! One test per class of refused file, each with the exact message.

use super::*;

// The parser's errors: YAML syntax and the file's shape.

#[test]
fn a_yaml_syntax_error_is_refused_at_its_line_and_column() {
    assert_eq!(
        refusal(&[
            "redirects:",
            "  - name: web",
            "    frontend: \"203.0.113.10",
            "    ports: []",
        ]),
        "test.yaml:3:15: redirects[0]: unclosed quote"
    );
}

#[test]
fn an_unknown_field_at_the_top_level_is_refused() {
    assert_eq!(
        refusal(&web_and(&["metric: {}"])),
        "test.yaml:8:1: metric: unknown field `metric`, \
         expected one of redirects, interfaces, conntrack, metrics, socket, dns, kubernetes, allowReserved"
    );
}

#[test]
fn an_unknown_field_in_a_backend_is_refused_with_its_path() {
    assert_eq!(
        refusal(&[
            "redirects:",
            "  - name: web",
            "    frontend: 203.0.113.10",
            "    ports: [{ port: 8080, protocol: TCP }]",
            "    backends:",
            "      - { ip: 198.51.100.2, weigth: 2 }",
        ]),
        "test.yaml:6:29: redirects[0].backends[0].weigth: unknown field `weigth`, \
         expected one of ip, port, ports, weight"
    );
}

#[test]
fn a_file_that_cannot_be_read_is_refused_without_a_line() {
    let path = std::path::Path::new("/nonexistent/hairpin.yaml");
    assert_eq!(
        Config::load(path).unwrap_err().to_string(),
        "/nonexistent/hairpin.yaml: cannot read: No such file or directory (os error 2)"
    );
}

#[test]
fn an_unknown_field_in_a_port_is_refused() {
    assert_eq!(
        refusal(&[
            "redirects:",
            "  - name: web",
            "    frontend: 203.0.113.10",
            "    ports:",
            "      - { port: 8080, protocol: TCP, target_port: 80 }",
            "    backends:",
            "      - ip: 198.51.100.2",
        ]),
        "test.yaml:5:38: redirects[0].ports[0].target_port: unknown field `target_port`, \
         expected one of name, port, protocol, targetPort"
    );
}

#[test]
fn a_redirect_without_a_frontend_is_refused() {
    assert_eq!(
        refusal(&[
            "redirects:",
            "  - name: web",
            "    ports:",
            "      - { port: 8080, protocol: TCP }",
            "    backends:",
            "      - ip: 198.51.100.2",
        ]),
        "test.yaml:5:5: redirects[0]: missing field `frontend`"
    );
}

#[test]
fn a_negative_port_is_refused_by_the_parser() {
    assert_eq!(
        refusal_of_redirect("203.0.113.10", "-1", "198.51.100.2"),
        "test.yaml:5:17: redirects[0].ports[0].port: invalid u32"
    );
}

// The validator's errors: values that parse but do not make sense.

#[test]
fn an_ipv6_redirect_gives_ipv6_frontends_and_backends() {
    let config = parse(&[
        "redirects:",
        "  - name: web6",
        "    frontend: 2001:db8:0:113::10",
        "    ports: [{ port: 8080, protocol: TCP, targetPort: 80 }]",
        "    backends: [{ ip: \"2001:db8:0:51::2\" }]",
    ])
    .unwrap();
    let fe = &config.frontends[0];
    assert_eq!(
        fe.addr,
        "2001:db8:0:113::10".parse::<std::net::IpAddr>().unwrap()
    );
    assert_eq!(
        fe.backends[0].addr,
        "2001:db8:0:51::2".parse::<std::net::IpAddr>().unwrap()
    );
    assert_eq!((fe.port, fe.backends[0].port), (8080, 80));
}

#[test]
fn a_bad_interface_pattern_is_refused() {
    assert_eq!(
        refusal(&web_and(&["interfaces:", "  pods: [\"veth*\", \"cali[\"]"])),
        "test.yaml:9:19: interfaces.pods[1]: \
         bad pattern: Pattern syntax error near position 4: invalid range pattern"
    );
}

#[test]
fn a_conntrack_table_below_1024_entries_is_refused() {
    assert_eq!(
        refusal(&web_and(&["conntrack:", "  maxEntries: 1023"])),
        "test.yaml:9:15: conntrack.maxEntries: 1023 is too small: at least 1024"
    );
}

#[test]
fn a_metrics_address_without_a_port_is_refused() {
    assert_eq!(
        refusal(&web_and(&["metrics:", "  address: 0.0.0.0"])),
        "test.yaml:9:12: metrics.address: not an address:port (or off): \"0.0.0.0\""
    );
}

#[test]
fn a_metrics_address_other_hosts_reach_is_refused_unless_said() {
    assert_eq!(
        refusal(&web_and(&["metrics:", "  address: 0.0.0.0:9469"])),
        "test.yaml:9:12: metrics.address: 0.0.0.0:9469 is reachable from other hosts: say \
         `exposed: true` beside it to serve metrics and health there"
    );
    let exposed = parse(&web_and(&[
        "metrics:",
        "  address: 0.0.0.0:9469",
        "  exposed: true",
    ]))
    .expect("said");
    assert_eq!(exposed.metrics, Some("0.0.0.0:9469".parse().unwrap()));
}

#[test]
fn listener_bounds_out_of_range_are_refused() {
    assert_eq!(
        refusal(&web_and(&[
            "metrics:",
            "  address: 127.0.0.1:9469",
            "  maxMonitors: 0",
        ])),
        "test.yaml:10:16: metrics.maxMonitors: 0 is out of range: 1 to 1024"
    );
    assert_eq!(
        refusal(&web_and(&[
            "metrics:",
            "  address: 127.0.0.1:9469",
            "  maxConnections: 100000",
        ])),
        "test.yaml:10:19: metrics.maxConnections: 100000 is out of range: 16 to 65536"
    );
}

#[test]
fn an_unknown_socket_scope_is_refused() {
    assert_eq!(
        refusal(&web_and(&["socket:", "  scope: pods"])),
        "test.yaml:9:10: socket.scope: unknown scope \"pods\": host or all"
    );
}

#[test]
fn a_socket_cgroup_pattern_must_be_a_relative_path_the_datapath_sees() {
    let cgroups = |p: &str| {
        refusal(&web_and(&[
            "socket:",
            &format!("  cgroups: [ok/*, \"{p}\"]"),
        ]))
    };
    assert_eq!(
        cgroups("/sys/fs/cgroup/x"),
        "test.yaml:9:19: socket.cgroups[1]: \"/sys/fs/cgroup/x\": a relative path of names under socket.cgroup"
    );
    assert_eq!(
        cgroups("a/../b"),
        "test.yaml:9:19: socket.cgroups[1]: \"a/../b\": a relative path of names under socket.cgroup"
    );
    assert_eq!(
        cgroups("a/b/c/d/e/f/g/h/i"),
        "test.yaml:9:19: socket.cgroups[1]: \"a/b/c/d/e/f/g/h/i\" is 9 levels deep: at most 8 are looked up"
    );
    assert_eq!(
        cgroups("a/[b"),
        "test.yaml:9:19: socket.cgroups[1]: bad pattern: Pattern syntax error near position 2: invalid range pattern"
    );
}

#[test]
fn a_file_without_redirects_is_refused() {
    assert_eq!(
        refusal(&["redirects: []"]),
        "test.yaml:1:12: redirects: no redirect: hairpin needs at least one"
    );
}

#[test]
fn an_uplink_that_cannot_be_an_interface_name_is_refused() {
    assert_eq!(
        refusal(&web_and(&["interfaces: { uplink: a-name-far-too-long }"])),
        "test.yaml:8:23: interfaces.uplink: \"a-name-far-too-long\" is not an interface name (or auto)"
    );
}

#[test]
fn a_timeout_of_zero_is_refused_at_its_line() {
    assert_eq!(
        refusal(&web_and(&[
            "conntrack:",
            "  timeouts:",
            "    syn: 60",
            "    close: 0",
        ])),
        "test.yaml:11:12: conntrack.timeouts.close: a timeout of 0 would end every flow at once: at least 1 second"
    );
}

#[test]
fn a_max_ttl_below_the_min_ttl_is_refused() {
    assert_eq!(
        refusal(&web_and(&["dns: { minTtl: 30, maxTtl: 10 }"])),
        "test.yaml:8:28: dns.maxTtl: 10 is below minTtl (30 s)"
    );
}

#[test]
fn a_min_ttl_above_the_default_max_ttl_is_refused_where_run_would_panic() {
    assert_eq!(
        refusal(&web_and(&["dns: { minTtl: 400 }"])),
        "test.yaml:8:16: dns.minTtl: 400 is above maxTtl (300 s, the default)"
    );
}

#[test]
fn a_ttl_or_grace_over_a_day_is_refused_where_run_would_overflow() {
    assert_eq!(
        refusal(&web_and(&["dns: { maxTtl: 18446744073709551615 }"])),
        "test.yaml:8:16: dns.maxTtl: 18446744073709551615 s is over a day (86400 s)"
    );
    assert_eq!(
        refusal(&web_and(&["dns: { grace: 90000 }"])),
        "test.yaml:8:15: dns.grace: 90000 s is over a day (86400 s)"
    );
}

#[test]
fn a_names_address_cap_is_within_one_and_what_the_frontend_table_takes() {
    assert_eq!(
        refusal(&web_and(&["dns: { maxAddresses: 0 }"])),
        "test.yaml:8:22: dns.maxAddresses: 0 is not within 1 and 256"
    );
    assert_eq!(
        refusal(&web_and(&["dns: { maxAddresses: 3000 }"])),
        "test.yaml:8:22: dns.maxAddresses: 3000 is not within 1 and 256"
    );
}

#[test]
fn backend_weights_beyond_a_frontends_slots_are_refused_where_run_would_exit() {
    let mut lines = vec![
        "redirects:".to_owned(),
        "  - name: web".to_owned(),
        "    frontend: 203.0.113.10".to_owned(),
        "    ports: [{ port: 8080, protocol: TCP, targetPort: 80 }]".to_owned(),
        "    backends:".to_owned(),
    ];
    // 256 backends of weight 256: 65,536 slots, one too many.
    for i in 0..256 {
        lines.push(format!(
            "      - {{ ip: 198.51.{}.{}, weight: 256 }}",
            100 + i / 200,
            1 + i % 200
        ));
    }
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let e = refusal(&lines);
    assert!(
        e.ends_with(
            "redirects[0].backends: the weights sum to 65536 backend slots: \
             a frontend has at most 65535"
        ),
        "{e}"
    );
    assert!(e.starts_with("test.yaml:261:"), "{e}");
}
