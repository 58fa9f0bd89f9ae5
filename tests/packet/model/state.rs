//! The model's state: the tables, the flows opened so far and the counters
//! moved; and where a translated packet goes.

use std::collections::HashMap;

use super::{
    expected::{Counters, Verdict},
    tables::{owns, Dir, Entry, Hook, Origin, Tables, Tuple},
};

pub struct Model {
    pub tables: Tables,
    pub(super) ct: HashMap<Tuple, Entry>,
    pub counters: Counters,
}

impl Model {
    pub fn new(tables: Tables) -> Self {
        Self {
            tables,
            ct: HashMap::new(),
            counters: Counters::default(),
        }
    }

    /// The conntrack keys the model holds.
    pub fn keys(&self) -> Vec<Tuple> {
        self.ct.keys().copied().collect()
    }

    /// Forgets every flow (the counters stay).
    pub fn clear_flows(&mut self) {
        self.ct.clear();
    }

    /// Whether a packet of `e` translated at `hook` can be sent where it
    /// must go: a host's reply leaving a pod is handed to the uplink, which
    /// must be known.
    pub(super) fn can_deliver(&mut self, hook: Hook, e: &Entry) -> bool {
        let to_uplink =
            hook == Hook::PodIngress && e.dir == Dir::Reverse && e.origin == Origin::Host;
        if to_uplink && self.tables.uplink.is_none() {
            self.counters.redirect_failed += 1;
            return false;
        }
        true
    }

    /// The verdict of a translated packet, and its Ethernet header.
    pub(super) fn deliver(&self, hook: Hook, e: &Entry, out: &mut [u8]) -> (Verdict, bool) {
        match hook {
            Hook::PodIngress if e.origin == Origin::Loop => {
                // Back to the pod it came from: the MACs swap.
                let (dst, src) = (out[..6].to_vec(), out[6..12].to_vec());
                out[..6].copy_from_slice(&src);
                out[6..12].copy_from_slice(&dst);
                (Verdict::Redirect, true)
            }
            Hook::PodIngress if e.dir == Dir::Reverse => {
                // To the uplink's ingress, addressed to the node.
                let (_, mac) = self.tables.uplink.expect("checked by can_deliver");
                out[..6].copy_from_slice(&mac);
                (Verdict::Redirect, true)
            }
            // Re-routed by the namespace's routes: MACs and verdict vary.
            Hook::UplinkEgress => (Verdict::Any, false),
            _ => (Verdict::Pass, true),
        }
    }

    /// The flow entry an ICMP or ICMPv6 error quoting `quoted` belongs to,
    /// if it is translated at `hook`. The error travels the other way than
    /// the packet it quotes: it belongs where a packet of the reversed tuple
    /// would be translated.
    pub(super) fn error_entry(&mut self, hook: Hook, quoted: &Tuple) -> Option<Entry> {
        let entry = *self.ct.get(&quoted.reversed())?;
        if !owns(hook, entry.dir, entry.origin) || !self.can_deliver(hook, &entry) {
            return None;
        }
        Some(entry)
    }
}
