//! Mutations of IPv4 frames: cut, bits flipped in the headers or anywhere,
//! made fragments, their total length shortened.

use proptest::{prelude::*, sample::Index};

use crate::frames::{self, read, ETH_LEN, IPPROTO_TCP, IPPROTO_UDP, IP_DF, IP_MF};

#[derive(Clone, Debug)]
pub enum Mutation {
    /// Cut the frame (never below the Ethernet header).
    Truncate(Index),
    /// Flip bits of a byte of the headers.
    FlipHeader(Index, u8),
    /// Flip bits of any byte.
    FlipAnywhere(Index, u8),
    /// Make it a fragment, with the IP header checksum fixed or not.
    Fragment { mf: bool, offset: u16, fix: bool },
    /// Shorten the IP total length, leaving trailing bytes.
    ShortenTotalLength(Index),
}

pub(super) fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => any::<Index>().prop_map(Mutation::Truncate),
        4 => (any::<Index>(), 1..=255u8).prop_map(|(i, m)| Mutation::FlipHeader(i, m)),
        1 => (any::<Index>(), 1..=255u8).prop_map(|(i, m)| Mutation::FlipAnywhere(i, m)),
        1 => (any::<bool>(), 0u16..0x2000, any::<bool>())
            .prop_map(|(mf, offset, fix)| Mutation::Fragment { mf, offset: if mf { offset } else { offset.max(1) }, fix }),
        1 => any::<Index>().prop_map(Mutation::ShortenTotalLength),
    ]
}

/// Where the headers of a valid frame end: Ethernet, IP, the L4 header,
/// and for ICMP the quoted IP header and 8 bytes.
fn headers_end(frame: &[u8]) -> usize {
    let ihl = read::ihl(frame);
    let l4 = ETH_LEN + ihl;
    let end = match frame[ETH_LEN + 9] {
        IPPROTO_TCP => l4 + 20,
        IPPROTO_UDP => l4 + 8,
        _ if frame.len() > l4 + 8 => l4 + 8 + usize::from(frame[l4 + 8] & 0x0f) * 4 + 8,
        _ => l4 + 8,
    };
    end.min(frame.len())
}

fn refresh_ip_checksum(frame: &mut [u8]) {
    let ihl = read::ihl(frame).max(20);
    if frame.len() < ETH_LEN + ihl {
        return;
    }
    frame[ETH_LEN + 10..ETH_LEN + 12].fill(0);
    let c = frames::internet_checksum(&[&frame[ETH_LEN..ETH_LEN + ihl]]);
    frame[ETH_LEN + 10..ETH_LEN + 12].copy_from_slice(&c.to_be_bytes());
}

pub(super) fn mutate(frame: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let headers = headers_end(frame);
    let mut f = frame.to_vec();
    for m in mutations {
        match m {
            // Not below an IPv4 header: the kernel would not run the frame.
            Mutation::Truncate(i) if f.len() > ETH_LEN + 20 => {
                f.truncate(ETH_LEN + 20 + i.index(f.len() - ETH_LEN - 20));
            }
            Mutation::Truncate(_) => {}
            Mutation::FlipHeader(i, mask) => {
                let n = headers.min(f.len());
                f[i.index(n)] ^= mask;
            }
            Mutation::FlipAnywhere(i, mask) => {
                let n = f.len();
                f[i.index(n)] ^= mask;
            }
            Mutation::Fragment { mf, offset, fix } if f.len() >= ETH_LEN + 20 => {
                let frag = u16::from_be_bytes([f[ETH_LEN + 6], f[ETH_LEN + 7]]) & IP_DF;
                let frag = frag | if *mf { IP_MF } else { 0 } | offset;
                f[ETH_LEN + 6..ETH_LEN + 8].copy_from_slice(&frag.to_be_bytes());
                if *fix {
                    refresh_ip_checksum(&mut f);
                }
            }
            Mutation::Fragment { .. } => {}
            Mutation::ShortenTotalLength(i) if f.len() >= ETH_LEN + 20 => {
                let total = u16::from_be_bytes([f[ETH_LEN + 2], f[ETH_LEN + 3]]);
                let shorter = i.index(usize::from(total) + 1) as u16;
                f[ETH_LEN + 2..ETH_LEN + 4].copy_from_slice(&shorter.to_be_bytes());
                refresh_ip_checksum(&mut f);
            }
            Mutation::ShortenTotalLength(_) => {}
        }
    }
    f
}
