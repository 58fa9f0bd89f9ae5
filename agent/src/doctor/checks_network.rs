//! The verdicts on the node's network: the uplink the routes choose,
//! reverse-path filtering, kube-proxy's IPVS addresses.

use std::{collections::BTreeMap, net::IpAddr};

use super::Check;

/// The node's route to a frontend: its outgoing interface (index, name),
/// or why there is none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub frontend: IpAddr,
    pub oif: Result<(u32, String), String>,
}

/// The interface `auto` attaches to: of the routes' interfaces, the one of
/// lowest index (as the agent's `routed_uplink` picks it).
pub fn auto_uplink(routes: &[Route]) -> Option<&str> {
    routes
        .iter()
        .filter_map(|r| r.oif.as_ref().ok())
        .min_by_key(|(index, _)| *index)
        .map(|(_, name)| name.as_str())
}

/// The uplink: the configured one must exist; `auto` takes the interface
/// of the routes to the frontends, one per node.
pub fn uplink(configured: Option<&str>, interfaces: &[String], routes: &[Route]) -> Vec<Check> {
    let mut by_oif: BTreeMap<(u32, &str), Vec<String>> = BTreeMap::new();
    for r in routes {
        if let Ok((index, name)) = &r.oif {
            by_oif
                .entry((*index, name.as_str()))
                .or_default()
                .push(r.frontend.to_string());
        }
    }
    let shown = by_oif
        .iter()
        .map(|((_, name), fes)| format!("{name} ({})", fes.join(", ")))
        .collect::<Vec<_>>()
        .join(", ");
    let mut out = vec![match configured {
        Some(name) if !interfaces.iter().any(|i| i == name) => Check::fail(
            "uplink",
            format!("{name}, as configured: no such interface"),
            "name an existing interface in interfaces.uplink, or `auto`",
        ),
        Some(name) if by_oif.keys().any(|(_, oif)| *oif != name) => Check::warn(
            "uplink",
            format!("{name}, as configured, while the frontends route through {shown}"),
            "host clients of frontends routed elsewhere are left to the socket path",
        ),
        Some(name) => Check::ok("uplink", format!("{name}, as configured")),
        None if routes.is_empty() => Check::ok("uplink", "auto: no frontend to route to"),
        None => match auto_uplink(routes) {
            None => Check::warn(
                "uplink",
                "auto: no route to any frontend",
                "the agent attaches no uplink (pods and the socket path are served): add a route",
            ),
            Some(first) if by_oif.len() > 1 => Check::warn(
                "uplink",
                format!("auto: the frontends route through {shown}; the agent attaches to {first}"),
                "one uplink per node: host clients of frontends routed elsewhere are left to \
                 the socket path; or name the uplink in interfaces.uplink",
            ),
            Some(_) => Check::ok("uplink", format!("auto: {shown}")),
        },
    }];
    out.extend(routes.iter().filter_map(|r| {
        r.oif.as_ref().err().map(|e| {
            Check::warn(
                "route",
                format!("{}: {e}", r.frontend),
                "it is served to pods and the socket path, not on the uplink: add a route",
            )
        })
    }));
    out
}

/// The reverse-path filter the kernel applies to an interface: the larger
/// of `all`'s and the interface's own.
pub fn effective_rp_filter(all: u8, iface: u8) -> u8 {
    all.max(iface)
}

fn rp_name(v: u8) -> &'static str {
    match v {
        0 => "off",
        1 => "strict",
        _ => "loose",
    }
}

/// `rp_filter` on the uplink (name, effective value) and on the pod
/// interfaces. hairpin works with strict and loose filtering, except for a
/// frontend whose route leaves through another interface than a strict
/// uplink: the replies translated back to its address arrive on the uplink,
/// where the reverse-path test, routing to it elsewhere, drops them.
pub fn rp_filter(uplink: Option<(&str, u8)>, pods: &[(String, u8)], routes: &[Route]) -> Check {
    let mut pod_values: BTreeMap<u8, Vec<&str>> = BTreeMap::new();
    for (name, v) in pods {
        pod_values.entry(*v).or_default().push(name);
    }
    let mut parts: Vec<String> = uplink
        .iter()
        .map(|(name, v)| format!("uplink {name} {v} ({})", rp_name(*v)))
        .collect();
    parts.extend(
        pod_values
            .iter()
            .map(|(v, names)| format!("{v} ({}) on {}", rp_name(*v), names.join(", "))),
    );
    let evidence = if parts.is_empty() {
        "no uplink or pod interface".to_owned()
    } else {
        parts.join("; ")
    };
    let elsewhere: Vec<String> = match uplink {
        // IPv6 has no reverse-path filter of this kind.
        Some((name, 1)) => routes
            .iter()
            .filter(|r| r.frontend.is_ipv4())
            .filter_map(|r| match &r.oif {
                Ok((_, oif)) if oif != name => Some(format!("{} via {oif}", r.frontend)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    if elsewhere.is_empty() {
        Check::ok("rp_filter", evidence)
    } else {
        let up = uplink.map(|(n, _)| n).unwrap_or_default();
        Check::warn(
            "rp_filter",
            format!(
                "{evidence}; routed elsewhere: {}: replies translated back to them fail \
                 the reverse-path test on {up}",
                elsewhere.join(", ")
            ),
            format!("set net.ipv4.conf.{up}.rp_filter=2 (and all's no higher), or route them through {up}"),
        )
    }
}

/// Addresses on `kube-ipvs0` (`None`: no such interface): kube-proxy in
/// IPVS mode serves those itself on the node.
pub fn ipvs(frontends: &[IpAddr], kube_ipvs0: Option<&[IpAddr]>) -> Check {
    let Some(addrs) = kube_ipvs0 else {
        return Check::ok("ipvs", "no kube-ipvs0: kube-proxy is not in IPVS mode");
    };
    let served: Vec<String> = frontends
        .iter()
        .filter(|f| addrs.contains(f))
        .map(IpAddr::to_string)
        .collect();
    if served.is_empty() {
        Check::ok(
            "ipvs",
            format!("kube-ipvs0 holds {} addresses, no frontend", addrs.len()),
        )
    } else {
        Check::warn(
            "ipvs",
            format!(
                "kube-ipvs0 holds {}: kube-proxy (IPVS) serves it on the node",
                served.join(", ")
            ),
            "hairpin is redundant for it or conflicts with kube-proxy: drop the redirect, \
             or the Service's external address",
        )
    }
}

#[cfg(test)]
#[path = "checks_network_tests.rs"]
mod tests;
