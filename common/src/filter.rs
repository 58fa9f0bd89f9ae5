//! The address filter: a bit per hash of an address, for the frontends'
//! addresses, and per hash of an address and port for the backends'
//! (every packet of a backend's side of a flow comes from the port the
//! flow was translated to), in `ADDR_FILTER`. A packet whose destination
//! and source hit no bit is not hairpin's, decided with two plain loads
//! (the verifier inlines an array's lookup) before any hash map is asked:
//! a backend's own connections and its other ports cost no lookup. A bit set for an address the maps do not hold only costs
//! the lookup the filter would have saved.

use crate::WireAddr;

/// Bits per filter: 64 words of 64.
pub const FILTER_BITS: u32 = 4096;
/// Words of one filter in `ADDR_FILTER`.
pub const FILTER_WORDS: u32 = FILTER_BITS / 64;
/// Words of both filters.
pub const FILTER_LEN: usize = 2 * FILTER_WORDS as usize;
/// `ADDR_FILTER`'s first word of the frontends' filter, and of the
/// backends'.
pub const FRONTEND_FILTER: u32 = 0;
pub const BACKEND_FILTER: u32 = FILTER_WORDS;

/// The bit of `addr`: a multiplicative hash of its words' mix.
#[inline(always)]
pub fn filter_bit<A: WireAddr>(addr: A) -> u32 {
    bit_of(mix(addr))
}

/// The bit of `addr` with `port` (as on the wire), a backend's side of a
/// flow.
#[inline(always)]
pub fn endpoint_bit<A: WireAddr>(addr: A, port: u16) -> u32 {
    bit_of(mix(addr) ^ u32::from(port).rotate_left(11))
}

#[inline(always)]
fn mix<A: WireAddr>(addr: A) -> u32 {
    let w = addr.wide();
    w[0] ^ w[1].rotate_left(7) ^ w[2].rotate_left(13) ^ w[3].rotate_left(19)
}

#[inline(always)]
fn bit_of(mixed: u32) -> u32 {
    mixed.wrapping_mul(0x9e37_79b9) >> (32 - FILTER_BITS.trailing_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_spread_over_the_bits() {
        let mut seen = [false; FILTER_BITS as usize];
        for i in 0..256u32 {
            let v4 = u32::from_octets([10, 0, (i >> 8) as u8, i as u8]);
            seen[filter_bit(v4) as usize] = true;
            let mut v6 = [0u8; 16];
            v6[0] = 0x20;
            v6[15] = i as u8;
            seen[filter_bit(<[u32; 4]>::from_octets(v6)) as usize] = true;
        }
        let used = seen.iter().filter(|b| **b).count();
        assert!(used > 400, "512 addresses on {used} bits");
        assert!(filter_bit(u32::MAX) < FILTER_BITS);
        // One address, its ports: spread too.
        let addr = u32::from_octets([10, 0, 0, 1]);
        let mut seen = [false; FILTER_BITS as usize];
        for p in 0..256u16 {
            seen[endpoint_bit(addr, (8000 + p).to_be()) as usize] = true;
        }
        let used = seen.iter().filter(|b| **b).count();
        assert!(used > 200, "256 ports on {used} bits");
    }
}
