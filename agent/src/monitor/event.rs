//! An event as monitors get it: decoded from the datapath's `Event` (or
//! one the agent makes), one JSON line or one table line.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use hairpin_common::{
    Counter, CtOrigin, EndReason, Event, EventKind, WireAddr, EVENT_HOOK_AGENT, EVENT_HOOK_SOCKET,
    IPPROTO_TCP, IPPROTO_UDP,
};
use serde::{Deserialize, Serialize};

/// One line of `hairpin monitor`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Shown {
    /// Seconds since the epoch.
    pub time: f64,
    /// `EventKind::name`, or `lost` for events a monitor missed.
    #[serde(rename = "type")]
    pub kind: String,
    /// Where it was seen: `pod_ingress` … `uplink_ingress`, `socket`,
    /// `agent`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hook: String,
    /// The path that serves the flow: `pod`, `uplink` (a host process on
    /// the TC path), `socket`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub proto: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<SocketAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontend: Option<SocketAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<SocketAddr>,
    /// Why: an end's reason, the counter of an untranslated packet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `lost`: how many events this monitor missed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

/// Seconds since the epoch of a CLOCK_MONOTONIC(_COARSE) time.
fn wall_time(mono_ns: u64) -> f64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let ago = crate::datapath::clock::monotonic_ns().saturating_sub(mono_ns);
    now - ago as f64 / 1e9
}

fn addr(family: u8, w: [u32; 4]) -> Option<IpAddr> {
    let ip = match family {
        4 => IpAddr::V4(Ipv4Addr::from(w[0].octets())),
        6 => IpAddr::V6(Ipv6Addr::from(w.octets())),
        _ => return None,
    };
    (!ip.is_unspecified()).then_some(ip)
}

fn endpoint(family: u8, w: [u32; 4], port: u16) -> Option<SocketAddr> {
    addr(family, w).map(|ip| SocketAddr::new(ip, u16::from_be(port)))
}

fn hook_name(hook: u8) -> &'static str {
    match hook {
        0 => "pod_ingress",
        1 => "pod_egress",
        2 => "uplink_egress",
        3 => "uplink_ingress",
        6 => "pod_receive",
        EVENT_HOOK_SOCKET => "socket",
        EVENT_HOOK_AGENT => "agent",
        _ => "",
    }
}

fn interface_name(ifindex: u32) -> Option<String> {
    if ifindex == 0 {
        return None;
    }
    let mut buf = [0u8; libc::IF_NAMESIZE];
    // SAFETY: the buffer holds IF_NAMESIZE bytes, as the call requires.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr().cast()) };
    if p.is_null() {
        return Some(format!("#{ifindex}"));
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

impl Shown {
    /// Decodes an event; `None` for one this binary does not know.
    pub fn decode(e: &Event) -> Option<Self> {
        let kind = EventKind::from_u8(e.kind)?;
        let reason = match kind {
            EventKind::Ended => EndReason::from_u8(e.detail).map(|r| r.name().to_owned()),
            EventKind::Untranslated => Counter::ALL
                .get(usize::from(e.detail))
                .map(|c| c.name().to_owned()),
            _ => None,
        };
        let path = match (kind, e.hook) {
            (EventKind::Opened, _) => match CtOrigin::from_u8(e.detail) {
                Some(CtOrigin::Host) => "uplink",
                Some(CtOrigin::Pod | CtOrigin::Loop) => "pod",
                None => "",
            },
            (_, 0 | 1 | 6) => "pod",
            (_, 2 | 3) => "uplink",
            (_, EVENT_HOOK_SOCKET) => "socket",
            _ => "",
        };
        Some(Self {
            time: wall_time(e.ts_ns),
            kind: kind.name().to_owned(),
            hook: hook_name(e.hook).to_owned(),
            path: path.to_owned(),
            interface: interface_name(e.ifindex),
            pid: (e.pid != 0).then_some(e.pid),
            proto: match e.proto {
                IPPROTO_TCP => "tcp".into(),
                IPPROTO_UDP => "udp".into(),
                0 => String::new(),
                p => p.to_string(),
            },
            client: endpoint(e.family, e.client, e.client_port),
            frontend: endpoint(e.family, e.frontend, e.frontend_port),
            backend: endpoint(e.family, e.backend, e.backend_port),
            reason,
            count: None,
        })
    }

    /// The line saying that `count` events were missed.
    pub fn lost(count: u64) -> Self {
        Self {
            time: wall_time(crate::datapath::clock::monotonic_ns()),
            kind: "lost".into(),
            hook: String::new(),
            path: String::new(),
            interface: None,
            pid: None,
            proto: String::new(),
            client: None,
            frontend: None,
            backend: None,
            reason: None,
            count: Some(count),
        }
    }

    /// A table line for people.
    pub fn line(&self) -> String {
        let at = |a: &Option<SocketAddr>| a.map_or("-".to_owned(), |a| a.to_string());
        if let Some(n) = self.count {
            return format!("{:<12} {n} events lost: the reader fell behind", "lost");
        }
        let mut line = format!(
            "{:<12} {:<4} {} -> {} => {}",
            self.kind,
            self.proto,
            at(&self.client),
            at(&self.frontend),
            at(&self.backend),
        );
        let mut note = |s: String| {
            line.push_str("  ");
            line.push_str(&s);
        };
        if !self.hook.is_empty() {
            note(format!("at {}", self.hook));
        }
        if let Some(i) = &self.interface {
            note(format!("on {i}"));
        }
        if !self.path.is_empty() {
            note(format!("path {}", self.path));
        }
        if let Some(p) = self.pid {
            note(format!("pid {p}"));
        }
        if let Some(r) = &self.reason {
            note(format!("({r})"));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use hairpin_common::{CtDir, CtEntry, CtKey};

    use super::*;
    use crate::conntrack::flows::ended_event as ended;

    fn key() -> CtKey<u32> {
        CtKey {
            saddr: u32::from_octets([192, 0, 2, 5]),
            daddr: u32::from_octets([203, 0, 113, 10]),
            sport: 40000u16.to_be(),
            dport: 8080u16.to_be(),
            proto: IPPROTO_TCP,
            _pad: 0,
            _pad2: 0,
        }
    }

    #[test]
    fn an_ended_flow_reads_from_its_client_to_its_backend() {
        let mut e = CtEntry::<u32>::default();
        e.nat.daddr = u32::from_octets([198, 51, 100, 2]);
        e.nat.dport = 80u16.to_be();
        e.frontend_id = 3;
        let shown = Shown::decode(&ended(&key(), &e, EndReason::Expired).unwrap()).unwrap();
        assert_eq!(shown.kind, "ended");
        assert_eq!(shown.reason.as_deref(), Some("expired"));
        assert_eq!(shown.hook, "agent");
        assert_eq!(shown.client, Some("192.0.2.5:40000".parse().unwrap()));
        assert_eq!(shown.frontend, Some("203.0.113.10:8080".parse().unwrap()));
        assert_eq!(shown.backend, Some("198.51.100.2:80".parse().unwrap()));
        e.dir = CtDir::Reverse as u8;
        assert!(
            ended(&key(), &e, EndReason::Expired).is_none(),
            "one per flow"
        );
    }

    #[test]
    fn a_datapath_event_names_its_hook_path_and_reason() {
        let ev = Event {
            kind: EventKind::Untranslated as u8,
            hook: 2,
            detail: Counter::RedirectFailed as u8,
            family: 6,
            proto: IPPROTO_UDP,
            client: <[u32; 4]>::from_octets("2001:db8::5".parse::<Ipv6Addr>().unwrap().octets()),
            client_port: 53u16.to_be(),
            ..Event::default()
        };
        let shown = Shown::decode(&ev).unwrap();
        assert_eq!(
            (shown.hook.as_str(), shown.path.as_str()),
            ("uplink_egress", "uplink")
        );
        assert_eq!(shown.reason.as_deref(), Some("redirect_failed"));
        assert_eq!(shown.client, Some("[2001:db8::5]:53".parse().unwrap()));
        assert_eq!(shown.frontend, None, "an unknown address is left out");
        let json = serde_json::to_string(&shown).unwrap();
        let read: Shown = serde_json::from_str(&json).unwrap();
        // serde_json reads a float back to within one unit of its last place.
        assert!((read.time - shown.time).abs() < 1e-6, "{read:?}");
        assert_eq!(Shown { time: 0.0, ..read }, Shown { time: 0.0, ..shown });
        assert!(Shown::decode(&Event { kind: 200, ..ev }).is_none());
    }
}
