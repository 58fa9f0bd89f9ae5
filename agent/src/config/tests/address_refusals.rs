//! Refused frontend and backend addresses: what no source may install
//! (the same test serves names and the cluster), each with the exact
//! message.

use super::*;

#[test]
fn a_frontend_that_is_neither_an_address_nor_a_name_is_refused() {
    assert_eq!(
        refusal_of_redirect("203.0.113.999", "443", "198.51.100.2"),
        "test.yaml:3:15: redirects[0].frontend: not an IP address or a DNS name: \"203.0.113.999\""
    );
}

#[test]
fn a_loopback_frontend_is_refused() {
    assert_eq!(
        refusal_of_redirect("127.0.0.53", "53", "198.51.100.2"),
        "test.yaml:3:15: redirects[0].frontend: 127.0.0.53 is not a unicast address"
    );
}

#[test]
fn a_multicast_frontend_is_refused() {
    assert_eq!(
        refusal_of_redirect("239.1.2.3", "5000", "198.51.100.2"),
        "test.yaml:3:15: redirects[0].frontend: 239.1.2.3 is not a unicast address"
    );
}

#[test]
fn an_unspecified_frontend_is_refused() {
    assert_eq!(
        refusal_of_redirect("0.0.0.0", "80", "198.51.100.2"),
        "test.yaml:3:15: redirects[0].frontend: 0.0.0.0 is not a unicast address"
    );
}

#[test]
fn a_broadcast_frontend_is_refused() {
    assert_eq!(
        refusal_of_redirect("255.255.255.255", "80", "198.51.100.2"),
        "test.yaml:3:15: redirects[0].frontend: 255.255.255.255 is not a unicast address"
    );
}

#[test]
fn a_backend_that_is_not_an_ip_address_is_refused() {
    assert_eq!(
        refusal_of_redirect("203.0.113.10", "80", "198.51.100"),
        "test.yaml:7:13: redirects[0].backends[0].ip: not an IP address: \"198.51.100\""
    );
}

#[test]
fn a_backend_of_the_other_family_is_refused() {
    assert_eq!(
        refusal_of_redirect("203.0.113.10", "80", "2001:db8::1"),
        "test.yaml:7:13: redirects[0].backends[0].ip: 2001:db8::1 is not of the frontend's family: a redirect is IPv4 or IPv6"
    );
}

#[test]
fn a_loopback_backend_is_refused() {
    assert_eq!(
        refusal_of_redirect("203.0.113.10", "80", "127.0.0.1"),
        "test.yaml:7:13: redirects[0].backends[0].ip: 127.0.0.1 is not a unicast address"
    );
}

#[test]
fn a_backend_on_the_frontends_own_address_is_refused() {
    assert_eq!(
        refusal_of_redirect("203.0.113.10", "8080", "203.0.113.10"),
        "test.yaml:7:13: redirects[0].backends[0].ip: 203.0.113.10 is the frontend's own address: a loop"
    );
}

#[test]
fn a_frontend_on_an_address_of_the_node_is_refused_at_its_line() {
    let mut text = web_and(&[]).join("\n");
    text.push('\n');
    let node = [
        "192.0.2.1".parse().unwrap(),
        "203.0.113.10".parse().unwrap(),
    ];
    let refused = Config::parse_on_node(Path::new("test.yaml"), &text, &node).unwrap_err();
    assert_eq!(
        refused.to_string(),
        "test.yaml:3:15: redirects[0].frontend: 203.0.113.10 is an address of this node: hairpin would capture the node's own traffic"
    );
    assert!(
        Config::parse_on_node(Path::new("test.yaml"), &text, &node[..1]).is_ok(),
        "another node address does not refuse the frontend"
    );
}

#[test]
fn link_local_mapped_and_reserved_addresses_are_neither_frontends_nor_backends() {
    for (frontend, backend, why) in [
        (
            "169.254.169.254",
            "198.51.100.2",
            "169.254.169.254 is link-local (169.254.0.0/16, the cloud metadata service's range), \
             which allowReserved does not list",
        ),
        (
            "240.0.0.1",
            "198.51.100.2",
            "240.0.0.1 is reserved (240.0.0.0/4), which allowReserved does not list",
        ),
        (
            "\"::ffff:203.0.113.10\"",
            "\"2001:db8::2\"",
            "::ffff:203.0.113.10 is an IPv4-mapped IPv6 address: write the IPv4 address",
        ),
        (
            "\"fe80::1\"",
            "\"2001:db8::2\"",
            "fe80::1 is link-local (fe80::/10), which allowReserved does not list",
        ),
    ] {
        let got = refusal_of_redirect(frontend, "8080", backend);
        assert!(
            got.ends_with(&format!("redirects[0].frontend: {why}")),
            "{got}"
        );
    }
    let got = refusal_of_redirect("203.0.113.10", "8080", "169.254.169.254");
    assert!(
        got.ends_with(
            "redirects[0].backends[0].ip: 169.254.169.254 is link-local \
             (169.254.0.0/16, the cloud metadata service's range), which allowReserved does not list"
        ),
        "{got}"
    );
}

#[test]
fn allow_reserved_admits_its_ranges_and_no_other() {
    let with = |allow: &str, frontend: &str, ip: &str| {
        parse(&[
            allow,
            "redirects:",
            "  - name: metadata",
            &format!("    frontend: {frontend}"),
            "    ports:",
            "      - { port: 80, protocol: TCP }",
            "    backends:",
            &format!("      - ip: {ip}"),
        ])
    };
    let c = with(
        "allowReserved: [169.254.169.254/32]",
        "169.254.169.254",
        "198.51.100.2",
    )
    .unwrap();
    assert_eq!(c.allow_reserved, ["169.254.169.254/32".parse().unwrap()]);
    assert_eq!(c.frontends[0].addr.to_string(), "169.254.169.254");
    // A backend in the range too; another link-local address is not in it.
    with(
        "allowReserved: [169.254.0.0/16]",
        "203.0.113.10",
        "169.254.1.1",
    )
    .unwrap();
    let e = with(
        "allowReserved: [169.254.169.254/32]",
        "169.254.169.253",
        "198.51.100.2",
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("which allowReserved does not list"),
        "{e}"
    );
    // Only link-local and reserved ranges: nothing else is opened by it.
    for (range, col) in [
        ("203.0.113.0/24", 17),
        ("169.254.0.0/15", 17),
        ("\"::ffff:0:0/96\"", 17),
    ] {
        let e = with(
            &format!("allowReserved: [{range}]"),
            "203.0.113.10",
            "198.51.100.2",
        )
        .unwrap_err();
        assert_eq!(
            (e.line, e.column, e.field.as_str()),
            (1, col, "allowReserved[0]")
        );
        assert!(e.message.ends_with("nothing to allow"), "{e}");
    }
    // An IPv4-mapped address is written as IPv4, whatever the file allows.
    let e = with(
        "allowReserved: [\"fe80::/10\"]",
        "\"::ffff:203.0.113.10\"",
        "\"2001:db8::2\"",
    )
    .unwrap_err();
    assert!(e.to_string().contains("IPv4-mapped"), "{e}");
}
