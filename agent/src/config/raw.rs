//! The file's shape as the parser reads it: every value that validation may
//! refuse keeps its location (`Spanned`).

use std::{collections::BTreeMap, path::PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawConfig {
    /// Optional where the cluster supplies them (`kubernetes`).
    #[serde(default)]
    pub redirects: Option<Spanned<Vec<RawRedirect>>>,
    #[serde(default)]
    pub interfaces: Option<RawInterfaces>,
    #[serde(default)]
    pub conntrack: Option<RawConntrack>,
    #[serde(default)]
    pub metrics: Option<RawMetrics>,
    #[serde(default)]
    pub socket: Option<RawSocket>,
    #[serde(default)]
    pub dns: Option<RawDns>,
    #[serde(default)]
    pub kubernetes: Option<Spanned<RawKubernetes>>,
    /// Link-local and reserved ranges served all the same.
    #[serde(default)]
    pub allow_reserved: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawKubernetes {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    #[serde(default)]
    pub allowed_frontends: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub annotation_namespaces: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub pod_cidrs: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub service_cidrs: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub state_file: Option<PathBuf>,
}

/// Seconds, but for the path.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawDns {
    #[serde(default)]
    pub resolv_conf: Option<PathBuf>,
    #[serde(default)]
    pub min_ttl: Option<Spanned<u64>>,
    #[serde(default)]
    pub max_ttl: Option<Spanned<u64>>,
    #[serde(default)]
    pub grace: Option<Spanned<u64>>,
    #[serde(default)]
    pub max_addresses: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawMetrics {
    /// `host:port`, or `off`.
    pub address: Spanned<String>,
    /// Said to serve on an address other hosts reach.
    #[serde(default)]
    pub exposed: Option<bool>,
    #[serde(default)]
    pub max_connections: Option<Spanned<u32>>,
    #[serde(default)]
    pub max_monitors: Option<Spanned<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawSocket {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub scope: Option<Spanned<String>>,
    #[serde(default)]
    pub cgroup: Option<PathBuf>,
    #[serde(default)]
    pub pods: Option<bool>,
    #[serde(default)]
    pub cgroups: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawRedirect {
    pub name: Spanned<String>,
    pub frontend: Spanned<String>,
    pub ports: Vec<RawPort>,
    pub backends: Vec<RawBackend>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawPort {
    #[serde(default)]
    pub name: Option<Spanned<String>>,
    pub port: Spanned<u32>,
    pub protocol: Spanned<String>,
    #[serde(default)]
    pub target_port: Option<Spanned<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawBackend {
    pub ip: Spanned<String>,
    /// Overrides the ports' `targetPort` for this backend.
    #[serde(default)]
    pub port: Option<Spanned<u32>>,
    /// Overrides per frontend port, keyed by the port's name or number,
    /// where this backend listens elsewhere for some ports only.
    #[serde(default)]
    pub ports: Option<BTreeMap<String, Spanned<u32>>>,
    #[serde(default)]
    pub weight: Option<Spanned<u32>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawInterfaces {
    #[serde(default)]
    pub uplink: Option<Spanned<String>>,
    #[serde(default)]
    pub pods: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawConntrack {
    #[serde(default)]
    pub max_entries: Option<Spanned<u32>>,
    #[serde(default)]
    pub timeouts: Option<RawTimeouts>,
}

/// Seconds.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimeouts {
    pub syn: Option<Spanned<u64>>,
    pub tcp: Option<Spanned<u64>>,
    pub close: Option<Spanned<u64>>,
    pub udp: Option<Spanned<u64>>,
}
