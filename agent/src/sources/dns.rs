//! Frontends written as names: the addresses each name resolved to, followed
//! as they change. An address a name no longer has keeps taking new flows
//! for a grace period; a name that fails to resolve keeps its last known
//! addresses. Pure state: the daemon resolves and reports the outcomes.

use std::{
    collections::BTreeMap,
    net::IpAddr,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};

use super::room::Room;
use crate::config::{unservable, Config, DnsSettings, Frontend, Kubernetes, NamedFrontend};

/// The first retry of a name that failed; each failure doubles the wait,
/// up to the settings' `max_ttl`.
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// What one resolution of a name gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Its addresses (both families), valid for the TTL.
    Addrs(Vec<IpAddr>, Duration),
    /// NXDOMAIN, SERVFAIL, a timeout: the reason.
    Failed(String),
}

#[derive(Debug)]
struct Host {
    /// Each address: `None` while the name has it, else until when it is
    /// kept (the grace period).
    addrs: BTreeMap<IpAddr, Option<Instant>>,
    resolved: Option<SystemTime>,
    next: Instant,
    next_wall: SystemTime,
    retry: Duration,
    error: Option<String>,
    /// What the last answer had beyond `max_addresses`, per family.
    capped: Vec<String>,
}

impl Host {
    fn new(now: Instant) -> Self {
        Self {
            addrs: BTreeMap::new(),
            resolved: None,
            next: now,
            next_wall: SystemTime::now(),
            retry: FIRST_RETRY,
            error: None,
            capped: Vec::new(),
        }
    }
}

/// A name as `hairpin list` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameView {
    pub host: String,
    pub addrs: Vec<IpAddr>,
    /// Addresses the name no longer has, still taking new flows.
    pub lingering: Vec<IpAddr>,
    /// Seconds since the epoch of the last success, if any.
    pub resolved: Option<u64>,
    /// Seconds since the epoch of the next resolution.
    pub next: u64,
    pub error: Option<String>,
}

/// What the names' frontends must leave alone.
pub struct Bounds<'a> {
    /// The file's frontends, written as addresses.
    pub written: &'a [Frontend],
    /// The node's own addresses.
    pub node: &'a [IpAddr],
    /// The room the tables have once the file's frontends are in.
    pub room: Room,
    /// What the maps hold: their addresses keep their room first.
    pub applied: &'a [Frontend],
}

#[derive(Debug)]
pub struct Names {
    settings: DnsSettings,
    /// The cluster's ranges are never frontends, whoever's name resolves
    /// there.
    kubernetes: Option<Kubernetes>,
    /// The file's `allowReserved`.
    allow_reserved: Vec<ipnet::IpNet>,
    hosts: BTreeMap<String, Host>,
}

fn epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Names {
    pub fn new(settings: DnsSettings) -> Self {
        Self {
            settings,
            kubernetes: None,
            allow_reserved: Vec::new(),
            hosts: BTreeMap::new(),
        }
    }

    /// Follows the names of `config` (applied): new ones are due at once,
    /// those no longer there are forgotten, and their frontends with them.
    pub fn track(&mut self, config: &Config, now: Instant) {
        let named = &config.named;
        self.settings = config.dns.clone();
        self.kubernetes = config.kubernetes.clone();
        self.allow_reserved = config.allow_reserved.clone();
        self.hosts.retain(|h, _| named.iter().any(|n| &n.host == h));
        for n in named {
            self.hosts
                .entry(n.host.clone())
                .or_insert_with(|| Host::new(now));
        }
    }

    /// Takes `addr` as one of `host`'s addresses until the name resolves:
    /// what an earlier agent had installed for it, so that a restart ends
    /// none of its flows, even while DNS is away.
    pub fn adopt(&mut self, host: &str, addr: IpAddr) {
        if let Some(h) = self.hosts.get_mut(host) {
            h.addrs.entry(addr).or_insert(None);
        }
    }

    /// The names whose resolution is due.
    pub fn due(&self, now: Instant) -> Vec<String> {
        self.hosts
            .iter()
            .filter(|(_, h)| h.next <= now)
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Holds off `host`'s next resolution while one is under way.
    pub fn started(&mut self, host: &str, now: Instant) {
        if let Some(h) = self.hosts.get_mut(host) {
            h.next = now + self.settings.max_ttl;
        }
    }

    /// Records an outcome; says whether the addresses changed.
    pub fn resolved(&mut self, host: &str, outcome: Outcome, now: Instant) -> bool {
        let s = &self.settings;
        let Some(h) = self.hosts.get_mut(host) else {
            return false;
        };
        let (wait, changed) = match outcome {
            // The last known addresses stay: they are likely still right,
            // and their backends are the same.
            Outcome::Failed(why) => {
                h.error = Some(why);
                let wait = h.retry.min(s.max_ttl);
                h.retry = (h.retry * 2).min(s.max_ttl);
                (wait, false)
            }
            Outcome::Addrs(addrs, ttl) => {
                let addrs = capped(addrs, s.max_addresses, &mut h.capped);
                h.error = None;
                h.retry = FIRST_RETRY;
                h.resolved = Some(SystemTime::now());
                let before = current(h);
                for (addr, until) in h.addrs.iter_mut() {
                    if !addrs.contains(addr) && until.is_none() {
                        *until = Some(now + s.grace);
                    }
                }
                for a in &addrs {
                    h.addrs.insert(*a, None);
                }
                (ttl.clamp(s.min_ttl, s.max_ttl), before != current(h))
            }
        };
        h.next = now + wait;
        h.next_wall = SystemTime::now() + wait;
        changed
    }

    /// Lets go of addresses whose grace period is over and through which
    /// no flow lives (`has_flows`): a frontend removed from the maps would
    /// strand its flows, which reach the same backends. Says whether any.
    pub fn expire(&mut self, now: Instant, mut has_flows: impl FnMut(IpAddr) -> bool) -> bool {
        let mut any = false;
        for h in self.hosts.values_mut() {
            h.addrs.retain(|addr, until| {
                let keep = until.is_none_or(|t| t > now) || has_flows(*addr);
                any |= !keep;
                keep
            });
        }
        any
    }

    /// The frontends of `named` at every address their name has (or has
    /// had, within the grace period), in the family of their backends, and
    /// the addresses refused, with why: a node's own address, one in the
    /// cluster's pod or service ranges, one that the file already has for
    /// the same port, one beyond the cap, or one the tables have no room
    /// for. Room is taken an address at a time (with all its ports), names
    /// in the file's order, the addresses the maps hold first: a new
    /// address never pushes out one that serves flows.
    pub fn frontends(
        &self,
        named: &[NamedFrontend],
        bounds: &Bounds<'_>,
    ) -> (Vec<Frontend>, Vec<(String, String)>) {
        let mut out: Vec<Frontend> = Vec::new();
        let mut refused = Vec::new();
        let mut room = bounds.room;
        let mut hosts: Vec<&str> = named.iter().map(|n| n.host.as_str()).collect();
        hosts.dedup();
        for host in hosts {
            let Some(h) = self.hosts.get(host) else {
                continue;
            };
            refused.extend(h.capped.iter().map(|c| (host.to_owned(), c.clone())));
            let mut addrs: Vec<IpAddr> = h.addrs.keys().copied().collect();
            addrs.sort_by_key(|a| !bounds.applied.iter().any(|f| f.addr == *a));
            for addr in addrs {
                let mut unit = Vec::new();
                for n in named
                    .iter()
                    .filter(|n| n.host == host && n.is_ipv4() == addr.is_ipv4())
                {
                    let fe = n.at(addr);
                    match self.refusal(&fe, bounds, out.iter().chain(&unit)) {
                        Some(why) => refused.push((host.to_owned(), why)),
                        None => unit.push(fe),
                    }
                }
                match room.take(&unit) {
                    Ok(()) => out.extend(unit),
                    Err(why) => {
                        refused.push((host.to_owned(), format!("{addr} not served: {why}")))
                    }
                }
            }
        }
        refused.sort();
        refused.dedup();
        (out, refused)
    }

    /// Why `fe`, at one of a name's addresses, cannot be served, if it
    /// cannot; `others` are the names' frontends so far.
    fn refusal<'a>(
        &self,
        fe: &Frontend,
        bounds: &Bounds<'_>,
        mut others: impl Iterator<Item = &'a Frontend>,
    ) -> Option<String> {
        let addr = fe.addr;
        let same = |w: &Frontend| w.addr == fe.addr && w.port == fe.port && w.proto == fe.proto;
        let taken = bounds.written.iter().any(same) || others.any(same);
        unservable(addr, bounds.node, &self.allow_reserved)
            .or_else(|| self.kubernetes.as_ref()?.own_range(addr))
            .or_else(|| {
                fe.backends
                    .iter()
                    .any(|b| b.addr == addr)
                    .then(|| format!("{addr} is a backend's own address: a loop"))
            })
            .or_else(|| taken.then(|| format!("{addr}:{} is another frontend's", fe.port)))
    }

    pub fn views(&self) -> Vec<NameView> {
        self.hosts
            .iter()
            .map(|(host, h)| NameView {
                host: host.clone(),
                addrs: current(h),
                lingering: h
                    .addrs
                    .iter()
                    .filter(|(_, u)| u.is_some())
                    .map(|(a, _)| *a)
                    .collect(),
                resolved: h.resolved.map(epoch),
                next: epoch(h.next_wall),
                error: h.error.clone(),
            })
            .collect()
    }

    /// Names without an address to serve, never resolved, with why. A
    /// name served from the addresses an earlier agent had is not one: it
    /// is as served as a name whose server went away after it resolved.
    pub fn unresolved(&self) -> Vec<(String, String)> {
        self.hosts
            .iter()
            .filter(|(_, h)| h.resolved.is_none() && h.addrs.is_empty())
            .filter_map(|(n, h)| h.error.clone().map(|e| (n.clone(), e)))
            .collect()
    }
}

/// At most `max` addresses of each family of an answer: the lowest, so that
/// a server that rotates a longer list still gives the same ones. What is
/// left out is said in `notes`.
fn capped(mut addrs: Vec<IpAddr>, max: usize, notes: &mut Vec<String>) -> Vec<IpAddr> {
    addrs.sort();
    addrs.dedup();
    notes.clear();
    let mut out = Vec::new();
    for (v4, family) in [(true, "IPv4"), (false, "IPv6")] {
        let of: Vec<IpAddr> = addrs
            .iter()
            .copied()
            .filter(|a| a.is_ipv4() == v4)
            .collect();
        if of.len() > max {
            notes.push(format!(
                "it has {} {family} addresses: served at the lowest {max} (dns.maxAddresses)",
                of.len()
            ));
        }
        out.extend(of.into_iter().take(max));
    }
    out
}

fn current(h: &Host) -> Vec<IpAddr> {
    h.addrs
        .iter()
        .filter(|(_, u)| u.is_none())
        .map(|(a, _)| *a)
        .collect()
}

#[cfg(test)]
#[path = "dns_tests.rs"]
mod tests;
