//! Who owns a frontend the cluster asks for: the first object to claim
//! it. A later claim from another namespace is refused, and both objects
//! are told, as Events where their owners look; the frontend passes to the
//! next claim once the first lets it go.

use serde_json::{json, Value};

use crate::{
    degraded::eventually,
    kubernetes::{answer, cluster_config, service, slice, API, B1, B2},
    require_privileged,
    support::{apiserver::ApiServer, lab::Lab},
};

const FRONTEND: &str = "http://203.0.113.10:8081/";

/// Namespace `ns`'s Service `web`, claiming 203.0.113.10:8081 for its
/// port http, created at `created`, with its one endpoint at `backend`.
fn claim(api: &ApiServer, ns: &str, created: &str, backend: (&str, &str)) {
    let mut svc = service();
    svc["metadata"]["namespace"] = json!(ns);
    svc["metadata"]["creationTimestamp"] = json!(created);
    svc["metadata"]["annotations"] = json!({"hairpin.dev/frontends": "203.0.113.10:8081=http"});
    let mut endpoints = slice(backend);
    endpoints["metadata"]["namespace"] = json!(ns);
    api.apply(endpoints);
    api.apply(svc);
}

/// The notes of the Events of reason `reason` about namespace `ns`'s
/// Service.
fn notes(api: &ApiServer, ns: &str, reason: &str) -> Vec<String> {
    api.events()
        .iter()
        .filter(|e: &&Value| {
            e["regarding"]["namespace"] == ns && e["regarding"]["kind"] == "Service"
        })
        .filter(|e| e["reason"] == reason)
        .filter_map(|e| e["note"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn a_frontend_belongs_to_the_first_namespace_and_both_claims_are_told() {
    require_privileged!();
    let lab = Lab::up();
    let api = ApiServer::start(&lab.ns("rtr"), API.parse().unwrap());
    claim(&api, "shop", "2026-02-01T00:00:00Z", B2);
    claim(&api, "web", "2026-01-01T00:00:00Z", B1);
    let config = cluster_config(&lab, &api, "n1", "[web, shop]", "{ enabled: false }");
    let _agent = lab.agent_with("n1", &config, &["--node-name", "n1"]);
    eventually(10, "the first namespace's claim served", || {
        answer(&lab, "n1-c1", FRONTEND) == "b1"
    });
    eventually(10, "both claims told", || {
        notes(&api, "web", "Contested")
            .iter()
            .any(|n| n == "node n1: Service/shop/web claims its frontends too (refused there)")
            && notes(&api, "shop", "Refused")
                .iter()
                .any(|n| n == "node n1: 203.0.113.10:8081 is taken by Service/web/web")
    });

    // The first claim lets it go: the next one has it.
    api.delete("Service", "web", "web");
    eventually(10, "the later claim served once the first is gone", || {
        answer(&lab, "n1-c1", FRONTEND) == "b2"
    });
    eventually(10, "the later claim told it is applied", || {
        notes(&api, "shop", "Applied")
            .iter()
            .any(|n| n == "node n1: applied")
    });
}
