//! A netkit device's own hook for what its pod sends (`BPF_NETKIT_PEER`):
//! it runs as the pod transmits, before the packet reaches the host side,
//! where an eBPF CNI's program on the same hook may redirect it past the
//! host side's TCX ingress. aya makes no netkit links, so these are made
//! (`BPF_LINK_CREATE`), updated (`BPF_LINK_UPDATE`), pinned and queried by
//! hand; netkit's verdicts are TC's (`NETKIT_NEXT` is `TC_ACT_UNSPEC`).

use std::{
    ffi::CString,
    io,
    os::fd::{AsFd, AsRawFd as _, BorrowedFd, FromRawFd as _, OwnedFd},
    os::unix::ffi::OsStrExt as _,
    path::Path,
};

use anyhow::{Context as _, Result};

const BPF_OBJ_PIN: libc::c_long = 6;
const BPF_OBJ_GET: libc::c_long = 7;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_LINK_UPDATE: libc::c_long = 29;
/// `enum bpf_attach_type`.
const BPF_NETKIT_PEER: u32 = 55;
/// With no relative program: first on the hook.
const BPF_F_BEFORE: u32 = 1 << 3;

/// Where a new link goes among the hook's programs.
#[derive(Clone, Copy)]
pub enum Place {
    First,
    Last,
}

fn bpf(cmd: libc::c_long, attr: &mut [u64]) -> io::Result<i64> {
    // SAFETY: `attr` is a zero-filled bpf_attr of the size given, laid out
    // for `cmd`, and outlives the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.as_mut_ptr(),
            std::mem::size_of_val(attr),
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Two u32 fields in one u64 word of a bpf_attr, in memory order.
fn pair(first: u32, second: u32) -> u64 {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&first.to_ne_bytes());
    b[4..].copy_from_slice(&second.to_ne_bytes());
    u64::from_ne_bytes(b)
}

/// Attaches `prog` to what the pod of netkit device `ifindex` (its host
/// side) sends, and returns the link.
pub fn attach_peer(prog: BorrowedFd<'_>, ifindex: u32, place: Place) -> io::Result<OwnedFd> {
    let flags = match place {
        Place::First => BPF_F_BEFORE,
        Place::Last => 0,
    };
    // link_create: prog_fd, target_ifindex, attach_type, flags, then
    // netkit's relative_fd (none) and expected_revision (any).
    let mut attr = [0u64; 8];
    attr[0] = pair(prog.as_raw_fd() as u32, ifindex);
    attr[1] = pair(BPF_NETKIT_PEER, flags);
    let fd = bpf(BPF_LINK_CREATE, &mut attr)?;
    // SAFETY: the kernel returned a new file descriptor, ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Swaps the program of `link` for `prog`, atomically.
pub fn update(link: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> io::Result<()> {
    // link_update: link_fd, new_prog_fd, flags, old_prog_fd.
    let mut attr = [0u64; 2];
    attr[0] = pair(link.as_raw_fd() as u32, prog.as_raw_fd() as u32);
    bpf(BPF_LINK_UPDATE, &mut attr).map(drop)
}

/// Pins `link` at `path` (on bpffs).
pub fn pin(link: BorrowedFd<'_>, path: &Path) -> Result<()> {
    let c = CString::new(path.as_os_str().as_bytes()).context("a pin path with a NUL")?;
    // obj_pin: pathname, bpf_fd, file_flags.
    let mut attr = [0u64; 3];
    attr[0] = c.as_ptr() as u64;
    attr[1] = pair(link.as_raw_fd() as u32, 0);
    bpf(BPF_OBJ_PIN, &mut attr).with_context(|| format!("pinning {}", path.display()))?;
    Ok(())
}

/// The link pinned at `path`, `None` when nothing is.
pub fn pinned(path: &Path) -> Result<Option<OwnedFd>> {
    let c = CString::new(path.as_os_str().as_bytes()).context("a pin path with a NUL")?;
    let mut attr = [0u64; 3];
    attr[0] = c.as_ptr() as u64;
    match bpf(BPF_OBJ_GET, &mut attr) {
        // SAFETY: the kernel returned a new file descriptor, ours alone.
        Ok(fd) => Ok(Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("opening {}", path.display())),
    }
}

/// The names of the programs on the pod-sent hook of netkit device
/// `ifindex`, first to run first; empty for a device of another kind.
pub fn peer_program_names(ifindex: u32) -> Vec<String> {
    let Ok(ids) = peer_programs(ifindex) else {
        return Vec::new();
    };
    let infos: Vec<aya::programs::ProgramInfo> = aya::programs::loaded_programs()
        .filter_map(|p| p.ok())
        .filter(|p| ids.contains(&p.id()))
        .collect();
    ids.iter()
        .map(|id| {
            infos
                .iter()
                .find(|p| p.id() == *id)
                .and_then(|p| p.name_as_str())
                .unwrap_or("?")
                .to_owned()
        })
        .collect()
}

/// The ids of the programs on the pod-sent hook of netkit device
/// `ifindex`, first to run first; an error for a device of another kind.
fn peer_programs(ifindex: u32) -> io::Result<Vec<u32>> {
    let mut ids = [0u32; 64];
    // prog_query: target_ifindex, attach_type, query_flags, attach_flags,
    // prog_ids, prog_cnt.
    let mut attr = [0u64; 8];
    attr[0] = pair(ifindex, BPF_NETKIT_PEER);
    attr[2] = ids.as_mut_ptr() as u64;
    attr[3] = pair(ids.len() as u32, 0);
    bpf(BPF_PROG_QUERY, &mut attr)?;
    let count = (attr[3] as u32 as usize).min(ids.len());
    Ok(ids[..count].to_vec())
}

/// The fd of a program, for the calls above.
pub fn prog_fd(prog: &aya::programs::SchedClassifier) -> Result<BorrowedFd<'_>> {
    Ok(prog.fd().context("the program is not loaded")?.as_fd())
}
