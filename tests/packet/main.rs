//! Packet tests: frames run through the loaded TC programs with
//! `BPF_PROG_TEST_RUN`, checked against a reference model (model.rs) and,
//! for checksums, against etherparse. No network namespace is needed.
//!
//! ```text
//!   pod 10.0.9.7 ──veth──▶ pod_ingress ─┐            ┌─ uplink_egress ──▶ wire
//!                ◀──────── pod_egress ◀─┤ node stack ├─ uplink_ingress ◀── wire
//!   host 192.0.2.2 (the node itself) ───┘            └─ routes, netfilter
//! ```
//!
//! Frontends 192.168.100.10-13 lead to backend pods 10.0.1-4.x; a flow
//! opened by a pod is translated on its veth, one opened by the host on the
//! uplink; a pod that is its own backend is turned around on its veth. The
//! same frontends exist in IPv6 (ipv6.rs), on the same loaded datapath.

#[path = "../support/mod.rs"]
mod support;

mod collector;
mod frames;
mod harness;
mod ipv6;
mod model;
mod properties;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use frames::{
    read, Frame4, Icmp, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, L4, NODE_MAC, POD_MAC, PROTOCOLS,
    TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN,
};
use hairpin_common::{Counter, CtDir, CtOrigin};
use harness::{Harness, TC_ACT_REDIRECT, TC_ACT_UNSPEC};
use model::{Action, FrontendCfg, Hook, Tables, Tuple};

const fn sa(a: [u8; 4], port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(a[0], a[1], a[2], a[3]), port)
}

/// TCP frontend with three backends.
pub const WEB: SocketAddrV4 = sa([192, 168, 100, 10], 80);
pub const WEB_BACKENDS: [SocketAddrV4; 3] = [
    sa([10, 0, 1, 1], 8080),
    sa([10, 0, 1, 2], 8080),
    sa([10, 0, 1, 3], 8081),
];
/// UDP frontend on WEB's address, with two backends.
pub const DNS: SocketAddrV4 = sa([192, 168, 100, 10], 53);
pub const DNS_BACKENDS: [SocketAddrV4; 2] = [sa([10, 0, 2, 1], 5353), sa([10, 0, 2, 2], 53)];
/// TCP and UDP frontends on one address and port, with the same single backend.
pub const SOLO: SocketAddrV4 = sa([192, 168, 100, 11], 443);
pub const SOLO_BACKEND: SocketAddrV4 = sa([10, 0, 3, 1], 8443);
/// A frontend without backends.
pub const EMPTY: SocketAddrV4 = sa([192, 168, 100, 12], 80);
/// A UDP frontend with weighted slots, one backend shared with WEB.
pub const WEIGHTED: SocketAddrV4 = sa([192, 168, 100, 13], 8080);
pub const WEIGHTED_BACKENDS: [SocketAddrV4; 4] = [
    sa([10, 0, 4, 1], 80),
    sa([10, 0, 4, 1], 80),
    sa([10, 0, 4, 2], 80),
    sa([10, 0, 1, 1], 8080),
];

pub const POD_CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 9, 7);
pub const HOST_CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
pub const ROUTER: Ipv4Addr = Ipv4Addr::new(10, 255, 0, 1);
pub const UPLINK: (u32, [u8; 6]) = (2, [0x02, 0xfc, 0x00, 0x00, 0x00, 0x01]);

pub fn frontend_id(addr: impl Into<SocketAddr>, proto: u8) -> u32 {
    let addr = addr.into();
    standard_tables()
        .frontends
        .iter()
        .find(|f| f.addr == addr && f.proto == proto)
        .map(|f| f.id)
        .expect("a frontend of the standard tables")
}

fn fe<A: Into<SocketAddr> + Copy>(id: u32, addr: A, proto: u8, backends: &[A]) -> FrontendCfg {
    FrontendCfg {
        id,
        addr: addr.into(),
        proto,
        backends: backends.iter().map(|&b| b.into()).collect(),
    }
}

/// The IPv4 frontends (ids 0-5) and the IPv6 ones (ids 6-11: both
/// families count in one `FRONTEND_STATS`).
pub fn standard_tables() -> Tables {
    let mut frontends = vec![
        fe(0, WEB, IPPROTO_TCP, &WEB_BACKENDS),
        fe(1, DNS, IPPROTO_UDP, &DNS_BACKENDS),
        fe(2, SOLO, IPPROTO_TCP, &[SOLO_BACKEND]),
        fe(3, SOLO, IPPROTO_UDP, &[SOLO_BACKEND]),
        fe(4, EMPTY, IPPROTO_TCP, &[]),
        fe(5, WEIGHTED, IPPROTO_UDP, &WEIGHTED_BACKENDS),
    ];
    frontends.extend(ipv6::frontends());
    Tables {
        frontends,
        uplink: Some(UPLINK),
    }
}

/// The frontend of `proto` with several backends.
fn multi(proto: u8) -> (SocketAddrV4, &'static [SocketAddrV4]) {
    if proto == IPPROTO_TCP {
        (WEB, &WEB_BACKENDS)
    } else {
        (DNS, &DNS_BACKENDS)
    }
}

fn proto_name(proto: u8) -> &'static str {
    match proto {
        IPPROTO_TCP => "TCP",
        IPPROTO_UDP => "UDP",
        _ => "other",
    }
}

/// Runs `frame` at every hook and asserts that it leaves bit-identical with
/// `TC_ACT_UNSPEC`, as the model also says.
fn assert_untouched_everywhere(h: &mut Harness, frame: &[u8], what: &str) {
    for hook in Hook::ALL {
        let step = h.expect_step(hook, frame);
        assert_eq!(
            step.expected.action,
            Action::Untouched,
            "the model translates {what} at {hook:?}"
        );
        assert_eq!(
            step.verdict, TC_ACT_UNSPEC,
            "verdict for {what} at {hook:?}"
        );
        assert!(step.out == frame, "{what} was changed at {hook:?}");
    }
}

/// Asserts the conntrack entries of a flow of either family: the forward
/// one keyed by the client's tuple, the reverse one keyed by the backend's
/// reply tuple.
fn assert_flow_entries(h: &Harness, client: &Tuple, to: &Tuple, origin: CtOrigin) {
    let fwd = h
        .entry(client)
        .unwrap_or_else(|| panic!("no forward conntrack entry for {client:?}"));
    assert_eq!(
        fwd.dir,
        CtDir::Forward as u8,
        "direction of the forward entry"
    );
    assert_eq!(fwd.origin, origin as u8, "origin of the forward entry");
    assert_eq!(fwd.nat, *to, "tuple the forward entry leads to");
    let rev = h
        .entry(&to.reversed())
        .unwrap_or_else(|| panic!("no reverse conntrack entry for {:?}", to.reversed()));
    assert_eq!(
        rev.dir,
        CtDir::Reverse as u8,
        "direction of the reverse entry"
    );
    assert_eq!(rev.origin, origin as u8, "origin of the reverse entry");
    assert_eq!(
        rev.nat,
        client.reversed(),
        "tuple the reverse entry leads to"
    );
}

fn check_counters(h: &Harness) {
    h.check_counters().unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_pod_flow_goes_to_one_of_the_frontends_backends_and_replies_come_back_from_the_frontend() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    for proto in PROTOCOLS {
        let p = proto_name(proto);
        let (fe, backends) = multi(proto);
        let client = SocketAddrV4::new(POD_CLIENT, 40001);
        let fwd = Frame4::flow(proto, client, fe, b"hello").bytes();

        let step = h.expect_step(Hook::PodIngress, &fwd);
        assert_eq!(
            step.verdict, TC_ACT_UNSPEC,
            "{p}: a pod's packet goes on to the stack"
        );
        let (src, backend) = read::endpoints(&step.out);
        assert_eq!(src, client, "{p}: the backend sees the client as it is");
        assert!(
            backends.contains(&backend),
            "{p}: {backend} is not a backend of {fe}"
        );
        assert_eq!(
            frames::macs(&step.out),
            (NODE_MAC, POD_MAC),
            "{p}: MACs unchanged"
        );
        let key = Tuple::new(proto, client, fe);
        assert_flow_entries(&h, &key, &Tuple::new(proto, client, backend), CtOrigin::Pod);

        let reply = Frame4::flow(proto, backend, client, b"world")
            .with_tcp_flags(TCP_SYN | TCP_ACK)
            .bytes();
        let step = h.expect_step(Hook::PodEgress, &reply);
        assert_eq!(
            step.verdict, TC_ACT_UNSPEC,
            "{p}: a reply goes on to the pod"
        );
        assert_eq!(
            read::endpoints(&step.out),
            (fe, client),
            "{p}: the reply comes from the frontend"
        );

        // Each packet is translated at one hook only.
        for hook in [Hook::PodIngress, Hook::UplinkIngress, Hook::UplinkEgress] {
            let step = h.expect_step(hook, &reply);
            assert!(
                step.out == reply,
                "{p}: a pod flow's reply was changed at {hook:?}"
            );
        }
        for hook in [Hook::PodEgress, Hook::UplinkEgress, Hook::UplinkIngress] {
            let step = h.expect_step(hook, &fwd);
            assert!(
                step.out == fwd,
                "{p}: a pod flow's request was changed at {hook:?}"
            );
        }
    }
    check_counters(&h);
}

#[test]
fn a_pod_reaching_itself_through_a_frontend_is_turned_around_on_its_own_veth() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    for proto in PROTOCOLS {
        let p = proto_name(proto);
        let client = SocketAddrV4::new(*SOLO_BACKEND.ip(), 40002);
        let fwd = Frame4::flow(proto, client, SOLO, b"me?").bytes();

        let step = h.expect_step(Hook::PodIngress, &fwd);
        assert_eq!(
            step.verdict, TC_ACT_REDIRECT,
            "{p}: the packet goes back to the pod"
        );
        let looped_src = SocketAddrV4::new(*SOLO.ip(), client.port());
        assert_eq!(
            read::endpoints(&step.out),
            (looped_src, SOLO_BACKEND),
            "{p}: the pod receives its request from the frontend's address"
        );
        assert_eq!(
            frames::macs(&step.out),
            (POD_MAC, NODE_MAC),
            "{p}: MACs swapped"
        );
        let key = Tuple::new(proto, client, SOLO);
        assert_flow_entries(
            &h,
            &key,
            &Tuple::new(proto, looped_src, SOLO_BACKEND),
            CtOrigin::Loop,
        );

        let reply = Frame4::flow(proto, SOLO_BACKEND, looped_src, b"you!")
            .with_tcp_flags(TCP_SYN | TCP_ACK)
            .bytes();
        let step = h.expect_step(Hook::PodIngress, &reply);
        assert_eq!(
            step.verdict, TC_ACT_REDIRECT,
            "{p}: the reply goes back to the pod"
        );
        assert_eq!(
            read::endpoints(&step.out),
            (SOLO, client),
            "{p}: the reply comes from the frontend"
        );
        assert_eq!(
            frames::macs(&step.out),
            (POD_MAC, NODE_MAC),
            "{p}: MACs swapped"
        );
        let step = h.expect_step(Hook::PodEgress, &reply);
        assert!(
            step.out == reply,
            "{p}: a looped reply was changed at pod egress"
        );
    }
    check_counters(&h);
}

#[test]
fn a_host_flow_is_translated_on_the_uplink_egress_and_its_replies_where_they_enter() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    for proto in PROTOCOLS {
        let p = proto_name(proto);
        let (fe, backends) = multi(proto);
        let client = SocketAddrV4::new(HOST_CLIENT, 50001);
        let fwd = Frame4::flow(proto, client, fe, b"from the host").bytes();

        // The verdict depends on the routes of the test's namespace; the
        // bytes other than the MACs are checked against the model.
        let step = h.expect_step(Hook::UplinkEgress, &fwd);
        let (src, backend) = read::endpoints(&step.out);
        assert_eq!(src, client, "{p}: the backend sees the host as it is");
        assert!(
            backends.contains(&backend),
            "{p}: {backend} is not a backend of {fe}"
        );
        let key = Tuple::new(proto, client, fe);
        assert_flow_entries(
            &h,
            &key,
            &Tuple::new(proto, client, backend),
            CtOrigin::Host,
        );

        let reply = Frame4::flow(proto, backend, client, b"to the host")
            .with_tcp_flags(TCP_SYN | TCP_ACK)
            .bytes();
        let step = h.expect_step(Hook::UplinkIngress, &reply);
        assert_eq!(
            step.verdict, TC_ACT_UNSPEC,
            "{p}: a reply from the wire goes on"
        );
        assert_eq!(
            read::endpoints(&step.out),
            (fe, client),
            "{p}: from the frontend"
        );

        let step = h.expect_step(Hook::PodIngress, &reply);
        assert_eq!(
            step.verdict, TC_ACT_REDIRECT,
            "{p}: a reply from a local pod is redirected to the uplink's ingress"
        );
        assert_eq!(
            read::endpoints(&step.out),
            (fe, client),
            "{p}: from the frontend"
        );
        assert_eq!(
            frames::macs(&step.out),
            (UPLINK.1, POD_MAC),
            "{p}: addressed to the uplink's MAC"
        );

        let step = h.expect_step(Hook::PodEgress, &reply);
        assert!(
            step.out == reply,
            "{p}: a host flow's reply was changed at pod egress"
        );
        let step = h.expect_step(Hook::PodIngress, &fwd);
        assert!(
            step.out == fwd,
            "{p}: a host flow's request was changed at pod ingress"
        );
    }
    check_counters(&h);
}

#[test]
fn a_host_flows_reply_from_a_pod_passes_untouched_while_the_uplink_is_unknown() {
    require_privileged!();
    let mut h = Harness::new(Tables {
        uplink: None,
        ..standard_tables()
    });
    for proto in PROTOCOLS {
        let p = proto_name(proto);
        let client = SocketAddrV4::new(HOST_CLIENT, 50002);
        let fwd = Frame4::flow(proto, client, SOLO, b"").bytes();
        h.expect_step(Hook::UplinkEgress, &fwd);
        let reply = Frame4::flow(proto, SOLO_BACKEND, client, b"").bytes();
        let failed = h.counter(Counter::RedirectFailed);
        let step = h.expect_step(Hook::PodIngress, &reply);
        assert_eq!(
            step.verdict, TC_ACT_UNSPEC,
            "{p}: verdict without an uplink"
        );
        assert!(
            step.out == reply,
            "{p}: the reply was changed without an uplink to send it to"
        );
        assert_eq!(
            h.counter(Counter::RedirectFailed),
            failed + 1,
            "{p}: the failed redirect is counted"
        );
        let step = h.expect_step(Hook::UplinkIngress, &reply);
        assert_eq!(
            read::endpoints(&step.out),
            (SOLO, client),
            "{p}: on the uplink it is translated"
        );
    }
    check_counters(&h);
}

#[test]
fn a_zero_udp_checksum_stays_zero() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    let client = SocketAddrV4::new(POD_CLIENT, 40003);
    let mut f = Frame4::flow(IPPROTO_UDP, client, SOLO, b"no checksum");
    let L4::Udp(u) = &mut f.l4 else {
        unreachable!()
    };
    u.no_checksum = true;
    let step = h.expect_step(Hook::PodIngress, &f.bytes());
    assert_eq!(
        read::endpoints(&step.out).1,
        SOLO_BACKEND,
        "translated to the backend"
    );
    assert_eq!(
        &read::l4(&step.out)[6..8],
        &[0, 0],
        "the checksum stays absent"
    );

    let mut r = Frame4::flow(IPPROTO_UDP, SOLO_BACKEND, client, b"none either");
    let L4::Udp(u) = &mut r.l4 else {
        unreachable!()
    };
    u.no_checksum = true;
    let step = h.expect_step(Hook::PodEgress, &r.bytes());
    assert_eq!(
        read::endpoints(&step.out).0,
        SOLO,
        "the reply is translated"
    );
    assert_eq!(
        &read::l4(&step.out)[6..8],
        &[0, 0],
        "the reply's checksum stays absent"
    );
}

#[test]
fn a_udp_checksum_that_computes_to_zero_is_sent_as_all_ones() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    let client = SocketAddrV4::new(POD_CLIENT, 40004);
    // Choose the first payload word so that the datagram as the backend
    // receives it sums to 0xffff: its computed checksum is zero.
    let mut payload = vec![0u8; 12];
    let translated = Frame4::flow(IPPROTO_UDP, client, SOLO_BACKEND, &payload);
    let L4::Udp(u) = &translated.l4 else {
        unreachable!()
    };
    let mut zeroed = u.clone();
    zeroed.no_checksum = true;
    let bytes = L4::Udp(zeroed).bytes(&translated.ip);
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&POD_CLIENT.octets());
    pseudo.extend_from_slice(&SOLO_BACKEND.ip().octets());
    pseudo.extend_from_slice(&[0, IPPROTO_UDP]);
    pseudo.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    let word = frames::internet_checksum(&[&pseudo, &bytes]);
    payload[..2].copy_from_slice(&word.to_be_bytes());
    let check = Frame4::flow(IPPROTO_UDP, client, SOLO_BACKEND, &payload).bytes();
    assert_eq!(
        &read::l4(&check)[6..8],
        &[0xff, 0xff],
        "the crafted datagram's computed checksum is zero"
    );

    let f = Frame4::flow(IPPROTO_UDP, client, SOLO, &payload).bytes();
    assert_ne!(
        &read::l4(&f)[6..8],
        &[0xff, 0xff],
        "the client's datagram checksum is not zero"
    );
    let step = h.expect_step(Hook::PodIngress, &f);
    assert_eq!(
        read::endpoints(&step.out).1,
        SOLO_BACKEND,
        "translated to the backend"
    );
    assert_eq!(
        &read::l4(&step.out)[6..8],
        &[0xff, 0xff],
        "a computed zero is sent as 0xffff, not as 'no checksum'"
    );
}

#[test]
fn ip_options_are_kept_and_the_ports_behind_them_translated() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    let mut record_route = vec![7, 39, 4];
    record_route.resize(39, 0);
    let option_sets: [(&str, Vec<u8>); 4] = [
        ("one NOP word", vec![1, 1, 1, 1]),
        ("NOPs then EOL, 40 bytes", [vec![1; 39], vec![0]].concat()),
        ("record route", record_route),
        ("router alert", vec![0x94, 4, 0, 0]),
    ];
    let mut port = 41000;
    for proto in PROTOCOLS {
        for (name, options) in &option_sets {
            let p = format!("{} with {name}", proto_name(proto));
            port += 1;
            let client = SocketAddrV4::new(POD_CLIENT, port);
            let mut f = Frame4::flow(proto, client, SOLO, b"options");
            f.ip.options = options.clone();
            let fwd = f.bytes();
            let hlen = read::ihl(&fwd);
            assert!(hlen > 20, "{p}: the frame has options");

            let step = h.expect_step(Hook::PodIngress, &fwd);
            assert_eq!(
                read::endpoints(&step.out),
                (client, SOLO_BACKEND),
                "{p}: translated to the backend"
            );
            assert_eq!(
                &step.out[34..14 + hlen],
                &fwd[34..14 + hlen],
                "{p}: the options are kept"
            );

            let mut r = Frame4::flow(proto, SOLO_BACKEND, client, b"back");
            r.ip.options = options.clone();
            let step = h.expect_step(Hook::PodEgress, &r.bytes());
            assert_eq!(
                read::endpoints(&step.out),
                (SOLO, client),
                "{p}: reply translated"
            );
        }
    }
    check_counters(&h);
}

/// An origin of a flow: where its requests and replies are translated.
#[derive(Clone, Copy, Debug)]
enum Opened {
    /// By a pod; replies at pod egress.
    Pod,
    /// By the host; replies from the wire.
    HostViaUplink,
    /// By the host; replies from a local backend pod.
    HostViaPod,
    /// By the backend pod itself.
    Loop,
}

impl Opened {
    const ALL: [Opened; 4] = [
        Opened::Pod,
        Opened::HostViaUplink,
        Opened::HostViaPod,
        Opened::Loop,
    ];

    fn client(self, port: u16) -> SocketAddrV4 {
        match self {
            Opened::Pod => SocketAddrV4::new(POD_CLIENT, port),
            Opened::HostViaUplink | Opened::HostViaPod => SocketAddrV4::new(HOST_CLIENT, port),
            Opened::Loop => SocketAddrV4::new(*SOLO_BACKEND.ip(), port),
        }
    }

    fn request_hook(self) -> Hook {
        match self {
            Opened::Pod | Opened::Loop => Hook::PodIngress,
            Opened::HostViaUplink | Opened::HostViaPod => Hook::UplinkEgress,
        }
    }

    fn reply_hook(self) -> Hook {
        match self {
            Opened::Pod => Hook::PodEgress,
            Opened::HostViaUplink => Hook::UplinkIngress,
            Opened::HostViaPod | Opened::Loop => Hook::PodIngress,
        }
    }

    fn reply_verdict(self) -> i32 {
        match self {
            Opened::Pod | Opened::HostViaUplink => TC_ACT_UNSPEC,
            Opened::HostViaPod | Opened::Loop => TC_ACT_REDIRECT,
        }
    }
}

/// The ICMP errors a backend or a router sends about a packet.
const ICMP_ERRORS: [(&str, u8, u8, [u8; 4]); 3] = [
    (
        "port unreachable",
        frames::ICMP_DEST_UNREACH,
        frames::ICMP_PORT_UNREACH,
        [0; 4],
    ),
    (
        "fragmentation needed",
        frames::ICMP_DEST_UNREACH,
        frames::ICMP_FRAG_NEEDED,
        [0, 0, 0x05, 0x78],
    ),
    ("TTL exceeded", frames::ICMP_TIME_EXCEEDED, 0, [0; 4]),
];

/// Quote lengths: the whole packet, or its IP header and 8 bytes (RFC 792),
/// which holds a UDP checksum but not a TCP one.
const QUOTES: [(&str, usize); 2] = [("whole", usize::MAX), ("header and 8 bytes", 28)];

#[test]
fn icmp_errors_from_a_backend_reach_the_client_as_from_the_frontend() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    for proto in PROTOCOLS {
        for opened in Opened::ALL {
            for (error, icmp_type, code, rest) in ICMP_ERRORS {
                for (quote, quote_len) in QUOTES {
                    let p = format!("{} {opened:?} {error}, {quote} quoted", proto_name(proto));
                    h.clear_flows();
                    let client = opened.client(42000);
                    let fwd = Frame4::flow(proto, client, SOLO, b"are you there?").bytes();
                    let sent = h.expect_step(opened.request_hook(), &fwd).out;
                    let (seen_src, backend) = read::endpoints(&sent);
                    assert_eq!(
                        backend, SOLO_BACKEND,
                        "{p}: the request reached the backend"
                    );

                    let err = Frame4::icmp_error(
                        *backend.ip(),
                        *seen_src.ip(),
                        icmp_type,
                        code,
                        rest,
                        &sent[frames::ETH_LEN..],
                        quote_len,
                    )
                    .bytes();
                    let translated = h.counter(Counter::IcmpTranslated);
                    let step = h.expect_step(opened.reply_hook(), &err);
                    assert!(
                        matches!(step.expected.action, Action::IcmpError { .. }),
                        "{p}: the model translates the error"
                    );
                    assert_eq!(step.verdict, opened.reply_verdict(), "{p}: verdict");
                    assert_eq!(
                        read::src(&step.out),
                        *SOLO.ip(),
                        "{p}: the error comes from the frontend"
                    );
                    assert_eq!(
                        read::dst(&step.out),
                        *client.ip(),
                        "{p}: the error goes to the client"
                    );
                    assert_eq!(
                        &read::l4(&step.out)[..2],
                        &[icmp_type, code],
                        "{p}: type and code"
                    );
                    assert_eq!(
                        &read::l4(&step.out)[4..8],
                        &rest,
                        "{p}: the MTU and unused bytes"
                    );
                    assert_eq!(
                        read::endpoints_of_ip(read::quote(&step.out)),
                        (client, SOLO),
                        "{p}: the quoted packet is the client's, to the frontend"
                    );
                    harness::verify_checksums(&step.out)
                        .unwrap_or_else(|e| panic!("{p}: checksums of the translated error: {e}"));
                    assert_eq!(
                        h.counter(Counter::IcmpTranslated),
                        translated + 1,
                        "{p}: the translated error is counted"
                    );
                }
            }
        }
    }
    check_counters(&h);
}

#[test]
fn icmp_errors_from_a_router_keep_the_routers_source() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    for proto in PROTOCOLS {
        for opened in [Opened::Pod, Opened::HostViaUplink] {
            let p = format!("{} {opened:?}", proto_name(proto));
            let client = opened.client(42100);
            let fwd = Frame4::flow(proto, client, SOLO, b"far away").bytes();
            let sent = h.expect_step(opened.request_hook(), &fwd).out;
            let err = Frame4::icmp_error(
                ROUTER,
                *client.ip(),
                frames::ICMP_TIME_EXCEEDED,
                0,
                [0; 4],
                &sent[frames::ETH_LEN..],
                usize::MAX,
            )
            .bytes();
            let step = h.expect_step(opened.reply_hook(), &err);
            assert_eq!(
                read::src(&step.out),
                ROUTER,
                "{p}: the router stays the source"
            );
            assert_eq!(read::dst(&step.out), *client.ip(), "{p}: to the client");
            assert_eq!(
                read::endpoints_of_ip(read::quote(&step.out)),
                (client, SOLO),
                "{p}: the quoted packet is the client's, to the frontend"
            );
            harness::verify_checksums(&step.out)
                .unwrap_or_else(|e| panic!("{p}: checksums of the translated error: {e}"));
        }
    }
    check_counters(&h);
}

#[test]
fn frames_that_are_not_ipv4_pass_bit_identical() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    // Open a flow, so that frames that look like its packets exist.
    let client = SocketAddrV4::new(POD_CLIENT, 40005);
    h.expect_step(
        Hook::PodIngress,
        &Frame4::flow(IPPROTO_UDP, client, SOLO, b"").bytes(),
    );
    let ip_like = Frame4::flow(IPPROTO_UDP, client, SOLO, b"").ip_packet();
    let cases = [
        (
            "an ARP request for a frontend",
            frames::arp_request(POD_CLIENT, *SOLO.ip()),
        ),
        (
            "an IPv6 datagram",
            frames::ipv6_udp(*SOLO.ip(), SOLO.port(), b"v6"),
        ),
        (
            "an IPv4 packet behind a VLAN tag",
            frames::ethernet(0x8100, &[&[0, 5, 0x08, 0x00][..], &ip_like].concat()),
        ),
        (
            "an IPv4 packet with the ARP ethertype",
            frames::ethernet(frames::ETH_P_ARP, &ip_like),
        ),
        ("an Ethernet header alone", frames::ethernet(0x88cc, &[])),
    ];
    let unparsable = h.counter(Counter::Unparsable);
    for (what, frame) in &cases {
        assert_untouched_everywhere(&mut h, frame, what);
    }
    assert_eq!(
        h.counter(Counter::Unparsable),
        unparsable,
        "non-IPv4 is not counted as unparsable"
    );
    check_counters(&h);
}

#[test]
fn packets_to_no_frontend_pass_bit_identical() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    let client = SocketAddrV4::new(POD_CLIENT, 40006);
    let to = |proto, dst| Frame4::flow(proto, client, dst, b"not for us").bytes();
    let gre = Frame4 {
        l4: L4::Other {
            proto: 47,
            bytes: vec![0, 0, 0x08, 0, 1, 2, 3, 4],
        },
        ..Frame4::flow(IPPROTO_UDP, client, SOLO, b"")
    }
    .bytes();
    let echo = Frame4::icmp(
        POD_CLIENT,
        *SOLO.ip(),
        Icmp {
            icmp_type: frames::ICMP_ECHO_REQUEST,
            code: 0,
            rest: [0, 1, 0, 1],
            data: b"ping".to_vec(),
        },
    )
    .bytes();
    let cases = [
        (
            "TCP to an address that is no frontend",
            to(IPPROTO_TCP, sa([192, 168, 100, 99], 80)),
        ),
        ("UDP to a backend directly", to(IPPROTO_UDP, SOLO_BACKEND)),
        (
            "TCP to a frontend address on another port",
            to(IPPROTO_TCP, sa([192, 168, 100, 10], 81)),
        ),
        ("UDP to a TCP frontend's port", to(IPPROTO_UDP, WEB)),
        ("TCP to a UDP frontend's port", to(IPPROTO_TCP, DNS)),
        ("TCP to a frontend without backends", to(IPPROTO_TCP, EMPTY)),
        ("GRE to a frontend address", gre),
        ("an echo request to a frontend address", echo),
    ];
    for (what, frame) in &cases {
        assert_untouched_everywhere(&mut h, frame, what);
        let key = harness::tuple_of_frame_key(frame);
        assert!(h.ct(&key).is_none(), "{what} opened a flow");
    }
    assert_eq!(
        h.counter(Counter::Unparsable),
        0,
        "nothing here is malformed"
    );
    check_counters(&h);
}

#[test]
fn malformed_ipv4_passes_bit_identical_and_is_counted_as_unparsable() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    for proto in PROTOCOLS {
        let client = SocketAddrV4::new(POD_CLIENT, 40007);
        let good = Frame4::flow(proto, client, SOLO, b"sixteen bytes!!!");
        let edit = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut b = good.bytes();
            f(&mut b);
            b
        };
        let fragment = |frag: u16| {
            let mut g = good.clone();
            g.ip.frag = frag;
            g.bytes()
        };
        let l4_min = if proto == IPPROTO_TCP { 20 } else { 8 };
        let mut cases = vec![
            ("a first fragment (MF)", fragment(frames::IP_MF)),
            ("a later fragment (offset)", fragment(185)),
            (
                "a last fragment (offset, no MF)",
                fragment(frames::IP_DF | 1),
            ),
            ("a truncated packet", edit(&|b| b.truncate(b.len() - 1))),
            ("options beyond the packet's end", edit(&|b| b[14] = 0x4f)),
            ("an IHL of 4", edit(&|b| b[14] = 0x44)),
            ("an IHL of 0", edit(&|b| b[14] = 0x40)),
            ("version 6 in an IPv4 frame", edit(&|b| b[14] = 0x65)),
            ("version 5", edit(&|b| b[14] = 0x55)),
            (
                "a total length below the header",
                edit(&|b| b[16..18].copy_from_slice(&16u16.to_be_bytes())),
            ),
            (
                "an L4 header cut short",
                edit(&|b| {
                    let total = 20 + l4_min - 1;
                    b[16..18].copy_from_slice(&(total as u16).to_be_bytes());
                    b.truncate(frames::ETH_LEN + total);
                }),
            ),
        ];
        if proto == IPPROTO_TCP {
            cases.push((
                "a TCP data offset of 4",
                edit(&|b| b[14 + 20 + 12] = 4 << 4),
            ));
            cases.push(("a TCP data offset of 0", edit(&|b| b[14 + 20 + 12] = 0)));
        }
        for (what, frame) in &cases {
            let what = format!("{} {what}", proto_name(proto));
            let before = h.counter(Counter::Unparsable);
            assert_untouched_everywhere(&mut h, frame, &what);
            assert_eq!(
                h.counter(Counter::Unparsable),
                before + 4,
                "{what} is counted as unparsable at each of the 4 hooks"
            );
            assert!(
                h.ct(&Tuple::new(proto, client, SOLO)).is_none(),
                "{what} opened a flow"
            );
        }
    }
    let short_icmp = Frame4 {
        l4: L4::Other {
            proto: IPPROTO_ICMP,
            bytes: vec![3, 3, 0, 0],
        },
        ..Frame4::flow(IPPROTO_UDP, SocketAddrV4::new(POD_CLIENT, 1), SOLO, b"")
    }
    .bytes();
    let before = h.counter(Counter::Unparsable);
    assert_untouched_everywhere(&mut h, &short_icmp, "a 4-byte ICMP message");
    assert_eq!(
        h.counter(Counter::Unparsable),
        before + 4,
        "a short ICMP message is unparsable"
    );
    check_counters(&h);
}

#[test]
fn icmp_that_is_not_an_error_or_quotes_an_unknown_flow_passes_bit_identical() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    let client = SocketAddrV4::new(POD_CLIENT, 40008);
    let sent = h
        .expect_step(
            Hook::PodIngress,
            &Frame4::flow(IPPROTO_UDP, client, SOLO, b"q").bytes(),
        )
        .out;
    let quoted = &sent[frames::ETH_LEN..];
    let unknown = Frame4::flow(
        IPPROTO_UDP,
        SocketAddrV4::new(POD_CLIENT, 40009),
        SOLO_BACKEND,
        b"q",
    )
    .ip_packet();
    let icmp_about_flow = Frame4::icmp(
        POD_CLIENT,
        *SOLO_BACKEND.ip(),
        Icmp {
            icmp_type: frames::ICMP_ECHO_REQUEST,
            code: 0,
            rest: [0; 4],
            data: vec![],
        },
    )
    .ip_packet();
    let from_backend = |icmp_type: u8, code: u8, quote: &[u8], len: usize| {
        Frame4::icmp_error(
            *SOLO_BACKEND.ip(),
            POD_CLIENT,
            icmp_type,
            code,
            [0; 4],
            quote,
            len,
        )
        .bytes()
    };
    let mut bad_version = quoted.to_vec();
    bad_version[0] = 0x65;
    let mut bad_ihl = quoted.to_vec();
    bad_ihl[0] = 0x44;
    let cases = [
        (
            "an echo reply quoting a flow's packet",
            from_backend(frames::ICMP_ECHO_REPLY, 0, quoted, 28),
        ),
        (
            "a redirect quoting a flow's packet",
            from_backend(5, 1, quoted, 28),
        ),
        (
            "a parameter problem quoting a flow's packet",
            from_backend(12, 0, quoted, 28),
        ),
        (
            "an error quoting an unknown flow",
            from_backend(3, 3, &unknown, 28),
        ),
        (
            "an error quoting an ICMP packet",
            from_backend(3, 3, &icmp_about_flow, 28),
        ),
        (
            "an error quoting the IP header only",
            from_backend(3, 3, quoted, 20),
        ),
        (
            "an error quoting the ports cut short",
            from_backend(3, 3, quoted, 23),
        ),
        (
            "an error quoting a bad IP version",
            from_backend(3, 3, &bad_version, 28),
        ),
        (
            "an error quoting a bad IHL",
            from_backend(3, 3, &bad_ihl, 28),
        ),
    ];
    for (what, frame) in &cases {
        assert_untouched_everywhere(&mut h, frame, what);
    }
    assert_eq!(
        h.counter(Counter::IcmpTranslated),
        0,
        "no error was translated"
    );
    check_counters(&h);
}

#[test]
fn a_bare_syn_after_a_completed_handshake_opens_a_new_flow() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    let client = SocketAddrV4::new(POD_CLIENT, 40010);
    let key = Tuple::new(IPPROTO_TCP, client, WEB);
    let segment = |flags| {
        Frame4::flow(IPPROTO_TCP, client, WEB, b"")
            .with_tcp_flags(flags)
            .bytes()
    };
    let created = |h: &Harness| h.ct(&key).expect("the flow's forward entry").created_ns;
    let id = frontend_id(WEB, IPPROTO_TCP);

    h.expect_step(Hook::PodIngress, &segment(TCP_SYN));
    let first = created(&h);
    for (what, flags) in [
        ("the handshake's ACK", TCP_ACK),
        ("data", TCP_PSH | TCP_ACK),
    ] {
        let step = h.expect_step(Hook::PodIngress, &segment(flags));
        assert!(
            WEB_BACKENDS.contains(&read::endpoints(&step.out).1),
            "{what} goes to a backend"
        );
        assert_eq!(created(&h), first, "{what} stays on the flow");
    }
    assert_eq!(h.frontend_stats(id).flows, 1, "one flow so far");

    let step = h.expect_step(Hook::PodIngress, &segment(TCP_SYN));
    assert!(
        matches!(step.expected.action, Action::Flow { new_flow: true, .. }),
        "the model opens a new flow"
    );
    assert!(
        WEB_BACKENDS.contains(&read::endpoints(&step.out).1),
        "the new flow goes to a backend"
    );
    let second = created(&h);
    assert!(
        second >= first,
        "the new flow's entry is not older than the first (created {first}, then {second}; the coarse clock may not tick between them)"
    );
    assert_eq!(h.frontend_stats(id).flows, 2, "the new flow is counted");

    let step = h.expect_step(Hook::PodIngress, &segment(TCP_FIN | TCP_ACK));
    assert!(
        WEB_BACKENDS.contains(&read::endpoints(&step.out).1),
        "a FIN goes to a backend"
    );
    assert_eq!(created(&h), second, "a FIN stays on the new flow");
    check_counters(&h);
}

#[test]
fn syn_retransmits_stay_on_their_flow() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    let client = SocketAddrV4::new(POD_CLIENT, 40011);
    let key = Tuple::new(IPPROTO_TCP, client, WEB);
    let syn = Frame4::flow(IPPROTO_TCP, client, WEB, b"").bytes();
    let first = h.expect_step(Hook::PodIngress, &syn);
    let entry = h.ct(&key).expect("the flow's forward entry");
    for retransmit in 1..=3 {
        let again = h.expect_step(Hook::PodIngress, &syn);
        assert!(
            again.out == first.out,
            "retransmit {retransmit} goes to the same backend"
        );
        let e = h.ct(&key).expect("the flow's forward entry");
        assert_eq!(
            e.created_ns, entry.created_ns,
            "retransmit {retransmit} keeps the entry"
        );
        assert_eq!(
            e.nat, entry.nat,
            "retransmit {retransmit} keeps the backend"
        );
    }
    assert_eq!(
        h.frontend_stats(frontend_id(WEB, IPPROTO_TCP)).flows,
        1,
        "one flow"
    );
    check_counters(&h);
}

#[test]
fn frontend_counters_count_packets_bytes_and_flows() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    let client = SocketAddrV4::new(POD_CLIENT, 40012);
    let id = frontend_id(SOLO, IPPROTO_UDP);
    let frames = [
        (
            Hook::PodIngress,
            Frame4::flow(IPPROTO_UDP, client, SOLO, b"one").bytes(),
        ),
        (
            Hook::PodIngress,
            Frame4::flow(IPPROTO_UDP, client, SOLO, b"two, longer").bytes(),
        ),
        (
            Hook::PodEgress,
            Frame4::flow(IPPROTO_UDP, SOLO_BACKEND, client, b"reply").bytes(),
        ),
    ];
    let mut bytes = 0;
    for (hook, frame) in &frames {
        h.expect_step(*hook, frame);
        bytes += frame.len() as u64;
    }
    // Not counted: no frontend's packet.
    h.expect_step(
        Hook::PodIngress,
        &Frame4::flow(IPPROTO_UDP, client, EMPTY, b"").bytes(),
    );
    let stats = h.frontend_stats(id);
    assert_eq!(stats.packets, 3, "both directions' packets are counted");
    assert_eq!(stats.bytes, bytes, "whole frames are counted");
    assert_eq!(stats.flows, 1, "one flow was opened");
    for other in standard_tables().frontends.iter().filter(|f| f.id != id) {
        assert_eq!(
            h.frontend_stats(other.id).packets,
            0,
            "frontend {} counted another frontend's packets",
            other.id
        );
    }
    check_counters(&h);
}
