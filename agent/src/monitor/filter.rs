//! What a monitor asks for: kinds of events, a frontend, a client. Each
//! monitor's filter is applied to what it gets; the part that all of them
//! share goes to the datapath, so that it does not report what no one
//! wants.

use std::net::{IpAddr, SocketAddr};

use anyhow::{bail, Context as _, Result};
use hairpin_common::{
    EventKind, MonitorConfig, WireAddr as _, DEFAULT_EVENT_KINDS, MONITOR_CLIENT, MONITOR_FRONTEND,
};

use super::event::Shown;

/// A frontend as a monitor names it: an address, with or without a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrontendMatch {
    pub addr: IpAddr,
    pub port: Option<u16>,
}

impl std::str::FromStr for FrontendMatch {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        if let Ok(a) = s.parse::<SocketAddr>() {
            return Ok(Self {
                addr: a.ip(),
                port: Some(a.port()),
            });
        }
        let addr = s
            .trim_matches(['[', ']'])
            .parse()
            .with_context(|| format!("{s:?} is not an address or address:port"))?;
        Ok(Self { addr, port: None })
    }
}

impl std::fmt::Display for FrontendMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port {
            Some(p) => write!(f, "{}", SocketAddr::new(self.addr, p)),
            None => write!(f, "{}", self.addr),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// `EventKind::bit`s.
    pub kinds: u32,
    pub frontend: Option<FrontendMatch>,
    pub client: Option<IpAddr>,
}

impl Default for Filter {
    fn default() -> Self {
        Self {
            kinds: DEFAULT_EVENT_KINDS,
            frontend: None,
            client: None,
        }
    }
}

/// The kinds named in `list` (comma-separated `EventKind` names, or `all`).
pub fn kinds(list: &str) -> Result<u32> {
    let mut bits = 0;
    for name in list.split(',').filter(|n| !n.is_empty()) {
        bits |= match name {
            "all" => EventKind::ALL.iter().fold(0, |b, k| b | k.bit()),
            _ => match EventKind::ALL.iter().find(|k| k.name() == name) {
                Some(k) => k.bit(),
                None => bail!(
                    "unknown event type {name:?}: one of {}, all",
                    EventKind::ALL.map(|k| k.name()).join(", ")
                ),
            },
        };
    }
    Ok(bits)
}

impl Filter {
    /// The query of `/events`: `types=…&frontend=…&client=…`.
    pub fn query(&self) -> String {
        let names: Vec<&str> = EventKind::ALL
            .iter()
            .filter(|k| self.kinds & k.bit() != 0)
            .map(|k| k.name())
            .collect();
        let mut q = format!("types={}", names.join(","));
        if let Some(f) = self.frontend {
            q.push_str(&format!("&frontend={f}"));
        }
        if let Some(c) = self.client {
            q.push_str(&format!("&client={c}"));
        }
        q
    }

    pub fn from_query(query: &str) -> Result<Self> {
        let mut f = Self::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "types" => f.kinds = kinds(v)?,
                "frontend" => f.frontend = Some(v.parse()?),
                "client" => {
                    f.client = Some(
                        v.parse()
                            .with_context(|| format!("client {v:?} is not an address"))?,
                    )
                }
                _ => bail!("unknown parameter {k:?}"),
            }
        }
        Ok(f)
    }

    /// Whether a monitor with this filter gets `e`. A `lost` line always.
    pub fn matches(&self, e: &Shown) -> bool {
        if e.count.is_some() {
            return true;
        }
        let kind = EventKind::ALL.iter().find(|k| k.name() == e.kind);
        if kind.is_none_or(|k| self.kinds & k.bit() == 0) {
            return false;
        }
        if let Some(fm) = self.frontend {
            let Some(fe) = e.frontend else {
                return false;
            };
            if fe.ip() != fm.addr || fm.port.is_some_and(|p| p != fe.port()) {
                return false;
            }
        }
        self.client
            .is_none_or(|c| e.client.is_some_and(|a| a.ip() == c))
    }
}

/// What the datapath reports for these monitors: every kind one of them
/// wants; a client or frontend only when every monitor names the same one
/// (a frontend only when `ids` resolves it to one frontend id).
pub fn kernel(filters: &[&Filter], ids: impl Fn(&FrontendMatch) -> Vec<u32>) -> MonitorConfig {
    let mut m = MonitorConfig {
        kinds: filters.iter().fold(0, |k, f| k | f.kinds),
        ..MonitorConfig::default()
    };
    let Some(first) = filters.first() else {
        return m;
    };
    if let Some(c) = first
        .client
        .filter(|c| filters.iter().all(|f| f.client == Some(*c)))
    {
        m.filters |= MONITOR_CLIENT;
        (m.client_family, m.client) = match c {
            IpAddr::V4(a) => (4, u32::from_octets(a.octets()).wide()),
            IpAddr::V6(a) => (6, <[u32; 4]>::from_octets(a.octets())),
        };
    }
    if let Some(fm) = first
        .frontend
        .filter(|fm| filters.iter().all(|f| f.frontend == Some(*fm)))
    {
        if let [id] = ids(&fm)[..] {
            m.filters |= MONITOR_FRONTEND;
            m.frontend_id = id;
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(kind: &str, client: &str, frontend: &str) -> Shown {
        Shown {
            kind: kind.into(),
            client: Some(client.parse().unwrap()),
            frontend: Some(frontend.parse().unwrap()),
            count: None,
            ..Shown::lost(0)
        }
    }

    #[test]
    fn a_query_says_what_the_filter_says() {
        let f = Filter {
            kinds: kinds("opened,ended").unwrap(),
            frontend: Some("[2001:db8::10]:8080".parse().unwrap()),
            client: Some("192.0.2.5".parse().unwrap()),
        };
        assert_eq!(
            f.query(),
            "types=opened,ended&frontend=[2001:db8::10]:8080&client=192.0.2.5"
        );
        assert_eq!(Filter::from_query(&f.query()).unwrap(), f);
        assert_eq!(Filter::from_query("").unwrap(), Filter::default());
        let e = Filter::from_query("types=opened,bogus").unwrap_err();
        assert!(
            e.to_string().contains("unknown event type \"bogus\""),
            "{e}"
        );
        assert!(Filter::from_query("client=nope").is_err());
        assert!(Filter::from_query("color=red").is_err());
    }

    #[test]
    fn a_filter_selects_by_kind_frontend_and_client() {
        let f = Filter {
            kinds: kinds("opened").unwrap(),
            frontend: Some("203.0.113.10".parse().unwrap()),
            client: Some("192.0.2.5".parse().unwrap()),
        };
        assert!(f.matches(&shown("opened", "192.0.2.5:1000", "203.0.113.10:8080")));
        assert!(!f.matches(&shown("ended", "192.0.2.5:1000", "203.0.113.10:8080")));
        assert!(!f.matches(&shown("opened", "192.0.2.6:1000", "203.0.113.10:8080")));
        assert!(!f.matches(&shown("opened", "192.0.2.5:1000", "203.0.113.11:8080")));
        let port = Filter {
            frontend: Some("203.0.113.10:53".parse().unwrap()),
            ..f.clone()
        };
        assert!(!port.matches(&shown("opened", "192.0.2.5:1000", "203.0.113.10:8080")));
        assert!(
            f.matches(&Shown::lost(3)),
            "a monitor always hears of its losses"
        );
    }

    #[test]
    fn the_datapath_filters_only_what_every_monitor_shares() {
        let a = Filter {
            kinds: kinds("opened").unwrap(),
            frontend: Some("203.0.113.10:8080".parse().unwrap()),
            client: Some("192.0.2.5".parse().unwrap()),
        };
        let ids = |fm: &FrontendMatch| match fm.port {
            Some(8080) => vec![7],
            _ => vec![7, 8],
        };
        let m = kernel(&[&a], ids);
        assert_eq!(m.kinds, EventKind::Opened.bit());
        assert_eq!(m.filters, MONITOR_CLIENT | MONITOR_FRONTEND);
        assert_eq!((m.frontend_id, m.client_family), (7, 4));
        assert_eq!(m.client[0], u32::from_octets([192, 0, 2, 5]));

        let b = Filter {
            kinds: kinds("ended").unwrap(),
            client: Some("192.0.2.6".parse().unwrap()),
            ..a.clone()
        };
        let m = kernel(&[&a, &b], ids);
        assert_eq!(m.kinds, EventKind::Opened.bit() | EventKind::Ended.bit());
        assert_eq!(m.filters, MONITOR_FRONTEND, "the clients differ");

        let any_port = Filter {
            frontend: Some("203.0.113.10".parse().unwrap()),
            ..a.clone()
        };
        assert_eq!(kernel(&[&any_port], ids).filters, MONITOR_CLIENT, "two ids");
        assert_eq!(kernel(&[], ids), MonitorConfig::default(), "no one listens");
    }
}
