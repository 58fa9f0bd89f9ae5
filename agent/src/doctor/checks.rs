//! The verdicts, each from the facts it needs.

use std::net::IpAddr;

use super::Check;
use crate::{datapath::attach::POD_SIDE_HOOK, datapath::hooks::OnHook, datapath::kernel::Kernel};

/// The kernel: at least 5.10, and each feature hairpin uses where present
/// (`kernel::Kernel`) named when missing, with what serves instead.
pub fn kernel(k: &Kernel) -> Check {
    let shown = k.release();
    if k.version < (5, 10) {
        return Check::fail(
            "kernel",
            format!("{shown}: older than 5.10"),
            "hairpin needs 5.10 or newer (bpf_redirect_neigh, the socket hooks it uses)",
        );
    }
    let lacks = k.lacks();
    if lacks.is_empty() {
        return Check::ok(
            "kernel",
            format!("{shown}: TCX links, the coarse clock, BPF_F_IPV6"),
        );
    }
    let what: Vec<String> = lacks.iter().map(|l| format!("no {}", l.what)).collect();
    let instead: Vec<String> = lacks
        .iter()
        .map(|l| format!("{}: {}", l.what, l.instead))
        .collect();
    Check::warn(
        "kernel",
        format!("{shown}: {}", what.join(", ")),
        instead.join("; "),
    )
}

/// The verifier's answer to the programs, loaded once and detached
/// (`facts::verifier`): a refused TC program means no datapath at all, a
/// refused socket program a socket path that stays degraded.
pub fn verifier(tc: &Result<u32, String>, socket: &Result<u32, String>, socket_on: bool) -> Check {
    const NAME: &str = "verifier";
    match (tc, socket) {
        (Err(e), _) => Check::fail(
            NAME,
            format!("the kernel refuses the datapath: {e}"),
            "hairpin cannot run on this kernel: report it with this message",
        ),
        (Ok(_), Err(e)) if socket_on => Check::warn(
            NAME,
            format!("the kernel refuses the socket path: {e}"),
            "host processes are served on the TC path instead; or turn the socket path off",
        ),
        (Ok(tc), Err(_)) => Check::ok(
            NAME,
            format!("the kernel accepts the {tc} TC programs (the socket path, off, it refuses)"),
        ),
        (Ok(tc), Ok(sock)) => Check::ok(
            NAME,
            format!("the kernel accepts every program: {tc} TC, {sock} socket"),
        ),
    }
}

/// `statfs`'s magic for bpffs.
pub const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// The pin directory must be on bpffs: pins elsewhere cannot be made.
pub fn pin_dir(dir: &str, magic: Option<i64>) -> Check {
    match magic {
        Some(BPF_FS_MAGIC) => Check::ok("pin directory", format!("{dir} on bpffs")),
        Some(m) => Check::fail(
            "pin directory",
            format!("{dir} is on a filesystem of type {m:#x}, not bpffs"),
            "mount bpffs there (`mount -t bpf bpf /sys/fs/bpf`) or pass --pin-dir on one",
        ),
        None => Check::fail(
            "pin directory",
            format!("{dir}: no such directory or parent"),
            "mount bpffs (`mount -t bpf bpf /sys/fs/bpf`)",
        ),
    }
}

/// The capabilities `hairpin run` needs (see `caps`).
pub fn capabilities(missing: &[String]) -> Check {
    if missing.is_empty() {
        Check::ok(
            "capabilities",
            "CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON (or CAP_SYS_ADMIN)",
        )
    } else {
        Check::fail(
            "capabilities",
            format!("missing {}", missing.join(", ")),
            "grant them (see deploy/kubernetes/hairpin-cluster.yaml)",
        )
    }
}

/// The CNIs recognised from the node's interface names.
pub fn cni(interfaces: &[String]) -> Check {
    const KNOWN: [(&str, &str); 7] = [
        ("cali", "Calico"),
        ("lxc", "Cilium"),
        ("cilium_", "Cilium"),
        ("flannel.", "Flannel"),
        ("cni0", "a bridge CNI (Flannel, the bridge plugin)"),
        ("eni", "the AWS VPC CNI"),
        ("veth", "a veth-based CNI"),
    ];
    let mut seen: Vec<&str> = KNOWN
        .iter()
        .filter(|(prefix, _)| interfaces.iter().any(|i| i.starts_with(prefix)))
        .map(|(_, name)| *name)
        .collect();
    seen.dedup();
    if seen.is_empty() {
        Check::warn(
            "cni",
            "no pod interfaces recognised",
            "if this node runs pods, set interfaces.pods to their interfaces' names",
        )
    } else {
        Check::ok("cni", seen.join(", "))
    }
}

/// Interfaces named as a CNI names pod interfaces that no configured
/// pattern matches: their pods' packets would pass hairpin by.
pub fn pod_patterns(interfaces: &[String], patterns: &[glob::Pattern]) -> Check {
    const POD_LIKE: [&str; 5] = ["veth", "cali", "lxc", "eni", "tap"];
    let unmatched: Vec<&str> = interfaces
        .iter()
        .filter(|i| POD_LIKE.iter().any(|p| i.starts_with(p)))
        .filter(|i| !patterns.iter().any(|p| p.matches(i)))
        .map(String::as_str)
        .collect();
    let shown: Vec<&str> = patterns.iter().map(glob::Pattern::as_str).collect();
    if unmatched.is_empty() {
        Check::ok(
            "pod interfaces",
            format!("patterns {shown:?} match every pod interface"),
        )
    } else {
        Check::warn(
            "pod interfaces",
            format!("{} match no pattern of {shown:?}", unmatched.join(", ")),
            "add a pattern for them to interfaces.pods, or their pods go untranslated",
        )
    }
}

/// Netfilter rules that already translate a frontend: hairpin would be
/// redundant, or conflict. `rules` is `iptables-save -t nat` and
/// `nft list ruleset`, as printed.
pub fn netfilter(frontends: &[IpAddr], rules: &str) -> Check {
    let hits: Vec<String> = rules
        .lines()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("dnat") || l.contains("kube-ext") || l.contains("kube-svc")
        })
        .filter(|l| frontends.iter().any(|a| mentions(l, &a.to_string())))
        .map(|l| l.trim().to_owned())
        .collect();
    if hits.is_empty() {
        Check::ok("netfilter", "no rule translates a frontend")
    } else {
        Check::warn(
            "netfilter",
            format!("already translated: {}", hits.join(" | ")),
            "a DNAT (or kube-proxy) rule serves this address: drop it, or the redirect",
        )
    }
}

/// Whether `line` names `addr` as a whole address (not `203.0.113.100`
/// for `203.0.113.10`).
fn mentions(line: &str, addr: &str) -> bool {
    line.match_indices(addr).any(|(i, _)| {
        let after = line[i + addr.len()..].chars().next();
        let before = line[..i].chars().next_back();
        !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '.')
            && !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '.')
    })
}

/// The programs on one hook, first to run first.
pub struct Hook {
    pub interface: String,
    pub hook: &'static str,
    pub programs: Vec<OnHook>,
    /// Whether hairpin should be there (a matched pod interface).
    pub wanted: bool,
}

/// hairpin's programs on the hooks it should be on, and programs of others
/// that run before them. A pod side without `pod_receive` is for `cni
/// datapath` to judge: beside a CNI that routes pods through the node's
/// stack, nothing is lost.
pub fn programs(hooks: &[Hook], is_hairpin: impl Fn(&str) -> bool) -> Vec<Check> {
    let mut out = Vec::new();
    let missing: Vec<String> = hooks
        .iter()
        .filter(|h| h.hook != POD_SIDE_HOOK)
        .filter(|h| h.wanted && !h.programs.iter().any(|p| is_hairpin(&p.name)))
        .map(|h| format!("{} {}", h.interface, h.hook))
        .collect();
    out.push(if missing.is_empty() {
        Check::ok("programs", "on every pod interface's hooks")
    } else {
        Check::fail(
            "programs",
            format!("not attached on {}", missing.join(", ")),
            "is the agent running? (`hairpin run`, or the DaemonSet's pod)",
        )
    });
    for h in hooks {
        let Some(first) = h.programs.iter().position(|p| is_hairpin(&p.name)) else {
            continue;
        };
        if first > 0 {
            out.push(Check::warn(
                "program order",
                format!(
                    "{} run before hairpin's on {} {}",
                    h.programs[..first]
                        .iter()
                        .map(OnHook::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                    h.interface,
                    h.hook
                ),
                "a program before hairpin's that ends the chain (a final verdict) hides \
                 those packets from it: attach it after hairpin, or let it pass them on",
            ));
        }
    }
    out
}

/// The pinned datapath's layout against this binary's.
pub fn layout(pinned: Option<u32>, ours: u32) -> Check {
    match pinned {
        None => Check::warn("datapath", "none pinned", "start the agent (`hairpin run`)"),
        Some(v) if v == ours => Check::ok("datapath", format!("layout {v}, this binary's")),
        Some(v) if v < ours => Check::warn(
            "datapath",
            format!("layout {v}, older than this binary's {ours}"),
            "the next agent of this version migrates it (docs/datapath.md, Upgrades)",
        ),
        Some(v) => Check::fail(
            "datapath",
            format!("layout {v}, newer than this binary's {ours}"),
            "run the newer hairpin: this one refuses it",
        ),
    }
}

/// The counters that explain a failed connection, when they moved.
pub fn counters(counters: &[(&'static str, u64)]) -> Check {
    const FAILURES: [&str; 4] = [
        "ct_insert_failed",
        "redirect_failed",
        "rewrite_failed",
        "reset_failed",
    ];
    let moved: Vec<String> = counters
        .iter()
        .filter(|(n, v)| *v > 0 && FAILURES.contains(n))
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    if moved.is_empty() {
        Check::ok("counters", "no failed insert, redirect, rewrite or reset")
    } else {
        Check::warn(
            "counters",
            moved.join(" "),
            "see docs/datapath.md, Counters: conntrack full, uplink unknown, or packets \
             too short for their headers",
        )
    }
}

/// The agent, as its listener answers: `None` when it does not; else what
/// it reports it cannot serve, as (kind, item, reason).
pub fn agent(at: &str, degraded: Option<&[(String, String, String)]>) -> Vec<Check> {
    let Some(degraded) = degraded else {
        return vec![Check::warn(
            "agent",
            format!("not answering at {at}"),
            "start it, or pass --socket with its control socket",
        )];
    };
    let mut out = vec![Check::ok("agent", format!("running, answering at {at}"))];
    out.extend(degraded.iter().map(|(kind, item, reason)| {
        Check::warn(
            "not served",
            format!("{kind} {item}: {reason}"),
            "the agent retries; the reason says what it waits for",
        )
    }));
    out
}

/// Conntrack's fill level: past 90 % the table is close to refusing new
/// flows (it never evicts running ones).
pub fn conntrack(entries: usize, capacity: u64) -> Check {
    let pct = (entries as u64 * 100).checked_div(capacity).unwrap_or(0);
    let evidence = format!("{entries} entries of {capacity} ({pct} %)");
    if pct >= 90 {
        Check::warn(
            "conntrack",
            evidence,
            "raise conntrack.maxEntries (the next start migrates the table)",
        )
    } else {
        Check::ok("conntrack", evidence)
    }
}

/// The socket path: attached where the configuration asks for it.
pub fn socket_path(enabled: bool, pinned_hooks: usize) -> Check {
    match (enabled, pinned_hooks) {
        (false, _) => Check::ok("socket path", "off in the configuration"),
        (true, 0) => Check::warn(
            "socket path",
            "not attached",
            "its cgroup may be missing (the agent says so under `not served`)",
        ),
        (true, n) => Check::ok("socket path", format!("{n} cgroup hooks attached")),
    }
}

#[cfg(test)]
#[path = "checks_tests.rs"]
mod tests;
