use std::path::PathBuf;

use anyhow::Result;

use crate::config::Config;

/// Validate a configuration file and exit: 0 when valid, else the error
/// with its file, line and field.
#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    config: PathBuf,
}

pub fn check(args: Args) -> Result<()> {
    let cfg = Config::load(&args.config)?;
    println!(
        "{}: ok, {} frontends",
        args.config.display(),
        cfg.frontends.len()
    );
    Ok(())
}
