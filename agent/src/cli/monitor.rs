use std::{io::BufRead as _, net::IpAddr};

use anyhow::{Context as _, Result};

use super::{control::AgentArgs, output::Format};
use crate::monitor::{
    event::Shown,
    filter::{self, Filter, FrontendMatch},
};

/// Live events from the datapath, beside the running agent: flows opened
/// and ended, ICMP errors translated, packets left untranslated and why,
/// the socket path's connects. One event per flow start and end by
/// default, never one per packet.
#[derive(clap::Args)]
pub struct Args {
    /// Only this frontend's events: ADDR or ADDR:PORT.
    #[arg(long)]
    frontend: Option<FrontendMatch>,
    /// Only this client's events.
    #[arg(long)]
    client: Option<IpAddr>,
    /// Event types, comma-separated: opened, ended, icmp, refused,
    /// untranslated, connect (the default), malformed, skipped, datagram
    /// (one per packet), or all.
    #[arg(long = "type", value_name = "TYPES")]
    types: Option<String>,
    /// Stop after this many events.
    #[arg(long)]
    count: Option<usize>,
    #[arg(long, value_enum, default_value_t)]
    output: Format,
    #[command(flatten)]
    agent: AgentArgs,
}

pub fn monitor(args: Args) -> Result<()> {
    let mut f = Filter {
        frontend: args.frontend,
        client: args.client,
        ..Filter::default()
    };
    if let Some(t) = &args.types {
        f.kinds = filter::kinds(t)?;
    }
    let stream = args.agent.events(&f.query())?;
    let mut shown = 0;
    for line in stream.lines() {
        let line = line.context("reading the agent's events")?;
        // Empty lines keep an idle stream alive.
        if line.is_empty() {
            continue;
        }
        match args.output {
            Format::Json => println!("{line}"),
            Format::Table => {
                let e: Shown = serde_json::from_str(&line)
                    .with_context(|| format!("an event the agent sent: {line}"))?;
                println!("{} {}", clock(e.time), e.line());
            }
        }
        shown += 1;
        if args.count.is_some_and(|n| shown >= n) {
            return Ok(());
        }
    }
    // The stream ends only with the agent (a restart, a stop).
    anyhow::bail!("the agent closed the stream after {shown} event(s): it stopped or restarted")
}

/// `HH:MM:SS.mmm` (UTC) of seconds since the epoch.
fn clock(t: f64) -> String {
    let ms = (t * 1000.0) as u64;
    let s = ms / 1000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        s / 3600 % 24,
        s / 60 % 60,
        s % 60,
        ms % 1000
    )
}
