//! Runs frames through the datapath's programs with `BPF_PROG_TEST_RUN`,
//! next to the reference model, and checks what came out.
//!
//! The kernel runs a TC program on a frame as if it had arrived on the
//! test's namespace's loopback device (net/bpf/test_run.c,
//! `bpf_prog_test_run_skb`); redirects are only reported in the verdict.
//! Some frames are refused there (EINVAL) before any program runs: shorter
//! than an Ethernet header, and (measured on Linux 6.18) IPv4 frames shorter
//! than an IPv4 header, IPv6 frames shorter than an IPv6 header; see
//! `kernel_runs`.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::atomic::{AtomicU64, Ordering},
};

use aya::programs::{TestRun as _, TestRunOptions};
use etherparse::{
    checksum::Sum16BitWords, Ipv4HeaderSlice, Ipv6HeaderSlice, NetSlice, SlicedPacket,
    TransportSlice,
};
use hairpin::{
    family::{Addr, FamilyMaps},
    loader::{Datapath, LoadOptions, Maps},
};
use hairpin_common::{
    Backend, BackendKey, Counter, CtDir, CtEntry, CtEntryV4, CtEntryV6, CtKey, CtOrigin,
    CtTimeouts, Frontend, FrontendKey, FrontendStats, NodeConfig,
};

use crate::{
    frames::{ETH_LEN, IPPROTO_TCP, IPPROTO_UDP},
    model::{Action, Expected, FrontendCfg, Hook, Model, Origin, Tables, Tuple},
};

pub const TC_ACT_UNSPEC: i32 = -1;
pub const TC_ACT_REDIRECT: i32 = 7;

/// Frames checked against the model by every harness of the run: the
/// suite's total shows in the last line a harness prints when dropped.
static FRAMES_CHECKED: AtomicU64 = AtomicU64::new(0);

/// Conntrack lifetimes far beyond a test's run, so that no flow expires
/// under a test (the model does not know time).
const DAY_NS: u64 = 24 * 3600 * 1_000_000_000;

/// An address as the maps hold it, written here from the wire format
/// (each 4-byte group read in native order), not with the agent's helpers.
pub trait Wire: Addr {
    fn of(ip: IpAddr) -> Self;
    fn to_ip(self) -> IpAddr;
}

impl Wire for u32 {
    fn of(ip: IpAddr) -> Self {
        let IpAddr::V4(a) = ip else {
            panic!("{ip} in an IPv4 map")
        };
        u32::from_ne_bytes(a.octets())
    }

    fn to_ip(self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(self.to_ne_bytes()))
    }
}

impl Wire for [u32; 4] {
    fn of(ip: IpAddr) -> Self {
        let IpAddr::V6(a) = ip else {
            panic!("{ip} in an IPv6 map")
        };
        let o = a.octets();
        std::array::from_fn(|i| u32::from_ne_bytes(o[i * 4..i * 4 + 4].try_into().unwrap()))
    }

    fn to_ip(self) -> IpAddr {
        let mut o = [0u8; 16];
        for (i, w) in self.iter().enumerate() {
            o[i * 4..i * 4 + 4].copy_from_slice(&w.to_ne_bytes());
        }
        IpAddr::V6(Ipv6Addr::from(o))
    }
}

/// A port as the maps hold it: network byte order.
fn wire_port(port: u16) -> u16 {
    u16::from_ne_bytes(port.to_be_bytes())
}

pub fn ct_key<A: Wire>(t: &Tuple) -> CtKey<A> {
    CtKey {
        saddr: A::of(t.src.ip()),
        daddr: A::of(t.dst.ip()),
        sport: wire_port(t.src.port()),
        dport: wire_port(t.dst.port()),
        proto: t.proto,
        _pad: [0; 3],
    }
}

pub fn tuple_of<A: Wire>(k: &CtKey<A>) -> Tuple {
    let ep =
        |addr: A, port: u16| SocketAddr::new(addr.to_ip(), u16::from_be_bytes(port.to_ne_bytes()));
    Tuple::new(k.proto, ep(k.saddr, k.sport), ep(k.daddr, k.dport))
}

/// A conntrack entry of either family, its tuple read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtView {
    pub dir: u8,
    pub origin: u8,
    pub nat: Tuple,
    pub frontend_id: u32,
    pub created_ns: u64,
}

impl<A: Wire> From<CtEntry<A>> for CtView {
    fn from(e: CtEntry<A>) -> Self {
        Self {
            dir: e.dir,
            origin: e.origin,
            nat: tuple_of(&e.nat),
            frontend_id: e.frontend_id,
            created_ns: e.created_ns,
        }
    }
}

/// The entry of `t` in the conntrack map of its family.
fn ct_entry(maps: &Maps, t: &Tuple) -> Option<CtView> {
    match t.src {
        SocketAddr::V4(_) => maps.v4.conntrack.get(&ct_key(t), 0).ok().map(CtView::from),
        SocketAddr::V6(_) => maps.v6.conntrack.get(&ct_key(t), 0).ok().map(CtView::from),
    }
}

/// Writes a frontend and its backends into the maps of its family.
fn insert_frontend<A: Wire>(maps: &mut FamilyMaps<A>, fe: &FrontendCfg) {
    let key = FrontendKey {
        addr: A::of(fe.addr.ip()),
        port: wire_port(fe.addr.port()),
        proto: fe.proto,
        _pad: 0,
    };
    let value = Frontend {
        id: fe.id,
        slots: fe.backends.len() as u32,
    };
    maps.frontends
        .insert(key, value, 0)
        .expect("inserting a frontend");
    let users = maps.frontend_addrs.get(&key.addr, 0).unwrap_or(0);
    maps.frontend_addrs
        .insert(key.addr, users + 1, 0)
        .expect("inserting a frontend address");
    for (slot, b) in fe.backends.iter().enumerate() {
        let backend = Backend {
            addr: A::of(b.ip()),
            port: wire_port(b.port()),
            _pad: 0,
        };
        let key = BackendKey {
            frontend_id: fe.id,
            slot: slot as u32,
        };
        maps.backends
            .insert(key, backend, 0)
            .expect("inserting a backend");
        let users = maps.backend_addrs.get(&backend.addr, 0).unwrap_or(0);
        maps.backend_addrs
            .insert(backend.addr, users + 1, 0)
            .expect("inserting a backend address");
    }
}

/// The datapath loaded once, its maps filled from `Tables`, and the model
/// that follows it.
pub struct Harness {
    dp: Datapath,
    pub maps: Maps,
    pub model: Model,
    /// Frames run through a program and checked against the model so far.
    pub frames: u64,
}

impl Harness {
    pub fn new(tables: Tables) -> Self {
        let opts = LoadOptions {
            timeouts: CtTimeouts {
                syn: DAY_NS,
                tcp: DAY_NS,
                close: DAY_NS,
                udp: DAY_NS,
            },
            ..LoadOptions::default()
        };
        let mut dp = Datapath::load(&opts, None).expect("loading the datapath");
        let mut maps = dp.take_maps().expect("taking the datapath's maps");
        let mut ids: Vec<u32> = tables.frontends.iter().map(|f| f.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(
            ids.len(),
            tables.frontends.len(),
            "frontend ids are shared across families (FRONTEND_STATS): they must differ"
        );
        for fe in &tables.frontends {
            assert!(
                fe.backends.iter().all(|b| b.is_ipv4() == fe.addr.is_ipv4()),
                "frontend {} has backends of another family",
                fe.id
            );
            match fe.addr {
                SocketAddr::V4(_) => insert_frontend(&mut maps.v4, fe),
                SocketAddr::V6(_) => insert_frontend(&mut maps.v6, fe),
            }
        }
        if let Some((ifindex, mac)) = tables.uplink {
            let node = NodeConfig {
                uplink_ifindex: ifindex,
                uplink_mac: mac,
                ..NodeConfig::default()
            };
            maps.node.set(0, node, 0).expect("setting the node");
        }
        Self {
            dp,
            maps,
            model: Model::new(tables),
            frames: 0,
        }
    }

    /// Runs `frame` through the program at `hook`: its verdict and the frame
    /// as it left.
    fn run(&mut self, hook: Hook, frame: &[u8]) -> (i32, Vec<u8>) {
        assert!(
            kernel_runs(frame),
            "BPF_PROG_TEST_RUN refuses this frame: {frame:02x?}"
        );
        let prog = self.dp.program(hook.program()).expect("the hook's program");
        let mut out = vec![0u8; frame.len() + 256];
        let res = prog
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ..TestRunOptions::default()
            })
            .unwrap_or_else(|e| panic!("BPF_PROG_TEST_RUN of {}: {e}", hook.program()));
        out.truncate(res.data_size_out as usize);
        (res.return_value as i32, out)
    }

    /// The entry of an IPv4 tuple in `CT_V4`.
    pub fn ct(&self, t: &Tuple) -> Option<CtEntryV4> {
        self.maps.v4.conntrack.get(&ct_key(t), 0).ok()
    }

    /// The entry of an IPv6 tuple in `CT_V6`.
    pub fn ct6(&self, t: &Tuple) -> Option<CtEntryV6> {
        self.maps.v6.conntrack.get(&ct_key(t), 0).ok()
    }

    /// The entry of a tuple of either family.
    pub fn entry(&self, t: &Tuple) -> Option<CtView> {
        ct_entry(&self.maps, t)
    }

    /// Runs `frame` at `hook` and checks the datapath against the model:
    /// the verdict, every byte, the conntrack entries of a new flow and,
    /// for a translated frame whose checksums were right, its checksums
    /// (read independently with etherparse).
    pub fn step(&mut self, hook: Hook, frame: &[u8]) -> Result<Step, String> {
        let (verdict, out) = self.run(hook, frame);
        self.frames += 1;
        FRAMES_CHECKED.fetch_add(1, Ordering::Relaxed);
        let maps = &self.maps;
        let chosen = |key: &Tuple| Some(ct_entry(maps, key)?.nat.dst);
        let expected = self
            .model
            .process(hook, frame, chosen)
            .map_err(|e| format!("at {hook:?}: {e}"))?;
        let context = || format!("at {hook:?}, frame in:\n{}", hexdump(frame));
        expected
            .check(verdict, &out)
            .map_err(|e| format!("{e}\n{}", context()))?;
        if let Action::Flow {
            entry,
            new_flow: true,
        } = expected.action
        {
            // Both entries of the new flow, as the spec has them.
            let key = expected.key.expect("the model's tuple of a flow's packet");
            let origin = match entry.origin {
                Origin::Pod => CtOrigin::Pod,
                Origin::Host => CtOrigin::Host,
                Origin::Loop => CtOrigin::Loop,
            } as u8;
            for (what, at, dir, to) in [
                ("forward", key, CtDir::Forward, entry.to),
                (
                    "reverse",
                    entry.to.reversed(),
                    CtDir::Reverse,
                    key.reversed(),
                ),
            ] {
                let e = self.entry(&at).ok_or_else(|| {
                    format!("a new flow has no {what} entry keyed {at:?}\n{}", context())
                })?;
                if (e.dir, e.origin, e.nat, e.frontend_id)
                    != (dir as u8, origin, to, entry.frontend_id)
                {
                    return Err(format!(
                        "the {what} entry of a new flow is {e:?}, expected {dir:?} {:?} to {to:?} of frontend {}\n{}",
                        entry.origin,
                        entry.frontend_id,
                        context()
                    ));
                }
            }
        }
        if expected.translated() && verify_checksums(frame).is_ok() {
            verify_checksums(&out)
                .map_err(|e| format!("translated frame with bad checksums: {e}\n{}", context()))?;
        }
        Ok(Step {
            verdict,
            out,
            expected,
        })
    }

    /// `step`, failing the test on a mismatch.
    pub fn expect_step(&mut self, hook: Hook, frame: &[u8]) -> Step {
        self.step(hook, frame).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Deletes every flow the model knows of, in the kernel and the model,
    /// so that a property's case starts from no flows.
    pub fn clear_flows(&mut self) {
        for key in self.model.keys() {
            // Ignored error: an entry the datapath never made is not there.
            let _ = match key.src {
                SocketAddr::V4(_) => self.maps.v4.conntrack.remove(&ct_key(&key)),
                SocketAddr::V6(_) => self.maps.v6.conntrack.remove(&ct_key(&key)),
            };
        }
        self.model.clear_flows();
    }

    pub fn frontend_stats(&self, id: u32) -> FrontendStats {
        let per_cpu = self
            .maps
            .frontend_stats
            .get(&id, 0)
            .expect("reading FRONTEND_STATS");
        per_cpu
            .iter()
            .fold(FrontendStats::default(), |a, s| FrontendStats {
                packets: a.packets + s.packets,
                bytes: a.bytes + s.bytes,
                flows: a.flows + s.flows,
                sock_connects: a.sock_connects + s.sock_connects,
                sock_datagrams: a.sock_datagrams + s.sock_datagrams,
            })
    }

    pub fn counter(&self, c: Counter) -> u64 {
        let per_cpu = self
            .maps
            .global_stats
            .get(&(c as u32), 0)
            .expect("reading GLOBAL_STATS");
        per_cpu.iter().sum()
    }

    /// Checks the datapath's counters against the model's.
    pub fn check_counters(&self) -> Result<(), String> {
        for fe in &self.model.tables.frontends {
            let [packets, bytes, flows] = self
                .model
                .counters
                .frontends
                .get(&fe.id)
                .copied()
                .unwrap_or_default();
            // Frames through TC never count on the socket path.
            let want = FrontendStats {
                packets,
                bytes,
                flows,
                ..FrontendStats::default()
            };
            let got = self.frontend_stats(fe.id);
            if got != want {
                return Err(format!(
                    "FRONTEND_STATS[{}] is {got:?}, expected {want:?}",
                    fe.id
                ));
            }
        }
        for (c, want) in [
            (Counter::Unparsable, self.model.counters.unparsable),
            (Counter::IcmpTranslated, self.model.counters.icmp_translated),
        ] {
            let got = self.counter(c);
            if got != want {
                return Err(format!("counter {} is {got}, expected {want}", c.name()));
            }
        }
        Ok(())
    }
}

/// Reports how many frames the test checked (seen with `--nocapture`).
impl Drop for Harness {
    fn drop(&mut self) {
        let test = std::thread::current().name().unwrap_or("?").to_owned();
        eprintln!(
            "frames checked: {} by {test}, {} by the suite so far",
            self.frames,
            FRAMES_CHECKED.load(Ordering::Relaxed)
        );
    }
}

/// Whether `BPF_PROG_TEST_RUN` runs a program on `frame` at all: it wants
/// an Ethernet header, and the network header its ethertype announces.
pub fn kernel_runs(frame: &[u8]) -> bool {
    let network_header = match frame.get(12..14) {
        Some([0x08, 0x00]) => 20,
        Some([0x86, 0xdd]) => 40,
        Some(_) => 0,
        None => return false,
    };
    frame.len() >= ETH_LEN + network_header
}

/// The tuple of an IPv4 TCP or UDP frame.
pub fn tuple_of_frame_key(frame: &[u8]) -> Tuple {
    let (src, dst) = crate::frames::read::endpoints(frame);
    Tuple::new(frame[ETH_LEN + 9], src, dst)
}

fn hexdump(frame: &[u8]) -> String {
    frame
        .chunks(16)
        .enumerate()
        .map(|(row, chunk)| format!("{:04x}: {chunk:02x?}\n", row * 16))
        .collect()
}

/// A frame run at a hook, checked against the model.
pub struct Step {
    pub verdict: i32,
    pub out: Vec<u8>,
    pub expected: Expected,
}

fn same_csum(a: u16, b: u16) -> bool {
    a == b || (a == 0 && b == 0xffff) || (a == 0xffff && b == 0)
}

/// Checks every checksum of an IPv4 or IPv6 frame with etherparse.
pub fn verify_checksums(frame: &[u8]) -> Result<(), String> {
    let p = SlicedPacket::from_ethernet(frame).map_err(|e| format!("unreadable frame: {e}"))?;
    match &p.net {
        Some(NetSlice::Ipv4(_)) => verify_checksums_v4(&p),
        Some(NetSlice::Ipv6(ip)) => {
            let h = ip.header();
            verify_transport_v6(h.source(), h.destination(), p.transport.as_ref(), "")?;
            if let Some(TransportSlice::Icmpv6(i)) = &p.transport {
                verify_quoted_v6(i.payload())?;
            }
            Ok(())
        }
        other => Err(format!("not an IP frame: {other:?}")),
    }
}

/// Checks every checksum of an IPv4 frame: the IP header's, the TCP, UDP
/// or ICMP one, and for an ICMP error the quoted IP header's and, when the
/// whole quoted packet is there, its TCP or UDP checksum.
fn verify_checksums_v4(p: &SlicedPacket<'_>) -> Result<(), String> {
    let Some(NetSlice::Ipv4(ip)) = &p.net else {
        return Err("not an IPv4 frame".into());
    };
    let h = ip.header();
    let want = h.to_header().calc_header_checksum();
    if !same_csum(h.header_checksum(), want) {
        return Err(format!(
            "IP header checksum {:#06x}, computed {want:#06x}",
            h.header_checksum()
        ));
    }
    match &p.transport {
        Some(TransportSlice::Tcp(t)) => {
            let want = t
                .calc_checksum_ipv4(h.source(), h.destination())
                .map_err(|e| e.to_string())?;
            if !same_csum(t.checksum(), want) {
                return Err(format!(
                    "TCP checksum {:#06x}, computed {want:#06x}",
                    t.checksum()
                ));
            }
        }
        Some(TransportSlice::Udp(u)) if u.checksum() != 0 => {
            let want = u
                .to_header()
                .calc_checksum_ipv4_raw(h.source(), h.destination(), u.payload())
                .map_err(|e| e.to_string())?;
            if u.checksum() != want {
                return Err(format!(
                    "UDP checksum {:#06x}, computed {want:#06x}",
                    u.checksum()
                ));
            }
        }
        Some(TransportSlice::Udp(_)) => {}
        Some(TransportSlice::Icmpv4(i)) => {
            if Sum16BitWords::new().add_slice(i.slice()).ones_complement() != 0 {
                return Err(format!("ICMP checksum {:#06x} is wrong", i.checksum()));
            }
            verify_quoted(i.payload())?;
        }
        other => return Err(format!("unexpected transport {other:?}")),
    }
    Ok(())
}

/// Checks the TCP, UDP or ICMPv6 checksum of an IPv6 packet from `src`
/// to `dst` (`what` names a quoted packet in messages). A zero UDP checksum
/// is wrong in IPv6 (RFC 8200 section 8.1).
fn verify_transport_v6(
    src: [u8; 16],
    dst: [u8; 16],
    transport: Option<&TransportSlice<'_>>,
    what: &str,
) -> Result<(), String> {
    match transport {
        Some(TransportSlice::Tcp(t)) => {
            let want = t.calc_checksum_ipv6(src, dst).map_err(|e| e.to_string())?;
            if !same_csum(t.checksum(), want) {
                return Err(format!(
                    "{what}TCP checksum {:#06x}, computed {want:#06x}",
                    t.checksum()
                ));
            }
        }
        Some(TransportSlice::Udp(u)) => {
            if u.checksum() == 0 {
                return Err(format!("{what}UDP checksum zero (none) in IPv6"));
            }
            let want = u
                .to_header()
                .calc_checksum_ipv6_raw(src, dst, u.payload())
                .map_err(|e| e.to_string())?;
            if u.checksum() != want {
                return Err(format!(
                    "{what}UDP checksum {:#06x}, computed {want:#06x}",
                    u.checksum()
                ));
            }
        }
        Some(TransportSlice::Icmpv6(i)) => {
            if !i.is_checksum_valid(src, dst) {
                return Err(format!(
                    "{what}ICMPv6 checksum {:#06x} is wrong",
                    i.checksum()
                ));
            }
        }
        other => return Err(format!("unexpected {what}transport {other:?}")),
    }
    Ok(())
}

/// Checks the TCP or UDP checksum of the packet quoted by an ICMPv6 error,
/// when all of it is there (a zero UDP checksum stands for none here).
fn verify_quoted_v6(quote: &[u8]) -> Result<(), String> {
    let Ok(h) = Ipv6HeaderSlice::from_slice(quote) else {
        // Not even the quoted IPv6 header: nothing to check.
        return Ok(());
    };
    let total = 40 + usize::from(h.payload_length());
    if quote.len() < total || h.payload_length() == 0 {
        return Ok(());
    }
    let Ok(p) = SlicedPacket::from_ip(&quote[..total]) else {
        return Ok(());
    };
    match &p.transport {
        Some(TransportSlice::Udp(u)) if u.checksum() == 0 => Ok(()),
        t @ Some(TransportSlice::Tcp(_) | TransportSlice::Udp(_)) => {
            verify_transport_v6(h.source(), h.destination(), t.as_ref(), "quoted ")
        }
        _ => Ok(()),
    }
}

/// Checks the checksums of the packet quoted by an ICMP error.
fn verify_quoted(quote: &[u8]) -> Result<(), String> {
    let Ok(h) = Ipv4HeaderSlice::from_slice(quote) else {
        // Not even the quoted IP header: nothing to check.
        return Ok(());
    };
    let want = h.to_header().calc_header_checksum();
    if !same_csum(h.header_checksum(), want) {
        return Err(format!(
            "quoted IP header checksum {:#06x}, computed {want:#06x}",
            h.header_checksum()
        ));
    }
    let total = usize::from(h.total_len());
    if quote.len() < total {
        return Ok(());
    }
    let l4 = &quote[h.slice().len()..total];
    match h.protocol().0 {
        IPPROTO_TCP => {
            let t = etherparse::TcpSlice::from_slice(l4).map_err(|e| e.to_string())?;
            let want = t
                .calc_checksum_ipv4(h.source(), h.destination())
                .map_err(|e| e.to_string())?;
            if !same_csum(t.checksum(), want) {
                return Err(format!(
                    "quoted TCP checksum {:#06x}, computed {want:#06x}",
                    t.checksum()
                ));
            }
        }
        IPPROTO_UDP => {
            let u = etherparse::UdpSlice::from_slice(l4).map_err(|e| e.to_string())?;
            if u.checksum() != 0 {
                let want = u
                    .to_header()
                    .calc_checksum_ipv4_raw(h.source(), h.destination(), u.payload())
                    .map_err(|e| e.to_string())?;
                if !same_csum(u.checksum(), want) {
                    return Err(format!(
                        "quoted UDP checksum {:#06x}, computed {want:#06x}",
                        u.checksum()
                    ));
                }
            }
        }
        _ => {}
    }
    Ok(())
}
