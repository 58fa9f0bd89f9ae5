//! The capabilities `hairpin run` needs, checked at start: a missing one is
//! named, with what it is for, rather than met later as a bare EPERM from
//! some system call. The kernel accepts CAP_SYS_ADMIN in place of CAP_BPF
//! and CAP_PERFMON (`bpf_capable`, `perfmon_capable`), which kernels before
//! 5.8 lack; CAP_NET_ADMIN has no substitute.

use anyhow::{bail, Context as _, Result};

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Each capability `run` needs: its number, name, and what it is for.
const NEEDED: [(u32, &str, &str); 3] = [
    (CAP_BPF, "CAP_BPF", "maps, programs and their pins"),
    (
        CAP_NET_ADMIN,
        "CAP_NET_ADMIN",
        "TC programs, TCX links or clsact qdiscs, cgroup attach",
    ),
    (
        CAP_PERFMON,
        "CAP_PERFMON",
        "the verifier accepts the programs' pointer arithmetic only with it",
    ),
];

/// The capabilities missing from the effective set `eff`, each said with
/// what it is for.
pub fn missing(eff: u64) -> Vec<String> {
    let has = |cap: u32| eff & (1 << cap) != 0;
    NEEDED
        .iter()
        .filter(|&&(cap, ..)| !has(cap) && (cap == CAP_NET_ADMIN || !has(CAP_SYS_ADMIN)))
        .map(|(_, name, why)| format!("{name} ({why})"))
        .collect()
}

/// The calling thread's effective capabilities, from /proc.
fn effective() -> Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .context("no CapEff in /proc/self/status")?;
    u64::from_str_radix(hex.trim(), 16).context("CapEff in /proc/self/status")
}

/// Whether this process may enter other network namespaces (setns needs
/// CAP_SYS_ADMIN): the pods', to attach there.
pub fn enters_namespaces() -> bool {
    effective().is_ok_and(|eff| eff & (1 << CAP_SYS_ADMIN) != 0)
}

/// The capabilities `run` needs that this process lacks.
pub fn missing_now() -> Result<Vec<String>> {
    Ok(missing(effective()?))
}

/// Fails, naming them, when capabilities `run` needs are missing.
pub fn check_run() -> Result<()> {
    let missing = missing_now()?;
    if !missing.is_empty() {
        bail!(
            "missing capabilities: {}; grant them (see deploy/kubernetes/hairpin-cluster.yaml), \
             or CAP_SYS_ADMIN in place of CAP_BPF and CAP_PERFMON on kernels before 5.8",
            missing.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: u64 = (1 << CAP_BPF) | (1 << CAP_NET_ADMIN) | (1 << CAP_PERFMON);

    #[test]
    fn each_missing_capability_is_named_with_its_use() {
        assert!(missing(ALL).is_empty());
        assert_eq!(
            missing(ALL & !(1 << CAP_PERFMON)),
            ["CAP_PERFMON (the verifier accepts the programs' pointer arithmetic only with it)"]
        );
        assert_eq!(
            missing(ALL & !(1 << CAP_BPF)),
            ["CAP_BPF (maps, programs and their pins)"]
        );
        assert_eq!(missing(0).len(), 3);
    }

    #[test]
    fn sys_admin_stands_in_for_bpf_and_perfmon_but_not_net_admin() {
        let sys_admin = 1 << CAP_SYS_ADMIN;
        assert!(missing(sys_admin | (1 << CAP_NET_ADMIN)).is_empty());
        assert_eq!(
            missing(sys_admin),
            ["CAP_NET_ADMIN (TC programs, TCX links or clsact qdiscs, cgroup attach)"]
        );
    }
}
