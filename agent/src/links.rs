//! The node's interfaces through rtnetlink: what exists now, the uplink
//! toward the frontends, and the link events that follow pods as they come
//! and go.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::{Context as _, Result};
use futures::{channel::mpsc::UnboundedReceiver, StreamExt as _, TryStreamExt as _};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::{
    address::{AddressAttribute, AddressMessage},
    link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage},
    route::RouteAttribute,
    tc::{TcAttribute, TcFilterBpfOption, TcMessage, TcOption},
    RouteNetlinkMessage,
};
use rtnetlink::{Handle, MulticastGroup, RouteMessageBuilder};

/// An interface: index, name, MAC address, and its peer when that lives
/// in another namespace (a pod's veth or netkit device).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mac: Option<[u8; 6]>,
    pub peer: Option<Peer>,
    /// A netkit device (an eBPF CNI's pod device).
    pub netkit: bool,
}

/// The other end of a device pair, in the namespace the node's namespace
/// knows by `netns_id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    pub index: u32,
    pub netns_id: i32,
}

impl Link {
    fn from_message(msg: &LinkMessage) -> Option<Self> {
        let (mut name, mut mac, mut peer_index, mut netns_id) = (None, None, None, None);
        let mut netkit = false;
        for a in &msg.attributes {
            match a {
                LinkAttribute::IfName(n) => name = Some(n.clone()),
                LinkAttribute::Address(a) if a.len() == 6 => mac = a.as_slice().try_into().ok(),
                LinkAttribute::Link(i) => peer_index = Some(*i),
                LinkAttribute::LinkNetNsId(id) if *id >= 0 => netns_id = Some(*id),
                LinkAttribute::LinkInfo(info) => {
                    netkit = info
                        .iter()
                        .any(|i| matches!(i, LinkInfo::Kind(InfoKind::Netkit)));
                }
                _ => {}
            }
        }
        let peer = match (peer_index, netns_id) {
            (Some(index), Some(netns_id)) => Some(Peer { index, netns_id }),
            _ => None,
        };
        Some(Self {
            index: msg.header.index,
            name: name?,
            mac,
            peer,
            netkit,
        })
    }
}

/// A change of the node's interfaces, routes or addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetEvent {
    /// A new interface, or a change of an existing one.
    Up(Link),
    Gone(Link),
    /// A route or an address came or went: what was unroutable may not be.
    Routing,
}

/// A netlink connection for requests; its task runs on the tokio runtime.
pub fn connect() -> Result<Handle> {
    let (conn, handle, _) = rtnetlink::new_connection().context("opening rtnetlink")?;
    tokio::spawn(conn);
    Ok(handle)
}

pub async fn list(handle: &Handle) -> Result<Vec<Link>> {
    let msgs: Vec<LinkMessage> = handle
        .link()
        .get()
        .execute()
        .try_collect()
        .await
        .context("listing links")?;
    Ok(msgs.iter().filter_map(Link::from_message).collect())
}

/// The interfaces, for a command that runs no event loop of its own.
pub fn list_now() -> Result<Vec<Link>> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async { list(&connect()?).await })
}

/// The node's own addresses.
pub async fn addresses(handle: &Handle) -> Result<Vec<IpAddr>> {
    let msgs: Vec<AddressMessage> = handle
        .address()
        .get()
        .execute()
        .try_collect()
        .await
        .context("listing addresses")?;
    Ok(msgs
        .iter()
        .flat_map(|m| &m.attributes)
        .filter_map(|a| match a {
            AddressAttribute::Local(ip) | AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        })
        .collect())
}

/// The interface of the node's route to `dst` (`ip route get`).
pub async fn route_oif(handle: &Handle, dst: IpAddr) -> Result<Option<u32>> {
    let req = match dst {
        IpAddr::V4(a) => RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(a, 32)
            .build(),
        IpAddr::V6(a) => RouteMessageBuilder::<Ipv6Addr>::new()
            .destination_prefix(a, 128)
            .build(),
    };
    let mut routes = handle.route().get(req).execute();
    while let Some(route) = routes
        .try_next()
        .await
        .with_context(|| format!("route to {dst}"))?
    {
        if let Some(oif) = route.attributes.iter().find_map(|a| match a {
            RouteAttribute::Oif(i) => Some(*i),
            _ => None,
        }) {
            return Ok(Some(oif));
        }
    }
    Ok(None)
}

/// Link, route and address events from the kernel, in order.
pub fn events() -> Result<impl futures::Stream<Item = NetEvent>> {
    let (conn, _handle, messages) = rtnetlink::new_multicast_connection(&[
        MulticastGroup::Link,
        MulticastGroup::Ipv4Route,
        MulticastGroup::Ipv6Route,
        MulticastGroup::Ipv4Ifaddr,
        MulticastGroup::Ipv6Ifaddr,
    ])
    .context("subscribing to link, route and address events")?;
    tokio::spawn(conn);
    Ok(to_events(messages))
}

fn to_events(
    messages: UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, netlink_sys::SocketAddr)>,
) -> impl futures::Stream<Item = NetEvent> {
    messages.filter_map(|(msg, _)| async move {
        match msg.payload {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) => {
                Link::from_message(&l).map(NetEvent::Up)
            }
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(l)) => {
                Link::from_message(&l).map(NetEvent::Gone)
            }
            NetlinkPayload::InnerMessage(
                RouteNetlinkMessage::NewRoute(_)
                | RouteNetlinkMessage::DelRoute(_)
                | RouteNetlinkMessage::NewAddress(_)
                | RouteNetlinkMessage::DelAddress(_),
            ) => Some(NetEvent::Routing),
            _ => None,
        }
    })
}

/// The index of interface `name`.
pub fn index_of(name: &str) -> Result<u32> {
    let c = std::ffi::CString::new(name).context("an interface name with a NUL")?;
    // SAFETY: a valid C string.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    anyhow::ensure!(index != 0, "no interface {name}");
    Ok(index)
}

/// The names of the BPF programs of the clsact filters on one hook of
/// interface `index` (`egress` or ingress), in the order they run
/// (the dump comes by priority); empty without a clsact qdisc.
pub fn clsact_programs(index: u32, egress: bool) -> Result<Vec<String>> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let handle = connect()?;
            let get = handle.traffic_filter(index as i32).get();
            let get = if egress { get.egress() } else { get.ingress() };
            let msgs: Vec<TcMessage> = match get.execute().try_collect().await {
                Ok(m) => m,
                // No clsact qdisc there: no filter either.
                Err(rtnetlink::Error::NetlinkError(_)) => Vec::new(),
                Err(e) => return Err(e).context("listing tc filters"),
            };
            Ok(msgs.iter().filter_map(bpf_filter_name).collect())
        })
}

/// The program name a BPF filter carries (`tc` shows it as `bpf name`).
fn bpf_filter_name(msg: &TcMessage) -> Option<String> {
    msg.attributes.iter().find_map(|a| match a {
        TcAttribute::Options(opts) => opts.iter().find_map(|o| match o {
            TcOption::Bpf(TcFilterBpfOption::ProgName(n)) => Some(n.clone()),
            _ => None,
        }),
        _ => None,
    })
}
