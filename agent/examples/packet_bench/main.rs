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
//! - first packet, a monitor reading: the same, every new flow reported
//!   through the ring buffer to a reader thread (what is not read in time
//!   is counted lost: the cost is the report either way);
//! - first packet, distinct flows: one run per call over 100,000 new tuples,
//!   against the empty program measured the same way (the per-call timer
//!   overhead is in both).
//!
//! Every case checks the counters afterwards: as many translations (or new
//! flows) as runs, else it fails rather than report a number.

mod bpf;
mod cases;
mod datapath;
mod frames;
mod report;

use std::{net::Ipv4Addr, os::fd::AsFd as _};

use anyhow::{bail, ensure, Context as _, Result};
use hairpin::datapath::loader::LoadOptions;
use hairpin_common::{CtTimeouts, PROG_POD_EGRESS, PROG_POD_INGRESS, PROG_UPLINK_EGRESS};

use bpf::{load_empty, test_run};
use cases::{checked, Case, Expect};
use datapath::{add_mirror_flow, distinct_flows, frontends, Hairpin};
use frames::{arp_frame, key, tcp_frame};
use report::{expect_pass, median, row};

/// An address and a port.
pub type Endpoint = (Ipv4Addr, u16);

pub const FRONTEND: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
pub const FRONTEND_PORT: u16 = 8080;
pub const BACKEND: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
pub const BACKEND_PORT: u16 = 80;
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 3);
pub const CLIENT_PORT: u16 = 40_000;
/// Neither a frontend nor a backend: what most packets on a node are.
pub const OTHER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 50);

/// `TC_ACT_UNSPEC` (-1) as the kernel reports it: every case here passes.
pub const TC_ACT_UNSPEC: u32 = u32::MAX;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_ACK: u8 = 0x10;
pub const TCP_PSH: u8 = 0x08;

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
    // A backend pod's packets of flows that are not hairpin's: a
    // connection of its own, and a client's that reached its port direct.
    let backend_own = tcp_frame((BACKEND, 41000), (OTHER, 443), TCP_ACK | TCP_PSH, 64);
    let backend_direct = tcp_frame(be, (OTHER, 41000), TCP_ACK | TCP_PSH, 64);

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
            ..open_opts.clone()
        },
        &pair,
    )?;
    big_hp.add_frontends(2, o.scale_frontends.saturating_sub(2))?;
    // 3: first packets again, with a monitor listening.
    let mut watched_hp = Hairpin::load(open_opts.clone(), &pair)?;
    let listening = watched_hp.listen()?;
    let mut hps = [main_hp, open_hp, big_hp, watched_hp];

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
            "backend_own",
            "hairpin, a backend's own connection (pod veth)",
            Some(0),
            PROG_POD_INGRESS,
            &backend_own,
            Untouched,
        ),
        case(
            "backend_direct",
            "hairpin, a backend's direct client, its port",
            Some(0),
            PROG_POD_INGRESS,
            &backend_direct,
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
            "first_monitored",
            "  the same, a monitor reading its events",
            Some(3),
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

    let events = listening.stop();
    ensure!(
        o.only.as_deref().is_some_and(|c| c != "first_monitored") || events > 0,
        "first_monitored: the monitor read no event"
    );

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
