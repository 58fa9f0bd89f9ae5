//! Objects skipped or refused, and annotated Services.

use serde_json::json;

use crate::config::Policy;

use super::*;

#[test]
fn an_address_kubernetes_serves_is_skipped_unless_forced() {
    let lb = json!({"spec": {"externalIPs": ["203.0.113.20"]},
                    "status": {"loadBalancer": {"ingress": [
                        {"ip": "203.0.113.21"},
                        {"ip": "203.0.113.22", "ipMode": "Proxy"}]}}});
    let world = |addr: &str, extra: Value| {
        World::new()
            .service(service("web", "web", lb.clone()))
            .redirect(redirect("web", addr, to_service(json!("http")), extra))
            .run()
    };
    for addr in ["203.0.113.20", "203.0.113.21"] {
        let d = world(addr, json!({}));
        assert!(d.frontends.is_empty());
        assert_eq!(
            report(&d),
            (
                State::Skipped,
                format!(
                    "{addr} is a Service's external IP or load balancer VIP, which Kubernetes \
                     already serves on every node (force: true redirects it anyway)"
                )
            )
        );
        assert_eq!(world(addr, json!({"force": true})).frontends.len(), 1);
    }
    assert_eq!(
        world("203.0.113.22", json!({})).frontends.len(),
        1,
        "ipMode Proxy is not served"
    );
}

#[test]
fn every_refusal_says_why() {
    let refusal = |addr: &str| {
        let d = web_world()
            .redirect(redirect("web", addr, to_service(json!("http")), json!({})))
            .run();
        assert!(d.frontends.is_empty());
        let (state, msg) = report(&d);
        assert_eq!(state, State::Refused);
        msg
    };
    assert_eq!(
        refusal("198.51.100.10"),
        "198.51.100.10 is outside kubernetes.allowedFrontends (203.0.113.0/24, 2001:db8:113::/48)"
    );
    assert_eq!(
        refusal("10.244.3.3"),
        "10.244.3.3 is inside the cluster's pod CIDR 10.244.0.0/16"
    );
    assert_eq!(
        refusal("10.96.0.10"),
        "10.96.0.10 is inside the cluster's service CIDR 10.96.0.0/12"
    );
    assert_eq!(refusal("127.0.0.1"), "127.0.0.1 is not a unicast address");
    assert_eq!(
        refusal("203.0.113.x"),
        "frontend.address \"203.0.113.x\" is not an IP address"
    );
    let mut w = web_world();
    w.node_addrs.push("203.0.113.5".parse().unwrap());
    let d = w
        .redirect(redirect(
            "web",
            "203.0.113.5",
            to_service(json!("http")),
            json!({}),
        ))
        .run();
    assert_eq!(
        report(&d).1,
        "203.0.113.5 is an address of this node: hairpin would capture the node's own traffic"
    );
}

#[test]
fn malformed_redirects_are_refused_with_their_reason() {
    let refusal = |r: Value| report(&web_world().redirect(r).run());
    let both = json!({"service": {"namespace": "web", "name": "web"},
                      "localEndpointSelector": {"namespace": "web", "matchLabels": {}},
                      "toPorts": [{"port": 80}]});
    assert_eq!(
        refusal(redirect("web", "203.0.113.10", both, json!({}))),
        (
            State::Refused,
            "backend needs exactly one of service and localEndpointSelector".into()
        )
    );
    let mut r = redirect("web", "203.0.113.10", to_service(json!("http")), json!({}));
    r["spec"]["frontend"]["toPorts"] = json!([{"port": 8080}, {"port": 5353, "protocol": "UDP"}]);
    assert_eq!(
        refusal(r).1,
        "frontend port 8080 needs a name: with several ports, each pairs with the backend port of its name"
    );
    let missing =
        json!({"service": {"namespace": "web", "name": "gone"}, "toPorts": [{"port": 80}]});
    let d = web_world()
        .redirect(redirect("web", "203.0.113.10", missing, json!({})))
        .run();
    assert_eq!(
        d.frontends[0].backends,
        [],
        "no backend: the frontend passes through"
    );
    assert_eq!(
        report(&d),
        (State::Applied, "Service web/gone not found".into())
    );
    let d = web_world()
        .redirect(redirect(
            "web",
            "203.0.113.10",
            to_service(json!("https")),
            json!({}),
        ))
        .run();
    assert_eq!(report(&d).1, "Service web has no TCP port named \"https\"");
}

#[test]
fn a_redirect_that_does_not_read_is_refused_alone_and_the_others_served() {
    let mut bad = redirect("bad", "203.0.113.11", to_service(json!(70000)), json!({}));
    bad["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
    let d = web_world().redirect(bad).redirect(web_redirect()).run();
    assert_eq!(d.frontends.len(), 1, "the valid redirect is served");
    assert_eq!(d.frontends[0].addr.to_string(), "203.0.113.10");
    let bad = d
        .reports
        .iter()
        .find(|r| r.source.name == "bad")
        .expect("the bad one's report");
    assert_eq!(bad.state, State::Refused);
    assert!(
        bad.message
            .starts_with("not a HairpinRedirect: spec.backend.toPorts[0].port: "),
        "{}",
        bad.message
    );
}

pub(super) fn annotated(ns: &str, value: &str) -> Value {
    let mut svc = service(ns, "web", json!({}));
    svc["metadata"]["annotations"] = json!({"hairpin.dev/frontends": value});
    svc
}

#[test]
fn an_annotated_service_redirects_to_its_endpoints() {
    let d = World::new()
        .service(annotated(
            "web",
            "203.0.113.10:8080=http, 203.0.113.10:5353=dns",
        ))
        .slice(slice(
            "web",
            "web",
            "IPv4",
            &[("10.244.1.5", "n1", true, true, false)],
        ))
        .run();
    let got: Vec<_> = d
        .frontends
        .iter()
        .map(|f| (f.name.as_str(), f.port, f.proto, f.backends[0].port))
        .collect();
    assert_eq!(
        got,
        [
            ("Service/web/web/203.0.113.10:8080/tcp", 8080, 6, 8080),
            ("Service/web/web/203.0.113.10:5353/udp", 5353, 17, 5353),
        ]
    );
    assert_eq!(report(&d), (State::Applied, String::new()));
}

#[test]
fn annotations_outside_the_listed_namespaces_and_malformed_ones_are_refused() {
    let d = World::new()
        .service(annotated("other", "203.0.113.10:8080=http"))
        .run();
    assert_eq!(
        report(&d),
        (
            State::Refused,
            "hairpin.dev/frontends is not honoured in namespace other: it is not in kubernetes.annotationNamespaces".into()
        )
    );
    let d = World::new()
        .service(annotated("web", "203.0.113.10=http"))
        .run();
    assert_eq!(
        report(&d).1,
        "malformed hairpin.dev/frontends: entry 1: \"203.0.113.10\" is not ADDRESS:PORT (IPv6 in brackets: [2001:db8::1]:80)"
    );
    assert!(d.frontends.is_empty());
}

#[test]
fn skip_and_reject_are_the_frontends_policy() {
    let d = web_world()
        .redirect(redirect(
            "web",
            "203.0.113.10",
            to_service(json!("http")),
            json!({"skipRedirectFromBackend": true, "whenNoBackend": "reject"}),
        ))
        .redirect(redirect(
            "plain",
            "203.0.113.12",
            to_service(json!("http")),
            json!({"whenNoBackend": "passThrough"}),
        ))
        .run();
    let policy = |addr: &str| {
        d.frontends
            .iter()
            .find(|f| f.addr.to_string() == addr)
            .map(|f| f.policy)
            .expect("the redirect's frontend")
    };
    assert_eq!(
        policy("203.0.113.10"),
        Policy {
            refuse_when_empty: true,
            skip_backends: true
        }
    );
    assert_eq!(policy("203.0.113.12"), Policy::default());
}
