//! The agent: loads (or adopts) the datapath, applies the configuration,
//! follows the node's interfaces, collects expired flows and reloads the
//! configuration when it changes. The command line only turns its arguments
//! into [`Settings`].

mod apply;
mod cluster;
mod collect;
mod degraded;
mod events;
mod interfaces;
mod listener;
mod logger;
mod names;
mod reload;
mod socket_ends;
mod socket_path;
mod socket_pods;

use std::{
    collections::BTreeMap,
    net::IpAddr,
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use futures::StreamExt as _;
use tokio::signal::unix::{signal, SignalKind};
use tracing::info;

use crate::{
    config::Config,
    datapath::attach::{Attachments, Mode},
    datapath::loader::{self, Datapath, LoadOptions, Maps},
    datapath::pins,
    links::{self, Link, NetEvent},
    listener::metrics::AgentMetrics,
    listener::published::Health,
    sources::{dns::Names, kubernetes::watch::Message},
};

use self::{
    apply::Cause,
    cluster::Cluster,
    collect::Collector,
    degraded::{Item, Retries},
    names::{Resolved, Resolving},
    reload::ConfigFile,
};

/// What the agent is started with.
pub struct Settings {
    pub config: PathBuf,
    /// One directory per node: several agents may share a kernel.
    pub pin_dir: PathBuf,
    /// How to attach to interfaces; `None`: the best this kernel has.
    pub attach: Option<Mode>,
    /// The node's name in the cluster; `None`: the host name.
    pub node_name: Option<String>,
    /// Overrides the file's `kubernetes.kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
    /// The control socket's path.
    pub socket: PathBuf,
}

/// How often the configuration file is checked and conntrack swept.
const TICK: Duration = Duration::from_secs(2);

/// Runs the agent until SIGTERM or SIGINT. The datapath stays in place when
/// it stops (`hairpin detach` removes it), and the next agent adopts it
/// without losing a flow.
pub fn run(settings: Settings) -> Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            // First of all: a signal that comes while the agent loads is
            // kept, and ends it once loading is done. As PID 1 of a
            // container a process ignores what it has no handler for.
            let signals = Signals::new()?;
            crate::caps::check_run()?;
            let handle = links::connect()?;
            Agent::start(settings, handle).await?.serve(signals).await
        })
}

/// The signals the agent answers, handled from its start.
struct Signals {
    hup: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Self> {
        Ok(Self {
            hup: signal(SignalKind::hangup())?,
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }
}

/// The agent: where desired state comes from, the datapath it is written
/// to, and what the agent tells the node about both.
struct Agent {
    settings: Settings,
    sources: Sources,
    datapath: DatapathState,
    published: Published,
}

/// Where desired state comes from: the file, its names, the cluster.
struct Sources {
    file: ConfigFile,
    /// The configuration the maps hold: the last good one.
    config: Config,
    /// The node's own addresses, as of the last read of the file.
    node: Vec<IpAddr>,
    /// The frontends' names and their addresses.
    names: Names,
    resolving: Resolving,
    resolved: Option<tokio::sync::mpsc::UnboundedReceiver<Resolved>>,
    /// Kubernetes mode, when the file asks for it.
    cluster: Option<Cluster>,
    node_name: String,
    cluster_tx: tokio::sync::mpsc::UnboundedSender<Message>,
    cluster_rx: Option<tokio::sync::mpsc::UnboundedReceiver<Message>>,
    /// When the cgroup tree was last read for the socket path's choice.
    cgroups_read: Option<Instant>,
}

/// The datapath on this node: its programs and maps, where they are
/// attached, and the flows the agent collects.
struct DatapathState {
    opts: LoadOptions,
    dp: Datapath,
    maps: Maps,
    /// The frontends the maps hold: the file's, its names' addresses and
    /// the cluster's.
    applied: Vec<crate::config::Frontend>,
    /// Maps migrated at start, copied once more after the programs moved.
    migrations: Option<crate::datapath::migrate::Migrations>,
    attached: Attachments,
    uplink: Option<Link>,
    /// The node's interfaces by name, as netlink last told.
    known: BTreeMap<String, Link>,
    handle: rtnetlink::Handle,
    collector: Collector,
}

/// What the agent tells the node: metrics, health and readiness, what it
/// cannot serve, its listeners, and the monitors' events.
struct Published {
    metrics: AgentMetrics,
    health: Health,
    /// What this node could not serve, retried.
    retries: Retries,
    listening: listener::Listening,
    /// The monitors listening to the datapath's events.
    monitor: crate::monitor::Hub,
}

impl Agent {
    /// Loads the datapath and applies the configuration; when that fails,
    /// pins set aside for a migration are put back (see `migrate`).
    async fn start(settings: Settings, handle: rtnetlink::Handle) -> Result<Self> {
        let pin_dir = settings.pin_dir.clone();
        let mut migrations = None;
        let started = Self::load(settings, handle, &mut migrations).await;
        if let (Err(_), Some(m)) = (&started, &migrations) {
            m.restore(&pin_dir);
        }
        started
    }

    async fn load(
        settings: Settings,
        handle: rtnetlink::Handle,
        pending: &mut Option<crate::datapath::migrate::Migrations>,
    ) -> Result<Self> {
        let (file, config, node) =
            ConfigFile::open(&settings.config, settings.kubeconfig.clone(), &handle).await?;
        let mut opts = LoadOptions::for_config(&config);
        if tracing::enabled!(target: "hairpin", tracing::Level::DEBUG) {
            opts.log_level = loader::LOG_LEVEL_DEBUG;
        }
        pins::create_dirs(&settings.pin_dir)?;
        let migrations =
            pending.insert(crate::datapath::migrate::prepare(&settings.pin_dir, &opts)?);
        let mut dp = Datapath::load(&opts, Some(&settings.pin_dir))?;
        migrations.copy(&settings.pin_dir, false)?;
        let maps = dp.take_maps()?;
        let monitor = events::spawn(&mut dp, &settings.pin_dir).context("monitor events")?;
        if opts.log_level != 0 {
            logger::spawn(&mut dp).context("datapath logger")?;
        }
        let node_name = cluster::node_name(settings.node_name.as_deref());
        cluster::check_node_name(&config, &node_name)?;
        let (cluster_tx, cluster_rx) = tokio::sync::mpsc::unbounded_channel();
        let mode = Mode::choose(settings.attach);
        info!(?mode, "attach mode");
        let metrics = AgentMetrics::default();
        for &(map, outcome) in &migrations.outcomes {
            metrics
                .maps_at_start
                .get_or_create(&crate::listener::metrics::MapLabel { map, outcome })
                .set(1);
        }
        for &(map, flows) in &migrations.flows_lost {
            metrics
                .flows_lost_at_start
                .get_or_create(&crate::listener::metrics::MapName { map })
                .set(flows as i64);
        }
        let mut names = Names::new(config.dns.clone());
        names.track(&config, Instant::now());
        let (resolving, resolved) = Resolving::new();
        let health = Health::default();
        let mut agent = Self {
            datapath: DatapathState {
                attached: Attachments::new(mode, &settings.pin_dir, interfaces::pod_sides()),
                applied: Vec::new(),
                opts,
                dp,
                maps,
                uplink: None,
                known: BTreeMap::new(),
                handle,
                collector: Collector::default(),
                migrations: None,
            },
            settings,
            sources: Sources {
                file,
                config,
                node,
                names,
                resolving,
                resolved: Some(resolved),
                cluster: None,
                node_name,
                cluster_tx,
                cluster_rx: Some(cluster_rx),
                cgroups_read: None,
            },
            published: Published {
                metrics,
                retries: Retries::new(health.clone()),
                health,
                monitor,
                listening: Default::default(),
            },
        };
        agent.set_listeners();
        // The cluster's last known frontends are in the first apply, so
        // that a restart ends none of their flows.
        agent
            .configure_cluster(agent.sources.config.kubernetes.clone())
            .await;
        // So are the addresses the file's names had.
        agent.adopt_names();
        let config = agent.sources.config.clone();
        agent.apply(&config, Cause::Start)?;
        if let Some(m) = pending.as_ref() {
            m.end_unreadable(&mut agent.datapath.maps, &agent.sources.node, false);
        }
        agent.datapath.migrations = pending.take();
        Ok(agent)
    }

    async fn serve(mut self, signals: Signals) -> Result<()> {
        let Signals {
            mut hup,
            mut term,
            mut int,
        } = signals;
        // Subscribe before listing, so that no interface is missed between.
        let mut events = std::pin::pin!(links::events()?);
        let mut resolved = self.sources.resolved.take().expect("served once");
        let mut cluster = self.sources.cluster_rx.take().expect("served once");
        for link in links::list(&self.datapath.handle).await? {
            self.datapath.known.insert(link.name.clone(), link);
        }
        // Nothing here waits on what cannot be served: it is reported and
        // retried, and the rest is served at once.
        self.set_uplink().await;
        self.set_socket_path();
        self.forget_stale_pins();
        self.follow_all();
        // The programs moved over: what the old ones wrote since the first
        // copy follows.
        if let Some(m) = self.datapath.migrations.take() {
            if let Err(e) = m.copy(&self.settings.pin_dir, true) {
                tracing::warn!("migrating maps: {e:#}");
            }
            m.end_unreadable(&mut self.datapath.maps, &self.sources.node, true);
            m.finish(&self.settings.pin_dir);
        }
        self.resolve_due();
        self.report_names();
        info!(
            interfaces = self.datapath.attached.interfaces().count(),
            degraded = self.published.health.degraded().len(),
            "ready: attached"
        );
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                Some(ev) = events.next() => match ev {
                    NetEvent::Up(link) => self.link_up(link).await,
                    NetEvent::Gone(link) => self.link_gone(&link),
                    NetEvent::Routing => {
                        let items = self.published.retries.routing();
                        self.retry(items).await;
                    }
                },
                Some(r) = resolved.recv() => self.name_resolved(r).await,
                Some(m) = cluster.recv() => {
                    // A burst of changes (a relist, a rollout) is applied once.
                    let mut batch = vec![m];
                    while let Ok(m) = cluster.try_recv() {
                        batch.push(m);
                    }
                    self.cluster_messages(batch).await;
                }
                _ = hup.recv() => self.reload("SIGHUP").await,
                _ = tick.tick() => {
                    self.published.health.beat();
                    if self.sources.file.changed() {
                        self.reload("file change").await;
                    }
                    let due = self.published.retries.due(Instant::now());
                    self.retry(due).await;
                    self.resolve_due();
                    self.expire_names().await;
                    self.rescan_cgroups();
                    self.collect().await;
                }
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
        }
        info!("stopping; the datapath stays in place (`hairpin detach` removes it)");
        Ok(())
    }

    /// Tries failed items again.
    async fn retry(&mut self, items: Vec<Item>) {
        let mut routing = false;
        for item in items {
            match item {
                Item::Uplink | Item::Route(_) => routing = true,
                Item::SocketPath => self.set_socket_path(),
                Item::Listener(_) => self.set_listeners(),
                // Names have their own schedule (TTL, backoff).
                Item::Name(_) => {}
                // The watches retry on their own; a client never made is
                // made again.
                Item::Kubernetes => self.connect_cluster().await,
                Item::Interface(name) => match self.datapath.known.get(&name).cloned() {
                    Some(link) => self.follow(&link),
                    None => self.published.retries.forget(&Item::Interface(name)),
                },
            }
        }
        if routing {
            self.set_uplink().await;
        }
    }
}
