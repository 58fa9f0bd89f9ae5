//! The keys of a map of any layout. aya's iterators want the key's type,
//! which a map pinned by another version may not have: this walks them as
//! bytes of the size the kernel reports.

use std::os::fd::{AsFd as _, AsRawFd as _};

use anyhow::{Context as _, Result};
use aya::maps::MapData;

/// `BPF_MAP_GET_NEXT_KEY` (include/uapi/linux/bpf.h).
const BPF_MAP_GET_NEXT_KEY: libc::c_long = 4;

/// The head of `union bpf_attr` for the map element commands.
#[repr(C)]
struct ElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    next_key: u64,
}

/// How many entries `map` holds. Programs may write it meanwhile: a walk
/// that meets a removed key starts over, so it stops after twice the map's
/// capacity.
pub fn count(map: &MapData) -> Result<usize> {
    let info = map.info().context("reading the map's info")?;
    let size = info.key_size() as usize;
    let limit = 2 * info.max_entries() as usize;
    let (mut key, mut next) = (vec![0u8; size], vec![0u8; size]);
    let fd = map.fd().as_fd().as_raw_fd();
    for n in 0..=limit {
        let attr = ElemAttr {
            map_fd: fd as u32,
            _pad: 0,
            // No key: the first one.
            key: if n == 0 { 0 } else { key.as_ptr() as u64 },
            next_key: next.as_mut_ptr() as u64,
        };
        // SAFETY: both buffers hold the map's key size and outlive the
        // call; the kernel reads `size_of::<ElemAttr>()` bytes of `attr`.
        let r = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_GET_NEXT_KEY,
                &attr as *const ElemAttr,
                std::mem::size_of::<ElemAttr>(),
            )
        };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENOENT) {
                return Ok(n);
            }
            return Err(e).context("bpf_map_get_next_key");
        }
        std::mem::swap(&mut key, &mut next);
    }
    anyhow::bail!("the map changed throughout a walk of {limit} keys")
}
