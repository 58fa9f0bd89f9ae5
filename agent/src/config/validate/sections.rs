//! The sections beside the redirects: interfaces, conntrack, metrics and
//! the socket-level path.

use std::{net::SocketAddr, time::Duration};

use serde_saphyr::Spanned;

use hairpin_common::{CtTimeouts, DEFAULT_CT_ENTRIES, NS_PER_SEC};

use super::Validator;
use crate::config::{
    raw::{RawConntrack, RawDns, RawInterfaces, RawMetrics, RawSocket},
    ConfigError, DnsSettings, Interfaces, ListenerLimits, SocketLb, SocketScope, DEFAULT_METRICS,
    DEFAULT_POD_PATTERNS,
};

/// The smallest conntrack table: below it, a node's own churn evicts flows.
const MIN_CT_ENTRIES: u32 = 1024;
/// The longest TTL bound or grace a name may have, in seconds: a day.
const MAX_DNS_SECS: u64 = 86_400;
/// The most addresses of one family a name may be served at: each is a
/// frontend per port, and the frontend table holds a few thousand.
const MAX_NAME_ADDRESSES: u64 = 256;
/// IFNAMSIZ: 15 characters and the terminating zero.
const MAX_IFNAME: usize = 15;

impl Validator<'_> {
    pub(super) fn interfaces(&self, raw: RawInterfaces) -> Result<Interfaces, ConfigError> {
        let uplink = match raw.uplink {
            Some(u) if u.value == "auto" => None,
            Some(u)
                if u.value.is_empty()
                    || u.value.len() > MAX_IFNAME
                    || u.value.contains(['/', ' ']) =>
            {
                return Err(self.err(
                    &u,
                    "interfaces.uplink",
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

    pub(super) fn ct_entries(&self, raw: Option<&RawConntrack>) -> Result<u32, ConfigError> {
        match raw.and_then(|c| c.max_entries.as_ref()) {
            Some(m) if m.value < MIN_CT_ENTRIES => Err(self.err(
                m,
                "conntrack.maxEntries",
                format!("{} is too small: at least {MIN_CT_ENTRIES}", m.value),
            )),
            Some(m) => Ok(m.value),
            None => Ok(DEFAULT_CT_ENTRIES),
        }
    }

    pub(super) fn timeouts(&self, raw: Option<&RawConntrack>) -> Result<CtTimeouts, ConfigError> {
        let mut timeouts = CtTimeouts::default();
        let Some(t) = raw.and_then(|c| c.timeouts.as_ref()) else {
            return Ok(timeouts);
        };
        for (name, slot, v) in [
            ("syn", &mut timeouts.syn, &t.syn),
            ("tcp", &mut timeouts.tcp, &t.tcp),
            ("close", &mut timeouts.close, &t.close),
            ("udp", &mut timeouts.udp, &t.udp),
        ] {
            match v {
                // A zero lifetime would end every flow at its first packet.
                Some(secs) if secs.value == 0 => {
                    return Err(self.err(
                        secs,
                        format!("conntrack.timeouts.{name}"),
                        "a timeout of 0 would end every flow at once: at least 1 second".into(),
                    ));
                }
                Some(secs) => *slot = secs.value.saturating_mul(NS_PER_SEC),
                None => {}
            }
        }
        Ok(timeouts)
    }

    pub(super) fn metrics(
        &self,
        raw: Option<RawMetrics>,
    ) -> Result<Option<SocketAddr>, ConfigError> {
        match raw {
            None => Ok(Some(DEFAULT_METRICS.parse().expect("valid default"))),
            Some(m) if m.address.value == "off" => Ok(None),
            Some(m) => {
                let addr: SocketAddr = m.address.value.parse().map_err(|_| {
                    self.err(
                        &m.address,
                        "metrics.address",
                        format!("not an address:port (or off): {:?}", m.address.value),
                    )
                })?;
                // Every host that reaches it reads the node's flows' counts.
                if !addr.ip().is_loopback() && m.exposed != Some(true) {
                    return Err(self.err(
                        &m.address,
                        "metrics.address",
                        format!(
                            "{addr} is reachable from other hosts: say `exposed: true` beside \
                             it to serve metrics and health there"
                        ),
                    ));
                }
                Ok(Some(addr))
            }
        }
    }

    pub(super) fn listener(&self, raw: Option<&RawMetrics>) -> Result<ListenerLimits, ConfigError> {
        let mut limits = ListenerLimits::default();
        let Some(raw) = raw else {
            return Ok(limits);
        };
        let bounded = |v: &Option<Spanned<u32>>, field, min, max| match v {
            Some(n) if !(min..=max).contains(&n.value) => Err(self.err(
                n,
                field,
                format!("{} is out of range: {min} to {max}", n.value),
            )),
            Some(n) => Ok(Some(n.value as usize)),
            None => Ok(None),
        };
        if let Some(n) = bounded(&raw.max_connections, "metrics.maxConnections", 16, 65_536)? {
            limits.connections = n;
        }
        if let Some(n) = bounded(&raw.max_monitors, "metrics.maxMonitors", 1, 1024)? {
            limits.monitors = n;
        }
        Ok(limits)
    }

    pub(super) fn socket(&self, raw: Option<RawSocket>) -> Result<SocketLb, ConfigError> {
        let Some(raw) = raw else {
            return Ok(SocketLb::default());
        };
        let scope = match raw.scope {
            None => SocketScope::Host,
            Some(s) => match s.value.as_str() {
                "host" => SocketScope::Host,
                "all" => SocketScope::All,
                other => {
                    return Err(self.err(
                        &s,
                        "socket.scope",
                        format!("unknown scope {other:?}: host or all"),
                    ))
                }
            },
        };
        let cgroups = raw
            .cgroups
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, p)| self.cgroup_pattern(p, i))
            .collect::<Result<_, _>>()?;
        Ok(SocketLb {
            enabled: raw.enabled.unwrap_or(true),
            scope,
            cgroup: raw.cgroup,
            pods: raw.pods.unwrap_or(true),
            cgroups,
        })
    }

    /// `socket.cgroups[i]`: a path under the socket path's cgroup, as deep
    /// as the datapath looks.
    fn cgroup_pattern(&self, p: &Spanned<String>, i: usize) -> Result<glob::Pattern, ConfigError> {
        let field = format!("socket.cgroups[{i}]");
        let parts: Vec<&str> = p.value.split('/').collect();
        if p.value.starts_with('/') || parts.iter().any(|c| c.is_empty() || *c == "..") {
            return Err(self.err(
                p,
                field,
                format!(
                    "{:?}: a relative path of names under socket.cgroup",
                    p.value
                ),
            ));
        }
        if parts.len() > hairpin_common::SOCK_CGROUP_LEVELS as usize {
            return Err(self.err(
                p,
                field,
                format!(
                    "{:?} is {} levels deep: at most {} are looked up",
                    p.value,
                    parts.len(),
                    hairpin_common::SOCK_CGROUP_LEVELS
                ),
            ));
        }
        glob::Pattern::new(&p.value).map_err(|e| self.err(p, field, format!("bad pattern: {e}")))
    }

    pub(super) fn dns(&self, raw: Option<RawDns>) -> Result<DnsSettings, ConfigError> {
        let mut dns = DnsSettings::default();
        let Some(raw) = raw else {
            return Ok(dns);
        };
        if let Some(path) = raw.resolv_conf {
            dns.resolv_conf = path;
        }
        let secs = |v: &Option<serde_saphyr::Spanned<u64>>, default: Duration| {
            v.as_ref().map_or(default, |s| Duration::from_secs(s.value))
        };
        dns.min_ttl = secs(&raw.min_ttl, dns.min_ttl);
        dns.max_ttl = secs(&raw.max_ttl, dns.max_ttl);
        dns.grace = secs(&raw.grace, dns.grace);
        if let Some(m) = raw.min_ttl.as_ref().filter(|m| m.value == 0) {
            return Err(self.err(
                m,
                "dns.minTtl",
                "0 would resolve without pause: at least 1 second".into(),
            ));
        }
        // A day at most: larger values overflow the resolver's clock
        // arithmetic, and nothing is gained by waiting longer.
        for (v, field) in [
            (&raw.min_ttl, "dns.minTtl"),
            (&raw.max_ttl, "dns.maxTtl"),
            (&raw.grace, "dns.grace"),
        ] {
            if let Some(m) = v.as_ref().filter(|m| m.value > MAX_DNS_SECS) {
                return Err(self.err(
                    m,
                    field,
                    format!("{} s is over a day ({MAX_DNS_SECS} s)", m.value),
                ));
            }
        }
        if let Some(m) = raw.max_addresses.as_ref() {
            if !(1..=MAX_NAME_ADDRESSES).contains(&m.value) {
                return Err(self.err(
                    m,
                    "dns.maxAddresses",
                    format!("{} is not within 1 and {MAX_NAME_ADDRESSES}", m.value),
                ));
            }
            dns.max_addresses = m.value as usize;
        }
        let disordered = dns.max_ttl < dns.min_ttl;
        if let Some(m) = raw.max_ttl.as_ref().filter(|_| disordered) {
            return Err(self.err(
                m,
                "dns.maxTtl",
                format!("{} is below minTtl ({} s)", m.value, dns.min_ttl.as_secs()),
            ));
        }
        // Without a maxTtl, the default's.
        if let Some(m) = raw.min_ttl.as_ref().filter(|_| disordered) {
            return Err(self.err(
                m,
                "dns.minTtl",
                format!(
                    "{} is above maxTtl ({} s, the default)",
                    m.value,
                    dns.max_ttl.as_secs()
                ),
            ));
        }
        Ok(dns)
    }
}
