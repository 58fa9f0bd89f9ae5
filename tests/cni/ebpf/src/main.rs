//! The lab's stand-in for an eBPF CNI's datapath, as Cilium's host routing
//! and Calico's eBPF dataplane deliver: a packet for a pod on this node goes
//! straight into the pod with `bpf_redirect_peer`, skipping the node's stack
//! and the host-side interface's egress; a pod's packet for another node
//! leaves by the uplink without the node's stack (`bpf_redirect` after a
//! FIB lookup); while a neighbour is unresolved, `bpf_redirect_neigh`
//! delivers through the host side's egress.
//! Attached after hairpin's programs, on the uplink's ingress and on every
//! pod's host-side ingress. For the tests only: never shipped.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::{
        bpf_fib_lookup as FibParams, BPF_FIB_LKUP_RET_NO_NEIGH, BPF_FIB_LKUP_RET_SUCCESS, TC_ACT_OK,
    },
    helpers::{bpf_fib_lookup, bpf_redirect, bpf_redirect_neigh, bpf_redirect_peer},
    macros::classifier,
    programs::TcContext,
};

/// The uplink's index, set by the loader.
#[unsafe(no_mangle)]
static UPLINK_IFINDEX: u32 = 0;

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

#[classifier]
pub fn standin_uplink(ctx: TcContext) -> i32 {
    route(&ctx, At::Uplink)
}

#[classifier]
pub fn standin_pod(ctx: TcContext) -> i32 {
    route(&ctx, At::Pod)
}

/// On a netkit device's own hook for what its pod sends, which runs as the
/// pod transmits, not at a TC ingress: `bpf_redirect_peer` would drop
/// there, so a local pod is reached through its host side's egress.
#[classifier]
pub fn standin_netkit(ctx: TcContext) -> i32 {
    route(&ctx, At::Netkit)
}

/// Where a program runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum At {
    Uplink,
    Pod,
    Netkit,
}

fn uplink() -> u32 {
    // SAFETY: a global the loader sets; volatile so that it is not folded.
    unsafe { core::ptr::read_volatile(&UPLINK_IFINDEX) }
}

/// Looks the packet's destination up and delivers it as the CNI would:
/// anything else (the node's own, unresolved pods, other protocols) goes on
/// to the node's stack.
fn route(ctx: &TcContext, at: At) -> i32 {
    let from_pod = at != At::Uplink;
    // SAFETY: the context points at the program's `__sk_buff`.
    let here = unsafe { (*ctx.skb.skb).ifindex };
    // SAFETY: all-zero is a valid `bpf_fib_lookup`.
    let mut p: FibParams = unsafe { core::mem::zeroed() };
    p.ifindex = here;
    let Ok(proto) = ctx.load::<u16>(12) else {
        return TC_ACT_OK;
    };
    match u16::from_be(proto) {
        ETH_P_IP => {
            let (Ok(src), Ok(dst)) = (ctx.load::<u32>(26), ctx.load::<u32>(30)) else {
                return TC_ACT_OK;
            };
            p.family = AF_INET;
            p.__bindgen_anon_3.ipv4_src = src;
            p.__bindgen_anon_4.ipv4_dst = dst;
        }
        ETH_P_IPV6 => {
            let (Ok(src), Ok(dst)) = (ctx.load::<[u32; 4]>(22), ctx.load::<[u32; 4]>(38)) else {
                return TC_ACT_OK;
            };
            p.family = AF_INET6;
            p.__bindgen_anon_3.ipv6_src = src;
            p.__bindgen_anon_4.ipv6_dst = dst;
        }
        _ => return TC_ACT_OK,
    }
    let size = core::mem::size_of::<FibParams>() as i32;
    // SAFETY: `p` is a valid, writable parameter block of the size given.
    let rc = unsafe { bpf_fib_lookup(ctx.skb.skb.cast(), &mut p, size, 0) } as u32;
    let out = p.ifindex;
    let off_node = out == uplink();
    match rc {
        BPF_FIB_LKUP_RET_SUCCESS if out != here && (from_pod || !off_node) => {
            if ctx.store(0, &p.dmac, 0).is_err() || ctx.store(6, &p.smac, 0).is_err() {
                return TC_ACT_OK;
            }
            // SAFETY: plain helper calls.
            unsafe {
                if off_node || at == At::Netkit {
                    bpf_redirect(out, 0) as i32
                } else {
                    bpf_redirect_peer(out, 0) as i32
                }
            }
        }
        // The neighbour is unresolved: the helper resolves it, as Cilium
        // does; the node's stack would see a reply of a flow whose request
        // it never saw, which its conntrack takes for invalid.
        // SAFETY: no parameters: the helper looks the route up itself.
        BPF_FIB_LKUP_RET_NO_NEIGH if out != here && (from_pod || !off_node) => unsafe {
            bpf_redirect_neigh(out, core::ptr::null_mut(), 0, 0) as i32
        },
        _ => TC_ACT_OK,
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
