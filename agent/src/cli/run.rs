use std::{
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{bail, Context as _, Result};
use futures::StreamExt as _;
use hairpin_common::NodeConfig;
use log::{info, warn};
use tokio::signal::unix::{signal, SignalKind};

use crate::{
    attach::{Attachments, Mode, Role},
    config::Config,
    gc,
    links::{self, Link, LinkEvent},
    loader::{Datapath, LoadOptions, Maps},
    paths, reconcile,
};

/// Run the datapath: load and attach the programs, apply the configuration,
/// follow the node's interfaces, collect expired flows, and reload the
/// configuration when the file changes or on SIGHUP.
#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    config: PathBuf,
    /// Where maps are pinned: one directory per node (several agents may
    /// share a kernel).
    #[arg(long, default_value = paths::DEFAULT_PIN_DIR)]
    pin_dir: PathBuf,
}

/// How often the configuration file is checked and conntrack swept.
const TICK: Duration = Duration::from_secs(2);
/// Entries looked at per sweep, to bound the work of one tick.
const GC_BUDGET: usize = 65_536;

pub fn run(args: Args) -> Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(Agent::start(args)?.serve())
}

struct Agent {
    args: Args,
    config: Config,
    config_stamp: Option<(u64, i64, u64)>,
    opts: LoadOptions,
    dp: Datapath,
    maps: Maps,
    attached: Attachments,
    uplink: Option<Link>,
}

/// Identity of the file behind the config path: a ConfigMap update swaps a
/// symlink, which changes the inode even when the time does not.
fn stamp(path: &Path) -> Option<(u64, i64, u64)> {
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.ino(), m.mtime_nsec() + m.mtime() * 1_000_000_000, m.len()))
}

impl Agent {
    fn start(args: Args) -> Result<Self> {
        let config_stamp = stamp(&args.config);
        let config = Config::load(&args.config)?;
        let opts = LoadOptions::for_config(&config);
        std::fs::create_dir_all(args.pin_dir.join("maps"))
            .with_context(|| format!("creating {} (is bpffs mounted?)", args.pin_dir.display()))?;
        let mut dp = Datapath::load(&opts, Some(&args.pin_dir))?;
        let mut maps = dp.take_maps()?;
        let applied = reconcile::apply(&mut maps, &config.frontends, opts.max_frontends)?;
        info!("configuration {}: {applied:?}", args.config.display());
        let mode = Mode::detect();
        info!("attach mode: {mode:?}");
        Ok(Self {
            args,
            config,
            config_stamp,
            opts,
            dp,
            maps,
            attached: Attachments::new(mode),
            uplink: None,
        })
    }

    async fn serve(mut self) -> Result<()> {
        // Subscribe before listing, so that no interface is missed between.
        let mut events = std::pin::pin!(links::events()?);
        let handle = links::connect()?;
        let all = links::list(&handle).await?;
        self.set_uplink(&handle, &all).await?;
        for link in &all {
            self.follow(link);
        }
        info!(
            "ready: {} interfaces attached",
            self.attached.interfaces().count()
        );
        let mut hup = signal(SignalKind::hangup())?;
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                Some(ev) = events.next() => match ev {
                    LinkEvent::Up(link) => self.follow(&link),
                    LinkEvent::Gone(link) => {
                        if self.attached.detach(&mut self.dp, &link.name) {
                            info!("{} is gone", link.name);
                        }
                    }
                },
                _ = hup.recv() => self.reload("SIGHUP"),
                _ = tick.tick() => {
                    if stamp(&self.args.config) != self.config_stamp {
                        self.reload("file change");
                    }
                    self.collect();
                }
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
        }
        info!(
            "stopping: detaching from {} interfaces",
            self.attached.interfaces().count()
        );
        Ok(())
    }

    /// Finds the uplink (configured, or the route to the first frontend),
    /// attaches to it and tells the datapath its index and MAC address.
    async fn set_uplink(&mut self, handle: &rtnetlink::Handle, all: &[Link]) -> Result<()> {
        let link = match &self.config.interfaces.uplink {
            Some(name) => all.iter().find(|l| &l.name == name).cloned(),
            None => {
                let mut found = None;
                for fe in &self.config.frontends {
                    if let Some(oif) = links::route_oif(handle, fe.addr).await? {
                        found = all.iter().find(|l| l.index == oif).cloned();
                        break;
                    }
                }
                found
            }
        };
        let Some(link) = link else {
            bail!(
                "no uplink: no interface {:?} and no route to a frontend",
                self.config.interfaces.uplink
            );
        };
        self.attached
            .attach(&mut self.dp, &link.name, Role::Uplink)?;
        let node = NodeConfig {
            uplink_ifindex: link.index,
            uplink_mac: link.mac.unwrap_or_default(),
            _pad: [0; 2],
        };
        self.maps.node.set(0, node, 0)?;
        info!("uplink {} (index {}) attached", link.name, link.index);
        self.uplink = Some(link);
        Ok(())
    }

    /// Attaches to a pod interface that matches the patterns. Failures are
    /// logged: one interface must not stop the others.
    fn follow(&mut self, link: &Link) {
        if self.uplink.as_ref().is_some_and(|u| u.name == link.name)
            || self.attached.role(&link.name).is_some()
        {
            return;
        }
        if !self
            .config
            .interfaces
            .pods
            .iter()
            .any(|p| p.matches(&link.name))
        {
            return;
        }
        match self.attached.attach(&mut self.dp, &link.name, Role::Pod) {
            Ok(()) => info!("pod interface {} attached", link.name),
            Err(e) => warn!("pod interface {}: {e:#}", link.name),
        }
    }

    /// Applies a changed configuration; a bad one is reported and the last
    /// good one keeps running.
    fn reload(&mut self, why: &str) {
        self.config_stamp = stamp(&self.args.config);
        let config = match Config::load(&self.args.config) {
            Ok(c) => c,
            Err(e) => {
                warn!("reload ({why}) refused, keeping the last good configuration: {e}");
                return;
            }
        };
        match reconcile::apply(&mut self.maps, &config.frontends, self.opts.max_frontends) {
            Ok(applied) => info!("reload ({why}): {applied:?}"),
            Err(e) => {
                warn!("reload ({why}) failed, keeping the last good configuration: {e:#}");
                return;
            }
        }
        if config.ct_entries != self.config.ct_entries || config.timeouts != self.config.timeouts {
            warn!("conntrack size and timeouts take effect at the next start");
        }
        self.config = config;
    }

    fn collect(&mut self) {
        match gc::sweep(
            &mut self.maps.conntrack,
            &self.opts.timeouts,
            gc::monotonic_ns(),
            GC_BUDGET,
        ) {
            Ok(s) if s.removed > 0 => info!(
                "conntrack: {} entries, {} expired removed",
                s.entries, s.removed
            ),
            Ok(_) => {}
            Err(e) => warn!("conntrack sweep: {e:#}"),
        }
    }
}
