use std::path::PathBuf;

use anyhow::Result;
use aya::programs::{SchedClassifier, TcAttachType};
use serde::Serialize;

use super::output::{print, Format};
use crate::{attach, links, loader::PROGRAMS, paths};

/// Where hairpin is attached: the TCX programs on every interface's hooks,
/// in order, and the links hairpin pinned.
#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = paths::DEFAULT_PIN_DIR)]
    pin_dir: PathBuf,
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
    let all = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async { links::list(&links::connect()?).await })?;
    let pinned: Vec<String> = attach::pinned_links(&args.pin_dir)
        .iter()
        .filter_map(|p| paths::link_ifname(p))
        .collect();
    let mut rows = Vec::new();
    for link in &all {
        for (hook, dir) in [
            ("ingress", TcAttachType::Ingress),
            ("egress", TcAttachType::Egress),
        ] {
            // Interfaces that cannot carry TCX (or a kernel without it) list nothing.
            let Ok((_, progs)) = SchedClassifier::query_tcx(&link.name, dir) else {
                continue;
            };
            let names: Vec<String> = progs
                .iter()
                .map(|p| p.name_as_str().unwrap_or("?").to_owned())
                .collect();
            if names.is_empty() {
                continue;
            }
            rows.push(Hook {
                interface: link.name.clone(),
                hook,
                hairpin: names
                    .iter()
                    .filter(|n| PROGRAMS.contains(&n.as_str()))
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
    Ok(())
}
