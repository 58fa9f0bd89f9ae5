//! Monitor events into the `EVENTS` ring buffer. A place that reports asks
//! `wanted` first: with no monitor listening that is one array read, and
//! the event is never built.

use aya_ebpf::helpers::bpf_ktime_get_coarse_ns;
use hairpin_common::{
    Counter, CtDir, CtEntry, CtKey, Event, EventKind, MonitorConfig, EVENT_HOOK_SOCKET,
    MONITOR_CLIENT, MONITOR_FRONTEND,
};

use crate::{
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

impl Cause {
    #[inline(always)]
    pub fn new(kind: EventKind, hook: u8, detail: u8) -> Self {
        Self(kind as u32 | u32::from(hook) << 8 | u32::from(detail) << 16)
    }
}

/// Reports a packet of tuple `key`: with its flow's entry `e` when it has
/// one (the flow is told from either direction's entry), else as the
/// client's packet to a frontend. `tag` is the frontend's id and the
/// interface (or the process, on the socket path), in one register.
#[inline(never)]
pub fn report<F: Family>(
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
    if m.filters & MONITOR_FRONTEND != 0 && m.frontend_id != frontend_id {
        return;
    }
    if m.filters & MONITOR_CLIENT != 0
        && (m.client_family != u32::from(F::FAMILY) || m.client != client.wide())
    {
        return;
    }
    let hook = (cause.0 >> 8) as u8;
    let Some(mut slot) = EVENTS.reserve::<Event>(0) else {
        count(Counter::EventsLost);
        return;
    };
    let (frontend, frontend_port, backend, backend_port) = match e {
        Some(e) if e.dir == CtDir::Reverse as u8 => (e.nat.saddr, e.nat.sport, key.saddr, key.sport),
        Some(e) => (key.daddr, key.dport, e.nat.daddr, e.nat.dport),
        None => (key.daddr, key.dport, F::default(), 0),
    };
    slot.write(Event {
        // SAFETY: helper without arguments.
        ts_ns: unsafe { bpf_ktime_get_coarse_ns() },
        client: client.wide(),
        frontend: frontend.wide(),
        backend: backend.wide(),
        frontend_id,
        ifindex: if hook == EVENT_HOOK_SOCKET { 0 } else { (tag >> 32) as u32 },
        pid: if hook == EVENT_HOOK_SOCKET { (tag >> 32) as u32 } else { 0 },
        client_port,
        frontend_port,
        backend_port,
        kind: cause.0 as u8,
        hook,
        detail: (cause.0 >> 16) as u8,
        proto: key.proto,
        family: F::FAMILY,
        _pad: 0,
    });
    slot.submit(0);
}

/// The tag of `report`.
#[inline(always)]
pub fn tag(frontend_id: u32, ifindex: u32) -> u64 {
    u64::from(frontend_id) | u64::from(ifindex) << 32
}

/// Reports a packet seen at a TC hook, when a monitor wants its kind.
#[inline(always)]
pub fn note<F: Family>(
    ctx: &aya_ebpf::programs::TcContext,
    kind: EventKind,
    hook: crate::conntrack::Hook,
    detail: u8,
    key: &CtKey<F>,
    e: Option<&CtEntry<F>>,
    frontend_id: u32,
) {
    if let Some(m) = wanted(kind) {
        let tag = tag(frontend_id, crate::redirect::ifindex(ctx));
        report(m, Cause::new(kind, hook as u8, detail), key, e, tag);
    }
}
