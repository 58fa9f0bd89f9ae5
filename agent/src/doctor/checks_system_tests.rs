//! The system checks' verdicts from recorded inputs.

use super::*;
use crate::doctor::Verdict;

/// A hybrid host's mountinfo (recorded on a CI runner): v1 controllers,
/// cgroup2 at /sys/fs/cgroup/unified.
const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

/// A unified host's, with a container's cgroup2 mounted deeper and a mount
/// point with a blank in it.
const UNIFIED: &str = "\
26 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate
90 26 0:26 /kubepods /var/lib/c\\040d/cg rw,relatime shared:9 - cgroup2 cgroup2 rw
";

#[test]
fn btf_present_or_what_its_absence_costs() {
    assert_eq!(btf(true).verdict, Verdict::Ok);
    let none = btf(false);
    assert_eq!(none.verdict, Verdict::Warn);
    assert!(
        none.evidence.contains("hairpin loads without it"),
        "{none:?}"
    );
}

#[test]
fn cgroup2_is_found_on_unified_and_hybrid_hosts() {
    let unified = mounts(UNIFIED);
    assert_eq!(unified[2].point, "/var/lib/c d/cg");
    assert_eq!(cgroup2_root(&unified), Some("/sys/fs/cgroup"));
    let c = cgroup2(&unified, true);
    assert_eq!(
        (c.verdict, c.evidence.as_str()),
        (Verdict::Ok, "/sys/fs/cgroup (unified)")
    );
    let hybrid = mounts(HYBRID);
    let c = cgroup2(&hybrid, true);
    assert_eq!(
        (c.verdict, c.evidence.as_str()),
        (
            Verdict::Ok,
            "/sys/fs/cgroup/unified (hybrid: cgroup v1 controllers beside it)"
        )
    );
    // v1 only: the socket path cannot attach.
    let v1 = mounts(&HYBRID.replace("cgroup2 cgroup2", "cgroup cgroup"));
    assert_eq!(cgroup2_root(&v1), None);
    assert_eq!(cgroup2(&v1, true).verdict, Verdict::Fail);
    assert_eq!(cgroup2(&v1, false).verdict, Verdict::Warn);
}

#[test]
fn the_socket_cgroup_must_exist_on_cgroup2() {
    let at = Some("/sys/fs/cgroup/hairpin");
    assert_eq!(
        socket_cgroup(at, Some(CGROUP2_SUPER_MAGIC)).verdict,
        Verdict::Ok
    );
    let v1 = socket_cgroup(at, Some(0x0027_e0eb));
    assert_eq!(v1.verdict, Verdict::Fail);
    assert_eq!(
        v1.evidence,
        "/sys/fs/cgroup/hairpin is on a filesystem of type 0x27e0eb, not cgroup2"
    );
    let gone = socket_cgroup(at, None);
    assert_eq!(
        (gone.verdict, gone.evidence.as_str()),
        (Verdict::Fail, "/sys/fs/cgroup/hairpin: no such directory")
    );
    assert_eq!(socket_cgroup(None, None).verdict, Verdict::Fail);
}

#[test]
fn locked_memory_matters_before_5_11_only() {
    // The default conntrack: 262144 IPv4 slots, 4096 IPv6 ones.
    let need = map_memory(262_144, 4096);
    assert_eq!(need, 262_144 * (16 + 40 + 48) + 4096 * (40 + 64 + 48));
    assert_eq!(
        memlock((6, 1), Some(8 << 20), need).verdict,
        Verdict::Ok,
        "memcg accounting"
    );
    let low = memlock((5, 10), Some(8 << 20), need);
    assert_eq!(low.verdict, Verdict::Warn);
    assert!(
        low.evidence
            .starts_with("RLIMIT_MEMLOCK 8 MiB, below the ~27 MiB the maps need"),
        "{}",
        low.evidence
    );
    assert_eq!(memlock((5, 10), None, need).verdict, Verdict::Ok);
    let enough = memlock((5, 4), Some(64 << 20), need);
    assert_eq!(
        (enough.verdict, enough.evidence.as_str()),
        (Verdict::Ok, "RLIMIT_MEMLOCK 64 MiB, the maps need ~27 MiB")
    );
}
