//! ICMP errors about a translated flow: the outer addresses and the quoted
//! packet are translated together, so that a client gets ECONNREFUSED from a
//! closed backend port and path-MTU discovery keeps working. The quote's
//! parsing and the port fixups are shared (`quote`); each family's header
//! layout and checksums are its own (`v4`, `v6`).

mod quote;
mod v4;
mod v6;

pub use quote::IcmpFamily;
