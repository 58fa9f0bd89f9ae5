//! The `kubernetes` section: where the cluster is, and the bounds on what
//! it may redirect.

use std::path::PathBuf;

use ipnet::IpNet;
use serde_saphyr::Spanned;

use super::Validator;
use crate::config::{raw::RawKubernetes, ConfigError, Kubernetes, DEFAULT_CLUSTER_STATE};

impl Validator<'_> {
    pub(super) fn kubernetes(
        &self,
        raw: Option<Spanned<RawKubernetes>>,
    ) -> Result<Option<Kubernetes>, ConfigError> {
        let Some(raw) = raw else {
            return Ok(None);
        };
        let raw = raw.value;
        if raw.enabled == Some(false) {
            return Ok(None);
        }
        let nets = |v: &Option<Vec<Spanned<String>>>, field: &str| {
            v.iter()
                .flatten()
                .enumerate()
                .map(|(i, s)| self.cidr(s, &format!("kubernetes.{field}[{i}]")))
                .collect::<Result<Vec<_>, _>>()
        };
        let mut namespaces = Vec::new();
        for (i, ns) in raw.annotation_namespaces.iter().flatten().enumerate() {
            if !is_dns_label(&ns.value) {
                return Err(self.err(
                    ns,
                    format!("kubernetes.annotationNamespaces[{i}]"),
                    format!("{:?} is not a namespace name", ns.value),
                ));
            }
            namespaces.push(ns.value.clone());
        }
        Ok(Some(Kubernetes {
            kubeconfig: raw.kubeconfig,
            allowed_frontends: nets(&raw.allowed_frontends, "allowedFrontends")?,
            annotation_namespaces: namespaces,
            pod_cidrs: nets(&raw.pod_cidrs, "podCidrs")?,
            service_cidrs: nets(&raw.service_cidrs, "serviceCidrs")?,
            state_file: raw
                .state_file
                .unwrap_or_else(|| PathBuf::from(DEFAULT_CLUSTER_STATE)),
        }))
    }

    /// A CIDR, or a single address as its own /32 or /128.
    pub(super) fn cidr(&self, s: &Spanned<String>, field: &str) -> Result<IpNet, ConfigError> {
        let v = s.value.trim();
        v.parse::<IpNet>()
            .or_else(|_| v.parse::<std::net::IpAddr>().map(IpNet::from))
            .map(|n| n.trunc())
            .map_err(|_| self.err(s, field, format!("not a CIDR: {:?}", s.value)))
    }
}

/// An RFC 1123 label, as namespace names are.
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}
