//! Monitor events: what the datapath reports through the `EVENTS` ring
//! buffer while `hairpin monitor` listens, and the filter (`MONITOR`) that
//! the agent keeps for it. With no listener the filter selects no kind, and
//! every place that would report costs one array read.

use crate::user_pod;

/// What happened. Bit `1 << kind` selects the kind in `MonitorConfig::kinds`.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A flow opened: its client, frontend and the backend chosen.
    Opened = 0,
    /// A flow ended: `detail` is an `EndReason`.
    Ended = 1,
    /// An ICMP error about a flow, translated with it.
    Icmp = 2,
    /// A new flow refused at a frontend without backends.
    Refused = 3,
    /// A packet of a frontend's flow left untranslated: `detail` is the
    /// `Counter` that counted it.
    Untranslated = 4,
    /// A packet hairpin could not parse (a bad header, a fragment).
    Malformed = 5,
    /// A packet from a frontend's own backend, passed untranslated.
    Skipped = 6,
    /// A connect translated by the socket path.
    Connect = 7,
    /// An unconnected datagram translated by the socket path.
    Datagram = 8,
}

impl EventKind {
    pub const ALL: [EventKind; 9] = [
        EventKind::Opened,
        EventKind::Ended,
        EventKind::Icmp,
        EventKind::Refused,
        EventKind::Untranslated,
        EventKind::Malformed,
        EventKind::Skipped,
        EventKind::Connect,
        EventKind::Datagram,
    ];

    pub fn from_u8(v: u8) -> Option<Self> {
        Self::ALL.get(usize::from(v)).copied()
    }

    pub fn name(self) -> &'static str {
        match self {
            EventKind::Opened => "opened",
            EventKind::Ended => "ended",
            EventKind::Icmp => "icmp",
            EventKind::Refused => "refused",
            EventKind::Untranslated => "untranslated",
            EventKind::Malformed => "malformed",
            EventKind::Skipped => "skipped",
            EventKind::Connect => "connect",
            EventKind::Datagram => "datagram",
        }
    }

    pub const fn bit(self) -> u32 {
        1 << self as u32
    }
}

/// The kinds a monitor gets unless it asks: at most a few events per flow,
/// never one per packet of a busy flow.
pub const DEFAULT_EVENT_KINDS: u32 = EventKind::Opened.bit()
    | EventKind::Ended.bit()
    | EventKind::Icmp.bit()
    | EventKind::Refused.bit()
    | EventKind::Untranslated.bit()
    | EventKind::Connect.bit();

/// Why a flow ended (`Event::detail` of `EventKind::Ended`).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// Its first FIN, either way (seen by the datapath).
    Fin = 0,
    /// Its first RST, either way (seen by the datapath).
    Rst = 1,
    /// Idle past its lifetime, collected by the agent.
    Expired = 2,
    /// Its frontend or backend was removed.
    Removed = 3,
    /// Flushed (`hairpin ct flush`).
    Flushed = 4,
    /// Ended to make room in a full conntrack table: it was not
    /// established (see the agent's `relief`).
    Pressure = 5,
}

impl EndReason {
    pub fn from_u8(v: u8) -> Option<Self> {
        [
            Self::Fin,
            Self::Rst,
            Self::Expired,
            Self::Removed,
            Self::Flushed,
        ]
        .get(usize::from(v))
        .copied()
    }

    pub fn name(self) -> &'static str {
        match self {
            EndReason::Fin => "fin",
            EndReason::Rst => "rst",
            EndReason::Expired => "expired",
            EndReason::Removed => "removed",
            EndReason::Flushed => "flushed",
            EndReason::Pressure => "pressure",
        }
    }
}

/// Where an event was seen (`Event::hook`): the TC hooks (0 to 3, and 6 for
/// a pod interface's inside), then the socket.
pub const EVENT_HOOK_SOCKET: u8 = 4;
/// `Event::hook` of the events the agent makes itself.
pub const EVENT_HOOK_AGENT: u8 = 5;

/// One event, for both families: an IPv4 address is the first word of its
/// array, the rest zero. Addresses and ports in network byte order. The
/// flow is told from its client's side whichever way the packet went; an
/// address the event does not know is zero.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Event {
    /// `bpf_ktime_get_coarse_ns` (CLOCK_MONOTONIC).
    pub ts_ns: u64,
    pub client: [u32; 4],
    pub frontend: [u32; 4],
    pub backend: [u32; 4],
    pub frontend_id: u32,
    /// The interface of the packet, for TC hooks.
    pub ifindex: u32,
    /// The calling process, for the socket path.
    pub pid: u32,
    pub client_port: u16,
    pub frontend_port: u16,
    pub backend_port: u16,
    /// `EventKind`.
    pub kind: u8,
    /// `Hook` of the datapath (0 to 3, 6), or `EVENT_HOOK_*`.
    pub hook: u8,
    /// Per kind: `EndReason`, the `Counter`, or the flow's `CtOrigin`.
    pub detail: u8,
    pub proto: u8,
    /// 4 or 6.
    pub family: u8,
    pub _pad: u8,
}

/// `MonitorConfig::filters`: match `frontend_id`.
pub const MONITOR_FRONTEND: u32 = 1 << 0;
/// `MonitorConfig::filters`: match `client` (of the family in `client_family`).
pub const MONITOR_CLIENT: u32 = 1 << 1;

/// The one entry of `MONITOR`: which events the datapath reports. The
/// agent writes it as monitors come and go; filters a monitor asks for are
/// applied here when they save work for every monitor.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MonitorConfig {
    /// Bits `EventKind::bit`; zero when no one listens.
    pub kinds: u32,
    /// `MONITOR_*` bits.
    pub filters: u32,
    pub frontend_id: u32,
    /// 4 or 6.
    pub client_family: u32,
    pub client: [u32; 4],
}

user_pod!(Event, MonitorConfig);

/// The ring buffer's size: about 6,500 events, enough for bursts between
/// the agent's reads.
pub const EVENTS_BYTES: u32 = 1 << 19;

const _: () =
    assert!(core::mem::size_of::<Event>() == 80 && core::mem::size_of::<MonitorConfig>() == 32);
