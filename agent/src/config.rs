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

use std::{
    collections::BTreeSet,
    fmt,
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
};

use hairpin_common::{CtTimeouts, IPPROTO_TCP, IPPROTO_UDP, NS_PER_SEC};
use serde::Deserialize;
use serde_saphyr::Spanned;

/// A configuration error, located in its file.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: u64,
    pub column: u64,
    /// The field's path, e.g. `redirects[0].ports[1].port`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// A validated configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub frontends: Vec<Frontend>,
    pub interfaces: Interfaces,
    pub ct_entries: u32,
    pub timeouts: CtTimeouts,
    pub metrics: Option<SocketAddr>,
    pub socket: SocketLb,
}

/// The socket-level path for processes that never cross a pod's veth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketLb {
    pub enabled: bool,
    pub scope: SocketScope,
    /// The cgroup v2 directory to attach to; `None`: the root of the
    /// machine's cgroup v2 hierarchy.
    pub cgroup: Option<PathBuf>,
}

/// Which sockets the socket-level path translates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketScope {
    /// Sockets in the node's own network namespace: pods keep the TC path,
    /// whose original destination service meshes in pods rely on.
    Host,
    /// Every socket in the cgroup, pods' included.
    All,
}

/// Where metrics are served unless configured: loopback only.
pub const DEFAULT_METRICS: &str = "127.0.0.1:9469";

/// One frontend: an address, a port and a protocol, with its backends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frontend {
    /// `<redirect>/<port name or number>/<protocol>`, for logs and listings.
    pub name: String,
    pub addr: IpAddr,
    pub port: u16,
    pub proto: u8,
    pub backends: Vec<Backend>,
    /// Where the frontend's address is written, for errors found later
    /// (against the node's own addresses).
    pub line: u64,
    pub column: u64,
    pub field: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
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
const MAX_WEIGHT: u32 = 256;
/// YAML nodes a configuration may have: a million frontends' worth.
const MAX_YAML_NODES: usize = 20_000_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawConfig {
    redirects: Spanned<Vec<RawRedirect>>,
    #[serde(default)]
    interfaces: Option<RawInterfaces>,
    #[serde(default)]
    conntrack: Option<RawConntrack>,
    #[serde(default)]
    metrics: Option<RawMetrics>,
    #[serde(default)]
    socket: Option<RawSocket>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawMetrics {
    /// `host:port`, or `off`.
    address: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSocket {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    scope: Option<Spanned<String>>,
    #[serde(default)]
    cgroup: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRedirect {
    name: Spanned<String>,
    frontend: Spanned<String>,
    ports: Vec<RawPort>,
    backends: Vec<RawBackend>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawPort {
    #[serde(default)]
    name: Option<Spanned<String>>,
    port: Spanned<u32>,
    protocol: Spanned<String>,
    #[serde(default)]
    target_port: Option<Spanned<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawBackend {
    ip: Spanned<String>,
    /// Overrides the ports' `targetPort` for this backend.
    #[serde(default)]
    port: Option<Spanned<u32>>,
    /// Overrides per frontend port, keyed by the port's name or number,
    /// where this backend listens elsewhere for some ports only.
    #[serde(default)]
    ports: Option<std::collections::BTreeMap<String, Spanned<u32>>>,
    #[serde(default)]
    weight: Option<Spanned<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawInterfaces {
    #[serde(default)]
    uplink: Option<Spanned<String>>,
    #[serde(default)]
    pods: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawConntrack {
    #[serde(default)]
    max_entries: Option<Spanned<u32>>,
    #[serde(default)]
    timeouts: Option<RawTimeouts>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeouts {
    syn: Option<u64>,
    tcp: Option<u64>,
    close: Option<u64>,
    udp: Option<u64>,
}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_owned(),
            line: 0,
            column: 0,
            field: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(path, &text)
    }

    /// Validates `text`, read from `file`.
    pub fn parse(file: &Path, text: &str) -> Result<Self, ConfigError> {
        // Large node-wide configurations (100,000 frontends) exceed the
        // parser's default budget, which guards against untrusted input: a
        // configuration is the operator's own, so it gets room to grow.
        let mut budget = serde_saphyr::Budget::default();
        budget.max_nodes = MAX_YAML_NODES;
        budget.max_events = 2 * MAX_YAML_NODES;
        let mut options = serde_saphyr::Options::default();
        options.budget = Some(budget);
        let raw: RawConfig = serde_saphyr::from_str_with_options(text, options).map_err(|e| {
            let loc = e.location();
            ConfigError {
                file: file.to_owned(),
                line: loc.map_or(0, |l| l.line()),
                column: loc.map_or(0, |l| l.column()),
                field: String::new(),
                message: parser_message(&e),
            }
        })?;
        Validator { file }.config(raw)
    }
}

/// The parser's message, without the location its `Display` prefixes (the
/// error carries it) and the source excerpt it appends.
fn parser_message(e: &serde_saphyr::Error) -> String {
    use serde_saphyr::MessageFormatter as _;
    let msg = serde_saphyr::UserMessageFormatter.format_message(e.without_snippet());
    msg.lines().next().unwrap_or_default().to_owned()
}

struct Validator<'a> {
    file: &'a Path,
}

impl Validator<'_> {
    fn err<T>(&self, at: &Spanned<T>, field: String, message: String) -> ConfigError {
        ConfigError {
            file: self.file.to_owned(),
            line: at.referenced.line(),
            column: at.referenced.column(),
            field,
            message,
        }
    }

    fn config(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        if raw.redirects.value.is_empty() {
            return Err(self.err(
                &raw.redirects,
                "redirects".into(),
                "no redirect: hairpin needs at least one".into(),
            ));
        }
        let mut frontends = Vec::new();
        let mut names = BTreeSet::new();
        let mut seen = BTreeSet::new();
        for (i, r) in raw.redirects.value.iter().enumerate() {
            let at = format!("redirects[{i}]");
            let addr = self.frontend_addr(&r.frontend, &format!("{at}.frontend"))?;
            // A name may have a redirect of each family (dual stack).
            if r.name.value.is_empty() || !names.insert((r.name.value.clone(), addr.is_ipv4())) {
                let why = if r.name.value.is_empty() {
                    "empty redirect name"
                } else {
                    "duplicate redirect name in this address family"
                };
                return Err(self.err(&r.name, format!("{at}.name"), why.into()));
            }
            if r.ports.is_empty() || r.backends.is_empty() {
                let what = if r.ports.is_empty() {
                    "ports"
                } else {
                    "backends"
                };
                return Err(self.err(
                    &r.name,
                    format!("{at}.{what}"),
                    format!("a redirect needs at least one entry in {what}"),
                ));
            }
            for (k, b) in r.backends.iter().enumerate() {
                for (key, at_port) in b.ports.iter().flatten() {
                    let known = r.ports.iter().any(|p| {
                        p.name.as_ref().is_some_and(|n| &n.value == key)
                            || p.port.value.to_string() == *key
                    });
                    if !known {
                        return Err(self.err(
                            at_port,
                            format!("{at}.backends[{k}].ports.{key}"),
                            format!("no port named or numbered {key:?} in this redirect"),
                        ));
                    }
                }
            }
            let mut port_names = BTreeSet::new();
            for (j, p) in r.ports.iter().enumerate() {
                let pat = format!("{at}.ports[{j}]");
                if let Some(name) = &p.name {
                    if !port_names.insert(name.value.clone()) {
                        return Err(self.err(
                            name,
                            format!("{pat}.name"),
                            format!("duplicate port name {:?} in this redirect", name.value),
                        ));
                    }
                }
                let port = self.port(&p.port, &format!("{pat}.port"))?;
                let proto = match p.protocol.value.to_ascii_uppercase().as_str() {
                    "TCP" => IPPROTO_TCP,
                    "UDP" => IPPROTO_UDP,
                    _ => {
                        return Err(self.err(
                            &p.protocol,
                            format!("{pat}.protocol"),
                            format!("unknown protocol {:?}: TCP or UDP", p.protocol.value),
                        ));
                    }
                };
                if !seen.insert((addr, port, proto)) {
                    return Err(self.err(
                        &p.port,
                        format!("{pat}.port"),
                        format!(
                            "duplicate frontend {addr}:{port}/{}",
                            p.protocol.value.to_ascii_uppercase()
                        ),
                    ));
                }
                let target = match &p.target_port {
                    Some(t) => self.port(t, &format!("{pat}.targetPort"))?,
                    None => port,
                };
                let mut backends = Vec::new();
                for (k, b) in r.backends.iter().enumerate() {
                    let bat = format!("{at}.backends[{k}]");
                    let baddr = self.unicast(&b.ip, &format!("{bat}.ip"))?;
                    if baddr.is_ipv4() != addr.is_ipv4() {
                        return Err(self.err(
                            &b.ip,
                            format!("{bat}.ip"),
                            format!("{baddr} is not of the frontend's family: a redirect is IPv4 or IPv6"),
                        ));
                    }
                    if baddr == addr {
                        return Err(self.err(
                            &b.ip,
                            format!("{bat}.ip"),
                            format!("{baddr} is the frontend's own address: a loop"),
                        ));
                    }
                    let by_port = b.ports.as_ref().and_then(|m| {
                        p.name
                            .as_ref()
                            .and_then(|n| m.get_key_value(&n.value))
                            .or_else(|| m.get_key_value(&port.to_string()))
                    });
                    let bport = match (by_port, &b.port) {
                        (Some((k, bp)), _) => self.port(bp, &format!("{bat}.ports.{k}"))?,
                        (None, Some(bp)) => self.port(bp, &format!("{bat}.port"))?,
                        (None, None) => target,
                    };
                    let weight = match &b.weight {
                        Some(w) if w.value == 0 || w.value > MAX_WEIGHT => {
                            return Err(self.err(
                                w,
                                format!("{bat}.weight"),
                                format!("weight {} out of range 1..={MAX_WEIGHT}", w.value),
                            ));
                        }
                        Some(w) => w.value,
                        None => 1,
                    };
                    let backend = Backend {
                        addr: baddr,
                        port: bport,
                        weight,
                    };
                    if backends
                        .iter()
                        .any(|x: &Backend| x.addr == baddr && x.port == bport)
                    {
                        return Err(self.err(
                            &b.ip,
                            format!("{bat}.ip"),
                            format!("duplicate backend {baddr}:{bport}"),
                        ));
                    }
                    backends.push(backend);
                }
                let port_name = p
                    .name
                    .as_ref()
                    .map_or_else(|| port.to_string(), |n| n.value.clone());
                frontends.push(Frontend {
                    name: format!(
                        "{}/{port_name}/{}",
                        r.name.value,
                        p.protocol.value.to_ascii_uppercase()
                    ),
                    addr,
                    port,
                    proto,
                    backends,
                    line: r.frontend.referenced.line(),
                    column: r.frontend.referenced.column(),
                    field: format!("{at}.frontend"),
                });
            }
        }
        let interfaces = self.interfaces(raw.interfaces)?;
        let (ct_entries, timeouts) = self.conntrack(raw.conntrack)?;
        let metrics = match raw.metrics {
            None => Some(DEFAULT_METRICS.parse().expect("valid default")),
            Some(m) if m.address.value == "off" => None,
            Some(m) => Some(m.address.value.parse().map_err(|_| {
                self.err(
                    &m.address,
                    "metrics.address".into(),
                    format!("not an address:port (or off): {:?}", m.address.value),
                )
            })?),
        };
        let socket = self.socket(raw.socket)?;
        Ok(Config {
            frontends,
            interfaces,
            ct_entries,
            timeouts,
            metrics,
            socket,
        })
    }

    fn socket(&self, raw: Option<RawSocket>) -> Result<SocketLb, ConfigError> {
        let mut lb = SocketLb {
            enabled: true,
            scope: SocketScope::Host,
            cgroup: None,
        };
        let Some(raw) = raw else {
            return Ok(lb);
        };
        lb.enabled = raw.enabled.unwrap_or(true);
        lb.cgroup = raw.cgroup;
        if let Some(scope) = raw.scope {
            lb.scope = match scope.value.as_str() {
                "host" => SocketScope::Host,
                "all" => SocketScope::All,
                other => {
                    return Err(self.err(
                        &scope,
                        "socket.scope".into(),
                        format!("unknown scope {other:?}: host or all"),
                    ))
                }
            };
        }
        Ok(lb)
    }

    fn unicast(&self, s: &Spanned<String>, field: &str) -> Result<IpAddr, ConfigError> {
        let addr: IpAddr = s.value.parse().map_err(|_| {
            self.err(
                s,
                field.to_owned(),
                format!("not an IP address: {:?}", s.value),
            )
        })?;
        let broadcast = matches!(addr, IpAddr::V4(a) if a.is_broadcast());
        if addr.is_unspecified() || broadcast || addr.is_multicast() || addr.is_loopback() {
            return Err(self.err(
                s,
                field.to_owned(),
                format!("{addr} is not a unicast address"),
            ));
        }
        Ok(addr)
    }

    /// A frontend must not capture traffic the node needs: loopback, the
    /// node's own addresses (checked at run time, where they are known), or
    /// anything but a unicast address.
    fn frontend_addr(&self, s: &Spanned<String>, field: &str) -> Result<IpAddr, ConfigError> {
        self.unicast(s, field)
    }

    fn port(&self, p: &Spanned<u32>, field: &str) -> Result<u16, ConfigError> {
        match u16::try_from(p.value) {
            Ok(port) if port != 0 => Ok(port),
            _ => Err(self.err(
                p,
                field.to_owned(),
                format!("port {} out of range 1..=65535", p.value),
            )),
        }
    }

    fn interfaces(&self, raw: Option<RawInterfaces>) -> Result<Interfaces, ConfigError> {
        let raw = raw.unwrap_or(RawInterfaces {
            uplink: None,
            pods: None,
        });
        let uplink = match raw.uplink {
            Some(u) if u.value == "auto" => None,
            // IFNAMSIZ: 15 characters and the terminating zero.
            Some(u) if u.value.is_empty() || u.value.len() > 15 || u.value.contains(['/', ' ']) => {
                return Err(self.err(
                    &u,
                    "interfaces.uplink".into(),
                    format!("{:?} is not an interface name (or auto)", u.value),
                ));
            }
            Some(u) => Some(u.value),
            None => None,
        };
        let pods = match raw.pods {
            None => DEFAULT_POD_PATTERNS
                .iter()
                .map(|p| glob::Pattern::new(p).expect("valid default pattern"))
                .collect(),
            Some(list) => list
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    glob::Pattern::new(&p.value).map_err(|e| {
                        self.err(
                            p,
                            format!("interfaces.pods[{i}]"),
                            format!("bad pattern: {e}"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(Interfaces { uplink, pods })
    }

    fn conntrack(&self, raw: Option<RawConntrack>) -> Result<(u32, CtTimeouts), ConfigError> {
        let mut timeouts = CtTimeouts::default();
        let Some(raw) = raw else {
            return Ok((hairpin_common::DEFAULT_CT_ENTRIES, timeouts));
        };
        let entries = match raw.max_entries {
            Some(m) if m.value < 1024 => {
                return Err(self.err(
                    &m,
                    "conntrack.maxEntries".into(),
                    format!("{} is too small: at least 1024", m.value),
                ));
            }
            Some(m) => m.value,
            None => hairpin_common::DEFAULT_CT_ENTRIES,
        };
        if let Some(t) = raw.timeouts {
            for (slot, v) in [
                (&mut timeouts.syn, t.syn),
                (&mut timeouts.tcp, t.tcp),
                (&mut timeouts.close, t.close),
                (&mut timeouts.udp, t.udp),
            ] {
                if let Some(secs) = v {
                    *slot = secs.max(1).saturating_mul(NS_PER_SEC);
                }
            }
        }
        Ok((entries, timeouts))
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
