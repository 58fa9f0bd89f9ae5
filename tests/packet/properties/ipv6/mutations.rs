//! Mutations of IPv6 frames: cut, bits flipped, extension headers inserted,
//! next-header fields and the payload length set.

use proptest::{
    prelude::*,
    sample::{select, Index},
};

use super::chains::any_ext;
use crate::frames::{
    self, Ext, ETH_LEN, ETH_P_IPV6, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, NEXTHDR_DEST,
    NEXTHDR_FRAGMENT, NEXTHDR_HOP, NEXTHDR_ROUTING,
};

#[derive(Clone, Debug)]
pub enum Mutation {
    /// Cut the frame (never below the Ethernet and IPv6 headers).
    Truncate(Index),
    /// Flip bits of a byte of the headers.
    FlipHeader(Index, u8),
    /// Flip bits of any byte.
    FlipAnywhere(Index, u8),
    /// Insert an extension header (a fragment header, say) at a position
    /// of the chain.
    InsertExt(Index, Ext),
    /// Set a next-header field of the chain (the IPv6 header's or an
    /// extension header's).
    NextHeader(Index, u8),
    /// Set the payload length: zero, shorter (trailing bytes), longer.
    PayloadLength(Index),
}

pub(super) fn mutation() -> impl Strategy<Value = Mutation> {
    let next = prop_oneof![
        select(vec![
            NEXTHDR_HOP,
            NEXTHDR_ROUTING,
            NEXTHDR_FRAGMENT,
            NEXTHDR_DEST,
            frames::NEXTHDR_NONE,
            IPPROTO_TCP,
            IPPROTO_UDP,
            IPPROTO_ICMPV6,
        ]),
        any::<u8>(),
    ];
    prop_oneof![
        2 => any::<Index>().prop_map(Mutation::Truncate),
        4 => (any::<Index>(), 1..=255u8).prop_map(|(i, m)| Mutation::FlipHeader(i, m)),
        1 => (any::<Index>(), 1..=255u8).prop_map(|(i, m)| Mutation::FlipAnywhere(i, m)),
        2 => (any::<Index>(), any_ext()).prop_map(|(i, e)| Mutation::InsertExt(i, e)),
        1 => (any::<Index>(), next).prop_map(|(i, n)| Mutation::NextHeader(i, n)),
        1 => any::<Index>().prop_map(Mutation::PayloadLength),
    ]
}

/// The next-header fields of a frame's chain as far as the frame holds
/// it, the IPv6 header's first: each field's offset and that of the header
/// it announces.
fn chain_offsets(f: &[u8]) -> Vec<(usize, usize)> {
    let mut fields = vec![(ETH_LEN + 6, ETH_LEN + 40)];
    while fields.len() < 16 {
        let (field, off) = *fields.last().unwrap();
        let len = match f[field] {
            NEXTHDR_HOP | NEXTHDR_ROUTING | NEXTHDR_DEST if off + 2 <= f.len() => {
                (usize::from(f[off + 1]) + 1) * 8
            }
            NEXTHDR_FRAGMENT => 8,
            _ => break,
        };
        if off + len > f.len() {
            break;
        }
        fields.push((off, off + len));
    }
    fields
}

/// Where the headers of a frame end: Ethernet, IPv6, the chain, the L4
/// header, and for ICMPv6 the quoted IPv6 header and 8 bytes.
fn headers_end(f: &[u8]) -> usize {
    let (field, l4) = *chain_offsets(f).last().unwrap();
    let end = match f[field] {
        IPPROTO_TCP => l4 + 20,
        IPPROTO_ICMPV6 => l4 + 8 + 40 + 8,
        _ => l4 + 8,
    };
    end.min(f.len())
}

fn add_to_payload_len(f: &mut [u8], n: usize) {
    let len = u16::from_be_bytes([f[ETH_LEN + 4], f[ETH_LEN + 5]]);
    f[ETH_LEN + 4..ETH_LEN + 6].copy_from_slice(&len.wrapping_add(n as u16).to_be_bytes());
}

pub(super) fn mutate(frame: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut f = frame.to_vec();
    for m in mutations {
        if f.len() < ETH_LEN + 40 || f[12..14] != ETH_P_IPV6.to_be_bytes() {
            // Flipped out of IPv6: only byte flips apply.
            if let Mutation::FlipAnywhere(i, mask) = m {
                let n = f.len();
                f[i.index(n)] ^= mask;
            }
            continue;
        }
        match m {
            Mutation::Truncate(i) => {
                if f.len() > ETH_LEN + 40 {
                    f.truncate(ETH_LEN + 40 + i.index(f.len() - ETH_LEN - 40));
                }
            }
            Mutation::FlipHeader(i, mask) => {
                let n = headers_end(&f);
                f[i.index(n)] ^= mask;
            }
            Mutation::FlipAnywhere(i, mask) => {
                let n = f.len();
                f[i.index(n)] ^= mask;
            }
            Mutation::InsertExt(i, ext) => {
                let (field, start) = *i.get(&chain_offsets(&f));
                let bytes = ext.bytes(f[field]);
                f[field] = ext.code();
                f.splice(start..start, bytes.iter().copied());
                add_to_payload_len(&mut f, bytes.len());
            }
            Mutation::NextHeader(i, next) => {
                let (field, _) = *i.get(&chain_offsets(&f));
                f[field] = *next;
            }
            Mutation::PayloadLength(i) => {
                let len = i.index(f.len() - ETH_LEN - 40 + 9) as u16;
                f[ETH_LEN + 4..ETH_LEN + 6].copy_from_slice(&len.to_be_bytes());
            }
        }
    }
    f
}
