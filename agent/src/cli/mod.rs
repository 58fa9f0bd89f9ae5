//! The `hairpin` command line: one file per subcommand.

mod check;
mod run;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// hairpin: NAT hairpin for the node's pods and processes, in eBPF.
#[derive(Parser)]
#[command(version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Run(run::Args),
    Check(check::Args),
}

pub fn main(cli: Cli) -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Check(args) => check::check(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hairpin: {e:#}");
            ExitCode::FAILURE
        }
    }
}
