//! The keys of a map of any layout. aya's iterators want the value's type
//! too, which a map pinned by another version may not have: this walks the
//! keys alone, as bytes of the size the kernel reports.

use std::os::fd::{AsFd as _, AsRawFd as _};

use anyhow::{Context as _, Result};
use aya::{maps::MapData, Pod};

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

/// How many entries `map` holds.
pub fn count(map: &MapData) -> Result<usize> {
    walk(map, |_| ())
}

/// The keys of `map`, when they are `K`s (of `K`'s size): else `None`.
pub fn keys<K: Pod>(map: &MapData) -> Result<Option<Vec<K>>> {
    let size = map.info().context("reading the map's info")?.key_size() as usize;
    if size != std::mem::size_of::<K>() {
        return Ok(None);
    }
    let mut keys = Vec::new();
    // SAFETY: `key` holds `size_of::<K>()` bytes, and every bit pattern is
    // a `K` (`Pod`).
    walk(map, |key| {
        keys.push(unsafe { std::ptr::read_unaligned(key.as_ptr().cast::<K>()) })
    })?;
    Ok(Some(keys))
}

/// Calls `each` with every key of `map` and returns how many there were.
/// Programs may write the map meanwhile: a walk that meets a removed key
/// starts over, so it stops after twice the map's capacity.
fn walk(map: &MapData, mut each: impl FnMut(&[u8])) -> Result<usize> {
    let info = map.info().context("reading the map's info")?;
    let size = info.key_size() as usize;
    let limit = 2 * info.max_entries() as usize;
    let (mut key, mut next) = (vec![0u8; size], vec![0u8; size]);
    for n in 0..=limit {
        // No key: the first one.
        if !next_key(map, (n > 0).then_some(key.as_slice()), &mut next)? {
            return Ok(n);
        }
        each(&next);
        std::mem::swap(&mut key, &mut next);
    }
    anyhow::bail!("the map changed throughout a walk of {limit} keys")
}

/// Writes the key that follows `key` in `map` (with none: its first key)
/// to `next`; false at the end. A `key` that is gone gives the first key
/// again (`BPF_MAP_GET_NEXT_KEY`). Both are of the map's key size.
pub fn next_key(map: &MapData, key: Option<&[u8]>, next: &mut [u8]) -> Result<bool> {
    let attr = ElemAttr {
        map_fd: map.fd().as_fd().as_raw_fd() as u32,
        _pad: 0,
        key: key.map_or(0, |k| k.as_ptr() as u64),
        next_key: next.as_mut_ptr() as u64,
    };
    // SAFETY: both buffers hold the map's key size and outlive the call;
    // the kernel reads `size_of::<ElemAttr>()` bytes of `attr`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_GET_NEXT_KEY,
            &attr as *const ElemAttr,
            std::mem::size_of::<ElemAttr>(),
        )
    };
    if r == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::ENOENT) {
        return Ok(false);
    }
    Err(e).context("bpf_map_get_next_key")
}

/// `next_key` over keys of type `K`, which must be the map's.
pub fn next_key_of<K: Pod>(map: &MapData, key: Option<&K>, next: &mut K) -> Result<bool> {
    let size = std::mem::size_of::<K>();
    // SAFETY: a `Pod` is plain bytes; each slice covers its value only.
    let (key, next) = unsafe {
        (
            key.map(|k| std::slice::from_raw_parts((k as *const K).cast::<u8>(), size)),
            std::slice::from_raw_parts_mut((next as *mut K).cast::<u8>(), size),
        )
    };
    next_key(map, key, next)
}
