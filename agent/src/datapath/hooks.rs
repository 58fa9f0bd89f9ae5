//! What runs on an interface's hooks, hairpin's and others', first to run
//! first and with how each is attached: what `status` and `doctor` show.

use anyhow::Result;
use aya::programs::{SchedClassifier, TcAttachType};

use crate::{datapath::netkit, datapath::pod_side::PodSide, links::Link};

/// A program on a hook, and how it is attached there.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct OnHook {
    pub name: String,
    /// `netkit` (a netkit device's own hook), `tcx` or `clsact`.
    pub via: &'static str,
}

impl OnHook {
    pub fn new(name: impl Into<String>, via: &'static str) -> Self {
        Self {
            name: name.into(),
            via,
        }
    }
}

impl std::fmt::Display for OnHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name, self.via)
    }
}

/// The programs on each hook of interface `name`, first to run first: a
/// netkit device's own hook for what its pod sends, its TCX programs (where
/// the kernel has TCX), then its clsact filters, which run after them.
/// Reading another program's name by its id needs CAP_SYS_ADMIN: a refusal
/// is an error, since an empty list would be a lie.
pub fn hook_programs(name: &str) -> Result<Vec<(&'static str, Vec<OnHook>)>> {
    let index = crate::links::index_of(name)?;
    let mut out = Vec::new();
    for (hook, dir) in [
        ("ingress", TcAttachType::Ingress),
        ("egress", TcAttachType::Egress),
    ] {
        let via = |via| move |name: String| OnHook::new(name, via);
        let mut programs: Vec<OnHook> = if dir == TcAttachType::Ingress {
            netkit::peer_program_names(index)
                .into_iter()
                .map(via("netkit"))
                .collect()
        } else {
            Vec::new()
        };
        match SchedClassifier::query_tcx(name, dir) {
            Ok((_, progs)) => programs.extend(
                progs
                    .iter()
                    .map(|p| OnHook::new(p.name_as_str().unwrap_or("?"), "tcx")),
            ),
            Err(e) if denied(&e) => {
                anyhow::bail!("reading the programs on {name}: {e} (it needs CAP_SYS_ADMIN)")
            }
            // No TCX on this kernel.
            Err(_) => {}
        }
        programs.extend(
            crate::links::clsact_programs(index, dir == TcAttachType::Egress)?
                .into_iter()
                .map(via("clsact")),
        );
        out.push((hook, programs));
    }
    Ok(out)
}

/// The programs on the ingress of `link`'s peer in its pod's namespace,
/// first to run first; `None` for an interface without such a peer.
pub fn pod_side_programs(link: &Link) -> Result<Option<Vec<OnHook>>> {
    let Some(peer) = link.peer else {
        return Ok(None);
    };
    let side = PodSide::find(&peer)?;
    let hooks = side.within(hook_programs)?;
    Ok(hooks
        .into_iter()
        .find(|(hook, _)| *hook == "ingress")
        .map(|(_, programs)| programs))
}

/// Whether an error comes down to a permission refused.
fn denied(e: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(e), |e| e.source()).any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::PermissionDenied)
    })
}
