//! The socket-level path: cgroup hooks that translate at `connect` and
//! `sendmsg` for the node's own processes (the kubelet, containerd,
//! hostNetwork pods), whose packets never cross a pod's veth, and for the
//! pods chosen for it (no per-packet work at all), from the same
//! frontend and backend maps as the TC path. A socket translated here sends
//! to the backend itself, so TC never sees its frontend: nothing is
//! translated twice.

use aya_ebpf::{
    bindings::bpf_sock_addr,
    helpers::{
        bpf_get_current_ancestor_cgroup_id, bpf_get_current_pid_tgid, bpf_get_netns_cookie,
        bpf_get_socket_cookie,
    },
    programs::SockAddrContext,
    EbpfContext as _,
};
use hairpin_common::{
    CtEntry, CtKey, EventKind, SockKey, SockNat, SockScope, EVENT_HOOK_SOCKET,
    FRONTEND_SKIP_BACKENDS, IPPROTO_TCP, IPPROTO_UDP, NETNS_COOKIE, NETNS_TGID, PROBE_MARK,
    SOCK_CGROUP_LEVELS,
};

use crate::{
    family::Family,
    maps::{account_sock, NETNS_PROBE, NODE, SOCK_CGROUPS},
    monitor,
    nat::{backend_at, frontend_of, is_frontend_addr},
};

/// What the hook counts when it translates.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Connect,
    Datagram,
}

/// A cookie as the map keys hold it.
#[inline(always)]
fn split(cookie: u64) -> [u32; 2] {
    [cookie as u32, (cookie >> 32) as u32]
}

#[inline(always)]
fn cookie(ctx: &SockAddrContext) -> u64 {
    // SAFETY: sock_addr programs may call this helper with their context.
    unsafe { bpf_get_socket_cookie(ctx.as_ptr()) }
}

/// Whether the socket is one the socket-level path serves: any with scope
/// `all`; with scope `host`, the node's own and those of the cgroups chosen
/// for it (the pods that take it).
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
        && (unsafe { bpf_get_netns_cookie(ctx.as_ptr()) } == node.host_netns_cookie
            || in_chosen_cgroup())
}

/// Whether the calling process is in a cgroup chosen for the socket path,
/// or below one. Only the caller's cgroup is known here (not the socket's),
/// so its ancestors are looked up from the top: ids are never reused, so a
/// match at any level is the chosen cgroup itself.
#[inline(always)]
fn in_chosen_cgroup() -> bool {
    let mut level = 1;
    while level <= SOCK_CGROUP_LEVELS {
        // SAFETY: a helper of sock_addr programs (5.7), given a level.
        let id = unsafe { bpf_get_current_ancestor_cgroup_id(level) };
        // Deeper than the caller's own cgroup.
        if id == 0 {
            return false;
        }
        // SAFETY: a read of the map's value, copied at once.
        if unsafe { SOCK_CGROUPS.get(id) }.is_some() {
            return true;
        }
        level += 1;
    }
    false
}

/// Writes the cookie of the calling socket's namespace when the caller is
/// the process the agent named; always allows the call.
#[inline(always)]
pub fn learn_netns_cookie(ctx: &SockAddrContext) -> i32 {
    let tgid = bpf_get_current_pid_tgid() >> 32;
    if NETNS_PROBE.get(NETNS_TGID) == Some(&tgid) {
        if let Some(slot) = NETNS_PROBE.get_ptr_mut(NETNS_COOKIE) {
            // SAFETY: a map slot of this array; sock_addr programs may call
            // the helper with their context.
            unsafe { *slot = bpf_get_netns_cookie(ctx.as_ptr()) };
        }
    }
    1
}

/// `connect` and `sendmsg`: a destination that is a frontend becomes one of
/// its backends, chosen by the socket (so that an unconnected UDP socket
/// keeps talking to one backend), and the socket remembers the frontend.
/// Always allows the call: a frontend that refuses without backends is
/// refused by TC, with the reset or ICMP error a closed port would send.
#[inline(always)]
pub fn to_backend<F: Family>(ctx: &SockAddrContext, call: Call) -> i32 {
    // SAFETY: the context points at the hook's `bpf_sock_addr`.
    let sa = unsafe { &mut *ctx.sock_addr };
    let proto = sa.protocol as u8;
    let fe_addr = F::user_addr(sa);
    if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
        || !is_frontend_addr(fe_addr)
        || !in_scope(ctx)
    {
        return 1;
    }
    let fe_port = sa.user_port as u16;
    let Some(fe) = frontend_of(fe_addr, fe_port, proto) else {
        return 1;
    };
    // Whether the caller is a backend shows only in its packets' source
    // address, which a socket may not have chosen yet: TC decides. So it
    // does for the doctor's probes, which TC leaves alone too.
    if fe.flags & FRONTEND_SKIP_BACKENDS != 0 || probe(sa) {
        return 1;
    }
    let cookie = cookie(ctx);
    let Some(be) = backend_at::<F>(&fe, (cookie ^ (cookie >> 32)) as u32) else {
        return 1;
    };
    let key = SockKey {
        addr: be.addr,
        port: be.port,
        _pad: 0,
        cookie: split(cookie),
    };
    let nat = SockNat {
        addr: fe_addr,
        port: fe_port,
        _pad: 0,
    };
    // Without its reverse entry the socket would see the backend's address
    // in replies: translate only what can be translated back.
    if F::sock_revnat().insert(key, nat, 0).is_err() {
        return 1;
    }
    F::set_user_addr(sa, be.addr);
    sa.user_port = u32::from(be.port);
    account_sock(fe.id, call == Call::Connect);
    let kind = match call {
        Call::Connect => EventKind::Connect,
        Call::Datagram => EventKind::Datagram,
    };
    if let Some(m) = monitor::wanted(kind) {
        emit::<F>(
            m,
            kind,
            fe.id,
            (fe_addr, fe_port),
            (be.addr, be.port),
            proto,
        );
    }
    1
}

/// Whether the socket carries the doctor's mark.
#[inline(always)]
fn probe(sa: &bpf_sock_addr) -> bool {
    // SAFETY: `sk` of a sock_addr context is the calling socket, never null.
    unsafe { (*sa.__bindgen_anon_1.sk).mark == PROBE_MARK }
}

/// Emits a translated call: its frontend, backend and process (the
/// client's address is not chosen yet at `connect`).
#[inline(always)]
fn emit<F: Family>(
    m: &hairpin_common::MonitorConfig,
    kind: EventKind,
    frontend_id: u32,
    frontend: (F, u16),
    backend: (F, u16),
    proto: u8,
) {
    let key = CtKey {
        daddr: frontend.0,
        dport: frontend.1,
        proto,
        ..CtKey::default()
    };
    let mut e = CtEntry::default();
    e.nat.daddr = backend.0;
    e.nat.dport = backend.1;
    let pid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let cause = monitor::Cause::new(kind, EVENT_HOOK_SOCKET, 0);
    monitor::emit(m, cause, &key, Some(&e), monitor::tag(frontend_id, pid));
}

/// `recvmsg` and `getpeername`: a backend's address, seen by a socket that
/// asked for a frontend, is reported as that frontend.
#[inline(always)]
pub fn to_frontend<F: Family>(ctx: &SockAddrContext) -> i32 {
    // SAFETY: the context points at the hook's `bpf_sock_addr`.
    let sa = unsafe { &mut *ctx.sock_addr };
    let key = SockKey {
        addr: F::user_addr(sa),
        port: sa.user_port as u16,
        _pad: 0,
        cookie: split(cookie(ctx)),
    };
    // SAFETY: the value is copied out at once.
    if let Some(nat) = unsafe { F::sock_revnat().get(key) }.copied() {
        F::set_user_addr(sa, nat.addr);
        sa.user_port = u32::from(nat.port);
    }
    1
}
