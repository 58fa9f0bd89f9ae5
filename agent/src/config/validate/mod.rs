//! Validation: the raw file into a [`Config`], refusing the first value that
//! cannot be served, at its location. One function per section, and per
//! level of a redirect (redirect, port, backend).

mod kubernetes;
mod redirects;
mod sections;

use std::{net::IpAddr, path::Path};

use ipnet::IpNet;
use serde_saphyr::Spanned;

use super::{raw::RawConfig, Config, ConfigError};

#[derive(Clone, Copy)]
pub struct Validator<'a> {
    pub file: &'a Path,
    /// The node's own addresses; empty where the file is checked for no
    /// node in particular.
    pub node: &'a [IpAddr],
    /// The file's `allowReserved`, once read.
    pub allow: &'a [IpNet],
}

impl Validator<'_> {
    fn err<T>(&self, at: &Spanned<T>, field: impl Into<String>, message: String) -> ConfigError {
        ConfigError {
            file: self.file.to_owned(),
            line: at.referenced.line(),
            column: at.referenced.column(),
            field: field.into(),
            message,
        }
    }

    pub fn config(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let allow_reserved = self.allow_reserved(raw.allow_reserved.as_deref())?;
        Validator {
            allow: &allow_reserved,
            ..*self
        }
        .sections(raw)
    }

    fn sections(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let kubernetes = self.kubernetes(raw.kubernetes)?;
        let (frontends, named) = match &raw.redirects {
            Some(redirects) => self.redirects(redirects, kubernetes.is_some())?,
            None if kubernetes.is_some() => Default::default(),
            None => {
                return Err(ConfigError {
                    file: self.file.to_owned(),
                    line: 1,
                    column: 1,
                    field: "redirects".into(),
                    message: "no redirects, and no kubernetes section to bring them".into(),
                })
            }
        };
        Ok(Config {
            frontends,
            named,
            dns: self.dns(raw.dns)?,
            interfaces: self.interfaces(raw.interfaces.unwrap_or_default())?,
            ct_entries: self.ct_entries(raw.conntrack.as_ref())?,
            timeouts: self.timeouts(raw.conntrack.as_ref())?,
            listener: self.listener(raw.metrics.as_ref())?,
            metrics: self.metrics(raw.metrics)?,
            socket: self.socket(raw.socket)?,
            kubernetes,
            allow_reserved: self.allow.to_vec(),
        })
    }

    /// Ranges of `reserved` addresses to serve all the same: only those,
    /// so that a mistyped range opens nothing else.
    fn allow_reserved(&self, raw: Option<&[Spanned<String>]>) -> Result<Vec<IpNet>, ConfigError> {
        let mut out = Vec::new();
        for (i, s) in raw.unwrap_or_default().iter().enumerate() {
            let field = format!("allowReserved[{i}]");
            let net = self.cidr(s, &field)?;
            if !allowable(net.network()) || !allowable(net.broadcast()) {
                return Err(self.err(
                    s,
                    field,
                    format!(
                        "{net} is not within a link-local or reserved range \
                         (169.254.0.0/16, 240.0.0.0/4, fe80::/10): nothing to allow"
                    ),
                ));
            }
            out.push(net);
        }
        Ok(out)
    }

    fn unicast(&self, s: &Spanned<String>, field: &str) -> Result<IpAddr, ConfigError> {
        let addr: IpAddr = s
            .value
            .parse()
            .map_err(|_| self.err(s, field, format!("not an IP address: {:?}", s.value)))?;
        match not_unicast(addr) {
            Some(why) => Err(self.err(s, field, why)),
            None => Ok(addr),
        }
    }

    /// A frontend must not capture traffic the node needs: loopback, the
    /// node's own addresses, or anything but a unicast address.
    fn frontend_addr(&self, s: &Spanned<String>, field: &str) -> Result<IpAddr, ConfigError> {
        let addr = self.unicast(s, field)?;
        if let Some(why) = unservable(addr, self.node, self.allow) {
            return Err(self.err(s, field, why));
        }
        Ok(addr)
    }

    fn port(&self, p: &Spanned<u32>, field: &str) -> Result<u16, ConfigError> {
        match u16::try_from(p.value) {
            Ok(port) if port != 0 => Ok(port),
            _ => Err(self.err(p, field, format!("port {} out of range 1..=65535", p.value))),
        }
    }
}

/// Why `addr` cannot be a frontend on the node whose addresses are `node`,
/// if it cannot: the same test for every source's frontends (the file, a
/// name's addresses, the cluster's). `allow` is the file's `allowReserved`.
pub fn unservable(addr: IpAddr, node: &[IpAddr], allow: &[IpNet]) -> Option<String> {
    not_unicast(addr)
        .or_else(|| reserved(addr, allow))
        .or_else(|| {
            node.contains(&addr).then(|| {
                format!(
                "{addr} is an address of this node: hairpin would capture the node's own traffic"
            )
            })
        })
}

/// Why `addr` cannot be a backend of `frontend`, if it cannot: the same
/// test for every source's backends (the file, EndpointSlices, pods).
pub fn unusable_backend(addr: IpAddr, frontend: IpAddr, allow: &[IpNet]) -> Option<String> {
    not_unicast(addr)
        .or_else(|| reserved(addr, allow))
        .or_else(|| {
            if addr.is_ipv4() != frontend.is_ipv4() {
                Some(format!(
                    "{addr} is not of the frontend's family: a redirect is IPv4 or IPv6"
                ))
            } else {
                (addr == frontend).then(|| format!("{addr} is the frontend's own address: a loop"))
            }
        })
}

/// Addresses no frontend or backend has unless `allow` covers them:
/// link-local ones (the cloud metadata service's among them) mean a
/// different host on every link, and 240.0.0.0/4 is reserved. IPv4-mapped
/// IPv6 ones never: such packets are IPv4 on the wire, where a redirect of
/// the IPv4 address meets them.
fn reserved(addr: IpAddr, allow: &[IpNet]) -> Option<String> {
    let unless = "which allowReserved does not list";
    match addr {
        IpAddr::V6(a) if a.to_ipv4_mapped().is_some() => Some(format!(
            "{addr} is an IPv4-mapped IPv6 address: write the IPv4 address"
        )),
        _ if allow.iter().any(|n| n.contains(&addr)) => None,
        IpAddr::V4(a) if a.is_link_local() => Some(format!(
            "{addr} is link-local (169.254.0.0/16, the cloud metadata service's range), {unless}"
        )),
        IpAddr::V4(a) if a.octets()[0] >= 240 => {
            Some(format!("{addr} is reserved (240.0.0.0/4), {unless}"))
        }
        IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80 => {
            Some(format!("{addr} is link-local (fe80::/10), {unless}"))
        }
        _ => None,
    }
}

/// Whether `allowReserved` may list `addr`: a link-local or reserved one
/// (an IPv4-mapped one is a spelling, never allowed).
fn allowable(addr: IpAddr) -> bool {
    reserved(addr, &[]).is_some() && !matches!(addr, IpAddr::V6(a) if a.to_ipv4_mapped().is_some())
}

fn not_unicast(addr: IpAddr) -> Option<String> {
    let broadcast = matches!(addr, IpAddr::V4(a) if a.is_broadcast());
    (addr.is_unspecified() || broadcast || addr.is_multicast() || addr.is_loopback())
        .then(|| format!("{addr} is not a unicast address"))
}

/// Whether `s` is a DNS name a frontend may be written as: labels of
/// letters, digits and hyphens, not all digits (that would be a mistyped
/// address).
fn is_dns_name(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    let label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    s.len() <= 253
        && s.split('.').all(label)
        && s.chars().any(|c| c.is_ascii_alphabetic())
        && !s.contains(':')
}
