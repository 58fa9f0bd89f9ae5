use std::{
    collections::BTreeMap,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};
use futures::StreamExt as _;
use hairpin_common::SockScope;
use tokio::signal::unix::{signal, SignalKind};
use tracing::{info, warn};

use crate::{
    attach::{Attachments, Mode, Role},
    config::{Config, ConfigError, SocketScope},
    gc,
    links::{self, Link, LinkEvent},
    loader::{Datapath, LoadOptions, Maps},
    metrics::{self, AgentMetrics},
    paths, reconcile, sockets,
};

/// Run the datapath: load and attach the programs, apply the configuration,
/// follow the node's interfaces, collect expired flows, serve metrics, and
/// reload the configuration when the file changes or on SIGHUP. The
/// datapath stays in place when the agent stops (`hairpin detach` removes
/// it), and the next agent adopts it without losing a flow.
#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    config: PathBuf,
    /// Where maps and links are pinned: one directory per node (several
    /// agents may share a kernel).
    #[arg(long, default_value = paths::DEFAULT_PIN_DIR)]
    pin_dir: PathBuf,
    /// How to attach to interfaces: TCX (kernel 6.6+, the default where
    /// available: pinned links, atomic replacement on restart) or clsact
    /// netlink filters (any kernel; a restart leaves a brief gap).
    #[arg(long, value_enum)]
    attach: Option<Mode>,
}

/// How often the configuration file is checked and conntrack swept.
const TICK: Duration = Duration::from_secs(2);
/// Entries looked at per sweep, to bound the work of one tick.
const GC_BUDGET: usize = 65_536;

pub fn run(args: Args) -> Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let handle = links::connect()?;
            Agent::start(args, handle).await?.serve().await
        })
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
    /// The node's interfaces by name, as netlink last told.
    known: BTreeMap<String, Link>,
    handle: rtnetlink::Handle,
    metrics: AgentMetrics,
    /// Backend addresses kept for the reverse entries of flows just ended,
    /// until their reset has had time to reach the clients.
    lingering: Vec<(Instant, reconcile::Lingering)>,
    sweep_v4: gc::Sweeper<u32>,
    sweep_v6: gc::Sweeper<[u32; 4]>,
}

/// Identity of the file behind the config path: a ConfigMap update swaps a
/// symlink, which changes the inode even when the time does not.
fn stamp(path: &Path) -> Option<(u64, i64, u64)> {
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.ino(), m.mtime_nsec() + m.mtime() * 1_000_000_000, m.len()))
}

/// Refuses frontends on the node's own addresses: hairpin would capture the
/// node's own traffic to them.
fn check_node_addrs(
    path: &Path,
    config: &Config,
    node: &[std::net::IpAddr],
) -> Result<(), ConfigError> {
    match config.frontends.iter().find(|f| node.contains(&f.addr)) {
        None => Ok(()),
        Some(f) => Err(ConfigError {
            file: path.to_owned(),
            line: f.line,
            column: f.column,
            field: f.field.clone(),
            message: format!(
                "{} is an address of this node: hairpin would capture the node's own traffic",
                f.addr
            ),
        }),
    }
}

/// Forwards the datapath's aya-log records to the log. The logger must stay
/// alive and be polled: its ring buffer is read from here.
fn spawn_datapath_logger(dp: &mut Datapath) -> Result<()> {
    let logger = aya_log::EbpfLogger::init(&mut dp.ebpf).context("datapath logger")?;
    // SAFETY: the logger owns its ring buffer's descriptor for as long as
    // it lives, and the AsyncFd owns the logger.
    let mut fd = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(logger, tokio::io::Interest::READABLE)
    }
    .map_err(|e| anyhow::anyhow!("polling the datapath logger: {e}"))?;
    tokio::spawn(async move {
        loop {
            let Ok(mut guard) = fd.readable_mut().await else {
                return;
            };
            guard.get_inner_mut().flush();
            guard.clear_ready();
        }
    });
    Ok(())
}

impl Agent {
    async fn start(args: Args, handle: rtnetlink::Handle) -> Result<Self> {
        let config_stamp = stamp(&args.config);
        let config = Config::load(&args.config)?;
        check_node_addrs(&args.config, &config, &links::addresses(&handle).await?)?;
        let mut opts = LoadOptions::for_config(&config);
        if tracing::enabled!(target: "hairpin", tracing::Level::DEBUG) {
            opts.log_level = crate::loader::LOG_LEVEL_DEBUG;
        }
        std::fs::create_dir_all(args.pin_dir.join(paths::MAPS_DIR))
            .with_context(|| format!("creating {} (is bpffs mounted?)", args.pin_dir.display()))?;
        let mut dp = Datapath::load(&opts, Some(&args.pin_dir))?;
        let mut maps = dp.take_maps()?;
        if opts.log_level != 0 {
            spawn_datapath_logger(&mut dp)?;
        }
        let applied = reconcile::apply(&mut maps, &config.frontends, opts.max_frontends)?;
        info!(config = %args.config.display(), ?applied, "configuration applied");
        let mode = Mode::choose(args.attach);
        info!(?mode, "attach mode");
        let metrics = AgentMetrics::default();
        metrics.set_names(&maps, &config)?;
        if let Some(addr) = config.metrics {
            metrics::serve(addr, &args.pin_dir, metrics.clone())?;
            info!(%addr, "serving metrics");
        }
        Ok(Self {
            attached: Attachments::new(mode, &args.pin_dir),
            args,
            config,
            config_stamp,
            opts,
            dp,
            maps,
            uplink: None,
            known: BTreeMap::new(),
            handle,
            metrics,
            lingering: Vec::new(),
            sweep_v4: gc::Sweeper::default(),
            sweep_v6: gc::Sweeper::default(),
        })
    }

    async fn serve(mut self) -> Result<()> {
        // Subscribe before listing, so that no interface is missed between.
        let mut events = std::pin::pin!(links::events()?);
        for link in links::list(&self.handle).await? {
            self.known.insert(link.name.clone(), link);
        }
        self.set_uplink().await?;
        self.set_sockets()?;
        self.forget_stale_pins()?;
        let all: Vec<Link> = self.known.values().cloned().collect();
        for link in &all {
            self.follow(link);
        }
        info!(
            interfaces = self.attached.interfaces().count(),
            "ready: attached"
        );
        let mut hup = signal(SignalKind::hangup())?;
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                Some(ev) = events.next() => match ev {
                    LinkEvent::Up(link) => {
                        self.known.insert(link.name.clone(), link.clone());
                        self.follow(&link);
                    }
                    LinkEvent::Gone(link) => {
                        self.known.remove(&link.name);
                        match self.attached.detach(&link.name) {
                            Ok(true) => info!(interface = %link.name, "interface gone, forgotten"),
                            Ok(false) => {}
                            Err(e) => warn!(interface = %link.name, "forgetting a gone interface: {e:#}"),
                        }
                    }
                },
                _ = hup.recv() => self.reload("SIGHUP").await,
                _ = tick.tick() => {
                    if stamp(&self.args.config) != self.config_stamp {
                        self.reload("file change").await;
                    }
                    self.collect();
                }
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
        }
        info!("stopping; the datapath stays in place (`hairpin detach` removes it)");
        Ok(())
    }

    /// Finds the uplink (configured, or the route to the first frontend),
    /// attaches to it and tells the datapath its index and MAC address.
    async fn set_uplink(&mut self) -> Result<()> {
        let link = match &self.config.interfaces.uplink {
            Some(name) => self.known.get(name).cloned(),
            None => {
                let mut oifs = std::collections::BTreeSet::new();
                for fe in &self.config.frontends {
                    if let Some(oif) = links::route_oif(&self.handle, fe.addr).await? {
                        oifs.insert(oif);
                    }
                }
                if oifs.len() > 1 {
                    // One uplink per node: host traffic to frontends routed
                    // elsewhere is left to the socket-level path.
                    warn!(
                        ?oifs,
                        "the frontends route through several interfaces; the first is the uplink"
                    );
                }
                oifs.first()
                    .and_then(|oif| self.known.values().find(|l| l.index == *oif).cloned())
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
        self.maps.update_node(|n| {
            n.uplink_ifindex = link.index;
            n.uplink_mac = link.mac.unwrap_or_default();
        })?;
        info!(interface = %link.name, index = link.index, "uplink attached");
        self.uplink = Some(link);
        Ok(())
    }

    /// Attaches the socket-level path to its cgroup (or detaches it, when
    /// the configuration turns it off) and tells the datapath its scope.
    fn set_sockets(&mut self) -> Result<()> {
        let lb = &self.config.socket;
        if !lb.enabled {
            self.maps
                .update_node(|n| n.sock_scope = SockScope::Off as u8)?;
            for pin in sockets::detach(&self.args.pin_dir)? {
                info!(pin = %pin.display(), "socket-level path off: detached");
            }
            return Ok(());
        }
        let cookie = sockets::netns_cookie()?;
        let scope = match lb.scope {
            SocketScope::Host => SockScope::Host,
            SocketScope::All => SockScope::All,
        };
        self.maps.update_node(|n| {
            n.sock_scope = scope as u8;
            n.host_netns_cookie = cookie;
        })?;
        let cgroup = match &lb.cgroup {
            Some(c) => c.clone(),
            None => sockets::cgroup2_root()?,
        };
        sockets::attach(&mut self.dp, &cgroup, &self.args.pin_dir)?;
        info!(cgroup = %cgroup.display(), scope = ?lb.scope, "socket-level path attached");
        Ok(())
    }

    /// Removes links an earlier agent pinned on interfaces that are gone or
    /// no longer hairpin's.
    fn forget_stale_pins(&mut self) -> Result<()> {
        for ifname in self.attached.pinned_interfaces() {
            let keep = self.known.contains_key(&ifname)
                && (self.is_uplink(&ifname) || self.is_pod(&ifname));
            if !keep {
                for (name, _) in [Role::Uplink, Role::Pod].iter().flat_map(|r| r.programs()) {
                    crate::attach::unpin_link(&paths::link_pin(&self.args.pin_dir, &ifname, name))?;
                }
                info!(interface = %ifname, "removed links pinned by an earlier agent");
            }
        }
        Ok(())
    }

    fn is_uplink(&self, ifname: &str) -> bool {
        self.uplink.as_ref().is_some_and(|u| u.name == ifname)
    }

    fn is_pod(&self, ifname: &str) -> bool {
        !self.is_uplink(ifname)
            && self
                .config
                .interfaces
                .pods
                .iter()
                .any(|p| p.matches(ifname))
    }

    /// Attaches to a pod interface that matches the patterns, detaches from
    /// one that no longer does. Failures are logged and counted: one
    /// interface must not stop the others.
    fn follow(&mut self, link: &Link) {
        let want = self.is_pod(&link.name);
        let have = self.attached.role(&link.name) == Some(Role::Pod);
        if want && !have {
            match self.attached.attach(&mut self.dp, &link.name, Role::Pod) {
                Ok(()) => info!(interface = %link.name, "pod interface attached"),
                Err(e) => {
                    self.metrics.attach_errors.inc();
                    warn!(interface = %link.name, "attaching: {e:#}");
                }
            }
        } else if have && !want {
            match self.attached.detach(&link.name) {
                Ok(_) => {
                    info!(interface = %link.name, "no longer matches the pod patterns: detached")
                }
                Err(e) => warn!(interface = %link.name, "detaching: {e:#}"),
            }
        }
    }

    /// Applies a changed configuration; a bad one is reported and the last
    /// good one keeps running.
    async fn reload(&mut self, why: &str) {
        self.config_stamp = stamp(&self.args.config);
        let config = match Config::load(&self.args.config) {
            Ok(c) => c,
            Err(e) => {
                self.metrics.reload(false);
                warn!(
                    why,
                    "reload refused, keeping the last good configuration: {e}"
                );
                return;
            }
        };
        let node = links::addresses(&self.handle).await.unwrap_or_default();
        if let Err(e) = check_node_addrs(&self.args.config, &config, &node) {
            self.metrics.reload(false);
            warn!(
                why,
                "reload refused, keeping the last good configuration: {e}"
            );
            return;
        }
        match reconcile::apply(&mut self.maps, &config.frontends, self.opts.max_frontends) {
            Ok(applied) => {
                let until = Instant::now() + Duration::from_nanos(self.opts.timeouts.close) + TICK;
                self.lingering.push((until, applied.lingering.clone()));
                info!(why, ?applied, "configuration reloaded");
            }
            Err(e) => {
                self.metrics.reload(false);
                warn!(
                    why,
                    "reload failed, keeping the last good configuration: {e:#}"
                );
                // Put the maps back to the last good configuration.
                if let Err(e) = reconcile::apply(
                    &mut self.maps,
                    &self.config.frontends,
                    self.opts.max_frontends,
                ) {
                    warn!("restoring the last good configuration: {e:#}");
                }
                return;
            }
        }
        self.metrics.reload(true);
        if config.ct_entries != self.config.ct_entries || config.timeouts != self.config.timeouts {
            warn!("conntrack size and timeouts take effect at the next start");
        }
        let sockets_changed = config.socket != self.config.socket;
        self.config = config;
        self.sync_lingering();
        if sockets_changed {
            if let Err(e) = self.set_sockets() {
                warn!("socket-level path: {e:#}");
            }
        }
        if let Err(e) = self.metrics.set_names(&self.maps, &self.config) {
            warn!("frontend names for metrics: {e:#}");
        }
        let all: Vec<Link> = self.known.values().cloned().collect();
        for link in &all {
            self.follow(link);
        }
    }

    /// Lets go of lingering backend addresses whose time is up.
    fn expire_lingering(&mut self) {
        let before = self.lingering.len();
        let now = Instant::now();
        self.lingering.retain(|(until, _)| *until > now);
        if self.lingering.len() != before {
            self.sync_lingering();
        }
    }

    fn sync_lingering(&mut self) {
        let mut lingering = reconcile::Lingering::default();
        for (_, l) in &self.lingering {
            lingering.v4.extend(&l.v4);
            lingering.v6.extend(&l.v6);
        }
        if let Err(e) =
            reconcile::sync_backend_addrs(&mut self.maps, &self.config.frontends, &lingering)
        {
            warn!("backend addresses: {e:#}");
        }
    }

    fn collect(&mut self) {
        self.expire_lingering();
        self.metrics.gc_sweeps.inc();
        let (now, t) = (gc::monotonic_ns(), &self.opts.timeouts);
        let swept = self
            .sweep_v4
            .step(&mut self.maps.v4.conntrack, t, now, GC_BUDGET)
            .and_then(|a| {
                Ok(a + self
                    .sweep_v6
                    .step(&mut self.maps.v6.conntrack, t, now, GC_BUDGET)?)
            });
        match swept {
            Ok(s) if s.removed > 0 => {
                self.metrics.gc_removed.inc_by(s.removed as u64);
                info!(entries = s.entries, removed = s.removed, "conntrack sweep");
            }
            Ok(_) => {}
            Err(e) => warn!("conntrack sweep: {e:#}"),
        }
    }
}
