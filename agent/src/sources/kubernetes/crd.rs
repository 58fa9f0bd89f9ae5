//! `HairpinRedirect`, the cluster-scoped resource a cluster admin writes to
//! redirect an external address to backends in the cluster. Shaped after
//! Cilium's LocalRedirectPolicy (a frontend with ports, a backend selected
//! by Service or by pod labels, `skipRedirectFromBackend`), so that its
//! users find their way; `deploy/kubernetes/crd.yaml` is generated from it.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Redirects an external address (a router's or a load balancer's) to
/// backends in the cluster, on every node that runs hairpin.
#[derive(CustomResource, Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "hairpin.dev",
    version = "v1alpha1",
    kind = "HairpinRedirect",
    shortname = "hpr",
    printcolumn = r#"{"name":"Frontend","type":"string","jsonPath":".spec.frontend.address"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct HairpinRedirectSpec {
    pub frontend: FrontendSpec,
    pub backend: BackendSpec,
    /// Which endpoints serve: every ready one (`any`, the default), this
    /// node's while it has any (`preferLocal`), or only this node's
    /// (`local`, the default for `localEndpointSelector`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_policy: Option<BackendPolicy>,
    /// A backend calling the frontend itself reaches the real external
    /// address rather than itself.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip_redirect_from_backend: bool,
    /// What clients get while there is no backend: the real external
    /// address (`passThrough`, the default) or a refusal at once (`reject`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when_no_backend: Option<WhenNoBackend>,
    /// Redirect even an address Kubernetes already serves on every node (a
    /// Service's `externalIPs`, a load balancer ingress in `VIP` mode).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
}

/// The address clients dial, and its ports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FrontendSpec {
    /// An IPv4 or IPv6 address, inside the agents' `allowedFrontends`.
    #[schemars(length(min = 2, max = 45), pattern(r"^[0-9A-Fa-f.:]+$"))]
    pub address: String,
    #[schemars(length(min = 1, max = MAX_PORTS))]
    pub to_ports: Vec<FrontendPort>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FrontendPort {
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    #[serde(default)]
    pub protocol: Protocol,
    /// Pairs the port with the backend's port of the same name; needed
    /// when there are several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = MAX_PORT_NAME))]
    pub name: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Protocol {
    #[default]
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "UDP")]
    Udp,
}

/// Where the frontend leads: exactly one of `service` and
/// `localEndpointSelector`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackendSpec {
    /// The endpoints of a Service (its EndpointSlices), on any node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceRef>,
    /// The pods on this node with these labels, as Cilium's LRP selects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_endpoint_selector: Option<PodSelector>,
    /// The backends' ports: a Service's port by name or number, or a pod's
    /// container port by name or number.
    #[schemars(length(min = 1, max = MAX_PORTS))]
    pub to_ports: Vec<BackendPort>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ServiceRef {
    #[schemars(length(min = 1, max = 63))]
    pub namespace: String,
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodSelector {
    #[schemars(length(min = 1, max = 63))]
    pub namespace: String,
    #[schemars(extend("maxProperties" = 64))]
    pub match_labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BackendPort {
    /// A number, or the name of a Service port or container port.
    #[schemars(schema_with = "int_or_string")]
    pub port: PortRef,
    #[serde(default)]
    pub protocol: Protocol,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = MAX_PORT_NAME))]
    pub name: Option<String>,
}

/// The most ports a frontend or a backend lists.
const MAX_PORTS: u32 = 64;
/// A port's name, as Kubernetes bounds it (IANA_SVC_NAME).
const MAX_PORT_NAME: u32 = 15;

/// Kubernetes' own schema for a value that is a number or a name, bounded
/// by a rule the API server checks (a schema cannot bound either alone).
fn int_or_string(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "x-kubernetes-int-or-string": true,
        "description": "A number, or the name of a Service port or container port.",
        "x-kubernetes-validations": [{
            "rule": "type(self) == string ? self.size() >= 1 && self.size() <= 15 : self >= 1 && self <= 65535",
            "message": "a port number from 1 to 65535, or a port name of 1 to 15 characters"
        }]
    })
}

/// A port by number or by name, as Kubernetes writes them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PortRef {
    Number(u16),
    Name(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum BackendPolicy {
    Any,
    PreferLocal,
    Local,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum WhenNoBackend {
    PassThrough,
    Reject,
}

/// The manifest of the resource, as `deploy/kubernetes/crd.yaml` holds it.
pub fn manifest() -> String {
    use kube::CustomResourceExt as _;
    let crd = serde_json::to_value(HairpinRedirect::crd()).expect("a CRD serializes");
    format!(
        "# Generated by `hairpin crd` from agent/src/sources/kubernetes/crd.rs.\n{}",
        serde_saphyr::to_string(&crd).expect("a CRD is YAML")
    )
}

#[cfg(test)]
mod tests {
    /// The checked-in manifest is the one the type generates: change the
    /// type, then `hairpin crd > deploy/kubernetes/crd.yaml`.
    #[test]
    fn the_checked_in_crd_is_the_generated_one() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/kubernetes/crd.yaml");
        let checked_in = std::fs::read_to_string(path).expect("deploy/kubernetes/crd.yaml");
        assert!(
            checked_in == super::manifest(),
            "deploy/kubernetes/crd.yaml differs from the type: run `hairpin crd > deploy/kubernetes/crd.yaml`"
        );
    }

    /// What the API server can refuse, it does: every number and list and
    /// string of the schema has its bounds, a backend port (number or
    /// name) its rule.
    #[test]
    fn the_schema_bounds_what_the_api_server_can_check() {
        use kube::CustomResourceExt as _;
        let crd = serde_json::to_value(super::HairpinRedirect::crd()).expect("a CRD");
        let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
            ["properties"];
        let (fe, be) = (
            &spec["frontend"]["properties"],
            &spec["backend"]["properties"],
        );
        let n = |v: &serde_json::Value| v.as_f64();
        let port = &fe["toPorts"]["items"]["properties"]["port"];
        assert_eq!(
            (n(&port["minimum"]), n(&port["maximum"])),
            (Some(1.0), Some(65535.0))
        );
        assert_eq!(n(&fe["address"]["maxLength"]), Some(45.0));
        for ports in [&fe["toPorts"], &be["toPorts"]] {
            assert_eq!(
                (n(&ports["minItems"]), n(&ports["maxItems"])),
                (Some(1.0), Some(64.0))
            );
            assert_eq!(
                n(&ports["items"]["properties"]["name"]["maxLength"]),
                Some(15.0)
            );
        }
        let rule = &be["toPorts"]["items"]["properties"]["port"]["x-kubernetes-validations"][0];
        assert!(
            rule["rule"]
                .as_str()
                .is_some_and(|r| r.contains("self <= 65535") && r.contains("self.size() <= 15")),
            "{rule}"
        );
        let selector = &be["localEndpointSelector"]["properties"];
        assert_eq!(n(&selector["matchLabels"]["maxProperties"]), Some(64.0));
        assert_eq!(
            n(&be["service"]["properties"]["name"]["maxLength"]),
            Some(63.0)
        );
    }

    #[test]
    fn the_example_redirect_reads_as_a_hairpin_redirect() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/kubernetes/example-nginx.yaml"
        );
        let text = std::fs::read_to_string(path).expect("the example");
        let r: super::HairpinRedirect = serde_saphyr::from_str(&text).expect("a HairpinRedirect");
        assert_eq!(r.spec.frontend.address, "10.10.10.10");
        let sel = r
            .spec
            .backend
            .local_endpoint_selector
            .expect("pods by label");
        assert_eq!(sel.match_labels["run"], "nginx");
        assert_eq!(r.spec.backend.to_ports[0].port, super::PortRef::Number(80));
    }
}
