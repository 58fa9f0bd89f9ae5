//! The benchmark's frames and flow keys.

use hairpin::reconcile::{addr_key, port_key};
use hairpin_common::{CtKeyV4, IPPROTO_TCP};

use crate::{Endpoint, CLIENT, OTHER, TCP_ACK, TCP_PSH, TCP_SYN};

pub fn tcp_frame(src: Endpoint, dst: Endpoint, flags: u8, payload: usize) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(src.0.octets(), dst.0.octets(), 64)
        .tcp(src.1, dst.1, 1_000, 64_240);
    let b = if flags & TCP_ACK != 0 {
        b.ack(2_000)
    } else {
        b
    };
    let b = if flags & TCP_SYN != 0 { b.syn() } else { b };
    let b = if flags & TCP_PSH != 0 { b.psh() } else { b };
    let mut v = Vec::new();
    b.write(&mut v, &vec![0x61; payload])
        .expect("writing to a Vec cannot fail");
    v
}

/// An ARP request: what the parser turns away first.
pub fn arp_frame() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend([2, 0, 0, 0, 0, 1, 0x08, 0x06]);
    // Ethernet, IPv4, hlen 6, plen 4, request; sender and target.
    f.extend([0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1]);
    f.extend(CLIENT.octets());
    f.extend([0; 6]);
    f.extend(OTHER.octets());
    f.resize(60, 0);
    f
}

pub fn key(src: Endpoint, dst: Endpoint) -> CtKeyV4 {
    CtKeyV4 {
        saddr: addr_key(src.0),
        daddr: addr_key(dst.0),
        sport: port_key(src.1),
        dport: port_key(dst.1),
        proto: IPPROTO_TCP,
        _pad: 0,
        _pad2: 0,
    }
}
