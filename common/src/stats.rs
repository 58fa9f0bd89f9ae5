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
    /// An IPv4 packet with a bad header, a truncated one, or a fragment.
    Unparsable = 1,
    /// ICMP errors about a translated flow, translated with it.
    IcmpTranslated = 2,
    /// A translated packet could not be re-routed and went on unchanged.
    RedirectFailed = 3,
}

impl Counter {
    pub const ALL: [Counter; 4] = [
        Counter::CtInsertFailed,
        Counter::Unparsable,
        Counter::IcmpTranslated,
        Counter::RedirectFailed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Counter::CtInsertFailed => "ct_insert_failed",
            Counter::Unparsable => "unparsable",
            Counter::IcmpTranslated => "icmp_translated",
            Counter::RedirectFailed => "redirect_failed",
        }
    }
}

pub const GLOBAL_COUNTERS: u32 = Counter::ALL.len() as u32;
