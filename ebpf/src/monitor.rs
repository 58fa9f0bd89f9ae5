//! Monitor events into the `EVENTS` ring buffer. A place that reports asks
//! `wanted` first: with no monitor listening that is one array read, and
//! the event is never built.

use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    programs::TcContext,
};
use hairpin_common::{
    Counter, CtDir, CtEntry, CtKey, Event, EventKind, MonitorConfig, EVENT_HOOK_SOCKET,
    MONITOR_CLIENT, MONITOR_FRONTEND,
};

use crate::{
    conntrack::Hook,
    family::Family,
    maps::{count, EVENTS, MONITOR},
};

/// The filter, when a monitor listens for `kind`.
#[inline(always)]
pub fn wanted(kind: EventKind) -> Option<&'static MonitorConfig> {
    MONITOR.get(0).filter(|m| m.kinds & kind.bit() != 0)
}

/// What an event says besides its flow: kind, hook and detail, packed in
/// one register (a BPF call takes five).
#[derive(Clone, Copy)]
pub struct Cause(u32);

/// `Cause`: the entry given with the event is not the flow's (a flow not
/// opened): only its frontend id is.
const ALONE: u32 = 1 << 24;

impl Cause {
    #[inline(always)]
    pub fn new(kind: EventKind, hook: impl Into<u8>, detail: u8) -> Self {
        Self(kind as u32 | u32::from(hook.into()) << 8 | u32::from(detail) << 16)
    }

    /// The same for a packet whose flow was not opened.
    #[inline(always)]
    pub fn alone(self) -> Self {
        Self(self.0 | ALONE)
    }
}

/// Emits a packet of tuple `key` at a TC hook with its flow's entry `e`
/// (see `Cause::alone`), when a monitor wants it; the first FIN or RST of a
/// flow only when its other direction has seen neither.
#[inline(never)]
pub fn emit_flow<F: Family>(ctx: &TcContext, cause: Cause, key: &CtKey<F>, e: &CtEntry<F>) {
    let Some(m) = MONITOR
        .get(0)
        .filter(|m| m.kinds & (1 << (cause.0 & 0xff)) != 0)
    else {
        return;
    };
    if cause.0 & 0xff == EventKind::Ended as u32 && !crate::conntrack::partner_open(e) {
        return;
    }
    let entry = (cause.0 & ALONE == 0).then_some(e);
    let tag = tag(e.frontend_id, crate::redirect::ifindex(ctx));
    emit(m, cause, key, entry, tag);
}

/// Emits the event of a packet of tuple `key`: with its flow's entry `e` when it has
/// one (the flow is told from either direction's entry), else as the
/// client's packet to a frontend. `tag` is the frontend's id and the
/// interface (or the process, on the socket path), in one register.
#[inline(never)]
pub fn emit<F: Family>(
    m: &MonitorConfig,
    cause: Cause,
    key: &CtKey<F>,
    e: Option<&CtEntry<F>>,
    tag: u64,
) {
    let frontend_id = tag as u32;
    let (client, client_port) = match e {
        Some(e) if e.dir == CtDir::Reverse as u8 => (e.nat.daddr, e.nat.dport),
        _ => (key.saddr, key.sport),
    };
    if !selects(m, frontend_id, client) {
        return;
    }
    let hook = (cause.0 >> 8) as u8;
    let Some(mut slot) = EVENTS.reserve::<Event>(0) else {
        count(Counter::EventsLost);
        return;
    };
    let (frontend, frontend_port, backend, backend_port) = match e {
        Some(e) if e.dir == CtDir::Reverse as u8 => {
            (e.nat.saddr, e.nat.sport, key.saddr, key.sport)
        }
        Some(e) => (key.daddr, key.dport, e.nat.daddr, e.nat.dport),
        None => (key.daddr, key.dport, F::default(), 0),
    };
    // Field by field into the ring's memory: an `Event` built on the stack
    // would cost its callers' paths 80 bytes of their 512.
    let p = slot.as_mut_ptr();
    // SAFETY: `p` points at the reserved, writable `Event`.
    unsafe {
        (*p).ts_ns = crate::clock::now();
        (*p).client = client.wide();
        (*p).frontend = frontend.wide();
        (*p).backend = backend.wide();
        (*p).frontend_id = frontend_id;
        let (ifindex, pid) = if hook == EVENT_HOOK_SOCKET {
            (0, (tag >> 32) as u32)
        } else {
            ((tag >> 32) as u32, 0)
        };
        (*p).ifindex = ifindex;
        (*p).pid = pid;
        (*p).client_port = client_port;
        (*p).frontend_port = frontend_port;
        (*p).backend_port = backend_port;
        (*p).kind = cause.0 as u8;
        (*p).hook = hook;
        (*p).detail = (cause.0 >> 16) as u8;
        (*p).proto = key.proto;
        (*p).family = F::FAMILY;
        (*p)._pad = 0;
    }
    slot.submit(wakeup());
}

/// Unread bytes past which an event wakes the reader: waking it for every
/// event would cost each new flow several times its translation. The
/// agent also reads on a timer (see `daemon::events`).
const WAKEUP_BYTES: u64 = 64 * 1024;

/// The submit flags: wake the reader only when much is waiting.
#[inline(always)]
fn wakeup() -> u64 {
    if EVENTS.query(u64::from(BPF_RB_AVAIL_DATA)) >= WAKEUP_BYTES {
        u64::from(BPF_RB_FORCE_WAKEUP)
    } else {
        u64::from(BPF_RB_NO_WAKEUP)
    }
}

/// Emits an ICMP error translated with `e`'s flow, from the entry alone,
/// in a frame of its own: the error's path has the deepest stack. The flow's
/// frontend is known by its id only (the agent fills it in), and a client
/// reaching itself shows as the frontend.
#[inline(never)]
pub fn emit_icmp_error<F: Family>(m: &MonitorConfig, hook: Hook, e: &CtEntry<F>, ifindex: u32) {
    let (client, client_port, frontend, frontend_port, backend, backend_port) =
        if e.dir == CtDir::Reverse as u8 {
            let n = &e.nat;
            (n.daddr, n.dport, n.saddr, n.sport, F::default(), 0)
        } else {
            let n = &e.nat;
            (n.saddr, n.sport, F::default(), 0, n.daddr, n.dport)
        };
    if !selects(m, e.frontend_id, client) {
        return;
    }
    let Some(mut slot) = EVENTS.reserve::<Event>(0) else {
        count(Counter::EventsLost);
        return;
    };
    let p = slot.as_mut_ptr();
    // SAFETY: `p` points at the reserved, writable `Event`.
    unsafe {
        (*p).ts_ns = crate::clock::now();
        (*p).client = client.wide();
        (*p).frontend = frontend.wide();
        (*p).backend = backend.wide();
        (*p).frontend_id = e.frontend_id;
        (*p).ifindex = ifindex;
        (*p).pid = 0;
        (*p).client_port = client_port;
        (*p).frontend_port = frontend_port;
        (*p).backend_port = backend_port;
        (*p).kind = EventKind::Icmp as u8;
        (*p).hook = hook as u8;
        (*p).detail = 0;
        (*p).proto = e.nat.proto;
        (*p).family = F::FAMILY;
        (*p)._pad = 0;
    }
    slot.submit(wakeup());
}

/// Whether the datapath's filters let an event of this frontend and
/// client through.
#[inline(always)]
fn selects<F: Family>(m: &MonitorConfig, frontend_id: u32, client: F) -> bool {
    (m.filters & MONITOR_FRONTEND == 0 || m.frontend_id == frontend_id)
        && (m.filters & MONITOR_CLIENT == 0
            || (m.client_family == u32::from(F::FAMILY) && m.client == client.wide()))
}

/// The tag of `emit`.
#[inline(always)]
pub fn tag(frontend_id: u32, ifindex: u32) -> u64 {
    u64::from(frontend_id) | u64::from(ifindex) << 32
}

/// Emits a packet seen at a TC hook, when a monitor wants its kind.
#[inline(always)]
pub fn emit_packet<F: Family>(
    ctx: &TcContext,
    kind: EventKind,
    hook: crate::conntrack::Hook,
    detail: u8,
    key: &CtKey<F>,
    e: Option<&CtEntry<F>>,
    frontend_id: u32,
) {
    if let Some(m) = wanted(kind) {
        let tag = tag(frontend_id, crate::redirect::ifindex(ctx));
        emit(m, Cause::new(kind, hook, detail), key, e, tag);
    }
}
