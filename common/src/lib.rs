//! Map keys, values and constants shared by hairpin's eBPF programs and its agent.
//!
//! ABI: every type here is read by both sides from the same bytes. Fields are
//! laid out without implicit padding (padding is explicit and zero), and
//! addresses and ports are kept in network byte order, exactly as they appear
//! on the wire, so that the datapath never swaps bytes. Do not reorder fields.
//! Types carrying an address are per family (`…V4`); the address-free ones
//! (`Frontend`, `BackendKey`, counters) serve every family.
#![no_std]

pub mod addr;
pub mod conntrack;
pub mod events;
pub mod filter;
pub mod layout;
pub mod maps;
pub mod nat;
pub mod stats;

pub use addr::WireAddr;
pub use conntrack::*;
pub use events::*;
pub use filter::*;
pub use layout::LAYOUT_VERSION;
pub use maps::*;
pub use nat::*;
pub use stats::*;

/// IANA protocol numbers of the protocols hairpin translates.
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_ICMPV6: u8 = 58;

/// The socket mark of `hairpin doctor`'s probes: the datapath opens no flow
/// for a packet or a socket that carries it, so that a probe sees the node's
/// network as it is without hairpin while hairpin runs. Bits that kube-proxy
/// (0xc000), Calico (0xf0000 by default) and Cilium (0xff00) leave alone.
pub const PROBE_MARK: u32 = 0x4850_0000;

/// Implements `aya::Pod` for a generic type over every `WireAddr`.
macro_rules! user_pod_generic {
    ($($t:ident),* $(,)?) => {
        $(
            #[cfg(feature = "user")]
            // SAFETY: `#[repr(C)]`, no implicit padding for either address
            // type, every bit pattern valid.
            unsafe impl<A: $crate::WireAddr> aya::Pod for $t<A> {}
        )*
    };
}
pub(crate) use user_pod_generic;

/// Implements `aya::Pod` for the agent: every type is plain old data.
macro_rules! user_pod {
    ($($t:ty),* $(,)?) => {
        $(
            #[cfg(feature = "user")]
            // SAFETY: `#[repr(C)]`, no implicit padding, every bit pattern valid.
            unsafe impl aya::Pod for $t {}
        )*
    };
}
pub(crate) use user_pod;
