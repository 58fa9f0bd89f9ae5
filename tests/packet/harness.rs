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

use std::net::{Ipv4Addr, SocketAddrV4};

use aya::programs::{TestRun as _, TestRunOptions};
use etherparse::{
    checksum::Sum16BitWords, Ipv4HeaderSlice, NetSlice, SlicedPacket, TransportSlice,
};
use hairpin::loader::{Datapath, LoadOptions, Maps};
use hairpin_common::{
    BackendKey, BackendV4, Counter, CtDir, CtEntryV4, CtKeyV4, CtOrigin, CtTimeouts, Frontend,
    FrontendKeyV4, FrontendStats, NodeConfig,
};

use crate::{
    frames::{ETH_LEN, IPPROTO_TCP, IPPROTO_UDP},
    model::{Action, Expected, Hook, Model, Origin, Tables, Tuple},
};

pub const TC_ACT_UNSPEC: i32 = -1;
pub const TC_ACT_REDIRECT: i32 = 7;

/// Conntrack lifetimes far beyond a test's run, so that no flow expires
/// under a test (the model does not know time).
const DAY_NS: u64 = 24 * 3600 * 1_000_000_000;

pub fn ct_key(t: &Tuple) -> CtKeyV4 {
    CtKeyV4 {
        saddr: u32::from_ne_bytes(t.src.ip().octets()),
        daddr: u32::from_ne_bytes(t.dst.ip().octets()),
        sport: u16::from_ne_bytes(t.src.port().to_be_bytes()),
        dport: u16::from_ne_bytes(t.dst.port().to_be_bytes()),
        proto: t.proto,
        _pad: [0; 3],
    }
}

pub fn tuple_of(k: &CtKeyV4) -> Tuple {
    let ep = |addr: u32, port: u16| {
        SocketAddrV4::new(
            Ipv4Addr::from(addr.to_ne_bytes()),
            u16::from_be_bytes(port.to_ne_bytes()),
        )
    };
    Tuple::new(k.proto, ep(k.saddr, k.sport), ep(k.daddr, k.dport))
}

/// The datapath loaded once, its maps filled from `Tables`, and the model
/// that follows it.
pub struct Harness {
    dp: Datapath,
    pub maps: Maps,
    pub model: Model,
    /// Frames run through a program so far.
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
        for fe in &tables.frontends {
            let key = FrontendKeyV4 {
                addr: u32::from_ne_bytes(fe.addr.ip().octets()),
                port: u16::from_ne_bytes(fe.addr.port().to_be_bytes()),
                proto: fe.proto,
                _pad: 0,
            };
            let value = Frontend {
                id: fe.id,
                slots: fe.backends.len() as u32,
            };
            maps.v4
                .frontends
                .insert(key, value, 0)
                .expect("inserting a frontend");
            let users = maps.v4.frontend_addrs.get(&key.addr, 0).unwrap_or(0);
            maps.v4
                .frontend_addrs
                .insert(key.addr, users + 1, 0)
                .expect("inserting a frontend address");
            for (slot, b) in fe.backends.iter().enumerate() {
                let backend = BackendV4 {
                    addr: u32::from_ne_bytes(b.ip().octets()),
                    port: u16::from_ne_bytes(b.port().to_be_bytes()),
                    _pad: 0,
                };
                let key = BackendKey {
                    frontend_id: fe.id,
                    slot: slot as u32,
                };
                maps.v4
                    .backends
                    .insert(key, backend, 0)
                    .expect("inserting a backend");
                let users = maps.v4.backend_addrs.get(&backend.addr, 0).unwrap_or(0);
                maps.v4
                    .backend_addrs
                    .insert(backend.addr, users + 1, 0)
                    .expect("inserting a backend address");
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
    pub fn run(&mut self, hook: Hook, frame: &[u8]) -> (i32, Vec<u8>) {
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
        self.frames += 1;
        out.truncate(res.data_size_out as usize);
        (res.return_value as i32, out)
    }

    pub fn ct(&self, t: &Tuple) -> Option<CtEntryV4> {
        self.maps.v4.conntrack.get(&ct_key(t), 0).ok()
    }

    /// Runs `frame` at `hook` and checks the datapath against the model:
    /// the verdict, every byte, the conntrack entries of a new flow and,
    /// for a translated frame whose checksums were right, its checksums
    /// (read independently with etherparse).
    pub fn step(&mut self, hook: Hook, frame: &[u8]) -> Result<Step, String> {
        let (verdict, out) = self.run(hook, frame);
        let conntrack = &self.maps.v4.conntrack;
        let chosen = |key: &Tuple| {
            let e = conntrack.get(&ct_key(key), 0).ok()?;
            Some(tuple_of(&e.nat).dst)
        };
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
            let key = tuple_of_frame_key(frame);
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
                let e = self.ct(&at).ok_or_else(|| {
                    format!("a new flow has no {what} entry keyed {at:?}\n{}", context())
                })?;
                if (e.dir, e.origin, tuple_of(&e.nat)) != (dir as u8, origin, to) {
                    return Err(format!(
                        "the {what} entry of a new flow is {e:?}, expected {dir:?} {:?} to {to:?}\n{}",
                        entry.origin,
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
            let _ = self.maps.v4.conntrack.remove(&ct_key(&key));
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

/// The tuple of a TCP or UDP frame.
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

/// Checks every checksum of an IPv4 frame with etherparse: the IP header's,
/// the TCP, UDP or ICMP one, and for an ICMP error the quoted IP header's
/// and, when the whole quoted packet is there, its TCP or UDP checksum.
pub fn verify_checksums(frame: &[u8]) -> Result<(), String> {
    let p = SlicedPacket::from_ethernet(frame).map_err(|e| format!("unreadable frame: {e}"))?;
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
