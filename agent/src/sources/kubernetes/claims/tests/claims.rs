//! Who gets a frontend: the file, then the oldest object; an object the
//! tables have no room for is refused whole; no node's address.

use serde_json::json;

use super::{objects::annotated, *};

#[test]
fn the_file_and_then_the_oldest_object_win_a_frontend() {
    let mut w = web_world()
        .redirect(redirect(
            "newer",
            "203.0.113.10",
            to_service(json!("http")),
            json!({}),
        ))
        .service(annotated("web", "203.0.113.11:8080=http"));
    let mut older = redirect(
        "older",
        "203.0.113.10",
        to_service(json!("http")),
        json!({}),
    );
    older["metadata"]["creationTimestamp"] = json!("2025-06-01T00:00:00Z");
    w = w.redirect(older);
    w.file.push(Frontend {
        policy: Default::default(),
        name: "registry/8080/tcp".into(),
        source: "hairpin.yaml:3".into(),
        addr: "203.0.113.11".parse().unwrap(),
        port: 8080,
        proto: 6,
        backends: Vec::new(),
    });
    let d = w.run();
    let names: Vec<_> = d.frontends.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["HairpinRedirect/older/8080/tcp"]);
    let msgs: Vec<_> = d
        .reports
        .iter()
        .map(|r| (r.source.to_string(), r.state, r.message.as_str()))
        .collect();
    assert_eq!(
        msgs,
        [
            ("HairpinRedirect/older".to_string(), State::Applied, ""),
            (
                "HairpinRedirect/newer".to_string(),
                State::Refused,
                "203.0.113.10:8080 is taken by HairpinRedirect/older"
            ),
            (
                "Service/web/web".to_string(),
                State::Refused,
                "203.0.113.11:8080 is taken by the file's registry/8080/tcp"
            ),
        ]
    );
    // The owner is told too: a conflict is said on both objects.
    let older = &d.reports[0];
    assert_eq!(&*older.contested_by, ["HairpinRedirect/newer"]);
    assert_eq!(
        older.note(),
        "HairpinRedirect/newer claims its frontends too (refused there)"
    );
    assert!(d.reports[1].contested_by.is_empty());
}

#[test]
fn objects_the_tables_have_no_room_for_are_refused_whole_the_oldest_served_first() {
    let at = |name: &str, addr: &str, when: &str| {
        let mut r = redirect(name, addr, to_service(json!("http")), json!({}));
        r["metadata"]["creationTimestamp"] = json!(when);
        r
    };
    let mut w = web_world()
        .redirect(at("newer", "203.0.113.12", "2026-03-01T00:00:00Z"))
        .service(annotated(
            "web",
            "203.0.113.11:8080=http, 203.0.113.11:8081=http",
        ))
        .redirect(at("older", "203.0.113.10", "2026-01-01T00:00:00Z"));
    // Room for three frontends: the redirects, oldest first, take two; the
    // Service's two do not fit in the third, and none of them is served.
    w.room = Room::of(3, 65_536);
    let d = w.run();
    let names: Vec<_> = d.frontends.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "HairpinRedirect/older/8080/tcp",
            "HairpinRedirect/newer/8080/tcp"
        ]
    );
    let refused: Vec<_> = d
        .reports
        .iter()
        .filter(|r| r.state == State::Refused)
        .map(|r| (r.source.to_string(), r.message.as_str()))
        .collect();
    assert_eq!(
        refused,
        [(
            "Service/web/web".to_string(),
            "the datapath's tables are full: it needs 2 frontends, with room for 1"
        )]
    );
    w.room = Room::of(1, 65_536);
    let names: Vec<_> = w.run().frontends.iter().map(|f| f.name.clone()).collect();
    assert_eq!(
        names,
        ["HairpinRedirect/older/8080/tcp"],
        "the oldest first"
    );

    // Backend slots count too, per family: two endpoints need two.
    let mut w = web_world().redirect(web_redirect());
    w.room = Room::of(16, 1);
    let d = w.run();
    assert!(d.frontends.is_empty());
    assert_eq!(
        report(&d),
        (
            State::Refused,
            "the datapath's tables are full: it needs 2 IPv4 backend slots, with room for 1".into()
        )
    );
}

#[test]
fn another_nodes_address_is_never_a_frontend() {
    let d = web_world()
        .node(
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n2"},
                     "status": {"addresses": [{"type": "InternalIP", "address": "203.0.113.12"},
                                              {"type": "Hostname", "address": "n2"}]}}),
        )
        .redirect(redirect(
            "n2",
            "203.0.113.12",
            to_service(json!("http")),
            json!({}),
        ))
        .run();
    assert!(d.frontends.is_empty());
    assert_eq!(
        report(&d),
        (
            State::Refused,
            "203.0.113.12 is node n2's address: its clients' traffic to that node would be taken"
                .into()
        )
    );
}

#[test]
fn many_conflicts_are_summed_up_in_the_report() {
    let five = "203.0.113.11:8080=http, 203.0.113.11:8081=http, 203.0.113.11:8082=http, \
                203.0.113.11:8083=http, 203.0.113.11:8084=http";
    let mut newer = service("web", "newer", json!({}));
    newer["metadata"]["creationTimestamp"] = json!("2026-06-01T00:00:00Z");
    newer["metadata"]["annotations"] = json!({"hairpin.dev/frontends": five});
    let d = web_world()
        .service(annotated("web", five))
        .service(newer)
        .run();
    let newer = d
        .reports
        .iter()
        .find(|r| r.source.to_string() == "Service/web/newer")
        .expect("a report for the newer Service");
    assert_eq!(
        (newer.state, newer.message.as_str()),
        (
            State::Refused,
            "203.0.113.11:8080 and 4 more are taken by Service/web/web"
        )
    );
}

#[test]
fn a_frontend_belongs_to_the_namespace_that_claimed_it_first_and_both_are_told() {
    let eps = [("10.244.1.5", "n1", true, true, false)];
    let mut later = annotated("shop", "203.0.113.10:8080=http");
    later["metadata"]["creationTimestamp"] = json!("2026-02-01T00:00:00Z");
    let mut w = World::new()
        .service(later)
        .slice(slice("shop", "web", "IPv4", &eps))
        .service(annotated("web", "203.0.113.10:8080=http"))
        .slice(slice("web", "web", "IPv4", &eps));
    w.settings.annotation_namespaces = vec!["web".into(), "shop".into()];
    let d = w.run();
    let names: Vec<_> = d.frontends.iter().map(|f| f.source.as_str()).collect();
    assert_eq!(names, ["Service/web/web"], "the first namespace keeps it");
    let told: Vec<_> = d
        .reports
        .iter()
        .map(|r| (r.source.to_string(), r.state, r.note()))
        .collect();
    assert_eq!(
        told,
        [
            (
                "Service/web/web".to_string(),
                State::Applied,
                "Service/shop/web claims its frontends too (refused there)".to_string()
            ),
            (
                "Service/shop/web".to_string(),
                State::Refused,
                "203.0.113.10:8080 is taken by Service/web/web".to_string()
            ),
        ]
    );
}
