//! A full conntrack table never kills a flow: a pod's and a host's long
//! transfers go on, byte for byte, while the table is filled from the test
//! itself (an LRU table would evict the transfers' entries) and churned
//! well past its capacity by new flows from pods and the host; the new
//! flows that do not fit are refused and counted, and room is made again
//! from the flows that are not established.

use std::{
    thread::sleep,
    time::{Duration, Instant},
};

use aya::maps::{HashMap, Map, MapData};
use hairpin_common::{CtDir, CtEntryV4, CtKeyV4, IPPROTO_TCP, SEEN_SYN};

use crate::{
    agent::ONE,
    monitor::metric,
    require_privileged,
    support::lab::{Lab, FRONTEND},
    transfers::{assert_same, download, finish_download, serve_file, COMPLETE},
    NEW_UDP_FLOWS,
};

/// Inserts `n` half-open flows of another client straight into the pinned
/// table, as a SYN flood would make them: how many it took.
fn fill(pin_dir: &std::path::Path, n: u16) -> usize {
    let data = MapData::from_pin(pin_dir.join("maps/CT_V4")).expect("the pinned conntrack");
    let map = match data.info().and_then(|i| i.map_type()) {
        Ok(aya::maps::MapType::LruHash) => Map::LruHashMap(data),
        _ => Map::HashMap(data),
    };
    let mut ct: HashMap<MapData, CtKeyV4, CtEntryV4> = HashMap::try_from(map).unwrap();
    let flooder = u32::from_ne_bytes([198, 51, 100, 99]);
    let frontend = u32::from_ne_bytes([203, 0, 113, 10]);
    // Fresh: the collector alone would keep them for the SYN lifetime.
    let now = hairpin::datapath::clock::monotonic_ns();
    (0..n)
        .filter(|i| {
            let key = CtKeyV4 {
                saddr: flooder,
                daddr: frontend,
                sport: (10_000 + i).to_be(),
                dport: 8080u16.to_be(),
                proto: IPPROTO_TCP,
                _pad: 0,
                _pad2: 0,
            };
            let e = CtEntryV4 {
                nat: key,
                dir: CtDir::Forward as u8,
                seen: SEEN_SYN,
                created_ns: now,
                last_seen_ns: now,
                ..CtEntryV4::default()
            };
            ct.insert(key, e, 0).is_ok()
        })
        .count()
}

#[test]
fn a_full_table_refuses_new_flows_and_never_cuts_a_running_one() {
    require_privileged!();
    let lab = Lab::up();
    let data = serve_file(&lab, "n1-b1", "big.bin", 16);
    let agent = lab.agent("n1", &format!("{ONE}conntrack: {{ maxEntries: 1024 }}\n"));
    let (pod, pod_out) = download(&lab, "n1-c1", "big.bin", 8080, "1M");
    let (host, host_out) = download(&lab, "n1", "big.bin", 8080, "1M");
    sleep(Duration::from_secs(1));

    // Ten times the table, at once.
    let took = fill(&agent.pin_dir, 10_240);
    assert!(took < 1024, "a full table takes no more: {took}");
    // And new flows from a pod and the host, four times the table.
    for (ns, first) in [("n1-c1", 20_000), ("n1", 30_000)] {
        lab.sh_ok(
            ns,
            &format!("python3 -c '{NEW_UDP_FLOWS}' {FRONTEND} 2048 {first}"),
        );
    }
    assert!(
        metric(
            &lab,
            "hairpin_datapath_events_total{counter=\"ct_insert_failed\"} "
        ) > 0,
        "new flows were refused"
    );

    // Room is made from what is not established: new flows are served
    // again.
    let start = Instant::now();
    loop {
        let got = lab.sh(
            "n1-c1",
            &format!("curl -s --max-time 2 http://{FRONTEND}:8080/"),
        );
        if String::from_utf8_lossy(&got.stdout).trim() == "b1" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no room was made for new flows"
        );
        sleep(Duration::from_millis(500));
    }
    assert!(metric(&lab, "hairpin_conntrack_relieved_flows_total ") > 0);

    for (bg, out, who) in [(pod, pod_out, "pod"), (host, host_out, "host")] {
        assert_eq!(
            finish_download(bg, Duration::from_secs(60)),
            COMPLETE,
            "{who} download"
        );
        assert_same(&out, &data, &format!("{who} client through a full table"));
    }
}
