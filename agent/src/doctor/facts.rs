//! The node as the checks see it, read without changing anything.

use std::{
    collections::BTreeSet,
    ffi::CString,
    net::{IpAddr, SocketAddr},
    os::unix::ffi::OsStrExt as _,
    path::{Path, PathBuf},
    process::Command,
};

pub use super::checks::Hook;
use hairpin_common::TC_PROGRAMS;

use super::{checks_pods::PodFlow, facts_network};
use crate::{
    datapath::attach::POD_SIDE_HOOK,
    datapath::hooks,
    datapath::loader::{refusal, Datapath, LoadOptions},
    datapath::migrate,
    datapath::pinned,
    links::Link,
};

/// The verifier's answer to the TC programs, then to the socket path's:
/// how many it accepts, or why it refuses one. They are loaded once with
/// small maps, unpinned and unattached, and dropped.
pub fn verifier() -> (Result<u32, String>, Result<u32, String>) {
    let opts = LoadOptions {
        max_frontends: 64,
        max_backend_slots: 64,
        ct_entries: 64,
        ct_entries_v6: 64,
        ..LoadOptions::default()
    };
    let count = |n: usize| n as u32;
    match Datapath::load(&opts, None) {
        Err(e) => (Err(refusal(&e)), Err("not tried".into())),
        Ok(mut dp) => (
            Ok(count(TC_PROGRAMS.len())),
            dp.load_socket_programs()
                .map(count)
                .map_err(|e| refusal(&e)),
        ),
    }
}

/// The filesystem type of `dir`, or of its nearest existing parent (where
/// the agent would create it).
pub fn fs_magic(dir: &Path) -> Option<i64> {
    let mut at: PathBuf = dir.to_owned();
    while !at.exists() {
        at = at.parent()?.to_owned();
    }
    statfs(&at)
}

/// The filesystem type of `path` itself; `None` when it does not exist.
pub fn statfs(path: &Path) -> Option<i64> {
    let path = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: a valid path and a zeroed, writable `statfs`.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    (unsafe { libc::statfs(path.as_ptr(), &mut st) } == 0).then_some(st.f_type as i64)
}

/// Whether the kernel exposes its BTF.
pub fn btf() -> bool {
    Path::new("/sys/kernel/btf/vmlinux").exists()
}

/// This process's mount table, as /proc/self/mountinfo prints it.
pub fn mountinfo() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default()
}

/// `RLIMIT_MEMLOCK`'s hard limit in bytes; `None`: unlimited (or unread).
pub fn memlock() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid resource and a writable rlimit.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) };
    // The hard limit: the agent lifts its soft limit to it where it counts
    // (`Kernel::lift_memlock`).
    (rc == 0 && lim.rlim_max != libc::RLIM_INFINITY).then_some(lim.rlim_max)
}

/// The NAT rules of iptables and nftables, as their tools print them.
pub fn netfilter_rules() -> String {
    [
        ("iptables-save", &["-t", "nat"][..]),
        ("ip6tables-save", &["-t", "nat"][..]),
        ("nft", &["list", "ruleset"][..]),
    ]
    .iter()
    .filter_map(|(tool, args)| Command::new(tool).args(*args).output().ok())
    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    .collect::<Vec<_>>()
    .join("\n")
}

/// The programs (TCX and clsact) on both hooks of every interface, and on
/// the pod side's ingress of those whose peer is in another namespace;
/// `wanted` where a pod pattern matches the interface. A hook whose
/// programs cannot be read is left out.
pub fn hooks(links: &[Link], pods: &[glob::Pattern]) -> Vec<Hook> {
    links
        .iter()
        .flat_map(|link| {
            let wanted = pods.iter().any(|p| p.matches(&link.name));
            let pod_side = hooks::pod_side_programs(link)
                .ok()
                .flatten()
                .map(|programs| (POD_SIDE_HOOK, programs));
            hooks::hook_programs(&link.name)
                .unwrap_or_default()
                .into_iter()
                .chain(pod_side)
                .map(move |(hook, programs)| Hook {
                    interface: link.name.clone(),
                    hook,
                    programs,
                    wanted,
                })
        })
        .collect()
}

/// The pod flows in the pinned conntrack, each with its pod's interface,
/// and the backends that answered some client.
pub fn pod_flows(pin_dir: &Path, links: &[Link]) -> Option<(Vec<PodFlow>, BTreeSet<String>)> {
    let flows = pinned::flows(&pinned::Pinned::open(pin_dir).ok()?).ok()?;
    let answered = flows
        .iter()
        .filter(|f| f.replied)
        .map(|f| f.backend.clone())
        .collect();
    let pods: Vec<&pinned::FlowView> = flows.iter().filter(|f| f.origin == "pod").collect();
    let clients: BTreeSet<IpAddr> = pods
        .iter()
        .filter_map(|f| f.client.parse::<SocketAddr>().ok())
        .map(|a| a.ip())
        .collect();
    let clients: Vec<IpAddr> = clients.into_iter().collect();
    let at = facts_network::route_interfaces(&clients, links).unwrap_or_default();
    let interface = |client: &str| {
        let ip = client.parse::<SocketAddr>().ok()?.ip();
        at.iter().find(|(a, _)| *a == ip).map(|(_, i)| i.clone())
    };
    let pods = pods
        .iter()
        .map(|f| PodFlow {
            interface: interface(&f.client),
            backend: f.backend.clone(),
            replied: f.replied,
            age_s: f.age_s,
        })
        .collect();
    Some((pods, answered))
}

/// Conntrack's entries and capacity, both families.
pub fn conntrack(pin_dir: &Path) -> Option<(usize, u64)> {
    let pinned = pinned::Pinned::open(pin_dir).ok()?;
    let entries = pinned::conntrack_len(&pinned).ok()?;
    let capacity = [hairpin_common::CT_V4, hairpin_common::CT_V6]
        .iter()
        .filter_map(|m| {
            aya::maps::MapInfo::from_pin(crate::datapath::pins::map_pin(pin_dir, m)).ok()
        })
        .map(|i| u64::from(i.max_entries()))
        .sum();
    Some((entries, capacity))
}

/// How many socket-path hooks are pinned under `pin_dir`.
pub fn socket_hooks(pin_dir: &Path) -> usize {
    hairpin_common::SOCK_PROGRAMS
        .iter()
        .filter(|p| crate::datapath::pins::cgroup_link_pin(pin_dir, p).exists())
        .count()
}

/// Whether the kernel ends a socket on the doctor's word: a loopback
/// connection of its own, ended as the agent ends those of a backend gone;
/// how many it ended, or why none.
pub fn socket_ends() -> Result<usize, String> {
    use std::os::fd::AsRawFd as _;
    let probe = || -> anyhow::Result<usize> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let peer = listener.local_addr()?;
        let client = std::net::TcpStream::connect(peer)?;
        let mut cookie = 0u64;
        let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
        // SAFETY: an open socket, and a u64 with its size.
        let rc = unsafe {
            libc::getsockopt(
                client.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_COOKIE,
                (&mut cookie as *mut u64).cast(),
                &mut len,
            )
        };
        anyhow::ensure!(rc == 0, "SO_COOKIE: {}", std::io::Error::last_os_error());
        crate::datapath::sockets::diag::end(&[peer].into(), &[cookie].into())
    };
    probe().map_err(|e| format!("{e:#}"))
}

/// The pinned datapath's layout and counters, if one is pinned.
pub fn datapath(pin_dir: &Path) -> (Option<u32>, Vec<(&'static str, u64)>) {
    let layout = migrate::pinned_layout(pin_dir).ok().flatten();
    let counters = pinned::Pinned::open(pin_dir)
        .and_then(|p| pinned::global_counters(&p))
        .map(|c| c.into_iter().map(|(c, v)| (c.name(), v)).collect())
        .unwrap_or_default();
    (layout, counters)
}
