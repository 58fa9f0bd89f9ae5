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
        if self.listening.thread.is_none() {
            let shared = Shared {
                pin_dir: self.settings.pin_dir.clone(),
                metrics: self.metrics.clone(),
                health: self.health.clone(),
                hub: self.monitor.clone(),
            };
            match Listeners::start(shared, self.config.listener) {
                Ok(l) => self.listening.thread = Some(l),
                Err(e) => {
                    self.retries.failed(CONTROL, &e);
                    return;
                }
            }
        }
        let thread = self.listening.thread.as_ref().expect("started above");
        if let Some(addr) = self.config.metrics.filter(|_| !self.listening.metrics) {
            match listener::bind(addr).and_then(|b| thread.serve(b)) {
                Ok(()) => {
                    self.listening.metrics = true;
                    self.retries.served(&METRICS);
                    if addr.ip().is_loopback() {
                        info!(%addr, "serving metrics and health");
                    } else {
                        warn!(%addr, "serving metrics and health to other hosts (metrics.exposed)");
                    }
                }
                Err(e) => self.retries.failed(METRICS, &e),
            }
        }
        if !self.listening.control {
            let path = &self.settings.socket;
            match listener::bind_control(path).and_then(|b| thread.serve(b)) {
                Ok(()) => {
                    self.listening.control = true;
                    self.retries.served(&CONTROL);
                    info!(socket = %path.display(), "serving the control socket");
                }
                Err(e) => self.retries.failed(CONTROL, &e),
            }
        }
    }
}
