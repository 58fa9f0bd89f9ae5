//! A reference model of hairpin's translation, written from its
//! specification rather than from the datapath: given the frontends, the
//! flows opened so far and a frame arriving at a hook, it says which verdict
//! and which bytes must come out, and which counters move.
//!
//! The specification, in short:
//! - A TCP or UDP packet to a frontend (address, port, protocol) that has
//!   backends opens a flow where flows open (a pod's egress, or the uplink's
//!   egress for host clients): its destination becomes a backend, and two
//!   conntrack entries remember the flow, one keyed by the packet's tuple
//!   (forward) and one by the tuple of the backend's replies (reverse).
//! - Replies get the frontend back as their source at the hook that owns
//!   them. A pod reaching itself ("loop") gets the frontend's address as its
//!   source too, and both directions are turned around on its own veth.
//! - A bare SYN on a tuple whose last connection got past the handshake
//!   opens a new flow; anything else follows the existing flow.
//! - ICMP errors quoting a packet of a flow are translated with it.
//! - Everything else, malformed IPv4 included, passes bit-identical.
//!
//! IPv6 follows the same rules over its own tables and conntrack, with
//! these differences:
//! - No header checksum: an address change shows in the L4 checksum only,
//!   through its pseudo-header (RFC 8200 section 8.1).
//! - Extension headers (hop-by-hop, routing, destination options) are
//!   walked, four at the most, to find TCP, UDP or ICMPv6 behind them; they
//!   stay as they are. Behind a fifth one the walk stops: what the fourth
//!   announces is taken as the protocol, which is none hairpin translates,
//!   so the packet passes (not counted as unparsable).
//! - A fragment header met on the walk, a jumbogram (payload length 0), an
//!   extension header beyond the payload, or a short upper-layer header make
//!   the packet unparsable: it passes, counted.
//! - ICMPv6 errors (destination unreachable, packet too big, time exceeded)
//!   quoting an IPv6 header directly followed by TCP or UDP of a flow are
//!   translated as ICMP ones are; the ICMPv6 checksum covers the outer
//!   addresses (pseudo-header) and the whole message. Everything else of
//!   ICMPv6 (neighbour discovery, echo) passes.
//! - A zero UDP checksum is not allowed in IPv6 (RFC 8200 section 8.1), but
//!   if one comes it is treated as in IPv4: it stays zero.
//!
//! Checksums are updated incrementally (RFC 1624, eqn. 3), so that an input
//! with a wrong checksum keeps exactly the same error; the comparison allows
//! the ones' complement equivalence of 0x0000 and 0xffff.

use std::{
    collections::HashMap,
    fmt::Write as _,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
};

use crate::frames::{
    ETH_LEN, ETH_P_IP, ETH_P_IPV6, ICMPV6_DEST_UNREACH, ICMPV6_PKT_TOOBIG, ICMPV6_TIME_EXCEED,
    ICMP_DEST_UNREACH, ICMP_TIME_EXCEEDED, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP,
    IP_MF, NEXTHDR_DEST, NEXTHDR_FRAGMENT, NEXTHDR_HOP, NEXTHDR_ROUTING, TCP_ACK, TCP_SYN,
};

/// Where a program runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hook {
    /// What a pod sends (its veth's ingress on the node side).
    PodIngress,
    /// What a pod receives.
    PodEgress,
    /// What the node sends out of its uplink.
    UplinkEgress,
    /// What the node receives on its uplink.
    UplinkIngress,
}

impl Hook {
    pub const ALL: [Hook; 4] = [
        Hook::PodIngress,
        Hook::PodEgress,
        Hook::UplinkEgress,
        Hook::UplinkIngress,
    ];

    pub fn program(self) -> &'static str {
        match self {
            Hook::PodIngress => hairpin_common::PROG_POD_INGRESS,
            Hook::PodEgress => hairpin_common::PROG_POD_EGRESS,
            Hook::UplinkEgress => hairpin_common::PROG_UPLINK_EGRESS,
            Hook::UplinkIngress => hairpin_common::PROG_UPLINK_INGRESS,
        }
    }
}

/// A packet's addresses, ports and protocol, of either family (IPv6
/// socket addresses have no flow information or scope).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tuple {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub proto: u8,
}

impl Tuple {
    pub fn new(proto: u8, src: impl Into<SocketAddr>, dst: impl Into<SocketAddr>) -> Self {
        Self {
            src: src.into(),
            dst: dst.into(),
            proto,
        }
    }

    pub fn reversed(&self) -> Self {
        Self {
            src: self.dst,
            dst: self.src,
            proto: self.proto,
        }
    }
}

/// A frontend of either family; its backends are of its family.
#[derive(Clone, Debug)]
pub struct FrontendCfg {
    /// Unique across both families: they share `FRONTEND_STATS`.
    pub id: u32,
    pub addr: SocketAddr,
    pub proto: u8,
    /// One backend per slot; empty: the frontend translates nothing.
    pub backends: Vec<SocketAddr>,
}

#[derive(Clone, Debug, Default)]
pub struct Tables {
    /// IPv4 and IPv6 frontends.
    pub frontends: Vec<FrontendCfg>,
    /// The uplink's interface index and MAC address, once known.
    pub uplink: Option<(u32, [u8; 6])>,
}

impl Tables {
    fn frontend(&self, t: &Tuple) -> Option<&FrontendCfg> {
        self.frontends
            .iter()
            .find(|f| f.addr == t.dst && f.proto == t.proto && !f.backends.is_empty())
    }

    pub fn is_frontend_addr(&self, addr: IpAddr) -> bool {
        self.frontends.iter().any(|f| f.addr.ip() == addr)
    }

    pub fn is_backend_addr(&self, addr: IpAddr) -> bool {
        self.frontends
            .iter()
            .any(|f| f.backends.iter().any(|b| b.ip() == addr))
    }
}

/// Where a flow was opened, which decides where its packets are translated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Pod,
    Host,
    Loop,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    Forward,
    Reverse,
}

/// Whether packets of a flow of `origin` travelling `dir` are translated at
/// `hook`: a pod's flows where the pod sends (forward) and receives
/// (replies); a host's flows on the uplink's egress, and their replies
/// wherever they enter the node (the uplink, or a local backend pod's veth);
/// a loop's on the pod's own veth both ways.
pub fn owns(hook: Hook, dir: Dir, origin: Origin) -> bool {
    match (dir, origin) {
        (Dir::Forward, Origin::Pod | Origin::Loop) => hook == Hook::PodIngress,
        (Dir::Forward, Origin::Host) => hook == Hook::UplinkEgress,
        (Dir::Reverse, Origin::Pod) => hook == Hook::PodEgress,
        (Dir::Reverse, Origin::Host) => matches!(hook, Hook::UplinkIngress | Hook::PodIngress),
        (Dir::Reverse, Origin::Loop) => hook == Hook::PodIngress,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub dir: Dir,
    pub origin: Origin,
    /// The tuple a matching packet leaves with.
    pub to: Tuple,
    pub frontend_id: u32,
    /// The client's side of the flow sent an ACK (forward entries only).
    pub ack_seen: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// `TC_ACT_UNSPEC`: the packet goes on.
    Pass,
    /// `TC_ACT_REDIRECT`.
    Redirect,
    /// Whatever the re-routing in the test's namespace gives.
    Any,
}

impl Verdict {
    pub fn admits(self, v: i32) -> bool {
        match self {
            Verdict::Pass => v == -1,
            Verdict::Redirect => v == 7,
            Verdict::Any => true,
        }
    }
}

/// How a checksum field of the expected frame compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CsumKind {
    /// 0x0000 and 0xffff are the same ones' complement number.
    Ones,
    /// A UDP checksum: zero (none) must stay exactly zero; otherwise it must
    /// not be zero, and 0xffff stands for a computed zero.
    Udp,
}

/// What happened to a frame, for the tests and the messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Passed on bit-identical.
    Untouched,
    /// A TCP or UDP packet of a flow, translated with `entry`.
    Flow { entry: Entry, new_flow: bool },
    /// An ICMP error about a flow, translated with `entry`.
    IcmpError { entry: Entry },
}

#[derive(Clone, Debug)]
pub struct Expected {
    pub action: Action,
    /// The tuple of a translated TCP or UDP packet, as it came.
    pub key: Option<Tuple>,
    pub verdict: Verdict,
    pub frame: Vec<u8>,
    /// Whether the MAC addresses are known (not on a re-routed frame).
    pub check_macs: bool,
    /// The checksum fields the model updated.
    pub csums: Vec<(usize, CsumKind)>,
}

impl Expected {
    pub fn translated(&self) -> bool {
        self.action != Action::Untouched
    }

    /// Compares what the datapath did with what it must have done.
    pub fn check(&self, verdict: i32, out: &[u8]) -> Result<(), String> {
        if !self.verdict.admits(verdict) {
            return Err(format!(
                "verdict {verdict}, expected {:?} ({:?})",
                self.verdict, self.action
            ));
        }
        if out.len() != self.frame.len() {
            return Err(format!(
                "output is {} bytes, expected {} ({:?})",
                out.len(),
                self.frame.len(),
                self.action
            ));
        }
        let mut i = if self.check_macs { 0 } else { 12 };
        while i < out.len() {
            if let Some(&(_, kind)) = self.csums.iter().find(|(off, _)| *off == i) {
                let want = u16::from_be_bytes([self.frame[i], self.frame[i + 1]]);
                let got = u16::from_be_bytes([out[i], out[i + 1]]);
                if !csum_matches(kind, want, got) {
                    return Err(format!(
                        "checksum at byte {i}: {got:#06x}, expected {want:#06x} ({kind:?}, {:?})\n{}",
                        self.action,
                        diff(&self.frame, out)
                    ));
                }
                i += 2;
                continue;
            }
            if out[i] != self.frame[i] {
                return Err(format!(
                    "byte {i} is {:#04x}, expected {:#04x} ({:?})\n{}",
                    out[i],
                    self.frame[i],
                    self.action,
                    diff(&self.frame, out)
                ));
            }
            i += 1;
        }
        Ok(())
    }
}

fn csum_matches(kind: CsumKind, want: u16, got: u16) -> bool {
    let norm = |c: u16| if c == 0 { 0xffff } else { c };
    match kind {
        CsumKind::Ones => norm(want) == norm(got),
        CsumKind::Udp if want == 0 => got == 0,
        CsumKind::Udp => got != 0 && norm(want) == norm(got),
    }
}

/// A hex dump of both frames, differing bytes marked.
pub fn diff(want: &[u8], got: &[u8]) -> String {
    let mut s = String::from("offset: expected / got\n");
    for (row, chunk) in want.chunks(16).enumerate() {
        let _ = write!(s, "{:04x}:", row * 16);
        for (j, b) in chunk.iter().enumerate() {
            let g = got.get(row * 16 + j);
            let mark = if g == Some(b) { ' ' } else { '*' };
            let _ = write!(s, " {b:02x}{mark}");
        }
        s.push_str(" / ");
        for g in got.iter().skip(row * 16).take(16) {
            let _ = write!(s, " {g:02x}");
        }
        s.push('\n');
    }
    s
}

/// Counters the datapath must have moved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Per frontend id: packets, bytes, flows.
    pub frontends: HashMap<u32, [u64; 3]>,
    pub unparsable: u64,
    pub icmp_translated: u64,
    pub redirect_failed: u64,
}

/// Ones' complement checksum update (RFC 1624 eqn. 3): HC' = ~(~HC + ~m + m')
/// over the 16-bit words of the changed fields, `old` and `new` of equal,
/// even length.
pub fn csum_update(csum: u16, old: &[u8], new: &[u8]) -> u16 {
    assert_eq!(old.len(), new.len(), "changed fields of different lengths");
    let mut sum = u32::from(!csum);
    for (o, n) in old.chunks(2).zip(new.chunks(2)) {
        sum += u32::from(!u16::from_be_bytes([o[0], o[1]]));
        sum += u32::from(u16::from_be_bytes([n[0], n[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn get16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}

fn put16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_be_bytes());
}

fn addr_at(b: &[u8], off: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[off], b[off + 1], b[off + 2], b[off + 3])
}

fn addr6_at(b: &[u8], off: usize) -> Ipv6Addr {
    Ipv6Addr::from(<[u8; 16]>::try_from(&b[off..off + 16]).unwrap())
}

fn octets(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// The bytes of a tuple's fields as they sit in the headers: source and
/// destination address, then source and destination port.
fn tuple_fields(t: &Tuple) -> Vec<u8> {
    let mut v = Vec::with_capacity(36);
    v.extend_from_slice(&octets(t.src.ip()));
    v.extend_from_slice(&octets(t.dst.ip()));
    v.extend_from_slice(&t.src.port().to_be_bytes());
    v.extend_from_slice(&t.dst.port().to_be_bytes());
    v
}

/// A TCP, UDP, ICMP or ICMPv6 packet as the spec reads it.
struct Ip<'a> {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    /// Offset of the L4 header in the frame.
    l4_off: usize,
    /// The L4 bytes, up to the IP packet's end (total or payload length).
    l4: &'a [u8],
}

impl Ip<'_> {
    fn v6(&self) -> bool {
        self.src.is_ipv6()
    }

    /// Offsets of the source and destination addresses in the frame, and
    /// their length.
    fn addr_offsets(&self) -> (usize, usize, usize) {
        if self.v6() {
            (ETH_LEN + 8, ETH_LEN + 24, 16)
        } else {
            (ETH_LEN + 12, ETH_LEN + 16, 4)
        }
    }
}

enum Class<'a> {
    /// Neither IPv4 nor IPv6, or a protocol that is not translated.
    Other,
    /// A bad, truncated or fragmented packet.
    Malformed,
    Ip(Ip<'a>),
}

fn classify(frame: &[u8]) -> Class<'_> {
    if frame.len() < ETH_LEN {
        return Class::Other;
    }
    match get16(frame, 12) {
        ETH_P_IP => classify_ipv4(&frame[ETH_LEN..]),
        ETH_P_IPV6 => classify_ipv6(&frame[ETH_LEN..]),
        _ => Class::Other,
    }
}

fn classify_ipv4(ip: &[u8]) -> Class<'_> {
    if ip.len() < 20 {
        return Class::Malformed;
    }
    let version = ip[0] >> 4;
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(get16(ip, 2));
    let frag = get16(ip, 6);
    let fragment = frag & IP_MF != 0 || frag & 0x1fff != 0;
    if version != 4 || ihl < 20 || total < ihl || total > ip.len() || fragment {
        return Class::Malformed;
    }
    upper_layer(
        ip[9],
        IpAddr::V4(addr_at(ip, 12)),
        IpAddr::V4(addr_at(ip, 16)),
        ihl,
        &ip[ihl..total],
        IPPROTO_ICMP,
    )
}

/// Extension headers walked to find the upper-layer header.
const IPV6_EXT_WALKED: usize = 4;

fn classify_ipv6(ip: &[u8]) -> Class<'_> {
    if ip.len() < 40 {
        return Class::Malformed;
    }
    let payload = usize::from(get16(ip, 4));
    // A zero payload length announces a jumbogram (RFC 2675): not handled.
    if ip[0] >> 4 != 6 || payload == 0 || 40 + payload > ip.len() {
        return Class::Malformed;
    }
    let end = 40 + payload;
    let (mut next, mut off) = (ip[6], 40);
    for _ in 0..IPV6_EXT_WALKED {
        match next {
            NEXTHDR_HOP | NEXTHDR_ROUTING | NEXTHDR_DEST => {
                // Its next header and length, then all of it, within the
                // payload.
                if off + 2 > end {
                    return Class::Malformed;
                }
                let len = (usize::from(ip[off + 1]) + 1) * 8;
                if off + len > end {
                    return Class::Malformed;
                }
                next = ip[off];
                off += len;
            }
            NEXTHDR_FRAGMENT => return Class::Malformed,
            _ => break,
        }
    }
    // Behind a fifth extension header, `next` is an extension header's
    // number: no protocol hairpin translates.
    upper_layer(
        next,
        IpAddr::V6(addr6_at(ip, 8)),
        IpAddr::V6(addr6_at(ip, 24)),
        off,
        &ip[off..end],
        IPPROTO_ICMPV6,
    )
}

/// The packet of protocol `proto` whose upper-layer bytes `l4` start at
/// `off` in the IP packet; `icmp` is the family's ICMP.
fn upper_layer(proto: u8, src: IpAddr, dst: IpAddr, off: usize, l4: &[u8], icmp: u8) -> Class<'_> {
    let min = match proto {
        IPPROTO_TCP => 20,
        IPPROTO_UDP => 8,
        p if p == icmp => 8,
        _ => return Class::Other,
    };
    if l4.len() < min || (proto == IPPROTO_TCP && usize::from(l4[12] >> 4) < 5) {
        return Class::Malformed;
    }
    Class::Ip(Ip {
        src,
        dst,
        proto,
        l4_off: ETH_LEN + off,
        l4,
    })
}

/// Offset of the TCP or UDP checksum in its header.
fn l4_csum_off(proto: u8) -> usize {
    if proto == IPPROTO_TCP {
        16
    } else {
        6
    }
}

pub struct Model {
    pub tables: Tables,
    ct: HashMap<Tuple, Entry>,
    pub counters: Counters,
}

impl Model {
    pub fn new(tables: Tables) -> Self {
        Self {
            tables,
            ct: HashMap::new(),
            counters: Counters::default(),
        }
    }

    /// The conntrack keys the model holds.
    pub fn keys(&self) -> Vec<Tuple> {
        self.ct.keys().copied().collect()
    }

    /// Forgets every flow (the counters stay).
    pub fn clear_flows(&mut self) {
        self.ct.clear();
    }

    /// What must come out of `hook` for `frame`. `chosen` tells which
    /// backend the datapath picked for a new flow (the choice is random):
    /// the model checks that it is one of the frontend's.
    pub fn process(
        &mut self,
        hook: Hook,
        frame: &[u8],
        chosen: impl FnOnce(&Tuple) -> Option<SocketAddr>,
    ) -> Result<Expected, String> {
        let untouched = Expected {
            action: Action::Untouched,
            key: None,
            verdict: Verdict::Pass,
            frame: frame.to_vec(),
            check_macs: true,
            csums: Vec::new(),
        };
        match classify(frame) {
            Class::Other => Ok(untouched),
            Class::Malformed => {
                self.counters.unparsable += 1;
                Ok(untouched)
            }
            Class::Ip(p) if p.proto == IPPROTO_ICMP => Ok(self.icmp(hook, frame, &p, untouched)),
            Class::Ip(p) if p.proto == IPPROTO_ICMPV6 => Ok(self.icmp6(hook, frame, &p, untouched)),
            Class::Ip(p) => self.flow(hook, frame, &p, chosen, untouched),
        }
    }

    fn flow(
        &mut self,
        hook: Hook,
        frame: &[u8],
        p: &Ip<'_>,
        chosen: impl FnOnce(&Tuple) -> Option<SocketAddr>,
        untouched: Expected,
    ) -> Result<Expected, String> {
        let key = Tuple::new(
            p.proto,
            SocketAddr::new(p.src, get16(p.l4, 0)),
            SocketAddr::new(p.dst, get16(p.l4, 2)),
        );
        let flags = if p.proto == IPPROTO_TCP { p.l4[13] } else { 0 };
        let ack = flags & TCP_ACK != 0;
        let bare_syn = flags & TCP_SYN != 0 && !ack;

        let mut hit = None;
        if matches!(hook, Hook::PodIngress | Hook::UplinkEgress)
            && self.tables.is_frontend_addr(key.dst.ip())
        {
            let open = match self.ct.get_mut(&key) {
                Some(e) if e.dir == Dir::Forward && owns(hook, Dir::Forward, e.origin) => {
                    if bare_syn && e.ack_seen {
                        // A new connection on the tuple of a finished one.
                        true
                    } else {
                        e.ack_seen |= ack;
                        hit = Some((*e, false));
                        false
                    }
                }
                // Another hook's flow, or a reply's tuple: not a new flow.
                Some(_) => false,
                None => true,
            };
            if open {
                if let Some(fe) = self.tables.frontend(&key).cloned() {
                    let backend = chosen(&key).ok_or_else(|| {
                        format!("{key:?} should open a flow of frontend {}, conntrack has no entry for it", fe.id)
                    })?;
                    if !fe.backends.contains(&backend) {
                        return Err(format!(
                            "backend {backend} chosen for frontend {} is not one of its backends {:?}",
                            fe.id, fe.backends
                        ));
                    }
                    hit = Some((self.open(hook, &key, &fe, backend, ack), true));
                }
            }
        }
        if hit.is_none() && hook != Hook::UplinkEgress && self.tables.is_backend_addr(key.src.ip())
        {
            if let Some(e) = self.ct.get(&key) {
                if e.dir == Dir::Reverse && owns(hook, Dir::Reverse, e.origin) {
                    hit = Some((*e, false));
                }
            }
        }
        let Some((entry, new_flow)) = hit else {
            return Ok(untouched);
        };
        if !self.can_deliver(hook, &entry) {
            return Ok(untouched);
        }

        let mut out = frame.to_vec();
        let mut csums = Vec::new();
        let l4_csum = p.l4_off + l4_csum_off(p.proto);
        let to = entry.to;
        let (old, new) = (tuple_fields(&key), tuple_fields(&to));
        let (src_off, dst_off, alen) = p.addr_offsets();
        out[src_off..src_off + alen].copy_from_slice(&new[..alen]);
        out[dst_off..dst_off + alen].copy_from_slice(&new[alen..2 * alen]);
        out[p.l4_off..p.l4_off + 4].copy_from_slice(&new[2 * alen..]);
        if !p.v6() {
            // IPv6 has no header checksum.
            let ip_csum = ETH_LEN + 10;
            put16(
                &mut out,
                ip_csum,
                csum_update(get16(frame, ip_csum), &old[..8], &new[..8]),
            );
            csums.push((ip_csum, CsumKind::Ones));
        }
        // The L4 checksum covers the ports, and the addresses through its
        // pseudo-header.
        let c = get16(frame, l4_csum);
        if p.proto == IPPROTO_UDP {
            if c != 0 {
                // A computed zero is sent as all ones: zero means "none".
                let n = csum_update(c, &old, &new);
                put16(&mut out, l4_csum, if n == 0 { 0xffff } else { n });
            }
            csums.push((l4_csum, CsumKind::Udp));
        } else {
            put16(&mut out, l4_csum, csum_update(c, &old, &new));
            csums.push((l4_csum, CsumKind::Ones));
        }

        let stats = self
            .counters
            .frontends
            .entry(entry.frontend_id)
            .or_default();
        stats[0] += 1;
        stats[1] += frame.len() as u64;
        stats[2] += u64::from(new_flow);
        let (verdict, check_macs) = self.deliver(hook, &entry, &mut out);
        Ok(Expected {
            action: Action::Flow { entry, new_flow },
            key: Some(key),
            verdict,
            frame: out,
            check_macs,
            csums,
        })
    }

    /// Opens a flow of `fe` to `backend` for the packet `key`.
    fn open(
        &mut self,
        hook: Hook,
        key: &Tuple,
        fe: &FrontendCfg,
        backend: SocketAddr,
        ack: bool,
    ) -> Entry {
        let origin = match hook {
            Hook::PodIngress if backend.ip() == key.src.ip() => Origin::Loop,
            Hook::PodIngress => Origin::Pod,
            _ => Origin::Host,
        };
        // A pod reaching itself gets the frontend's address as its source,
        // with its own port.
        let src = if origin == Origin::Loop {
            SocketAddr::new(key.dst.ip(), key.src.port())
        } else {
            key.src
        };
        let to = Tuple::new(key.proto, src, backend);
        let forward = Entry {
            dir: Dir::Forward,
            origin,
            to,
            frontend_id: fe.id,
            ack_seen: ack,
        };
        let reverse = Entry {
            dir: Dir::Reverse,
            to: key.reversed(),
            ack_seen: false,
            ..forward
        };
        self.ct.insert(to.reversed(), reverse);
        self.ct.insert(*key, forward);
        forward
    }

    /// Whether a packet of `e` translated at `hook` can be sent where it
    /// must go: a host's reply leaving a pod is handed to the uplink, which
    /// must be known.
    fn can_deliver(&mut self, hook: Hook, e: &Entry) -> bool {
        let to_uplink =
            hook == Hook::PodIngress && e.dir == Dir::Reverse && e.origin == Origin::Host;
        if to_uplink && self.tables.uplink.is_none() {
            self.counters.redirect_failed += 1;
            return false;
        }
        true
    }

    /// The verdict of a translated packet, and its Ethernet header.
    fn deliver(&self, hook: Hook, e: &Entry, out: &mut [u8]) -> (Verdict, bool) {
        match hook {
            Hook::PodIngress if e.origin == Origin::Loop => {
                // Back to the pod it came from: the MACs swap.
                let (dst, src) = (out[..6].to_vec(), out[6..12].to_vec());
                out[..6].copy_from_slice(&src);
                out[6..12].copy_from_slice(&dst);
                (Verdict::Redirect, true)
            }
            Hook::PodIngress if e.dir == Dir::Reverse => {
                // To the uplink's ingress, addressed to the node.
                let (_, mac) = self.tables.uplink.expect("checked by can_deliver");
                out[..6].copy_from_slice(&mac);
                (Verdict::Redirect, true)
            }
            // Re-routed by the namespace's routes: MACs and verdict vary.
            Hook::UplinkEgress => (Verdict::Any, false),
            _ => (Verdict::Pass, true),
        }
    }

    /// The flow entry an ICMP or ICMPv6 error quoting `quoted` belongs to,
    /// if it is translated at `hook`. The error travels the other way than
    /// the packet it quotes: it belongs where a packet of the reversed tuple
    /// would be translated.
    fn error_entry(&mut self, hook: Hook, quoted: &Tuple) -> Option<Entry> {
        let entry = *self.ct.get(&quoted.reversed())?;
        if !owns(hook, entry.dir, entry.origin) || !self.can_deliver(hook, &entry) {
            return None;
        }
        Some(entry)
    }

    fn icmp(&mut self, hook: Hook, frame: &[u8], p: &Ip<'_>, untouched: Expected) -> Expected {
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
    fn icmp6(&mut self, hook: Hook, frame: &[u8], p: &Ip<'_>, untouched: Expected) -> Expected {
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

/// The ICMP message of `p` in `frame` and in `out`, checksum zeroed and
/// padded to whole 16-bit words, for a checksum update over all of it.
fn message_words(frame: &[u8], out: &[u8], p: &Ip<'_>) -> (Vec<u8>, Vec<u8>) {
    let end = p.l4_off + p.l4.len();
    let mut old_msg = frame[p.l4_off..end].to_vec();
    let mut new_msg = out[p.l4_off..end].to_vec();
    for m in [&mut old_msg, &mut new_msg] {
        m[2..4].fill(0);
        if m.len() % 2 == 1 {
            m.push(0);
        }
    }
    (old_msg, new_msg)
}
