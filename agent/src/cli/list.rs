use std::path::PathBuf;

use anyhow::Result;

use super::{
    control::{self, AgentArgs},
    output::{print, Format},
};
use crate::{datapath::pinned, datapath::pins};

/// Frontends with their backends and live counters, from the pinned maps,
/// and what the agent reports it cannot serve.
#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = pins::DEFAULT_PIN_DIR)]
    pin_dir: PathBuf,
    #[command(flatten)]
    agent: AgentArgs,
    #[arg(long, value_enum, default_value_t)]
    output: Format,
}

pub fn list(args: Args) -> Result<()> {
    let pinned = pinned::Pinned::open(&args.pin_dir)?;
    let mut rows = pinned::frontends(&pinned)?;
    let degraded = args.agent.degraded().unwrap_or_default();
    let (names, applied) = if rows.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        (
            args.agent.names().unwrap_or_default(),
            args.agent.frontends().unwrap_or_default(),
        )
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for row in &mut rows {
        row.name = names
            .iter()
            .find(|n| n.addrs.contains(&row.addr) || n.lingering.contains(&row.addr))
            .map(|n| {
                let ago = n.resolved.map_or("never".into(), |t| {
                    format!("{} s ago", now.saturating_sub(t))
                });
                let gone = if n.lingering.contains(&row.addr) {
                    ", no longer its address"
                } else {
                    ""
                };
                format!(
                    "{} (resolved {ago}, again in {} s{gone})",
                    n.host,
                    n.next.saturating_sub(now)
                )
            });
        row.source = applied
            .iter()
            .find(|f| row.frontend == crate::datapath::pinned::frontend_label(f))
            .map(|f| f.source.clone());
        row.not_served = degraded
            .iter()
            .find(|d| d.kind == "route" && d.item == row.addr.to_string())
            .map(|d| format!("unroutable: {}", d.reason));
    }
    print(
        args.output,
        &rows,
        &[
            "ID",
            "FRONTEND",
            "NAME",
            "SOURCE",
            "BACKENDS",
            "POLICY",
            "PATHS",
            "TC PACKETS",
            "TC BYTES",
            "TC FLOWS",
            "SOCK CONNECTS",
            "SOCK DATAGRAMS",
            "STATE",
        ],
        |f| {
            let backends: Vec<String> = f
                .backends
                .iter()
                .map(|(b, w)| {
                    if *w == 1 {
                        b.clone()
                    } else {
                        format!("{b} (weight {w})")
                    }
                })
                .collect();
            vec![
                f.id.to_string(),
                f.frontend.clone(),
                f.name.clone().unwrap_or_default(),
                f.source.clone().unwrap_or_default(),
                backends.join(", "),
                f.policy.join(", "),
                f.paths.join("+"),
                f.stats.packets.to_string(),
                f.stats.bytes.to_string(),
                f.stats.flows.to_string(),
                f.stats.sock_connects.to_string(),
                f.stats.sock_datagrams.to_string(),
                f.not_served.clone().unwrap_or_else(|| "served".into()),
            ]
        },
    );
    if matches!(args.output, Format::Table) {
        // The counters that explain a packet left untranslated or refused
        // (docs/datapath.md, "Counters"), as the metrics have them.
        let counters: Vec<String> = pinned::global_counters(&pinned)?
            .iter()
            .map(|(c, v)| format!("{}={v}", c.name()))
            .collect();
        println!("\ndatapath: {}", counters.join(" "));
        let others: Vec<_> = degraded.into_iter().filter(|d| d.kind != "route").collect();
        control::print_lines(&others);
        // Which clients the socket path serves (its counters above), and
        // which pods keep the TC path, with why.
        if let Some(s) = args.agent.sockets() {
            control::print_sockets(&s);
        }
    }
    Ok(())
}
