//! IPv6 property tests, as the IPv4 ones: random flows behind random
//! extension header chains, random unrelated IPv6 frames (fragments,
//! jumbograms and chains too long to walk among them) and random mutations
//! of both, run through the datapath and held against the model.

use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};

use proptest::{
    collection::vec,
    prelude::*,
    sample::{select, Index},
};

use super::{other_hook, run_property, ClientKind, Target};
use crate::{
    family::{Family, V6},
    fixtures::standard_tables,
    frames::{
        self, read6, Ext, Frame6, Icmp, ETH_LEN, ETH_P_IPV6, IPPROTO_ICMPV6, IPPROTO_TCP,
        IPPROTO_UDP, L4, NEXTHDR_DEST, NEXTHDR_FRAGMENT, NEXTHDR_HOP, NEXTHDR_ROUTING,
    },
    harness::{kernel_runs, verify_checksums, Harness, Step, TC_ACT_UNSPEC},
    model::{Action, FrontendCfg, Hook, Origin},
    require_privileged,
};

// ---------------------------------------------------------------------------
// Strategies

/// Options of a hop-by-hop or destination options header: none (a PadN
/// only), or random bytes (padded by the builder): the datapath does not
/// read them.
fn options() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![Just(Vec::new()), vec(any::<u8>(), 1..=30)]
}

/// A routing header: any type, its data random. `segments_left` zero
/// keeps the header's destination the final one, which the checksums'
/// pseudo-header holds.
fn routing(segments_left: impl Strategy<Value = u8>) -> impl Strategy<Value = Ext> {
    (any::<u8>(), segments_left, vec(any::<u8>(), 4..=36)).prop_map(
        |(routing_type, segments_left, data)| Ext::Routing {
            routing_type,
            segments_left,
            data,
        },
    )
}

/// An extension header that may follow others: destination options or
/// routing.
fn later_ext() -> impl Strategy<Value = Ext> {
    prop_oneof![options().prop_map(Ext::DestOpts), routing(Just(0))]
}

/// A valid chain of at most `max` extension headers the datapath walks:
/// hop-by-hop only first (RFC 8200 section 4.1).
fn chain(max: usize) -> impl Strategy<Value = Vec<Ext>> {
    prop_oneof![
        2 => Just(Vec::new()),
        3 => (prop::option::weighted(0.4, options()), vec(later_ext(), 0..=max)).prop_map(
            move |(hbh, rest)| {
                let mut c: Vec<Ext> = hbh.map(Ext::HopByHop).into_iter().collect();
                c.extend(rest);
                c.truncate(max);
                c
            }
        ),
    ]
}

fn fragment_ext() -> impl Strategy<Value = Ext> {
    (0u16..0x2000, any::<bool>(), any::<u32>()).prop_map(|(offset, more, id)| Ext::Fragment {
        offset,
        more,
        id,
    })
}

/// Any extension header, in any order: fragment headers and routing
/// headers with segments left among them.
fn any_ext() -> impl Strategy<Value = Ext> {
    prop_oneof![
        options().prop_map(Ext::HopByHop),
        options().prop_map(Ext::DestOpts),
        routing(any::<u8>()),
        fragment_ext(),
    ]
}

#[derive(Clone, Debug)]
struct Ip6Params {
    traffic_class: u8,
    flow_label: u32,
    hop_limit: u8,
    ext: Vec<Ext>,
}

fn ip6_params(ext: impl Strategy<Value = Vec<Ext>>) -> impl Strategy<Value = Ip6Params> {
    (any::<u8>(), 0u32..0x10_0000, 1..=255u8, ext).prop_map(
        |(traffic_class, flow_label, hop_limit, ext)| Ip6Params {
            traffic_class,
            flow_label,
            hop_limit,
            ext,
        },
    )
}

fn apply_ip6(f: &mut Frame6, ip: &Ip6Params) {
    f.ip.traffic_class = ip.traffic_class;
    f.ip.flow_label = ip.flow_label;
    f.ip.hop_limit = ip.hop_limit;
    f.ip.ext = ip.ext.clone();
}

#[derive(Clone, Debug)]
struct Seg6 {
    flags: u8,
    seq: u32,
    ack: u32,
    window: u16,
    /// A zero UDP checksum: not allowed in IPv6, kept zero if it comes.
    no_udp_checksum: bool,
    payload: Vec<u8>,
    ip: Ip6Params,
}

fn seg6(ext: impl Strategy<Value = Vec<Ext>>) -> impl Strategy<Value = Seg6> {
    (
        any::<u8>(),
        any::<u32>(),
        any::<u32>(),
        any::<u16>(),
        prop::bool::weighted(0.05),
        vec(any::<u8>(), 0..200),
        ip6_params(ext),
    )
        .prop_map(
            |(flags, seq, ack, window, no_udp_checksum, payload, ip)| Seg6 {
                flags,
                seq,
                ack,
                window,
                no_udp_checksum,
                payload,
                ip,
            },
        )
}

/// A TCP segment or UDP datagram shaped by `seg`.
fn build6(proto: u8, src: SocketAddrV6, dst: SocketAddrV6, seg: &Seg6) -> Vec<u8> {
    let mut f = Frame6::flow(proto, src, dst, &seg.payload);
    apply_ip6(&mut f, &seg.ip);
    match &mut f.l4 {
        L4::Tcp(t) => {
            t.flags = seg.flags;
            t.seq = seg.seq;
            t.ack = seg.ack;
            t.window = seg.window;
        }
        L4::Udp(u) => u.no_checksum = seg.no_udp_checksum,
        _ => unreachable!("flows are TCP or UDP"),
    }
    f.bytes()
}

fn v6(a: SocketAddr) -> SocketAddrV6 {
    match a {
        SocketAddr::V6(a) => a,
        SocketAddr::V4(a) => panic!("{a} among the IPv6 frontends"),
    }
}

fn ipv6_frontends() -> Vec<FrontendCfg> {
    standard_tables()
        .frontends
        .into_iter()
        .filter(|f| f.addr.is_ipv6())
        .collect()
}

fn translatable6() -> Vec<FrontendCfg> {
    ipv6_frontends()
        .into_iter()
        .filter(|f| !f.backends.is_empty())
        .collect()
}

#[derive(Clone, Debug)]
struct ErrorCase6 {
    /// Index into `ICMP6_ERRORS`.
    kind: Index,
    /// How much of the packet is quoted; long values quote all of it.
    quote_len: usize,
    from_router: bool,
    /// Quote the request with its extension headers (which the datapath
    /// does not walk in a quote), rather than without them.
    quote_ext: bool,
    ip: Ip6Params,
}

fn error_case6() -> impl Strategy<Value = ErrorCase6> {
    (
        any::<Index>(),
        prop_oneof![Just(48usize), Just(usize::MAX), 40usize..160],
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.2),
        ip6_params(chain(4)),
    )
        .prop_map(|(kind, quote_len, from_router, quote_ext, ip)| ErrorCase6 {
            kind,
            quote_len,
            from_router,
            quote_ext,
            ip,
        })
}

/// An address in `prefix`/16 with random low bits.
fn addr_in(prefix: u16) -> impl Strategy<Value = Ipv6Addr> {
    any::<u128>().prop_map(move |x| Ipv6Addr::from(u128::from(prefix) << 112 | x >> 16))
}

#[derive(Clone, Debug)]
struct FlowCase6 {
    /// Index into the IPv6 frontends that have backends.
    frontend: Index,
    kind: ClientKind,
    pod: Ipv6Addr,
    host: Ipv6Addr,
    backend: Index,
    port: u16,
    /// Where a host flow's reply enters: a local backend pod's veth, or
    /// the uplink.
    host_reply_at_pod: bool,
    request: Seg6,
    reply: Seg6,
    error: ErrorCase6,
    /// Other hooks to run each frame at, indices into the three others.
    strays: [Index; 3],
}

fn flow_case6() -> impl Strategy<Value = FlowCase6> {
    (
        (
            any::<Index>(),
            prop_oneof![
                Just(ClientKind::Pod),
                Just(ClientKind::Host),
                Just(ClientKind::Backend)
            ],
            addr_in(0xfd10),
            prop_oneof![
                Just(V6::HOST_CLIENT),
                any::<u128>().prop_map(Ipv6Addr::from)
            ],
            any::<Index>(),
            any::<u16>(),
            any::<bool>(),
        ),
        (
            seg6(chain(4)),
            seg6(chain(4)),
            error_case6(),
            any::<[Index; 3]>(),
        ),
    )
        .prop_map(
            |(
                (frontend, kind, pod, host, backend, port, host_reply_at_pod),
                (request, reply, error, strays),
            )| {
                FlowCase6 {
                    frontend,
                    kind,
                    pod,
                    host,
                    backend,
                    port,
                    host_reply_at_pod,
                    request,
                    reply,
                    error,
                    strays,
                }
            },
        )
}

/// The frames of one flow, built as the case says.
struct Flow6 {
    frontend: FrontendCfg,
    fe_addr: SocketAddrV6,
    client: SocketAddrV6,
    request_hook: Hook,
    request: Vec<u8>,
}

impl FlowCase6 {
    fn flow(&self) -> Flow6 {
        let frontend = self.frontend.get(&translatable6()).clone();
        let fe_addr = v6(frontend.addr);
        let ip = match self.kind {
            ClientKind::Pod => self.pod,
            ClientKind::Host => self.host,
            ClientKind::Backend => *v6(*self.backend.get(&frontend.backends)).ip(),
        };
        let client = SocketAddrV6::new(ip, self.port, 0, 0);
        let request_hook = match self.kind {
            ClientKind::Host => Hook::UplinkEgress,
            ClientKind::Pod | ClientKind::Backend => Hook::PodIngress,
        };
        let request = build6(frontend.proto, client, fe_addr, &self.request);
        Flow6 {
            frontend,
            fe_addr,
            client,
            request_hook,
            request,
        }
    }

    fn reply_hook(&self, origin: Origin) -> Hook {
        match origin {
            Origin::Pod => Hook::PodEgress,
            Origin::Loop => Hook::PodIngress,
            Origin::Host if self.host_reply_at_pod => Hook::PodIngress,
            Origin::Host => Hook::UplinkIngress,
        }
    }

    /// The packet the error quotes: the request as the backend received
    /// it, with or without its extension headers.
    fn quoted(&self, sent: &[u8]) -> Vec<u8> {
        if self.error.quote_ext {
            sent[ETH_LEN..].to_vec()
        } else {
            frames::strip_ext(&sent[ETH_LEN..])
        }
    }

    /// Whether the error must be translated: its quote holds an IPv6
    /// header directly followed by the ports.
    fn error_translatable(&self, sent: &[u8]) -> bool {
        let quoted = self.quoted(sent);
        quoted[6] == self.request_proto(sent) && self.error.quote_len.min(quoted.len()) >= 44
    }

    fn request_proto(&self, sent: &[u8]) -> u8 {
        read6::upper_layer(&sent[ETH_LEN..]).1
    }

    /// An ICMPv6 error toward the client about `sent`, the request as the
    /// backend received it (a frame).
    fn error(&self, sent: &[u8]) -> Vec<u8> {
        let (seen_src, backend) = read6::endpoints(sent);
        let (_, icmp_type, code, rest) = *self.error.kind.get(V6::ICMP_ERRORS);
        let src = if self.error.from_router {
            V6::ROUTER
        } else {
            *backend.ip()
        };
        let mut f = Frame6::icmp_error(
            src,
            *seen_src.ip(),
            icmp_type,
            code,
            rest,
            &self.quoted(sent),
            self.error.quote_len,
        );
        apply_ip6(&mut f, &self.error.ip);
        f.bytes()
    }
}

/// The steps of a flow's life: the request, the reply and an error.
struct FlowRun6 {
    flow: Flow6,
    request: Step,
    reply_frame: Vec<u8>,
    reply: Step,
    error_frame: Vec<u8>,
    error: Step,
}

/// Runs a flow's request, reply and ICMPv6 error at their hooks, and each
/// at one other hook, all checked against the model.
fn run_flow6(h: &mut Harness, c: &FlowCase6) -> Result<FlowRun6, String> {
    let flow = c.flow();
    let request = h.step(flow.request_hook, &flow.request)?;
    let Action::Flow {
        entry,
        new_flow: true,
    } = request.expected.action
    else {
        return Err(format!(
            "the request opened no flow: {:?}",
            request.expected.action
        ));
    };
    h.step(other_hook(flow.request_hook, &c.strays[0]), &flow.request)?;

    let reply_hook = c.reply_hook(entry.origin);
    let (seen_src, backend) = read6::endpoints(&request.out);
    let reply_frame = build6(flow.frontend.proto, backend, seen_src, &c.reply);
    let reply = h.step(reply_hook, &reply_frame)?;
    ensure!(
        matches!(reply.expected.action, Action::Flow { .. }),
        "the reply was not translated: {:?}",
        reply.expected.action
    );
    h.step(other_hook(reply_hook, &c.strays[1]), &reply_frame)?;

    let error_frame = c.error(&request.out);
    let error = h.step(reply_hook, &error_frame)?;
    ensure!(
        matches!(error.expected.action, Action::IcmpError { .. })
            == c.error_translatable(&request.out),
        "an error quoting {} bytes, extension headers {}: {:?}",
        c.error.quote_len,
        c.error.quote_ext,
        error.expected.action
    );
    h.step(other_hook(reply_hook, &c.strays[2]), &error_frame)?;
    Ok(FlowRun6 {
        flow,
        request,
        reply_frame,
        reply,
        error_frame,
        error,
    })
}

/// Whether the frame is UDP with a zero checksum.
fn zero_udp_checksum(frame: &[u8]) -> bool {
    let (off, proto) = read6::upper_layer(&frame[ETH_LEN..]);
    proto == IPPROTO_UDP && frame[ETH_LEN + off + 6..ETH_LEN + off + 8] == [0, 0]
}

#[test]
fn translated_frames_match_the_model_and_carry_valid_checksums() {
    require_privileged!();
    run_property(
        "ipv6::translated_frames_match_the_model_and_carry_valid_checksums",
        12_000,
        72_000,
        flow_case6(),
        |h, case| {
            let run = run_flow6(h, &case)?;
            // `step` checked the bytes against the model and, for frames
            // built valid, their checksums with etherparse.
            for (what, input, step) in [
                ("request", &run.flow.request, &run.request),
                ("reply", &run.reply_frame, &run.reply),
                ("error", &run.error_frame, &run.error),
            ] {
                if what != "error" && zero_udp_checksum(input) {
                    ensure!(
                        zero_udp_checksum(&step.out),
                        "a zero UDP checksum of the {what} was changed"
                    );
                    continue;
                }
                verify_checksums(input)
                    .map_err(|e| format!("the {what} was built with bad checksums: {e}"))?;
                if step.expected.translated() {
                    verify_checksums(&step.out).map_err(|e| format!("translated {what}: {e}"))?;
                }
            }
            Ok(())
        },
    );
}

#[test]
fn a_client_sees_only_the_frontend_address() {
    require_privileged!();
    run_property(
        "ipv6::a_client_sees_only_the_frontend_address",
        10_000,
        60_000,
        flow_case6(),
        |h, case| {
            let run = run_flow6(h, &case)?;
            let Flow6 {
                frontend,
                fe_addr,
                client,
                ..
            } = &run.flow;
            let (seen_src, backend) = read6::endpoints(&run.request.out);
            ensure!(
                frontend.backends.contains(&backend.into()),
                "the request went to {backend}, not one of {:?}",
                frontend.backends
            );
            let looped = backend.ip() == client.ip() && run.flow.request_hook == Hook::PodIngress;
            let want_src = if looped {
                SocketAddrV6::new(*fe_addr.ip(), client.port(), 0, 0)
            } else {
                *client
            };
            ensure!(
                seen_src == want_src,
                "the backend sees {seen_src}, expected {want_src}"
            );
            ensure!(
                read6::endpoints(&run.reply.out) == (*fe_addr, *client),
                "the client receives a reply {:?}, expected from {fe_addr} to {client}",
                read6::endpoints(&run.reply.out),
            );
            for (what, input, out) in [
                ("request", &run.flow.request, &run.request.out),
                ("reply", &run.reply_frame, &run.reply.out),
                ("error", &run.error_frame, &run.error.out),
            ] {
                ensure!(
                    read6::ext(out) == read6::ext(input),
                    "the {what}'s extension headers were changed"
                );
            }

            if matches!(run.error.expected.action, Action::IcmpError { .. }) {
                let out = &run.error.out;
                let want_src = if case.error.from_router {
                    V6::ROUTER
                } else {
                    *fe_addr.ip()
                };
                ensure!(
                    read6::src(out) == want_src,
                    "the error comes from {}",
                    read6::src(out)
                );
                ensure!(
                    read6::dst(out) == *client.ip(),
                    "the error goes to {}",
                    read6::dst(out)
                );
                ensure!(
                    read6::endpoints_of_ip(read6::quote(out)) == (*client, *fe_addr),
                    "the error quotes {:?}",
                    read6::endpoints_of_ip(read6::quote(out))
                );
            } else {
                ensure!(
                    run.error.out == run.error_frame,
                    "an untranslated error was changed"
                );
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------
// Unrelated frames

/// Addresses that matter to the tables (the IPv4 ones mapped into IPv6
/// among them), and random ones.
fn addr6() -> impl Strategy<Value = Ipv6Addr> {
    let mut known: Vec<Ipv6Addr> = vec![V6::POD_CLIENT, V6::HOST_CLIENT, V6::ROUTER];
    for fe in standard_tables().frontends {
        for a in std::iter::once(fe.addr).chain(fe.backends) {
            known.push(match a.ip() {
                std::net::IpAddr::V4(a) => a.to_ipv6_mapped(),
                std::net::IpAddr::V6(a) => a,
            });
        }
    }
    prop_oneof![any::<u128>().prop_map(Ipv6Addr::from), select(known)]
}

fn port6() -> impl Strategy<Value = u16> {
    let mut known: Vec<u16> = Vec::new();
    for fe in ipv6_frontends() {
        known.push(fe.addr.port());
        known.extend(fe.backends.iter().map(|b| b.port()));
    }
    prop_oneof![any::<u16>(), select(known)]
}

fn endpoint6() -> impl Strategy<Value = SocketAddrV6> {
    (addr6(), port6()).prop_map(|(a, p)| SocketAddrV6::new(a, p, 0, 0))
}

fn is_frontend6(proto: u8, dst: SocketAddrV6) -> bool {
    ipv6_frontends()
        .iter()
        .any(|f| f.proto == proto && f.addr == dst.into() && !f.backends.is_empty())
}

/// Whether the datapath cannot read the ports behind `ext`: a fragment
/// header among the four headers it walks, or a fifth header.
fn hides_ports(ext: &[Ext]) -> bool {
    ext.len() > 4 || ext.iter().any(|e| e.code() == frames::NEXTHDR_FRAGMENT)
}

#[derive(Clone, Debug)]
enum Noise6 {
    /// TCP or UDP to no frontend, or whose ports are hidden (behind a
    /// fragment header or five extension headers).
    Flow {
        proto: u8,
        src: SocketAddrV6,
        dst: SocketAddrV6,
        seg: Seg6,
    },
    /// A jumbogram: payload length zero, a jumbo payload option.
    Jumbogram {
        proto: u8,
        src: SocketAddrV6,
        dst: SocketAddrV6,
        seg: Seg6,
    },
    /// A protocol that is never translated.
    OtherProto {
        next: u8,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        bytes: Vec<u8>,
        ip: Ip6Params,
    },
    /// Any ICMPv6 message; errors quote a random packet of no flow.
    Icmp {
        src: Ipv6Addr,
        dst: Ipv6Addr,
        icmp_type: u8,
        code: u8,
        rest: [u8; 4],
        quoted: Option<(u8, SocketAddrV6, SocketAddrV6, Seg6, usize)>,
        data: Vec<u8>,
        ip: Ip6Params,
    },
}

/// Any extension header chain, up to six headers.
fn any_chain() -> impl Strategy<Value = Vec<Ext>> {
    prop_oneof![chain(4), vec(any_ext(), 0..=6)]
}

fn noise6() -> impl Strategy<Value = Noise6> {
    let proto = prop_oneof![Just(IPPROTO_TCP), Just(IPPROTO_UDP)];
    let icmp_types = select(vec![
        1u8,
        2,
        3,
        4,
        frames::ICMPV6_ECHO_REQUEST,
        frames::ICMPV6_ECHO_REPLY,
        frames::ICMPV6_ROUTER_SOLICIT,
        frames::ICMPV6_ROUTER_ADVERT,
        frames::ICMPV6_NEIGH_SOLICIT,
        frames::ICMPV6_NEIGH_ADVERT,
        frames::ICMPV6_REDIRECT,
    ]);
    prop_oneof![
        4 => (proto.clone(), endpoint6(), endpoint6(), seg6(any_chain()))
            .prop_filter("to no frontend, or hidden", |(proto, _, dst, seg)| {
                !is_frontend6(*proto, *dst) || hides_ports(&seg.ip.ext)
            })
            .prop_map(|(proto, src, dst, seg)| Noise6::Flow { proto, src, dst, seg }),
        1 => (proto.clone(), endpoint6(), endpoint6(), seg6(chain(3)))
            .prop_map(|(proto, src, dst, seg)| Noise6::Jumbogram { proto, src, dst, seg }),
        1 => (
            any::<u8>().prop_filter("not walked or translated", |p| {
                ![NEXTHDR_HOP, NEXTHDR_ROUTING, NEXTHDR_FRAGMENT, NEXTHDR_DEST,
                  IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6].contains(p)
            }),
            addr6(),
            addr6(),
            vec(any::<u8>(), 0..100),
            ip6_params(any_chain()),
        )
            .prop_map(|(next, src, dst, bytes, ip)| Noise6::OtherProto { next, src, dst, bytes, ip }),
        2 => (
            (addr6(), addr6(), prop_oneof![any::<u8>(), icmp_types], any::<u8>(), any::<[u8; 4]>()),
            prop::option::of((proto, endpoint6(), endpoint6(), seg6(chain(4)), 0usize..140)),
            vec(any::<u8>(), 0..100),
            ip6_params(any_chain()),
        )
            .prop_map(|((src, dst, icmp_type, code, rest), quoted, data, ip)| Noise6::Icmp {
                src,
                dst,
                icmp_type,
                code,
                rest,
                quoted,
                data,
                ip,
            }),
    ]
}

impl Noise6 {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Noise6::Flow {
                proto,
                src,
                dst,
                seg,
            } => build6(*proto, *src, *dst, seg),
            Noise6::Jumbogram {
                proto,
                src,
                dst,
                seg,
            } => {
                let mut seg = seg.clone();
                let mut ext = vec![Ext::HopByHop(vec![0xc2, 4, 0, 1, 0, 0])];
                ext.extend(seg.ip.ext.into_iter().filter(|e| e.code() != NEXTHDR_HOP));
                seg.ip.ext = ext;
                let mut f = build6(*proto, *src, *dst, &seg);
                f[ETH_LEN + 4..ETH_LEN + 6].fill(0);
                f
            }
            Noise6::OtherProto {
                next,
                src,
                dst,
                bytes,
                ip,
            } => {
                let mut f = Frame6 {
                    l4: L4::Other {
                        proto: *next,
                        bytes: bytes.clone(),
                    },
                    ..Frame6::icmp(
                        *src,
                        *dst,
                        Icmp {
                            icmp_type: 0,
                            code: 0,
                            rest: [0; 4],
                            data: vec![],
                        },
                    )
                };
                apply_ip6(&mut f, ip);
                f.bytes()
            }
            Noise6::Icmp {
                src,
                dst,
                icmp_type,
                code,
                rest,
                quoted,
                data,
                ip,
            } => {
                let data = match quoted {
                    Some((proto, qsrc, qdst, seg, len)) => {
                        let q = build6(*proto, *qsrc, *qdst, seg);
                        q[ETH_LEN..(ETH_LEN + len).min(q.len())].to_vec()
                    }
                    None => data.clone(),
                };
                let mut f = Frame6::icmp(
                    *src,
                    *dst,
                    Icmp {
                        icmp_type: *icmp_type,
                        code: *code,
                        rest: *rest,
                        data,
                    },
                );
                apply_ip6(&mut f, ip);
                f.bytes()
            }
        }
    }
}

#[test]
fn unrelated_frames_pass_bit_identical_at_every_hook() {
    require_privileged!();
    run_property(
        "ipv6::unrelated_frames_pass_bit_identical_at_every_hook",
        20_000,
        80_000,
        noise6(),
        |h, noise| {
            let frame = noise.bytes();
            if !kernel_runs(&frame) {
                return Err(format!("a frame the kernel refuses: {noise:?}"));
            }
            for hook in Hook::ALL {
                let step = h.step(hook, &frame)?;
                ensure!(
                    step.expected.action == Action::Untouched,
                    "the model translates an unrelated frame at {hook:?}: {:?}",
                    step.expected.action
                );
                ensure!(
                    step.verdict == TC_ACT_UNSPEC,
                    "verdict {} at {hook:?}",
                    step.verdict
                );
                ensure!(step.out == frame, "the frame was changed at {hook:?}");
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------
// Mutations

#[derive(Clone, Debug)]
enum Mutation6 {
    /// Cut the frame (never below the Ethernet and IPv6 headers).
    Truncate(Index),
    /// Flip bits of a byte of the headers.
    FlipHeader(Index, u8),
    /// Flip bits of any byte.
    FlipAnywhere(Index, u8),
    /// Insert an extension header (a fragment header, say) at a position
    /// of the chain.
    InsertExt(Index, Ext),
    /// Set a next-header field of the chain (the IPv6 header's or an
    /// extension header's).
    NextHeader(Index, u8),
    /// Set the payload length: zero, shorter (trailing bytes), longer.
    PayloadLength(Index),
}

fn mutation6() -> impl Strategy<Value = Mutation6> {
    let next = prop_oneof![
        select(vec![
            NEXTHDR_HOP,
            NEXTHDR_ROUTING,
            NEXTHDR_FRAGMENT,
            NEXTHDR_DEST,
            frames::NEXTHDR_NONE,
            IPPROTO_TCP,
            IPPROTO_UDP,
            IPPROTO_ICMPV6,
        ]),
        any::<u8>(),
    ];
    prop_oneof![
        2 => any::<Index>().prop_map(Mutation6::Truncate),
        4 => (any::<Index>(), 1..=255u8).prop_map(|(i, m)| Mutation6::FlipHeader(i, m)),
        1 => (any::<Index>(), 1..=255u8).prop_map(|(i, m)| Mutation6::FlipAnywhere(i, m)),
        2 => (any::<Index>(), any_ext()).prop_map(|(i, e)| Mutation6::InsertExt(i, e)),
        1 => (any::<Index>(), next).prop_map(|(i, n)| Mutation6::NextHeader(i, n)),
        1 => any::<Index>().prop_map(Mutation6::PayloadLength),
    ]
}

/// The next-header fields of a frame's chain as far as the frame holds
/// it, the IPv6 header's first: each field's offset and that of the header
/// it announces.
fn chain_offsets(f: &[u8]) -> Vec<(usize, usize)> {
    let mut fields = vec![(ETH_LEN + 6, ETH_LEN + 40)];
    while fields.len() < 16 {
        let (field, off) = *fields.last().unwrap();
        let len = match f[field] {
            NEXTHDR_HOP | NEXTHDR_ROUTING | NEXTHDR_DEST if off + 2 <= f.len() => {
                (usize::from(f[off + 1]) + 1) * 8
            }
            NEXTHDR_FRAGMENT => 8,
            _ => break,
        };
        if off + len > f.len() {
            break;
        }
        fields.push((off, off + len));
    }
    fields
}

/// Where the headers of a frame end: Ethernet, IPv6, the chain, the L4
/// header, and for ICMPv6 the quoted IPv6 header and 8 bytes.
fn headers_end6(f: &[u8]) -> usize {
    let (field, l4) = *chain_offsets(f).last().unwrap();
    let end = match f[field] {
        IPPROTO_TCP => l4 + 20,
        IPPROTO_ICMPV6 => l4 + 8 + 40 + 8,
        _ => l4 + 8,
    };
    end.min(f.len())
}

fn add_to_payload_len(f: &mut [u8], n: usize) {
    let len = u16::from_be_bytes([f[ETH_LEN + 4], f[ETH_LEN + 5]]);
    f[ETH_LEN + 4..ETH_LEN + 6].copy_from_slice(&len.wrapping_add(n as u16).to_be_bytes());
}

fn mutate6(frame: &[u8], mutations: &[Mutation6]) -> Vec<u8> {
    let mut f = frame.to_vec();
    for m in mutations {
        if f.len() < ETH_LEN + 40 || f[12..14] != ETH_P_IPV6.to_be_bytes() {
            // Flipped out of IPv6: only byte flips apply.
            if let Mutation6::FlipAnywhere(i, mask) = m {
                let n = f.len();
                f[i.index(n)] ^= mask;
            }
            continue;
        }
        match m {
            Mutation6::Truncate(i) => {
                if f.len() > ETH_LEN + 40 {
                    f.truncate(ETH_LEN + 40 + i.index(f.len() - ETH_LEN - 40));
                }
            }
            Mutation6::FlipHeader(i, mask) => {
                let n = headers_end6(&f);
                f[i.index(n)] ^= mask;
            }
            Mutation6::FlipAnywhere(i, mask) => {
                let n = f.len();
                f[i.index(n)] ^= mask;
            }
            Mutation6::InsertExt(i, ext) => {
                let (field, start) = *i.get(&chain_offsets(&f));
                let bytes = ext.bytes(f[field]);
                f[field] = ext.code();
                f.splice(start..start, bytes.iter().copied());
                add_to_payload_len(&mut f, bytes.len());
            }
            Mutation6::NextHeader(i, next) => {
                let (field, _) = *i.get(&chain_offsets(&f));
                f[field] = *next;
            }
            Mutation6::PayloadLength(i) => {
                let len = i.index(f.len() - ETH_LEN - 40 + 9) as u16;
                f[ETH_LEN + 4..ETH_LEN + 6].copy_from_slice(&len.to_be_bytes());
            }
        }
    }
    f
}

#[test]
fn mutated_frames_leave_exactly_as_the_model_says() {
    require_privileged!();
    let target = prop_oneof![
        Just(Target::FirstRequest),
        Just(Target::Request),
        Just(Target::Reply),
        Just(Target::Error)
    ];
    run_property(
        "ipv6::mutated_frames_leave_exactly_as_the_model_says",
        20_000,
        50_000,
        (
            flow_case6(),
            target,
            vec(mutation6(), 1..=3),
            any::<Index>(),
        ),
        |h, (case, target, mutations, stray)| {
            let flow = case.flow();
            let (frame, hook) = if let Target::FirstRequest = target {
                (flow.request.clone(), flow.request_hook)
            } else {
                let request = h.step(flow.request_hook, &flow.request)?;
                let Action::Flow { entry, .. } = request.expected.action else {
                    return Err("the request opened no flow".into());
                };
                let reply_hook = case.reply_hook(entry.origin);
                let (seen_src, backend) = read6::endpoints(&request.out);
                match target {
                    Target::Request => (
                        build6(flow.frontend.proto, flow.client, flow.fe_addr, &case.reply),
                        flow.request_hook,
                    ),
                    Target::Reply => (
                        build6(flow.frontend.proto, backend, seen_src, &case.reply),
                        reply_hook,
                    ),
                    _ => (case.error(&request.out), reply_hook),
                }
            };
            let mutated = mutate6(&frame, &mutations);
            if !kernel_runs(&mutated) {
                // Flipped into an ethertype whose header is not there.
                return Ok(());
            }
            h.step(hook, &mutated)?;
            h.step(other_hook(hook, &stray), &mutated)?;
            Ok(())
        },
    );
}
