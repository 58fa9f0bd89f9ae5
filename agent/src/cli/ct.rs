use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;

use super::{
    control::AgentArgs,
    output::{print, Format},
};
use crate::{datapath::pinned, datapath::pins};

/// Conntrack: list or flush flows, from the pinned maps.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Flows with both tuples, backend, state and age.
    List(Filter),
    /// Ends flows now: TCP clients get a reset, the next packet opens a new flow.
    Flush(Filter),
}

#[derive(clap::Args)]
struct Filter {
    /// Only this frontend's flows, written like 203.0.113.10:8080/TCP.
    #[arg(long)]
    frontend: Option<String>,
    #[arg(long, default_value = pins::DEFAULT_PIN_DIR)]
    pin_dir: PathBuf,
    #[arg(long, value_enum, default_value_t)]
    output: Format,
    #[command(flatten)]
    agent: AgentArgs,
}

pub fn ct(args: Args) -> Result<()> {
    let (Command::List(filter) | Command::Flush(filter)) = &args.command;
    let pinned = pinned::Pinned::open(&filter.pin_dir)?;
    let id = filter
        .frontend
        .as_deref()
        .map(|f| pinned::frontend_id(&pinned, f))
        .transpose()?;
    let flows: Vec<_> = pinned::flows(&pinned)?
        .into_iter()
        .filter(|f| id.is_none_or(|id| f.frontend_id == id))
        .collect();
    match args.command {
        Command::List(_) => print(
            filter.output,
            &flows,
            &[
                "PROTO",
                "CLIENT",
                "FRONTEND",
                "BACKEND",
                "CLIENT AT BACKEND",
                "ORIGIN",
                "STATE",
                "AGE",
                "IDLE",
            ],
            |f| {
                vec![
                    f.proto.to_owned(),
                    f.client.clone(),
                    f.frontend.clone(),
                    f.backend.clone(),
                    f.client_at_backend.clone(),
                    f.origin.to_owned(),
                    f.state.to_owned(),
                    format!("{}s", f.age_s),
                    format!("{}s", f.idle_s),
                ]
            },
        ),
        Command::Flush(_) => {
            // Through the agent, so that its monitors hear of it; alone
            // when no agent answers.
            drop(pinned);
            let ended = match filter.agent.flush(id) {
                Some(n) => n,
                None => crate::conntrack::flows::flush(&filter.pin_dir, id)?.flows,
            };
            println!("flushed {ended} flows");
        }
    }
    Ok(())
}
