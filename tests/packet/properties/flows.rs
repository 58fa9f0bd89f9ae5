//! Random flows: a client of some kind opens a flow to a frontend, its
//! backend replies, and an ICMP error comes back about the request.

use proptest::{prelude::*, sample::Index};

use super::per_family::Properties;
use crate::{
    fixtures::frontends,
    harness::{Harness, Step},
    model::{Action, FrontendCfg, Hook, Origin},
};

#[derive(Clone, Copy, Debug)]
pub enum ClientKind {
    /// A pod with a random address.
    Pod,
    /// The host, from a random address.
    Host,
    /// A pod that is one of the frontend's backends (a loop when it is
    /// chosen).
    Backend,
}

#[derive(Clone, Debug)]
pub struct FlowCase<F: Properties> {
    /// Index into the family's frontends that have backends.
    frontend: Index,
    kind: ClientKind,
    pod: F::Addr,
    host: F::Addr,
    backend: Index,
    port: u16,
    /// Where a host flow's reply enters: a local backend pod's veth, or
    /// the uplink.
    host_reply_at_pod: bool,
    /// Where a pod flow's reply is translated: inside the pod (a CNI that
    /// delivers with `bpf_redirect_peer`), or on the host side's egress.
    pod_reply_inside: bool,
    request: F::Seg,
    pub reply: F::Seg,
    pub error: F::Error,
    /// Another hook to run each frame at (request, reply, error), indices
    /// into the hooks other than its own.
    strays: [Index; 3],
}

pub fn flow_case<F: Properties>() -> impl Strategy<Value = FlowCase<F>> {
    (
        (
            any::<Index>(),
            prop_oneof![
                Just(ClientKind::Pod),
                Just(ClientKind::Host),
                Just(ClientKind::Backend)
            ],
            F::pod(),
            F::host(),
            any::<Index>(),
            any::<u16>(),
            any::<bool>(),
            any::<bool>(),
        ),
        (F::seg(), F::seg(), F::error_case(), any::<[Index; 3]>()),
    )
        .prop_map(
            |(
                (frontend, kind, pod, host, backend, port, host_reply_at_pod, pod_reply_inside),
                (request, reply, error, strays),
            )| {
                FlowCase {
                    frontend,
                    kind,
                    pod,
                    host,
                    backend,
                    port,
                    host_reply_at_pod,
                    pod_reply_inside,
                    request,
                    reply,
                    error,
                    strays,
                }
            },
        )
}

/// The family's frontends that have backends.
fn translatable<F: Properties>() -> Vec<FrontendCfg> {
    frontends::<F>()
        .into_iter()
        .filter(|f| !f.backends.is_empty())
        .collect()
}

/// One of the hooks other than `hook`.
pub fn other_hook(hook: Hook, i: &Index) -> Hook {
    let others: Vec<Hook> = Hook::ALL.into_iter().filter(|h| *h != hook).collect();
    *i.get(&others)
}

/// The frames of one flow, built as the case says.
pub struct Flow<F: Properties> {
    pub frontend: FrontendCfg,
    pub fe_addr: F::Sock,
    pub client: F::Sock,
    pub request_hook: Hook,
    pub request: Vec<u8>,
}

impl<F: Properties> FlowCase<F> {
    pub fn flow(&self) -> Flow<F> {
        let frontend = self.frontend.get(&translatable::<F>()).clone();
        let fe_addr = F::sock_of(frontend.addr);
        let ip = match self.kind {
            ClientKind::Pod => self.pod,
            ClientKind::Host => self.host,
            ClientKind::Backend => F::ip(F::sock_of(*self.backend.get(&frontend.backends))),
        };
        // A backend calling from the frontend's port would, if it chose
        // itself on the same port, get its own request back as the reply:
        // left untranslated by design (flows.rs has that case).
        let port = match self.kind {
            ClientKind::Backend if self.port == F::port(fe_addr) => self.port ^ 1,
            _ => self.port,
        };
        let client = F::sock(ip, port);
        let request_hook = match self.kind {
            ClientKind::Host => Hook::UplinkEgress,
            ClientKind::Pod | ClientKind::Backend => Hook::PodIngress,
        };
        let request = F::build(frontend.proto, client, fe_addr, &self.request);
        Flow {
            frontend,
            fe_addr,
            client,
            request_hook,
            request,
        }
    }

    /// Where the flow's replies (and errors toward the client) are
    /// translated, given the origin the flow got.
    pub fn reply_hook(&self, origin: Origin) -> Hook {
        match origin {
            Origin::Pod if self.pod_reply_inside => Hook::PodReceive,
            Origin::Pod => Hook::PodEgress,
            Origin::Loop => Hook::PodIngress,
            Origin::Host if self.host_reply_at_pod => Hook::PodIngress,
            Origin::Host => Hook::UplinkIngress,
        }
    }
}

/// The steps of a flow's life: the request, the reply and an error.
pub struct FlowRun<F: Properties> {
    pub flow: Flow<F>,
    pub request: Step,
    pub reply_frame: Vec<u8>,
    pub reply: Step,
    pub error_frame: Vec<u8>,
    pub error: Step,
}

/// Runs a flow's request, reply and ICMP error at their hooks, and each at
/// one other hook, all checked against the model.
pub fn run_flow<F: Properties>(h: &mut Harness, c: &FlowCase<F>) -> Result<FlowRun<F>, String> {
    let flow = c.flow();
    let request = h.step(flow.request_hook, &flow.request)?;
    let Action::Flow {
        entry,
        new_flow: true,
    } = request.expected.action
    else {
        return Err(format!(
            "the request opened no flow: {:?}",
            request.expected.action
        ));
    };
    h.step(other_hook(flow.request_hook, &c.strays[0]), &flow.request)?;

    let reply_hook = c.reply_hook(entry.origin);
    let (seen_src, backend) = F::endpoints(&request.out);
    let reply_frame = F::build(flow.frontend.proto, backend, seen_src, &c.reply);
    let reply = h.step(reply_hook, &reply_frame)?;
    ensure!(
        matches!(reply.expected.action, Action::Flow { .. }),
        "the reply was not translated: {:?}",
        reply.expected.action
    );
    h.step(other_hook(reply_hook, &c.strays[1]), &reply_frame)?;
    if reply_hook == Hook::PodEgress {
        // Delivered by the node's stack, the translated reply meets the
        // pod side too, which must pass it untouched: translated once.
        let inside = h.step(Hook::PodReceive, &reply.out)?;
        ensure!(
            inside.out == reply.out,
            "a reply translated at PodEgress was changed again inside the pod"
        );
    }

    let error_frame = F::error(&c.error, &request.out);
    let error = h.step(reply_hook, &error_frame)?;
    F::check_error_action(&c.error, &request.out, &error.expected.action)?;
    h.step(other_hook(reply_hook, &c.strays[2]), &error_frame)?;
    Ok(FlowRun {
        flow,
        request,
        reply_frame,
        reply,
        error_frame,
        error,
    })
}
