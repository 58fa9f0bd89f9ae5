//! Attaches the TC programs to interfaces. With TCX (kernel 6.6+) every link
//! is pinned, so the datapath outlives the agent (a restart, a `kill -9`)
//! and a new agent swaps its programs into the same links atomically: no
//! packet meets an interface without hairpin, nothing is attached twice.
//! Older kernels get a clsact qdisc and netlink filters, which live as long
//! as the agent.

use std::{
    collections::BTreeMap,
    fs, io,
    os::fd::AsFd as _,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result};
use aya::programs::{
    links::{FdLink, LinkOrder, PinnedLink},
    tc::{self, NlOptions, SchedClassifierLink, TcAttachOptions},
    SchedClassifier, TcAttachType,
};
use hairpin_common::{
    PROG_POD_EGRESS, PROG_POD_INGRESS, PROG_POD_RECEIVE, PROG_UPLINK_EGRESS, PROG_UPLINK_INGRESS,
};

use crate::{
    datapath::loader::Datapath,
    datapath::netkit,
    datapath::pins::{self, not_found, pinned_links, unpin_link},
    datapath::pod_side::PodSide,
    links::{Link, Peer},
};

/// The program on a pod interface's peer, inside the pod's namespace: its
/// ingress is where every delivery into the pod arrives (see
/// docs/datapath.md).
pub const POD_SIDE: (&str, TcAttachType) = (PROG_POD_RECEIVE, TcAttachType::Ingress);

/// The name of a pod interface's inside hook, in reports.
pub const POD_SIDE_HOOK: &str = "pod side ingress";

/// The role of an interface, which decides its programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Uplink,
    Pod,
}

impl Role {
    /// The programs of this role on its interface, with the direction each
    /// is attached in.
    pub fn programs(self) -> [(&'static str, TcAttachType); 2] {
        match self {
            Role::Uplink => [
                (PROG_UPLINK_INGRESS, TcAttachType::Ingress),
                (PROG_UPLINK_EGRESS, TcAttachType::Egress),
            ],
            Role::Pod => [
                (PROG_POD_INGRESS, TcAttachType::Ingress),
                (PROG_POD_EGRESS, TcAttachType::Egress),
            ],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Tcx,
    Clsact,
}

impl Mode {
    /// The mode asked for, or the best this kernel has.
    pub fn choose(asked: Option<Mode>) -> Self {
        asked.unwrap_or_else(Self::detect)
    }

    pub fn detect() -> Self {
        if crate::datapath::kernel::Kernel::probe().tcx {
            Mode::Tcx
        } else {
            Mode::Clsact
        }
    }
}

/// The interfaces hairpin is attached to.
pub struct Attachments {
    mode: Mode,
    pin_dir: PathBuf,
    roles: BTreeMap<String, (Role, Option<Peer>)>,
    /// Whether pods' namespaces can be entered (CAP_SYS_ADMIN), to attach
    /// `POD_SIDE` there.
    pod_sides: bool,
}

impl Attachments {
    pub fn new(mode: Mode, pin_dir: &Path, pod_sides: bool) -> Self {
        Self {
            mode,
            pin_dir: pin_dir.to_owned(),
            roles: BTreeMap::new(),
            pod_sides,
        }
    }

    /// The peer whose pod side `link` gets in `role`, if any.
    fn pod_side(&self, link: &Link, role: Role) -> Option<Peer> {
        link.peer.filter(|_| role == Role::Pod && self.pod_sides)
    }

    pub fn role(&self, ifname: &str) -> Option<Role> {
        self.roles.get(ifname).map(|(r, _)| *r)
    }

    pub fn interfaces(&self) -> impl Iterator<Item = (&str, Role)> {
        self.roles.iter().map(|(n, (r, _))| (n.as_str(), *r))
    }

    /// Attaches `role`'s programs to `link`, adopting the links a previous
    /// agent pinned; a pod interface whose peer lives in a pod's namespace
    /// gets `POD_SIDE` there too. Programs go first on the hook, ahead of a
    /// CNI's: they return "next" for every packet they do not translate.
    pub fn attach(&mut self, dp: &mut Datapath, link: &Link, role: Role) -> Result<()> {
        let ifname = link.name.as_str();
        let peer = self.pod_side(link, role);
        match self.roles.get(ifname) {
            Some(&(r, p)) if r == role && p == peer => return Ok(()),
            // The peer moved into a pod's namespace after the interface
            // came (a CNI creates the pair, then moves one end).
            Some(&(r, _)) if r == role => {
                if let Some(peer) = peer {
                    self.attach_pod_side(dp, ifname, &peer)?;
                }
                self.roles.insert(ifname.to_owned(), (role, peer));
                return Ok(());
            }
            Some(_) => {
                self.detach(ifname)?;
            }
            None => {}
        }
        if self.mode == Mode::Clsact {
            add_clsact(ifname)?;
        }
        for (name, dir) in role.programs() {
            let prog = dp.program(name)?;
            let pin = pins::link_pin(&self.pin_dir, ifname, name);
            // What a netkit pod sends is taken on the device's own hook,
            // ahead of a CNI's program there, which may redirect it past
            // the host side's ingress.
            let netkit_peer = link.netkit && role == Role::Pod && dir == TcAttachType::Ingress;
            let attached = match self.mode {
                _ if netkit_peer => attach_netkit_peer(prog, link.index, &pin),
                Mode::Tcx => attach_pinned(prog, ifname, dir, &pin),
                Mode::Clsact => attach_filter(prog, ifname, dir, name),
            };
            attached.with_context(|| format!("attaching {name} to {ifname} ({dir:?})"))?;
        }
        if let Some(peer) = peer {
            self.attach_pod_side(dp, ifname, &peer)?;
        }
        self.roles.insert(ifname.to_owned(), (role, peer));
        Ok(())
    }

    /// Whether `link` has `role`'s programs, its pod side included.
    pub fn serves(&self, link: &Link, role: Role) -> bool {
        self.roles.get(&link.name) == Some(&(role, self.pod_side(link, role)))
    }

    fn attach_pod_side(&self, dp: &mut Datapath, ifname: &str, peer: &Peer) -> Result<()> {
        let (name, dir) = POD_SIDE;
        let context = || format!("attaching {name} to the pod side of {ifname}");
        let prog = dp.program(name)?;
        let pin = pins::link_pin(&self.pin_dir, ifname, name);
        let mode = self.mode;
        PodSide::find(peer)
            .and_then(|side| {
                side.within(|inside| match mode {
                    Mode::Tcx => attach_pinned(prog, inside, dir, &pin),
                    Mode::Clsact => {
                        add_clsact(inside)?;
                        attach_filter(prog, inside, dir, name)
                    }
                })
            })
            .with_context(context)
    }

    /// Detaches from `ifname` (its pinned links). An interface that is gone
    /// took its links with it; only the pins are left to remove.
    pub fn detach(&mut self, ifname: &str) -> Result<bool> {
        let Some((role, peer)) = self.roles.remove(ifname) else {
            return Ok(false);
        };
        for (name, dir) in role.programs() {
            match self.mode {
                Mode::Tcx => {
                    unpin_link(&pins::link_pin(&self.pin_dir, ifname, name))?;
                }
                Mode::Clsact => {
                    remove_filters(ifname, dir, name)?;
                }
            }
        }
        let (name, dir) = POD_SIDE;
        match (self.mode, peer) {
            (Mode::Tcx, _) => {
                unpin_link(&pins::link_pin(&self.pin_dir, ifname, name))?;
            }
            // A pod that is gone took its side's filter with it.
            (Mode::Clsact, Some(peer)) => {
                if let Ok(side) = PodSide::find(&peer) {
                    side.within(|inside| remove_filters(inside, dir, name))?;
                }
            }
            (Mode::Clsact, None) => {}
        }
        Ok(true)
    }

    /// Interfaces with links pinned by an earlier agent.
    pub fn pinned_interfaces(&self) -> Vec<String> {
        let mut names: Vec<String> = pinned_links(&self.pin_dir)
            .iter()
            .filter_map(|p| pins::link_ifname(p))
            .collect();
        names.dedup();
        names
    }
}

/// Attaches `prog` to what the pod of netkit device `ifindex` sends, first,
/// through the link pinned at `pin` (updated in place) or a new one.
fn attach_netkit_peer(prog: &mut SchedClassifier, ifindex: u32, pin: &Path) -> Result<()> {
    let fd = netkit::prog_fd(prog)?;
    if let Some(link) = netkit::pinned(pin)? {
        // A link whose device is gone cannot be updated: start anew.
        if netkit::update(link.as_fd(), fd).is_ok() {
            return Ok(());
        }
    }
    let link = netkit::attach_peer(fd, ifindex, netkit::Place::First)
        .context("a netkit link (BPF_NETKIT_PEER)")?;
    if let Some(parent) = pin.parent() {
        fs::create_dir_all(parent)?;
    }
    match fs::remove_file(pin) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("replacing pin {}", pin.display())),
    }
    netkit::pin(link.as_fd(), pin)
}

/// Adds a clsact qdisc to `ifname`; an existing one (a CNI's, or an
/// earlier agent's) is what we need.
fn add_clsact(ifname: &str) -> Result<()> {
    match tc::qdisc_add_clsact(ifname) {
        Ok(()) | Err(tc::TcError::AlreadyAttached) => Ok(()),
        Err(tc::TcError::NetlinkError(e)) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("adding clsact to {ifname}")),
    }
}

/// Attaches through the link pinned at `pin`, replacing its program
/// atomically, or creates and pins a new link.
fn attach_pinned(
    prog: &mut SchedClassifier,
    ifname: &str,
    dir: TcAttachType,
    pin: &Path,
) -> Result<()> {
    let adopted = match PinnedLink::from_pin(pin) {
        Ok(old) => {
            let link: SchedClassifierLink = FdLink::from(old).try_into()?;
            // A link whose interface is gone (a pod that came back under
            // the same name) cannot be updated: drop its pin and start anew.
            prog.attach_to_link(link).ok()
        }
        Err(e) if not_found(&e) => None,
        Err(e) => return Err(e.into()),
    };
    let id = match adopted {
        Some(id) => id,
        None => {
            prog.attach_with_options(ifname, dir, TcAttachOptions::TcxOrder(LinkOrder::first()))?
        }
    };
    let link: FdLink = prog.take_link(id)?.try_into()?;
    if let Some(parent) = pin.parent() {
        fs::create_dir_all(parent)?;
    }
    match fs::remove_file(pin) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("replacing pin {}", pin.display())),
    }
    // The pinned link keeps the program attached once this handle is gone.
    link.pin(pin)?;
    Ok(())
}

/// Attaches a netlink filter (clsact) that outlives the agent, replacing the
/// filters of the same program an earlier agent left: unlike a TCX link,
/// this leaves the hook without hairpin for a moment.
fn attach_filter(
    prog: &mut SchedClassifier,
    ifname: &str,
    dir: TcAttachType,
    name: &str,
) -> Result<()> {
    remove_filters(ifname, dir, name)?;
    let id = prog.attach_with_options(
        ifname,
        dir,
        TcAttachOptions::Netlink(NlOptions {
            priority: 1,
            ..Default::default()
        }),
    )?;
    // A filter stays attached until removed; dropping the link would
    // remove it, so the agent lets go of it instead.
    std::mem::forget(prog.take_link(id)?);
    Ok(())
}

/// Removes the clsact filters of program `name` from a hook of `ifname`.
pub fn remove_filters(ifname: &str, dir: TcAttachType, name: &str) -> Result<bool> {
    match tc::qdisc_detach_program(ifname, dir, name) {
        Ok(()) => Ok(true),
        Err(tc::TcError::IoError(e)) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        // No clsact qdisc (or no interface): nothing of ours is there.
        Err(tc::TcError::NetlinkError(_)) => Ok(false),
        Err(e) => Err(e).with_context(|| format!("removing {name} from {ifname}")),
    }
}
