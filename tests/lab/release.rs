//! The previous release's own binary (`scripts/earlier-release.sh` builds
//! it from the repository's history: datapath layout 2, conntrack in LRU
//! hashes) running the node, then this one over its pins: every running
//! transfer keeps its bytes, new flows are served, and the earlier binary,
//! run again over the newer datapath, refuses it and leaves it serving,
//! while its `detach` still removes everything.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use crate::{
    agent::ONE,
    require_privileged,
    support::lab::{Lab, HAIRPIN},
    transfers::{assert_same, download, finish_download, serve_file, COMPLETE},
};

/// Where `scripts/earlier-release.sh` leaves the earlier build.
fn earlier_binary() -> PathBuf {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/earlier/hairpin"
    ));
    assert!(
        path.exists(),
        "{} is missing: scripts/earlier-release.sh builds it (scripts/test.sh runs it)",
        path.display()
    );
    path
}

fn curl_frontend(lab: &Lab) -> String {
    let out = lab.sh("n1-c1", "curl -s --max-time 3 http://203.0.113.10:8080/");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn the_previous_release_is_taken_over_with_its_flows_and_cannot_take_back_the_newer_datapath() {
    require_privileged!();
    let earlier = earlier_binary();
    let lab = Lab::up();
    let data = serve_file(&lab, "n1-b1", "big.bin", 12);
    let config = format!("{ONE}conntrack: {{ maxEntries: 1024 }}\n");
    let mut agent = lab.agent_of(&earlier, "n1", &config);
    assert_eq!(curl_frontend(&lab), "b1", "the earlier release serves");
    let (pod, pod_out) = download(&lab, "n1-c1", "big.bin", 8080, "2M");
    let (host, host_out) = download(&lab, "n1", "big.bin", 8080, "2M");
    std::thread::sleep(Duration::from_secs(2));
    let flows = |binary: &std::path::Path| -> Vec<(String, String)> {
        let out = lab.binary_output(binary, "n1", &["ct", "list", "--output", "json"]);
        assert!(out.status.success(), "{out:?}");
        let flows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        let mut keys: Vec<_> = flows
            .iter()
            .map(|f| (f["client"].to_string(), f["backend"].to_string()))
            .collect();
        keys.sort();
        keys
    };
    let before = flows(&earlier);
    assert_eq!(
        before.len(),
        3,
        "the two transfers and the request: {before:?}"
    );

    // This release over the earlier one's pins.
    agent.stop(libc::SIGTERM);
    agent.binary = PathBuf::from(HAIRPIN);
    agent.start();
    let log = agent.log_text();
    assert!(
        log.contains(
            "pinned as LruHash of 1024 entries, Hash of 1024 wanted: migrating its entries"
        ),
        "the conntrack table is migrated:\n{log}"
    );
    assert_eq!(
        flows(std::path::Path::new(HAIRPIN)),
        before,
        "the same flows"
    );
    for (bg, out, who) in [(pod, pod_out, "pod"), (host, host_out, "host")] {
        assert_eq!(
            finish_download(bg, Duration::from_secs(40)),
            COMPLETE,
            "{who} download"
        );
        assert_same(&out, &data, &format!("{who} client across the upgrade"));
    }
    assert_eq!(curl_frontend(&lab), "b1", "a new flow after the upgrade");
    let status = lab.hairpin("n1", &["status"]);
    let v = hairpin_common::LAYOUT_VERSION;
    assert!(
        status.contains(&format!("datapath: layout {v}; this binary's: {v}")),
        "{status}"
    );

    // The earlier release again: it refuses the newer datapath, which
    // serves on.
    agent.stop(libc::SIGTERM);
    let cfg = agent.config.display().to_string();
    let refused = lab.binary_output(&earlier, "n1", &["run", "--config", &cfg]);
    assert!(!refused.status.success(), "the downgrade is refused");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains(&format!(
            "has layout {v}, newer than this binary's {}: it is not adopted",
            v - 1
        )),
        "{said}"
    );
    assert_eq!(curl_frontend(&lab), "b1", "the newer datapath serves on");

    // And its detach removes what the newer release installed: every link
    // and map (the directory of a program it does not know stays, empty).
    let detached = lab.binary_output(&earlier, "n1", &["detach"]);
    assert!(detached.status.success(), "{detached:?}");
    let left = pins_under(&agent.pin_dir);
    assert!(left.is_empty(), "pins left: {left:?}");
    let status = lab.hairpin("n1", &["status", "--output", "json"]);
    assert_eq!(status.trim(), "[]", "programs left on the hooks: {status}");
    assert_eq!(curl_frontend(&lab), "", "no longer translated");
}

/// The pins (files) under `dir`, at any depth.
fn pins_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .flat_map(|p| if p.is_dir() { pins_under(&p) } else { vec![p] })
        .collect()
}
