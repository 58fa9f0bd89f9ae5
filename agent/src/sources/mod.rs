//! Sources of desired state beside the file's written addresses: each
//! turns what it follows into frontends for the one reconcile.

pub mod dns;
pub mod kubernetes;
pub mod room;
