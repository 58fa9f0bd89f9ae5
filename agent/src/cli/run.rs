use std::path::PathBuf;

use anyhow::Result;

use crate::{daemon, datapath::attach::Mode, datapath::pins, listener};

/// Run the datapath: load and attach the programs, apply the configuration,
/// follow the node's interfaces, collect expired flows, serve metrics, and
/// reload the configuration when the file changes or on SIGHUP. The
/// datapath stays in place when the agent stops (`hairpin detach` removes
/// it), and the next agent adopts it without losing a flow.
#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    config: PathBuf,
    /// Where maps and links are pinned: one directory per node (several
    /// agents may share a kernel).
    #[arg(long, default_value = pins::DEFAULT_PIN_DIR)]
    pin_dir: PathBuf,
    /// How to attach to interfaces: TCX (kernel 6.6+, the default where
    /// available: pinned links, atomic replacement on restart) or clsact
    /// netlink filters (any kernel; a restart leaves a brief gap).
    #[arg(long, value_enum)]
    attach: Option<Mode>,
    /// The node's name in the cluster (Kubernetes mode): the DaemonSet sets
    /// NODE_NAME from the downward API; the host name otherwise.
    #[arg(long, env = "NODE_NAME")]
    node_name: Option<String>,
    /// The kubeconfig for Kubernetes mode (which the file's `kubernetes`
    /// section turns on), over the file's `kubernetes.kubeconfig`; without
    /// either, the pod's ServiceAccount (in-cluster configuration).
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// The control socket (root only), which the CLI asks: one per agent.
    #[arg(long, env = "HAIRPIN_SOCKET", default_value = listener::DEFAULT_SOCKET)]
    socket: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    daemon::run(daemon::Settings {
        config: args.config,
        pin_dir: args.pin_dir,
        attach: args.attach,
        node_name: args.node_name,
        kubeconfig: args.kubeconfig,
        socket: args.socket,
    })
}
