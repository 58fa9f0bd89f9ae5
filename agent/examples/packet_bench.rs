//! Per-packet cost of hairpin's TC programs under `BPF_PROG_TEST_RUN`,
//! against an empty TC program (`r0 = -1; exit`: the floor, what any
//! classifier costs before it does anything).
//!
//! ```sh
//! cargo run --release --example packet_bench            # a table
//! cargo run --release --example packet_bench -- --tsv   # raw samples
//! ```
//!
//! The kernel runs a program `repeat` times on one skb and reports the mean
//! time per run; a translated packet stays translated for the next run. So
//! that every run does the work it is meant to measure:
//! - established and reply: besides the real flow (created by running its
//!   SYN and SYN-ACK through the programs), the maps hold its mirror image,
//!   so that the translated packet is translated back by the next run: every
//!   run is one full translation on the real code path;
//! - first packet: the SYN lifetime is 0, so each run finds the flow's
//!   entry expired and opens a new flow, and a mirror frontend (backend
//!   address → frontend address) sends the translated packet back;
//! - first packet, distinct flows: one run per call over 100,000 new tuples,
//!   against the empty program measured the same way (the per-call timer
//!   overhead is in both).
//!
//! Every case checks the counters afterwards: as many translations (or new
//! flows) as runs, else it fails rather than report a number.

use std::{
    net::Ipv4Addr,
    os::fd::{AsFd as _, AsRawFd as _, BorrowedFd, FromRawFd as _, OwnedFd},
};

use anyhow::{bail, ensure, Context as _, Result};
use aya::maps::MapError;
use hairpin::{
    config,
    loader::{Datapath, LoadOptions, Maps},
    reconcile::{self, addr_key, port_key},
};
use hairpin_common::{
    BackendKey, BackendV4, CtKeyV4, CtTimeouts, Frontend, FrontendKeyV4, IPPROTO_TCP,
    PROG_POD_EGRESS, PROG_POD_INGRESS, PROG_UPLINK_EGRESS,
};

/// An address and a port.
type Endpoint = (Ipv4Addr, u16);

const FRONTEND: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
const FRONTEND_PORT: u16 = 8080;
const BACKEND: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const BACKEND_PORT: u16 = 80;
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 3);
const CLIENT_PORT: u16 = 40_000;
/// Neither a frontend nor a backend: what most packets on a node are.
const OTHER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 50);

/// `TC_ACT_UNSPEC` (-1) as the kernel reports it: every case here passes.
const TC_ACT_UNSPEC: u32 = u32::MAX;
const TCP_SYN: u8 = 0x02;
const TCP_ACK: u8 = 0x10;
const TCP_PSH: u8 = 0x08;

struct Opts {
    repeat: u32,
    runs: usize,
    distinct: usize,
    scale_frontends: u32,
    tsv: bool,
    /// Only this case (e.g. to profile it with `perf record`).
    only: Option<String>,
}

fn parse_args() -> Result<Opts> {
    let mut o = Opts {
        repeat: 1_000_000,
        runs: 5,
        distinct: 100_000,
        scale_frontends: 100_000,
        tsv: false,
        only: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |name: &str| -> Result<u64> {
            args.next()
                .with_context(|| format!("{name} needs a value"))?
                .replace('_', "")
                .parse()
                .with_context(|| format!("{name}: not a number"))
        };
        match a.as_str() {
            "--repeat" => o.repeat = u32::try_from(num("--repeat")?)?,
            "--runs" => o.runs = num("--runs")? as usize,
            "--distinct" => o.distinct = num("--distinct")? as usize,
            "--frontends" => o.scale_frontends = u32::try_from(num("--frontends")?)?,
            "--tsv" => o.tsv = true,
            "--only" => o.only = Some(args.next().context("--only needs a case")?),
            _ => bail!(
                "usage: packet_bench [--repeat N] [--runs K] [--distinct N] [--frontends N] [--only CASE] [--tsv]"
            ),
        }
    }
    // An even count brings mirrored packets back to where they started.
    o.repeat += o.repeat % 2;
    ensure!(
        o.runs > 0 && o.distinct >= 5,
        "--runs and --distinct too small"
    );
    Ok(o)
}

// ---------------------------------------------------------------- bpf(2)

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_TEST_RUN: libc::c_long = 10;
const BPF_PROG_TYPE_SCHED_CLS: u32 = 3;

/// The head of `union bpf_attr` for `BPF_PROG_LOAD`; the kernel zero-fills
/// the fields after a shorter struct.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
}

/// `union bpf_attr` for `BPF_PROG_TEST_RUN`.
#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::io::Result<libc::c_long> {
    // SAFETY: `attr` is a valid, initialised bpf_attr prefix of the given size.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// The empty classifier: `r0 = -1 (TC_ACT_UNSPEC); exit`, loaded from raw
/// instructions (aya loads only ELF objects, and the project's object must
/// not grow a program for a benchmark).
fn load_empty() -> Result<OwnedFd> {
    // struct bpf_insn { u8 code; u8 dst:4, src:4; s16 off; s32 imm; }
    let mov_r0_minus_1: [u8; 8] = [0xb7, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
    let exit: [u8; 8] = [0x95, 0, 0, 0, 0, 0, 0, 0];
    let insns = [mov_r0_minus_1, exit];
    let license = c"GPL";
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_SCHED_CLS,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    attr.prog_name[..5].copy_from_slice(b"empty");
    let fd = bpf(BPF_PROG_LOAD, &mut attr).context("BPF_PROG_LOAD of the empty program")?;
    // SAFETY: the kernel just handed us this descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

struct RunResult {
    retval: u32,
    ns: u32,
    out: Vec<u8>,
}

/// One `BPF_PROG_TEST_RUN`: the same syscall for the empty program and for
/// hairpin's, so that both are timed the same way (by the kernel).
fn test_run(prog: BorrowedFd<'_>, data: &[u8], repeat: u32) -> Result<RunResult> {
    let mut out = vec![0u8; data.len() + 256];
    let mut attr = TestRunAttr {
        prog_fd: prog.as_raw_fd() as u32,
        data_size_in: data.len() as u32,
        data_size_out: out.len() as u32,
        data_in: data.as_ptr() as u64,
        data_out: out.as_mut_ptr() as u64,
        repeat,
        ..Default::default()
    };
    bpf(BPF_PROG_TEST_RUN, &mut attr).context("BPF_PROG_TEST_RUN")?;
    out.truncate(attr.data_size_out as usize);
    Ok(RunResult {
        retval: attr.retval,
        ns: attr.duration,
        out,
    })
}

// ---------------------------------------------------------------- frames

fn tcp_frame(src: Endpoint, dst: Endpoint, flags: u8, payload: usize) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(src.0.octets(), dst.0.octets(), 64)
        .tcp(src.1, dst.1, 1_000, 64_240);
    let b = if flags & TCP_ACK != 0 {
        b.ack(2_000)
    } else {
        b
    };
    let b = if flags & TCP_SYN != 0 { b.syn() } else { b };
    let b = if flags & TCP_PSH != 0 { b.psh() } else { b };
    let mut v = Vec::new();
    b.write(&mut v, &vec![0x61; payload])
        .expect("writing to a Vec cannot fail");
    v
}

/// An ARP request: what the parser turns away first.
fn arp_frame() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend([2, 0, 0, 0, 0, 1, 0x08, 0x06]);
    // Ethernet, IPv4, hlen 6, plen 4, request; sender and target.
    f.extend([0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1]);
    f.extend(CLIENT.octets());
    f.extend([0; 6]);
    f.extend(OTHER.octets());
    f.resize(60, 0);
    f
}

fn key(src: Endpoint, dst: Endpoint) -> CtKeyV4 {
    CtKeyV4 {
        saddr: addr_key(src.0),
        daddr: addr_key(dst.0),
        sport: port_key(src.1),
        dport: port_key(dst.1),
        proto: IPPROTO_TCP,
        _pad: [0; 3],
    }
}

/// Frontends from YAML, through the agent's own parser: `at` → `to` each.
fn frontends(list: &[(Endpoint, Endpoint)]) -> Result<Vec<config::Frontend>> {
    let mut yaml = String::from("redirects:\n");
    for (i, (at, to)) in list.iter().enumerate() {
        yaml += &format!(
            "  - name: bench{i}\n    frontend: {}\n    ports: [{{ port: {}, protocol: TCP }}]\n    backends: [{{ ip: {}, port: {} }}]\n",
            at.0, at.1, to.0, to.1
        );
    }
    Ok(config::Config::parse(std::path::Path::new("packet_bench"), &yaml)?.frontends)
}

// ---------------------------------------------------------------- hairpin

struct Hairpin {
    dp: Datapath,
    maps: Maps,
    max_frontends: u32,
}

impl Hairpin {
    fn load(opts: LoadOptions, frontends: &[config::Frontend]) -> Result<Self> {
        let mut dp = Datapath::load(&opts, None)?;
        let mut maps = dp.take_maps()?;
        reconcile::apply(&mut maps, frontends, opts.max_frontends)?;
        Ok(Self {
            dp,
            maps,
            max_frontends: opts.max_frontends,
        })
    }

    fn run(&mut self, prog: &str, data: &[u8], repeat: u32) -> Result<RunResult> {
        let fd = self.dp.program(prog)?.fd()?.as_fd();
        test_run(fd, data, repeat)
    }

    /// Packets and new flows counted over every frontend and CPU.
    fn counted(&self) -> Result<(u64, u64)> {
        let (mut packets, mut flows) = (0, 0);
        for r in self.maps.frontend_stats.iter() {
            for s in r?.iter() {
                packets += s.packets;
                flows += s.flows;
            }
        }
        Ok((packets, flows))
    }

    /// Adds frontends `first_id..first_id + n` on 203.0.113.1-250, ports
    /// from 10000, all to the backend. Written directly: `reconcile::apply`
    /// picks each new id by a scan from 0, which is quadratic in the number
    /// of frontends (minutes at 100,000).
    fn add_frontends(&mut self, first_id: u32, n: u32) -> Result<()> {
        ensure!(first_id + n <= self.max_frontends, "maps too small");
        for i in 0..n {
            let addr = Ipv4Addr::new(203, 0, 113, (1 + i % 250) as u8);
            let port = 10_000 + (i / 250) as u16;
            let id = first_id + i;
            self.maps.v4.backends.insert(
                BackendKey {
                    frontend_id: id,
                    slot: 0,
                },
                BackendV4 {
                    addr: addr_key(BACKEND),
                    port: port_key(BACKEND_PORT),
                    _pad: 0,
                },
                0,
            )?;
            self.maps.v4.frontends.insert(
                FrontendKeyV4 {
                    addr: addr_key(addr),
                    port: port_key(port),
                    proto: IPPROTO_TCP,
                    _pad: 0,
                },
                Frontend { id, slots: 1 },
                0,
            )?;
            let a = addr_key(addr);
            let count = match self.maps.v4.frontend_addrs.get(&a, 0) {
                Ok(c) => c,
                Err(MapError::KeyNotFound) => 0,
                Err(e) => return Err(e.into()),
            };
            self.maps.v4.frontend_addrs.insert(a, count + 1, 0)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- cases

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)))
}

fn expect_pass(r: &RunResult, what: &str) -> Result<()> {
    ensure!(
        r.retval == TC_ACT_UNSPEC,
        "{what}: returned {} instead of TC_ACT_UNSPEC",
        r.retval as i32
    );
    Ok(())
}

/// Runs case `c` on `hp` and checks what every run did: the counters
/// show as many translations (or new flows) as runs, and after an even
/// number of runs a mirrored packet is back in its original form.
fn checked(hp: &mut Hairpin, c: &Case, repeat: u32) -> Result<f64> {
    let what = c.name;
    let (p0, f0) = hp.counted()?;
    let r = hp.run(c.prog, &c.frame, repeat)?;
    expect_pass(&r, what)?;
    let (p1, f1) = hp.counted()?;
    let want = if c.expect == Expect::Untouched {
        0
    } else {
        u64::from(repeat)
    };
    ensure!(
        p1 - p0 == want,
        "{what}: {} of {repeat} runs translated the packet, expected {want}",
        p1 - p0
    );
    if c.expect == Expect::NewFlow {
        ensure!(
            f1 - f0 == want,
            "{what}: {} of {repeat} runs opened a flow",
            f1 - f0
        );
    }
    ensure!(
        r.out == c.frame,
        "{what}: the packet did not come back to its original form"
    );
    Ok(f64::from(r.ns))
}

/// What a case checks after each run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Passed unchanged, nothing counted.
    Untouched,
    /// Every run translated the packet.
    Translated,
    /// Every run opened a new flow.
    NewFlow,
}

/// A case measured with a large repeat count on one frame.
struct Case {
    name: &'static str,
    label: String,
    /// Index into the datapaths; `None`: the empty program.
    hp: Option<usize>,
    prog: &'static str,
    frame: Vec<u8>,
    expect: Expect,
    samples: Vec<f64>,
}

fn main() -> Result<()> {
    let o = parse_args()?;
    let empty = load_empty()?;

    let client = (CLIENT, CLIENT_PORT);
    let fe = (FRONTEND, FRONTEND_PORT);
    let be = (BACKEND, BACKEND_PORT);
    let unrelated = tcp_frame(client, (OTHER, 443), TCP_ACK | TCP_PSH, 64);
    let syn = tcp_frame(client, fe, TCP_SYN, 0);
    let established = tcp_frame(client, fe, TCP_ACK | TCP_PSH, 64);
    let reply = tcp_frame(be, client, TCP_ACK | TCP_PSH, 64);

    // 0: the node's datapath with one frontend and one established flow,
    // its handshake run through the programs, then its mirror image added.
    let mut main_hp = Hairpin::load(LoadOptions::default(), &frontends(&[(fe, be)])?)?;
    let synack = tcp_frame(be, client, TCP_SYN | TCP_ACK, 0);
    expect_pass(&main_hp.run(PROG_POD_INGRESS, &syn, 1)?, "SYN")?;
    expect_pass(&main_hp.run(PROG_POD_EGRESS, &synack, 1)?, "SYN-ACK")?;
    ensure!(
        main_hp.counted()? == (2, 1),
        "the handshake was not translated"
    );
    add_mirror_flow(&mut main_hp, key(client, fe), key(be, client))?;

    // 1: first packets: SYN lifetime 0, and the mirror frontend.
    let open_opts = LoadOptions {
        timeouts: CtTimeouts {
            syn: 0,
            ..CtTimeouts::default()
        },
        ..LoadOptions::default()
    };
    let pair = frontends(&[(fe, be), (be, fe)])?;
    let open_hp = Hairpin::load(open_opts.clone(), &pair)?;
    // 2: the same with `scale_frontends` frontends in the maps.
    let cap = (o.scale_frontends * 2).next_power_of_two();
    let mut big_hp = Hairpin::load(
        LoadOptions {
            max_frontends: cap.max(open_opts.max_frontends),
            max_backend_slots: cap.max(open_opts.max_backend_slots),
            ..open_opts
        },
        &pair,
    )?;
    big_hp.add_frontends(2, o.scale_frontends.saturating_sub(2))?;
    let mut hps = [main_hp, open_hp, big_hp];

    let case = |name, label: &str, hp, prog, frame: &Vec<u8>, expect| Case {
        name,
        label: label.to_owned(),
        hp,
        prog,
        frame: frame.clone(),
        expect,
        samples: Vec::new(),
    };
    use Expect::*;
    let mut cases = vec![
        case(
            "empty",
            "empty TC program (floor)",
            None,
            "",
            &unrelated,
            Untouched,
        ),
        case(
            "non_ip",
            "hairpin, non-IPv4 frame (ARP)",
            Some(0),
            PROG_POD_INGRESS,
            &arp_frame(),
            Untouched,
        ),
        case(
            "unrelated_1",
            "hairpin, unrelated, 1 lookup (uplink egress)",
            Some(0),
            PROG_UPLINK_EGRESS,
            &unrelated,
            Untouched,
        ),
        case(
            "unrelated",
            "hairpin, unrelated packet (pod veth)",
            Some(0),
            PROG_POD_INGRESS,
            &unrelated,
            Untouched,
        ),
        case(
            "first",
            "hairpin, first packet of a flow",
            Some(1),
            PROG_POD_INGRESS,
            &syn,
            NewFlow,
        ),
        case(
            "first_scale",
            &format!("  the same, {} frontends", o.scale_frontends),
            Some(2),
            PROG_POD_INGRESS,
            &syn,
            NewFlow,
        ),
        case(
            "established",
            "hairpin, established flow",
            Some(0),
            PROG_POD_INGRESS,
            &established,
            Translated,
        ),
        case(
            "reply",
            "hairpin, reply",
            Some(0),
            PROG_POD_EGRESS,
            &reply,
            Translated,
        ),
    ];
    if let Some(only) = &o.only {
        cases.retain(|c| c.name == only);
    }
    // Interleaved rounds: machine noise spreads over every case alike.
    for _ in 0..o.runs {
        for c in cases.iter_mut() {
            let ns = match c.hp {
                None => {
                    let r = test_run(empty.as_fd(), &c.frame, o.repeat)?;
                    expect_pass(&r, c.name)?;
                    f64::from(r.ns)
                }
                Some(i) => checked(&mut hps[i], c, o.repeat)?,
            };
            c.samples.push(ns);
        }
    }

    // First packets of distinct flows, one run per call.
    let (single_empty, single_first) = match o.only.as_deref() {
        None | Some("first_distinct") => distinct_flows(&empty, &mut hps[0], o.distinct)?,
        Some(_) => (Vec::new(), Vec::new()),
    };

    if o.tsv {
        for c in &cases {
            for s in &c.samples {
                println!("packet\t{}\t{s}", c.name);
            }
        }
        for s in &single_empty {
            println!("packet\tempty_single\t{s}");
        }
        for s in &single_first {
            println!("packet\tfirst_distinct\t{s}");
        }
        println!("packet_info\trepeat\t{}", o.repeat);
        println!("packet_info\truns\t{}", o.runs);
        println!("packet_info\tdistinct\t{}", o.distinct);
        println!("packet_info\tfrontends\t{}", o.scale_frontends);
        return Ok(());
    }
    println!(
        "BPF_PROG_TEST_RUN, {} runs of {} repeats each (median, min-max over runs)",
        o.runs, o.repeat
    );
    println!(
        "{:<46} {:>8} {:>16} {:>9}",
        "case", "ns/pkt", "min-max", "x empty"
    );
    let floor = cases
        .iter()
        .find(|c| c.name == "empty")
        .map_or(f64::NAN, |c| median(&c.samples));
    for c in &cases {
        row(&c.label, &c.samples, floor);
    }
    if !single_first.is_empty() {
        println!(
            "one run per call, {} new flows in 5 chunks (median of each chunk):",
            o.distinct
        );
        let floor1 = median(&single_empty);
        row("empty TC program, one run per call", &single_empty, floor1);
        row(
            "hairpin, first packet, distinct flows",
            &single_first,
            floor1,
        );
    }
    Ok(())
}

fn row(label: &str, samples: &[f64], floor: f64) {
    let m = median(samples);
    let (lo, hi) = min_max(samples);
    println!(
        "{label:<46} {m:>8.1} {:>16} {:>8.2}x",
        format!("{lo:.1}-{hi:.1}"),
        m / floor
    );
}

/// Adds the mirror image of the flow whose forward and reverse keys are
/// given: a packet that one entry translated is translated back by the
/// mirror, on the same code path.
fn add_mirror_flow(hp: &mut Hairpin, fwd_key: CtKeyV4, rev_key: CtKeyV4) -> Result<()> {
    let fwd = hp.maps.v4.conntrack.get(&fwd_key, 0)?;
    let rev = hp.maps.v4.conntrack.get(&rev_key, 0)?;
    let mirror_fwd = hairpin_common::CtEntryV4 {
        nat: fwd_key,
        ..fwd
    };
    let mirror_rev = hairpin_common::CtEntryV4 {
        nat: rev_key,
        ..rev
    };
    hp.maps.v4.conntrack.insert(fwd.nat, mirror_fwd, 0)?;
    hp.maps.v4.conntrack.insert(rev.nat, mirror_rev, 0)?;
    // The first tests of both paths: the translated destination is now
    // also a frontend address, the translated source also a backend's.
    hp.maps.v4.frontend_addrs.insert(fwd.nat.daddr, 1, 0)?;
    hp.maps.v4.backend_addrs.insert(rev.nat.saddr, 1, 0)?;
    Ok(())
}

/// Medians of 5 chunks of one-run calls: the empty program and hairpin's
/// first packet, alternating call by call over `n` new tuples.
fn distinct_flows(empty: &OwnedFd, hp: &mut Hairpin, n: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    let fe = (FRONTEND, FRONTEND_PORT);
    let (_, flows0) = hp.counted()?;
    let chunk = n / 5;
    let (mut e_med, mut h_med) = (Vec::new(), Vec::new());
    for c in 0..5 {
        let (mut e, mut h) = (Vec::with_capacity(chunk), Vec::with_capacity(chunk));
        for i in c * chunk..(c + 1) * chunk {
            // Distinct clients in 198.51.100.128/25, ports from 1024.
            let src = (
                Ipv4Addr::new(198, 51, 100, 128 + (i / 60_000) as u8),
                1_024 + (i % 60_000) as u16,
            );
            let frame = tcp_frame(src, fe, TCP_SYN, 0);
            let r = test_run(empty.as_fd(), &frame, 1)?;
            expect_pass(&r, "empty, one run")?;
            e.push(f64::from(r.ns));
            let r = hp.run(PROG_POD_INGRESS, &frame, 1)?;
            expect_pass(&r, "first packet, one run")?;
            h.push(f64::from(r.ns));
        }
        e_med.push(median(&e));
        h_med.push(median(&h));
    }
    let (_, flows1) = hp.counted()?;
    let want = (5 * chunk) as u64;
    ensure!(
        flows1 - flows0 == want,
        "distinct flows: {} of {want} calls opened a flow",
        flows1 - flows0
    );
    Ok((e_med, h_med))
}
