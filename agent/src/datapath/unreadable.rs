//! The TCP flows of a conntrack table whose values this binary cannot read
//! (`migrate` replaced it), ended as a removed frontend's are. Every
//! release's conntrack keys have had one layout; the values are what
//! changes. A flow's two keys give it back whole: the forward key is the
//! client's tuple to a frontend, the reverse key the backend's tuple to the
//! client (to the frontend's address for a pod that reached itself). Each
//! flow found is entered in the new table ended: the next segment of either
//! end is made a reset for the other, where without an entry a client
//! whose backend went quiet would wait for its own timeout. UDP flows are
//! left out: the next datagram opens a new flow, as after `end_flows`.

use std::{collections::HashMap, net::IpAddr};

use anyhow::Result;
use aya::maps::MapData;
use hairpin_common::{
    CtDir, CtEntry, CtKey, CtOrigin, FrontendKey, IPPROTO_TCP, SEEN_ACK, SEEN_ENDED, SEEN_RST,
};

use crate::datapath::addr::{Addr, FamilyMaps};

/// Enters the TCP flows of `old` in `maps`' conntrack, ended; `node`: the
/// node's own addresses (a flow from one was a host process's). `again`:
/// only those the table lacks. Returns how many flows were entered, or
/// `None` when `old`'s keys are of another layout too.
pub fn end_unreadable<A: Addr>(
    old: &MapData,
    maps: &mut FamilyMaps<A>,
    node: &[IpAddr],
    again: bool,
) -> Result<Option<usize>> {
    let Some(keys) = crate::datapath::map_keys::keys::<CtKey<A>>(old)? else {
        return Ok(None);
    };
    // A forward key is to a frontend: its frontend, by key.
    let frontend_of = |k: &CtKey<A>| {
        let front = FrontendKey {
            addr: k.daddr,
            port: k.dport,
            proto: k.proto,
            _pad: 0,
        };
        maps.frontends.get(&front, 0).ok()
    };
    let (mut forward, mut by_dest) = (Vec::new(), HashMap::new());
    for k in keys.iter().filter(|k| k.proto == IPPROTO_TCP) {
        match frontend_of(k) {
            Some(fe) => forward.push((*k, fe)),
            None => {
                by_dest.insert((k.daddr, k.dport), *k);
            }
        }
    }
    let now = crate::datapath::clock::monotonic_ns();
    let flags = if again { 1 } else { 0 };
    let mut ended = 0;
    for (k, fe) in forward {
        let partner = |to: A| by_dest.get(&(to, k.sport)).copied();
        let (rev, origin) = match (partner(k.saddr), partner(k.daddr)) {
            (Some(r), _) if node.contains(&k.saddr.ip()) => (r, CtOrigin::Host),
            (Some(r), _) => (r, CtOrigin::Pod),
            (None, Some(r)) => (r, CtOrigin::Loop),
            (None, None) => continue,
        };
        let entry = |nat, dir: CtDir| CtEntry {
            nat,
            created_ns: now,
            last_seen_ns: now,
            frontend_id: fe.id,
            dir: dir as u8,
            origin: origin as u8,
            seen: SEEN_ACK | SEEN_ENDED | SEEN_RST,
            _pad: 0,
        };
        let forward = entry(rev.reversed(), CtDir::Forward);
        // Either insert may fail on a full table or, again, a present key:
        // a flow counts once both of its entries are in.
        if maps
            .conntrack
            .insert(rev, entry(k.reversed(), CtDir::Reverse), flags)
            .is_ok()
            && maps.conntrack.insert(k, forward, flags).is_ok()
        {
            ended += 1;
        }
    }
    Ok(Some(ended))
}
