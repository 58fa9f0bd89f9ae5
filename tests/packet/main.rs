//! Packet tests: frames run through the loaded TC programs with
//! `BPF_PROG_TEST_RUN`, checked against a reference model (model/) and,
//! for checksums, against etherparse. No network namespace is needed.
//!
//! ```text
//!   pod 10.0.9.7 ──veth──▶ pod_ingress ─┐            ┌─ uplink_egress ──▶ wire
//!                ◀──────── pod_egress ◀─┤ node stack ├─ uplink_ingress ◀── wire
//!   host 192.0.2.2 (the node itself) ───┘            └─ routes, netfilter
//! ```
//!
//! Frontends 192.168.100.10-13 lead to backend pods 10.0.1-4.x; a flow
//! opened by a pod is translated on its veth, one opened by the host on the
//! uplink; a pod that is its own backend is turned around on its veth. The
//! same frontends exist in IPv6 (families.rs), on the same loaded datapath.
//!
//! A scenario is written once over `F: Family` and runs as `v4::name` and
//! `v6::name` of its subject's module; a family's own cases (IPv4 options,
//! IPv6 extension headers, neighbour discovery...) sit beside them, under
//! their family only.

#[path = "../support/mod.rs"]
mod support;

/// Emits a subject module's tests: `v4::name` and `v6::name` for each
/// scenario `name::<F: Family>()` of `both`, and `v4::name` or `v6::name`
/// for a family's own scenario `name()`.
macro_rules! family_tests {
    (
        $(both: [$($both:ident),* $(,)?])?
        $(v4: [$($v4:ident),* $(,)?])?
        $(v6: [$($v6:ident),* $(,)?])?
    ) => {
        mod v4 {
            $($(#[test] fn $both() { super::$both::<$crate::families::V4>() })*)?
            $($(#[test] fn $v4() { super::$v4() })*)?
        }
        mod v6 {
            $($(#[test] fn $both() { super::$both::<$crate::families::V6>() })*)?
            $($(#[test] fn $v6() { super::$v6() })*)?
        }
    };
}

// Shared fixtures, below the scenarios that use them.
mod checks;
mod families;
mod fixtures;
mod frames;
mod harness;
mod model;

// Scenarios, by subject.
mod checksums;
mod collector;
mod counters;
mod events;
mod filter;
mod flows;
mod headers;
mod icmp;
mod icmp_untouched;
mod kernel;
mod malformed;
mod pressure;
mod properties;
mod refusals;
mod tcp;
mod untouched;
