use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use super::{
    control::{self, AgentArgs},
    output::{print, Format},
};
use crate::{datapath::attach, datapath::hooks, datapath::kernel::Kernel, datapath::pins, links};

/// Where hairpin is attached: the programs (TCX, clsact) on every hook,
/// in order, and the links hairpin pinned; then what the kernel lacks and
/// what serves instead, and what the agent reports it cannot serve.
#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = pins::DEFAULT_PIN_DIR)]
    pin_dir: PathBuf,
    #[command(flatten)]
    agent: AgentArgs,
    #[arg(long, value_enum, default_value_t)]
    output: Format,
}

#[derive(Serialize)]
struct Hook {
    interface: String,
    hook: &'static str,
    /// Programs on the hook, first to run first.
    programs: Vec<String>,
    /// How many of them are hairpin's.
    hairpin: usize,
    pinned: bool,
}

pub fn status(args: Args) -> Result<()> {
    let all = links::list_now()?;
    let pinned: Vec<String> = pins::pinned_links(&args.pin_dir)
        .iter()
        .filter_map(|p| pins::link_ifname(p))
        .collect();
    let mut rows = Vec::new();
    for link in &all {
        // A peer whose namespace cannot be entered is none of a pod's that
        // hairpin serves (those it found to attach).
        let pod_side = hooks::pod_side_programs(link)
            .ok()
            .flatten()
            .map(|programs| (attach::POD_SIDE_HOOK, programs));
        for (hook, programs) in hooks::hook_programs(&link.name)?
            .into_iter()
            .chain(pod_side)
        {
            if programs.is_empty() {
                continue;
            }
            let names: Vec<String> = programs.into_iter().map(|p| p.name).collect();
            rows.push(Hook {
                interface: link.name.clone(),
                hook,
                hairpin: names
                    .iter()
                    .filter(|n| hairpin_common::TC_PROGRAMS.contains(&n.as_str()))
                    .count(),
                programs: names,
                pinned: pinned.contains(&link.name),
            });
        }
    }
    print(
        args.output,
        &rows,
        &["INTERFACE", "HOOK", "PROGRAMS", "PINNED"],
        |h| {
            vec![
                h.interface.clone(),
                h.hook.to_owned(),
                h.programs.join(", "),
                if h.pinned { "yes" } else { "no" }.to_owned(),
            ]
        },
    );
    if matches!(args.output, Format::Table) {
        // Which datapath is pinned, against what this binary makes.
        match crate::datapath::migrate::pinned_layout(&args.pin_dir) {
            Ok(Some(v)) => println!(
                "\ndatapath: layout {v}; this binary's: {} (hairpin {})",
                hairpin_common::LAYOUT_VERSION,
                env!("CARGO_PKG_VERSION")
            ),
            Ok(None) => println!("\ndatapath: none pinned under {}", args.pin_dir.display()),
            Err(e) => println!("\ndatapath: unreadable: {e:#}"),
        }
        let kernel = Kernel::probe();
        for lack in kernel.lacks() {
            println!(
                "kernel {}: no {}: {}",
                kernel.release(),
                lack.what,
                lack.instead
            );
        }
        if let Some(items) = args.agent.degraded() {
            control::print_lines(&items);
        }
        if let Some(c) = args.agent.cluster().filter(|c| c.enabled) {
            control::print_cluster(&c);
        }
        if let Some(s) = args.agent.sockets() {
            control::print_sockets(&s);
        }
    }
    Ok(())
}
