//! Validation: the raw file into a [`Config`], refusing the first value that
//! cannot be served, at its location. One function per section, and per
//! level of a redirect (redirect, port, backend).

mod kubernetes;
mod redirects;
mod sections;

use std::{net::IpAddr, path::Path};

use serde_saphyr::Spanned;

use super::{raw::RawConfig, Config, ConfigError};

pub struct Validator<'a> {
    pub file: &'a Path,
    /// The node's own addresses; empty where the file is checked for no
    /// node in particular.
    pub node: &'a [IpAddr],
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
        })
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
        if let Some(why) = unservable(addr, self.node) {
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
/// name's addresses, the cluster's).
pub fn unservable(addr: IpAddr, node: &[IpAddr]) -> Option<String> {
    not_unicast(addr).or_else(|| reserved(addr)).or_else(|| {
        node.contains(&addr).then(|| {
            format!(
                "{addr} is an address of this node: hairpin would capture the node's own traffic"
            )
        })
    })
}

/// Why `addr` cannot be a backend of `frontend`, if it cannot: the same
/// test for every source's backends (the file, EndpointSlices, pods).
pub fn unusable_backend(addr: IpAddr, frontend: IpAddr) -> Option<String> {
    not_unicast(addr).or_else(|| reserved(addr)).or_else(|| {
        if addr.is_ipv4() != frontend.is_ipv4() {
            Some(format!(
                "{addr} is not of the frontend's family: a redirect is IPv4 or IPv6"
            ))
        } else {
            (addr == frontend).then(|| format!("{addr} is the frontend's own address: a loop"))
        }
    })
}

/// Addresses no frontend or backend has: link-local ones (the cloud
/// metadata service's among them) mean a different host on every link,
/// IPv4-mapped IPv6 ones are IPv4 packets, and 240.0.0.0/4 is reserved.
fn reserved(addr: IpAddr) -> Option<String> {
    match addr {
        IpAddr::V4(a) if a.is_link_local() => Some(format!(
            "{addr} is link-local (169.254.0.0/16, the cloud metadata service's range)"
        )),
        IpAddr::V4(a) if a.octets()[0] >= 240 => Some(format!("{addr} is reserved (240.0.0.0/4)")),
        IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80 => {
            Some(format!("{addr} is link-local (fe80::/10)"))
        }
        IpAddr::V6(a) if a.to_ipv4_mapped().is_some() => Some(format!(
            "{addr} is an IPv4-mapped IPv6 address: write the IPv4 address"
        )),
        _ => None,
    }
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
