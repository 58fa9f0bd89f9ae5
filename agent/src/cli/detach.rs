use std::{fs, path::PathBuf};

use anyhow::{Context as _, Result};

use crate::{datapath::attach, datapath::pins, datapath::pod_side::PodSide, datapath::sockets};

/// Remove everything hairpin installed under the pin directory: its links
/// (the programs detach with them), then its maps. Traffic to the frontends
/// stops being translated at once.
#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = pins::DEFAULT_PIN_DIR)]
    pin_dir: PathBuf,
}

pub fn detach(args: Args) -> Result<()> {
    let mut removed = 0;
    for link in pins::pinned_links(&args.pin_dir) {
        if pins::unpin_link(&link)? {
            println!("detached {}", link.display());
            removed += 1;
        }
    }
    // clsact filters have no pins: look on every interface of the node.
    let links = crate::links::list_now()?;
    for link in &links {
        for role in [attach::Role::Uplink, attach::Role::Pod] {
            for (name, dir) in role.programs() {
                if attach::remove_filters(&link.name, dir, name)? {
                    println!("detached {name} filter from {} ({dir:?})", link.name);
                    removed += 1;
                }
            }
        }
        // The pod side's, inside the pod's namespace.
        let (name, dir) = attach::POD_SIDE;
        if let Some(side) = link.peer.and_then(|p| PodSide::find(&p).ok()) {
            if side.within(|inside| attach::remove_filters(inside, dir, name))? {
                println!("detached {name} filter from the pod side of {}", link.name);
                removed += 1;
            }
        }
    }
    for pin in sockets::detach(&args.pin_dir)? {
        println!("detached {}", pin.display());
        removed += 1;
    }
    // Every map pinned there, whichever version of hairpin pinned it.
    let maps_dir = args.pin_dir.join(pins::MAPS_DIR);
    let mut maps: Vec<_> = fs::read_dir(&maps_dir)
        .map(|d| d.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default();
    maps.sort();
    for pin in maps {
        fs::remove_file(&pin).with_context(|| format!("removing {}", pin.display()))?;
        println!("removed {}", pin.display());
        removed += 1;
    }
    for prog in hairpin_common::TC_PROGRAMS {
        // Ignored error: see below.
        let _ = fs::remove_dir(args.pin_dir.join(pins::LINKS_DIR).join(prog));
    }
    for dir in [pins::LINKS_DIR, pins::MAPS_DIR, ""] {
        // Ignored error: a directory that is absent or still holds something
        // that is not hairpin's stays.
        let _ = fs::remove_dir(args.pin_dir.join(dir));
    }
    if removed == 0 {
        println!("nothing to remove under {}", args.pin_dir.display());
    }
    Ok(())
}
