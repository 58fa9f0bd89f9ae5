//! The socket-level path: cgroup hooks that translate at `connect` and
//! `sendmsg` for the node's own processes (the kubelet, containerd,
//! hostNetwork pods), whose packets never cross a pod's veth, from the same
//! frontend and backend maps as the TC path. A socket translated here sends
//! to the backend itself, so TC never sees its frontend: nothing is
//! translated twice.

use aya_ebpf::{
    helpers::{bpf_get_netns_cookie, bpf_get_socket_cookie},
    programs::SockAddrContext,
    EbpfContext as _,
};
use hairpin_common::{SockKeyV4, SockNatV4, SockScope, IPPROTO_TCP, IPPROTO_UDP};

use crate::{
    maps::{account_sock, NODE, SOCK_REVNAT_V4},
    nat::{backend_at, frontend_of, is_frontend_addr},
};

/// What the hook counts when it translates.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Connect,
    Datagram,
}

#[inline(always)]
fn cookie(ctx: &SockAddrContext) -> u64 {
    // SAFETY: sock_addr programs may call this helper with their context.
    unsafe { bpf_get_socket_cookie(ctx.as_ptr()) }
}

/// Whether the socket is one the socket-level path serves.
#[inline(always)]
fn in_scope(ctx: &SockAddrContext) -> bool {
    let Some(node) = NODE.get(0) else {
        return false;
    };
    if node.sock_scope == SockScope::All as u8 {
        return true;
    }
    // SAFETY: sock_addr programs may call this helper with their context.
    node.sock_scope == SockScope::Host as u8
        && unsafe { bpf_get_netns_cookie(ctx.as_ptr()) } == node.host_netns_cookie
}

/// `connect` and `sendmsg`: a destination that is a frontend becomes one of
/// its backends, chosen by the socket (so that an unconnected UDP socket
/// keeps talking to one backend), and the socket remembers the frontend.
/// Always allows the call: hairpin translates, it never refuses.
#[inline(always)]
pub fn to_backend(ctx: &SockAddrContext, call: Call) -> i32 {
    // SAFETY: the context points at the hook's `bpf_sock_addr`.
    let sa = unsafe { &mut *ctx.sock_addr };
    let proto = sa.protocol as u8;
    if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
        || !is_frontend_addr(sa.user_ip4)
        || !in_scope(ctx)
    {
        return 1;
    }
    let fe_addr = sa.user_ip4;
    let fe_port = sa.user_port as u16;
    let Some(fe) = frontend_of(fe_addr, fe_port, proto) else {
        return 1;
    };
    let cookie = cookie(ctx);
    let Some(be) = backend_at(&fe, (cookie ^ (cookie >> 32)) as u32) else {
        return 1;
    };
    let key = SockKeyV4 {
        cookie,
        addr: be.addr,
        port: be.port,
        _pad: 0,
    };
    let nat = SockNatV4 {
        addr: fe_addr,
        port: fe_port,
        _pad: 0,
    };
    // Without its reverse entry the socket would see the backend's address
    // in replies: translate only what can be translated back.
    if SOCK_REVNAT_V4.insert(key, nat, 0).is_err() {
        return 1;
    }
    sa.user_ip4 = be.addr;
    sa.user_port = u32::from(be.port);
    account_sock(fe.id, call == Call::Connect);
    1
}

/// `recvmsg` and `getpeername`: a backend's address, seen by a socket that
/// asked for a frontend, is reported as that frontend.
#[inline(always)]
pub fn to_frontend(ctx: &SockAddrContext) -> i32 {
    // SAFETY: the context points at the hook's `bpf_sock_addr`.
    let sa = unsafe { &mut *ctx.sock_addr };
    let key = SockKeyV4 {
        cookie: cookie(ctx),
        addr: sa.user_ip4,
        port: sa.user_port as u16,
        _pad: 0,
    };
    // SAFETY: the value is copied out at once.
    if let Some(nat) = unsafe { SOCK_REVNAT_V4.get(key) }.copied() {
        sa.user_ip4 = nat.addr;
        sa.user_port = u32::from(nat.port);
    }
    1
}
