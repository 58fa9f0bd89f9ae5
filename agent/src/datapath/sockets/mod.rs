//! The socket-level path's attachment: the four cgroup hooks on one cgroup
//! v2 directory, with pinned links. A restarted agent attaches its programs
//! beside the pinned ones, then lets the old links go: for a moment both run,
//! which is harmless, since a socket the first translated no longer asks for
//! a frontend.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context as _, Result};
use aya::programs::{links::FdLink, CgroupAttachMode};

use hairpin_common::SOCK_PROGRAMS;

pub mod cgroups;
pub mod diag;
pub mod ends;
mod netns;

pub use netns::host_cookie;

use crate::{
    datapath::loader::Datapath,
    datapath::pins::{self, unpin_link},
};

/// The root of the machine's cgroup v2 hierarchy, from the mount table
/// (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on hybrid hosts).
pub fn cgroup2_root() -> Result<PathBuf> {
    let mounts = fs::read_to_string("/proc/self/mounts").context("reading /proc/self/mounts")?;
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 2 && f[2] == "cgroup2").then(|| PathBuf::from(f[1]))
        })
        .min_by_key(|p| p.components().count())
        .context("no cgroup v2 hierarchy is mounted: the socket-level path needs one")
}

/// Attaches the socket programs to `cgroup`, replacing links pinned by an
/// earlier agent.
pub fn attach(dp: &mut Datapath, cgroup: &Path, pin_dir: &Path) -> Result<()> {
    let dir =
        fs::File::open(cgroup).with_context(|| format!("opening cgroup {}", cgroup.display()))?;
    if !dir.metadata()?.is_dir() {
        bail!("{} is not a cgroup directory", cgroup.display());
    }
    // Elsewhere the kernel's refusal is a bare "Bad file descriptor".
    if !is_cgroup2(&dir) {
        bail!(
            "{} is not in a cgroup v2 hierarchy (the socket path attaches there only): \
             name a directory of the cgroup2 mount (socket.cgroup)",
            cgroup.display()
        );
    }
    dp.load_socket_programs()?;
    for name in SOCK_PROGRAMS {
        let prog = dp.sock_program(name)?;
        // A link-based attachment (Linux 5.7+) runs beside any other
        // program on the cgroup, whatever the mode says: the mode is for
        // the old attach interface, and links must be created without one.
        let id = prog
            .attach(&dir, CgroupAttachMode::Single)
            .with_context(|| format!("attaching {name} to {}", cgroup.display()))?;
        let link: FdLink = prog.take_link(id)?.try_into()?;
        let pin = pins::cgroup_link_pin(pin_dir, name);
        unpin_link(&pin)?;
        fs::create_dir_all(pin.parent().expect("pin has a parent"))?;
        link.pin(&pin)?;
    }
    Ok(())
}

/// Whether the open directory `dir` is on a cgroup v2 filesystem.
fn is_cgroup2(dir: &fs::File) -> bool {
    use std::os::unix::io::AsRawFd as _;
    // SAFETY: an open descriptor and a zeroed, writable `statfs`.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    (unsafe { libc::fstatfs(dir.as_raw_fd(), &mut st) }) == 0
        && st.f_type == libc::CGROUP2_SUPER_MAGIC
}

/// Removes the pinned cgroup links; returns the paths removed.
pub fn detach(pin_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for name in SOCK_PROGRAMS {
        let pin = pins::cgroup_link_pin(pin_dir, name);
        if unpin_link(&pin)? {
            removed.push(pin);
        }
    }
    // Ignored error: absent, or holding something that is not hairpin's.
    let _ = fs::remove_dir(pin_dir.join(pins::CGROUP_LINKS_DIR));
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_directory_of_a_cgroup2_mount_is_taken() {
        let tmp = fs::File::open(std::env::temp_dir()).expect("the temporary directory");
        assert!(!is_cgroup2(&tmp));
        let proc = fs::File::open("/proc").expect("/proc");
        assert!(!is_cgroup2(&proc));
        let root = cgroup2_root().expect("a cgroup v2 mount");
        assert!(is_cgroup2(&fs::File::open(root).expect("its root")));
    }
}
