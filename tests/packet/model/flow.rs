//! TCP and UDP: flows opened, followed and translated.

use std::net::SocketAddr;

use super::{
    expected::{Action, CsumKind, Expected},
    packet::{csum_update, get16, l4_csum_off, put16, tuple_fields, Ip},
    state::Model,
    tables::{owns, Dir, Entry, FrontendCfg, Hook, Origin, Tuple},
};
use crate::frames::{ETH_LEN, IPPROTO_TCP, IPPROTO_UDP, TCP_ACK, TCP_SYN};

impl Model {
    pub(super) fn flow(
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
                    let backend = chosen(&key);
                    if backend.is_none() && own_reply(hook, &key, &fe) {
                        return Ok(untouched);
                    }
                    let backend = backend.ok_or_else(|| {
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
    pub(super) fn open(
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
}

/// Whether `key` could have been given a backend whose reply would carry
/// `key` itself (a pod reaching itself with its source port on the
/// frontend's and the backend's port): the datapath leaves such a packet
/// untranslated.
fn own_reply(hook: Hook, key: &Tuple, fe: &FrontendCfg) -> bool {
    hook == Hook::PodIngress && key.src.port() == key.dst.port() && fe.backends.contains(&key.src)
}
