//! Refused redirects: their names, ports, protocols, backends and
//! duplicates, each with the exact message.

use super::*;

#[test]
fn port_zero_is_refused() {
    assert_eq!(
        refusal_of_redirect("203.0.113.10", "0", "198.51.100.2"),
        "test.yaml:5:17: redirects[0].ports[0].port: port 0 out of range 1..=65535"
    );
}

#[test]
fn a_port_above_65535_is_refused() {
    assert_eq!(
        refusal_of_redirect("203.0.113.10", "65536", "198.51.100.2"),
        "test.yaml:5:17: redirects[0].ports[0].port: port 65536 out of range 1..=65535"
    );
}

#[test]
fn a_target_port_above_65535_is_refused() {
    assert_eq!(
        refusal(&[
            "redirects:",
            "  - name: web",
            "    frontend: 203.0.113.10",
            "    ports:",
            "      - { port: 8080, protocol: TCP, targetPort: 80000 }",
            "    backends:",
            "      - ip: 198.51.100.2",
        ]),
        "test.yaml:5:50: redirects[0].ports[0].targetPort: port 80000 out of range 1..=65535"
    );
}

#[test]
fn a_backend_port_of_zero_is_refused() {
    assert_eq!(
        refusal(&[
            "redirects:",
            "  - name: web",
            "    frontend: 203.0.113.10",
            "    ports:",
            "      - { port: 8080, protocol: TCP }",
            "    backends:",
            "      - { ip: 198.51.100.2, port: 0 }",
        ]),
        "test.yaml:7:35: redirects[0].backends[0].port: port 0 out of range 1..=65535"
    );
}

#[test]
fn an_unknown_protocol_is_refused() {
    assert_eq!(
        refusal(&[
            "redirects:",
            "  - name: web",
            "    frontend: 203.0.113.10",
            "    ports:",
            "      - { port: 8080, protocol: sctp }",
            "    backends:",
            "      - ip: 198.51.100.2",
        ]),
        "test.yaml:5:33: redirects[0].ports[0].protocol: unknown protocol \"sctp\": TCP or UDP"
    );
}

#[test]
fn a_duplicate_redirect_name_is_refused() {
    assert_eq!(
        refusal(&web_and(&[
            "  - name: web",
            "    frontend: 203.0.113.11",
            "    ports:",
            "      - { port: 443, protocol: TCP }",
            "    backends:",
            "      - ip: 198.51.100.3",
        ])),
        "test.yaml:8:11: redirects[1].name: duplicate redirect name in this address family"
    );
}

#[test]
fn a_name_may_have_a_redirect_of_each_family() {
    let config = parse(&web_and(&[
        "  - name: web",
        "    frontend: 2001:db8:0:113::10",
        "    ports: [{ name: http, port: 8080, protocol: TCP, targetPort: 80 }]",
        "    backends: [{ ip: \"2001:db8:0:51::2\" }]",
    ]))
    .unwrap();
    let names: Vec<&str> = config.frontends.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        ["web/http/TCP", "web/http/TCP"],
        "one name, both families"
    );
    assert!(config.frontends[0].addr.is_ipv4() && config.frontends[1].addr.is_ipv6());
}

#[test]
fn an_empty_redirect_name_is_refused() {
    assert_eq!(
        refusal(&[
            "redirects:",
            "  - name: ''",
            "    frontend: 203.0.113.10",
            "    ports:",
            "      - { port: 8080, protocol: TCP }",
            "    backends:",
            "      - ip: 198.51.100.2",
        ]),
        "test.yaml:2:11: redirects[0].name: empty redirect name"
    );
}

#[test]
fn a_redirect_without_ports_is_refused() {
    assert_eq!(
        refusal(&[
            "redirects:",
            "  - name: web",
            "    frontend: 203.0.113.10",
            "    ports: []",
            "    backends:",
            "      - ip: 198.51.100.2",
        ]),
        "test.yaml:2:11: redirects[0].ports: a redirect needs at least one entry in ports"
    );
}

#[test]
fn a_redirect_without_backends_is_refused() {
    assert_eq!(
        refusal(&[
            "redirects:",
            "  - name: web",
            "    frontend: 203.0.113.10",
            "    ports:",
            "      - { port: 8080, protocol: TCP }",
            "    backends: []",
        ]),
        "test.yaml:2:11: redirects[0].backends: a redirect needs at least one entry in backends"
    );
}

#[test]
fn the_same_frontend_in_two_redirects_is_refused() {
    assert_eq!(
        refusal(&web_and(&[
            "  - name: web-again",
            "    frontend: 203.0.113.10",
            "    ports:",
            "      - { port: 8080, protocol: tcp, targetPort: 8000 }",
            "    backends:",
            "      - ip: 198.51.100.3",
        ])),
        "test.yaml:11:17: redirects[1].ports[0].port: duplicate frontend 203.0.113.10:8080/TCP"
    );
}

#[test]
fn the_same_port_with_another_protocol_is_another_frontend() {
    let config = parse(&web_and(&[
        "  - name: dns",
        "    frontend: 203.0.113.10",
        "    ports:",
        "      - { port: 8080, protocol: UDP }",
        "    backends:",
        "      - ip: 198.51.100.3",
    ]))
    .unwrap();
    let names: Vec<_> = config.frontends.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["web/http/TCP", "dns/8080/UDP"]);
}

#[test]
fn a_duplicate_backend_is_refused() {
    assert_eq!(
        refusal(&web_and(&["      - { ip: 198.51.100.2, weight: 2 }"])),
        "test.yaml:8:15: redirects[0].backends[1].ip: duplicate backend 198.51.100.2:80"
    );
}

#[test]
fn one_backend_address_on_two_ports_is_two_backends() {
    let config = parse(&web_and(&["      - { ip: 198.51.100.2, port: 81 }"])).unwrap();
    let ports: Vec<_> = config.frontends[0]
        .backends
        .iter()
        .map(|b| b.port)
        .collect();
    assert_eq!(ports, [80, 81]);
}

#[test]
fn weight_zero_is_refused() {
    assert_eq!(
        refusal(&web_and(&["      - { ip: 198.51.100.3, weight: 0 }"])),
        "test.yaml:8:37: redirects[0].backends[1].weight: weight 0 out of range 1..=256"
    );
}

#[test]
fn a_weight_above_256_is_refused() {
    assert_eq!(
        refusal(&web_and(&["      - { ip: 198.51.100.3, weight: 257 }"])),
        "test.yaml:8:37: redirects[0].backends[1].weight: weight 257 out of range 1..=256"
    );
}

#[test]
fn two_ports_of_one_name_in_a_redirect_are_refused() {
    assert_eq!(
        refusal(&[
            "redirects:",
            "  - name: web",
            "    frontend: 203.0.113.10",
            "    ports:",
            "      - { name: http, port: 8080, protocol: TCP }",
            "      - { name: http, port: 8081, protocol: TCP }",
            "    backends: [{ ip: 198.51.100.2 }]",
        ]),
        "test.yaml:6:17: redirects[0].ports[1].name: duplicate port name \"http\" in this redirect"
    );
}

#[test]
fn a_backend_port_for_an_unknown_frontend_port_is_refused() {
    assert_eq!(
        refusal(&web_and(&["      - { ip: 198.51.100.3, ports: { https: 8443 } }"])),
        "test.yaml:8:45: redirects[0].backends[1].ports.https: no port named or numbered \"https\" in this redirect"
    );
}

#[test]
fn the_same_name_and_port_in_two_redirects_is_refused() {
    assert_eq!(
        refusal(&[
            "redirects:",
            "  - name: a",
            "    frontend: registry.lab",
            "    ports: [{ port: 8080, protocol: TCP }]",
            "    backends: [{ ip: 198.51.100.2 }]",
            "  - name: b",
            "    frontend: registry.lab",
            "    ports: [{ port: 8080, protocol: TCP }]",
            "    backends: [{ ip: 198.51.100.3 }]",
        ]),
        "test.yaml:8:21: redirects[1].ports[0].port: duplicate frontend registry.lab:8080/TCP"
    );
}
