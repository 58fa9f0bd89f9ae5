//! Every path hairpin pins under, and the helpers that create and remove
//! pins, in one place. Several agents may share one
//! kernel (a lab of nodes as network namespaces), so everything lives below
//! a per-node directory, `/sys/fs/bpf/hairpin` unless configured.

use std::{
    fs, io,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result};
use aya::{
    programs::links::{LinkError, PinnedLink},
    sys::SyscallError,
};

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

/// Creates the pin directory (on bpffs) and its maps directory.
pub fn create_dirs(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir.join(MAPS_DIR))
        .with_context(|| format!("creating {} (is bpffs mounted?)", dir.display()))
}

pub fn not_found(e: &LinkError) -> bool {
    matches!(e, LinkError::SyscallError(SyscallError { io_error, .. }) if io_error.kind() == io::ErrorKind::NotFound)
}

/// Removes a pinned link: its last reference gone, the kernel detaches it.
pub fn unpin_link(pin: &Path) -> Result<bool> {
    match PinnedLink::from_pin(pin) {
        Ok(link) => {
            link.unpin()
                .with_context(|| format!("unpinning {}", pin.display()))?;
            Ok(true)
        }
        Err(e) if not_found(&e) => Ok(false),
        // Not a link (a stray file): remove it all the same.
        Err(_) => fs::remove_file(pin)
            .map(|()| true)
            .with_context(|| format!("removing {}", pin.display())),
    }
}

/// Every pinned link under `pin_dir`, by interface.
pub fn pinned_links(pin_dir: &Path) -> Vec<PathBuf> {
    let entries = |dir: &Path| -> Vec<PathBuf> {
        fs::read_dir(dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default()
    };
    let mut links: Vec<PathBuf> = entries(&pin_dir.join(LINKS_DIR))
        .iter()
        .flat_map(|prog_dir| entries(prog_dir))
        .collect();
    links.sort_by_key(|p| link_ifname(p));
    links
}
