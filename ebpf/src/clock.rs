//! The datapath's clock: CLOCK_MONOTONIC, at tick resolution where the
//! kernel has `bpf_ktime_get_coarse_ns` (5.11), in full before. Lifetimes
//! are counted in seconds, and the coarse read is the cheaper one on every
//! packet.

use aya_ebpf::helpers::{bpf_ktime_get_coarse_ns, bpf_ktime_get_ns};

/// Non-zero where the kernel has the coarse clock; set by the agent at load
/// from its probe. The object's `.rodata` is frozen, so the verifier knows
/// the value and never sees the call the kernel lacks (kernel/bpf/verifier.c,
/// `opt_remove_dead_code`).
#[unsafe(no_mangle)]
static COARSE_CLOCK: u8 = 1;

/// Nanoseconds of CLOCK_MONOTONIC.
#[inline(always)]
pub fn now() -> u64 {
    // SAFETY: a plain read of a static that nothing writes at run time; the
    // helpers take no arguments.
    unsafe {
        if core::ptr::read_volatile(&COARSE_CLOCK) != 0 {
            bpf_ktime_get_coarse_ns()
        } else {
            bpf_ktime_get_ns()
        }
    }
}
