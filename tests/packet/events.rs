//! Monitor events: none while no one listens, one per flow start and end
//! (never one per packet), the filters the datapath applies itself, and a
//! full ring's losses counted. Events are read as `hairpin monitor` shows
//! them (`Shown::decode`).

use std::net::SocketAddr;

use hairpin::monitor::{
    event::Shown,
    filter::{self, Filter},
};
use hairpin_common::{Counter, MonitorConfig, DEFAULT_EVENT_KINDS};

use crate::{
    families::{flow, Family},
    fixtures::{frontend_id, standard_tables},
    frames::{IPPROTO_TCP, IPPROTO_UDP, TCP_ACK, TCP_FIN, TCP_SYN},
    harness::Harness,
    model::Hook,
    require_privileged,
};

family_tests!(both: [
    nothing_is_reported_until_a_monitor_listens_then_one_event_per_flow_start,
    a_flows_first_fin_is_its_one_end_event,
    the_datapath_applies_the_filters_every_monitor_shares,
    a_full_ring_loses_events_and_counts_them,
]);

fn defaults() -> MonitorConfig {
    MonitorConfig {
        kinds: DEFAULT_EVENT_KINDS,
        ..MonitorConfig::default()
    }
}

fn shown(h: &mut Harness) -> Vec<Shown> {
    h.events()
        .iter()
        .map(|e| Shown::decode(e).expect("an event this binary knows"))
        .collect()
}

/// Opens a pod's TCP flow to WEB from `port`: its backend.
fn open<F: Family>(h: &mut Harness, port: u16) -> F::Sock {
    let client = F::sock(F::POD_CLIENT, port);
    let syn = flow::<F>(IPPROTO_TCP, client, F::WEB, b"").bytes();
    F::endpoints(&h.expect_step(Hook::PodIngress, &syn).out).1
}

fn nothing_is_reported_until_a_monitor_listens_then_one_event_per_flow_start<F: Family>() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    open::<F>(&mut h, 40001);
    assert!(h.events().is_empty(), "no one listens: nothing is reported");

    h.listen(defaults());
    let client = F::sock(F::POD_CLIENT, 40002);
    let backend = open::<F>(&mut h, 40002);
    let ack = flow::<F>(IPPROTO_TCP, client, F::WEB, b"data")
        .with_tcp_flags(TCP_ACK)
        .bytes();
    for _ in 0..3 {
        h.expect_step(Hook::PodIngress, &ack);
    }
    let events = shown(&mut h);
    assert_eq!(events.len(), 1, "one event for the flow: {events:?}");
    let e = &events[0];
    assert_eq!((e.kind.as_str(), e.proto.as_str()), ("opened", "tcp"));
    assert_eq!((e.hook.as_str(), e.path.as_str()), ("pod_ingress", "pod"));
    assert_eq!(e.client, Some(client.into()));
    assert_eq!(e.frontend, Some(F::WEB.into()));
    assert_eq!(e.backend, Some(backend.into()));

    // A host's flow, opened on the uplink.
    let host = F::sock(F::HOST_CLIENT, 40003);
    let udp = flow::<F>(IPPROTO_UDP, host, F::DNS, b"q").bytes();
    let step = h.expect_step(Hook::UplinkEgress, &udp);
    let events = shown(&mut h);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0].hook.as_str(), events[0].path.as_str()),
        ("uplink_egress", "uplink")
    );
    let to: SocketAddr = F::endpoints(&step.out).1.into();
    assert_eq!(events[0].backend, Some(to));
    assert_eq!(events[0].proto, "udp");
}

fn a_flows_first_fin_is_its_one_end_event<F: Family>() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    h.listen(defaults());
    let client = F::sock(F::POD_CLIENT, 40010);
    let backend = open::<F>(&mut h, 40010);
    let segment = |src, dst, flags| {
        flow::<F>(IPPROTO_TCP, src, dst, b"")
            .with_tcp_flags(flags)
            .bytes()
    };
    h.expect_step(
        Hook::PodEgress,
        &segment(backend, client, TCP_SYN | TCP_ACK),
    );
    h.expect_step(Hook::PodIngress, &segment(client, F::WEB, TCP_ACK));
    assert_eq!(shown(&mut h).len(), 1, "the opening only");

    h.expect_step(
        Hook::PodIngress,
        &segment(client, F::WEB, TCP_FIN | TCP_ACK),
    );
    h.expect_step(
        Hook::PodEgress,
        &segment(backend, client, TCP_FIN | TCP_ACK),
    );
    h.expect_step(Hook::PodIngress, &segment(client, F::WEB, TCP_ACK));
    let events = shown(&mut h);
    assert_eq!(events.len(), 1, "one end for both FINs: {events:?}");
    let e = &events[0];
    assert_eq!(
        (e.kind.as_str(), e.reason.as_deref()),
        ("ended", Some("fin"))
    );
    assert_eq!(e.client, Some(client.into()));
    assert_eq!(e.frontend, Some(F::WEB.into()));
    assert_eq!(e.backend, Some(backend.into()));
}

fn the_datapath_applies_the_filters_every_monitor_shares<F: Family>() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    let client = |ip: F::Addr| {
        let ip: SocketAddr = F::sock(ip, 1).into();
        filter::kernel(
            &[&Filter {
                client: Some(ip.ip()),
                ..Filter::default()
            }],
            |_| Vec::new(),
        )
    };
    h.listen(client(F::HOST_CLIENT));
    open::<F>(&mut h, 40020);
    assert!(h.events().is_empty(), "another client's flow");
    h.listen(client(F::POD_CLIENT));
    open::<F>(&mut h, 40021);
    assert_eq!(shown(&mut h).len(), 1, "this client's flow");

    let dns = frontend_id(F::DNS, IPPROTO_UDP);
    let only = |id| {
        let fm = "192.0.2.1:53".parse().unwrap();
        filter::kernel(
            &[&Filter {
                frontend: Some(fm),
                ..Filter::default()
            }],
            move |_| vec![id],
        )
    };
    h.listen(only(dns));
    open::<F>(&mut h, 40022);
    assert!(h.events().is_empty(), "another frontend's flow");
    h.listen(only(frontend_id(F::WEB, IPPROTO_TCP)));
    open::<F>(&mut h, 40023);
    assert_eq!(shown(&mut h).len(), 1, "this frontend's flow");

    h.listen(MonitorConfig {
        kinds: filter::kinds("ended").unwrap(),
        ..MonitorConfig::default()
    });
    open::<F>(&mut h, 40024);
    assert!(h.events().is_empty(), "a kind no one asked for");
}

fn a_full_ring_loses_events_and_counts_them<F: Family>() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    h.listen(defaults());
    let before = h.counter(Counter::EventsLost);
    // More new flows than the ring holds (its size / 88 bytes an event).
    let flows = (hairpin_common::EVENTS_BYTES / 88 + 200) as u16;
    for i in 0..flows {
        let client = F::sock(F::POD_CLIENT, 10_000 + i);
        let frame = flow::<F>(IPPROTO_UDP, client, F::DNS, b"q").bytes();
        h.run_unmodelled(Hook::PodIngress, &frame);
    }
    let lost = h.counter(Counter::EventsLost) - before;
    let read = h.events().len() as u64;
    assert!(lost > 0, "the ring was full");
    assert_eq!(
        read + lost,
        u64::from(flows),
        "every flow reported or counted"
    );
}
