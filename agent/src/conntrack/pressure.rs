//! Room in a full conntrack table. The table never evicts (a plain hash):
//! when it refuses new flows, the agent ends the flows that are not
//! established, as netfilter's early drop does, and never one that is:
//! a flood of new flows cannot cut a running one.

use anyhow::{Context as _, Result};
use hairpin_common::{
    CtDir, CtEntry, EndReason, Event, IPPROTO_TCP, NS_PER_SEC, SEEN_ACK, SEEN_ENDED, SEEN_FIN,
    SEEN_REPLY, SEEN_RST,
};

use crate::{
    conntrack::flows::ended_event, conntrack::sweep::partner, datapath::addr::Addr,
    datapath::loader::Conntrack,
};

/// A UDP flow idle this long may go under pressure, answered or not.
pub const UDP_IDLE_NS: u64 = 10 * NS_PER_SEC;

/// Whether a flow, by its forward entry and its reverse one (if any), may
/// end to make room: a TCP flow before its handshake completed, or closed
/// both ways or reset; a UDP flow never answered, or idle `UDP_IDLE_NS`;
/// an entry without its partner. Never a flow the agent ended: its entries
/// still turn the ends' next segments into resets.
pub fn expendable<A>(fwd: &CtEntry<A>, rev: Option<&CtEntry<A>>, now_ns: u64) -> bool {
    let Some(rev) = rev else {
        return true;
    };
    if (fwd.seen | rev.seen) & SEEN_ENDED != 0 {
        return false;
    }
    if fwd.nat.proto == IPPROTO_TCP {
        let handshake = fwd.seen & SEEN_ACK != 0 && rev.seen & SEEN_ACK != 0;
        let closed = fwd.seen & rev.seen & SEEN_FIN != 0 || (fwd.seen | rev.seen) & SEEN_RST != 0;
        return !handshake || closed;
    }
    let last = fwd.last_seen_ns.max(rev.last_seen_ns);
    rev.seen & SEEN_REPLY == 0 || now_ns.saturating_sub(last) >= UDP_IDLE_NS
}

/// Ends every expendable flow of `ct`, both entries: their events (for the
/// monitors), which say how many.
pub fn relieve<A: Addr>(ct: &mut Conntrack<A>, now_ns: u64) -> Result<Vec<Event>> {
    let mut doomed = Vec::new();
    let mut events = Vec::new();
    for r in ct.iter() {
        let (k, e) = r.context("reading conntrack")?;
        let partner = partner(&e);
        let other = ct.get(&partner, 0).ok();
        if e.dir != CtDir::Forward as u8 {
            // A reverse entry is judged with its forward one, unless alone.
            if other.is_none() {
                doomed.push(k);
            }
            continue;
        }
        if expendable(&e, other.as_ref(), now_ns) {
            events.extend(ended_event(&k, &e, EndReason::Pressure));
            doomed.push(k);
            doomed.push(partner);
        }
    }
    for k in &doomed {
        // Ignored error: the datapath may have removed it meanwhile.
        let _ = ct.remove(k);
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use hairpin_common::{CtEntryV4, IPPROTO_UDP, SEEN_SYN};

    use super::*;

    fn pair(proto: u8, fwd: u8, rev: u8, last_s: u64) -> (CtEntryV4, CtEntryV4) {
        let mut f = CtEntryV4::default();
        f.nat.proto = proto;
        f.seen = fwd;
        f.last_seen_ns = last_s * NS_PER_SEC;
        let r = CtEntryV4 {
            dir: CtDir::Reverse as u8,
            seen: rev,
            ..f
        };
        (f, r)
    }

    #[test]
    fn only_flows_that_are_not_established_make_room() {
        let now = 100 * NS_PER_SEC;
        let tcp = |fwd, rev| {
            let (f, r) = pair(IPPROTO_TCP, fwd, rev, 99);
            expendable(&f, Some(&r), now)
        };
        let reply = SEEN_REPLY | SEEN_ACK;
        assert!(tcp(SEEN_SYN, 0), "a SYN never answered");
        assert!(tcp(SEEN_SYN, SEEN_SYN | reply), "a handshake not completed");
        assert!(!tcp(SEEN_ACK, reply), "established");
        assert!(
            !tcp(SEEN_ACK | SEEN_FIN, reply),
            "half closed: the other way may still send"
        );
        assert!(
            tcp(SEEN_ACK | SEEN_FIN, reply | SEEN_FIN),
            "closed both ways"
        );
        assert!(tcp(SEEN_ACK | SEEN_RST, reply), "reset");
        assert!(
            !tcp(SEEN_ACK | SEEN_RST | SEEN_ENDED, reply),
            "ended by the agent"
        );

        let udp = |rev, last_s| {
            let (f, r) = pair(IPPROTO_UDP, 0, rev, last_s);
            expendable(&f, Some(&r), now)
        };
        assert!(udp(0, 99), "never answered");
        assert!(!udp(SEEN_REPLY, 95), "answered, idle 5 s");
        assert!(udp(SEEN_REPLY, 90), "answered, idle 10 s");
        let (f, _) = pair(IPPROTO_TCP, SEEN_ACK, 0, 99);
        assert!(expendable(&f, None, now), "an entry without its partner");
    }
}
