//! The CNI datapath a lab's nodes have.

use std::path::{Path, PathBuf};

use super::HAIRPIN;

/// The nodes' CNI datapath (`LAB_CNI`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cni {
    /// The node's stack routes pods, through netfilter.
    Iptables,
    /// The stand-in eBPF CNI of tests/cni: `bpf_redirect_peer` into pods.
    Ebpf,
}

impl Cni {
    /// The CNI of a lab that names none: `HAIRPIN_LAB_CNI` (`iptables`, the
    /// default, or `ebpf`), so that any lab test can run beside either.
    pub(super) fn from_env() -> Self {
        match std::env::var("HAIRPIN_LAB_CNI").as_deref() {
            Err(_) | Ok("iptables") => Cni::Iptables,
            Ok("ebpf") => Cni::Ebpf,
            Ok(other) => panic!("HAIRPIN_LAB_CNI is iptables or ebpf, not {other:?}"),
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Cni::Iptables => "iptables",
            Cni::Ebpf => "ebpf",
        }
    }
}

/// The stand-in eBPF CNI's loader, built beside `hairpin`.
pub(super) fn standin_cni() -> PathBuf {
    Path::new(HAIRPIN).with_file_name("standin-cni")
}
