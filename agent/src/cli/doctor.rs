use std::path::PathBuf;

use anyhow::Result;

use super::{agent_view::AgentArgs, output::Format};
use crate::{
    caps,
    config::{Config, DEFAULT_POD_PATTERNS},
    doctor::{checks, facts, Check, Verdict},
    pins,
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
    let frontends: Vec<_> = config
        .iter()
        .flat_map(|c| c.frontends.iter().map(|f| f.addr))
        .collect();
    let interfaces = facts::interfaces();
    let (layout, counters) = facts::datapath(&args.pin_dir);

    let mut report: Vec<Check> = checks::kernel(facts::kernel());
    report.push(checks::pin_dir(
        &args.pin_dir.display().to_string(),
        facts::fs_magic(&args.pin_dir),
    ));
    report.push(checks::capabilities(&caps::missing_now()?));
    report.push(checks::cni(&interfaces));
    report.push(checks::pod_patterns(&interfaces, &pods));
    report.push(checks::netfilter(&frontends, &facts::netfilter_rules()));
    report.push(checks::layout(layout, hairpin_common::LAYOUT_VERSION));
    if layout.is_some() {
        let is_hairpin = |p: &str| hairpin_common::TC_PROGRAMS.contains(&p);
        report.extend(checks::programs(
            &facts::hooks(&interfaces, &pods),
            is_hairpin,
        ));
        report.push(checks::counters(&counters));
        if let Some((entries, capacity)) = facts::conntrack(&args.pin_dir) {
            report.push(checks::conntrack(entries, capacity));
        }
        let socket = config.as_ref().is_none_or(|c| c.socket.enabled);
        report.push(checks::socket_path(
            socket,
            facts::socket_hooks(&args.pin_dir),
        ));
    }
    // The problem itself: each TCP frontend, and its backends directly.
    let served = layout.is_some()
        && report
            .iter()
            .any(|c| c.check == "programs" && c.verdict == Verdict::Ok);
    for fe in config.iter().flat_map(|c| &c.frontends) {
        if fe.proto != hairpin_common::IPPROTO_TCP {
            continue;
        }
        let addr = std::net::SocketAddr::new(fe.addr, fe.port);
        let backends: Vec<(String, Result<(), String>)> = fe
            .backends
            .iter()
            .map(|b| {
                let at = std::net::SocketAddr::new(b.addr, b.port);
                (at.to_string(), facts::connect(at))
            })
            .collect();
        report.push(checks::loopback(
            &addr.to_string(),
            served,
            &facts::connect(addr),
            &backends,
        ));
    }
    let degraded: Option<Vec<(String, String, String)>> = args
        .agent
        .degraded()
        .map(|d| d.into_iter().map(|d| (d.kind, d.item, d.reason)).collect());
    report.extend(checks::agent(
        &args.agent.addr().to_string(),
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
