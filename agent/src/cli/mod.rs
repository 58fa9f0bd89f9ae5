//! The `hairpin` command line: one file per subcommand.

mod check;
mod control;
mod crd;
mod ct;
mod detach;
mod doctor;
mod list;
mod monitor;
mod output;
mod run;
mod status;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// hairpin: NAT hairpin for the node's pods and processes, in eBPF.
#[derive(Parser)]
#[command(version)]
pub struct Cli {
    /// Log as JSON lines rather than text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Run(run::Args),
    Check(check::Args),
    Crd(crd::Args),
    List(list::Args),
    Ct(ct::Args),
    Detach(detach::Args),
    Doctor(doctor::Args),
    Monitor(monitor::Args),
    Status(status::Args),
}

pub fn main(cli: Cli) -> ExitCode {
    // RUST_LOG as usual; `debug` adds the datapath's events.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if cli.log_json {
        logs.json().init();
    } else {
        logs.init();
    }
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Check(args) => check::check(args),
        Command::Crd(args) => crd::crd(args),
        Command::List(args) => list::list(args),
        Command::Ct(args) => ct::ct(args),
        Command::Detach(args) => detach::detach(args),
        Command::Doctor(args) => doctor::doctor(args),
        Command::Monitor(args) => monitor::monitor(args),
        Command::Status(args) => status::status(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hairpin: {e:#}");
            ExitCode::FAILURE
        }
    }
}
