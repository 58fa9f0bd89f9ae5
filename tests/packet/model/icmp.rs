//! ICMP and ICMPv6 errors about a flow's packets, translated with it.

use std::net::{IpAddr, SocketAddr};

use super::{
    expected::{Action, CsumKind, Expected},
    packet::{
        addr6_at, addr_at, csum_update, get16, l4_csum_off, message_words, octets, put16,
        tuple_fields, Ip,
    },
    state::Model,
    tables::{Hook, Tuple},
};
use crate::frames::{
    ETH_LEN, ICMPV6_DEST_UNREACH, ICMPV6_PKT_TOOBIG, ICMPV6_TIME_EXCEED, ICMP_DEST_UNREACH,
    ICMP_TIME_EXCEEDED, IPPROTO_TCP, IPPROTO_UDP,
};

impl Model {
    pub(super) fn icmp(
        &mut self,
        hook: Hook,
        frame: &[u8],
        p: &Ip<'_>,
        untouched: Expected,
    ) -> Expected {
        let icmp_type = p.l4[0];
        if icmp_type != ICMP_DEST_UNREACH && icmp_type != ICMP_TIME_EXCEEDED {
            return untouched;
        }
        // The quoted packet: its IP header and at least its ports.
        let quote = &p.l4[8..];
        if quote.len() < 20 {
            return untouched;
        }
        let qihl = usize::from(quote[0] & 0x0f) * 4;
        let qproto = quote[9];
        if quote[0] >> 4 != 4
            || qihl < 20
            || (qproto != IPPROTO_TCP && qproto != IPPROTO_UDP)
            || quote.len() < qihl + 4
        {
            return untouched;
        }
        let quoted = Tuple::new(
            qproto,
            SocketAddr::new(IpAddr::V4(addr_at(quote, 12)), get16(quote, qihl)),
            SocketAddr::new(IpAddr::V4(addr_at(quote, 16)), get16(quote, qihl + 2)),
        );
        let key = quoted.reversed();
        let Some(entry) = self.error_entry(hook, &quoted) else {
            return untouched;
        };

        let mut out = frame.to_vec();
        let mut csums = Vec::new();
        let to = entry.to;

        // Outer header: an address that is the flow's changes like the
        // flow's; a router's address stays.
        let ip_csum = ETH_LEN + 10;
        let old_addrs = frame[ETH_LEN + 12..ETH_LEN + 20].to_vec();
        if p.src == key.src.ip() {
            out[ETH_LEN + 12..ETH_LEN + 16].copy_from_slice(&octets(to.src.ip()));
        }
        if p.dst == key.dst.ip() {
            out[ETH_LEN + 16..ETH_LEN + 20].copy_from_slice(&octets(to.dst.ip()));
        }
        let new_addrs = out[ETH_LEN + 12..ETH_LEN + 20].to_vec();
        put16(
            &mut out,
            ip_csum,
            csum_update(get16(frame, ip_csum), &old_addrs, &new_addrs),
        );
        csums.push((ip_csum, CsumKind::Ones));

        // The quoted packet becomes what the error's receiver sent.
        let q_off = p.l4_off + 8;
        let inner = to.reversed();
        let (old, new) = (tuple_fields(&quoted), tuple_fields(&inner));
        out[q_off + 12..q_off + 20].copy_from_slice(&new[..8]);
        out[q_off + qihl..q_off + qihl + 4].copy_from_slice(&new[8..]);
        let q_ip_csum = q_off + 10;
        put16(
            &mut out,
            q_ip_csum,
            csum_update(get16(frame, q_ip_csum), &old[..8], &new[..8]),
        );
        csums.push((q_ip_csum, CsumKind::Ones));
        // The quoted L4 checksum, if quoted (a zero UDP one is none).
        let q_l4_csum = q_off + qihl + l4_csum_off(qproto);
        if quote.len() >= qihl + l4_csum_off(qproto) + 2 {
            let c = get16(frame, q_l4_csum);
            if qproto == IPPROTO_TCP || c != 0 {
                put16(&mut out, q_l4_csum, csum_update(c, &old, &new));
                csums.push((q_l4_csum, CsumKind::Ones));
            }
        }

        // The ICMP checksum covers the whole message.
        let icmp_csum = p.l4_off + 2;
        let (old_msg, new_msg) = message_words(frame, &out, p);
        put16(
            &mut out,
            icmp_csum,
            csum_update(get16(frame, icmp_csum), &old_msg, &new_msg),
        );
        csums.push((icmp_csum, CsumKind::Ones));

        self.counters.icmp_translated += 1;
        let (verdict, check_macs) = self.deliver(hook, &entry, &mut out);
        Expected {
            action: Action::IcmpError { entry },
            key: None,
            verdict,
            frame: out,
            check_macs,
            csums,
        }
    }

    /// An ICMPv6 message: errors quoting an IPv6 header directly followed
    /// by the TCP or UDP header of a flow's packet are translated as ICMP
    /// ones are; everything else passes.
    pub(super) fn icmp6(
        &mut self,
        hook: Hook,
        frame: &[u8],
        p: &Ip<'_>,
        untouched: Expected,
    ) -> Expected {
        let icmp_type = p.l4[0];
        if ![ICMPV6_DEST_UNREACH, ICMPV6_PKT_TOOBIG, ICMPV6_TIME_EXCEED].contains(&icmp_type) {
            return untouched;
        }
        // The quoted packet: its IPv6 header and at least its ports.
        let quote = &p.l4[8..];
        if quote.len() < 40 + 4 {
            return untouched;
        }
        let qproto = quote[6];
        if quote[0] >> 4 != 6 || (qproto != IPPROTO_TCP && qproto != IPPROTO_UDP) {
            return untouched;
        }
        let quoted = Tuple::new(
            qproto,
            SocketAddr::new(IpAddr::V6(addr6_at(quote, 8)), get16(quote, 40)),
            SocketAddr::new(IpAddr::V6(addr6_at(quote, 24)), get16(quote, 42)),
        );
        let key = quoted.reversed();
        let Some(entry) = self.error_entry(hook, &quoted) else {
            return untouched;
        };

        let mut out = frame.to_vec();
        let mut csums = Vec::new();
        let to = entry.to;

        // Outer header: an address that is the flow's changes like the
        // flow's; a router's address stays.
        let (src_off, dst_off) = (ETH_LEN + 8, ETH_LEN + 24);
        if p.src == key.src.ip() {
            out[src_off..src_off + 16].copy_from_slice(&octets(to.src.ip()));
        }
        if p.dst == key.dst.ip() {
            out[dst_off..dst_off + 16].copy_from_slice(&octets(to.dst.ip()));
        }

        // The quoted packet becomes what the error's receiver sent.
        let q_off = p.l4_off + 8;
        let inner = to.reversed();
        let (old, new) = (tuple_fields(&quoted), tuple_fields(&inner));
        out[q_off + 8..q_off + 40].copy_from_slice(&new[..32]);
        out[q_off + 40..q_off + 44].copy_from_slice(&new[32..]);
        // The quoted L4 checksum, if quoted (a zero UDP one is none).
        let q_l4_csum = q_off + 40 + l4_csum_off(qproto);
        if quote.len() >= 40 + l4_csum_off(qproto) + 2 {
            let c = get16(frame, q_l4_csum);
            if qproto == IPPROTO_TCP || c != 0 {
                put16(&mut out, q_l4_csum, csum_update(c, &old, &new));
                csums.push((q_l4_csum, CsumKind::Ones));
            }
        }

        // The ICMPv6 checksum covers the outer addresses (pseudo-header)
        // and the whole message.
        let icmp_csum = p.l4_off + 2;
        let old_pseudo = frame[src_off..dst_off + 16].to_vec();
        let new_pseudo = out[src_off..dst_off + 16].to_vec();
        let (old_msg, new_msg) = message_words(frame, &out, p);
        put16(
            &mut out,
            icmp_csum,
            csum_update(
                get16(frame, icmp_csum),
                &[old_pseudo, old_msg].concat(),
                &[new_pseudo, new_msg].concat(),
            ),
        );
        csums.push((icmp_csum, CsumKind::Ones));

        self.counters.icmp_translated += 1;
        let (verdict, check_macs) = self.deliver(hook, &entry, &mut out);
        Expected {
            action: Action::IcmpError { entry },
            key: None,
            verdict,
            frame: out,
            check_macs,
            csums,
        }
    }
}
