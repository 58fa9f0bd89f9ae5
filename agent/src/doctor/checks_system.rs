//! The verdicts on the system beneath hairpin: kernel BTF, cgroup v2 and
//! the socket path's cgroup, locked memory.

use super::Check;

/// Kernel BTF (`/sys/kernel/btf/vmlinux`): hairpin's programs make no CO-RE
/// relocations and load without it, but the tools one reaches for when
/// something goes wrong need it.
pub fn btf(present: bool) -> Check {
    if present {
        Check::ok("btf", "/sys/kernel/btf/vmlinux")
    } else {
        Check::warn(
            "btf",
            "no /sys/kernel/btf/vmlinux: hairpin loads without it, but `bpftool btf dump`, \
             `bpftool prog` with kernel types and CO-RE programs (other tools' included) do not work",
            "a kernel built with CONFIG_DEBUG_INFO_BTF=y has it",
        )
    }
}

/// A mount, as /proc/self/mountinfo lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub point: String,
    pub fstype: String,
}

/// The mounts of a /proc/self/mountinfo text: the mount point is the fifth
/// field (octal escapes for blanks), the type the first after ` - `.
pub fn mounts(mountinfo: &str) -> Vec<Mount> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let (before, after) = l.split_once(" - ")?;
            let point = before.split(' ').nth(4)?;
            Some(Mount {
                point: unescape(point),
                fstype: after.split(' ').next()?.to_owned(),
            })
        })
        .collect()
}

/// `\040` and the other octal escapes of mountinfo, decoded.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let code = b.get(i + 1..i + 4).and_then(|o| {
            let o = std::str::from_utf8(o).ok()?;
            u8::from_str_radix(o, 8).ok()
        });
        match code {
            Some(c) if b[i] == b'\\' => {
                out.push(c);
                i += 4;
            }
            _ => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The root of the cgroup v2 hierarchy the agent attaches to by default:
/// the shallowest cgroup2 mount (as `sockets::cgroup2_root` picks it).
pub fn cgroup2_root(mounts: &[Mount]) -> Option<&str> {
    mounts
        .iter()
        .filter(|m| m.fstype == "cgroup2")
        .map(|m| m.point.as_str())
        .min_by_key(|p| p.split('/').filter(|c| !c.is_empty()).count())
}

/// Where cgroup v2 is mounted; the socket path needs it.
pub fn cgroup2(mounts: &[Mount], socket_enabled: bool) -> Check {
    let Some(root) = cgroup2_root(mounts) else {
        let evidence = "no cgroup2 mount: the socket path cannot attach";
        let advice = "mount it (`mount -t cgroup2 none /sys/fs/cgroup`), or boot with \
                      systemd.unified_cgroup_hierarchy=1";
        return if socket_enabled {
            Check::fail("cgroup v2", evidence, advice)
        } else {
            Check::warn("cgroup v2", evidence, advice)
        };
    };
    let v1 = mounts.iter().any(|m| m.fstype == "cgroup");
    Check::ok(
        "cgroup v2",
        if v1 {
            format!("{root} (hybrid: cgroup v1 controllers beside it)")
        } else {
            format!("{root} (unified)")
        },
    )
}

/// `statfs`'s magic for cgroup2.
pub const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// The cgroup the socket path attaches to (`socket.cgroup`, else the
/// hierarchy's root, `None` without one): it must exist, on cgroup2.
/// `magic` is its own filesystem's, `None` when it does not exist.
pub fn socket_cgroup(cgroup: Option<&str>, magic: Option<i64>) -> Check {
    const NAME: &str = "socket cgroup";
    let Some(cgroup) = cgroup else {
        return Check::fail(
            NAME,
            "none: no cgroup2 mount and no socket.cgroup",
            "mount cgroup v2, or set socket.enabled: false",
        );
    };
    match magic {
        Some(CGROUP2_SUPER_MAGIC) => Check::ok(NAME, format!("{cgroup} on cgroup2")),
        Some(m) => Check::fail(
            NAME,
            format!("{cgroup} is on a filesystem of type {m:#x}, not cgroup2"),
            "set socket.cgroup to a directory of the cgroup v2 hierarchy",
        ),
        None => Check::fail(
            NAME,
            format!("{cgroup}: no such directory"),
            "create it, or set socket.cgroup to an existing cgroup v2 directory",
        ),
    }
}

/// Bytes a preallocated hash map's element costs beyond its key and value
/// (`struct htab_elem` on 64-bit kernels).
const HTAB_ELEM: u64 = 48;

/// An estimate of the locked memory the maps need: the conntrack tables,
/// which dwarf the others (`ct_v4`, `ct_v6`: their capacities).
pub fn map_memory(ct_v4: u32, ct_v6: u32) -> u64 {
    use core::mem::size_of;
    use hairpin_common::conntrack::{CtEntryV4, CtEntryV6, CtKeyV4, CtKeyV6};
    let per = |k: usize, v: usize| (k + v) as u64 + HTAB_ELEM;
    u64::from(ct_v4) * per(size_of::<CtKeyV4>(), size_of::<CtEntryV4>())
        + u64::from(ct_v6) * per(size_of::<CtKeyV6>(), size_of::<CtEntryV6>())
}

/// `RLIMIT_MEMLOCK` (`None`: unlimited), which bounds BPF memory only on
/// kernels before 5.11; later ones charge it to the memory cgroup.
pub fn memlock(kernel: (u32, u32), limit: Option<u64>, need: u64) -> Check {
    const NAME: &str = "locked memory";
    let mib = |b: u64| format!("{} MiB", b.div_ceil(1 << 20));
    if kernel >= (5, 11) {
        return Check::ok(
            NAME,
            "memcg accounting (5.11): RLIMIT_MEMLOCK does not bound BPF memory",
        );
    }
    match limit {
        None => Check::ok(NAME, "RLIMIT_MEMLOCK unlimited"),
        Some(l) if l < need => Check::warn(
            NAME,
            format!(
                "RLIMIT_MEMLOCK {}, below the ~{} the maps need (before 5.11 BPF memory counts \
                 against it)",
                mib(l),
                mib(need)
            ),
            "raise it for the agent (LimitMEMLOCK=infinity, the container runtime's memlock \
             ulimit, `ulimit -l unlimited`): its maps fail to load otherwise",
        ),
        Some(l) => Check::ok(
            NAME,
            format!("RLIMIT_MEMLOCK {}, the maps need ~{}", mib(l), mib(need)),
        ),
    }
}

#[cfg(test)]
#[path = "checks_system_tests.rs"]
mod tests;
