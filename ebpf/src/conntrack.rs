//! Conntrack: which hook owns which packets, the lookup of a flow's entry in
//! either direction, and the creation of both entries of a new flow.

use aya_ebpf::programs::TcContext;
use hairpin_common::{
    ct_lifetime, Backend, CtDir, CtEntry, CtKey, CtOrigin, Frontend, CT_REFRESH_NS,
    FRONTEND_REFUSE, FRONTEND_SKIP_BACKENDS, IPPROTO_TCP, IPPROTO_UDP, NS_PER_SEC, PROBE_MARK,
    SEEN_ACK, SEEN_ENDED, SEEN_FIN, SEEN_REPLY, SEEN_RST, SEEN_SYN,
};

use crate::{
    clock::now,
    family::Family,
    maps::timeouts,
    parse::{TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN},
};

/// Where a program is attached; as u8, an event's `hook`.
#[repr(u8)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// A pod veth's ingress on the node side: what the pod sends.
    PodIngress = 0,
    /// A pod veth's egress on the node side: what the pod receives.
    PodEgress = 1,
    /// The uplink's egress, after the node's netfilter.
    UplinkEgress = 2,
    /// The uplink's ingress, before the node's netfilter.
    UplinkIngress = 3,
    /// A pod interface's ingress inside the pod's namespace: what the pod
    /// receives, however it was delivered. (4 and 5 are the socket's and
    /// the agent's event hooks.)
    PodReceive = 6,
}

impl From<Hook> for u8 {
    fn from(h: Hook) -> u8 {
        h as u8
    }
}

impl Hook {
    /// Whether packets of a flow of `origin` travelling `dir` are translated
    /// here. Each packet is translated at exactly one hook, chosen so that
    /// the node's netfilter sees each flow one way only (see docs/datapath.md).
    #[inline(always)]
    pub fn owns(self, dir: CtDir, origin: u8) -> bool {
        let Some(origin) = CtOrigin::from_u8(origin) else {
            return false;
        };
        matches!(
            (self, dir, origin),
            (
                Hook::PodIngress,
                CtDir::Forward,
                CtOrigin::Pod | CtOrigin::Loop
            ) | (
                Hook::PodIngress,
                CtDir::Reverse,
                CtOrigin::Host | CtOrigin::Loop
            ) | (
                Hook::PodEgress | Hook::PodReceive,
                CtDir::Reverse,
                CtOrigin::Pod
            ) | (Hook::UplinkEgress, CtDir::Forward, CtOrigin::Host)
                | (Hook::UplinkIngress, CtDir::Reverse, CtOrigin::Host)
        )
    }

    /// The origin of a new flow opened at this hook, if flows open here.
    #[inline(always)]
    fn new_origin<F: Family>(self, client: F, backend: F) -> Option<CtOrigin> {
        match self {
            Hook::PodIngress if client == backend => Some(CtOrigin::Loop),
            Hook::PodIngress => Some(CtOrigin::Pod),
            Hook::UplinkEgress => Some(CtOrigin::Host),
            Hook::PodEgress | Hook::UplinkIngress | Hook::PodReceive => None,
        }
    }
}

#[inline(always)]
fn seen_flags(proto: u8, tcp_flags: u8) -> u8 {
    if proto != IPPROTO_TCP {
        return 0;
    }
    let mut seen = 0;
    if tcp_flags & TCP_SYN != 0 {
        seen |= SEEN_SYN;
    }
    if tcp_flags & TCP_ACK != 0 {
        seen |= SEEN_ACK;
    }
    if tcp_flags & TCP_FIN != 0 {
        seen |= SEEN_FIN;
    }
    if tcp_flags & TCP_RST != 0 {
        seen |= SEEN_RST;
    }
    seen
}

/// Whether `seen` brings an entry its first FIN or RST.
#[inline(always)]
fn closes<F>(e: &CtEntry<F>, seen: u8) -> bool {
    seen & (SEEN_FIN | SEEN_RST) != 0 && e.seen & (SEEN_FIN | SEEN_RST) == 0
}

/// Records a packet on its entry. Flags are written only when they add
/// something and the time at most once per `CT_REFRESH_NS`, so that an
/// established flow on several CPUs does not bounce the entry's cache line.
#[inline(always)]
fn touch<F>(e: &mut CtEntry<F>, seen: u8, now: u64) {
    if e.seen | seen != e.seen {
        e.seen |= seen;
    }
    if now.wrapping_sub(e.last_seen_ns) > CT_REFRESH_NS {
        e.last_seen_ns = now;
    }
}

/// What became of a packet to a frontend.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Forward {
    /// Its flow's entry, found.
    Known,
    /// Its flow's entry, found, and this packet its first FIN or RST.
    Closing,
    /// A new flow, opened.
    Opened,
    /// A new flow at a frontend without backends that refuses it.
    Refuse,
    /// A new flow from one of the frontend's backends, which it skips.
    Skipped,
    /// A new flow whose entries conntrack refused.
    InsertFailed,
}

/// The forward entry of a packet to a frontend, opening the flow when it
/// has none, or when its entry is over: expired, or a new connection (a
/// bare SYN) on a port whose last connection got past its handshake.
/// Writes the entry to `out` (for a flow not opened, its frontend's id
/// only), except for the doctor's probes, which open no flow. A subprogram, writing to its caller's entry
/// rather than returning one: both keep the BPF stack frames small.
#[inline(never)]
pub fn forward<F: Family>(
    ctx: &TcContext,
    key: &CtKey<F>,
    tcp_flags: u8,
    hook: Hook,
    out: &mut CtEntry<F>,
) -> Option<Forward> {
    let now = now();
    let seen = seen_flags(key.proto, tcp_flags);
    if let Some(e) = F::ct().get_ptr_mut(key) {
        // SAFETY: the map value stays valid for the program's run; racing
        // writers only write whole flags and times, which is benign.
        let e = unsafe { &mut *e };
        if e.dir != CtDir::Forward as u8 || !hook.owns(CtDir::Forward, e.origin) {
            return None;
        }
        let bare_syn = seen & (SEEN_SYN | SEEN_ACK) == SEEN_SYN;
        let expired =
            now.saturating_sub(e.last_seen_ns) >= ct_lifetime(key.proto, e.seen, &timeouts());
        // A bare SYN is a new connection when the tuple's last one got past
        // its handshake, or was ended by the agent.
        let reused = bare_syn && e.seen & (SEEN_ACK | SEEN_ENDED) != 0;
        if !expired && !reused {
            let closing = closes(e, seen);
            touch(e, seen, now);
            *out = *e;
            return Some(if closing {
                Forward::Closing
            } else {
                Forward::Known
            });
        }
    }
    if hook == Hook::UplinkEgress && crate::redirect::mark(ctx) == PROBE_MARK {
        return None;
    }
    let fe = crate::nat::frontend(key)?;
    out.frontend_id = fe.id;
    // A pod the pod hook skipped reaches the uplink from the node's address
    // when the node masquerades it: a packet routed here from another
    // interface is not the node's own.
    if fe.flags & FRONTEND_SKIP_BACKENDS != 0
        && ((hook == Hook::UplinkEgress && crate::redirect::ingress_ifindex(ctx) != 0)
            || crate::nat::is_member(&fe, key.saddr))
    {
        return Some(Forward::Skipped);
    }
    let Some(be) = crate::nat::choose_backend::<F>(&fe) else {
        let opens = key.proto == IPPROTO_UDP || seen & (SEEN_SYN | SEEN_ACK) == SEEN_SYN;
        return (fe.flags & FRONTEND_REFUSE != 0 && opens).then_some(Forward::Refuse);
    };
    match open(key, &fe, &be, seen, hook, now, out) {
        Opening::Opened => Some(Forward::Opened),
        Opening::Failed => Some(Forward::InsertFailed),
        Opening::Untranslatable => None,
    }
}

/// What became of a new flow.
enum Opening {
    Opened,
    /// Conntrack refused an entry.
    Failed,
    /// A tuple hairpin cannot translate (see `open`).
    Untranslatable,
}

/// Inserts both entries of a new flow: the reverse one first, so that a
/// reply can never find a forward entry without its partner, and removes it
/// again when the forward one cannot be inserted.
#[inline(always)]
#[expect(
    clippy::needless_borrows_for_generic_args,
    reason = "by value, the map calls would copy the entry onto the 512-byte stack"
)]
fn open<F: Family>(
    key: &CtKey<F>,
    fe: &Frontend,
    be: &Backend<F>,
    seen: u8,
    hook: Hook,
    now: u64,
    out: &mut CtEntry<F>,
) -> Opening {
    let Some(origin) = hook.new_origin(key.saddr, be.addr) else {
        return Opening::Untranslatable;
    };
    // A pod reaching itself gets the frontend's address as its source: its
    // own would make the packet a martian.
    let client = if origin == CtOrigin::Loop {
        // With its source port on the frontend's and the backend's port,
        // its reply would carry the request's own tuple, which no table
        // can tell apart from it: left untranslated.
        if key.sport == key.dport && key.sport == be.port {
            return Opening::Untranslatable;
        }
        key.daddr
    } else {
        key.saddr
    };
    let nat = CtKey {
        saddr: client,
        daddr: be.addr,
        sport: key.sport,
        dport: be.port,
        proto: key.proto,
        _pad: 0,
        _pad2: 0,
    };
    let rev_key = nat.reversed();
    // The reverse entry is built in `out`, inserted, then turned into the
    // forward one: a single entry on the stack.
    *out = CtEntry {
        nat: key.reversed(),
        created_ns: now,
        last_seen_ns: now,
        frontend_id: fe.id,
        dir: CtDir::Reverse as u8,
        origin: origin as u8,
        seen: 0,
        _pad: 0,
    };
    if F::ct().insert(&rev_key, &*out, 0).is_err() {
        return Opening::Failed;
    }
    out.nat = nat;
    out.dir = CtDir::Forward as u8;
    out.seen = seen;
    if F::ct().insert(key, &*out, 0).is_err() {
        // Ignored error: the entry was just inserted; if the agent already
        // removed it, there is nothing left to roll back.
        let _ = F::ct().remove(&rev_key);
        return Opening::Failed;
    }
    Opening::Opened
}

/// How long a translated SYN may wait in the neighbour queue: the kernel
/// gives up resolving after 3 probes a second apart (`mcast_solicit`,
/// `retrans_time_ms`), so 5 s leaves room.
const CT_REQUEUE_NS: u64 = 5 * NS_PER_SEC;

/// Whether a segment opens a connection: SYN without ACK.
#[inline(always)]
pub fn bare_syn(proto: u8, tcp_flags: u8) -> bool {
    proto == IPPROTO_TCP && tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN
}

/// A client opening a connection straight to a backend, from the port of
/// an earlier flow through a frontend to that backend: that flow's reverse
/// entry would catch the new connection's replies and rewrite them to the
/// frontend. The earlier flow is over (its client port is taken again), so
/// both its entries go. Only a flow this hook translates forward counts: a
/// pod flow's own SYN, translated on the pod's veth, passes the uplink's
/// egress addressed to the backend too. So does a host flow's own SYN when
/// `reroute` left it to the neighbour queue: a flow is over only once its
/// backend answered, or when it is older than any neighbour resolution.
#[inline(always)]
pub fn forget_stale<F: Family>(key: &CtKey<F>, hook: Hook) {
    if !crate::nat::is_backend(key.daddr, key.dport) {
        return;
    }
    let rev_key = key.reversed();
    // SAFETY: the value is copied out at once.
    let Some(e) = (unsafe { F::ct().get(rev_key) }).copied() else {
        return;
    };
    let over = e.seen != 0 || now().saturating_sub(e.created_ns) > CT_REQUEUE_NS;
    if over && e.dir == CtDir::Reverse as u8 && hook.owns(CtDir::Forward, e.origin) {
        // Ignored errors: either entry may be gone already (the agent).
        let _ = F::ct().remove(rev_key);
        let _ = F::ct().remove(e.nat.reversed());
    }
}

/// The reverse entry of a packet from a backend, if this hook owns it:
/// `Known`, or `Closing` for its first FIN or RST this way. The caller has
/// checked that the source is a backend.
#[inline(never)]
pub fn reverse<F: Family>(
    key: &CtKey<F>,
    tcp_flags: u8,
    hook: Hook,
    out: &mut CtEntry<F>,
) -> Option<Forward> {
    let e = F::ct().get_ptr_mut(key)?;
    // SAFETY: as in `forward`.
    let e = unsafe { &mut *e };
    if e.dir != CtDir::Reverse as u8 || !hook.owns(CtDir::Reverse, e.origin) {
        return None;
    }
    let seen = seen_flags(key.proto, tcp_flags);
    let closing = closes(e, seen);
    touch(e, seen | SEEN_REPLY, now());
    *out = *e;
    Some(if closing {
        Forward::Closing
    } else {
        Forward::Known
    })
}

/// Whether the other entry of `e`'s flow has not seen a FIN or RST: the
/// flow's first one is reported once, whichever way it went. A frame of
/// its own for the partner's key.
#[inline(never)]
pub fn partner_open<F: Family>(e: &CtEntry<F>) -> bool {
    // SAFETY: the value is read at once.
    unsafe { F::ct().get(e.nat.reversed()) }.is_none_or(|p| p.seen & (SEEN_FIN | SEEN_RST) == 0)
}

/// The entry of a packet quoted by an ICMP error travelling the other way,
/// if this hook owns packets of that entry's direction: for an error sent
/// toward the client the quoted packet went to the backend, and the reverse
/// entry applies; for an error sent toward the backend, the forward one.
/// The entry is read in place: a copy would take 64 bytes of the error
/// path's stack, the deepest, and the fields read (the translation, the
/// direction, the origin) never change after the entry is made.
#[inline(always)]
pub fn quoted<F: Family>(key: &CtKey<F>, hook: Hook) -> Option<&'static CtEntry<F>> {
    // SAFETY: a map value stays valid for the program's run (RCU).
    let e = unsafe { F::ct().get(key) }?;
    let dir = if e.dir == CtDir::Forward as u8 {
        CtDir::Forward
    } else {
        CtDir::Reverse
    };
    hook.owns(dir, e.origin).then_some(e)
}
