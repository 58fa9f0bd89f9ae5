//! Map and program names, shared so that the agent finds what the object
//! defines, and default sizes that the agent may override before load.

pub const FRONTENDS_V4: &str = "FRONTENDS_V4";
/// Addresses that carry at least one frontend: the first, cheap test of the
/// forward path (value: how many frontends use the address).
pub const FRONTEND_ADDRS_V4: &str = "FRONTEND_ADDRS_V4";
pub const BACKENDS_V4: &str = "BACKENDS_V4";
/// Addresses of all backends: the first, cheap test of the reverse path.
pub const BACKEND_ADDRS_V4: &str = "BACKEND_ADDRS_V4";
pub const CT_V4: &str = "CT_V4";
pub const FRONTENDS_V6: &str = "FRONTENDS_V6";
pub const FRONTEND_ADDRS_V6: &str = "FRONTEND_ADDRS_V6";
pub const BACKENDS_V6: &str = "BACKENDS_V6";
pub const BACKEND_ADDRS_V6: &str = "BACKEND_ADDRS_V6";
pub const CT_V6: &str = "CT_V6";
pub const FRONTEND_STATS: &str = "FRONTEND_STATS";
pub const GLOBAL_STATS: &str = "GLOBAL_STATS";
pub const NODE: &str = "NODE";
/// Backend addresses of the frontends whose backends are not redirected.
pub const BACKEND_MEMBERS_V4: &str = "BACKEND_MEMBERS_V4";
pub const BACKEND_MEMBERS_V6: &str = "BACKEND_MEMBERS_V6";
/// Socket-level reverse translation: (socket, backend) → frontend.
pub const SOCK_REVNAT_V4: &str = "SOCK_REVNAT_V4";
pub const SOCK_REVNAT_V6: &str = "SOCK_REVNAT_V6";

/// The layout version of the pinned datapath (`LAYOUT_VERSION` at index 0).
pub const LAYOUT: &str = "LAYOUT";

/// The monitor's ring buffer and filter: the agent's own, never pinned, so
/// that each agent starts with no listener and an empty ring.
pub const EVENTS: &str = "EVENTS";
/// The address filter (see `filter`): the agent's own, written from the
/// maps before it attaches. It is the programs' only zero-initialised
/// global, so the map of their `.bss` section, of one value, holds it.
pub const ADDR_FILTER: &str = ".bss";
pub const MONITOR: &str = "MONITOR";
/// The namespace probe's slots (`NETNS_TGID`, `NETNS_COOKIE`): the agent's
/// own, never pinned.
pub const NETNS_PROBE: &str = "NETNS_PROBE";
/// `NETNS_PROBE`'s slot for the process whose connect the probe reads.
pub const NETNS_TGID: u32 = 0;
/// `NETNS_PROBE`'s slot for the cookie it read.
pub const NETNS_COOKIE: u32 = 1;
/// The cgroups whose processes' sockets the socket path translates beside
/// the node's own (the pods chosen for it): cgroup v2 id → 1. The agent's
/// own, never pinned: each agent fills it before its programs attach.
pub const SOCK_CGROUPS: &str = "SOCK_CGROUPS";
/// How many cgroups `SOCK_CGROUPS` holds.
pub const SOCK_CGROUPS_MAX: u32 = 4096;
/// The deepest cgroup level whose ancestor the socket path looks up in
/// `SOCK_CGROUPS`: a pod's cgroup is at level 2 or 3 under the kubelet's
/// hierarchy, deeper where the node runs in a container of its own.
pub const SOCK_CGROUP_LEVELS: i32 = 8;

/// Every map the agent pins, in a stable order.
pub const PINNED_MAPS: [&str; 18] = [
    FRONTENDS_V4,
    FRONTEND_ADDRS_V4,
    BACKENDS_V4,
    BACKEND_ADDRS_V4,
    CT_V4,
    FRONTENDS_V6,
    FRONTEND_ADDRS_V6,
    BACKENDS_V6,
    BACKEND_ADDRS_V6,
    CT_V6,
    FRONTEND_STATS,
    GLOBAL_STATS,
    NODE,
    SOCK_REVNAT_V4,
    SOCK_REVNAT_V6,
    BACKEND_MEMBERS_V4,
    BACKEND_MEMBERS_V6,
    LAYOUT,
];

/// Program on a pod veth's ingress (the pod's egress).
pub const PROG_POD_INGRESS: &str = "pod_ingress";
/// Program on a pod veth's egress (toward the pod).
pub const PROG_POD_EGRESS: &str = "pod_egress";
/// Program on a pod interface's ingress inside the pod's namespace (what
/// the pod receives, however it was delivered).
pub const PROG_POD_RECEIVE: &str = "pod_receive";
/// Program on the uplink's egress.
pub const PROG_UPLINK_EGRESS: &str = "uplink_egress";
/// Program on the uplink's ingress.
pub const PROG_UPLINK_INGRESS: &str = "uplink_ingress";

/// Socket programs (cgroup hooks) for the node's own processes.
pub const PROG_SOCK_CONNECT4: &str = "sock_connect4";
pub const PROG_SOCK_SENDMSG4: &str = "sock_sendmsg4";
pub const PROG_SOCK_RECVMSG4: &str = "sock_recvmsg4";
pub const PROG_SOCK_GETPEERNAME4: &str = "sock_getpeername4";
pub const PROG_SOCK_CONNECT6: &str = "sock_connect6";
pub const PROG_SOCK_SENDMSG6: &str = "sock_sendmsg6";
pub const PROG_SOCK_RECVMSG6: &str = "sock_recvmsg6";
pub const PROG_SOCK_GETPEERNAME6: &str = "sock_getpeername6";

/// Reads the node's network namespace cookie on a connect by the agent, on
/// kernels without `SO_NETNS_COOKIE` (before 5.14).
pub const PROG_NETNS_PROBE: &str = "netns_probe";

/// Every TC program of the object.
pub const TC_PROGRAMS: [&str; 5] = [
    PROG_POD_INGRESS,
    PROG_POD_EGRESS,
    PROG_POD_RECEIVE,
    PROG_UPLINK_EGRESS,
    PROG_UPLINK_INGRESS,
];

/// The socket programs, in the order they are attached.
pub const SOCK_PROGRAMS: [&str; 8] = [
    PROG_SOCK_CONNECT4,
    PROG_SOCK_SENDMSG4,
    PROG_SOCK_RECVMSG4,
    PROG_SOCK_GETPEERNAME4,
    PROG_SOCK_CONNECT6,
    PROG_SOCK_SENDMSG6,
    PROG_SOCK_RECVMSG6,
    PROG_SOCK_GETPEERNAME6,
];

pub const DEFAULT_MAX_FRONTENDS: u32 = 16_384;
pub const DEFAULT_SOCK_REVNAT_ENTRIES: u32 = 65_536;
pub const DEFAULT_MAX_BACKEND_SLOTS: u32 = 65_536;
pub const DEFAULT_CT_ENTRIES: u32 = 262_144;

/// Names of the program globals (`static` in the eBPF object) that carry the
/// conntrack lifetimes in nanoseconds.
pub const GLOBAL_CT_TIMEOUT_SYN: &str = "CT_TIMEOUT_SYN";
pub const GLOBAL_CT_TIMEOUT_TCP: &str = "CT_TIMEOUT_TCP";
pub const GLOBAL_CT_TIMEOUT_CLOSE: &str = "CT_TIMEOUT_CLOSE";
pub const GLOBAL_CT_TIMEOUT_UDP: &str = "CT_TIMEOUT_UDP";
/// The program global that says whether the kernel has
/// `bpf_ktime_get_coarse_ns` (5.11).
pub const GLOBAL_COARSE_CLOCK: &str = "COARSE_CLOCK";
/// The program global that carries `BPF_F_IPV6` where the kernel has it.
pub const GLOBAL_L4_CSUM_IPV6: &str = "L4_CSUM_IPV6";
/// `BPF_F_IPV6` (include/uapi/linux/bpf.h, Linux 6.16).
pub const BPF_F_IPV6: u64 = 1 << 7;
