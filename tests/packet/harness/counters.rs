//! The datapath's counters, read and held against the model's.

use hairpin_common::{Counter, FrontendStats};

use super::Harness;

impl Harness {
    pub fn frontend_stats(&self, id: u32) -> FrontendStats {
        let per_cpu = self
            .maps
            .frontend_stats
            .get(&id, 0)
            .expect("reading FRONTEND_STATS");
        per_cpu
            .iter()
            .fold(FrontendStats::default(), |a, s| FrontendStats {
                packets: a.packets + s.packets,
                bytes: a.bytes + s.bytes,
                flows: a.flows + s.flows,
                sock_connects: a.sock_connects + s.sock_connects,
                sock_datagrams: a.sock_datagrams + s.sock_datagrams,
            })
    }

    pub fn counter(&self, c: Counter) -> u64 {
        let per_cpu = self
            .maps
            .global_stats
            .get(&(c as u32), 0)
            .expect("reading GLOBAL_STATS");
        per_cpu.iter().sum()
    }

    /// Checks the datapath's counters against the model's.
    pub fn check_counters(&self) -> Result<(), String> {
        for fe in &self.model.tables.frontends {
            let [packets, bytes, flows] = self
                .model
                .counters
                .frontends
                .get(&fe.id)
                .copied()
                .unwrap_or_default();
            // Frames through TC never count on the socket path.
            let want = FrontendStats {
                packets,
                bytes,
                flows,
                ..FrontendStats::default()
            };
            let got = self.frontend_stats(fe.id);
            if got != want {
                return Err(format!(
                    "FRONTEND_STATS[{}] is {got:?}, expected {want:?}",
                    fe.id
                ));
            }
        }
        for (c, want) in [
            (Counter::Unparsable, self.model.counters.unparsable),
            (Counter::IcmpTranslated, self.model.counters.icmp_translated),
            // The model knows no failing helper: a frame it translates must
            // leave translated.
            (Counter::RewriteFailed, 0),
            (Counter::ResetFailed, 0),
        ] {
            let got = self.counter(c);
            if got != want {
                return Err(format!("counter {} is {got}, expected {want}", c.name()));
            }
        }
        Ok(())
    }
}
