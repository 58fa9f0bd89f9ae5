//! Monitors: the agent reads the datapath's events and hands each to the
//! monitors that want it (`hairpin monitor`, through the listener's
//! `/events`), with the ends of flows that the agent itself makes. The
//! datapath reports only what some monitor wants (`filter::kernel`).

pub mod event;
pub mod filter;
pub mod stream;

use std::sync::{Arc, Mutex};

use aya::maps::{Array, MapData};
use hairpin_common::{Event, MonitorConfig};
use tokio::sync::mpsc::{self, error::TrySendError, Receiver, Sender};
use tracing::warn;

use self::{
    event::Shown,
    filter::{Filter, FrontendMatch},
};

/// Events a monitor may be behind by before it loses some. Its queue
/// grows as events come, in small blocks, up to this.
const BACKLOG: usize = 4096;

/// Resolves a frontend as a monitor names it to the datapath's ids.
pub type Resolve = Box<dyn Fn(&FrontendMatch) -> Vec<u32> + Send>;

struct Monitor {
    id: u64,
    filter: Filter,
    tx: Sender<Shown>,
    /// Events dropped since the last one it got.
    lost: u64,
}

struct State {
    monitors: Vec<Monitor>,
    next_id: u64,
    /// The datapath's `MONITOR`; `None` where there is no datapath (tests).
    config: Option<Array<MapData, MonitorConfig>>,
    resolve: Resolve,
    /// Events monitors missed, since the agent started.
    lost: u64,
}

/// The monitors, shared by the listener (which adds them), the event
/// reader and the agent's loop (which publish). Cheap to clone.
#[derive(Clone)]
pub struct Hub(Arc<Mutex<State>>);

/// A monitor's end: events arrive on `rx`; dropping it leaves.
pub struct Subscription {
    pub rx: Receiver<Shown>,
    id: u64,
    hub: Hub,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut s = self.hub.lock();
        s.monitors.retain(|m| m.id != self.id);
        s.write_config();
    }
}

impl State {
    /// Tells the datapath what the monitors want now.
    fn write_config(&mut self) {
        let filters: Vec<&Filter> = self.monitors.iter().map(|m| &m.filter).collect();
        let wanted = filter::kernel(&filters, &self.resolve);
        if let Some(map) = &mut self.config {
            if let Err(e) = map.set(0, wanted, 0) {
                warn!("monitor filter: {e}");
            }
        }
    }
}

impl Hub {
    pub fn new(config: Option<Array<MapData, MonitorConfig>>, resolve: Resolve) -> Self {
        let mut state = State {
            monitors: Vec::new(),
            next_id: 0,
            config,
            resolve,
            lost: 0,
        };
        // An agent starts with no monitor, whatever an earlier one left.
        state.write_config();
        Self(Arc::new(Mutex::new(state)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn subscribe(&self, filter: Filter) -> Subscription {
        let (tx, rx) = mpsc::channel(BACKLOG);
        let mut s = self.lock();
        let id = s.next_id;
        s.next_id += 1;
        s.monitors.push(Monitor {
            id,
            filter,
            tx,
            lost: 0,
        });
        s.write_config();
        Subscription {
            rx,
            id,
            hub: self.clone(),
        }
    }

    /// Whether anyone listens.
    pub fn listening(&self) -> bool {
        !self.lock().monitors.is_empty()
    }

    /// The monitors listening, and the events they missed since start.
    pub fn stats(&self) -> (usize, u64) {
        let s = self.lock();
        (s.monitors.len(), s.lost)
    }

    /// Hands `events` to every monitor that wants them. A monitor that is
    /// behind loses them, counted, and hears how many with its next one.
    pub fn publish(&self, events: &[Event]) {
        let mut s = self.lock();
        if s.monitors.is_empty() {
            return;
        }
        let mut lost = 0;
        for shown in events.iter().filter_map(Shown::decode) {
            for m in &mut s.monitors {
                if !m.filter.matches(&shown) {
                    continue;
                }
                if m.lost > 0 && m.tx.try_send(Shown::lost(m.lost)).is_ok() {
                    m.lost = 0;
                }
                match m.tx.try_send(shown.clone()) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        m.lost += 1;
                        lost += 1;
                    }
                    // Gone: its subscription's drop removes it.
                    Err(TrySendError::Closed(_)) => {}
                }
            }
        }
        s.lost += lost;
    }
}

#[cfg(test)]
mod tests {
    use hairpin_common::{EventKind, WireAddr as _};

    use super::*;

    fn drain(sub: &mut Subscription) -> Vec<Shown> {
        std::iter::from_fn(|| sub.rx.try_recv().ok()).collect()
    }

    fn opened(client: [u8; 4]) -> Event {
        Event {
            kind: EventKind::Opened as u8,
            family: 4,
            client: u32::from_octets(client).wide(),
            ..Event::default()
        }
    }

    #[test]
    fn each_monitor_gets_what_its_filter_selects() {
        let hub = Hub::new(None, Box::new(|_| Vec::new()));
        assert!(!hub.listening());
        let mut all = hub.subscribe(Filter::default());
        let mut one = hub.subscribe(Filter {
            client: Some("192.0.2.5".parse().unwrap()),
            ..Filter::default()
        });
        hub.publish(&[opened([192, 0, 2, 5]), opened([192, 0, 2, 6])]);
        assert_eq!(drain(&mut all).len(), 2);
        let got = drain(&mut one);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].client.unwrap().ip().to_string(), "192.0.2.5");
        drop(all);
        drop(one);
        assert!(!hub.listening(), "a monitor that leaves is forgotten");
    }

    #[test]
    fn a_monitor_behind_loses_events_and_hears_how_many() {
        let hub = Hub::new(None, Box::new(|_| Vec::new()));
        let mut sub = hub.subscribe(Filter::default());
        let burst = vec![opened([192, 0, 2, 5]); BACKLOG + 10];
        hub.publish(&burst);
        assert_eq!(drain(&mut sub).len(), BACKLOG);
        hub.publish(&[opened([192, 0, 2, 5])]);
        let next = drain(&mut sub);
        assert_eq!(next[0].count, Some(10), "{next:?}");
        assert_eq!(hub.stats(), (1, 10));
        assert_eq!(next.len(), 2, "then the event itself");
    }
}
