//! Every checksum of a frame, checked independently of the model with
//! etherparse.

use etherparse::{
    checksum::Sum16BitWords, Ipv4HeaderSlice, Ipv6HeaderSlice, NetSlice, SlicedPacket,
    TransportSlice,
};

use crate::frames::{IPPROTO_TCP, IPPROTO_UDP};

fn same_csum(a: u16, b: u16) -> bool {
    a == b || (a == 0 && b == 0xffff) || (a == 0xffff && b == 0)
}

/// Checks every checksum of an IPv4 or IPv6 frame with etherparse.
pub fn verify_checksums(frame: &[u8]) -> Result<(), String> {
    let p = SlicedPacket::from_ethernet(frame).map_err(|e| format!("unreadable frame: {e}"))?;
    match &p.net {
        Some(NetSlice::Ipv4(_)) => verify_checksums_v4(&p),
        Some(NetSlice::Ipv6(ip)) => {
            let h = ip.header();
            verify_transport_v6(h.source(), h.destination(), p.transport.as_ref(), "")?;
            if let Some(TransportSlice::Icmpv6(i)) = &p.transport {
                verify_quoted_v6(i.payload())?;
            }
            Ok(())
        }
        other => Err(format!("not an IP frame: {other:?}")),
    }
}

/// Checks every checksum of an IPv4 frame: the IP header's, the TCP, UDP
/// or ICMP one, and for an ICMP error the quoted IP header's and, when the
/// whole quoted packet is there, its TCP or UDP checksum.
fn verify_checksums_v4(p: &SlicedPacket<'_>) -> Result<(), String> {
    let Some(NetSlice::Ipv4(ip)) = &p.net else {
        return Err("not an IPv4 frame".into());
    };
    let h = ip.header();
    let want = h.to_header().calc_header_checksum();
    if !same_csum(h.header_checksum(), want) {
        return Err(format!(
            "IP header checksum {:#06x}, computed {want:#06x}",
            h.header_checksum()
        ));
    }
    match &p.transport {
        Some(TransportSlice::Tcp(t)) => {
            let want = t
                .calc_checksum_ipv4(h.source(), h.destination())
                .map_err(|e| e.to_string())?;
            if !same_csum(t.checksum(), want) {
                return Err(format!(
                    "TCP checksum {:#06x}, computed {want:#06x}",
                    t.checksum()
                ));
            }
        }
        Some(TransportSlice::Udp(u)) if u.checksum() != 0 => {
            let want = u
                .to_header()
                .calc_checksum_ipv4_raw(h.source(), h.destination(), u.payload())
                .map_err(|e| e.to_string())?;
            if u.checksum() != want {
                return Err(format!(
                    "UDP checksum {:#06x}, computed {want:#06x}",
                    u.checksum()
                ));
            }
        }
        Some(TransportSlice::Udp(_)) => {}
        Some(TransportSlice::Icmpv4(i)) => {
            if Sum16BitWords::new().add_slice(i.slice()).ones_complement() != 0 {
                return Err(format!("ICMP checksum {:#06x} is wrong", i.checksum()));
            }
            verify_quoted(i.payload())?;
        }
        other => return Err(format!("unexpected transport {other:?}")),
    }
    Ok(())
}

/// Checks the TCP, UDP or ICMPv6 checksum of an IPv6 packet from `src`
/// to `dst` (`what` names a quoted packet in messages). A zero UDP checksum
/// is wrong in IPv6 (RFC 8200 section 8.1).
fn verify_transport_v6(
    src: [u8; 16],
    dst: [u8; 16],
    transport: Option<&TransportSlice<'_>>,
    what: &str,
) -> Result<(), String> {
    match transport {
        Some(TransportSlice::Tcp(t)) => {
            let want = t.calc_checksum_ipv6(src, dst).map_err(|e| e.to_string())?;
            if !same_csum(t.checksum(), want) {
                return Err(format!(
                    "{what}TCP checksum {:#06x}, computed {want:#06x}",
                    t.checksum()
                ));
            }
        }
        Some(TransportSlice::Udp(u)) => {
            if u.checksum() == 0 {
                return Err(format!("{what}UDP checksum zero (none) in IPv6"));
            }
            let want = u
                .to_header()
                .calc_checksum_ipv6_raw(src, dst, u.payload())
                .map_err(|e| e.to_string())?;
            if u.checksum() != want {
                return Err(format!(
                    "{what}UDP checksum {:#06x}, computed {want:#06x}",
                    u.checksum()
                ));
            }
        }
        Some(TransportSlice::Icmpv6(i)) => {
            if !i.is_checksum_valid(src, dst) {
                return Err(format!(
                    "{what}ICMPv6 checksum {:#06x} is wrong",
                    i.checksum()
                ));
            }
        }
        other => return Err(format!("unexpected {what}transport {other:?}")),
    }
    Ok(())
}

/// Checks the TCP or UDP checksum of the packet quoted by an ICMPv6 error,
/// when all of it is there (a zero UDP checksum stands for none here).
fn verify_quoted_v6(quote: &[u8]) -> Result<(), String> {
    let Ok(h) = Ipv6HeaderSlice::from_slice(quote) else {
        // Not even the quoted IPv6 header: nothing to check.
        return Ok(());
    };
    let total = 40 + usize::from(h.payload_length());
    if quote.len() < total || h.payload_length() == 0 {
        return Ok(());
    }
    let Ok(p) = SlicedPacket::from_ip(&quote[..total]) else {
        return Ok(());
    };
    match &p.transport {
        Some(TransportSlice::Udp(u)) if u.checksum() == 0 => Ok(()),
        t @ Some(TransportSlice::Tcp(_) | TransportSlice::Udp(_)) => {
            verify_transport_v6(h.source(), h.destination(), t.as_ref(), "quoted ")
        }
        _ => Ok(()),
    }
}

/// Checks the checksums of the packet quoted by an ICMP error.
fn verify_quoted(quote: &[u8]) -> Result<(), String> {
    let Ok(h) = Ipv4HeaderSlice::from_slice(quote) else {
        // Not even the quoted IP header: nothing to check.
        return Ok(());
    };
    let want = h.to_header().calc_header_checksum();
    if !same_csum(h.header_checksum(), want) {
        return Err(format!(
            "quoted IP header checksum {:#06x}, computed {want:#06x}",
            h.header_checksum()
        ));
    }
    let total = usize::from(h.total_len());
    // Cut short, or a total length shorter than its own header (a mangled
    // quote): no transport header to check.
    if quote.len() < total || total < h.slice().len() {
        return Ok(());
    }
    let l4 = &quote[h.slice().len()..total];
    match h.protocol().0 {
        IPPROTO_TCP => {
            let t = etherparse::TcpSlice::from_slice(l4).map_err(|e| e.to_string())?;
            let want = t
                .calc_checksum_ipv4(h.source(), h.destination())
                .map_err(|e| e.to_string())?;
            if !same_csum(t.checksum(), want) {
                return Err(format!(
                    "quoted TCP checksum {:#06x}, computed {want:#06x}",
                    t.checksum()
                ));
            }
        }
        IPPROTO_UDP => {
            let u = etherparse::UdpSlice::from_slice(l4).map_err(|e| e.to_string())?;
            if u.checksum() != 0 {
                let want = u
                    .to_header()
                    .calc_checksum_ipv4_raw(h.source(), h.destination(), u.payload())
                    .map_err(|e| e.to_string())?;
                if !same_csum(u.checksum(), want) {
                    return Err(format!(
                        "quoted UDP checksum {:#06x}, computed {want:#06x}",
                        u.checksum()
                    ));
                }
            }
        }
        _ => {}
    }
    Ok(())
}
