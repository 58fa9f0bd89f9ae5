//! Read-only views of the pinned maps, for `list`, `ct list` and metrics:
//! they work while the agent runs, without talking to it.

use std::path::Path;

use anyhow::{Context as _, Result};
use aya::maps::{HashMap, Map, MapData, PerCpuArray};
use hairpin_common::{
    Backend, BackendKey, Counter, CtDir, CtOrigin, Frontend, FrontendKey, FrontendStats,
    FRONTEND_REFUSE, FRONTEND_SKIP_BACKENDS, FRONTEND_STATS, GLOBAL_STATS, IPPROTO_TCP,
    IPPROTO_UDP, SEEN_ACK, SEEN_ENDED, SEEN_FIN, SEEN_REPLY, SEEN_RST,
};
use serde::Serialize;

use super::{
    addr::{endpoint, Addr},
    loader::Conntrack,
    pins,
};

/// The pinned maps of one family.
pub struct PinnedFamily<A: Addr> {
    pub frontends: HashMap<MapData, FrontendKey<A>, Frontend>,
    pub backends: HashMap<MapData, BackendKey, Backend<A>>,
    pub conntrack: Conntrack<A>,
}

impl<A: Addr> PinnedFamily<A> {
    fn open(dir: &Path) -> Result<Self> {
        let [frontends, _, backends, _, _, conntrack] = A::MAPS;
        Ok(Self {
            frontends: open(dir, frontends)?,
            backends: open(dir, backends)?,
            conntrack: open(dir, conntrack)?,
        })
    }
}

/// The pinned maps of one node's datapath.
pub struct Pinned {
    /// Whether the socket-level path is attached on this node.
    pub sockets: bool,
    pub v4: PinnedFamily<u32>,
    pub v6: PinnedFamily<[u32; 4]>,
    pub frontend_stats: PerCpuArray<MapData, FrontendStats>,
    pub global_stats: PerCpuArray<MapData, u64>,
}

fn open<T: TryFrom<Map, Error = aya::maps::MapError>>(dir: &Path, name: &str) -> Result<T> {
    let path = pins::map_pin(dir, name);
    let data = MapData::from_pin(&path).with_context(|| {
        format!(
            "opening {} (is hairpin running, with this --pin-dir?)",
            path.display()
        )
    })?;
    Ok(T::try_from(Map::from_map_data(data)?)?)
}

impl Pinned {
    pub fn open(dir: &Path) -> Result<Self> {
        Ok(Self {
            sockets: pins::cgroup_link_pin(dir, hairpin_common::PROG_SOCK_CONNECT4).exists(),
            v4: PinnedFamily::open(dir)?,
            v6: PinnedFamily::open(dir)?,
            frontend_stats: open(dir, FRONTEND_STATS)?,
            global_stats: open(dir, GLOBAL_STATS)?,
        })
    }
}

pub fn proto_name(p: u8) -> &'static str {
    match p {
        IPPROTO_TCP => "TCP",
        IPPROTO_UDP => "UDP",
        _ => "?",
    }
}

/// `203.0.113.10:8080/TCP` (`[2001:db8::10]:8080/TCP`), the way frontends
/// are written everywhere.
pub fn frontend_name<A: Addr>(k: &FrontendKey<A>) -> String {
    format!("{}/{}", endpoint(k.addr, k.port), proto_name(k.proto))
}

/// The same for a configured frontend.
pub fn frontend_label(f: &crate::config::Frontend) -> String {
    let at = std::net::SocketAddr::new(f.addr, f.port);
    format!("{at}/{}", proto_name(f.proto))
}

#[derive(Debug, Serialize)]
pub struct FrontendView {
    pub id: u32,
    pub frontend: String,
    pub addr: std::net::IpAddr,
    pub port: u16,
    /// Backends with their slot counts (weights).
    pub backends: Vec<(String, u32)>,
    /// The paths that serve it on this node: `tc`, and `socket` when the
    /// socket-level path is attached.
    pub paths: Vec<&'static str>,
    /// What it does beyond translating: `refuses-without-backends`,
    /// `skips-backends`.
    pub policy: Vec<&'static str>,
    pub stats: Stats,
    /// Why the agent reports it not served on this node, if it does.
    pub not_served: Option<String>,
    /// The name it is the address of, when it came from one, with when it
    /// was resolved and will be again.
    pub name: Option<String>,
    /// Where it comes from, as the agent says: the file and its line, or
    /// the cluster's object.
    pub source: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct Stats {
    /// The TC path: packets and bytes both ways, flows opened.
    pub packets: u64,
    pub bytes: u64,
    pub flows: u64,
    /// The socket path: connects and datagrams translated.
    pub sock_connects: u64,
    pub sock_datagrams: u64,
}

pub fn frontends(p: &Pinned) -> Result<Vec<FrontendView>> {
    let mut out = Vec::new();
    family_frontends(p, &p.v4, &mut out)?;
    family_frontends(p, &p.v6, &mut out)?;
    out.sort_by(|a, b| a.frontend.cmp(&b.frontend));
    Ok(out)
}

fn family_frontends<A: Addr>(
    p: &Pinned,
    fam: &PinnedFamily<A>,
    out: &mut Vec<FrontendView>,
) -> Result<()> {
    for r in fam.frontends.iter() {
        let (k, f) = r.context("reading frontends")?;
        let mut backends: Vec<(String, u32)> = Vec::new();
        for slot in 0..u32::from(f.slots) {
            let Ok(b) = fam.backends.get(
                &BackendKey {
                    frontend_id: f.id,
                    slot,
                },
                0,
            ) else {
                continue;
            };
            let name = endpoint(b.addr, b.port);
            match backends.iter_mut().find(|(n, _)| *n == name) {
                Some((_, w)) => *w += 1,
                None => backends.push((name, 1)),
            }
        }
        let mut stats = Stats::default();
        if let Ok(per_cpu) = p.frontend_stats.get(&f.id, 0) {
            for s in per_cpu.iter() {
                stats.packets += s.packets;
                stats.bytes += s.bytes;
                stats.flows += s.flows;
                stats.sock_connects += s.sock_connects;
                stats.sock_datagrams += s.sock_datagrams;
            }
        }
        let paths = if p.sockets {
            vec!["tc", "socket"]
        } else {
            vec!["tc"]
        };
        let policy = [
            (FRONTEND_REFUSE, "refuses-without-backends"),
            (FRONTEND_SKIP_BACKENDS, "skips-backends"),
        ]
        .into_iter()
        .filter(|(bit, _)| f.flags & bit != 0)
        .map(|(_, name)| name)
        .collect();
        out.push(FrontendView {
            id: f.id,
            frontend: frontend_name(&k),
            addr: k.addr.ip(),
            port: u16::from_be(k.port),
            backends,
            paths,
            policy,
            stats,
            not_served: None,
            name: None,
            source: None,
        });
    }
    Ok(())
}

pub fn global_counters(p: &Pinned) -> Result<Vec<(Counter, u64)>> {
    Counter::ALL
        .iter()
        .map(|&c| {
            let v = p
                .global_stats
                .get(&(c as u32), 0)
                .context("reading counters")?;
            Ok((c, v.iter().sum()))
        })
        .collect()
}

pub fn conntrack_len(p: &Pinned) -> Result<usize> {
    let n4 = p.v4.conntrack.keys().filter(Result::is_ok).count();
    let n6 = p.v6.conntrack.keys().filter(Result::is_ok).count();
    Ok(n4 + n6)
}

/// One flow: its forward entry, joined with its reverse one.
#[derive(Debug, Serialize)]
pub struct FlowView {
    pub proto: &'static str,
    /// The client as it sent: `addr:port`.
    pub client: String,
    pub frontend: String,
    pub backend: String,
    /// The client as the backend sees it (differs for a pod reaching itself).
    pub client_at_backend: String,
    pub origin: &'static str,
    pub state: &'static str,
    pub age_s: u64,
    pub idle_s: u64,
    pub frontend_id: u32,
    /// Whether a reply was translated (the state tells it for the user).
    #[serde(skip)]
    pub replied: bool,
}

fn state(proto: u8, seen: u8, has_reply: bool) -> &'static str {
    if seen & SEEN_ENDED != 0 {
        return "ENDED";
    }
    if proto != IPPROTO_TCP {
        return if has_reply { "REPLIED" } else { "UNREPLIED" };
    }
    if seen & (SEEN_FIN | SEEN_RST) != 0 {
        "CLOSING"
    } else if has_reply && seen & SEEN_ACK != 0 {
        "ESTABLISHED"
    } else {
        "SYN_SENT"
    }
}

/// Every flow in conntrack.
pub fn flows(p: &Pinned) -> Result<Vec<FlowView>> {
    let mut out = Vec::new();
    family_flows(&p.v4.conntrack, &mut out)?;
    family_flows(&p.v6.conntrack, &mut out)?;
    out.sort_by(|a, b| (&a.frontend, &a.client).cmp(&(&b.frontend, &b.client)));
    Ok(out)
}

fn family_flows<A: Addr>(ct: &Conntrack<A>, out: &mut Vec<FlowView>) -> Result<()> {
    let now = crate::datapath::clock::monotonic_ns();
    for r in ct.iter() {
        let (k, e) = r.context("reading conntrack")?;
        if e.dir != CtDir::Forward as u8 {
            continue;
        }
        // The reply direction's entry.
        let rev_key = e.nat.reversed();
        let rev = ct.get(&rev_key, 0).ok();
        let last = rev.map_or(e.last_seen_ns, |r| r.last_seen_ns.max(e.last_seen_ns));
        let seen = rev.map_or(e.seen, |r| r.seen | e.seen);
        let has_reply = rev.is_some_and(|r| r.seen & SEEN_REPLY != 0);
        out.push(FlowView {
            proto: proto_name(k.proto),
            client: endpoint(k.saddr, k.sport),
            frontend: endpoint(k.daddr, k.dport),
            backend: endpoint(e.nat.daddr, e.nat.dport),
            client_at_backend: endpoint(e.nat.saddr, e.nat.sport),
            origin: match CtOrigin::from_u8(e.origin) {
                Some(CtOrigin::Pod) => "pod",
                Some(CtOrigin::Host) => "host",
                Some(CtOrigin::Loop) => "loop",
                None => "?",
            },
            state: state(k.proto, seen, has_reply),
            age_s: now.saturating_sub(e.created_ns) / 1_000_000_000,
            idle_s: now.saturating_sub(last) / 1_000_000_000,
            frontend_id: e.frontend_id,
            replied: has_reply,
        });
    }
    Ok(())
}

/// The id of the frontend written `addr:port/PROTO`.
pub fn frontend_id(p: &Pinned, name: &str) -> Result<u32> {
    fn find<A: Addr>(fam: &PinnedFamily<A>, name: &str) -> Result<Option<u32>> {
        for r in fam.frontends.iter() {
            let (k, f) = r?;
            if frontend_name(&k).eq_ignore_ascii_case(name) {
                return Ok(Some(f.id));
            }
        }
        Ok(None)
    }
    match find(&p.v4, name)?.or(find(&p.v6, name)?) {
        Some(id) => Ok(id),
        None => anyhow::bail!(
            "no frontend {name} (written like 203.0.113.10:8080/TCP or [2001:db8::10]:8080/TCP)"
        ),
    }
}
