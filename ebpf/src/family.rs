//! What differs between IPv4 and IPv6 for the datapath: the maps, where
//! the addresses sit, how their change is fixed in the checksums, and the
//! route lookup. Everything else is written once over `Family`.

use aya_ebpf::{
    bindings::{bpf_fib_lookup as FibParams, bpf_sock_addr, BPF_F_PSEUDO_HDR},
    helpers::bpf_csum_diff,
    maps::{HashMap, LruHashMap, PerCpuArray},
    programs::TcContext,
};
use hairpin_common::{
    Backend, BackendKey, CtEntry, CtKey, Frontend, FrontendKey, MemberKey, SockKey, SockNat,
};

use crate::{
    maps::{
        l4_csum_ipv6, BACKENDS_V4, BACKENDS_V6, BACKEND_ADDRS_V4, BACKEND_ADDRS_V6,
        BACKEND_MEMBERS_V4, BACKEND_MEMBERS_V6, CT_V4, CT_V6, FRONTENDS_V4, FRONTENDS_V6,
        FRONTEND_ADDRS_V4, FRONTEND_ADDRS_V6, SCRATCH_V4, SCRATCH_V6, SOCK_REVNAT_V4,
        SOCK_REVNAT_V6,
    },
    parse::{IPV4_CSUM_OFF, IP_OFF},
};

/// An address family: `u32` is IPv4, `[u32; 4]` IPv6, both as on the wire.
pub trait Family: hairpin_common::WireAddr {
    /// Offsets of the source and destination addresses in the frame.
    const SRC_OFF: usize;
    const DST_OFF: usize;
    /// `AF_INET` or `AF_INET6`, for the route lookup.
    const AF: u8;

    fn frontend_addrs() -> &'static HashMap<Self, u32>;
    fn frontends() -> &'static HashMap<FrontendKey<Self>, Frontend>;
    fn backends() -> &'static HashMap<BackendKey, Backend<Self>>;
    fn backend_addrs() -> &'static HashMap<Self, u32>;
    fn backend_members() -> &'static HashMap<MemberKey<Self>, u32>;
    fn ct() -> &'static HashMap<CtKey<Self>, CtEntry<Self>>;
    /// This CPU's room for a conntrack entry (see `maps::SCRATCH_V4`).
    fn scratch() -> &'static PerCpuArray<CtEntry<Self>>;
    fn sock_revnat() -> &'static LruHashMap<SockKey<Self>, SockNat<Self>>;

    /// The address a socket hook sees (`user_ip4` or `user_ip6`).
    fn user_addr(sa: &bpf_sock_addr) -> Self;
    fn set_user_addr(sa: &mut bpf_sock_addr, addr: Self);

    /// Writes the address at `off` and fixes the checksums covering it:
    /// the IPv4 header's, and the L4 checksum at `l4` (offset, flags),
    /// whose pseudo-header holds the address.
    fn set_addr(
        ctx: &TcContext,
        off: usize,
        l4: Option<(usize, u64)>,
        old: Self,
        new: Self,
    ) -> Result<(), i64>;

    /// Fills the route lookup's addresses.
    fn fib_addrs(p: &mut FibParams, saddr: Self, daddr: Self);
}

/// The accessors of a family's maps, in the trait's order.
macro_rules! family_maps {
    ($frontend_addrs:ident, $frontends:ident, $backends:ident, $backend_addrs:ident,
     $backend_members:ident, $ct:ident, $scratch:ident, $sock_revnat:ident) => {
        fn frontend_addrs() -> &'static HashMap<Self, u32> {
            &$frontend_addrs
        }
        fn frontends() -> &'static HashMap<FrontendKey<Self>, Frontend> {
            &$frontends
        }
        fn backends() -> &'static HashMap<BackendKey, Backend<Self>> {
            &$backends
        }
        fn backend_addrs() -> &'static HashMap<Self, u32> {
            &$backend_addrs
        }
        fn backend_members() -> &'static HashMap<MemberKey<Self>, u32> {
            &$backend_members
        }
        fn ct() -> &'static HashMap<CtKey<Self>, CtEntry<Self>> {
            &$ct
        }
        fn scratch() -> &'static PerCpuArray<CtEntry<Self>> {
            &$scratch
        }
        fn sock_revnat() -> &'static LruHashMap<SockKey<Self>, SockNat<Self>> {
            &$sock_revnat
        }
    };
}

impl Family for u32 {
    const SRC_OFF: usize = IP_OFF + 12;
    const DST_OFF: usize = IP_OFF + 16;
    const AF: u8 = 2;

    family_maps!(
        FRONTEND_ADDRS_V4,
        FRONTENDS_V4,
        BACKENDS_V4,
        BACKEND_ADDRS_V4,
        BACKEND_MEMBERS_V4,
        CT_V4,
        SCRATCH_V4,
        SOCK_REVNAT_V4
    );

    #[inline(always)]
    fn user_addr(sa: &bpf_sock_addr) -> Self {
        sa.user_ip4
    }
    #[inline(always)]
    fn set_user_addr(sa: &mut bpf_sock_addr, addr: Self) {
        sa.user_ip4 = addr;
    }

    #[inline(always)]
    fn set_addr(
        ctx: &TcContext,
        off: usize,
        l4: Option<(usize, u64)>,
        old: Self,
        new: Self,
    ) -> Result<(), i64> {
        ctx.store(off, &new, 0)?;
        ctx.l3_csum_replace(IPV4_CSUM_OFF, u64::from(old), u64::from(new), 4)?;
        if let Some((csum, flags)) = l4 {
            ctx.l4_csum_replace(
                csum,
                u64::from(old),
                u64::from(new),
                flags | u64::from(BPF_F_PSEUDO_HDR) | 4,
            )?;
        }
        Ok(())
    }

    #[inline(always)]
    fn fib_addrs(p: &mut FibParams, saddr: Self, daddr: Self) {
        p.__bindgen_anon_3.ipv4_src = saddr;
        p.__bindgen_anon_4.ipv4_dst = daddr;
    }
}

impl Family for [u32; 4] {
    const SRC_OFF: usize = IP_OFF + 8;
    const DST_OFF: usize = IP_OFF + 24;
    const AF: u8 = 10;

    family_maps!(
        FRONTEND_ADDRS_V6,
        FRONTENDS_V6,
        BACKENDS_V6,
        BACKEND_ADDRS_V6,
        BACKEND_MEMBERS_V6,
        CT_V6,
        SCRATCH_V6,
        SOCK_REVNAT_V6
    );

    /// Word by word: the verifier takes `user_ip6` in 4-byte accesses.
    #[inline(always)]
    fn user_addr(sa: &bpf_sock_addr) -> Self {
        [
            sa.user_ip6[0],
            sa.user_ip6[1],
            sa.user_ip6[2],
            sa.user_ip6[3],
        ]
    }
    #[inline(always)]
    fn set_user_addr(sa: &mut bpf_sock_addr, addr: Self) {
        sa.user_ip6[0] = addr[0];
        sa.user_ip6[1] = addr[1];
        sa.user_ip6[2] = addr[2];
        sa.user_ip6[3] = addr[3];
    }

    /// IPv6 has no header checksum; the L4 one gets the 16-byte change as a
    /// difference from `bpf_csum_diff`.
    #[inline(always)]
    fn set_addr(
        ctx: &TcContext,
        off: usize,
        l4: Option<(usize, u64)>,
        old: Self,
        new: Self,
    ) -> Result<(), i64> {
        ctx.store(off, &new, 0)?;
        if let Some((csum, flags)) = l4 {
            let diff = addr6_diff(&old, &new);
            ctx.l4_csum_replace(
                csum,
                0,
                diff,
                flags | u64::from(BPF_F_PSEUDO_HDR) | l4_csum_ipv6(),
            )?;
        }
        Ok(())
    }

    #[inline(always)]
    fn fib_addrs(p: &mut FibParams, saddr: Self, daddr: Self) {
        p.__bindgen_anon_3.ipv6_src = saddr;
        p.__bindgen_anon_4.ipv6_dst = daddr;
    }
}

/// The checksum difference of an IPv6 address change, for the helpers'
/// "from 0, to the difference" form.
#[inline(always)]
pub fn addr6_diff(old: &[u32; 4], new: &[u32; 4]) -> u64 {
    let mut old = *old;
    let mut new = *new;
    // SAFETY: both buffers are 16 bytes, a multiple of 4, on the stack.
    unsafe { bpf_csum_diff(old.as_mut_ptr(), 16, new.as_mut_ptr(), 16, 0) as u32 as u64 }
}
