//! Frontends by name: resolutions run as tasks beside the loop (a slow or
//! absent DNS server never stalls it), their outcomes come back on a
//! channel, and a change of addresses is applied as a diff.

use std::{path::PathBuf, time::Instant};

use anyhow::{Context as _, Result};
use hickory_resolver::{
    config::LookupIpStrategy, name_server::TokioConnectionProvider, TokioResolver,
};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tracing::{info, warn};

use super::{apply::Cause, degraded::Item, Agent};
use crate::{listener::metrics::NameLabel, sources::dns::Outcome};

pub type Resolved = (String, Outcome);

pub struct Resolving {
    tx: UnboundedSender<Resolved>,
    /// The resolver, and the file it was configured from.
    resolver: Option<(PathBuf, TokioResolver)>,
}

impl Resolving {
    pub fn new() -> (Self, UnboundedReceiver<Resolved>) {
        let (tx, rx) = unbounded_channel();
        (Self { tx, resolver: None }, rx)
    }

    /// The resolver for `resolv_conf`, made anew when the file changes.
    fn resolver(&mut self, resolv_conf: &PathBuf) -> Result<TokioResolver> {
        if let Some((path, r)) = &self.resolver {
            if path == resolv_conf {
                return Ok(r.clone());
            }
        }
        let text = std::fs::read(resolv_conf)
            .with_context(|| format!("reading {}", resolv_conf.display()))?;
        let (config, mut opts) = hickory_resolver::system_conf::parse_resolv_conf(text)
            .with_context(|| format!("parsing {}", resolv_conf.display()))?;
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        // The TTL decides when to ask again; a cache would only repeat it.
        opts.cache_size = 0;
        let r = TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
            .with_options(opts)
            .build();
        self.resolver = Some((resolv_conf.clone(), r.clone()));
        Ok(r)
    }
}

async fn lookup(resolver: TokioResolver, host: &str) -> Outcome {
    // Absolute: the resolver's search domains do not apply to a frontend.
    match resolver.lookup_ip(format!("{host}.")).await {
        Ok(found) => Outcome::Addrs(
            found.iter().collect(),
            found
                .valid_until()
                .saturating_duration_since(Instant::now()),
        ),
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

impl Agent {
    /// Starts the resolutions that are due.
    pub(super) fn resolve_due(&mut self) {
        let now = Instant::now();
        for host in self.sources.names.due(now) {
            self.sources.names.started(&host, now);
            let tx = self.sources.resolving.tx.clone();
            match self
                .sources
                .resolving
                .resolver(&self.sources.config.dns.resolv_conf)
            {
                Ok(r) => {
                    tokio::spawn(async move {
                        let outcome = lookup(r, &host).await;
                        // Ignored error: the agent is stopping.
                        let _ = tx.send((host, outcome));
                    });
                }
                Err(e) => {
                    let _ = tx.send((host, Outcome::Failed(format!("{e:#}"))));
                }
            }
        }
    }

    pub(super) async fn name_resolved(&mut self, (host, outcome): Resolved) {
        let result = match &outcome {
            Outcome::Addrs(..) => "ok",
            Outcome::Failed(_) => "failed",
        };
        self.published
            .metrics
            .resolutions
            .get_or_create(&NameLabel {
                name: host.clone(),
                result,
            })
            .inc();
        if let Outcome::Failed(why) = &outcome {
            warn!(name = %host, "resolving: {why}; keeping the last known addresses");
        }
        let changed = self.sources.names.resolved(&host, outcome, Instant::now());
        // Shown before the maps change, so that no listing has an address
        // without its name.
        self.published
            .health
            .set_name_views(self.sources.names.views());
        if changed {
            info!(name = %host, "addresses changed");
            self.apply_desired(Cause::Name).await;
        } else {
            self.report_names();
        }
    }

    /// The addresses an earlier agent installed for the file's names, found
    /// in the pinned maps: a frontend at the name's port and protocol, with
    /// the name's backends, and not one the file writes as an address.
    pub(super) fn adopt_names(&mut self) {
        let Ok(pinned) = crate::datapath::pinned::Pinned::open(&self.settings.pin_dir) else {
            return;
        };
        let Ok(installed) = crate::datapath::pinned::frontends(&pinned) else {
            return;
        };
        let label = crate::datapath::pinned::frontend_label;
        let written: Vec<String> = self.sources.config.frontends.iter().map(label).collect();
        for nf in &self.sources.config.named {
            let mut backends: Vec<(String, u32)> = nf
                .frontend
                .backends
                .iter()
                .map(|b| {
                    (
                        std::net::SocketAddr::new(b.addr, b.port).to_string(),
                        b.weight,
                    )
                })
                .collect();
            backends.sort();
            for f in &installed {
                let mut have = f.backends.clone();
                have.sort();
                let at = nf.at(f.addr);
                if f.addr.is_ipv4() == nf.is_ipv4()
                    && f.frontend == label(&at)
                    && !written.contains(&f.frontend)
                    && have == backends
                {
                    info!(name = %nf.host, addr = %f.addr, "kept from the earlier agent until the name resolves");
                    self.sources.names.adopt(&nf.host, f.addr);
                }
            }
        }
    }

    /// Lets go of addresses past their grace period with no flow left.
    pub(super) async fn expire_names(&mut self) {
        let maps = &self.datapath.maps;
        let expired = self.sources.names.expire(Instant::now(), |addr| {
            // On a read error, keep the address: a flow may live.
            crate::conntrack::flows::has_flows_to(maps, addr).unwrap_or(true)
        });
        if expired {
            self.apply_desired(Cause::Name).await;
        }
    }

    /// Says which names cannot be served (never resolved, or resolved to
    /// an address that cannot be a frontend), and shows every name.
    pub(super) fn report_names(&mut self) {
        let (_, refused) = crate::desired::named(&self.inputs(&self.sources.config, None));
        let unresolved = self.sources.names.unresolved();
        let mut hosts: Vec<String> = self
            .sources
            .config
            .named
            .iter()
            .map(|n| n.host.clone())
            .collect();
        hosts.dedup();
        for host in hosts {
            let why = unresolved
                .iter()
                .chain(&refused)
                .filter(|(h, _)| *h == host)
                .map(|(_, w)| w.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            let item = Item::Name(host);
            if why.is_empty() {
                self.published.retries.served(&item);
            } else {
                self.published.retries.failed(item, &anyhow::anyhow!(why));
            }
        }
        self.published
            .health
            .set_name_views(self.sources.names.views());
    }
}
