//! What the agent and its pins tell about the node's traffic: `hairpin
//! list`, `ct list` and the metrics count the tests' own flows.

use crate::{
    agent::ONE,
    curl, require_privileged,
    support::lab::{Lab, FRONTEND},
};

#[test]
fn list_ct_list_and_metrics_count_the_tests_own_traffic() {
    require_privileged!();
    let lab = Lab::up();
    let _agent = lab.agent("n1", ONE);
    for _ in 0..3 {
        assert_eq!(
            curl(&lab, "n1-c1", &format!("http://{FRONTEND}:8080/")),
            "b1"
        );
    }
    for _ in 0..2 {
        let out = lab.sh(
            "n1-c1",
            &format!("echo ping | timeout 5 socat -t1 -T1 - UDP4:{FRONTEND}:5353"),
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("b1 ping"),
            "UDP answer: {out:?}"
        );
    }
    let list: Vec<serde_json::Value> =
        serde_json::from_str(&lab.hairpin("n1", &["list", "--output", "json"])).expect("list json");
    let by = |fe: &str| {
        list.iter()
            .find(|f| f["frontend"] == fe)
            .unwrap_or_else(|| panic!("{fe} in {list:?}"))
    };
    let tcp = by("203.0.113.10:8080/TCP");
    assert_eq!(tcp["stats"]["flows"], 3, "three TCP flows: {tcp}");
    assert!(
        tcp["stats"]["packets"].as_u64() >= Some(3 * 8),
        "packets both ways: {tcp}"
    );
    assert_eq!(tcp["backends"][0][0], "198.51.100.2:80", "backend: {tcp}");
    let udp = by("203.0.113.10:5353/UDP");
    assert_eq!(udp["stats"]["flows"], 2, "two UDP flows: {udp}");
    assert_eq!(
        udp["stats"]["packets"], 4,
        "two datagrams and two answers: {udp}"
    );

    // Answered UDP flows say so, however quick the answer was.
    let udp_ct = lab.hairpin("n1", &["ct", "list", "--frontend", "203.0.113.10:5353/UDP"]);
    assert_eq!(udp_ct.matches("REPLIED").count(), 2, "{udp_ct}");

    let flows: Vec<serde_json::Value> = serde_json::from_str(&lab.hairpin(
        "n1",
        &[
            "ct",
            "list",
            "--frontend",
            "203.0.113.10:8080/TCP",
            "--output",
            "json",
        ],
    ))
    .expect("ct json");
    assert_eq!(flows.len(), 3, "three TCP flows in conntrack: {flows:?}");
    for f in &flows {
        assert!(
            f["client"]
                .as_str()
                .is_some_and(|c| c.starts_with("198.51.100.3:")),
            "client: {f}"
        );
        assert_eq!(f["backend"], "198.51.100.2:80", "backend: {f}");
        assert_eq!(f["origin"], "pod", "origin: {f}");
        assert_eq!(f["state"], "CLOSING", "a finished connection: {f}");
    }

    let metrics = lab.sh_ok("n1", "curl -s http://127.0.0.1:9469/metrics");
    assert!(
        metrics.contains("hairpin_frontend_flows_total{frontend=\"203.0.113.10:8080/TCP\",name=\"web/8080/TCP\"} 3"),
        "metrics count the flows:\n{metrics}"
    );
    for untranslated in ["rewrite_failed", "reset_failed", "redirect_failed"] {
        assert!(
            metrics.contains(&format!(
                "hairpin_datapath_events_total{{counter=\"{untranslated}\"}} 0"
            )),
            "every way a packet can leave untranslated is counted: {untranslated}\n{metrics}"
        );
    }
    let flushed = lab.hairpin(
        "n1",
        &["ct", "flush", "--frontend", "203.0.113.10:8080/TCP"],
    );
    assert!(flushed.contains("flushed 3 flows"), "flush: {flushed}");
    let left: Vec<serde_json::Value> =
        serde_json::from_str(&lab.hairpin("n1", &["ct", "list", "--output", "json"]))
            .expect("ct json");
    let live: Vec<_> = left.iter().filter(|f| f["state"] != "ENDED").collect();
    assert_eq!(
        live.len(),
        2,
        "the UDP flows stay, the TCP ones are ended: {left:?}"
    );
}
