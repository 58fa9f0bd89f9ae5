//! A valid configuration on a node that cannot serve all of it: the rest
//! is served at once, what is not is reported (`/readyz`, `hairpin list`,
//! `hairpin status`) and retried until the node can.

use std::time::{Duration, Instant};

use crate::{
    curl, require_privileged,
    support::lab::{Lab, FRONTEND},
};

const FRONTEND6: &str = "2001:db8:0:113::10";

/// The lab's port forward in both families, as one ConfigMap for every
/// node would have it.
const DUAL_STACK: &str = r#"
redirects:
  - name: web
    frontend: 203.0.113.10
    ports: [{ port: 8080, protocol: TCP, targetPort: 80 }]
    backends: [{ ip: 198.51.100.2 }]
  - name: web
    frontend: 2001:db8:0:113::10
    ports: [{ port: 8080, protocol: TCP, targetPort: 80 }]
    backends: [{ ip: "2001:db8:0:51::2" }]
interfaces: { uplink: auto, pods: ["veth*"] }
socket: { enabled: false }
"#;

/// `/readyz` of the agent of `node`: its status code and body.
pub fn readyz(lab: &Lab, node: &str) -> (String, String) {
    let out = lab.sh_ok(
        node,
        "curl -s --max-time 3 -w '\\n%{http_code}' http://127.0.0.1:9469/readyz",
    );
    let (body, code) = out.trim_end().rsplit_once('\n').expect("body and code");
    (code.to_owned(), body.trim_end().to_owned())
}

/// `not_served` of each frontend in `hairpin list`.
fn states(lab: &Lab, node: &str) -> Vec<(String, Option<String>)> {
    let list: Vec<serde_json::Value> =
        serde_json::from_str(&lab.hairpin(node, &["list", "--output", "json"])).expect("list json");
    list.iter()
        .map(|f| {
            (
                f["frontend"].as_str().expect("frontend").to_owned(),
                f["not_served"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// Polls `cond` for up to `secs` seconds.
pub fn eventually(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "not within {secs} s: {what}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn unroutable_v6_only(states: &[(String, Option<String>)]) -> bool {
    states.iter().all(|(f, why)| {
        let v6 = f.starts_with('[');
        v6 == why.as_deref().is_some_and(|w| w.starts_with("unroutable"))
    })
}

#[test]
fn a_node_without_an_ipv6_route_serves_ipv4_and_the_ipv6_frontends_once_routed() {
    require_privileged!();
    let lab = Lab::up();
    lab.sh_ok("n1", "ip -6 route del default");
    let mut agent = lab.agent("n1", DUAL_STACK);
    assert_eq!(
        curl(&lab, "n1-c1", &format!("http://{FRONTEND}:8080/")),
        "b1",
        "IPv4 is served at once"
    );
    assert_eq!(curl(&lab, "n1", &format!("http://{FRONTEND}:8080/")), "b1");
    let list = states(&lab, "n1");
    assert!(
        unroutable_v6_only(&list),
        "the IPv6 frontends, and only they, are unroutable: {list:?}"
    );
    let (code, body) = readyz(&lab, "n1");
    assert_eq!(code, "200", "a degraded node is ready: {body}");
    assert!(
        body.contains(&format!("degraded: route {FRONTEND6}:")),
        "readyz says what is degraded: {body}"
    );
    // A restart finds the node as it is: nothing of it changes.
    agent.stop(libc::SIGTERM);
    agent.start();
    let list = states(&lab, "n1");
    assert!(unroutable_v6_only(&list), "after a restart: {list:?}");

    lab.sh_ok("n1", "ip -6 route add default via 2001:db8:0:2::1");
    eventually(10, "the IPv6 frontends served once routed", || {
        states(&lab, "n1").iter().all(|(_, why)| why.is_none())
    });
    let (code, body) = readyz(&lab, "n1");
    assert_eq!((code.as_str(), body.as_str()), ("200", "ready"));
    assert_eq!(
        lab.sh_ok(
            "n1",
            &format!("curl -gs --max-time 3 http://[{FRONTEND6}]:8080/")
        )
        .trim(),
        "b1",
        "host clients reach the IPv6 frontend through the uplink"
    );
    let log = agent.log_text();
    assert_eq!(
        log.matches("not served, retrying").count(),
        2,
        "logged once per start, not at every retry:\n{log}"
    );
    assert!(log.contains("served again"), "the cure is logged:\n{log}");
}

#[test]
fn a_missing_socket_path_cgroup_leaves_the_tc_path_serving_until_it_appears() {
    require_privileged!();
    let lab = Lab::up();
    // The lab's cgroup for n1, not created yet (Lab::cgroup creates it).
    let cgroup = hairpin::datapath::sockets::cgroup2_root()
        .expect("cgroup v2")
        .join(lab.ns("n1"));
    assert!(!cgroup.exists(), "{} exists already", cgroup.display());
    let config = DUAL_STACK.replace(
        "socket: { enabled: false }",
        &format!("socket: {{ scope: host, cgroup: {} }}", cgroup.display()),
    );
    let mut agent = lab.agent("n1", &config);
    assert_eq!(
        curl(&lab, "n1", &format!("http://{FRONTEND}:8080/")),
        "b1",
        "host clients are served through the TC path"
    );
    let (code, body) = readyz(&lab, "n1");
    assert_eq!(code, "200", "{body}");
    assert!(
        body.contains("degraded: socket-path cgroup: opening cgroup"),
        "readyz says the socket path is not served: {body}"
    );
    let status = lab.hairpin("n1", &["status"]);
    assert!(
        status.contains("degraded: socket-path cgroup"),
        "status says so too:\n{status}"
    );
    agent.stop(libc::SIGTERM);
    agent.start();
    assert!(
        readyz(&lab, "n1").1.contains("degraded: socket-path"),
        "a restart changes nothing of it"
    );

    let cgroup = lab.cgroup("n1");
    eventually(
        20,
        "the socket path attached once its cgroup exists",
        || !readyz(&lab, "n1").1.contains("socket-path"),
    );
    let list: Vec<serde_json::Value> =
        serde_json::from_str(&lab.hairpin("n1", &["list", "--output", "json"])).expect("list");
    assert!(
        list.iter()
            .all(|f| f["paths"] == serde_json::json!(["tc", "socket"])),
        "every frontend is served by the socket path too: {list:?}"
    );
    let got = lab.sh_in(
        &cgroup,
        "n1",
        &format!("curl -s --max-time 3 -w ' %{{remote_ip}}' http://{FRONTEND}:8080/"),
    );
    assert_eq!(
        String::from_utf8_lossy(&got.stdout).trim(),
        format!("b1\n {FRONTEND}"),
        "a host process in the cgroup is served and sees the frontend"
    );
}

/// A BPF object of another's at the path where hairpin pins `prog`'s link
/// on `ifname`: not a link, so hairpin must neither use nor replace it.
fn pin_foreign_object(pin_dir: &std::path::Path, prog: &str, ifname: &str) -> std::path::PathBuf {
    let path = hairpin::datapath::pins::link_pin(pin_dir, ifname, prog);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("pin dir");
    let mut dp =
        hairpin::datapath::loader::Datapath::load(&Default::default(), None).expect("load");
    let maps = dp.take_maps().expect("maps");
    maps.node.pin(&path).expect("pin a foreign map");
    path
}

#[test]
fn a_pod_interface_that_cannot_be_attached_is_reported_and_the_others_are_served() {
    require_privileged!();
    let lab = Lab::up();
    let mut agent = lab.agent("n1", DUAL_STACK);
    let foreign = pin_foreign_object(&agent.pin_dir, hairpin_common::PROG_POD_INGRESS, "vethc3");
    lab.add_pod("n1", "c3", "198.51.100.4");
    agent.wait_for_log(
        "not served, retrying: attaching pod_ingress to vethc3",
        Duration::from_secs(10),
    );
    assert_eq!(
        curl(&lab, "n1-c1", &format!("http://{FRONTEND}:8080/")),
        "b1",
        "the other pods are served"
    );
    let (code, body) = readyz(&lab, "n1");
    assert_eq!(code, "200", "{body}");
    assert!(body.contains("degraded: interface vethc3:"), "{body}");
    let status = lab.hairpin("n1", &["status"]);
    assert!(status.contains("degraded: interface vethc3"), "{status}");
    agent.stop(libc::SIGTERM);
    agent.start();
    assert!(
        readyz(&lab, "n1").1.contains("degraded: interface vethc3:"),
        "a restart changes nothing of it"
    );
    assert!(
        foreign.exists(),
        "the foreign object is neither replaced nor removed"
    );

    std::fs::remove_file(&foreign).expect("remove the foreign object");
    eventually(20, "vethc3 attached once its hook is free", || {
        readyz(&lab, "n1").1 == "ready"
    });
    assert_eq!(
        curl(&lab, "n1-c3", &format!("http://{FRONTEND}:8080/")),
        "b1",
        "the pod is served once attached"
    );
}
