//! The monitor's side of the datapath: what it is asked to report, and
//! the events it reported.

use hairpin_common::{Event, MonitorConfig};

use super::Harness;

impl Harness {
    /// Asks the datapath for the events `cfg` selects (all zero: none).
    pub fn listen(&mut self, cfg: MonitorConfig) {
        self.monitor.set(0, cfg, 0).expect("setting MONITOR");
    }

    /// The events reported since the last call, oldest first.
    pub fn events(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        while let Some(item) = self.events.next() {
            assert_eq!(item.len(), size_of::<Event>(), "an event's size");
            // SAFETY: the datapath writes whole `Event`s; read unaligned.
            out.push(unsafe { item.as_ptr().cast::<Event>().read_unaligned() });
        }
        out
    }
}
