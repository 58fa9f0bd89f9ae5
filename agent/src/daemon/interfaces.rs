//! The interfaces hairpin is attached to: the uplink, and every pod
//! interface that matches the configured patterns, followed as netlink
//! reports them.

use std::collections::BTreeSet;

use anyhow::{bail, Result};
use tracing::{info, warn};

use super::Agent;
use crate::{
    attach::Role,
    links::{self, Link},
    pins,
};

impl Agent {
    /// Finds the uplink (configured, or the route to the first frontend),
    /// attaches to it and tells the datapath its index and MAC address.
    pub(super) async fn set_uplink(&mut self) -> Result<()> {
        let link = match &self.config.interfaces.uplink {
            Some(name) => self.known.get(name).cloned(),
            None => self.routed_uplink().await?,
        };
        let Some(link) = link else {
            bail!(
                "no uplink: no interface {:?} and no route to a frontend",
                self.config.interfaces.uplink
            );
        };
        self.attached
            .attach(&mut self.dp, &link.name, Role::Uplink)?;
        self.maps.update_node(|n| {
            n.uplink_ifindex = link.index;
            n.uplink_mac = link.mac.unwrap_or_default();
        })?;
        info!(interface = %link.name, index = link.index, "uplink attached");
        self.uplink = Some(link);
        Ok(())
    }

    /// The interface of the routes to the frontends.
    async fn routed_uplink(&self) -> Result<Option<Link>> {
        let mut oifs = BTreeSet::new();
        for fe in &self.config.frontends {
            if let Some(oif) = links::route_oif(&self.handle, fe.addr).await? {
                oifs.insert(oif);
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
        Ok(oifs
            .first()
            .and_then(|oif| self.known.values().find(|l| l.index == *oif).cloned()))
    }

    /// Removes links an earlier agent pinned on interfaces that are gone or
    /// no longer hairpin's.
    pub(super) fn forget_stale_pins(&mut self) -> Result<()> {
        for ifname in self.attached.pinned_interfaces() {
            let keep = self.known.contains_key(&ifname)
                && (self.is_uplink(&ifname) || self.is_pod(&ifname));
            if !keep {
                for (name, _) in [Role::Uplink, Role::Pod].iter().flat_map(|r| r.programs()) {
                    pins::unpin_link(&pins::link_pin(&self.settings.pin_dir, &ifname, name))?;
                }
                info!(interface = %ifname, "removed links pinned by an earlier agent");
            }
        }
        Ok(())
    }

    fn is_uplink(&self, ifname: &str) -> bool {
        self.uplink.as_ref().is_some_and(|u| u.name == ifname)
    }

    fn is_pod(&self, ifname: &str) -> bool {
        !self.is_uplink(ifname)
            && self
                .config
                .interfaces
                .pods
                .iter()
                .any(|p| p.matches(ifname))
    }

    pub(super) fn link_up(&mut self, link: Link) {
        self.known.insert(link.name.clone(), link.clone());
        self.follow(&link);
    }

    pub(super) fn link_gone(&mut self, link: &Link) {
        self.known.remove(&link.name);
        match self.attached.detach(&link.name) {
            Ok(true) => info!(interface = %link.name, "interface gone, forgotten"),
            Ok(false) => {}
            Err(e) => warn!(interface = %link.name, "forgetting a gone interface: {e:#}"),
        }
    }

    pub(super) fn follow_all(&mut self) {
        let all: Vec<Link> = self.known.values().cloned().collect();
        for link in &all {
            self.follow(link);
        }
    }

    /// Attaches to a pod interface that matches the patterns, detaches from
    /// one that no longer does. Failures are logged and counted: one
    /// interface must not stop the others.
    fn follow(&mut self, link: &Link) {
        let want = self.is_pod(&link.name);
        let have = self.attached.role(&link.name) == Some(Role::Pod);
        if want && !have {
            match self.attached.attach(&mut self.dp, &link.name, Role::Pod) {
                Ok(()) => info!(interface = %link.name, "pod interface attached"),
                Err(e) => {
                    self.metrics.attach_errors.inc();
                    warn!(interface = %link.name, "attaching: {e:#}");
                }
            }
        } else if have && !want {
            match self.attached.detach(&link.name) {
                Ok(_) => {
                    info!(interface = %link.name, "no longer matches the pod patterns: detached")
                }
                Err(e) => warn!(interface = %link.name, "detaching: {e:#}"),
            }
        }
    }
}
