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

mod checksums;
mod counters;
mod events;
mod maps;

use std::{
    net::SocketAddr,
    sync::atomic::{AtomicU64, Ordering},
};

use aya::{
    maps::{Array, MapData, RingBuf},
    programs::{TestRun as _, TestRunOptions},
};
use hairpin::datapath::loader::{Datapath, LoadOptions, Maps};
use hairpin_common::{
    CtDir, CtEntryV4, CtEntryV6, CtOrigin, CtTimeouts, MonitorConfig, NodeConfig,
};

pub use checksums::verify_checksums;
pub use maps::CtView;
use maps::{ct_entry, ct_key, insert_frontend};

use crate::{
    frames::ETH_LEN,
    model::{Action, Expected, Hook, Model, Origin, Tables, Tuple},
};

pub const TC_ACT_UNSPEC: i32 = -1;
pub const TC_ACT_REDIRECT: i32 = 7;

/// Frames checked against the model by every harness of the run, so that
/// a restructured suite can be shown to check no fewer: each harness
/// prints its own count and this running total when dropped.
static FRAMES_CHECKED: AtomicU64 = AtomicU64::new(0);

/// Conntrack lifetimes far beyond a test's run, so that no flow expires
/// under a test (the model does not know time).
const DAY_NS: u64 = 24 * 3600 * 1_000_000_000;

/// The datapath loaded once, its maps filled from `Tables`, and the model
/// that follows it.
pub struct Harness {
    dp: Datapath,
    pub maps: Maps,
    /// The monitor's ring buffer and filter (see `events`).
    events: RingBuf<MapData>,
    monitor: Array<MapData, MonitorConfig>,
    pub model: Model,
    /// Frames run through a program and checked against the model so far.
    pub frames: u64,
}

impl Harness {
    pub fn new(tables: Tables) -> Self {
        Self::with_conntrack(tables, hairpin_common::DEFAULT_CT_ENTRIES)
    }

    /// `new`, with conntrack tables of `entries` entries.
    pub fn with_conntrack(tables: Tables, entries: u32) -> Self {
        let opts = LoadOptions {
            ct_entries: entries,
            ct_entries_v6: entries,
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
        let (events, monitor) = dp.take_monitor().expect("taking the monitor's maps");
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
        hairpin::reconcile::address_filter::sync(&mut maps, &Default::default())
            .expect("the address filter");
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
            events,
            monitor,
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

    /// Runs `frame` at `hook` without the model, for the frontends' flags
    /// (see `FrontendCfg::flags`): the test checks what came out.
    pub fn run_unmodelled(&mut self, hook: Hook, frame: &[u8]) -> (i32, Vec<u8>) {
        self.run(hook, frame)
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
