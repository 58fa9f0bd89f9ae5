//! `redirects`: each redirect, its ports (one frontend each) and its
//! backends (one per frontend port).

use std::{collections::BTreeSet, net::IpAddr};

use hairpin_common::{IPPROTO_TCP, IPPROTO_UDP};
use serde_saphyr::Spanned;

use super::{is_dns_name, unusable_backend, Validator};
use crate::config::{
    raw::{RawBackend, RawPort, RawRedirect},
    Backend, ConfigError, Frontend, NamedFrontend,
};

const MAX_WEIGHT: u32 = 256;

/// What must be unique across the redirects of a file.
#[derive(Default)]
struct Seen {
    /// Redirect names, per family: a name may have one of each.
    names: BTreeSet<(String, bool)>,
    /// By address or name, family (a name may have a redirect of each),
    /// port and protocol.
    frontends: BTreeSet<(String, bool, u16, u8)>,
}

/// What a redirect's frontend is written as.
enum Target {
    Addr(IpAddr),
    /// A name, with its family's unspecified address.
    Name(String, IpAddr),
}

impl Target {
    fn addr(&self) -> IpAddr {
        match self {
            Target::Addr(a) | Target::Name(_, a) => *a,
        }
    }
}

/// The frontends of a file: written as addresses, written as names.
type Frontends = (Vec<Frontend>, Vec<NamedFrontend>);

/// One port of a redirect, validated: the frontend's part of it.
struct Port<'a> {
    raw: &'a RawPort,
    at: String,
    port: u16,
    proto: u8,
    target: u16,
}

impl Validator<'_> {
    pub(super) fn redirects(
        &self,
        raw: &Spanned<Vec<RawRedirect>>,
        from_cluster: bool,
    ) -> Result<Frontends, ConfigError> {
        if raw.value.is_empty() && !from_cluster {
            return Err(self.err(
                raw,
                "redirects",
                "no redirect: hairpin needs at least one".into(),
            ));
        }
        let mut seen = Seen::default();
        let mut out = (Vec::new(), Vec::new());
        for (i, r) in raw.value.iter().enumerate() {
            self.redirect(r, &format!("redirects[{i}]"), &mut seen, &mut out)?;
        }
        Ok(out)
    }

    fn target(&self, r: &RawRedirect, field: &str) -> Result<Target, ConfigError> {
        let written = &r.frontend.value;
        if written.parse::<IpAddr>().is_ok() || !is_dns_name(written) {
            return match self.frontend_addr(&r.frontend, field) {
                Err(e) if written.parse::<IpAddr>().is_err() => Err(ConfigError {
                    message: format!("not an IP address or a DNS name: {written:?}"),
                    ..e
                }),
                other => other.map(Target::Addr),
            };
        }
        // The family of the backends (checked one by one later).
        let v6 = r
            .backends
            .first()
            .and_then(|b| b.ip.value.parse::<IpAddr>().ok())
            .is_some_and(|a| a.is_ipv6());
        let any = if v6 {
            IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
        };
        let host = written.trim_end_matches('.').to_ascii_lowercase();
        Ok(Target::Name(host, any))
    }

    fn redirect(
        &self,
        r: &RawRedirect,
        at: &str,
        seen: &mut Seen,
        out: &mut Frontends,
    ) -> Result<(), ConfigError> {
        let target = self.target(r, &format!("{at}.frontend"))?;
        let addr = target.addr();
        let written = match &target {
            Target::Addr(a) => a.to_string(),
            Target::Name(host, _) => host.clone(),
        };
        self.redirect_name(r, at, addr, seen)?;
        for (what, empty) in [
            ("ports", r.ports.is_empty()),
            ("backends", r.backends.is_empty()),
        ] {
            if empty {
                return Err(self.err(
                    &r.name,
                    format!("{at}.{what}"),
                    format!("a redirect needs at least one entry in {what}"),
                ));
            }
        }
        self.backend_port_keys(r, at)?;
        let mut port_names = BTreeSet::new();
        for (j, p) in r.ports.iter().enumerate() {
            let port = self.redirect_port(p, format!("{at}.ports[{j}]"), &mut port_names)?;
            if !seen
                .frontends
                .insert((written.clone(), addr.is_ipv4(), port.port, port.proto))
            {
                return Err(self.err(
                    &p.port,
                    format!("{}.port", port.at),
                    format!(
                        "duplicate frontend {written}:{}/{}",
                        port.port,
                        p.protocol.value.to_ascii_uppercase()
                    ),
                ));
            }
            let backends = self.backends(r, at, addr, &port)?;
            let port_name = p
                .name
                .as_ref()
                .map_or_else(|| port.port.to_string(), |n| n.value.clone());
            let frontend = Frontend {
                name: format!(
                    "{}/{port_name}/{}",
                    r.name.value,
                    p.protocol.value.to_ascii_uppercase()
                ),
                source: format!("{}:{}", self.file.display(), r.name.referenced.line()),
                addr,
                port: port.port,
                proto: port.proto,
                backends,
                policy: Default::default(),
            };
            match &target {
                Target::Addr(_) => out.0.push(frontend),
                Target::Name(host, _) => out.1.push(NamedFrontend {
                    host: host.clone(),
                    frontend,
                }),
            }
        }
        Ok(())
    }

    fn redirect_name(
        &self,
        r: &RawRedirect,
        at: &str,
        addr: IpAddr,
        seen: &mut Seen,
    ) -> Result<(), ConfigError> {
        let why = if r.name.value.is_empty() {
            "empty redirect name"
        } else if !seen.names.insert((r.name.value.clone(), addr.is_ipv4())) {
            "duplicate redirect name in this address family"
        } else {
            return Ok(());
        };
        Err(self.err(&r.name, format!("{at}.name"), why.into()))
    }

    /// A backend's per-port override must name a port of its redirect.
    fn backend_port_keys(&self, r: &RawRedirect, at: &str) -> Result<(), ConfigError> {
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
        Ok(())
    }

    fn redirect_port<'a>(
        &self,
        p: &'a RawPort,
        at: String,
        names: &mut BTreeSet<String>,
    ) -> Result<Port<'a>, ConfigError> {
        if let Some(name) = &p.name {
            if !names.insert(name.value.clone()) {
                return Err(self.err(
                    name,
                    format!("{at}.name"),
                    format!("duplicate port name {:?} in this redirect", name.value),
                ));
            }
        }
        let port = self.port(&p.port, &format!("{at}.port"))?;
        let proto = match p.protocol.value.to_ascii_uppercase().as_str() {
            "TCP" => IPPROTO_TCP,
            "UDP" => IPPROTO_UDP,
            _ => {
                return Err(self.err(
                    &p.protocol,
                    format!("{at}.protocol"),
                    format!("unknown protocol {:?}: TCP or UDP", p.protocol.value),
                ));
            }
        };
        let target = match &p.target_port {
            Some(t) => self.port(t, &format!("{at}.targetPort"))?,
            None => port,
        };
        Ok(Port {
            raw: p,
            at,
            port,
            proto,
            target,
        })
    }

    /// The backends of one frontend port.
    fn backends(
        &self,
        r: &RawRedirect,
        at: &str,
        addr: IpAddr,
        port: &Port<'_>,
    ) -> Result<Vec<Backend>, ConfigError> {
        let mut backends: Vec<Backend> = Vec::new();
        for (k, b) in r.backends.iter().enumerate() {
            let bat = format!("{at}.backends[{k}]");
            let backend = self.backend(b, &bat, addr, port)?;
            if backends
                .iter()
                .any(|x| x.addr == backend.addr && x.port == backend.port)
            {
                return Err(self.err(
                    &b.ip,
                    format!("{bat}.ip"),
                    format!("duplicate backend {}:{}", backend.addr, backend.port),
                ));
            }
            backends.push(backend);
        }
        // A backend of weight w takes w slots; a frontend's slot count is
        // 16 bits in the datapath (`Frontend::slots`).
        let slots: u32 = backends.iter().map(|b| b.weight).sum();
        if let Some(last) = r.backends.last().filter(|_| slots > u32::from(u16::MAX)) {
            return Err(self.err(
                &last.ip,
                format!("{at}.backends"),
                format!(
                    "the weights sum to {slots} backend slots: a frontend has at most {}",
                    u16::MAX
                ),
            ));
        }
        Ok(backends)
    }

    fn backend(
        &self,
        b: &RawBackend,
        at: &str,
        frontend: IpAddr,
        port: &Port<'_>,
    ) -> Result<Backend, ConfigError> {
        let field = format!("{at}.ip");
        let addr = self.unicast(&b.ip, &field)?;
        if let Some(why) = unusable_backend(addr, frontend, self.allow) {
            return Err(self.err(&b.ip, field, why));
        }
        let by_port = b.ports.as_ref().and_then(|m| {
            port.raw
                .name
                .as_ref()
                .and_then(|n| m.get_key_value(&n.value))
                .or_else(|| m.get_key_value(&port.port.to_string()))
        });
        let bport = match (by_port, &b.port) {
            (Some((k, bp)), _) => self.port(bp, &format!("{at}.ports.{k}"))?,
            (None, Some(bp)) => self.port(bp, &format!("{at}.port"))?,
            (None, None) => port.target,
        };
        let weight = match &b.weight {
            Some(w) if w.value == 0 || w.value > MAX_WEIGHT => {
                return Err(self.err(
                    w,
                    format!("{at}.weight"),
                    format!("weight {} out of range 1..={MAX_WEIGHT}", w.value),
                ));
            }
            Some(w) => w.value,
            None => 1,
        };
        Ok(Backend {
            addr,
            port: bport,
            weight,
        })
    }
}
