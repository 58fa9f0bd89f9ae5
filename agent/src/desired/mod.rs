//! The node's desired frontends, merged from every source in one order:
//! the file's, then its names' at the addresses they have, then the
//! cluster's that these leave free, each taking the room the tables have
//! left. Admission and conflicts are decided here, once, for every source;
//! pure, so that each case is tested without root. The daemon applies what
//! this returns (`daemon::apply`).

use std::net::IpAddr;

use crate::{
    config::{Config, Frontend, Kubernetes},
    sources::{
        dns::{Bounds, Names},
        kubernetes::{
            admission::Admission,
            claims::{claimed, Report, Snapshot},
            state,
        },
        room::Room,
    },
};

/// Where the cluster's frontends come from.
pub enum Objects<'a> {
    /// Every kind has been listed: the objects the watches hold.
    Listed(&'a Snapshot),
    /// Not yet: the frontends the state file kept.
    Saved(&'a [Frontend]),
}

/// The cluster, as the merge needs it.
pub struct Cluster<'a> {
    pub settings: &'a Kubernetes,
    /// The node's name in the cluster.
    pub node: &'a str,
    pub objects: Objects<'a>,
}

/// Every source of frontends, and the node they are for.
pub struct Inputs<'a> {
    /// The file: its frontends written as addresses and as names.
    pub config: &'a Config,
    /// The addresses the names have.
    pub names: &'a Names,
    /// In Kubernetes mode.
    pub cluster: Option<Cluster<'a>>,
    /// The node's own addresses: never frontends.
    pub node: &'a [IpAddr],
    /// The datapath tables' whole room.
    pub room: Room,
    /// What the maps hold: a name's addresses there keep their room first.
    pub applied: &'a [Frontend],
}

/// What became of the cluster's objects.
#[derive(Debug, PartialEq, Eq)]
pub enum ClusterOutcome {
    /// A report per object listed.
    Listed(Vec<Report>),
    /// The state file's objects left out, with why.
    Saved(Vec<(String, String)>),
}

/// The node's frontends, and what each source could not have.
#[derive(Debug, PartialEq, Eq)]
pub struct Desired {
    /// Every frontend: the file's, the names', then the cluster's.
    pub frontends: Vec<Frontend>,
    /// How many of `frontends` are the file's and its names'.
    own: usize,
    /// The names' addresses refused: (name, why).
    pub names_refused: Vec<(String, String)>,
    /// `None` outside Kubernetes mode.
    pub cluster: Option<ClusterOutcome>,
}

impl Desired {
    /// The cluster's frontends.
    pub fn cluster_frontends(&self) -> &[Frontend] {
        &self.frontends[self.own..]
    }
}

/// Merges the sources of `inputs` into the node's frontends.
pub fn merge(inputs: &Inputs<'_>) -> Desired {
    let (named, names_refused) = named(inputs);
    let mut frontends = inputs.config.frontends.clone();
    frontends.extend(named);
    let own = frontends.len();
    let cluster = inputs.cluster.as_ref().map(|c| {
        let admission = Admission::new(c.settings, inputs.node, &inputs.config.allow_reserved);
        let room = inputs.room.after(&frontends);
        let (fits, outcome) = match c.objects {
            Objects::Listed(snap) => {
                let d = claimed(snap, c.node, &admission, &frontends, room);
                (d.frontends, ClusterOutcome::Listed(d.reports))
            }
            Objects::Saved(saved) => {
                let (fits, left_out) = state::fit(saved, &frontends, &admission, room);
                (fits, ClusterOutcome::Saved(left_out))
            }
        };
        frontends.extend(fits);
        outcome
    });
    Desired {
        frontends,
        own,
        names_refused,
        cluster,
    }
}

/// The file's names at the addresses they have, and the addresses refused
/// with why: what a name may have is decided beside the file's frontends
/// written as addresses, which win.
pub fn named(inputs: &Inputs<'_>) -> (Vec<Frontend>, Vec<(String, String)>) {
    let config = inputs.config;
    let bounds = Bounds {
        written: &config.frontends,
        node: inputs.node,
        room: inputs.room.after(&config.frontends),
        applied: inputs.applied,
    };
    inputs.names.frontends(&config.named, &bounds)
}

#[cfg(test)]
mod tests;
