//! The socket-level path: attached to its cgroup, or detached when the
//! configuration turns it off. Who takes it beside the node's own
//! processes is `socket_pods`; the sockets it ends, `socket_ends`.

use std::path::PathBuf;

use anyhow::Result;
use hairpin_common::SockScope;
use tracing::info;

use super::{degraded::Item, Agent};
use crate::{config::SocketScope, datapath::sockets};

impl Agent {
    /// Sets the socket-level path up as configured; a failure (a cgroup not
    /// mounted yet) is reported and retried, and leaves the TC path serving.
    pub(super) fn set_socket_path(&mut self) {
        match self.try_socket_path() {
            Ok(()) => self.published.retries.served(&Item::SocketPath),
            Err(e) => self.published.retries.failed(Item::SocketPath, &e),
        }
    }

    /// Attaches the socket-level path (or detaches it) and tells the
    /// datapath its scope.
    fn try_socket_path(&mut self) -> Result<()> {
        let lb = &self.sources.config.socket;
        let pin_dir = &self.settings.pin_dir;
        if !lb.enabled {
            self.datapath
                .maps
                .update_node(|n| n.sock_scope = SockScope::Off as u8)?;
            for pin in sockets::detach(pin_dir)? {
                info!(pin = %pin.display(), "socket-level path off: detached");
            }
            return Ok(());
        }
        let cookie = sockets::host_cookie(&mut self.datapath.dp)?;
        let scope = match lb.scope {
            SocketScope::Host => SockScope::Host,
            SocketScope::All => SockScope::All,
        };
        self.datapath.maps.update_node(|n| {
            n.sock_scope = scope as u8;
            n.host_netns_cookie = cookie;
        })?;
        let cgroup = self.socket_cgroup()?;
        // Those chosen are in the map before the programs that read it run.
        self.choose_cgroups();
        let lb = &self.sources.config.socket;
        sockets::attach(&mut self.datapath.dp, &cgroup, &self.settings.pin_dir)?;
        info!(cgroup = %cgroup.display(), scope = ?lb.scope, "socket-level path attached");
        Ok(())
    }

    /// The cgroup the socket path attaches to.
    pub(super) fn socket_cgroup(&self) -> Result<PathBuf> {
        match &self.sources.config.socket.cgroup {
            Some(c) => Ok(c.clone()),
            None => sockets::cgroup2_root(),
        }
    }
}
