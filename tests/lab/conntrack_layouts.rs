//! Conntrack tables of other layouts under a new agent: an earlier
//! release's LRU table is migrated with its flows; a table this binary
//! cannot read is replaced, its flows reset and counted.

use std::{
    mem::size_of,
    time::{Duration, Instant},
};

use aya::maps::{HashMap, Map, MapData, MapInfo};
use hairpin_common::{CtEntryV4, CtKeyV4};

use crate::{
    agent::{stream_server, LISTENER, ONE},
    require_privileged,
    support::lab::Lab,
    transfers::{assert_same, download, finish_download, serve_file, COMPLETE},
    upgrade::swap_pin,
};

#[test]
fn an_lru_conntrack_of_an_earlier_release_is_migrated_with_its_flows() {
    require_privileged!();
    let lab = Lab::up();
    let data = serve_file(&lab, "n1-b1", "big.bin", 12);
    let config = format!("{ONE}conntrack: {{ maxEntries: 1024 }}\n");
    let mut agent = lab.agent("n1", &config);
    let (pod, pod_out) = download(&lab, "n1-c1", "big.bin", 8080, "2M");
    let (host, host_out) = download(&lab, "n1", "big.bin", 8080, "2M");
    std::thread::sleep(Duration::from_secs(2));
    agent.stop(libc::SIGTERM);

    // The table as releases before this one pinned it: an LRU hash of the
    // same entries.
    let pin = swap_pin(
        &agent.pin_dir,
        "CT_V4",
        "type lru_hash key 16 value 40 entries 1024",
        |now, lru| {
            let now: HashMap<MapData, CtKeyV4, CtEntryV4> =
                HashMap::try_from(Map::HashMap(now)).unwrap();
            let mut old: HashMap<MapData, CtKeyV4, CtEntryV4> =
                HashMap::try_from(Map::LruHashMap(lru)).unwrap();
            for (k, e) in now.iter().map(Result::unwrap) {
                old.insert(k, e, 0).unwrap();
            }
            assert_eq!(old.keys().count(), 4, "two flows, two entries each");
        },
    );
    agent.start();
    let log = agent.log_text();
    assert!(
        log.contains(
            "pinned as LruHash of 1024 entries, Hash of 1024 wanted: migrating its entries"
        ),
        "{log}"
    );
    let kind = MapInfo::from_pin(&pin).unwrap().map_type().unwrap();
    assert_eq!(kind, aya::maps::MapType::Hash, "a table that never evicts");
    for (bg, out, who) in [(pod, pod_out, "pod"), (host, host_out, "host")] {
        assert_eq!(
            finish_download(bg, Duration::from_secs(40)),
            COMPLETE,
            "{who} download"
        );
        assert_same(&out, &data, &format!("{who} client across the migration"));
    }
}

#[test]
fn a_conntrack_table_of_a_layout_this_binary_cannot_read_is_replaced_its_flows_reset_and_counted() {
    require_privileged!();
    let lab = Lab::up();
    // b1 streams to its port 9000; the clients only listen, so each learns
    // from b1's next segment.
    let _server = stream_server(&lab, "n1-b1");
    let config = ONE.replace(
        "      - { port: 5353, protocol: UDP, targetPort: 53 }",
        "      - { port: 5353, protocol: UDP, targetPort: 53 }\n      - { port: 9090, protocol: TCP, targetPort: 9000 }",
    );
    let mut agent = lab.agent("n1", &config);
    lab.wait_listening("n1-b1", 9000);
    let listen = |ns: &str| {
        lab.background(
            ns,
            &format!("python3 -u -c '{LISTENER}' 203.0.113.10 9090"),
            &format!("stream-{ns}.txt"),
        )
    };
    let mut clients = [("pod", listen("n1-c1")), ("host", listen("n1"))];
    std::thread::sleep(Duration::from_secs(1));
    agent.stop(libc::SIGTERM);

    // The same table in a layout of 48-byte values: the two streams' keys,
    // their values unreadable to this binary.
    let pin = swap_pin(
        &agent.pin_dir,
        "CT_V4",
        "type hash key 16 value 48 entries 1024",
        |now, foreign| {
            let now: HashMap<MapData, CtKeyV4, CtEntryV4> =
                HashMap::try_from(Map::HashMap(now)).unwrap();
            let mut foreign: HashMap<MapData, CtKeyV4, [u8; 48]> =
                HashMap::try_from(Map::HashMap(foreign)).unwrap();
            for k in now.keys().map(Result::unwrap) {
                foreign.insert(k, [0xa5; 48], 0).unwrap();
            }
            assert_eq!(foreign.keys().count(), 4, "two flows, two entries each");
        },
    );
    agent.start();
    let log = agent.log_text();
    for said in [
        "replaced, its IPv4 flows are lost: 2 flows (4 entries)",
        "TCP flows of the replaced table entered ended",
    ] {
        assert!(log.contains(said), "the log says {said:?}:\n{log}");
    }
    let info = MapInfo::from_pin(&pin).expect("the new table");
    assert_eq!(
        info.value_size() as usize,
        size_of::<hairpin_common::CtEntryV4>(),
        "a table of this binary's layout"
    );
    let metrics = lab.sh_ok("n1", "curl -s http://127.0.0.1:9469/metrics");
    for line in [
        "hairpin_maps_at_start{map=\"CT_V4\",outcome=\"replaced\"} 1",
        "hairpin_flows_lost_at_start{map=\"CT_V4\"} 2",
    ] {
        assert!(metrics.contains(line), "{line} in the metrics:\n{metrics}");
    }
    // Each stream is reset at b1's next segment, where without an entry its
    // lines would reach the client from b1's own address, which it never
    // dialled (its kernel would reset b1, and the client wait on).
    let start = Instant::now();
    while clients.iter_mut().any(|(_, c)| c.running()) && start.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(50));
    }
    for (who, client) in clients {
        let out = client.finish().trim().to_owned();
        assert!(
            out.starts_with("reset after ") && !out.starts_with("reset after 0 "),
            "the {who} client got the stream, then a reset within 3 s: {out}"
        );
    }
    assert_eq!(
        lab.sh_ok("n1-c1", "curl -s --max-time 3 http://203.0.113.10:8080/")
            .trim(),
        "b1",
        "new flows are served"
    );
}
