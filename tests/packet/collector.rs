//! The agent's conntrack collector on a real map: bounded steps that cover
//! the whole table, flows judged with both their entries.

use hairpin::{
    conntrack::sweep::Sweeper,
    datapath::clock::monotonic_ns,
    datapath::loader::{Datapath, LoadOptions},
};
use hairpin_common::{
    CtDir, CtEntryV4, CtKeyV4, CtOrigin, CtTimeouts, EndReason, EventKind, IPPROTO_TCP,
    IPPROTO_UDP, NS_PER_SEC, SEEN_ACK,
};

use crate::require_privileged;

/// Both entries of a flow from client port `port`, last seen `age_s` ago.
fn flow(port: u16, proto: u8, age_s: u64, now: u64) -> [(CtKeyV4, CtEntryV4); 2] {
    let key = CtKeyV4 {
        saddr: u32::from_ne_bytes([198, 51, 100, 3]),
        daddr: u32::from_ne_bytes([203, 0, 113, 10]),
        sport: port.to_be(),
        dport: 8080u16.to_be(),
        proto,
        _pad: 0,
        _pad2: 0,
    };
    let nat = CtKeyV4 {
        daddr: u32::from_ne_bytes([198, 51, 100, 2]),
        dport: 80u16.to_be(),
        ..key
    };
    let seen = now - age_s * NS_PER_SEC;
    let fwd = CtEntryV4 {
        nat,
        created_ns: seen,
        last_seen_ns: seen,
        frontend_id: 0,
        dir: CtDir::Forward as u8,
        origin: CtOrigin::Pod as u8,
        seen: SEEN_ACK,
        _pad: 0,
    };
    let rev = CtEntryV4 {
        nat: key.reversed(),
        dir: CtDir::Reverse as u8,
        ..fwd
    };
    [(key, fwd), (nat.reversed(), rev)]
}

#[test]
fn the_collector_covers_a_large_table_in_bounded_steps() {
    require_privileged!();
    let mut dp = Datapath::load(&LoadOptions::default(), None).expect("load the datapath");
    let mut maps = dp.take_maps().expect("maps");
    // The collector is told the time: an hour ahead of the clock, so that
    // entries two minutes old exist on a machine up for less (a VM).
    let now = monotonic_ns() + 3600 * NS_PER_SEC;
    let t = CtTimeouts::default();
    // UDP idle 2 min ago: expired (60 s); TCP established 2 min ago: alive.
    // Mostly live flows: a collector that started over at every step would
    // keep looking at the same live entries and never reach the rest.
    let (expired, alive) = (500u16, 4000u16);
    for port in 0..expired {
        for (k, e) in flow(10_000 + port, IPPROTO_UDP, 120, now) {
            maps.v4.conntrack.insert(k, e, 0).expect("insert");
        }
    }
    for port in 0..alive {
        for (k, e) in flow(20_000 + port, IPPROTO_TCP, 120, now) {
            maps.v4.conntrack.insert(k, e, 0).expect("insert");
        }
    }
    // A flow whose forward entry is stale but whose reply came just now
    // lives on: the pair is judged on its latest packet.
    let [(fk, mut fe), (rk, mut re)] = flow(30_000, IPPROTO_UDP, 120, now);
    re.last_seen_ns = now;
    fe.last_seen_ns = now - 120 * NS_PER_SEC;
    maps.v4.conntrack.insert(fk, fe, 0).expect("insert");
    maps.v4.conntrack.insert(rk, re, 0).expect("insert");

    let budget = 1000;
    let total = 2 * usize::from(expired + alive) + 2;
    let mut sweeper = Sweeper::default();
    let (mut steps, mut removed, mut told) = (0, 0, Vec::new());
    // One pass over the table, and one step more for the wrap.
    while removed < 2 * usize::from(expired) && steps < total / budget + 2 {
        let s = sweeper
            .step(&mut maps.v4.conntrack, &t, now, budget)
            .expect("step");
        assert!(
            s.entries <= budget,
            "a step looked at {} entries",
            s.entries
        );
        removed += s.removed;
        told.extend(s.expired);
        steps += 1;
    }
    // Each expired flow is told to the monitors once, from its client.
    let mut ports: Vec<u16> = told.iter().map(|e| u16::from_be(e.client_port)).collect();
    ports.sort_unstable();
    assert_eq!(ports, (10_000..10_000 + expired).collect::<Vec<_>>());
    assert!(told.iter().all(|e| e.kind == EventKind::Ended as u8
        && e.detail == EndReason::Expired as u8
        && e.backend_port == 80u16.to_be()));
    assert_eq!(
        removed,
        2 * usize::from(expired),
        "every expired entry goes, both of each flow"
    );
    assert!(steps > 1, "the table took several bounded steps ({steps})");
    let left = maps.v4.conntrack.keys().filter(Result::is_ok).count();
    assert_eq!(
        left,
        2 * usize::from(alive) + 2,
        "live flows stay, both entries"
    );
    assert!(
        maps.v4.conntrack.get(&fk, 0).is_ok(),
        "a flow alive by its reply stays"
    );
}
