//! The pod side of a pod interface: its network namespace, found from the
//! id the node's namespace gives it (`IFLA_LINK_NETNSID`), and entered on a
//! thread of its own to attach or detach there. The node's namespace names
//! a peer namespace only by that id, so every namespace the node can reach
//! (those bind-mounted under /run/netns, as CNIs and `ip netns` leave them,
//! and those of the node's processes) is asked for its id until one
//! matches.

use std::{
    collections::BTreeSet,
    fs::{self, File},
    os::{fd::AsRawFd as _, unix::fs::MetadataExt as _},
    path::PathBuf,
};

use anyhow::{bail, Context as _, Result};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_REQUEST};
use netlink_packet_route::{
    nsid::{NsidAttribute, NsidMessage},
    RouteNetlinkMessage,
};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::links::Peer;

/// Where the namespaces bind-mounted by CNIs and `ip netns` live.
const NETNS_DIRS: [&str; 2] = ["/run/netns", "/var/run/netns"];

/// The namespace of a pod interface's peer, and the peer's index there.
pub struct PodSide {
    ns: File,
    pub index: u32,
}

impl PodSide {
    pub fn find(peer: &Peer) -> Result<Self> {
        let ns = namespace(peer.netns_id)?;
        Ok(Self {
            ns,
            index: peer.index,
        })
    }

    /// Runs `f` in the pod's namespace, with the peer's name there, on a
    /// thread that ends with it: the caller's thread stays in its own.
    pub fn within<T: Send>(&self, f: impl FnOnce(&str) -> Result<T> + Send) -> Result<T> {
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: a namespace file descriptor, this thread only.
                if unsafe { libc::setns(self.ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(std::io::Error::last_os_error())
                        .context("entering the pod's network namespace");
                }
                let name = index_name(self.index).with_context(|| {
                    format!("no interface {} in the pod's namespace", self.index)
                })?;
                f(&name)
            })
            .join()
            .unwrap_or_else(|_| bail!("the thread in the pod's namespace panicked"))
        })
    }
}

fn index_name(index: u32) -> Option<String> {
    let mut buf = [0u8; libc::IF_NAMESIZE];
    // SAFETY: the buffer holds IF_NAMESIZE bytes, as the call requires.
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr().cast()) };
    if p.is_null() {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// The namespace the node's namespace knows as `id`.
fn namespace(id: i32) -> Result<File> {
    let sock = rtnetlink_socket()?;
    let mut seen = BTreeSet::new();
    for path in candidates() {
        let Ok(file) = File::open(&path) else {
            continue;
        };
        let Ok(meta) = file.metadata() else {
            continue;
        };
        if !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        // A namespace that cannot be asked (gone meanwhile) is not it.
        if nsid_of(&sock, &file).ok().flatten() == Some(id) {
            return Ok(file);
        }
    }
    bail!(
        "no network namespace with id {id} found under {} or /proc (hairpin needs the host's PID namespace)",
        NETNS_DIRS.join(", ")
    )
}

/// Bind-mounted namespaces first (a pod's is there from its start), then
/// those of the node's processes.
fn candidates() -> Vec<PathBuf> {
    let entries = |dir: &str| -> Vec<PathBuf> {
        fs::read_dir(dir)
            .map(|d| d.filter_map(|e| Some(e.ok()?.path())).collect())
            .unwrap_or_default()
    };
    let mut paths: Vec<PathBuf> = NETNS_DIRS.iter().flat_map(|d| entries(d)).collect();
    paths.extend(
        entries("/proc")
            .into_iter()
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            })
            .map(|p| p.join("ns/net")),
    );
    paths
}

fn rtnetlink_socket() -> Result<Socket> {
    let mut sock = Socket::new(NETLINK_ROUTE).context("opening rtnetlink")?;
    sock.bind_auto().context("binding rtnetlink")?;
    sock.connect(&SocketAddr::new(0, 0))
        .context("connecting rtnetlink")?;
    Ok(sock)
}

/// The id the current namespace gives the namespace of `ns` (RTM_GETNSID),
/// `None` when it gives none (the current namespace itself, or one it never
/// had to name).
fn nsid_of(sock: &Socket, ns: &File) -> Result<Option<i32>> {
    let mut msg = NsidMessage::default();
    msg.attributes
        .push(NsidAttribute::Fd(ns.as_raw_fd() as u32));
    let mut req = NetlinkMessage::from(RouteNetlinkMessage::GetNsId(msg));
    req.header.flags = NLM_F_REQUEST;
    req.finalize();
    let mut buf = vec![0; req.buffer_len()];
    req.serialize(&mut buf);
    sock.send(&buf, 0).context("asking for a namespace id")?;
    let (reply, _) = sock.recv_from_full().context("reading a namespace id")?;
    let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&reply)
        .context("decoding a namespace id")?;
    match reply.payload {
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNsId(m)) => {
            Ok(m.attributes.iter().find_map(|a| match a {
                NsidAttribute::Id(id) if *id >= 0 => Some(*id),
                _ => None,
            }))
        }
        NetlinkPayload::Error(e) => Err(std::io::Error::from(e).into()),
        other => bail!("unexpected answer to RTM_GETNSID: {other:?}"),
    }
}
