//! Attaches the TC programs to interfaces: TCX where the kernel has it
//! (6.6+), else a clsact qdisc and netlink filters. Decided once per run.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use aya::{
    programs::{
        links::LinkOrder,
        tc::{self, NlOptions, SchedClassifierLinkId, TcAttachOptions},
        TcAttachType,
    },
    util::KernelVersion,
};
use hairpin_common::{PROG_POD_EGRESS, PROG_POD_INGRESS, PROG_UPLINK_EGRESS, PROG_UPLINK_INGRESS};

use crate::loader::Datapath;

/// The role of an interface, which decides its programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Uplink,
    Pod,
}

impl Role {
    /// The programs of this role, with the direction each is attached in.
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Tcx,
    Clsact,
}

impl Mode {
    pub fn detect() -> Self {
        match KernelVersion::current() {
            Ok(v) if v >= KernelVersion::new(6, 6, 0) => Mode::Tcx,
            _ => Mode::Clsact,
        }
    }
}

/// A program attached to an interface: its name and its link.
type ProgramLink = (&'static str, SchedClassifierLinkId);

/// The interfaces hairpin is attached to, with their links.
pub struct Attachments {
    mode: Mode,
    links: BTreeMap<String, (Role, Vec<ProgramLink>)>,
}

impl Attachments {
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            links: BTreeMap::new(),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn role(&self, ifname: &str) -> Option<Role> {
        self.links.get(ifname).map(|(r, _)| *r)
    }

    pub fn interfaces(&self) -> impl Iterator<Item = (&str, Role)> {
        self.links.iter().map(|(n, (r, _))| (n.as_str(), *r))
    }

    /// Attaches `role`'s programs to `ifname`; a no-op if already attached
    /// in that role. Programs go first on the hook, ahead of a CNI's: they
    /// return "next" for every packet they do not translate.
    pub fn attach(&mut self, dp: &mut Datapath, ifname: &str, role: Role) -> Result<()> {
        if self.role(ifname) == Some(role) {
            return Ok(());
        }
        self.detach(dp, ifname);
        if self.mode == Mode::Clsact {
            match tc::qdisc_add_clsact(ifname) {
                // An existing clsact qdisc (a CNI's) is what we need.
                Ok(()) | Err(tc::TcError::AlreadyAttached) => {}
                Err(e) => return Err(e).with_context(|| format!("adding clsact to {ifname}")),
            }
        }
        let mut ids = Vec::new();
        for (name, dir) in role.programs() {
            let opts = match self.mode {
                Mode::Tcx => TcAttachOptions::TcxOrder(LinkOrder::first()),
                Mode::Clsact => TcAttachOptions::Netlink(NlOptions {
                    priority: 1,
                    ..Default::default()
                }),
            };
            match dp.program(name)?.attach_with_options(ifname, dir, opts) {
                Ok(id) => ids.push((name, id)),
                Err(e) => {
                    for (n, id) in ids {
                        // Ignored error: rolling back a partial attach.
                        let _ = dp.program(n).map(|p| p.detach(id));
                    }
                    return Err(e)
                        .with_context(|| format!("attaching {name} to {ifname} ({dir:?})"));
                }
            }
        }
        self.links.insert(ifname.to_owned(), (role, ids));
        Ok(())
    }

    /// Detaches from `ifname`. An interface that is gone took its links with
    /// it; the errors that reports are expected and ignored.
    pub fn detach(&mut self, dp: &mut Datapath, ifname: &str) -> bool {
        let Some((_, ids)) = self.links.remove(ifname) else {
            return false;
        };
        for (name, id) in ids {
            // Ignored error: see above.
            let _ = dp.program(name).map(|p| p.detach(id));
        }
        true
    }
}
