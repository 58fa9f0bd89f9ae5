//! Every path hairpin pins under, in one place. Several agents may share one
//! kernel (a lab of nodes as network namespaces), so everything lives below
//! a per-node directory, `/sys/fs/bpf/hairpin` unless configured.

use std::path::{Path, PathBuf};

pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/hairpin";

pub fn map_pin(dir: &Path, map: &str) -> PathBuf {
    dir.join("maps").join(map)
}

/// The pinned TCX link of `prog` on the interface `ifname`.
pub fn link_pin(dir: &Path, ifname: &str, prog: &str) -> PathBuf {
    dir.join("links").join(format!("{ifname}.{prog}"))
}
