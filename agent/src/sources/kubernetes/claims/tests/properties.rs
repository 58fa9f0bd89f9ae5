//! Whatever the cluster holds, nothing refused is installed: random
//! frontend and endpoint addresses (every kind, hostile ones included)
//! through the one validation, against the file's own rules.

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::config::{unservable, unusable_backend};

/// Any IPv4 address, with the special ranges drawn often.
fn addr() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u32>().prop_map(|a| std::net::Ipv4Addr::from(a).to_string()),
        (0u8..=255).prop_map(|a| format!("203.0.113.{a}")),
        // The refused kinds, and the cluster's ranges and the node's own.
        prop::sample::select(
            REFUSED_BACKENDS
                .iter()
                .chain(&["10.96.0.10", "10.244.1.5", "192.0.2.2"])
                .copied()
                .collect::<Vec<_>>()
        )
        .prop_map(str::to_owned),
        // Not an address at all.
        "[a-z0-9:.]{0,12}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn nothing_refused_is_installed(
        frontends in prop::collection::vec(addr(), 1..6),
        endpoints in prop::collection::vec(addr(), 0..12),
    ) {
        let eps: Vec<(&str, &str, bool, bool, bool)> =
            endpoints.iter().map(|a| (a.as_str(), "n1", true, true, false)).collect();
        let mut w = World::new()
            .service(service("web", "web", json!({})))
            .slice(slice("web", "web", "IPv4", &eps));
        for (i, fe) in frontends.iter().enumerate() {
            w = w.redirect(redirect(&format!("r{i}"), fe, to_service(json!("http")), json!({})));
        }
        let d = w.run();
        let admission = Admission::new(&settings(), &w.node_addrs, &[]);
        for f in &d.frontends {
            prop_assert!(admission.admit(f.addr).is_ok(), "frontend {}", f.addr);
            prop_assert!(unservable(f.addr, &w.node_addrs, &[]).is_none());
            for b in &f.backends {
                prop_assert!(
                    unusable_backend(b.addr, f.addr, &[]).is_none(),
                    "backend {} of {}", b.addr, f.addr
                );
            }
        }
        prop_assert_eq!(d.reports.len(), frontends.len(), "one report per object");
    }
}
