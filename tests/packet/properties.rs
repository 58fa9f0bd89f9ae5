//! Property tests: random flows, random unrelated frames and random
//! mutations of both, run through the datapath and held against the model.
//!
//! Each test loads the datapath once and drives proptest's `TestRunner` by
//! hand; every case starts from no flows, so that cases (and shrinking)
//! stay independent while the conntrack map stays small.

use std::{
    cell::RefCell,
    net::{Ipv4Addr, SocketAddr, SocketAddrV4},
    time::Instant,
};

use proptest::{
    collection::vec,
    prelude::*,
    sample::{select, Index},
    test_runner::{Config, RngAlgorithm, TestCaseError, TestRunner},
};

use crate::{
    family::{Family, V4},
    fixtures::standard_tables,
    frames::{
        self, read, Frame4, Icmp, ETH_LEN, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IP_DF, IP_MF, L4,
    },
    harness::{kernel_runs, Harness, Step, TC_ACT_UNSPEC},
    model::{Action, FrontendCfg, Hook, Origin},
    require_privileged,
};

/// Runs `cases` cases of `strategy` through `body` on one loaded datapath,
/// then checks the counters against the model's and that at least
/// `min_frames` frames ran.
fn run_property<S: Strategy>(
    name: &str,
    cases: u32,
    min_frames: u64,
    strategy: S,
    body: impl Fn(&mut Harness, S::Value) -> Result<(), String>,
) {
    let harness = RefCell::new(Harness::new(standard_tables()));
    let start = Instant::now();
    let mut runner = TestRunner::new(Config {
        cases,
        // No regression files: a failure is reported with its minimal input.
        failure_persistence: None,
        max_shrink_iters: 2000,
        // Unoptimised, the default ChaCha generator took most of the time
        // of a case; XorShift is plenty for test inputs.
        rng_algorithm: RngAlgorithm::XorShift,
        ..Config::default()
    });
    let result = runner.run(&strategy, |case| {
        let mut h = harness.borrow_mut();
        h.clear_flows();
        body(&mut h, case).map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    let h = harness.into_inner();
    h.check_counters()
        .unwrap_or_else(|e| panic!("{name}: counters after {cases} cases: {e}"));
    let c = &h.model.counters;
    eprintln!(
        "{name}: {cases} cases, {} frames ({} of flows translated, {} ICMP errors \
         translated, {} unparsable), {:.1?}",
        h.frames,
        c.frontends.values().map(|s| s[0]).sum::<u64>(),
        c.icmp_translated,
        c.unparsable,
        start.elapsed()
    );
    assert!(
        h.frames >= min_frames,
        "{name}: only {} frames ran, expected at least {min_frames}",
        h.frames
    );
}

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

// After `ensure!`, which it uses.
#[path = "properties6.rs"]
mod ipv6;

// ---------------------------------------------------------------------------
// Strategies

#[derive(Clone, Debug)]
struct IpParams {
    tos: u8,
    ttl: u8,
    id: u16,
    df: bool,
    options: Vec<u8>,
}

/// IPv4 options: none, NOPs ended by EOL, or random bytes (padded with EOL
/// by the builder); the datapath must not care which.
fn options() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => Just(Vec::new()),
        1 => (1usize..=39).prop_map(|n| [vec![1u8; n], vec![0]].concat()),
        1 => vec(any::<u8>(), 1..=40),
    ]
}

fn ip_params() -> impl Strategy<Value = IpParams> {
    (
        any::<u8>(),
        1..=255u8,
        any::<u16>(),
        any::<bool>(),
        options(),
    )
        .prop_map(|(tos, ttl, id, df, options)| IpParams {
            tos,
            ttl,
            id,
            df,
            options,
        })
}

#[derive(Clone, Debug)]
struct Seg {
    flags: u8,
    seq: u32,
    ack: u32,
    window: u16,
    no_udp_checksum: bool,
    payload: Vec<u8>,
    ip: IpParams,
}

fn seg() -> impl Strategy<Value = Seg> {
    (
        any::<u8>(),
        any::<u32>(),
        any::<u32>(),
        any::<u16>(),
        prop::bool::weighted(0.2),
        vec(any::<u8>(), 0..200),
        ip_params(),
    )
        .prop_map(
            |(flags, seq, ack, window, no_udp_checksum, payload, ip)| Seg {
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

fn apply_ip(f: &mut Frame4, ip: &IpParams) {
    f.ip.tos = ip.tos;
    f.ip.ttl = ip.ttl;
    f.ip.id = ip.id;
    f.ip.frag = if ip.df { IP_DF } else { 0 };
    f.ip.options = ip.options.clone();
}

/// A TCP segment or UDP datagram shaped by `seg`.
fn build(proto: u8, src: SocketAddrV4, dst: SocketAddrV4, seg: &Seg) -> Vec<u8> {
    let mut f = Frame4::flow(proto, src, dst, &seg.payload);
    apply_ip(&mut f, &seg.ip);
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

#[derive(Clone, Copy, Debug)]
enum ClientKind {
    /// A pod with a random address.
    Pod,
    /// The host, from a random address.
    Host,
    /// A pod that is one of the frontend's backends (a loop when it is
    /// chosen).
    Backend,
}

#[derive(Clone, Debug)]
struct ErrorCase {
    /// Index into `ICMP_ERRORS`.
    kind: Index,
    /// How much of the packet is quoted; long values quote all of it.
    quote_len: usize,
    from_router: bool,
    ip: IpParams,
}

fn error_case() -> impl Strategy<Value = ErrorCase> {
    (
        any::<Index>(),
        prop_oneof![Just(28usize), Just(usize::MAX), 20usize..120],
        prop::bool::weighted(0.2),
        ip_params(),
    )
        .prop_map(|(kind, quote_len, from_router, ip)| ErrorCase {
            kind,
            quote_len,
            from_router,
            ip,
        })
}

#[derive(Clone, Debug)]
struct FlowCase {
    /// Index into the frontends that have backends.
    frontend: Index,
    kind: ClientKind,
    pod: Ipv4Addr,
    host: Ipv4Addr,
    backend: Index,
    port: u16,
    /// Where a host flow's reply enters: a local backend pod's veth, or
    /// the uplink.
    host_reply_at_pod: bool,
    request: Seg,
    reply: Seg,
    error: ErrorCase,
    /// Other hooks to run each frame at, indices into the three others.
    strays: [Index; 3],
}

fn flow_case() -> impl Strategy<Value = FlowCase> {
    (
        (
            any::<Index>(),
            prop_oneof![
                Just(ClientKind::Pod),
                Just(ClientKind::Host),
                Just(ClientKind::Backend)
            ],
            any::<u32>().prop_map(|x| Ipv4Addr::from(0x0a00_0000 | (x & 0x00ff_ffff))),
            prop_oneof![Just(V4::HOST_CLIENT), any::<u32>().prop_map(Ipv4Addr::from)],
            any::<Index>(),
            any::<u16>(),
            any::<bool>(),
        ),
        (seg(), seg(), error_case(), any::<[Index; 3]>()),
    )
        .prop_map(
            |(
                (frontend, kind, pod, host, backend, port, host_reply_at_pod),
                (request, reply, error, strays),
            )| {
                FlowCase {
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

/// The IPv4 frontends of the standard tables.
fn ipv4_frontends() -> Vec<FrontendCfg> {
    standard_tables()
        .frontends
        .into_iter()
        .filter(|f| f.addr.is_ipv4())
        .collect()
}

fn translatable() -> Vec<FrontendCfg> {
    ipv4_frontends()
        .into_iter()
        .filter(|f| !f.backends.is_empty())
        .collect()
}

/// The IPv4 address of an IPv4 frontend or backend.
fn v4(a: SocketAddr) -> SocketAddrV4 {
    match a {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(a) => panic!("{a} among the IPv4 frontends"),
    }
}

/// One of the three hooks other than `hook`.
fn other_hook(hook: Hook, i: &Index) -> Hook {
    let others: Vec<Hook> = Hook::ALL.into_iter().filter(|h| *h != hook).collect();
    *i.get(&others)
}

/// The frames of one flow, built as the case says.
struct Flow {
    frontend: FrontendCfg,
    client: SocketAddrV4,
    request_hook: Hook,
    request: Vec<u8>,
}

impl FlowCase {
    fn flow(&self) -> Flow {
        let frontend = self.frontend.get(&translatable()).clone();
        let ip = match self.kind {
            ClientKind::Pod => self.pod,
            ClientKind::Host => self.host,
            ClientKind::Backend => *v4(*self.backend.get(&frontend.backends)).ip(),
        };
        let client = SocketAddrV4::new(ip, self.port);
        let request_hook = match self.kind {
            ClientKind::Host => Hook::UplinkEgress,
            ClientKind::Pod | ClientKind::Backend => Hook::PodIngress,
        };
        let request = build(frontend.proto, client, v4(frontend.addr), &self.request);
        Flow {
            frontend,
            client,
            request_hook,
            request,
        }
    }

    /// Where the flow's replies (and errors toward the client) are
    /// translated, given the origin the flow got.
    fn reply_hook(&self, origin: Origin) -> Hook {
        match origin {
            Origin::Pod => Hook::PodEgress,
            Origin::Loop => Hook::PodIngress,
            Origin::Host if self.host_reply_at_pod => Hook::PodIngress,
            Origin::Host => Hook::UplinkIngress,
        }
    }

    /// An ICMP error toward the client about `sent`, the request as the
    /// backend received it (a frame).
    fn error(&self, sent: &[u8]) -> Vec<u8> {
        let (seen_src, backend) = read::endpoints(sent);
        let (_, icmp_type, code, rest) = *self.error.kind.get(V4::ICMP_ERRORS);
        let src = if self.error.from_router {
            V4::ROUTER
        } else {
            *backend.ip()
        };
        let mut f = Frame4::icmp_error(
            src,
            *seen_src.ip(),
            icmp_type,
            code,
            rest,
            &sent[ETH_LEN..],
            self.error.quote_len,
        );
        apply_ip(&mut f, &self.error.ip);
        f.bytes()
    }
}

/// The steps of a flow's life: the request, the reply and an error.
struct FlowRun {
    flow: Flow,
    request: Step,
    reply_frame: Vec<u8>,
    reply: Step,
    error_frame: Vec<u8>,
    error: Step,
}

/// Runs a flow's request, reply and ICMP error at their hooks, and each at
/// one other hook, all checked against the model.
fn run_flow(h: &mut Harness, c: &FlowCase) -> Result<FlowRun, String> {
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
    let (seen_src, backend) = read::endpoints(&request.out);
    let reply_frame = build(flow.frontend.proto, backend, seen_src, &c.reply);
    let reply = h.step(reply_hook, &reply_frame)?;
    ensure!(
        matches!(reply.expected.action, Action::Flow { .. }),
        "the reply was not translated: {:?}",
        reply.expected.action
    );
    h.step(other_hook(reply_hook, &c.strays[1]), &reply_frame)?;

    let error_frame = c.error(&request.out);
    let error = h.step(reply_hook, &error_frame)?;
    let quoted_ihl = read::ihl(&request.out);
    if c.error.quote_len >= quoted_ihl + 4 {
        ensure!(
            matches!(error.expected.action, Action::IcmpError { .. }),
            "an error quoting {} bytes was not translated",
            c.error.quote_len
        );
    }
    h.step(other_hook(reply_hook, &c.strays[2]), &error_frame)?;
    Ok(FlowRun {
        flow,
        request,
        reply_frame,
        reply,
        error_frame,
        error,
    })
}

// ---------------------------------------------------------------------------
// Unrelated frames

/// Addresses that matter to the tables, and random ones.
fn addr() -> impl Strategy<Value = Ipv4Addr> {
    let mut known: Vec<Ipv4Addr> = vec![V4::POD_CLIENT, V4::HOST_CLIENT, V4::ROUTER];
    for fe in ipv4_frontends() {
        known.push(*v4(fe.addr).ip());
        known.extend(fe.backends.iter().map(|b| *v4(*b).ip()));
    }
    prop_oneof![any::<u32>().prop_map(Ipv4Addr::from), select(known)]
}

fn port() -> impl Strategy<Value = u16> {
    let mut known: Vec<u16> = Vec::new();
    for fe in ipv4_frontends() {
        known.push(fe.addr.port());
        known.extend(fe.backends.iter().map(|b| b.port()));
    }
    prop_oneof![any::<u16>(), select(known)]
}

fn endpoint() -> impl Strategy<Value = SocketAddrV4> {
    (addr(), port()).prop_map(|(a, p)| SocketAddrV4::new(a, p))
}

#[derive(Clone, Debug)]
enum Noise {
    /// Any ethertype but IPv4, any payload.
    Ethertype {
        ethertype: u16,
        payload: Vec<u8>,
    },
    Arp {
        sender: Ipv4Addr,
        target: Ipv4Addr,
    },
    Ipv6 {
        dst: SocketAddrV4,
        payload: Vec<u8>,
    },
    /// IPv4 of a protocol that is never translated.
    OtherProto {
        proto: u8,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        bytes: Vec<u8>,
        ip: IpParams,
    },
    /// TCP or UDP that belongs to no frontend.
    Flow {
        proto: u8,
        src: SocketAddrV4,
        dst: SocketAddrV4,
        seg: Seg,
    },
    /// Any ICMP message; errors quote a random packet of no flow.
    Icmp {
        src: Ipv4Addr,
        dst: Ipv4Addr,
        icmp_type: u8,
        code: u8,
        rest: [u8; 4],
        quoted: Option<(u8, SocketAddrV4, SocketAddrV4, Seg, usize)>,
        data: Vec<u8>,
        ip: IpParams,
    },
}

fn is_frontend(proto: u8, dst: SocketAddrV4) -> bool {
    ipv4_frontends()
        .iter()
        .any(|f| f.proto == proto && f.addr == dst.into() && !f.backends.is_empty())
}

fn noise() -> impl Strategy<Value = Noise> {
    let proto = prop_oneof![Just(IPPROTO_TCP), Just(IPPROTO_UDP)];
    prop_oneof![
        1 => (
            any::<u16>().prop_filter("not IP", |t| ![frames::ETH_P_IP, frames::ETH_P_IPV6].contains(t)),
            vec(any::<u8>(), 0..120),
        )
            .prop_map(|(ethertype, payload)| Noise::Ethertype { ethertype, payload }),
        1 => (addr(), addr()).prop_map(|(sender, target)| Noise::Arp { sender, target }),
        1 => (endpoint(), vec(any::<u8>(), 0..100)).prop_map(|(dst, payload)| Noise::Ipv6 { dst, payload }),
        1 => (
            any::<u8>().prop_filter("not translated", |p| ![IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP].contains(p)),
            addr(),
            addr(),
            vec(any::<u8>(), 0..100),
            ip_params(),
        )
            .prop_map(|(proto, src, dst, bytes, ip)| Noise::OtherProto { proto, src, dst, bytes, ip }),
        4 => (proto.clone(), endpoint(), endpoint(), seg())
            .prop_filter("to no frontend", |(proto, _, dst, _)| !is_frontend(*proto, *dst))
            .prop_map(|(proto, src, dst, seg)| Noise::Flow { proto, src, dst, seg }),
        2 => (
            (addr(), addr(), prop_oneof![any::<u8>(), select(vec![0u8, 3, 8, 11])], any::<u8>(), any::<[u8; 4]>()),
            prop::option::of((proto, endpoint(), endpoint(), seg(), 0usize..100)),
            vec(any::<u8>(), 0..100),
            ip_params(),
        )
            .prop_map(|((src, dst, icmp_type, code, rest), quoted, data, ip)| Noise::Icmp {
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

impl Noise {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Noise::Ethertype { ethertype, payload } => frames::ethernet(*ethertype, payload),
            Noise::Arp { sender, target } => frames::arp_request(*sender, *target),
            Noise::Ipv6 { dst, payload } => frames::ipv6_udp(*dst.ip(), dst.port(), payload),
            Noise::OtherProto {
                proto,
                src,
                dst,
                bytes,
                ip,
            } => {
                let mut f = Frame4::icmp(
                    *src,
                    *dst,
                    Icmp {
                        icmp_type: 0,
                        code: 0,
                        rest: [0; 4],
                        data: vec![],
                    },
                );
                f.l4 = L4::Other {
                    proto: *proto,
                    bytes: bytes.clone(),
                };
                apply_ip(&mut f, ip);
                f.bytes()
            }
            Noise::Flow {
                proto,
                src,
                dst,
                seg,
            } => build(*proto, *src, *dst, seg),
            Noise::Icmp {
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
                        let q = build(*proto, *qsrc, *qdst, seg);
                        q[ETH_LEN..(ETH_LEN + len).min(q.len())].to_vec()
                    }
                    None => data.clone(),
                };
                let mut f = Frame4::icmp(
                    *src,
                    *dst,
                    Icmp {
                        icmp_type: *icmp_type,
                        code: *code,
                        rest: *rest,
                        data,
                    },
                );
                apply_ip(&mut f, ip);
                f.bytes()
            }
        }
    }
}

#[test]
fn unrelated_frames_pass_bit_identical_at_every_hook() {
    require_privileged!();
    run_property(
        "unrelated_frames_pass_bit_identical_at_every_hook",
        25_000,
        100_000,
        noise(),
        |h, noise| {
            let frame = noise.bytes();
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
// Flows

#[test]
fn translated_frames_match_the_model_and_carry_valid_checksums() {
    require_privileged!();
    run_property(
        "translated_frames_match_the_model_and_carry_valid_checksums",
        25_000,
        150_000,
        flow_case(),
        |h, case| {
            let run = run_flow(h, &case)?;
            // `step` checked the bytes against the model and, since these
            // frames were built valid, their checksums with etherparse.
            for (what, input, step) in [
                ("request", &run.flow.request, &run.request),
                ("reply", &run.reply_frame, &run.reply),
                ("error", &run.error_frame, &run.error),
            ] {
                ensure!(
                    crate::harness::verify_checksums(input).is_ok(),
                    "the {what} was built with bad checksums"
                );
                if step.expected.translated() {
                    crate::harness::verify_checksums(&step.out)
                        .map_err(|e| format!("translated {what}: {e}"))?;
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
        "a_client_sees_only_the_frontend_address",
        10_000,
        60_000,
        flow_case(),
        |h, case| {
            let run = run_flow(h, &case)?;
            let Flow {
                frontend, client, ..
            } = &run.flow;
            let (seen_src, backend) = read::endpoints(&run.request.out);
            ensure!(
                frontend.backends.contains(&backend.into()),
                "the request went to {backend}, not one of {:?}",
                frontend.backends
            );
            let fe_addr = v4(frontend.addr);
            let looped = backend.ip() == client.ip() && run.flow.request_hook == Hook::PodIngress;
            let want_src = if looped {
                SocketAddrV4::new(*fe_addr.ip(), client.port())
            } else {
                *client
            };
            ensure!(
                seen_src == want_src,
                "the backend sees {seen_src}, expected {want_src}"
            );

            ensure!(
                read::endpoints(&run.reply.out) == (fe_addr, *client),
                "the client receives a reply {:?}, expected from {fe_addr} to {client}",
                read::endpoints(&run.reply.out),
            );

            if matches!(run.error.expected.action, Action::IcmpError { .. }) {
                let out = &run.error.out;
                let want_src = if case.error.from_router {
                    V4::ROUTER
                } else {
                    *fe_addr.ip()
                };
                ensure!(
                    read::src(out) == want_src,
                    "the error comes from {}",
                    read::src(out)
                );
                ensure!(
                    read::dst(out) == *client.ip(),
                    "the error goes to {}",
                    read::dst(out)
                );
                let quote = read::quote(out);
                let q_src = Ipv4Addr::from(<[u8; 4]>::try_from(&quote[12..16]).unwrap());
                let q_dst = Ipv4Addr::from(<[u8; 4]>::try_from(&quote[16..20]).unwrap());
                ensure!(
                    (q_src, q_dst) == (*client.ip(), *fe_addr.ip()),
                    "the error quotes {q_src} -> {q_dst}"
                );
                if quote.len() >= read::ihl(&run.request.out) + 4 {
                    ensure!(
                        read::endpoints_of_ip(quote) == (*client, fe_addr),
                        "the error quotes {:?}",
                        read::endpoints_of_ip(quote)
                    );
                }
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
// Mutations

#[derive(Clone, Debug)]
enum Mutation {
    /// Cut the frame (never below the Ethernet header).
    Truncate(Index),
    /// Flip bits of a byte of the headers.
    FlipHeader(Index, u8),
    /// Flip bits of any byte.
    FlipAnywhere(Index, u8),
    /// Make it a fragment, with the IP header checksum fixed or not.
    Fragment { mf: bool, offset: u16, fix: bool },
    /// Shorten the IP total length, leaving trailing bytes.
    ShortenTotalLength(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => any::<Index>().prop_map(Mutation::Truncate),
        4 => (any::<Index>(), 1..=255u8).prop_map(|(i, m)| Mutation::FlipHeader(i, m)),
        1 => (any::<Index>(), 1..=255u8).prop_map(|(i, m)| Mutation::FlipAnywhere(i, m)),
        1 => (any::<bool>(), 0u16..0x2000, any::<bool>())
            .prop_map(|(mf, offset, fix)| Mutation::Fragment { mf, offset: if mf { offset } else { offset.max(1) }, fix }),
        1 => any::<Index>().prop_map(Mutation::ShortenTotalLength),
    ]
}

/// Where the headers of a valid frame end: Ethernet, IP, the L4 header,
/// and for ICMP the quoted IP header and 8 bytes.
fn headers_end(frame: &[u8]) -> usize {
    let ihl = read::ihl(frame);
    let l4 = ETH_LEN + ihl;
    let end = match frame[ETH_LEN + 9] {
        IPPROTO_TCP => l4 + 20,
        IPPROTO_UDP => l4 + 8,
        _ if frame.len() > l4 + 8 => l4 + 8 + usize::from(frame[l4 + 8] & 0x0f) * 4 + 8,
        _ => l4 + 8,
    };
    end.min(frame.len())
}

fn refresh_ip_checksum(frame: &mut [u8]) {
    let ihl = read::ihl(frame).max(20);
    if frame.len() < ETH_LEN + ihl {
        return;
    }
    frame[ETH_LEN + 10..ETH_LEN + 12].fill(0);
    let c = frames::internet_checksum(&[&frame[ETH_LEN..ETH_LEN + ihl]]);
    frame[ETH_LEN + 10..ETH_LEN + 12].copy_from_slice(&c.to_be_bytes());
}

fn mutate(frame: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let headers = headers_end(frame);
    let mut f = frame.to_vec();
    for m in mutations {
        match m {
            // Not below an IPv4 header: the kernel would not run the frame.
            Mutation::Truncate(i) if f.len() > ETH_LEN + 20 => {
                f.truncate(ETH_LEN + 20 + i.index(f.len() - ETH_LEN - 20));
            }
            Mutation::Truncate(_) => {}
            Mutation::FlipHeader(i, mask) => {
                let n = headers.min(f.len());
                f[i.index(n)] ^= mask;
            }
            Mutation::FlipAnywhere(i, mask) => {
                let n = f.len();
                f[i.index(n)] ^= mask;
            }
            Mutation::Fragment { mf, offset, fix } if f.len() >= ETH_LEN + 20 => {
                let frag = u16::from_be_bytes([f[ETH_LEN + 6], f[ETH_LEN + 7]]) & IP_DF;
                let frag = frag | if *mf { IP_MF } else { 0 } | offset;
                f[ETH_LEN + 6..ETH_LEN + 8].copy_from_slice(&frag.to_be_bytes());
                if *fix {
                    refresh_ip_checksum(&mut f);
                }
            }
            Mutation::Fragment { .. } => {}
            Mutation::ShortenTotalLength(i) if f.len() >= ETH_LEN + 20 => {
                let total = u16::from_be_bytes([f[ETH_LEN + 2], f[ETH_LEN + 3]]);
                let shorter = i.index(usize::from(total) + 1) as u16;
                f[ETH_LEN + 2..ETH_LEN + 4].copy_from_slice(&shorter.to_be_bytes());
                refresh_ip_checksum(&mut f);
            }
            Mutation::ShortenTotalLength(_) => {}
        }
    }
    f
}

#[derive(Clone, Copy, Debug)]
enum Target {
    /// The request that opens the flow.
    FirstRequest,
    /// A later request of the flow.
    Request,
    Reply,
    Error,
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
        "mutated_frames_leave_exactly_as_the_model_says",
        50_000,
        125_000,
        (flow_case(), target, vec(mutation(), 1..=3), any::<Index>()),
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
                let (seen_src, backend) = read::endpoints(&request.out);
                match target {
                    Target::Request => {
                        let next = build(
                            flow.frontend.proto,
                            flow.client,
                            v4(flow.frontend.addr),
                            &case.reply,
                        );
                        (next, flow.request_hook)
                    }
                    Target::Reply => (
                        build(flow.frontend.proto, backend, seen_src, &case.reply),
                        reply_hook,
                    ),
                    _ => (case.error(&request.out), reply_hook),
                }
            };
            let mutated = mutate(&frame, &mutations);
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
