//! The maps and globals the programs share with the agent. Sizes here are
//! defaults: the agent resizes the maps before load.

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, RingBuf},
};
use hairpin_common::{
    BackendKey, BackendV4, BackendV6, CtEntryV4, CtEntryV6, CtKeyV4, CtKeyV6, Frontend,
    FrontendKeyV4, FrontendKeyV6, FrontendStats, MemberKeyV4, MemberKeyV6, MonitorConfig,
    NodeConfig, SockKeyV4, SockKeyV6, SockNatV4, SockNatV6, CT_TIMEOUT_CLOSE_NS, CT_TIMEOUT_SYN_NS,
    CT_TIMEOUT_TCP_NS, CT_TIMEOUT_UDP_NS, DEFAULT_CT_ENTRIES, DEFAULT_MAX_BACKEND_SLOTS,
    DEFAULT_MAX_FRONTENDS, DEFAULT_SOCK_REVNAT_ENTRIES, EVENTS_BYTES, FILTER_LEN, GLOBAL_COUNTERS,
    SOCK_CGROUPS_MAX,
};

#[map]
pub static FRONTENDS_V4: HashMap<FrontendKeyV4, Frontend> =
    HashMap::with_max_entries(DEFAULT_MAX_FRONTENDS, 0);

#[map]
pub static FRONTEND_ADDRS_V4: HashMap<u32, u32> =
    HashMap::with_max_entries(DEFAULT_MAX_FRONTENDS, 0);

#[map]
pub static BACKENDS_V4: HashMap<BackendKey, BackendV4> =
    HashMap::with_max_entries(DEFAULT_MAX_BACKEND_SLOTS, 0);

#[map]
pub static BACKEND_ADDRS_V4: HashMap<u32, u32> =
    HashMap::with_max_entries(DEFAULT_MAX_BACKEND_SLOTS, 0);

#[map]
pub static BACKEND_MEMBERS_V4: HashMap<MemberKeyV4, u32> =
    HashMap::with_max_entries(DEFAULT_MAX_BACKEND_SLOTS, 0);

/// A plain hash, not an LRU: a full table refuses new flows (counted), and
/// never evicts a running one; the agent makes room under pressure by
/// ending flows that are not established (`gc::relieve`).
#[map]
pub static CT_V4: HashMap<CtKeyV4, CtEntryV4> = HashMap::with_max_entries(DEFAULT_CT_ENTRIES, 0);

/// Each CPU's room for the conntrack entry of the packet at hand (`flow`):
/// on the stack it would take 64 of the 512 bytes the deepest chain of
/// calls shares, and kernels before 6.8 round every frame of that chain up
/// to 32 bytes (kernel/bpf/verifier.c, `round_up_stack_depth`). A program
/// runs to its end on its CPU, so no other packet's entry comes between.
#[map]
pub static SCRATCH_V4: PerCpuArray<CtEntryV4> = PerCpuArray::with_max_entries(1, 0);

#[map]
pub static FRONTEND_STATS: PerCpuArray<FrontendStats> =
    PerCpuArray::with_max_entries(DEFAULT_MAX_FRONTENDS, 0);

#[map]
pub static GLOBAL_STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(GLOBAL_COUNTERS, 0);

#[map]
pub static NODE: Array<NodeConfig> = Array::with_max_entries(1, 0);

/// The layout version of this datapath's maps, written by the agent; read
/// by no program, only by the next agent (see `hairpin_common::layout`).
#[map]
pub static LAYOUT: Array<u32> = Array::with_max_entries(1, 0);

/// The frontends' and the backends' address filters
/// (`hairpin_common::filter`), in the program's global data (`.bss`, an
/// array map of one value that the agent writes whole): a word is one
/// plain load, with no key on the stack and no lookup.
#[no_mangle]
static mut ADDR_FILTER: [u64; FILTER_LEN] = [0; FILTER_LEN];

/// Whether `bit` is set in the filter that starts at word `first`.
#[inline(always)]
pub fn maybe(first: u32, bit: u32) -> bool {
    // The mask bounds the index for the verifier; `first` and `bit` keep
    // it in range already.
    let i = (first + bit / 64) as usize & (FILTER_LEN - 1);
    // SAFETY: in bounds; a volatile read, as the agent writes the words
    // while programs run (a torn word only costs or saves a lookup).
    let w =
        unsafe { core::ptr::read_volatile(core::ptr::addr_of!(ADDR_FILTER).cast::<u64>().add(i)) };
    w & (1 << (bit % 64)) != 0
}

/// Monitor events, read by the agent (see `monitor`).
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_BYTES, 0);

/// Which events the agent's monitors want; all zero when none listens.
#[map]
pub static MONITOR: Array<MonitorConfig> = Array::with_max_entries(1, 0);

/// The namespace probe's two slots: the agent's process id, written by the
/// agent, and the cookie of the namespace its connect ran in
/// (`hairpin_common::NETNS_TGID`, `NETNS_COOKIE`).
#[map]
pub static NETNS_PROBE: Array<u64> = Array::with_max_entries(2, 0);

/// The cgroups chosen for the socket path beside the node's own processes
/// (`hairpin_common::SOCK_CGROUPS`).
#[map]
pub static SOCK_CGROUPS: HashMap<u64, u8> = HashMap::with_max_entries(SOCK_CGROUPS_MAX, 0);

// Conntrack lifetimes (ns), set by the agent at load through `EbpfLoader::set_global`.
#[unsafe(no_mangle)]
static CT_TIMEOUT_SYN: u64 = CT_TIMEOUT_SYN_NS;
#[unsafe(no_mangle)]
static CT_TIMEOUT_TCP: u64 = CT_TIMEOUT_TCP_NS;
#[unsafe(no_mangle)]
static CT_TIMEOUT_CLOSE: u64 = CT_TIMEOUT_CLOSE_NS;
#[unsafe(no_mangle)]
static CT_TIMEOUT_UDP: u64 = CT_TIMEOUT_UDP_NS;

/// `BPF_F_IPV6` where the kernel has it (6.16+), else zero; set by the
/// agent at load. It keeps `bpf_l4_csum_replace` from adjusting `skb->csum`
/// (`CHECKSUM_COMPLETE`) for an IPv6 address change as if an IPv4 header
/// checksum had absorbed it (net/core/filter.c, `bpf_l4_csum_replace`).
#[unsafe(no_mangle)]
static L4_CSUM_IPV6: u64 = 0;

#[inline(always)]
pub fn l4_csum_ipv6() -> u64 {
    // SAFETY: a plain read of a static that nothing writes at run time.
    unsafe { core::ptr::read_volatile(&L4_CSUM_IPV6) }
}

/// The lifetimes, read through volatile loads: the loader rewrites the values
/// in the object, so the compiler must not fold the defaults in.
#[inline(always)]
pub fn timeouts() -> hairpin_common::CtTimeouts {
    // SAFETY: plain reads of statics that nothing writes at run time.
    unsafe {
        hairpin_common::CtTimeouts {
            syn: core::ptr::read_volatile(&CT_TIMEOUT_SYN),
            tcp: core::ptr::read_volatile(&CT_TIMEOUT_TCP),
            close: core::ptr::read_volatile(&CT_TIMEOUT_CLOSE),
            udp: core::ptr::read_volatile(&CT_TIMEOUT_UDP),
        }
    }
}

/// Adds one to a global counter.
#[inline(always)]
pub fn count(counter: hairpin_common::Counter) {
    if let Some(v) = GLOBAL_STATS.get_ptr_mut(counter as u32) {
        // SAFETY: per-CPU slot, no concurrent writer.
        unsafe { *v += 1 };
    }
}

/// Accounts one connect (or datagram) the socket path translated.
#[inline(always)]
pub fn account_sock(frontend_id: u32, connect: bool) {
    if let Some(s) = FRONTEND_STATS.get_ptr_mut(frontend_id) {
        // SAFETY: per-CPU slot, no concurrent writer.
        unsafe {
            if connect {
                (*s).sock_connects += 1;
            } else {
                (*s).sock_datagrams += 1;
            }
        }
    }
}

/// Accounts one packet of a frontend's flow; `new_flow` when it opened one.
#[inline(always)]
pub fn account(frontend_id: u32, bytes: u32, new_flow: bool) {
    if let Some(s) = FRONTEND_STATS.get_ptr_mut(frontend_id) {
        // SAFETY: per-CPU slot, no concurrent writer.
        unsafe {
            (*s).packets += 1;
            (*s).bytes += u64::from(bytes);
            if new_flow {
                (*s).flows += 1;
            }
        }
    }
}

/// LRU: entries of closed sockets age out as new sockets need room.
#[map]
pub static SOCK_REVNAT_V4: LruHashMap<SockKeyV4, SockNatV4> =
    LruHashMap::with_max_entries(DEFAULT_SOCK_REVNAT_ENTRIES, 0);

#[map]
pub static FRONTENDS_V6: HashMap<FrontendKeyV6, Frontend> =
    HashMap::with_max_entries(DEFAULT_MAX_FRONTENDS, 0);

#[map]
pub static FRONTEND_ADDRS_V6: HashMap<[u32; 4], u32> =
    HashMap::with_max_entries(DEFAULT_MAX_FRONTENDS, 0);

#[map]
pub static BACKENDS_V6: HashMap<BackendKey, BackendV6> =
    HashMap::with_max_entries(DEFAULT_MAX_BACKEND_SLOTS, 0);

#[map]
pub static BACKEND_ADDRS_V6: HashMap<[u32; 4], u32> =
    HashMap::with_max_entries(DEFAULT_MAX_BACKEND_SLOTS, 0);

#[map]
pub static BACKEND_MEMBERS_V6: HashMap<MemberKeyV6, u32> =
    HashMap::with_max_entries(DEFAULT_MAX_BACKEND_SLOTS, 0);

#[map]
pub static SCRATCH_V6: PerCpuArray<CtEntryV6> = PerCpuArray::with_max_entries(1, 0);

#[map]
pub static CT_V6: HashMap<CtKeyV6, CtEntryV6> = HashMap::with_max_entries(DEFAULT_CT_ENTRIES, 0);

#[map]
pub static SOCK_REVNAT_V6: LruHashMap<SockKeyV6, SockNatV6> =
    LruHashMap::with_max_entries(DEFAULT_SOCK_REVNAT_ENTRIES, 0);
