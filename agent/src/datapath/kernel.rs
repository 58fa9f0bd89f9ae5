//! What the running kernel offers hairpin, probed rather than read from its
//! version (distribution kernels backport): each feature the datapath can
//! do without has a fallback, chosen at load, and a line that says what
//! serves instead (`hairpin doctor`, `hairpin status`, the agent's log).

use std::{io, os::unix::io::AsRawFd as _};

use anyhow::{Context as _, Result};
use aya::{
    programs::{ProgramType, SchedClassifier, TcAttachType},
    sys::{is_helper_supported, BpfHelper},
};

/// The kernel's features that hairpin uses where present.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kernel {
    /// major.minor, as `uname` says.
    pub version: (u32, u32),
    /// `bpf_ktime_get_coarse_ns` (5.11).
    pub coarse_clock: bool,
    /// TCX links (6.6).
    pub tcx: bool,
    /// `BPF_F_IPV6` for `bpf_l4_csum_replace` (6.16).
    pub csum_ipv6: bool,
    /// `SO_NETNS_COOKIE` (5.14): the node's network namespace cookie,
    /// which the socket path compares with each socket's.
    pub netns_cookie: bool,
}

/// A feature this kernel lacks, and what serves instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lack {
    /// The feature, with the release that brought it.
    pub what: &'static str,
    pub instead: &'static str,
}

impl Kernel {
    /// Probes the running kernel once.
    pub fn probe() -> Self {
        let version = version();
        Self {
            version,
            coarse_clock: is_helper_supported(
                ProgramType::SchedClassifier,
                BpfHelper::BPF_FUNC_ktime_get_coarse_ns,
            )
            .unwrap_or(false),
            // A query of a TCX hook is refused (EINVAL) where there is none.
            tcx: SchedClassifier::query_tcx("lo", TcAttachType::Ingress).is_ok(),
            // A flag cannot be probed without a packet to run on: the
            // release that brought it decides.
            csum_ipv6: version >= (6, 16),
            netns_cookie: netns_cookie().is_ok(),
        }
    }

    /// `BPF_F_IPV6` where the kernel has it, else zero (older kernels refuse
    /// the unknown flag).
    pub fn l4_csum_ipv6(&self) -> u64 {
        if self.csum_ipv6 {
            hairpin_common::BPF_F_IPV6
        } else {
            0
        }
    }

    /// What this kernel lacks, each with what serves instead.
    pub fn lacks(&self) -> Vec<Lack> {
        let mut out = Vec::new();
        if !self.coarse_clock {
            out.push(Lack {
                what: "bpf_ktime_get_coarse_ns (5.11)",
                instead: "the datapath reads the full monotonic clock, a few ns more per packet",
            });
        }
        if !self.netns_cookie {
            out.push(Lack {
                what: "SO_NETNS_COOKIE (5.14)",
                instead: "the agent reads the node's network namespace cookie with a probe \
                          program, attached for a moment to its own cgroup",
            });
        }
        if !self.tcx {
            out.push(Lack {
                what: "TCX (6.6)",
                instead: "the programs are attached as clsact filters; an agent's restart \
                          replaces them with a brief gap",
            });
        }
        if !self.csum_ipv6 {
            out.push(Lack {
                what: "BPF_F_IPV6 (6.16)",
                instead: "IPv6 packets a NIC summed on receive (CHECKSUM_COMPLETE) get a wrong \
                          skb->csum after translation; the stack then checks them again",
            });
        }
        out
    }

    /// Lifts the soft RLIMIT_MEMLOCK to the hard limit (to infinity where
    /// allowed) on kernels that still charge BPF memory to it (before
    /// 5.11, which brought memcg accounting and the coarse clock together:
    /// libbpf takes one for the other too). Elsewhere it bounds nothing.
    pub fn lift_memlock(&self) {
        if self.coarse_clock {
            return;
        }
        let infinity = libc::rlimit {
            rlim_cur: libc::RLIM_INFINITY,
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: plain syscalls on a local struct.
        unsafe {
            if libc::setrlimit(libc::RLIMIT_MEMLOCK, &infinity) != 0 {
                let mut now = std::mem::zeroed::<libc::rlimit>();
                if libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut now) == 0 {
                    now.rlim_cur = now.rlim_max;
                    // Ignored error: the maps' creation then says what is short.
                    libc::setrlimit(libc::RLIMIT_MEMLOCK, &now);
                }
            }
        }
    }

    /// `"6.1"`.
    pub fn release(&self) -> String {
        format!("{}.{}", self.version.0, self.version.1)
    }
}

/// The cookie of the network namespace this process runs in, which the
/// datapath compares with a socket's (`SO_NETNS_COOKIE`, Linux 5.14).
pub fn netns_cookie() -> Result<u64> {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").context("socket for SO_NETNS_COOKIE")?;
    let mut cookie: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: a valid socket and an out-buffer of the size given.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_NETNS_COOKIE,
            (&raw mut cookie).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error()).context(
            "SO_NETNS_COOKIE (Linux 5.14+), which the socket path needs to tell the node's \
             own sockets from pods'",
        );
    }
    Ok(cookie)
}

/// The running kernel's major and minor version (`uname -r`).
fn version() -> (u32, u32) {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: Kernel = Kernel {
        version: (5, 10),
        coarse_clock: false,
        tcx: false,
        csum_ipv6: false,
        netns_cookie: false,
    };

    #[test]
    fn an_old_kernel_names_each_lack_and_a_new_one_none() {
        let lacks = OLD.lacks();
        let what: Vec<&str> = lacks.iter().map(|l| l.what).collect();
        assert_eq!(
            what,
            [
                "bpf_ktime_get_coarse_ns (5.11)",
                "SO_NETNS_COOKIE (5.14)",
                "TCX (6.6)",
                "BPF_F_IPV6 (6.16)"
            ]
        );
        let new = Kernel {
            version: (6, 18),
            coarse_clock: true,
            tcx: true,
            csum_ipv6: true,
            netns_cookie: true,
        };
        assert!(new.lacks().is_empty());
        assert_eq!(OLD.l4_csum_ipv6(), 0);
        assert_eq!(new.l4_csum_ipv6(), hairpin_common::BPF_F_IPV6);
    }
}
