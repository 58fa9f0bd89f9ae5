//! The agent's listener, started once: a port it cannot bind (another
//! process holds it) is a degraded item, retried, and the datapath serves.

use tracing::info;

use super::{degraded::Item, Agent};
use crate::listener::{self, Shared};

impl Agent {
    pub(super) fn set_listener(&mut self) {
        let Some(addr) = self.config.metrics else {
            return;
        };
        let shared = Shared {
            pin_dir: self.settings.pin_dir.clone(),
            metrics: self.metrics.clone(),
            health: self.health.clone(),
            hub: self.monitor.clone(),
        };
        match listener::bind(addr).and_then(|l| listener::spawn(l, shared)) {
            Ok(()) => {
                self.retries.served(&Item::Listener);
                info!(%addr, "serving metrics, health and monitors");
            }
            Err(e) => self.retries.failed(Item::Listener, &e),
        }
    }
}
