//! The datapath fitted to the running kernel: the TC programs load alone,
//! the socket path's only when asked, and the clock the programs read is
//! the one the kernel has, and the socket path learns the node's namespace
//! cookie where SO_NETNS_COOKIE is missing (the kernel matrix runs this on
//! 5.10, 6.1, 6.12).

use hairpin::{
    datapath::kernel::{self, Kernel},
    datapath::loader::{Datapath, LoadOptions},
    datapath::sockets,
};
use hairpin_common::{PROG_NETNS_PROBE, SOCK_PROGRAMS, TC_PROGRAMS};

use crate::require_privileged;

/// Whether program `name` of `dp` is loaded in the kernel.
fn loaded(dp: &mut Datapath, name: &str) -> bool {
    dp.ebpf
        .program_mut(name)
        .unwrap_or_else(|| panic!("program {name} missing"))
        .fd()
        .is_ok()
}

#[test]
fn the_socket_paths_programs_load_only_when_asked_and_the_tc_programs_alone() {
    require_privileged!();
    let mut dp = Datapath::load(&LoadOptions::default(), None).expect("load the datapath");
    for name in TC_PROGRAMS {
        assert!(loaded(&mut dp, name), "{name} is loaded");
    }
    for name in SOCK_PROGRAMS {
        assert!(
            !loaded(&mut dp, name),
            "{name} is not loaded before it is asked for"
        );
    }
    dp.load_socket_programs().expect("load the socket path");
    for name in SOCK_PROGRAMS {
        assert!(loaded(&mut dp, name), "{name} is loaded once asked for");
    }
    // Again: already loaded, nothing to do.
    dp.load_socket_programs()
        .expect("load the socket path again");
}

#[test]
fn the_probe_and_the_loaded_datapath_agree_on_the_kernel() {
    require_privileged!();
    let probed = Kernel::probe();
    let dp = Datapath::load(&LoadOptions::default(), None).expect("load the datapath");
    assert_eq!(dp.kernel, probed);
    // Each kernel of the matrix brings what the probe says, by release:
    // Debian's kernels backport none of these.
    assert_eq!(probed.coarse_clock, probed.version >= (5, 11), "{probed:?}");
    assert_eq!(probed.tcx, probed.version >= (6, 6), "{probed:?}");
    assert_eq!(probed.netns_cookie, probed.version >= (5, 14), "{probed:?}");
}

#[test]
fn the_namespace_probe_reads_the_cookie_that_so_netns_cookie_reads() {
    require_privileged!();
    let mut dp = Datapath::load(&LoadOptions::default(), None).expect("load the datapath");
    let has_sockopt = dp.kernel.netns_cookie;
    // The probe, as on a kernel without SO_NETNS_COOKIE (5.10).
    dp.kernel.netns_cookie = false;
    let probed = sockets::host_cookie(&mut dp).expect("the probe reads the cookie");
    assert_ne!(probed, 0);
    assert_eq!(
        sockets::host_cookie(&mut dp).expect("the probe again"),
        probed,
        "the probe reads one namespace's cookie each time"
    );
    assert!(loaded(&mut dp, PROG_NETNS_PROBE));
    if has_sockopt {
        assert_eq!(kernel::netns_cookie().expect("SO_NETNS_COOKIE"), probed);
        dp.kernel.netns_cookie = true;
        assert_eq!(sockets::host_cookie(&mut dp).expect("the sockopt"), probed);
    }
}
