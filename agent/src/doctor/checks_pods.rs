//! How pods are served beside the node's CNI: whose programs deliver into
//! pods (an eBPF dataplane's beside hairpin's, netkit devices), and the
//! symptom whatever its cause, pod flows whose replies never came back
//! through hairpin.

use std::collections::{BTreeMap, BTreeSet};

use super::{checks::Hook, Check};
use crate::datapath::hooks::OnHook;

/// The CNI's datapath as the hooks show it: programs of others on the
/// uplink's and the pod interfaces' hooks, with how they are attached (an
/// eBPF CNI, which may deliver into pods with `bpf_redirect_peer`), and
/// netkit devices; with the path that serves pods' replies there.
pub fn datapath(
    hooks: &[Hook],
    uplink: Option<&str>,
    netkit: &[String],
    is_hairpin: impl Fn(&str) -> bool,
    pod_side: &str,
) -> Check {
    let mut others: BTreeMap<&OnHook, BTreeSet<&str>> = BTreeMap::new();
    for h in hooks {
        if h.wanted || Some(h.interface.as_str()) == uplink {
            for p in h.programs.iter().filter(|p| !is_hairpin(&p.name)) {
                others.entry(p).or_default().insert(&h.interface);
            }
        }
    }
    let mut seen: Vec<String> = others
        .iter()
        .map(|(prog, ifs)| match ifs.len() {
            1 => format!("{prog} on {}", ifs.first().expect("one")),
            n => format!("{prog} on {n} interfaces"),
        })
        .collect();
    if !netkit.is_empty() {
        seen.push(format!("netkit devices {}", netkit.join(", ")));
    }
    let sides: Vec<&Hook> = hooks
        .iter()
        .filter(|h| h.wanted && h.hook == pod_side)
        .collect();
    let inside = sides
        .iter()
        .filter(|h| h.programs.iter().any(|p| is_hairpin(&p.name)))
        .count();
    let served = format!(
        "pod_receive inside {inside} of {} pods, where replies to them are translated \
         however they are delivered",
        sides.len()
    );
    if seen.is_empty() {
        return Check::ok(
            "cni datapath",
            format!("the node's stack routes pods (no other programs on their hooks); {served}"),
        );
    }
    let evidence = format!(
        "an eBPF dataplane ({}), which may deliver into pods past the host side; {served}",
        seen.join("; ")
    );
    if inside < sides.len() {
        Check::warn(
            "cni datapath",
            evidence,
            "replies delivered past the host side bypass hairpin in the other pods: start the \
             agent, which attaches pod_receive inside each pod (it needs the node's \
             /var/run/netns, and CAP_SYS_ADMIN to enter them), or serve pods on the socket path \
             (socket.scope: all)",
        )
    } else {
        Check::ok("cni datapath", evidence)
    }
}

/// A pod flow, as the pinned conntrack holds it.
pub struct PodFlow {
    /// The pod's interface (on the node side), if the route to it names one.
    pub interface: Option<String>,
    pub backend: String,
    pub replied: bool,
    pub age_s: u64,
}

/// How long a flow may wait for its first reply before it counts as
/// unanswered: well past a SYN's first retransmit.
pub const UNANSWERED_AFTER_S: u64 = 3;

/// Pod flows opened but never answered, by interface. When the backends of
/// those flows answered other clients, their replies to these pods took a
/// way hairpin does not see: it fails. When nothing tells the two causes
/// apart (the backends answered no one), it warns.
pub fn replies(flows: &[PodFlow], answered_backends: &BTreeSet<String>) -> Check {
    let mut unanswered: BTreeMap<&str, (usize, bool)> = BTreeMap::new();
    for f in flows
        .iter()
        .filter(|f| !f.replied && f.age_s >= UNANSWERED_AFTER_S)
    {
        let at = unanswered
            .entry(f.interface.as_deref().unwrap_or("?"))
            .or_default();
        at.0 += 1;
        at.1 |= answered_backends.contains(&f.backend);
    }
    if unanswered.is_empty() {
        return Check::ok("pod replies", "no pod flow waits for its reply");
    }
    let list = |bypassed: bool| -> Vec<String> {
        unanswered
            .iter()
            .filter(|(_, (_, b))| *b == bypassed)
            .map(|(i, (n, _))| format!("{n} on {i}"))
            .collect()
    };
    let bypassed = list(true);
    if bypassed.is_empty() {
        Check::warn(
            "pod replies",
            format!("pod flows unanswered: {}", list(false).join(", ")),
            "their backends answer no client either: check the backends; if they are up, \
             replies to pods bypass hairpin (is pod_receive attached inside the pods?)",
        )
    } else {
        Check::fail(
            "pod replies",
            format!(
                "replies to pods bypass hairpin: pod flows unanswered ({}) while their backends answer other clients",
                bypassed.join(", ")
            ),
            "the CNI delivers into pods past the host side (bpf_redirect_peer): hairpin's \
             pod_receive must be attached inside each pod (see `hairpin status`; the agent \
             needs the node's /var/run/netns), or serve pods with the socket path (socket.scope: all)",
        )
    }
}

#[cfg(test)]
#[path = "checks_pods_tests.rs"]
mod tests;
