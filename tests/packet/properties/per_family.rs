//! What a family brings to the properties: its strategies, and the checks
//! that differ between families.

use std::fmt::Debug;

use proptest::prelude::BoxedStrategy;

use crate::{families::Family, model::Action};

/// How many cases a property runs, and the fewest frames they must check.
#[derive(Clone, Copy)]
pub struct Run {
    pub cases: u32,
    pub min_frames: u64,
}

impl Run {
    /// The run, with at most `PROPTEST_CASES` cases when that is set (the
    /// kernel matrix's emulated VMs run a few) and its frames in
    /// proportion.
    pub fn capped(&self) -> Run {
        let cap = std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|&c| c > 0);
        match cap {
            Some(c) if c < self.cases => Run {
                cases: c,
                min_frames: self.min_frames * u64::from(c) / u64::from(self.cases),
            },
            _ => *self,
        }
    }
}

/// What a family brings to the properties: its strategies, and the checks
/// that differ between families.
pub trait Properties: Family + Clone + Debug {
    /// A TCP segment or UDP datagram's fields, its IP header's among them.
    type Seg: Clone + Debug;
    /// An ICMP error about a flow's request.
    type Error: Clone + Debug;
    /// A frame of no flow.
    type Noise: Clone + Debug;
    type Mutation: Clone + Debug;

    const UNRELATED: Run;
    const TRANSLATED: Run;
    const CLIENT: Run;
    const MUTATED: Run;
    /// Whether a UDP checksum must be there (IPv6): a zero one that comes
    /// anyway is only checked to stay zero.
    const UDP_CHECKSUM_REQUIRED: bool;

    /// Pod and host addresses of clients.
    fn pod() -> BoxedStrategy<Self::Addr>;
    fn host() -> BoxedStrategy<Self::Addr>;
    fn seg() -> BoxedStrategy<Self::Seg>;
    fn error_case() -> BoxedStrategy<Self::Error>;
    fn noise() -> BoxedStrategy<Self::Noise>;
    fn mutation() -> BoxedStrategy<Self::Mutation>;

    /// A TCP segment or UDP datagram shaped by `seg`.
    fn build(proto: u8, src: Self::Sock, dst: Self::Sock, seg: &Self::Seg) -> Vec<u8>;
    /// An ICMP error toward the client about `sent`, the request as the
    /// backend received it (a frame).
    fn error(error: &Self::Error, sent: &[u8]) -> Vec<u8>;
    fn from_router(error: &Self::Error) -> bool;
    /// Checks that the error about `sent` was translated if it must be.
    fn check_error_action(error: &Self::Error, sent: &[u8], action: &Action) -> Result<(), String>;
    /// Checks the quote of a translated error about `request` (as the
    /// backend received it) from `client` to the frontend `fe`.
    fn check_quote(
        quote: &[u8],
        client: Self::Sock,
        fe: Self::Sock,
        request: &[u8],
    ) -> Result<(), String>;
    /// Checks that a translated frame kept what the family keeps.
    fn check_kept(what: &str, input: &[u8], out: &[u8]) -> Result<(), String>;
    fn noise_bytes(noise: &Self::Noise) -> Vec<u8>;
    fn mutate(frame: &[u8], mutations: &[Self::Mutation]) -> Vec<u8>;
    /// Whether a frame is UDP with a zero checksum.
    fn zero_udp_checksum(frame: &[u8]) -> bool;
}
