//! The interfaces hairpin is attached to: the uplink, and every pod
//! interface that matches the configured patterns, followed as netlink
//! reports them.

use std::{collections::BTreeSet, net::IpAddr};

use anyhow::{Context as _, Result};
use tracing::{info, warn};

use super::{degraded::Item, Agent};
use crate::{
    datapath::attach::{self, Role},
    datapath::pins,
    links::{self, Link},
};

impl Agent {
    /// Finds the uplink (configured, or the route to the frontends) and
    /// attaches to it, once; with `auto`, also says which frontends have no
    /// route. Failures are reported and retried, never fatal.
    pub(super) async fn set_uplink(&mut self) {
        let found = self.find_uplink().await;
        if self.datapath.uplink.is_none() {
            match found.and_then(|link| self.attach_uplink(link)) {
                Ok(()) => self.published.retries.served(&Item::Uplink),
                Err(e) => self.published.retries.failed(Item::Uplink, &e),
            }
        }
        self.published
            .health
            .set_ready(self.datapath.uplink.is_some());
    }

    async fn find_uplink(&mut self) -> Result<Link> {
        match self.sources.config.interfaces.uplink.clone() {
            Some(name) => self
                .datapath
                .known
                .get(&name)
                .cloned()
                .with_context(|| format!("no interface {name}")),
            None => self
                .routed_uplink()
                .await?
                .context("no route to any frontend"),
        }
    }

    fn attach_uplink(&mut self, link: Link) -> Result<()> {
        self.datapath
            .attached
            .attach(&mut self.datapath.dp, &link, Role::Uplink)?;
        self.datapath.maps.update_node(|n| {
            n.uplink_ifindex = link.index;
            n.uplink_mac = link.mac.unwrap_or_default();
        })?;
        info!(interface = %link.name, index = link.index, "uplink attached");
        self.datapath.uplink = Some(link);
        Ok(())
    }

    /// The interface of the routes to the frontends; a frontend without a
    /// route is reported (it stays in the maps: pods and the socket path
    /// need no route to it).
    async fn routed_uplink(&mut self) -> Result<Option<Link>> {
        let addrs: BTreeSet<IpAddr> = self.datapath.applied.iter().map(|f| f.addr).collect();
        for gone in self.published.retries.routes() {
            if !addrs.contains(&gone) {
                self.published.retries.forget(&Item::Route(gone));
            }
        }
        let mut oifs = BTreeSet::new();
        for addr in addrs {
            let route = links::route_oif(&self.datapath.handle, addr)
                .await
                .and_then(|oif| {
                    oif.with_context(|| format!("route to {addr}: no outgoing interface"))
                });
            match route {
                Ok(oif) => {
                    oifs.insert(oif);
                    self.published.retries.served(&Item::Route(addr));
                }
                Err(e) => self.published.retries.failed(Item::Route(addr), &e),
            }
        }
        if oifs.len() > 1 {
            // One uplink per node: host traffic to frontends routed
            // elsewhere is left to the socket-level path.
            warn!(
                ?oifs,
                "the frontends route through several interfaces; the first is the uplink"
            );
        }
        Ok(oifs.first().and_then(|oif| {
            self.datapath
                .known
                .values()
                .find(|l| l.index == *oif)
                .cloned()
        }))
    }

    /// Removes links an earlier agent pinned on interfaces that are gone or
    /// no longer hairpin's.
    pub(super) fn forget_stale_pins(&mut self) {
        if let Err(e) = self.try_forget_stale_pins() {
            warn!("removing links pinned by an earlier agent: {e:#}");
        }
    }

    fn try_forget_stale_pins(&mut self) -> Result<()> {
        for ifname in self.datapath.attached.pinned_interfaces() {
            let keep = self.datapath.known.contains_key(&ifname)
                && (self.is_uplink(&ifname) || self.is_pod(&ifname));
            if !keep {
                let programs = [Role::Uplink, Role::Pod].iter().flat_map(|r| r.programs());
                for (name, _) in programs.chain([attach::POD_SIDE]) {
                    pins::unpin_link(&pins::link_pin(&self.settings.pin_dir, &ifname, name))?;
                }
                info!(interface = %ifname, "removed links pinned by an earlier agent");
            }
        }
        Ok(())
    }

    fn is_uplink(&self, ifname: &str) -> bool {
        self.datapath
            .uplink
            .as_ref()
            .is_some_and(|u| u.name == ifname)
    }

    /// A pod interface: one the patterns name, or a netkit device whose
    /// peer is in another namespace, whatever its name (netkit devices are
    /// eBPF CNIs' pod devices).
    pub(super) fn is_pod(&self, ifname: &str) -> bool {
        let netkit_pod = || {
            self.datapath
                .known
                .get(ifname)
                .is_some_and(|l| l.netkit && l.peer.is_some())
        };
        !self.is_uplink(ifname)
            && (self
                .sources
                .config
                .interfaces
                .pods
                .iter()
                .any(|p| p.matches(ifname))
                || netkit_pod())
    }

    pub(super) async fn link_up(&mut self, link: Link) {
        self.datapath.known.insert(link.name.clone(), link.clone());
        self.follow(&link);
        if self.datapath.uplink.is_none() {
            self.set_uplink().await;
        }
    }

    pub(super) fn link_gone(&mut self, link: &Link) {
        self.datapath.known.remove(&link.name);
        self.published
            .retries
            .forget(&Item::Interface(link.name.clone()));
        match self.datapath.attached.detach(&link.name) {
            Ok(true) => info!(interface = %link.name, "interface gone, forgotten"),
            Ok(false) => {}
            Err(e) => warn!(interface = %link.name, "forgetting a gone interface: {e:#}"),
        }
    }

    pub(super) fn follow_all(&mut self) {
        let all: Vec<Link> = self.datapath.known.values().cloned().collect();
        for link in &all {
            self.follow(link);
        }
    }

    /// Attaches to a pod interface that matches the patterns, detaches from
    /// one that no longer does. A failure is reported and retried: one
    /// interface must not stop the others.
    pub(super) fn follow(&mut self, link: &Link) {
        let want = self.is_pod(&link.name);
        let have = self.datapath.attached.role(&link.name) == Some(Role::Pod);
        let whole = self.datapath.attached.serves(link, Role::Pod);
        let item = Item::Interface(link.name.clone());
        if !want {
            self.published.retries.forget(&item);
        }
        if want && !whole {
            match self
                .datapath
                .attached
                .attach(&mut self.datapath.dp, link, Role::Pod)
            {
                Ok(()) => {
                    info!(interface = %link.name, "pod interface attached");
                    self.published.retries.served(&item);
                }
                Err(e) => {
                    self.published.metrics.attach_errors.inc();
                    self.published.retries.failed(item, &e);
                }
            }
        } else if have && !want {
            match self.datapath.attached.detach(&link.name) {
                Ok(_) => {
                    info!(interface = %link.name, "no longer matches the pod patterns: detached")
                }
                Err(e) => warn!(interface = %link.name, "detaching: {e:#}"),
            }
        }
    }
}

/// Whether the agent can attach `pod_receive` inside pods (entering their
/// namespaces needs CAP_SYS_ADMIN); says once what is lost where it cannot.
pub(super) fn pod_sides() -> bool {
    let can = crate::caps::enters_namespaces();
    if !can {
        warn!(
            "without CAP_SYS_ADMIN the agent cannot enter pods' network namespaces to attach \
             pod_receive there: beside an eBPF CNI that delivers into pods with \
             bpf_redirect_peer (Cilium's host routing, Calico's eBPF dataplane), replies to pod \
             clients bypass hairpin; grant CAP_SYS_ADMIN, or serve pods on the socket path \
             (socket.scope: all). A CNI that routes pods through the node's stack needs neither"
        );
    }
    can
}
