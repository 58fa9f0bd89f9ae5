//! hairpin's datapath as the benchmark loads and fills it.

use std::{
    net::Ipv4Addr,
    os::fd::{AsFd as _, OwnedFd},
};

use anyhow::{ensure, Result};
use aya::maps::MapError;
use hairpin::{
    config,
    datapath::loader::{Datapath, LoadOptions, Maps},
    reconcile::{self, addr_key, port_key},
};
use hairpin_common::{
    BackendKey, BackendV4, CtKeyV4, Frontend, FrontendKeyV4, IPPROTO_TCP, PROG_POD_INGRESS,
};

use crate::{
    bpf::{test_run, RunResult},
    frames::tcp_frame,
    report::{expect_pass, median},
    Endpoint, BACKEND, BACKEND_PORT, FRONTEND, FRONTEND_PORT, TCP_SYN,
};

/// Frontends from YAML, through the agent's own parser: `at` → `to` each.
pub fn frontends(list: &[(Endpoint, Endpoint)]) -> Result<Vec<config::Frontend>> {
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

pub struct Hairpin {
    dp: Datapath,
    maps: Maps,
    max_frontends: u32,
}

impl Hairpin {
    pub fn load(opts: LoadOptions, frontends: &[config::Frontend]) -> Result<Self> {
        let mut dp = Datapath::load(&opts, None)?;
        let mut maps = dp.take_maps()?;
        reconcile::apply(&mut maps, frontends, opts.max_frontends)?;
        Ok(Self {
            dp,
            maps,
            max_frontends: opts.max_frontends,
        })
    }

    pub fn run(&mut self, prog: &str, data: &[u8], repeat: u32) -> Result<RunResult> {
        let fd = self.dp.program(prog)?.fd()?.as_fd();
        test_run(fd, data, repeat)
    }

    /// Packets and new flows counted over every frontend and CPU.
    pub fn counted(&self) -> Result<(u64, u64)> {
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
    pub fn add_frontends(&mut self, first_id: u32, n: u32) -> Result<()> {
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
                Frontend {
                    id,
                    slots: 1,
                    flags: 0,
                },
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
        hairpin::reconcile::address_filter::sync(&mut self.maps, &Default::default())
    }
}

// ---------------------------------------------------------------- cases

/// Adds the mirror image of the flow whose forward and reverse keys are
/// given: a packet that one entry translated is translated back by the
/// mirror, on the same code path.
pub fn add_mirror_flow(hp: &mut Hairpin, fwd_key: CtKeyV4, rev_key: CtKeyV4) -> Result<()> {
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
    // also a frontend address, the translated source also a backend's (in
    // the filter as a backend of an ended flow would be).
    hp.maps.v4.frontend_addrs.insert(fwd.nat.daddr, 1, 0)?;
    hp.maps.v4.backend_addrs.insert(rev.nat.saddr, 1, 0)?;
    let mut mirrored = hairpin::conntrack::flows::Lingering::default();
    mirrored.v4.insert((rev.nat.saddr, rev.nat.sport));
    hairpin::reconcile::address_filter::sync(&mut hp.maps, &mirrored)
}

/// Medians of 5 chunks of one-run calls: the empty program and hairpin's
/// first packet, alternating call by call over `n` new tuples.
pub fn distinct_flows(empty: &OwnedFd, hp: &mut Hairpin, n: usize) -> Result<(Vec<f64>, Vec<f64>)> {
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

/// A monitor listening to a datapath: its events read as they come by a
/// thread of their own, as the agent reads them.
pub struct Listening {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    reader: Option<std::thread::JoinHandle<u64>>,
}

impl Hairpin {
    /// Makes the datapath report every flow it opens, to a reader.
    pub fn listen(&mut self) -> Result<Listening> {
        use std::sync::atomic::{AtomicBool, Ordering};
        let (mut ring, mut config) = self.dp.take_monitor()?;
        config.set(
            0,
            hairpin_common::MonitorConfig {
                kinds: hairpin_common::DEFAULT_EVENT_KINDS,
                ..Default::default()
            },
            0,
        )?;
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let done = stop.clone();
        let reader = std::thread::spawn(move || {
            use std::os::fd::AsRawFd as _;
            let mut read = 0;
            while !done.load(Ordering::Relaxed) {
                let mut pfd = libc::pollfd {
                    fd: ring.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                unsafe { libc::poll(&mut pfd, 1, 10) };
                while ring.next().is_some() {
                    read += 1;
                }
            }
            read
        });
        Ok(Listening {
            stop,
            reader: Some(reader),
        })
    }
}

impl Listening {
    /// Stops the reader: how many events it read.
    pub fn stop(mut self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.reader.take().map_or(0, |r| r.join().unwrap_or(0))
    }
}
