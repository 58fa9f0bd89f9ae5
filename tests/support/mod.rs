//! Support shared by the test suites: privilege checks and RAII guards.
#![allow(dead_code, reason = "each suite uses its own part of the support")]

pub mod apiserver;
pub mod containerd;
pub mod lab;
pub mod serviceaccount;

/// Whether privileged tests can run here. Without root they are skipped with
/// a message, unless `HAIRPIN_REQUIRE_PRIVILEGED` is set (scripts/test.sh
/// sets it), in which case a skip is a failure: CI must run them all.
pub fn privileged(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var_os("HAIRPIN_REQUIRE_PRIVILEGED").is_some() {
        panic!("{test} needs root, and HAIRPIN_REQUIRE_PRIVILEGED is set");
    }
    eprintln!("skipping test - {test} needs root (BPF, network namespaces)");
    false
}

/// Returns early from a test that needs root, when it cannot run here.
#[macro_export]
macro_rules! require_privileged {
    () => {
        if !$crate::support::privileged(module_path!()) {
            return;
        }
    };
}
