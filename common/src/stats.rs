//! Counters: per frontend (`FRONTEND_STATS`) and global (`GLOBAL_STATS`).

use crate::user_pod;

/// Value of the per-CPU `FRONTEND_STATS` array, indexed by `Frontend::id`.
/// The TC path counts packets and bytes both ways and the flows it opens;
/// the socket path counts the connects and datagrams it translates.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrontendStats {
    pub packets: u64,
    pub bytes: u64,
    pub flows: u64,
    pub sock_connects: u64,
    pub sock_datagrams: u64,
}

user_pod!(FrontendStats);

/// Index into the per-CPU `GLOBAL_STATS` array of `u64`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// A new flow was not translated because conntrack refused its entries.
    CtInsertFailed = 0,
    /// An IPv4 or IPv6 packet with a bad header, a truncated one, or a
    /// fragment.
    Unparsable = 1,
    /// ICMP errors about a translated flow, translated with it.
    IcmpTranslated = 2,
    /// A translated packet could not be re-routed and went on unchanged.
    RedirectFailed = 3,
    /// A packet of a flow (or an ICMP error about one) whose rewrite failed
    /// part-way: it went on as far as it got, its checksums possibly stale.
    RewriteFailed = 4,
    /// A segment of an ended flow that could not be made a reset went on.
    ResetFailed = 5,
    /// New flows refused at a frontend without backends that asks for it:
    /// a TCP reset or an ICMP port unreachable went back to the client.
    Refused = 6,
    /// Packets from a frontend's own backend, passed untranslated because
    /// the frontend skips its backends.
    BackendSkipped = 7,
    /// Monitor events dropped because the ring buffer was full: the agent
    /// fell behind reading it.
    EventsLost = 8,
}

impl Counter {
    pub const ALL: [Counter; 9] = [
        Counter::CtInsertFailed,
        Counter::Unparsable,
        Counter::IcmpTranslated,
        Counter::RedirectFailed,
        Counter::RewriteFailed,
        Counter::ResetFailed,
        Counter::Refused,
        Counter::BackendSkipped,
        Counter::EventsLost,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Counter::CtInsertFailed => "ct_insert_failed",
            Counter::Unparsable => "unparsable",
            Counter::IcmpTranslated => "icmp_translated",
            Counter::RedirectFailed => "redirect_failed",
            Counter::RewriteFailed => "rewrite_failed",
            Counter::ResetFailed => "reset_failed",
            Counter::Refused => "refused",
            Counter::BackendSkipped => "backend_skipped",
            Counter::EventsLost => "events_lost",
        }
    }
}

pub const GLOBAL_COUNTERS: u32 = Counter::ALL.len() as u32;
