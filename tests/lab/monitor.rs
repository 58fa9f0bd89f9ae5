//! `hairpin monitor` beside a running agent: the test's own flows with
//! their hook, path and backend (a pod's and a host's on TC, a host's on
//! the socket path), their ends, the filters, and the losses of a reader
//! that stopped reading.

use std::{
    path::Path,
    thread::sleep,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    require_privileged,
    support::lab::{Background, Lab, FRONTEND, HAIRPIN},
    NEW_UDP_FLOWS,
};

/// One frontend to b1, TCP and UDP, with the socket path on `cgroup`.
fn config(cgroup: &Path) -> String {
    format!(
        r#"
redirects:
  - name: web
    frontend: 203.0.113.10
    ports:
      - {{ port: 8080, protocol: TCP, targetPort: 80 }}
      - {{ port: 5353, protocol: UDP, targetPort: 53 }}
    backends: [{{ ip: 198.51.100.2 }}]
interfaces: {{ uplink: auto, pods: ["veth*"] }}
socket: {{ scope: host, cgroup: {} }}
"#,
        cgroup.display()
    )
}

/// `hairpin monitor` in node n1, its lines to `file`; returns once the
/// agent counts one more monitor.
fn monitor(lab: &Lab, args: &str, file: &str) -> Background {
    let before = monitors(lab);
    let bg = lab.background("n1", &format!("{HAIRPIN} monitor {args}"), file);
    let start = Instant::now();
    while monitors(lab) <= before {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the monitor never subscribed"
        );
        sleep(Duration::from_millis(100));
    }
    bg
}

/// The value of the agent's metric line that starts with `name`.
pub fn metric(lab: &Lab, name: &str) -> u64 {
    let metrics = lab.sh_ok("n1", "curl -s http://127.0.0.1:9469/metrics");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} in the metrics:\n{metrics}"))
}

fn monitors(lab: &Lab) -> u64 {
    metric(lab, "hairpin_monitors ")
}

/// The events in `file` so far.
fn events(lab: &Lab, file: &str) -> Vec<Value> {
    std::fs::read_to_string(lab.run_dir().join(file))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Waits until `file` holds an event for which `want` holds.
fn wait_for(lab: &Lab, file: &str, what: &str, want: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        if let Some(e) = events(lab, file).into_iter().find(&want) {
            return e;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no event for {what} in {:#?}",
            events(lab, file)
        );
        sleep(Duration::from_millis(100));
    }
}

fn opened(e: &Value, proto: &str, hook: &str) -> bool {
    e["type"] == "opened" && e["proto"] == proto && e["hook"] == hook
}

#[test]
fn monitor_shows_the_tests_flows_with_their_hook_and_backend_and_filters_them() {
    require_privileged!();
    let lab = Lab::up();
    let cg = lab.cgroup("n1");
    let _agent = lab.agent("n1", &config(&cg));
    let all = monitor(&lab, "--output json", "all.jsonl");
    let pod = monitor(
        &lab,
        "--output json --client 198.51.100.3 --type opened",
        "pod.jsonl",
    );
    let udp = monitor(
        &lab,
        &format!("--output json --frontend {FRONTEND}:5353"),
        "udp.jsonl",
    );
    let table = monitor(&lab, "--count 1 --type connect", "table.txt");

    let url = format!("http://{FRONTEND}:8080/");
    assert_eq!(crate::curl(&lab, "n1-c1", &url), "b1", "the pod");
    assert_eq!(crate::curl(&lab, "n1", &url), "b1", "the host on TC");
    let sock = lab.sh_in(&cg, "n1", &format!("curl -s --max-time 5 {url}"));
    assert_eq!(
        String::from_utf8_lossy(&sock.stdout).trim(),
        "b1",
        "the host's socket path"
    );
    assert!(
        crate::udp(&lab, "n1-c1", 5353).status.success(),
        "the pod's UDP"
    );

    let backend = "198.51.100.2:80";
    let e = wait_for(&lab, "all.jsonl", "the pod's flow", |e| {
        opened(e, "tcp", "pod_ingress")
    });
    assert_eq!(
        (&e["frontend"], &e["backend"], &e["path"], &e["interface"]),
        (
            &"203.0.113.10:8080".into(),
            &backend.into(),
            &"pod".into(),
            &"vethc1".into()
        ),
        "{e}"
    );
    assert!(
        e["client"].as_str().unwrap().starts_with("198.51.100.3:"),
        "{e}"
    );
    let e = wait_for(&lab, "all.jsonl", "the host's TC flow", |e| {
        opened(e, "tcp", "uplink_egress")
    });
    assert_eq!(
        (&e["backend"], &e["path"], &e["interface"]),
        (&backend.into(), &"uplink".into(), &"eth0".into()),
        "{e}"
    );
    let e = wait_for(&lab, "all.jsonl", "the socket path's connect", |e| {
        e["type"] == "connect"
    });
    assert_eq!(
        (&e["frontend"], &e["backend"], &e["path"]),
        (
            &"203.0.113.10:8080".into(),
            &backend.into(),
            &"socket".into()
        ),
        "{e}"
    );
    assert!(e["pid"].as_u64().is_some_and(|p| p > 0), "{e}");
    let e = wait_for(&lab, "all.jsonl", "the pod's UDP flow", |e| {
        opened(e, "udp", "pod_ingress")
    });
    assert_eq!(e["backend"], "198.51.100.2:53", "{e}");
    // The connections closed: each flow's end, once.
    let ends = |lab: &Lab| {
        events(lab, "all.jsonl")
            .into_iter()
            .filter(|e| e["type"] == "ended" && e["reason"] == "fin")
            .count()
    };
    wait_for(&lab, "all.jsonl", "a flow's FIN", |e| e["type"] == "ended");
    sleep(Duration::from_millis(500));
    assert_eq!(
        ends(&lab),
        2,
        "the pod's and the host's TC flows end once each"
    );

    // The filters: the pod's opening only; the UDP frontend only.
    sleep(Duration::from_millis(500));
    let got = events(&lab, "pod.jsonl");
    assert_eq!(got.len(), 2, "the pod's TCP and UDP flows: {got:#?}");
    assert!(
        got.iter()
            .all(|e| e["type"] == "opened"
                && e["client"].as_str().unwrap().starts_with("198.51.100.3:")),
        "{got:#?}"
    );
    let got = events(&lab, "udp.jsonl");
    assert!(
        !got.is_empty() && got.iter().all(|e| e["frontend"] == "203.0.113.10:5353"),
        "{got:#?}"
    );
    // A flush, through the agent: the UDP flow (still in conntrack) ends.
    let flushed = lab.hairpin("n1", &["ct", "flush"]);
    assert!(flushed.contains("flushed"), "{flushed}");
    let e = wait_for(&lab, "all.jsonl", "the flush", |e| e["reason"] == "flushed");
    sleep(Duration::from_millis(300));
    let flushed_ends = events(&lab, "all.jsonl")
        .iter()
        .filter(|e| e["reason"] == "flushed")
        .count();
    assert_eq!(
        flushed_ends, 1,
        "the closed TCP flows were told of at their FIN"
    );
    assert_eq!(
        (&e["type"], &e["proto"], &e["backend"]),
        (&"ended".into(), &"udp".into(), &"198.51.100.2:53".into()),
        "{e}"
    );
    // The table, for people.
    let line = table.finish();
    assert!(
        line.contains("connect")
            && line.contains("203.0.113.10:8080 => 198.51.100.2:80")
            && line.contains("path socket"),
        "{line}"
    );
    drop((all, pod, udp));
}

#[test]
fn a_monitor_that_stops_reading_loses_events_and_is_told_how_many() {
    require_privileged!();
    let lab = Lab::up();
    let cg = lab.cgroup("n1");
    let _agent = lab.agent("n1", &config(&cg));
    let slow = monitor(&lab, "--output json --type opened", "slow.jsonl");
    slow.signal(libc::SIGSTOP);
    // Far more new flows than the agent keeps for it, and than the
    // connection's buffers hold (these events are some 17 MB of JSON).
    for ns in ["n1-c1", "n1"] {
        lab.sh_ok(
            ns,
            &format!("python3 -c '{NEW_UDP_FLOWS}' {FRONTEND} 40000 20000"),
        );
    }
    slow.signal(libc::SIGCONT);
    // The next event it gets says how many it missed.
    lab.sh_ok(
        "n1-c1",
        &format!("python3 -c '{NEW_UDP_FLOWS}' {FRONTEND} 1 10000"),
    );
    let lost = wait_for(&lab, "slow.jsonl", "the losses", |e| e["type"] == "lost");
    let n = lost["count"].as_u64().expect("a count");
    assert!(n > 0, "{lost}");
    assert!(
        metric(&lab, "hairpin_monitor_events_lost_total ") >= n,
        "the agent counts them too"
    );
    let seen = events(&lab, "slow.jsonl")
        .iter()
        .filter(|e| e["type"] == "opened")
        .count() as u64;
    assert!(seen + n <= 80_001, "no flow reported twice: {seen} + {n}");
}

#[test]
fn a_monitor_whose_agent_stops_says_so_and_fails() {
    require_privileged!();
    let lab = Lab::up();
    let cg = lab.cgroup("n1");
    let agent = lab.agent("n1", &config(&cg));
    let socket = lab.socket("n1");
    let out = lab.sh(
        "n1",
        &format!(
            "HAIRPIN_SOCKET={} {HAIRPIN} monitor & m=$!; sleep 2; kill -TERM {}; wait $m",
            socket.display(),
            agent.pid()
        ),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "monitor fails: {stderr}");
    assert!(
        stderr.contains("the agent closed the stream after 0 event(s)"),
        "{stderr}"
    );
}
