//! The agent as the DaemonSet runs it: no kubeconfig anywhere, the API
//! server found through the pod's ServiceAccount (its variables, token and
//! certificate authority), over TLS.

use crate::{
    degraded::eventually,
    kubernetes::{
        answer, cluster_config, redirect, service, slice, without_kubeconfig, API, B1, URL,
    },
    require_privileged,
    support::{apiserver::ApiServer, lab::Lab, serviceaccount::ServiceAccount},
};

#[test]
fn the_in_cluster_configuration_reaches_the_api_server_with_the_service_accounts_token() {
    require_privileged!();
    let lab = Lab::up();
    let mut api = ApiServer::start_tls(&lab.ns("rtr"), API.parse().unwrap());
    api.apply(service());
    api.apply(slice(B1));
    api.apply(redirect());
    let config = without_kubeconfig(&cluster_config(
        &lab,
        &api,
        "n1",
        "[]",
        "{ enabled: false }",
    ));
    let sa = ServiceAccount::new(&api, lab.run_dir());
    let _agent = lab.agent_as_pod("n1", &config, &["--node-name", "n1"], &sa);
    eventually(10, "the cluster's redirect is served on n1", || {
        ["n1-c1", "n1", "n1-b1"]
            .iter()
            .all(|ns| answer(&lab, ns, URL) == "b1")
    });
    assert_eq!(
        api.authorization().as_deref(),
        Some("Bearer lab-token"),
        "the agent authenticates with the ServiceAccount's token"
    );
    api.stop();
}
