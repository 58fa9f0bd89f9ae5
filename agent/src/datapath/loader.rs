//! Loads the embedded eBPF object: map sizes and conntrack lifetimes from the
//! configuration, maps adopted from (or pinned to) the node's pin directory,
//! and the four TC programs loaded into the kernel, fitted to what it offers
//! (`kernel`). The socket path's programs are loaded only when it is
//! attached: a kernel that refuses them takes nothing else down.

use std::path::Path;

use crate::{
    datapath::addr::{Addr, FamilyMaps},
    datapath::kernel::Kernel,
};

use anyhow::{Context as _, Result};
use aya::{
    maps::{Array, HashMap, MapData, PerCpuArray, RingBuf},
    programs::SchedClassifier,
    Ebpf, EbpfLoader,
};
use hairpin_common::{
    CtEntry, CtKey, CtTimeouts, FrontendStats, MonitorConfig, NodeConfig, ADDR_FILTER, BACKENDS_V4,
    BACKENDS_V6, BACKEND_ADDRS_V4, BACKEND_ADDRS_V6, BACKEND_MEMBERS_V4, BACKEND_MEMBERS_V6, CT_V4,
    CT_V6, DEFAULT_CT_ENTRIES, DEFAULT_MAX_BACKEND_SLOTS, DEFAULT_MAX_FRONTENDS,
    DEFAULT_SOCK_REVNAT_ENTRIES, EVENTS, FILTER_LEN, FRONTENDS_V4, FRONTENDS_V6, FRONTEND_ADDRS_V4,
    FRONTEND_ADDRS_V6, FRONTEND_STATS, GLOBAL_COARSE_CLOCK, GLOBAL_COUNTERS,
    GLOBAL_CT_TIMEOUT_CLOSE, GLOBAL_CT_TIMEOUT_SYN, GLOBAL_CT_TIMEOUT_TCP, GLOBAL_CT_TIMEOUT_UDP,
    GLOBAL_L4_CSUM_IPV6, GLOBAL_STATS, LAYOUT, LAYOUT_VERSION, MONITOR, NODE, PINNED_MAPS,
    PROG_NETNS_PROBE, SOCK_PROGRAMS, SOCK_REVNAT_V4, SOCK_REVNAT_V6, TC_PROGRAMS,
};

/// The eBPF object built by `build.rs`.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/hairpin"));

/// Says how large a loaded program is, and how much of the verifier's
/// budget (1,000,000 instructions processed) it took.
fn log_size(name: &str, info: &aya::programs::ProgramInfo) {
    tracing::info!(
        "program {name}: {} instructions, {} processed by the verifier",
        info.size_translated().unwrap_or(0) / 8,
        info.verified_instruction_count().unwrap_or(0)
    );
}

/// The verifier's reason for refusing a program, in one line: the last
/// line of its log that is not a statistic (the log ends with what it
/// refused), after the program's name.
pub fn refusal(e: &anyhow::Error) -> String {
    const STATS: [&str; 4] = [
        "verification time",
        "stack depth",
        "processed ",
        "max_states",
    ];
    let program = e
        .to_string()
        .strip_prefix("loading program ")
        .and_then(|s| s.strip_suffix(" (verifier)"))
        .map(str::to_owned);
    let why = e
        .chain()
        .map(|c| c.to_string())
        .find_map(|c| {
            let log = c.split_once("Verifier output: ")?.1.to_owned();
            // Instructions start with their index; statistics come last.
            log.lines()
                .map(str::trim)
                .rfind(|l| {
                    !l.is_empty()
                        && !STATS.iter().any(|s| l.starts_with(s))
                        && !l.starts_with(|c: char| c.is_ascii_digit())
                })
                .map(str::to_owned)
        })
        .unwrap_or_else(|| format!("{:#}", e.root_cause()));
    match program {
        Some(p) => format!("{p}: {why}"),
        None => why,
    }
}

/// Sizes and lifetimes fixed at load.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub max_frontends: u32,
    pub max_backend_slots: u32,
    pub ct_entries: u32,
    /// IPv6 conntrack slots: an IPv4-only node should not pay for a full
    /// IPv6 table (its entries are 1.6 times as large).
    pub ct_entries_v6: u32,
    pub timeouts: CtTimeouts,
    /// The datapath's aya-log level: 0 logs nothing (the default), 4 logs
    /// debug events (new flows).
    pub log_level: u8,
}

/// IPv6 conntrack slots of a configuration without IPv6 frontends: IPv6
/// frontends added by a reload then work, with this many flows until the
/// next start sizes the table.
const SMALL_CT_V6: u32 = 4096;

/// The aya-log level that turns the datapath's debug events on.
pub const LOG_LEVEL_DEBUG: u8 = 4;

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            max_frontends: DEFAULT_MAX_FRONTENDS,
            max_backend_slots: DEFAULT_MAX_BACKEND_SLOTS,
            ct_entries: DEFAULT_CT_ENTRIES,
            ct_entries_v6: DEFAULT_CT_ENTRIES,
            timeouts: CtTimeouts::default(),
            log_level: 0,
        }
    }
}

impl LoadOptions {
    /// The capacity of map `name`: sized here, or the object's own.
    pub fn max_entries(&self, name: &str) -> u32 {
        match name {
            FRONTENDS_V4 | FRONTEND_ADDRS_V4 | FRONTENDS_V6 | FRONTEND_ADDRS_V6
            | FRONTEND_STATS => self.max_frontends,
            BACKENDS_V4 | BACKEND_ADDRS_V4 | BACKEND_MEMBERS_V4 | BACKENDS_V6
            | BACKEND_ADDRS_V6 | BACKEND_MEMBERS_V6 => self.max_backend_slots,
            CT_V4 => self.ct_entries,
            CT_V6 => self.ct_entries_v6,
            GLOBAL_STATS => GLOBAL_COUNTERS,
            SOCK_REVNAT_V4 | SOCK_REVNAT_V6 => DEFAULT_SOCK_REVNAT_ENTRIES,
            // NODE, LAYOUT: one entry.
            _ => 1,
        }
    }

    /// Sizes for `config`, with room to grow: the maps are sized at load,
    /// and a reload that outgrows them is refused until the next start.
    pub fn for_config(config: &crate::config::Config) -> Self {
        // A name has a few addresses, and old ones linger a while.
        let frontends = (config.frontends.len() + 4 * config.named.len()) as u32;
        let slots: u32 = config
            .frontends
            .iter()
            .chain(config.named.iter().map(|n| &n.frontend))
            .flat_map(|f| f.backends.iter().map(|b| b.weight))
            .sum();
        Self {
            max_frontends: DEFAULT_MAX_FRONTENDS
                .max(frontends.saturating_mul(2).next_power_of_two()),
            max_backend_slots: DEFAULT_MAX_BACKEND_SLOTS
                .max(slots.saturating_mul(2).next_power_of_two()),
            ct_entries: config.ct_entries,
            ct_entries_v6: if config.frontends.iter().any(|f| f.addr.is_ipv6())
                || config.named.iter().any(|n| !n.is_ipv4())
            {
                config.ct_entries
            } else {
                SMALL_CT_V6
            },
            timeouts: config.timeouts,
            log_level: 0,
        }
    }
}

/// The loaded object and typed access to its maps.
pub struct Datapath {
    pub ebpf: Ebpf,
    /// What the kernel offered at load.
    pub kernel: Kernel,
}

/// A family's conntrack map.
pub type Conntrack<A> = HashMap<MapData, CtKey<A>, CtEntry<A>>;

impl Datapath {
    /// Loads the object; with `pin_dir`, maps already pinned there are
    /// adopted (their entries and flows survive) and new ones are pinned.
    pub fn load(opts: &LoadOptions, pin_dir: Option<&Path>) -> Result<Self> {
        let kernel = Kernel::probe();
        kernel.lift_memlock();
        let csum_ipv6 = kernel.l4_csum_ipv6();
        let coarse_clock = u8::from(kernel.coarse_clock);
        let mut loader = EbpfLoader::new();
        for name in PINNED_MAPS {
            loader.map_max_entries(name, opts.max_entries(name));
        }
        loader
            .override_global(GLOBAL_CT_TIMEOUT_SYN, &opts.timeouts.syn, true)
            .override_global(GLOBAL_CT_TIMEOUT_TCP, &opts.timeouts.tcp, true)
            .override_global(GLOBAL_CT_TIMEOUT_CLOSE, &opts.timeouts.close, true)
            .override_global(GLOBAL_CT_TIMEOUT_UDP, &opts.timeouts.udp, true)
            .override_global("AYA_LOG_LEVEL", &opts.log_level, false)
            .override_global(GLOBAL_L4_CSUM_IPV6, &csum_ipv6, true)
            .override_global(GLOBAL_COARSE_CLOCK, &coarse_clock, true);
        let pins: Vec<_> = pin_dir
            .map(|dir| {
                PINNED_MAPS
                    .map(|m| (m, crate::datapath::pins::map_pin(dir, m)))
                    .to_vec()
            })
            .unwrap_or_default();
        for (name, path) in &pins {
            loader.map_pin_path(name, path.as_path());
        }
        let mut ebpf = loader.load(OBJECT).context("loading the eBPF object")?;
        // The next agent reads which layout it finds (`migrate::prepare`).
        let mut layout: Array<&mut MapData, u32> = Array::try_from(
            ebpf.map_mut(LAYOUT)
                .context("map LAYOUT missing from the object")?,
        )?;
        layout.set(0, LAYOUT_VERSION, 0)?;
        for name in TC_PROGRAMS {
            let prog: &mut SchedClassifier = ebpf
                .program_mut(name)
                .with_context(|| format!("program {name} missing from the object"))?
                .try_into()?;
            prog.load()
                .with_context(|| format!("loading program {name} (verifier)"))?;
            log_size(name, &prog.info()?);
        }
        Ok(Self { ebpf, kernel })
    }

    /// Loads the socket path's programs, those not loaded yet, with the
    /// namespace probe where the kernel needs it (`sockets::host_cookie`);
    /// returns how many it has.
    pub fn load_socket_programs(&mut self) -> Result<usize> {
        let probe = (!self.kernel.netns_cookie).then_some(PROG_NETNS_PROBE);
        let names: Vec<&str> = SOCK_PROGRAMS.into_iter().chain(probe).collect();
        for name in &names {
            let prog = self.sock_program(name)?;
            if prog.fd().is_ok() {
                continue;
            }
            prog.load()
                .with_context(|| format!("loading program {name} (verifier)"))?;
            log_size(name, &prog.info()?);
        }
        Ok(names.len())
    }

    /// Socket (cgroup) program `name`.
    pub fn sock_program(&mut self, name: &str) -> Result<&mut aya::programs::CgroupSockAddr> {
        Ok(self
            .ebpf
            .program_mut(name)
            .with_context(|| format!("program {name} missing from the object"))?
            .try_into()?)
    }

    pub fn program(&mut self, name: &str) -> Result<&mut SchedClassifier> {
        Ok(self
            .ebpf
            .program_mut(name)
            .with_context(|| format!("program {name} missing"))?
            .try_into()?)
    }

    fn map<T>(&mut self, name: &str) -> Result<T>
    where
        T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
    {
        let map = self
            .ebpf
            .take_map(name)
            .with_context(|| format!("map {name} missing or already taken"))?;
        Ok(T::try_from(map)?)
    }

    fn family<A: Addr>(&mut self) -> Result<FamilyMaps<A>> {
        let [frontends, frontend_addrs, backends, backend_addrs, backend_members, conntrack] =
            A::MAPS;
        Ok(FamilyMaps {
            frontends: self.map(frontends)?,
            frontend_addrs: self.map(frontend_addrs)?,
            backends: self.map(backends)?,
            backend_addrs: self.map(backend_addrs)?,
            backend_members: self.map(backend_members)?,
            conntrack: self.map(conntrack)?,
        })
    }

    /// The monitor's ring buffer and filter (see `monitor`).
    pub fn take_monitor(&mut self) -> Result<(RingBuf<MapData>, Array<MapData, MonitorConfig>)> {
        Ok((self.map(EVENTS)?, self.map(MONITOR)?))
    }

    /// Takes the maps out of the object: each can be taken once.
    pub fn take_maps(&mut self) -> Result<Maps> {
        Ok(Maps {
            v4: self.family()?,
            v6: self.family()?,
            frontend_stats: self.map(FRONTEND_STATS)?,
            global_stats: self.map(GLOBAL_STATS)?,
            node: self.map(NODE)?,
            addr_filter: self.map(ADDR_FILTER)?,
        })
    }
}

/// Typed handles on every map.
pub struct Maps {
    pub v4: FamilyMaps<u32>,
    pub v6: FamilyMaps<[u32; 4]>,
    pub frontend_stats: PerCpuArray<MapData, FrontendStats>,
    pub global_stats: PerCpuArray<MapData, u64>,
    pub node: Array<MapData, NodeConfig>,
    /// Kept in step with the address maps (`filter`).
    pub addr_filter: Array<MapData, [u64; FILTER_LEN]>,
}

impl Maps {
    /// Updates the node facts the datapath reads, leaving the others.
    pub fn update_node(&mut self, f: impl FnOnce(&mut NodeConfig)) -> Result<()> {
        let mut node = self.node.get(&0, 0)?;
        f(&mut node);
        self.node.set(0, node, 0)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_the_program_and_the_verifiers_last_word() {
        // As aya reports it on Debian 11's 5.10 for a helper it lacks.
        let log = "the BPF_PROG_LOAD syscall returned Permission denied (os error 13). \
                   Verifier output: 0: R1=ctx(off=0,imm=0) R10=fp0\n\
                   ; unsafe { bpf_ktime_get_coarse_ns() }\n\
                   12: (85) call unknown#160\n\
                   invalid func unknown#160\n\
                   processed 13 insns (limit 1000000) max_states_per_insn 0\n";
        let e = anyhow::anyhow!(log.to_owned()).context("loading program sock_connect4 (verifier)");
        assert_eq!(refusal(&e), "sock_connect4: invalid func unknown#160");
        let plain = anyhow::anyhow!("Operation not permitted (os error 1)");
        assert_eq!(refusal(&plain), "Operation not permitted (os error 1)");
    }
}
