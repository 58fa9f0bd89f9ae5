//! The clsact fallback, for kernels without TCX: netlink filters that serve
//! like TCX links, survive restarts without doubling, and go with detach.

use crate::{
    agent::ONE,
    curl, require_privileged,
    support::lab::{Lab, FRONTEND},
};

/// hairpin's filters on a hook of a node's interface (clsact mode).
fn filters(lab: &Lab, dev: &str, hook: &str) -> usize {
    lab.sh_ok("n1", &format!("tc filter show dev {dev} {hook}"))
        .lines()
        .filter(|l| l.contains("pod_") || l.contains("uplink_"))
        .count()
}

#[test]
fn the_clsact_fallback_serves_survives_restarts_once_and_detaches() {
    require_privileged!();
    let lab = Lab::up();
    let mut agent = lab.agent_with("n1", ONE, &["--attach", "clsact"]);
    assert!(
        agent.log_text().contains("mode=Clsact"),
        "the log says which mode:\n{}",
        agent.log_text()
    );
    let url = format!("http://{FRONTEND}:8080/");
    assert_eq!(curl(&lab, "n1-c1", &url), "b1", "pod client");
    assert_eq!(curl(&lab, "n1", &url), "b1", "host client");
    agent.stop(libc::SIGTERM);
    agent.start();
    agent.stop(libc::SIGKILL);
    assert_eq!(
        curl(&lab, "n1-c1", &url),
        "b1",
        "served with no agent, after a restart and a kill -9"
    );
    agent.start();
    for (dev, hook) in [
        ("vethc1", "ingress"),
        ("vethc1", "egress"),
        ("eth0", "ingress"),
        ("eth0", "egress"),
    ] {
        assert_eq!(
            filters(&lab, dev, hook),
            1,
            "one hairpin filter on {dev} {hook} after restarts"
        );
    }
    agent.stop(libc::SIGTERM);
    let removed = lab.hairpin("n1", &["detach"]);
    assert!(
        removed.contains("filter from vethc1"),
        "detach names the filters:\n{removed}"
    );
    for (dev, hook) in [("vethc1", "ingress"), ("eth0", "egress")] {
        assert_eq!(
            filters(&lab, dev, hook),
            0,
            "no filter left on {dev} {hook}"
        );
    }
    let out = lab.sh("n1-c1", &format!("curl -s --max-time 2 {url}"));
    assert!(
        !out.status.success(),
        "after detach the frontend is no longer translated"
    );
}
