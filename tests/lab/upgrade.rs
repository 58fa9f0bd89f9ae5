//! A new agent over pins an older one left: a map of another capacity or
//! of an earlier layout is migrated with its entries (a conntrack table
//! resized keeps its flows), and a start that fails leaves the datapath as
//! it was (tests/lab/conntrack_layouts.rs has the conntrack tables of other
//! layouts).

use std::{
    fs,
    mem::size_of,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use aya::maps::{Map, MapData, MapInfo, PerCpuArray, PerCpuValues};

use crate::{
    agent::ONE,
    require_privileged,
    support::lab::Lab,
    transfers::{assert_same, download, finish_download, serve_file, COMPLETE},
};

fn ct_capacity(pin_dir: &std::path::Path) -> u32 {
    MapInfo::from_pin(pin_dir.join("maps/CT_V4"))
        .expect("the pinned conntrack")
        .max_entries()
}

/// Puts in place of the map pinned as `name` one that `bpftool map create`
/// makes of `spec` ("type … key … value … entries …"), once `fill` wrote
/// it from the old one (old, new); returns the pin.
pub fn swap_pin(
    pin_dir: &Path,
    name: &str,
    spec: &str,
    fill: impl FnOnce(MapData, MapData),
) -> PathBuf {
    let pin = pin_dir.join("maps").join(name);
    let new = pin_dir.join("maps").join(format!("{name}_NEW"));
    let made = Command::new("bpftool")
        .args(["map", "create"])
        .arg(&new)
        .args(spec.split(' '))
        .args(["name", name])
        .output()
        .expect("bpftool (scripts/setup.sh installs it)");
    assert!(made.status.success(), "{made:?}");
    fill(
        MapData::from_pin(&pin).unwrap(),
        MapData::from_pin(&new).unwrap(),
    );
    fs::remove_file(&pin).unwrap();
    // A pin moves by pinning again.
    MapData::from_pin(&new).unwrap().pin(&pin).unwrap();
    fs::remove_file(&new).unwrap();
    pin
}

#[test]
fn a_resized_conntrack_and_counters_of_earlier_layouts_keep_their_entries() {
    require_privileged!();
    let lab = Lab::up();
    let data = serve_file(&lab, "n1-b1", "big.bin", 16);
    let small = format!("{ONE}conntrack: {{ maxEntries: 1024 }}\n");
    let mut agent = lab.agent("n1", &small);
    assert_eq!(ct_capacity(&agent.pin_dir), 1024);
    let (pod, pod_out) = download(&lab, "n1-c1", "big.bin", 8080, "2M");
    let (host, host_out) = download(&lab, "n1", "big.bin", 8080, "2M");
    std::thread::sleep(Duration::from_secs(2));

    // A larger table: migrated, with the running flows.
    let flows = |lab: &Lab| -> Vec<serde_json::Value> {
        serde_json::from_str(&lab.hairpin("n1", &["ct", "list", "--output", "json"]))
            .expect("ct list json")
    };
    let before = flows(&lab);
    assert_eq!(before.len(), 2, "the two transfers: {before:?}");
    agent.stop(libc::SIGTERM);
    fs::write(
        &agent.config,
        format!("{ONE}conntrack: {{ maxEntries: 65536 }}\n"),
    )
    .unwrap();
    agent.start();
    assert_eq!(ct_capacity(&agent.pin_dir), 65536, "the table was resized");
    let key = |f: &serde_json::Value| (f["client"].clone(), f["backend"].clone());
    let after = flows(&lab);
    assert_eq!(
        after.iter().map(key).collect::<Vec<_>>(),
        before.iter().map(key).collect::<Vec<_>>(),
        "the same flows, on the same backends"
    );
    let log = agent.log_text();
    assert!(
        log.contains("pinned with 1024 entries, 65536 wanted: migrating its entries"),
        "the log says so:\n{log}"
    );
    for (bg, out, who) in [(pod, pod_out, "pod"), (host, host_out, "host")] {
        assert_eq!(
            finish_download(bg, Duration::from_secs(40)),
            COMPLETE,
            "{who} download"
        );
        assert_same(&out, &data, &format!("{who} client across the resize"));
    }

    // An older datapath's counters, six of them (before `refused` and
    // `backend_skipped`): migrated, their values kept.
    agent.stop(libc::SIGTERM);
    let stats = swap_pin(
        &agent.pin_dir,
        "GLOBAL_STATS",
        "type percpu_array key 4 value 8 entries 6",
        |_, _| {},
    );
    // And per-frontend counters of layout 1 (three, before the socket
    // path's two): migrated, the three kept, the two from zero.
    let per_frontend = swap_pin(
        &agent.pin_dir,
        "FRONTEND_STATS",
        "type percpu_array key 4 value 24 entries 16384",
        |_, new| {
            let mut earlier: PerCpuArray<MapData, [u64; 3]> =
                PerCpuArray::try_from(Map::PerCpuArray(new)).unwrap();
            let cpus = aya::util::nr_cpus().unwrap();
            for id in 0..4u32 {
                let v = vec![[1000 + u64::from(id), 2000, 3]; cpus];
                earlier
                    .set(id, PerCpuValues::try_from(v).unwrap(), 0)
                    .unwrap();
            }
        },
    );
    agent.start();
    let log = agent.log_text();
    assert!(
        log.contains(&format!(
            "pinned with 6 entries, {} wanted: migrating its entries",
            hairpin_common::GLOBAL_COUNTERS
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "pinned with values of 24 bytes, an earlier layout of this binary's {}",
            size_of::<hairpin_common::FrontendStats>()
        )),
        "{log}"
    );
    {
        let grown: PerCpuArray<MapData, hairpin_common::FrontendStats> =
            PerCpuArray::try_from(Map::PerCpuArray(MapData::from_pin(&per_frontend).unwrap()))
                .unwrap();
        for id in 0..4u32 {
            for s in grown.get(&id, 0).unwrap().iter() {
                assert!(
                    s.packets >= 1000 + u64::from(id) && s.bytes >= 2000 && s.flows >= 3,
                    "frontend {id}'s counters kept: {s:?}"
                );
                assert_eq!((s.sock_connects, s.sock_datagrams), (0, 0), "{s:?}");
            }
        }
    }
    let stats = MapInfo::from_pin(&stats).expect("the new counters");
    assert_eq!(
        stats.max_entries(),
        hairpin_common::GLOBAL_COUNTERS,
        "every counter has its slot"
    );
    let table = lab.hairpin("n1", &["list"]);
    assert!(table.contains("backend_skipped=0"), "{table}");
    let metrics = lab.sh_ok("n1", "curl -s http://127.0.0.1:9469/metrics");
    for (map, outcome) in [("GLOBAL_STATS", "migrated"), ("FRONTEND_STATS", "migrated")] {
        assert!(
            metrics.contains(&format!(
                "hairpin_maps_at_start{{map=\"{map}\",outcome=\"{outcome}\"}} 1"
            )),
            "{map} {outcome} in the metrics:\n{metrics}"
        );
    }
    let status = lab.hairpin("n1", &["status"]);
    assert!(
        status.contains(&format!(
            "datapath: layout {v}; this binary's: {v}",
            v = hairpin_common::LAYOUT_VERSION
        )),
        "{status}"
    );

    // A datapath newer than this binary: not adopted, left serving.
    agent.stop(libc::SIGTERM);
    let layout = agent.pin_dir.join("maps/LAYOUT");
    let set = Command::new("bpftool")
        .args(["map", "update", "pinned"])
        .arg(&layout)
        .args(["key", "0", "0", "0", "0", "value", "99", "0", "0", "0"])
        .output()
        .expect("bpftool");
    assert!(set.status.success(), "{set:?}");
    let config = agent.config.display().to_string();
    let refused = lab.hairpin_output("n1", &["run", "--config", &config]);
    assert!(!refused.status.success(), "a newer datapath is refused");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains(&format!(
            "has layout 99, newer than this binary's {}: it is not adopted",
            hairpin_common::LAYOUT_VERSION
        )),
        "{said}"
    );
    assert_eq!(
        ct_capacity(&agent.pin_dir),
        65536,
        "the pins stay as they were"
    );
    assert_eq!(
        lab.sh_ok("n1-c1", "curl -s --max-time 3 http://203.0.113.10:8080/")
            .trim(),
        "b1",
        "the datapath serves on"
    );
}

#[test]
fn a_start_whose_load_fails_leaves_the_datapath_and_its_flows_as_they_were() {
    require_privileged!();
    let lab = Lab::up();
    let data = serve_file(&lab, "n1-b1", "big.bin", 12);
    let small = format!("{ONE}conntrack: {{ maxEntries: 1024 }}\n");
    let mut agent = lab.agent("n1", &small);
    let (pod, pod_out) = download(&lab, "n1-c1", "big.bin", 8080, "2M");
    let (host, host_out) = download(&lab, "n1", "big.bin", 8080, "2M");
    std::thread::sleep(Duration::from_secs(2));
    agent.stop(libc::SIGTERM);

    // A table larger than the kernel makes: the migration's new map cannot
    // be created, after the old pins were set aside.
    let huge = lab.run_dir().join("huge.yaml");
    fs::write(
        &huge,
        format!("{ONE}conntrack: {{ maxEntries: 4000000000 }}\n"),
    )
    .unwrap();
    let failed = lab.hairpin_output("n1", &["run", "--config", &huge.display().to_string()]);
    assert!(!failed.status.success(), "the load fails");
    let said = String::from_utf8_lossy(&failed.stderr);
    assert!(said.contains("kept as it was pinned"), "{said}");
    assert_eq!(
        ct_capacity(&agent.pin_dir),
        1024,
        "the old table is pinned again"
    );
    let flows: Vec<serde_json::Value> =
        serde_json::from_str(&lab.hairpin("n1", &["ct", "list", "--output", "json"])).unwrap();
    assert_eq!(flows.len(), 2, "with the transfers' flows: {flows:?}");
    let aside = fs::read_dir(agent.pin_dir.join("maps"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with("_OLD"))
        .count();
    assert_eq!(aside, 0, "nothing left aside");

    // The next start adopts it, the transfers never noticed.
    agent.start();
    for (bg, out, who) in [(pod, pod_out, "pod"), (host, host_out, "host")] {
        assert_eq!(
            finish_download(bg, Duration::from_secs(40)),
            COMPLETE,
            "{who} download"
        );
        assert_same(
            &out,
            &data,
            &format!("{who} client across the failed start"),
        );
    }
}
