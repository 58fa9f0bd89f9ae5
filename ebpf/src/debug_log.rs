//! The datapath's debug events (aya-log; compiled out at load unless the
//! agent logs at debug).

use aya_ebpf::programs::TcContext;
use aya_log_ebpf::debug;
use hairpin_common::{CtKey, WireAddr};

/// The datapath's debug event for a new flow, per family.
pub trait Loggable: Sized {
    fn log_new_flow(ctx: &TcContext, key: &CtKey<Self>, nat: &CtKey<Self>);
}

impl Loggable for u32 {
    #[inline(always)]
    fn log_new_flow(ctx: &TcContext, key: &CtKey<u32>, nat: &CtKey<u32>) {
        debug!(
            ctx,
            "new flow {:i}:{} -> {:i}:{} to {:i}:{}",
            u32::from_be(key.saddr),
            u16::from_be(key.sport),
            u32::from_be(key.daddr),
            u16::from_be(key.dport),
            u32::from_be(nat.daddr),
            u16::from_be(nat.dport)
        );
    }
}

impl Loggable for [u32; 4] {
    #[inline(never)]
    fn log_new_flow(ctx: &TcContext, key: &CtKey<[u32; 4]>, nat: &CtKey<[u32; 4]>) {
        let bytes = |a: &[u32; 4]| a.octets();
        debug!(
            ctx,
            "new flow [{:i}]:{} -> [{:i}]:{} to [{:i}]:{}",
            bytes(&key.saddr),
            u16::from_be(key.sport),
            bytes(&key.daddr),
            u16::from_be(key.dport),
            bytes(&nat.daddr),
            u16::from_be(nat.dport)
        );
    }
}
