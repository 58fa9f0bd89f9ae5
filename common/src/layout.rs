//! The version of the shared types' layout, which a pinned datapath
//! carries (the `LAYOUT` map): an agent never adopts a datapath of a newer
//! layout than its own. Any change to a `#[repr(C)]` type here bumps it;
//! the test below fails until it is bumped and the new fingerprint recorded.
//! A field is only ever added at the end of a pinned value, and the size
//! the value had is listed in the agent's `migrate::EARLIER_VALUES`, so
//! that the next agent converts the pinned entries rather than dropping
//! them.

/// Bumped by any change to the size or the field offsets of a shared type.
pub const LAYOUT_VERSION: u32 = 3;

#[cfg(test)]
mod tests {
    extern crate std;
    use core::mem::{offset_of, size_of};
    use std::{format, string::String};

    use crate::*;

    /// Sizes and field offsets of every shared type, as one line.
    fn layout() -> String {
        macro_rules! ty {
            ($t:ty { $($f:ident),* }) => {
                format!("{}={}[{}] ", stringify!($t), size_of::<$t>(),
                    [$(offset_of!($t, $f)),*].map(|o| format!("{o}")).join(","))
            };
        }
        [
            ty!(FrontendKeyV4 { addr, port, proto }),
            ty!(FrontendKeyV6 { addr, port, proto }),
            ty!(Frontend { id, slots, flags }),
            ty!(BackendKey { frontend_id, slot }),
            ty!(BackendV4 { addr, port }),
            ty!(BackendV6 { addr, port }),
            ty!(MemberKeyV4 { frontend_id, addr }),
            ty!(MemberKeyV6 { frontend_id, addr }),
            ty!(CtKeyV4 {
                saddr,
                daddr,
                sport,
                dport,
                proto
            }),
            ty!(CtKeyV6 {
                saddr,
                daddr,
                sport,
                dport,
                proto
            }),
            ty!(CtEntryV4 {
                nat,
                created_ns,
                last_seen_ns,
                frontend_id,
                dir,
                origin,
                seen
            }),
            ty!(CtEntryV6 {
                nat,
                created_ns,
                last_seen_ns,
                frontend_id,
                dir,
                origin,
                seen
            }),
            ty!(NodeConfig {
                uplink_ifindex,
                uplink_mac,
                sock_scope,
                host_netns_cookie
            }),
            ty!(SockKeyV4 { addr, port, cookie }),
            ty!(SockKeyV6 { addr, port, cookie }),
            ty!(SockNatV4 { addr, port }),
            ty!(SockNatV6 { addr, port }),
            ty!(FrontendStats {
                packets,
                bytes,
                flows,
                sock_connects,
                sock_datagrams
            }),
            ty!(Event {
                ts_ns,
                client,
                frontend,
                backend,
                frontend_id,
                ifindex,
                pid,
                client_port,
                frontend_port,
                backend_port,
                kind,
                hook,
                detail,
                proto,
                family
            }),
            ty!(MonitorConfig {
                kinds,
                filters,
                frontend_id,
                client_family,
                client
            }),
            format!("counters={}", GLOBAL_COUNTERS),
        ]
        .concat()
    }

    #[test]
    fn a_layout_change_bumps_the_version() {
        // FNV-1a: a stable fingerprint with no dependency.
        let fingerprint = layout().bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        assert_eq!(
            (LAYOUT_VERSION, fingerprint),
            (3, 7_884_536_175_198_297_982),
            "the shared types changed ({}): bump LAYOUT_VERSION and record both here",
            layout()
        );
    }
}
