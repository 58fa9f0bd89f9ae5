//! Every path hairpin pins under, in one place. Several agents may share one
//! kernel (a lab of nodes as network namespaces), so everything lives below
//! a per-node directory, `/sys/fs/bpf/hairpin` unless configured.

use std::path::{Path, PathBuf};

pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/hairpin";
pub const MAPS_DIR: &str = "maps";
pub const LINKS_DIR: &str = "links";
pub const CGROUP_LINKS_DIR: &str = "cgroup";

pub fn map_pin(dir: &Path, map: &str) -> PathBuf {
    dir.join(MAPS_DIR).join(map)
}

/// The pinned TCX link of `prog` on the interface `ifname`. bpffs refuses
/// names with a dot, which interface names may have (`eth0.100`): dots are
/// written as colons, which interface names may not have.
pub fn link_pin(dir: &Path, ifname: &str, prog: &str) -> PathBuf {
    dir.join(LINKS_DIR)
        .join(prog)
        .join(ifname.replace('.', ":"))
}

/// The interface of a pinned link's path.
pub fn link_ifname(pin: &Path) -> Option<String> {
    Some(pin.file_name()?.to_str()?.replace(':', "."))
}

/// The pinned cgroup link of the socket program `prog`.
pub fn cgroup_link_pin(dir: &Path, prog: &str) -> PathBuf {
    dir.join(CGROUP_LINKS_DIR).join(prog)
}
