//! Sockets do not outlive their backend: after an apply that took a
//! backend from its frontend, the sockets the socket path sent there are
//! ended in the node's namespace and in each pod's.

use tracing::{debug, info, warn};

use super::Agent;
use crate::{
    datapath::{
        pod_side::PodSide,
        sockets::{diag, ends},
    },
    links::Peer,
};

impl Agent {
    /// Ends the sockets the socket path sent to a backend their frontend
    /// no longer has, in the node's namespace and in each pod's, so that
    /// their clients reconnect to a live backend at once.
    pub(super) fn end_stale_sockets(&mut self) {
        if !self.sources.config.socket.enabled {
            return;
        }
        let stale = match ends::stale(&self.datapath.dp, &self.datapath.applied) {
            Ok(s) if s.is_empty() => return,
            Ok(s) => s,
            Err(e) => {
                warn!("finding the sockets of backends gone: {e:#}");
                return;
            }
        };
        let (backends, cookies) = (stale.backends(), stale.cookies());
        let mut ended = 0;
        let mut failed = Vec::new();
        match diag::end(&backends, &cookies) {
            Ok(n) => ended += n,
            Err(e) => failed.push(format!("the node's: {e:#}")),
        }
        let pods: Vec<(String, Peer)> = self
            .datapath
            .known
            .values()
            .filter(|l| self.is_pod(&l.name))
            .filter_map(|l| Some((l.name.clone(), l.peer?)))
            .collect();
        for (name, peer) in pods {
            let in_pod = PodSide::find(&peer)
                .and_then(|side| side.within(|_| diag::end(&backends, &cookies)));
            match in_pod {
                Ok(n) => ended += n,
                Err(e) => failed.push(format!("{name}'s pod: {e:#}")),
            }
        }
        // Ended or closed before: their entries are done with.
        if let Err(e) = ends::forget(&mut self.datapath.dp, &stale) {
            warn!("forgetting the sockets of backends gone: {e:#}");
        }
        if ended > 0 {
            info!(ended, ?backends, "sockets to backends gone ended");
        } else {
            debug!(?backends, "no live socket to backends gone");
        }
        if !failed.is_empty() {
            warn!("ending sockets to backends gone: {}", failed.join("; "));
        }
    }
}
