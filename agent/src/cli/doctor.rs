use std::{
    collections::BTreeSet,
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
};

use anyhow::Result;

use super::{control::AgentArgs, output::Format};
use crate::{
    caps,
    config::{Config, DEFAULT_POD_PATTERNS},
    datapath::attach,
    datapath::kernel::Kernel,
    datapath::loader::LoadOptions,
    datapath::pins,
    doctor::{
        checks, checks_network, checks_pods, checks_probe, checks_sockets, checks_system,
        facts::{self, Hook},
        facts_network::{self, Network},
        probe, Check, Verdict,
    },
};

/// What is wrong on this node: the kernel and system, the node's network,
/// and hairpin itself, a verdict per line with its evidence and what to
/// do. Changes nothing; exits non-zero when a check fails.
#[derive(clap::Args)]
pub struct Args {
    /// The configuration the node runs (its pod patterns and frontends).
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long, default_value = pins::DEFAULT_PIN_DIR)]
    pin_dir: PathBuf,
    #[command(flatten)]
    agent: AgentArgs,
    #[arg(long, value_enum, default_value_t)]
    output: Format,
}

pub fn doctor(args: Args) -> Result<()> {
    let config = args.config.as_deref().map(Config::load).transpose()?;
    let pods: Vec<glob::Pattern> = match &config {
        Some(c) => c.interfaces.pods.clone(),
        None => DEFAULT_POD_PATTERNS
            .iter()
            .filter_map(|p| glob::Pattern::new(p).ok())
            .collect(),
    };
    let frontends: Vec<IpAddr> = config
        .iter()
        .flat_map(|c| c.frontends.iter().map(|f| f.addr))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();

    let mut report = system(&args.pin_dir, config.as_ref())?;
    let net = facts_network::network(&frontends).unwrap_or_else(|e| {
        report.push(Check::warn(
            "netlink",
            format!("the interfaces and routes cannot be read: {e:#}"),
            "run the doctor in the node's network namespace, as root",
        ));
        Network {
            links: Vec::new(),
            routes: Vec::new(),
            kube_ipvs0: None,
        }
    });
    let interfaces: Vec<String> = net.links.iter().map(|l| l.name.clone()).collect();
    report.extend(network(config.as_ref(), &net, &interfaces, &pods));
    report.push(checks::netfilter(&frontends, &facts::netfilter_rules()));
    report.push(checks_network::ipvs(&frontends, net.kube_ipvs0.as_deref()));

    let is_hairpin = |p: &str| hairpin_common::TC_PROGRAMS.contains(&p);
    let hooks: Vec<Hook> = facts::hooks(&net.links, &pods);
    let uplink = config
        .as_ref()
        .and_then(|c| c.interfaces.uplink.as_deref())
        .or_else(|| checks_network::auto_uplink(&net.routes));
    let netkit: Vec<String> = net
        .links
        .iter()
        .filter(|l| l.netkit)
        .map(|l| l.name.clone())
        .collect();
    report.push(checks_pods::datapath(
        &hooks,
        uplink,
        &netkit,
        is_hairpin,
        attach::POD_SIDE_HOOK,
    ));

    let (layout, counters) = facts::datapath(&args.pin_dir);
    report.push(checks::layout(layout, hairpin_common::LAYOUT_VERSION));
    if layout.is_some() {
        report.extend(checks::programs(&hooks, is_hairpin));
        if let Some((flows, answered)) = facts::pod_flows(&args.pin_dir, &net.links) {
            report.push(checks_pods::replies(&flows, &answered));
        }
        report.push(checks::counters(&counters));
        if let Some((entries, capacity)) = facts::conntrack(&args.pin_dir) {
            report.push(checks::conntrack(entries, capacity));
        }
        let socket = config.as_ref().is_none_or(|c| c.socket.enabled);
        report.push(checks::socket_path(
            socket,
            facts::socket_hooks(&args.pin_dir),
        ));
        if socket {
            report.push(checks_sockets::ends(facts::socket_ends()));
            if let Some(view) = args.agent.sockets() {
                report.push(checks_sockets::pods(&view));
            }
        }
    }
    let served = layout.is_some()
        && report
            .iter()
            .any(|c| c.check == "programs" && c.verdict == Verdict::Ok);
    if let Some(config) = &config {
        report.extend(probes(config, served));
    }
    let degraded: Option<Vec<(String, String, String)>> = args
        .agent
        .degraded()
        .map(|d| d.into_iter().map(|d| (d.kind, d.item, d.reason)).collect());
    report.extend(checks::agent(
        &args.agent.socket().display().to_string(),
        degraded.as_deref(),
    ));

    match args.output {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Table => {
            for c in &report {
                println!("{:<5} {:<16} {}", c.verdict.name(), c.check, c.evidence);
                if !c.advice.is_empty() {
                    println!("{:<22} → {}", "", c.advice);
                }
            }
        }
    }
    let failed = report.iter().filter(|c| c.verdict == Verdict::Fail).count();
    anyhow::ensure!(failed == 0, "{failed} check(s) failed");
    Ok(())
}

/// The kernel and the system beneath hairpin.
fn system(pin_dir: &Path, config: Option<&Config>) -> Result<Vec<Check>> {
    let kernel = Kernel::probe();
    let mut out = vec![checks::kernel(&kernel)];
    let socket_on = config.is_none_or(|c| c.socket.enabled);
    let (tc, socket) = facts::verifier();
    out.push(checks::verifier(&tc, &socket, socket_on));
    out.push(checks_system::btf(facts::btf()));
    out.push(checks::pin_dir(
        &pin_dir.display().to_string(),
        facts::fs_magic(pin_dir),
    ));
    let mounts = checks_system::mounts(&facts::mountinfo());
    let socket = config.map_or_else(Default::default, |c| c.socket.clone());
    out.push(checks_system::cgroup2(&mounts, socket.enabled));
    if socket.enabled {
        let cgroup = socket
            .cgroup
            .or_else(|| checks_system::cgroup2_root(&mounts).map(PathBuf::from));
        let magic = cgroup.as_deref().and_then(facts::statfs);
        let shown = cgroup.as_deref().map(|c| c.display().to_string());
        out.push(checks_system::socket_cgroup(shown.as_deref(), magic));
    }
    out.push(checks::capabilities(&caps::missing_now()?));
    let opts = config.map_or_else(LoadOptions::default, LoadOptions::for_config);
    out.push(checks_system::memlock(
        kernel.version,
        facts::memlock(),
        checks_system::map_memory(opts.ct_entries, opts.ct_entries_v6),
    ));
    Ok(out)
}

/// The uplink, reverse-path filtering and the pod interfaces.
fn network(
    config: Option<&Config>,
    net: &Network,
    interfaces: &[String],
    pods: &[glob::Pattern],
) -> Vec<Check> {
    let configured = config.and_then(|c| c.interfaces.uplink.as_deref());
    let mut out = checks_network::uplink(configured, interfaces, &net.routes);
    let all = facts_network::rp_filter("all").unwrap_or(0);
    let rp = |name: &str| {
        checks_network::effective_rp_filter(all, facts_network::rp_filter(name).unwrap_or(0))
    };
    // A configured uplink that does not exist has no filter to read (the
    // uplink check fails it); `auto`'s is the routes' choice.
    let uplink = match configured {
        Some(u) => interfaces.iter().any(|i| i == u).then_some(u),
        None => checks_network::auto_uplink(&net.routes),
    };
    let pod_values: Vec<(String, u8)> = interfaces
        .iter()
        .filter(|i| pods.iter().any(|p| p.matches(i)))
        .map(|i| (i.clone(), rp(i)))
        .collect();
    out.push(checks_network::rp_filter(
        uplink.map(|u| (u, rp(u))),
        &pod_values,
        &net.routes,
    ));
    out.push(checks::cni(interfaces));
    out.push(checks::pod_patterns(interfaces, pods));
    out
}

/// The problem itself, for each TCP frontend: a probe hairpin leaves alone
/// (marked), one through hairpin when it serves, and each backend directly.
fn probes(config: &Config, served: bool) -> Vec<Check> {
    let mut out = Vec::new();
    for fe in &config.frontends {
        if fe.proto != hairpin_common::IPPROTO_TCP {
            continue;
        }
        let addr = SocketAddr::new(fe.addr, fe.port);
        let backends: Vec<(String, Result<(), String>)> = fe
            .backends
            .iter()
            .map(|b| {
                let at = SocketAddr::new(b.addr, b.port);
                (at.to_string(), probe::connect(at, None))
            })
            .collect();
        let marked = probe::connect(addr, Some(hairpin_common::PROBE_MARK));
        let bypass = match marked {
            Err(e) if e == probe::MARK_REFUSED => {
                // Without hairpin in the way, an unmarked probe is as good.
                (!served).then(|| probe::connect(addr, None))
            }
            other => Some(other),
        };
        let through = served.then(|| probe::connect(addr, None));
        out.extend(checks_probe::loopback(&checks_probe::Probe {
            frontend: &addr.to_string(),
            bypass: bypass.as_ref(),
            through: through.as_ref(),
            backends: &backends,
        }));
    }
    out
}
