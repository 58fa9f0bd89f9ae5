use std::path::PathBuf;

use anyhow::Result;

use super::output::{print, Format};
use crate::{inspect, pins};

/// Frontends with their backends and live counters, from the pinned maps.
#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = pins::DEFAULT_PIN_DIR)]
    pin_dir: PathBuf,
    #[arg(long, value_enum, default_value_t)]
    output: Format,
}

pub fn list(args: Args) -> Result<()> {
    let pinned = inspect::Pinned::open(&args.pin_dir)?;
    let rows = inspect::frontends(&pinned)?;
    print(
        args.output,
        &rows,
        &[
            "ID",
            "FRONTEND",
            "BACKENDS",
            "PATHS",
            "TC PACKETS",
            "TC BYTES",
            "TC FLOWS",
            "SOCK CONNECTS",
            "SOCK DATAGRAMS",
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
                backends.join(", "),
                f.paths.join("+"),
                f.stats.packets.to_string(),
                f.stats.bytes.to_string(),
                f.stats.flows.to_string(),
                f.stats.sock_connects.to_string(),
                f.stats.sock_datagrams.to_string(),
            ]
        },
    );
    Ok(())
}
