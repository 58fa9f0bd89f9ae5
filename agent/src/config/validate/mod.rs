//! Validation: the raw file into a [`Config`], refusing the first value that
//! cannot be served, at its location. One function per section, and per
//! level of a redirect (redirect, port, backend).

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
        Ok(Config {
            frontends: self.redirects(&raw.redirects)?,
            interfaces: self.interfaces(raw.interfaces.unwrap_or_default())?,
            ct_entries: self.ct_entries(raw.conntrack.as_ref())?,
            timeouts: self.timeouts(raw.conntrack.as_ref())?,
            metrics: self.metrics(raw.metrics)?,
            socket: self.socket(raw.socket)?,
        })
    }

    fn unicast(&self, s: &Spanned<String>, field: &str) -> Result<IpAddr, ConfigError> {
        let addr: IpAddr = s
            .value
            .parse()
            .map_err(|_| self.err(s, field, format!("not an IP address: {:?}", s.value)))?;
        let broadcast = matches!(addr, IpAddr::V4(a) if a.is_broadcast());
        if addr.is_unspecified() || broadcast || addr.is_multicast() || addr.is_loopback() {
            return Err(self.err(s, field, format!("{addr} is not a unicast address")));
        }
        Ok(addr)
    }

    /// A frontend must not capture traffic the node needs: loopback, the
    /// node's own addresses, or anything but a unicast address.
    fn frontend_addr(&self, s: &Spanned<String>, field: &str) -> Result<IpAddr, ConfigError> {
        let addr = self.unicast(s, field)?;
        if self.node.contains(&addr) {
            return Err(self.err(
                s,
                field,
                format!("{addr} is an address of this node: hairpin would capture the node's own traffic"),
            ));
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
