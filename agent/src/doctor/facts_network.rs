//! The node's network as the checks see it: routes to the frontends,
//! reverse-path filtering, kube-proxy's IPVS addresses. Read only.

use std::net::IpAddr;

use anyhow::Result;
use futures::TryStreamExt as _;
use netlink_packet_route::address::AddressAttribute;

use super::checks_network::Route;
use crate::links::{self, Link};

/// What netlink tells of the node's network, in one connection.
pub struct Network {
    pub links: Vec<Link>,
    pub routes: Vec<Route>,
    /// The addresses on `kube-ipvs0`, `None` without that interface.
    pub kube_ipvs0: Option<Vec<IpAddr>>,
}

/// Reads the interfaces, the route to each of `frontends` (`ip route get`,
/// as the agent's `auto` does) and kube-ipvs0's addresses.
pub fn network(frontends: &[IpAddr]) -> Result<Network> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let handle = links::connect()?;
            let all = links::list(&handle).await?;
            let mut routes = Vec::new();
            for &frontend in frontends {
                let oif = match links::route_oif(&handle, frontend).await {
                    Ok(Some(index)) => Ok((index, name_of(&all, index))),
                    Ok(None) => Err("no outgoing interface".to_owned()),
                    Err(e) => Err(format!("{:#}", e)),
                };
                routes.push(Route { frontend, oif });
            }
            let kube_ipvs0 = match all.iter().find(|l| l.name == "kube-ipvs0") {
                None => None,
                Some(l) => Some(addresses_on(&handle, l.index).await?),
            };
            Ok(Network {
                links: all,
                routes,
                kube_ipvs0,
            })
        })
}

/// The interface of the node's route to each of `addrs` (a pod's: its
/// interface on the node side); an address without one is left out.
pub fn route_interfaces(addrs: &[IpAddr], links: &[Link]) -> Result<Vec<(IpAddr, String)>> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let handle = links::connect()?;
            let mut out = Vec::new();
            for &addr in addrs {
                if let Ok(Some(index)) = links::route_oif(&handle, addr).await {
                    out.push((addr, name_of(links, index)));
                }
            }
            Ok(out)
        })
}

fn name_of(links: &[Link], index: u32) -> String {
    links
        .iter()
        .find(|l| l.index == index)
        .map_or_else(|| format!("#{index}"), |l| l.name.clone())
}

async fn addresses_on(handle: &rtnetlink::Handle, index: u32) -> Result<Vec<IpAddr>> {
    let msgs: Vec<_> = handle
        .address()
        .get()
        .set_link_index_filter(index)
        .execute()
        .try_collect()
        .await?;
    Ok(msgs
        .iter()
        .flat_map(|m| &m.attributes)
        .filter_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        })
        .collect())
}

/// `net.ipv4.conf.<iface>.rp_filter` of this network namespace (`all` for
/// the value every interface gets at least).
pub fn rp_filter(iface: &str) -> Option<u8> {
    std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{iface}/rp_filter"))
        .ok()?
        .trim()
        .parse()
        .ok()
}
