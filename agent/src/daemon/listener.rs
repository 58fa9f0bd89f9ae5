//! The agent's listeners (`metrics.address`, the control socket), started
//! once each: one that cannot be bound (a port or a socket another process
//! holds) is a degraded item, retried, and the datapath serves meanwhile.

use tracing::{info, warn};

use super::{degraded::Item, Agent};
use crate::listener::{self, Listeners, Shared};

/// The items of the two listeners.
const METRICS: Item = Item::Listener("metrics.address");
const CONTROL: Item = Item::Listener("socket");

/// What is served so far.
#[derive(Default)]
pub struct Listening {
    thread: Option<Listeners>,
    metrics: bool,
    control: bool,
}

impl Agent {
    /// Binds what is not bound yet and hands it to the listener's thread.
    pub(super) fn set_listeners(&mut self) {
        if self.published.listening.thread.is_none() {
            let shared = Shared {
                pin_dir: self.settings.pin_dir.clone(),
                metrics: self.published.metrics.clone(),
                health: self.published.health.clone(),
                hub: self.published.monitor.clone(),
            };
            match Listeners::start(shared, self.sources.config.listener) {
                Ok(l) => self.published.listening.thread = Some(l),
                Err(e) => {
                    self.published.retries.failed(CONTROL, &e);
                    return;
                }
            }
        }
        let thread = self
            .published
            .listening
            .thread
            .as_ref()
            .expect("started above");
        if let Some(addr) = self
            .sources
            .config
            .metrics
            .filter(|_| !self.published.listening.metrics)
        {
            match listener::bind(addr).and_then(|b| thread.serve(b)) {
                Ok(()) => {
                    self.published.listening.metrics = true;
                    self.published.retries.served(&METRICS);
                    if addr.ip().is_loopback() {
                        info!(%addr, "serving metrics and health");
                    } else {
                        warn!(%addr, "serving metrics and health to other hosts (metrics.exposed)");
                    }
                }
                Err(e) => self.published.retries.failed(METRICS, &e),
            }
        }
        if !self.published.listening.control {
            let path = &self.settings.socket;
            match listener::bind_control(path).and_then(|b| thread.serve(b)) {
                Ok(()) => {
                    self.published.listening.control = true;
                    self.published.retries.served(&CONTROL);
                    info!(socket = %path.display(), "serving the control socket");
                }
                Err(e) => self.published.retries.failed(CONTROL, &e),
            }
        }
    }
}
