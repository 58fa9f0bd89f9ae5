//! The configuration file: YAML, as a Kubernetes ConfigMap carries it.
//! Parsing keeps every value's location, so that each error names the file,
//! the line and the field.
//!
//! ```yaml
//! redirects:
//!   - name: web
//!     frontend: 203.0.113.10
//!     ports:
//!       - { name: http, port: 8080, protocol: TCP, targetPort: 80 }
//!     backends:
//!       - { ip: 198.51.100.2, weight: 1 }
//! interfaces:
//!   uplink: auto
//!   pods: ["veth*", "cali*", "lxc*"]
//! conntrack:
//!   maxEntries: 262144
//!   timeouts: { syn: 60, tcp: 21600, close: 10, udp: 60 }   # seconds
//! ```

mod error;
mod raw;
mod validate;

pub use validate::{unservable, unusable_backend};

use std::{
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    time::Duration,
};

use hairpin_common::CtTimeouts;

pub use error::ConfigError;

/// A validated configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Frontends written as addresses.
    pub frontends: Vec<Frontend>,
    /// Frontends written as names, resolved by the agent.
    pub named: Vec<NamedFrontend>,
    pub dns: DnsSettings,
    pub interfaces: Interfaces,
    pub ct_entries: u32,
    pub timeouts: CtTimeouts,
    pub metrics: Option<SocketAddr>,
    /// The listeners' bounds, taken at start.
    pub listener: ListenerLimits,
    pub socket: SocketLb,
    /// Redirects from the cluster too, when set.
    pub kubernetes: Option<Kubernetes>,
    /// Link-local and reserved addresses that every source may have as
    /// frontends and backends all the same (a metadata service's proxy).
    pub allow_reserved: Vec<ipnet::IpNet>,
}

/// Kubernetes mode: the agent also follows `HairpinRedirect` resources,
/// Service annotations and EndpointSlices. Whoever can create a redirect
/// can intercept traffic to its address, so the file (the node's operator)
/// bounds what the cluster may ask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kubernetes {
    /// `None`: the in-cluster configuration (the pod's ServiceAccount).
    pub kubeconfig: Option<PathBuf>,
    /// Every frontend from the cluster must fall inside one of these.
    pub allowed_frontends: Vec<ipnet::IpNet>,
    /// The namespaces whose Services' annotations are honoured.
    pub annotation_namespaces: Vec<String>,
    /// Never frontends: the cluster's own pod and service addresses.
    pub pod_cidrs: Vec<ipnet::IpNet>,
    pub service_cidrs: Vec<ipnet::IpNet>,
    /// Where the last redirects known from the cluster are kept, so that an
    /// agent started while the API server is away serves them.
    pub state_file: PathBuf,
}

impl Kubernetes {
    /// Why `addr` is the cluster's own (inside its pod or service ranges),
    /// if it is: never a frontend, from the cluster or a name.
    pub fn own_range(&self, addr: IpAddr) -> Option<String> {
        [(&self.pod_cidrs, "pod"), (&self.service_cidrs, "service")]
            .into_iter()
            .find_map(|(nets, what)| {
                let net = nets.iter().find(|n| n.contains(&addr))?;
                Some(format!("{addr} is inside the cluster's {what} CIDR {net}"))
            })
    }
}

pub const DEFAULT_CLUSTER_STATE: &str = "/var/lib/hairpin/cluster-state.json";

/// The socket-level path for processes that never cross a pod's veth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketLb {
    pub enabled: bool,
    pub scope: SocketScope,
    /// The cgroup v2 directory to attach to; `None`: the root of the
    /// machine's cgroup v2 hierarchy.
    pub cgroup: Option<PathBuf>,
    /// In Kubernetes mode, whether the node's pods take the socket path
    /// (but those a service mesh intercepts, and those that opt out).
    pub pods: bool,
    /// Cgroups under `cgroup` (a pattern per path, `*` within a name)
    /// whose processes take the socket path with scope `host`.
    pub cgroups: Vec<glob::Pattern>,
}

impl Default for SocketLb {
    fn default() -> Self {
        Self {
            enabled: true,
            scope: SocketScope::Host,
            cgroup: None,
            pods: true,
            cgroups: Vec::new(),
        }
    }
}

/// Which sockets the socket-level path translates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketScope {
    /// Sockets in the node's own network namespace, and those of the pods
    /// and cgroups chosen for it (`pods`, `cgroups`); other pods keep the
    /// TC path, whose original destination service meshes rely on.
    Host,
    /// Every socket in the cgroup, pods' included.
    All,
}

/// Where metrics are served unless configured: loopback only.
pub const DEFAULT_METRICS: &str = "127.0.0.1:9469";

/// How many connections and monitors the listeners take at once
/// (`metrics.maxConnections`, `metrics.maxMonitors`): beyond the first the
/// oldest idle connection makes room, beyond the second a monitor is
/// answered 503.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenerLimits {
    pub connections: usize,
    pub monitors: usize,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        Self {
            connections: 512,
            monitors: 32,
        }
    }
}

/// One frontend: an address, a port and a protocol, with its backends.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Frontend {
    /// `<redirect>/<port name or number>/<protocol>`, for logs and listings.
    pub name: String,
    /// Where it comes from: `<file>:<line>`, or the cluster's object
    /// (`HairpinRedirect/<name>`, `Service/<namespace>/<name>`).
    pub source: String,
    pub addr: IpAddr,
    pub port: u16,
    pub proto: u8,
    pub backends: Vec<Backend>,
    #[serde(default)]
    pub policy: Policy,
}

/// What a frontend does beyond translating to its backends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Policy {
    /// Without backends, new flows are refused (a TCP reset, an ICMP port
    /// unreachable) rather than passed to the real address.
    #[serde(default)]
    pub refuse_when_empty: bool,
    /// The backends' own packets to the frontend are not translated: they
    /// reach the real address.
    #[serde(default)]
    pub skip_backends: bool,
}

/// A frontend written as a DNS name: installed at each address the name
/// resolves to in the family of its backends (a redirect is one family).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedFrontend {
    pub host: String,
    /// The frontend at no address yet: `addr` is its family's unspecified
    /// address, replaced by [`NamedFrontend::at`].
    pub frontend: Frontend,
}

impl NamedFrontend {
    pub fn is_ipv4(&self) -> bool {
        self.frontend.addr.is_ipv4()
    }

    /// The frontend at `addr`, one of the name's addresses.
    pub fn at(&self, addr: IpAddr) -> Frontend {
        Frontend {
            addr,
            ..self.frontend.clone()
        }
    }
}

/// How names are resolved and followed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsSettings {
    /// The resolver's configuration: the node's unless set.
    pub resolv_conf: PathBuf,
    /// Bounds on the records' TTL: a name is resolved again no sooner than
    /// `min_ttl` and no later than `max_ttl`.
    pub min_ttl: Duration,
    pub max_ttl: Duration,
    /// How long an address a name no longer has still takes new flows: a
    /// client that resolved just before the change still connects.
    pub grace: Duration,
    /// The most addresses of one family a name is served at: its DNS
    /// server, not the node's operator, decides how many it has.
    pub max_addresses: usize,
}

impl Default for DnsSettings {
    fn default() -> Self {
        Self {
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
            min_ttl: Duration::from_secs(5),
            max_ttl: Duration::from_secs(300),
            grace: Duration::from_secs(10),
            max_addresses: 16,
        }
    }
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Backend {
    pub addr: IpAddr,
    pub port: u16,
    pub weight: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interfaces {
    /// `None`: the interface of the node's route to the frontends.
    pub uplink: Option<String>,
    pub pods: Vec<glob::Pattern>,
}

pub const DEFAULT_POD_PATTERNS: [&str; 4] = ["veth*", "cali*", "lxc*", "eni*"];
/// YAML nodes a configuration may have: a million frontends' worth.
const MAX_YAML_NODES: usize = 20_000_000;

impl Config {
    /// Reads and validates `path`, a file of no node in particular.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_on_node(path, &[])
    }

    /// Reads and validates `path` for the node whose addresses are `node`:
    /// a frontend on one of them is refused.
    pub fn load_on_node(path: &Path, node: &[IpAddr]) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_owned(),
            line: 0,
            column: 0,
            field: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse_on_node(path, &text, node)
    }

    /// Validates `text`, read from `file`.
    pub fn parse(file: &Path, text: &str) -> Result<Self, ConfigError> {
        Self::parse_on_node(file, text, &[])
    }

    fn parse_on_node(file: &Path, text: &str, node: &[IpAddr]) -> Result<Self, ConfigError> {
        // Large node-wide configurations (100,000 frontends) exceed the
        // parser's default budget, which guards against untrusted input: a
        // configuration is the operator's own, so it gets room to grow.
        let mut budget = serde_saphyr::Budget::default();
        budget.max_nodes = MAX_YAML_NODES;
        budget.max_events = 2 * MAX_YAML_NODES;
        let mut options = serde_saphyr::Options::default();
        options.budget = Some(budget);
        // The path of the field the parser stopped at, which its error
        // lacks (an unknown field's, a wrong type's).
        let mut field = String::new();
        let raw: raw::RawConfig =
            serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
                serde_path_to_error::deserialize(de).map_err(|e| {
                    field = field_path(&e.path().to_string());
                    e.into_inner()
                })
            })
            .map_err(|e| {
                let loc = e.location();
                ConfigError {
                    file: file.to_owned(),
                    line: loc.map_or(0, |l| l.line()),
                    column: loc.map_or(0, |l| l.column()),
                    field: std::mem::take(&mut field),
                    message: parser_message(&e),
                }
            })?;
        validate::Validator {
            file,
            node,
            allow: &[],
        }
        .config(raw)
    }
}

/// A path as written in the file: without the `value` of the `Spanned`
/// wrappers that keep locations (no field of the file is named so).
fn field_path(path: &str) -> String {
    let p = path.replace(".value[", "[").replace(".value.", ".");
    p.strip_suffix(".value").unwrap_or(&p).to_owned()
}

/// The parser's message, without the location its `Display` prefixes (the
/// error carries it) and the source excerpt it appends.
fn parser_message(e: &serde_saphyr::Error) -> String {
    use serde_saphyr::MessageFormatter as _;
    let msg = serde_saphyr::UserMessageFormatter.format_message(e.without_snippet());
    msg.lines().next().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests;
