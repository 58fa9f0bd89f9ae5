//! Which frontends the cluster may ask for. Whoever can create a redirect
//! can intercept traffic to its address (CVE-2020-8554), so the node's own
//! file bounds it: only addresses inside `allowedFrontends`, never the
//! node's own or any other node's, loopback, or the cluster's pod and
//! service ranges; Service annotations only in the namespaces the file
//! lists.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::config::{unservable, unusable_backend, Kubernetes};

#[derive(Clone)]
pub struct Admission {
    settings: Kubernetes,
    node: Vec<IpAddr>,
    /// The file's `allowReserved`: the cluster may have those addresses
    /// where `allowedFrontends` covers them too.
    allow_reserved: Vec<IpNet>,
    /// The cluster's nodes' addresses, by node: a redirect there would take
    /// the traffic of one node's clients to another.
    nodes: Vec<(IpAddr, String)>,
}

impl Admission {
    pub fn new(settings: &Kubernetes, node: &[IpAddr], allow_reserved: &[IpNet]) -> Self {
        Self {
            settings: settings.clone(),
            node: node.to_vec(),
            allow_reserved: allow_reserved.to_vec(),
            nodes: Vec::new(),
        }
    }

    /// Refuses the addresses of the cluster's `nodes` (address, node) too.
    pub fn beside(mut self, nodes: Vec<(IpAddr, String)>) -> Self {
        self.nodes = nodes;
        self
    }

    /// Why the cluster may not have a frontend at `addr`, if it may not.
    pub fn admit(&self, addr: IpAddr) -> Result<(), String> {
        if let Some(why) = unservable(addr, &self.node, &self.allow_reserved) {
            return Err(why);
        }
        if let Some((_, name)) = self.nodes.iter().find(|(a, _)| *a == addr) {
            return Err(format!(
                "{addr} is node {name}'s address: its clients' traffic to that node would be taken"
            ));
        }
        if let Some(why) = self.settings.own_range(addr) {
            return Err(why);
        }
        let allowed = &self.settings.allowed_frontends;
        if allowed.is_empty() {
            return Err(format!(
                "{addr} is not allowed: kubernetes.allowedFrontends is empty, so no frontend from the cluster is"
            ));
        }
        if !allowed.iter().any(|n| n.contains(&addr)) {
            let list = allowed
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

    /// Why `addr` cannot be a backend of `frontend`, if it cannot: the
    /// file's test for a backend.
    pub fn backend(&self, addr: IpAddr, frontend: IpAddr) -> Option<String> {
        unusable_backend(addr, frontend, &self.allow_reserved)
    }

    pub fn annotations_in(&self, namespace: &str) -> bool {
        self.settings
            .annotation_namespaces
            .iter()
            .any(|n| n == namespace)
    }
}
