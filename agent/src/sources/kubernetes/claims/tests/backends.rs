//! Backends: endpoints, their conditions and families, the policies.

use serde_json::json;

use super::*;

#[test]
fn a_service_redirect_leads_to_the_ready_endpoints_at_their_target_port() {
    let d = web_world().redirect(web_redirect()).run();
    assert_eq!(
        d.frontends,
        vec![Frontend {
            policy: Default::default(),
            name: "HairpinRedirect/web/8080/tcp".into(),
            source: "HairpinRedirect/web".into(),
            addr: "203.0.113.10".parse().unwrap(),
            port: 8080,
            proto: 6,
            backends: vec![
                Backend {
                    addr: "10.244.1.5".parse().unwrap(),
                    port: 8080,
                    weight: 1
                },
                Backend {
                    addr: "10.244.2.7".parse().unwrap(),
                    port: 8080,
                    weight: 1
                },
            ],
        }]
    );
    assert_eq!(report(&d), (State::Applied, String::new()));
}

#[test]
fn the_service_port_by_number_and_a_udp_port_by_name() {
    let mut r = redirect("dns", "203.0.113.10", to_service(json!("dns")), json!({}));
    r["spec"]["frontend"]["toPorts"] = json!([{"port": 53, "protocol": "UDP"}]);
    r["spec"]["backend"]["toPorts"] = json!([{"port": "dns", "protocol": "UDP"}]);
    let d = web_world().redirect(r).run();
    assert_eq!(d.frontends[0].proto, 17);
    assert_eq!(backends(&d), ["10.244.1.5:5353", "10.244.2.7:5353"]);
    let d = web_world()
        .redirect(redirect(
            "web",
            "203.0.113.10",
            to_service(json!(80)),
            json!({}),
        ))
        .run();
    assert_eq!(backends(&d), ["10.244.1.5:8080", "10.244.2.7:8080"]);
}

#[test]
fn serving_terminating_endpoints_serve_only_when_no_ready_one_is_left() {
    let d = World::new()
        .service(service("web", "web", json!({})))
        .slice(slice(
            "web",
            "web",
            "IPv4",
            &[
                ("10.244.2.8", "n2", false, true, true),
                ("10.244.2.9", "n2", false, false, true),
                ("10.244.2.10", "n2", false, false, false),
            ],
        ))
        .redirect(web_redirect())
        .run();
    assert_eq!(backends(&d), ["10.244.2.8:8080"]);
}

#[test]
fn an_ipv6_frontend_takes_the_ipv6_slices_only() {
    let d = web_world()
        .slice(slice(
            "web",
            "web",
            "IPv6",
            &[("fd00:244::5", "n1", true, true, false)],
        ))
        .redirect(redirect(
            "web6",
            "2001:db8:113::10",
            to_service(json!("http")),
            json!({}),
        ))
        .run();
    assert_eq!(backends(&d), ["[fd00:244::5]:8080"]);
}

#[test]
fn prefer_local_takes_this_nodes_endpoints_while_there_are_any_and_local_only_those() {
    let policy = |p: &str, w: World| {
        w.redirect(redirect(
            "web",
            "203.0.113.10",
            to_service(json!("http")),
            json!({"backendPolicy": p}),
        ))
        .run()
    };
    assert_eq!(
        backends(&policy("preferLocal", web_world())),
        ["10.244.1.5:8080"]
    );
    assert_eq!(backends(&policy("local", web_world())), ["10.244.1.5:8080"]);
    let elsewhere = || {
        World::new()
            .service(service("web", "web", json!({})))
            .slice(slice(
                "web",
                "web",
                "IPv4",
                &[("10.244.2.7", "n2", true, true, false)],
            ))
    };
    assert_eq!(
        backends(&policy("preferLocal", elsewhere())),
        ["10.244.2.7:8080"]
    );
    assert!(backends(&policy("local", elsewhere())).is_empty());
}

#[test]
fn a_local_endpoint_selector_takes_this_nodes_ready_matching_pods() {
    let on = |node: &str, name: &str, ip: &str, labels: Value, ready: &str| {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"namespace": "default", "name": name, "labels": labels},
            "spec": {"nodeName": node, "containers": [{"name": "nginx",
                     "ports": [{"name": "http", "containerPort": 80}]}]},
            "status": {"phase": "Running", "podIPs": [{"ip": ip}],
                       "conditions": [{"type": "Ready", "status": ready}]}
        })
    };
    let pod = |name: &str, ip: &str, labels: Value, ready: &str| on(NODE, name, ip, labels, ready);
    let selector = json!({
        "localEndpointSelector": {"namespace": "default", "matchLabels": {"run": "nginx"}},
        "toPorts": [{"port": "http"}]
    });
    let d = World::new()
        .pod(pod("a", "10.244.1.5", json!({"run": "nginx"}), "True"))
        .pod(pod("b", "10.244.1.6", json!({"run": "nginx"}), "False"))
        .pod(pod("c", "10.244.1.7", json!({"run": "other"}), "True"))
        // Given by a watch that did not filter: another node's pod.
        .pod(on("n9", "d", "10.244.9.5", json!({"run": "nginx"}), "True"))
        .redirect(redirect("nginx", "203.0.113.10", selector, json!({})))
        .run();
    assert_eq!(backends(&d), ["10.244.1.5:80"]);
}

#[test]
fn endpoint_addresses_a_files_backend_could_not_have_are_left_out_and_reported() {
    let mut eps: Vec<(&str, &str, bool, bool, bool)> = REFUSED_BACKENDS
        .iter()
        .map(|a| (*a, "n1", true, true, false))
        .collect();
    eps.push(("10.244.1.5", "n1", true, true, false));
    let d = World::new()
        .service(service("web", "web", json!({})))
        .slice(slice("web", "web", "IPv4", &eps))
        .redirect(web_redirect())
        .run();
    assert_eq!(backends(&d), ["10.244.1.5:8080"], "only the pod's address");
    let (state, message) = report(&d);
    assert_eq!(state, State::Applied);
    for why in [
        "backend 0.0.0.0 is not a unicast address: left out",
        "backend 127.0.0.1 is not a unicast address: left out",
        "backend 224.0.0.1 is not a unicast address: left out",
        "backend 255.255.255.255 is not a unicast address: left out",
        "backend 169.254.169.254 is link-local (169.254.0.0/16, the cloud metadata service's range), \
         which allowReserved does not list: left out",
        "backend 240.0.0.1 is reserved (240.0.0.0/4), which allowReserved does not list: left out",
        "backend 203.0.113.10 is the frontend's own address: a loop: left out",
    ] {
        assert!(message.contains(why), "{why:?} in {message:?}");
    }
}

#[test]
fn a_reserved_endpoint_address_is_a_backend_where_the_file_allows_its_range() {
    let eps = [
        ("169.254.169.254", "n1", true, true, false),
        ("240.0.0.1", "n1", true, true, false),
    ];
    let mut w = World::new()
        .service(service("web", "web", json!({})))
        .slice(slice("web", "web", "IPv4", &eps))
        .redirect(web_redirect());
    w.allow_reserved = vec!["169.254.169.254/32".parse().unwrap()];
    let d = w.run();
    assert_eq!(
        backends(&d),
        ["169.254.169.254:8080"],
        "only the allowed one"
    );
    assert!(report(&d).1.contains("240.0.0.1 is reserved"));
}

#[test]
fn a_slice_of_more_endpoints_than_a_frontend_has_slots_is_refused_not_a_failed_apply() {
    let addrs: Vec<String> = (0..70_000u32)
        .map(|i| std::net::Ipv4Addr::from(0x0AC8_0001 + i).to_string())
        .collect();
    let eps: Vec<(&str, &str, bool, bool, bool)> = addrs
        .iter()
        .map(|a| (a.as_str(), "n1", true, true, false))
        .collect();
    let d = World::new()
        .service(service("web", "web", json!({})))
        .slice(slice("web", "web", "IPv4", &eps))
        .redirect(web_redirect())
        .run();
    assert!(d.frontends.is_empty());
    assert_eq!(
        report(&d),
        (
            State::Refused,
            "203.0.113.10:8080 has 70000 backend slots (weights summed): a frontend has at most 65535"
                .into()
        )
    );
}
