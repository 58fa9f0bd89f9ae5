//! Which frontends the cluster may ask for. Whoever can create a redirect
//! can intercept traffic to its address (CVE-2020-8554), so the node's own
//! file bounds it: only addresses inside `allowedFrontends`, never the
//! node's own, loopback, or the cluster's pod and service ranges; Service
//! annotations only in the namespaces the file lists.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::config::{unservable, Kubernetes};

pub struct Admission {
    allowed: Vec<IpNet>,
    pods: Vec<IpNet>,
    services: Vec<IpNet>,
    namespaces: Vec<String>,
    node: Vec<IpAddr>,
}

impl Admission {
    pub fn new(settings: &Kubernetes, node: &[IpAddr]) -> Self {
        Self {
            allowed: settings.allowed_frontends.clone(),
            pods: settings.pod_cidrs.clone(),
            services: settings.service_cidrs.clone(),
            namespaces: settings.annotation_namespaces.clone(),
            node: node.to_vec(),
        }
    }

    /// Why the cluster may not have a frontend at `addr`, if it may not.
    pub fn admit(&self, addr: IpAddr) -> Result<(), String> {
        if let Some(why) = unservable(addr, &self.node) {
            return Err(why);
        }
        for (nets, what) in [(&self.pods, "pod"), (&self.services, "service")] {
            if let Some(net) = nets.iter().find(|n| n.contains(&addr)) {
                return Err(format!("{addr} is inside the cluster's {what} CIDR {net}"));
            }
        }
        if self.allowed.is_empty() {
            return Err(format!(
                "{addr} is not allowed: kubernetes.allowedFrontends is empty, so no frontend from the cluster is"
            ));
        }
        if !self.allowed.iter().any(|n| n.contains(&addr)) {
            let list = self
                .allowed
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            return Err(format!(
                "{addr} is outside kubernetes.allowedFrontends ({list})"
            ));
        }
        Ok(())
    }

    pub fn annotations_in(&self, namespace: &str) -> bool {
        self.namespaces.iter().any(|n| n == namespace)
    }
}
