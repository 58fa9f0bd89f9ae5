//! The datapath's tables against a namespace user who asks for more than
//! they hold: room is admitted object by object, oldest first, before an
//! apply, so a flood is refused where it is said and nothing older loses
//! its frontend, now or at the next start.

use serde_json::{json, Value};

use crate::{
    degraded::eventually,
    kubernetes::{answer, cluster_config, redirect, service, slice, API, B1, URL},
    require_privileged,
    support::{apiserver::ApiServer, lab::Lab},
};

/// A Service of namespace `web` annotated with 9,000 frontends (10
/// addresses from 203.0.113.`first`, 900 ports each): two of them hold
/// more than the 16,384 the frontend table has.
fn flood(name: &str, first: u8, created: &str) -> Value {
    let entries: Vec<String> = (first..first + 10)
        .flat_map(|a| (10_000..10_900).map(move |p| format!("203.0.113.{a}:{p}=http")))
        .collect();
    let mut svc = service();
    svc["metadata"]["name"] = json!(name);
    svc["metadata"]["creationTimestamp"] = json!(created);
    svc["metadata"]["annotations"] = json!({"hairpin.dev/frontends": entries.join(",")});
    svc
}

fn refused_for_room(api: &ApiServer, name: &str) -> bool {
    api.events().iter().any(|e| {
        e["regarding"]["name"] == name
            && e["reason"] == "Refused"
            && e["note"]
                .as_str()
                .is_some_and(|n| n.contains("the datapath's tables are full"))
    })
}

#[test]
fn a_flood_of_frontends_is_refused_whole_and_spares_the_older_redirect_across_a_restart() {
    require_privileged!();
    let lab = Lab::up();
    let mut api = ApiServer::start(&lab.ns("rtr"), API.parse().unwrap());
    api.apply(service());
    api.apply(slice(B1));
    let mut web = redirect();
    web["metadata"]["creationTimestamp"] = json!("2025-01-01T00:00:00Z");
    api.apply(web);
    let config = cluster_config(&lab, &api, "n1", "[web]", "{ enabled: false }");
    let mut agent = lab.agent_with("n1", &config, &["--node-name", "n1"]);
    eventually(10, "the redirect is served", || {
        answer(&lab, "n1-c1", URL) == "b1"
    });

    let mut endpoints = slice(B1);
    endpoints["metadata"]["name"] = json!("flood-a-x1");
    endpoints["metadata"]["labels"]["kubernetes.io/service-name"] = json!("flood-a");
    api.apply(endpoints);
    api.apply(flood("flood-a", 20, "2026-02-01T00:00:00Z"));
    api.apply(flood("flood-b", 30, "2026-03-01T00:00:00Z"));
    eventually(60, "the newer flood is refused for want of room", || {
        refused_for_room(&api, "flood-b")
    });
    assert!(
        !refused_for_room(&api, "flood-a"),
        "the older flood fits beside the redirect"
    );
    assert_eq!(answer(&lab, "n1-c1", URL), "b1", "the older redirect stays");
    assert_eq!(
        answer(&lab, "n1-c1", "http://203.0.113.20:10000/"),
        "b1",
        "the older flood is served"
    );

    // A restart with both floods still there starts, and serves as before.
    agent.stop(libc::SIGKILL);
    let _again = lab.agent_with("n1", &config, &["--node-name", "n1"]);
    eventually(60, "the restarted agent serves as before", || {
        answer(&lab, "n1-c1", URL) == "b1"
            && answer(&lab, "n1-c1", "http://203.0.113.29:10899/") == "b1"
    });
    api.stop();
}
