//! Loads the lab's stand-in eBPF CNI datapath (see ebpf/src/main.rs) in the
//! current network namespace: `standin-cni UPLINK [POD_INTERFACE...]`
//! attaches its programs to the ingress of the uplink and of each pod's
//! host-side interface, as clsact filters after hairpin's programs (TCX
//! runs before clsact; hairpin's own filters have priority 1). Filters an
//! earlier run left are replaced; the filters stay after this exits.
//!
//! A pod interface that is a netkit device gets the pod program on the
//! device's own hook for what its pod sends instead (`BPF_NETKIT_PEER`,
//! last), as Cilium attaches its programs to netkit pods: the link is
//! pinned under `STANDIN_PIN_DIR` so that it outlives this process.

use std::os::fd::AsFd as _;

use anyhow::{bail, Context as _, Result};
use aya::{
    programs::{
        tc::{self, NlOptions, TcAttachOptions},
        SchedClassifier, TcAttachType,
    },
    EbpfLoader,
};
use hairpin::datapath::netkit;

const PRIORITY: u16 = 100;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(uplink) = args.next() else {
        bail!("usage: standin-cni UPLINK [POD_INTERFACE...]");
    };
    let pods: Vec<String> = args.collect();
    let index = index_of(&uplink)?;
    let netkit_devices: Vec<String> = hairpin::links::list_now()?
        .into_iter()
        .filter(|l| l.netkit)
        .map(|l| l.name)
        .collect();
    let mut ebpf = EbpfLoader::new()
        .override_global("UPLINK_IFINDEX", &index, true)
        .load(aya::include_bytes_aligned!(concat!(
            env!("OUT_DIR"),
            "/standin-cni"
        )))
        .context("loading the stand-in CNI")?;
    let targets =
        std::iter::once((uplink.as_str(), "standin_uplink")).chain(pods.iter().map(|p| {
            if netkit_devices.contains(p) {
                (p.as_str(), "standin_netkit")
            } else {
                (p.as_str(), "standin_pod")
            }
        }));
    for (ifname, name) in targets {
        let prog: &mut SchedClassifier = ebpf
            .program_mut(name)
            .with_context(|| format!("no program {name}"))?
            .try_into()?;
        if prog.fd().is_err() {
            prog.load()?;
        }

        if name == "standin_netkit" {
            attach_netkit(prog, ifname)?;
            continue;
        }
        match tc::qdisc_add_clsact(ifname) {
            Ok(()) | Err(tc::TcError::AlreadyAttached) => {}
            Err(tc::TcError::NetlinkError(e)) if e.raw_os_error() == Some(libc::EEXIST) => {}
            Err(e) => return Err(e).with_context(|| format!("adding clsact to {ifname}")),
        }
        // Ignored error: no earlier filter to replace.
        let _ = tc::qdisc_detach_program(ifname, TcAttachType::Ingress, name);
        let id = prog
            .attach_with_options(
                ifname,
                TcAttachType::Ingress,
                TcAttachOptions::Netlink(NlOptions {
                    priority: PRIORITY,
                    ..Default::default()
                }),
            )
            .with_context(|| format!("attaching {name} to {ifname}"))?;
        // A filter outlives its loader unless its link is dropped.
        std::mem::forget(prog.take_link(id)?);
    }
    Ok(())
}

/// The pod program on netkit device `ifname`'s pod-sent hook, after
/// hairpin's, pinned under `STANDIN_PIN_DIR` (an earlier pin replaced).
fn attach_netkit(prog: &mut SchedClassifier, ifname: &str) -> Result<()> {
    let dir = std::env::var_os("STANDIN_PIN_DIR")
        .context("a netkit pod needs STANDIN_PIN_DIR, where its link is pinned")?;
    let pin = std::path::Path::new(&dir).join(ifname);
    std::fs::create_dir_all(&dir)?;
    // Ignored error: no earlier link to replace.
    let _ = std::fs::remove_file(&pin);
    let fd = netkit::prog_fd(prog)?;
    let link = netkit::attach_peer(fd, index_of(ifname)?, netkit::Place::Last)
        .with_context(|| format!("attaching to netkit device {ifname}"))?;
    netkit::pin(link.as_fd(), &pin)
}

fn index_of(name: &str) -> Result<u32> {
    let c = std::ffi::CString::new(name)?;
    // SAFETY: a valid C string.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    anyhow::ensure!(index != 0, "no interface {name}");
    Ok(index)
}
