//! The node's network namespace cookie, which the socket path compares with
//! each socket's to tell the node's own processes from pods'. Read with
//! `SO_NETNS_COOKIE` where the kernel has it (5.14); before, from a probe
//! program attached for a moment to the agent's own cgroup, which reads it
//! on a connect of the agent's (`bpf_get_netns_cookie`, 5.7).

use std::{fs, net::UdpSocket, path::PathBuf};

use anyhow::{bail, Context as _, Result};
use aya::{
    maps::{Array, MapData},
    programs::CgroupAttachMode,
};
use hairpin_common::{NETNS_COOKIE, NETNS_PROBE, NETNS_TGID, PROG_NETNS_PROBE};

use crate::{datapath::kernel, datapath::loader::Datapath};

/// The cookie of the namespace the agent runs in: the node's.
pub fn host_cookie(dp: &mut Datapath) -> Result<u64> {
    if dp.kernel.netns_cookie {
        return kernel::netns_cookie();
    }
    probe(dp).context("reading the node's network namespace cookie with a probe program")
}

fn probe(dp: &mut Datapath) -> Result<u64> {
    slots(dp)?.set(NETNS_TGID, u64::from(std::process::id()), 0)?;
    slots(dp)?.set(NETNS_COOKIE, 0, 0)?;
    let cgroup = own_cgroup()?;
    let dir = fs::File::open(&cgroup)
        .with_context(|| format!("opening the agent's cgroup {}", cgroup.display()))?;
    dp.load_socket_programs()?;
    let prog = dp.sock_program(PROG_NETNS_PROBE)?;
    let id = prog
        .attach(&dir, CgroupAttachMode::Single)
        .with_context(|| format!("attaching the probe to {}", cgroup.display()))?;
    // A UDP connect sends nothing: it only runs the hook.
    let connected = UdpSocket::bind("127.0.0.1:0").and_then(|s| s.connect("127.0.0.1:9"));
    prog.detach(id)?;
    connected.context("a UDP connect on loopback, for the probe")?;
    let cookie = slots(dp)?.get(&NETNS_COOKIE, 0)?;
    if cookie == 0 {
        bail!(
            "the probe on {} saw no connect of the agent's: is the agent in that cgroup?",
            cgroup.display()
        );
    }
    Ok(cookie)
}

fn slots(dp: &mut Datapath) -> Result<Array<&mut MapData, u64>> {
    let map = dp
        .ebpf
        .map_mut(NETNS_PROBE)
        .with_context(|| format!("map {NETNS_PROBE} missing from the object"))?;
    Ok(Array::try_from(map)?)
}

/// The agent's own cgroup v2 directory (`0::/path` in /proc/self/cgroup).
fn own_cgroup() -> Result<PathBuf> {
    let cgroups = fs::read_to_string("/proc/self/cgroup").context("reading /proc/self/cgroup")?;
    let path = cgroups
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .context("the agent is in no cgroup v2 (no 0:: line in /proc/self/cgroup)")?;
    Ok(super::cgroup2_root()?.join(path.trim_start_matches('/')))
}
