//! The one home of address conversions: an address as the maps hold it
//! (`u32` for IPv4, `[u32; 4]` for IPv6) is its wire bytes, read in native
//! order in 4-byte groups, so that the datapath never swaps bytes.

/// The address types of the maps. Sealed: the generic keys and values are
/// laid out without implicit padding for these two, and only these.
pub trait WireAddr: Copy + Default + PartialEq + 'static + sealed::Sealed {
    /// The address as on the wire (`[u8; 4]` or `[u8; 16]`).
    type Octets: Copy;

    fn from_octets(o: Self::Octets) -> Self;
    fn octets(self) -> Self::Octets;
    /// The address at `at` in the header bytes `b`.
    fn read<const N: usize>(b: &[u8; N], at: usize) -> Self;
    /// 4 or 6.
    const FAMILY: u8;
    /// The address in the four words of an `Event` (IPv4 in the first).
    fn wide(self) -> [u32; 4];
}

impl WireAddr for u32 {
    type Octets = [u8; 4];
    const FAMILY: u8 = 4;

    #[inline(always)]
    fn wide(self) -> [u32; 4] {
        [self, 0, 0, 0]
    }

    #[inline(always)]
    fn from_octets(o: [u8; 4]) -> Self {
        u32::from_ne_bytes(o)
    }
    #[inline(always)]
    fn octets(self) -> [u8; 4] {
        self.to_ne_bytes()
    }
    #[inline(always)]
    fn read<const N: usize>(b: &[u8; N], at: usize) -> Self {
        u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }
}

impl WireAddr for [u32; 4] {
    type Octets = [u8; 16];
    const FAMILY: u8 = 6;

    #[inline(always)]
    fn wide(self) -> [u32; 4] {
        self
    }

    #[inline(always)]
    fn from_octets(o: [u8; 16]) -> Self {
        Self::read(&o, 0)
    }
    #[inline(always)]
    fn octets(self) -> [u8; 16] {
        let mut o = [0u8; 16];
        for (i, w) in self.iter().enumerate() {
            o[i * 4..i * 4 + 4].copy_from_slice(&w.to_ne_bytes());
        }
        o
    }
    #[inline(always)]
    fn read<const N: usize>(b: &[u8; N], at: usize) -> Self {
        let w = |i: usize| u32::read(b, at + i);
        [w(0), w(4), w(8), w(12)]
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for u32 {}
    impl Sealed for [u32; 4] {}
}

#[cfg(test)]
mod tests {
    use super::WireAddr;

    #[test]
    fn an_address_is_its_wire_bytes_in_native_order() {
        let v4 = [203, 0, 113, 10];
        assert_eq!(u32::from_octets(v4).octets(), v4);
        assert_eq!(u32::read(&[0, 0, 203, 0, 113, 10], 2), u32::from_octets(v4));
        let v6: [u8; 16] = core::array::from_fn(|i| i as u8 * 17);
        let a = <[u32; 4]>::from_octets(v6);
        assert_eq!(a.octets(), v6);
        assert_eq!(a[1], u32::from_ne_bytes([68, 85, 102, 119]));
    }
}
