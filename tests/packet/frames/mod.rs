//! Frame builders: Ethernet, IPv4 (with options, ipv4.rs) or IPv6 (with
//! extension headers, ipv6.rs), then TCP, UDP, ICMP or ICMPv6, with every
//! checksum computed here (RFC 1071; the IPv6 pseudo-header of RFC 8200
//! section 8.1), so that a frame is valid unless a test breaks it on purpose.
//! The Ethernet and upper-layer parts are shared; `IpHeader` is what a
//! family adds.

mod frame;
mod ipv4;
mod ipv6;

pub use frame::*;
pub use ipv4::*;
pub use ipv6::*;
