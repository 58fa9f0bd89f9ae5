//! The verdicts on the socket path beyond the node's own processes: which
//! pods take it and why the others do not, and whether the kernel can end
//! a socket whose backend is gone.

use super::Check;
use crate::listener::published::SocketView;

/// Said by the agent of a chosen pod whose cgroup it has not found.
const NOT_FOUND: &str = "no cgroup named for it";

/// The pods and cgroups the agent put on the socket path, as it reports
/// them; a chosen pod whose cgroup is not found is a warning.
pub fn pods(view: &SocketView) -> Check {
    const NAME: &str = "socket pods";
    let on = view.pods.iter().filter(|p| p.socket).count();
    let mut why: Vec<String> = view
        .pods
        .iter()
        .filter(|p| !p.socket)
        .map(|p| format!("{}: {}", p.pod, p.why))
        .collect();
    why.sort();
    let mut evidence = format!(
        "{on} pods on the socket path, {} on the TC path; {} cgroups chosen",
        view.pods.len() - on,
        view.cgroups.len()
    );
    if !why.is_empty() {
        evidence.push_str(&format!(" ({})", why.join("; ")));
    }
    if view.pods.iter().any(|p| p.why.contains(NOT_FOUND)) {
        Check::warn(
            NAME,
            evidence,
            "a chosen pod's cgroup is looked for under socket.cgroup in the cgroup v2 \
             hierarchy (the kubelet's must be there); the TC path serves it meanwhile",
        )
    } else {
        Check::ok(NAME, evidence)
    }
}

/// Whether the kernel ended a socket of the doctor's own (`SOCK_DESTROY`),
/// as the agent does with those whose backend is gone.
pub fn ends(probe: Result<usize, String>) -> Check {
    const NAME: &str = "socket ends";
    match probe {
        Ok(1) => Check::ok(
            NAME,
            "the kernel ends a socket whose backend is gone (SOCK_DESTROY)",
        ),
        Ok(n) => Check::warn(
            NAME,
            format!("the probe's socket was not ended ({n} ended)"),
            "a socket on the socket path may keep a removed backend until its client closes it",
        ),
        Err(e) => Check::warn(
            NAME,
            e,
            "a socket on the socket path keeps a removed backend until its client closes it; \
             a kernel built with CONFIG_INET_DIAG_DESTROY (and its inet_diag modules) ends it",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        doctor::Verdict, listener::published::ChosenCgroup,
        sources::kubernetes::socket_choice::PodPath,
    };

    fn pod(name: &str, socket: bool, why: &str) -> PodPath {
        PodPath {
            pod: name.into(),
            uid: "u".into(),
            socket,
            why: why.into(),
        }
    }

    #[test]
    fn the_pods_paths_are_counted_and_the_others_say_why() {
        let view = SocketView {
            cgroups: vec![ChosenCgroup {
                path: "kubepods/pod-a".into(),
                by: "pod shop/a".into(),
                unseen: None,
            }],
            pods: vec![
                pod("shop/a", true, "the default"),
                pod("shop/b", false, "Istio's sidecar intercepts it"),
            ],
        };
        let c = pods(&view);
        assert_eq!(c.verdict, Verdict::Ok);
        assert_eq!(
            c.evidence,
            "1 pods on the socket path, 1 on the TC path; 1 cgroups chosen \
             (shop/b: Istio's sidecar intercepts it)"
        );
        let mut lost = view.clone();
        lost.pods[0] = pod(
            "shop/a",
            false,
            "the default; but no cgroup named for it under /x",
        );
        assert_eq!(pods(&lost).verdict, Verdict::Warn);
    }

    #[test]
    fn a_kernel_that_cannot_end_sockets_is_a_warning() {
        assert_eq!(ends(Ok(1)).verdict, Verdict::Ok);
        let no = ends(Err("this kernel cannot end sockets".into()));
        assert_eq!(
            (no.verdict, no.evidence.as_str()),
            (Verdict::Warn, "this kernel cannot end sockets")
        );
        assert_eq!(ends(Ok(0)).verdict, Verdict::Warn);
    }
}
