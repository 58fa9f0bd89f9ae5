//! Flows of pods and of the host, and a pod reaching itself: where each
//! direction is translated, and to what.

use hairpin_common::{Counter, CtOrigin, SEEN_REPLY};

use crate::{
    checks::{assert_flow_entries, check_counters},
    families::{flow, Family},
    fixtures::{multi, proto_name, standard_tables, UPLINK},
    frames::{macs, NODE_MAC, POD_MAC, PROTOCOLS, TCP_ACK, TCP_SYN},
    harness::{Harness, TC_ACT_REDIRECT, TC_ACT_UNSPEC},
    model::{FrontendCfg, Hook, Tables, Tuple},
    require_privileged,
};

family_tests!(both: [
    a_pod_flow_goes_to_one_of_the_frontends_backends_and_replies_come_back_from_the_frontend,
    a_pod_reaching_itself_through_a_frontend_is_turned_around_on_its_own_veth,
    a_pod_reaching_itself_from_the_one_port_of_frontend_and_backend_passes_untouched,
    a_host_flow_is_translated_on_the_uplink_egress_and_its_replies_where_they_enter,
    a_host_flows_reply_from_a_pod_passes_untouched_while_the_uplink_is_unknown,
]);

fn a_pod_flow_goes_to_one_of_the_frontends_backends_and_replies_come_back_from_the_frontend<
    F: Family,
>() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    for proto in PROTOCOLS {
        let p = proto_name(proto);
        let (fe, backends) = multi::<F>(proto);
        let client = F::sock(F::POD_CLIENT, 40001);
        let fwd = flow::<F>(proto, client, fe, b"hello").bytes();

        let step = h.expect_step(Hook::PodIngress, &fwd);
        assert_eq!(
            step.verdict, TC_ACT_UNSPEC,
            "{p}: a pod's packet goes on to the stack"
        );
        let (src, backend) = F::endpoints(&step.out);
        assert_eq!(src, client, "{p}: the backend sees the client as it is");
        assert!(
            backends.contains(&backend),
            "{p}: {backend} is not a backend of {fe}"
        );
        assert_eq!(macs(&step.out), (NODE_MAC, POD_MAC), "{p}: MACs unchanged");
        let key = Tuple::new(proto, client, fe);
        assert_flow_entries(&h, &key, &Tuple::new(proto, client, backend), CtOrigin::Pod);
        assert!(
            F::in_conntrack(&h, &key),
            "{p}: the flow is in its family's conntrack"
        );

        let reply = flow::<F>(proto, backend, client, b"world")
            .with_tcp_flags(TCP_SYN | TCP_ACK)
            .bytes();
        let answered = |h: &Harness| {
            let rev = h
                .entry(&Tuple::new(proto, backend, client))
                .expect("the reverse entry");
            rev.seen & SEEN_REPLY != 0
        };
        assert!(!answered(&h), "{p}: not answered before the reply");
        let step = h.expect_step(Hook::PodEgress, &reply);
        assert!(answered(&h), "{p}: the reply marks the flow answered");
        assert_eq!(
            step.verdict, TC_ACT_UNSPEC,
            "{p}: a reply goes on to the pod"
        );
        assert_eq!(
            F::endpoints(&step.out),
            (fe, client),
            "{p}: the reply comes from the frontend"
        );
        // Inside the pod: a reply the host side translated passes as it
        // is; one a CNI delivered past the host side is translated there,
        // as the host side would have.
        let inside = h.expect_step(Hook::PodReceive, &step.out);
        assert!(
            inside.out == step.out && inside.verdict == TC_ACT_UNSPEC,
            "{p}: a translated reply is not translated again inside the pod"
        );
        let peer = h.expect_step(Hook::PodReceive, &reply);
        assert!(
            peer.out == step.out && peer.verdict == TC_ACT_UNSPEC,
            "{p}: a reply delivered into the pod past the host side is translated inside"
        );

        // Each packet is translated at one hook only.
        for hook in [Hook::PodIngress, Hook::UplinkIngress, Hook::UplinkEgress] {
            let step = h.expect_step(hook, &reply);
            assert!(
                step.out == reply,
                "{p}: a pod flow's reply was changed at {hook:?}"
            );
        }
        for hook in [
            Hook::PodEgress,
            Hook::UplinkEgress,
            Hook::UplinkIngress,
            Hook::PodReceive,
        ] {
            let step = h.expect_step(hook, &fwd);
            assert!(
                step.out == fwd,
                "{p}: a pod flow's request was changed at {hook:?}"
            );
        }
    }
    check_counters(&h);
}

fn a_pod_reaching_itself_through_a_frontend_is_turned_around_on_its_own_veth<F: Family>() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    for proto in PROTOCOLS {
        let p = proto_name(proto);
        let client = F::sock(F::ip(F::SOLO_BACKEND), 40002);
        let fwd = flow::<F>(proto, client, F::SOLO, b"me?").bytes();

        let step = h.expect_step(Hook::PodIngress, &fwd);
        assert_eq!(
            step.verdict, TC_ACT_REDIRECT,
            "{p}: the packet goes back to the pod"
        );
        let looped_src = F::sock(F::ip(F::SOLO), F::port(client));
        assert_eq!(
            F::endpoints(&step.out),
            (looped_src, F::SOLO_BACKEND),
            "{p}: the pod receives its request from the frontend's address"
        );
        assert_eq!(macs(&step.out), (POD_MAC, NODE_MAC), "{p}: MACs swapped");
        let key = Tuple::new(proto, client, F::SOLO);
        assert_flow_entries(
            &h,
            &key,
            &Tuple::new(proto, looped_src, F::SOLO_BACKEND),
            CtOrigin::Loop,
        );

        let reply = flow::<F>(proto, F::SOLO_BACKEND, looped_src, b"you!")
            .with_tcp_flags(TCP_SYN | TCP_ACK)
            .bytes();
        let step = h.expect_step(Hook::PodIngress, &reply);
        assert_eq!(
            step.verdict, TC_ACT_REDIRECT,
            "{p}: the reply goes back to the pod"
        );
        assert_eq!(
            F::endpoints(&step.out),
            (F::SOLO, client),
            "{p}: the reply comes from the frontend"
        );
        assert_eq!(macs(&step.out), (POD_MAC, NODE_MAC), "{p}: MACs swapped");
        let step = h.expect_step(Hook::PodEgress, &reply);
        assert!(
            step.out == reply,
            "{p}: a looped reply was changed at pod egress"
        );
    }
    check_counters(&h);
}

/// Frontend, backend and source port all alike: the reply would carry the
/// request's own tuple, so no flow can tell the two directions apart.
fn a_pod_reaching_itself_from_the_one_port_of_frontend_and_backend_passes_untouched<F: Family>() {
    require_privileged!();
    let port = F::port(F::SOLO_BACKEND);
    let fe = F::sock(F::ip(F::SOLO), port);
    let frontends = PROTOCOLS
        .iter()
        .zip(F::FIRST_ID..)
        .map(|(&proto, id)| FrontendCfg {
            id,
            addr: fe.into(),
            proto,
            backends: vec![F::SOLO_BACKEND.into()],
            flags: 0,
        })
        .collect();
    let mut h = Harness::new(Tables {
        frontends,
        uplink: Some(UPLINK),
    });
    for proto in PROTOCOLS {
        let p = proto_name(proto);
        let fwd = flow::<F>(proto, F::SOLO_BACKEND, fe, b"me?").bytes();
        let step = h.expect_step(Hook::PodIngress, &fwd);
        assert_eq!(step.verdict, TC_ACT_UNSPEC, "{p}: left to the stack");
        assert!(step.out == fwd, "{p}: the packet passes untouched");
        let key = Tuple::new(proto, F::SOLO_BACKEND, fe);
        assert!(h.entry(&key).is_none(), "{p}: no flow was opened");

        // Another source port of the same pod is turned around as ever.
        let client = F::sock(F::ip(F::SOLO_BACKEND), port + 1);
        let fwd = flow::<F>(proto, client, fe, b"me?").bytes();
        let step = h.expect_step(Hook::PodIngress, &fwd);
        assert_eq!(step.verdict, TC_ACT_REDIRECT, "{p}: turned around");
    }
    check_counters(&h);
}

fn a_host_flow_is_translated_on_the_uplink_egress_and_its_replies_where_they_enter<F: Family>() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    for proto in PROTOCOLS {
        let p = proto_name(proto);
        let (fe, backends) = multi::<F>(proto);
        let client = F::sock(F::HOST_CLIENT, 50001);
        let fwd = flow::<F>(proto, client, fe, b"from the host").bytes();

        // The verdict depends on the routes of the test's namespace; the
        // bytes other than the MACs are checked against the model.
        let step = h.expect_step(Hook::UplinkEgress, &fwd);
        let (src, backend) = F::endpoints(&step.out);
        assert_eq!(src, client, "{p}: the backend sees the host as it is");
        assert!(
            backends.contains(&backend),
            "{p}: {backend} is not a backend of {fe}"
        );
        let key = Tuple::new(proto, client, fe);
        assert_flow_entries(
            &h,
            &key,
            &Tuple::new(proto, client, backend),
            CtOrigin::Host,
        );

        let reply = flow::<F>(proto, backend, client, b"to the host")
            .with_tcp_flags(TCP_SYN | TCP_ACK)
            .bytes();
        let step = h.expect_step(Hook::UplinkIngress, &reply);
        assert_eq!(
            step.verdict, TC_ACT_UNSPEC,
            "{p}: a reply from the wire goes on"
        );
        assert_eq!(
            F::endpoints(&step.out),
            (fe, client),
            "{p}: from the frontend"
        );

        let step = h.expect_step(Hook::PodIngress, &reply);
        assert_eq!(
            step.verdict, TC_ACT_REDIRECT,
            "{p}: a reply from a local pod is redirected to the uplink's ingress"
        );
        assert_eq!(
            F::endpoints(&step.out),
            (fe, client),
            "{p}: from the frontend"
        );
        assert_eq!(
            macs(&step.out),
            (UPLINK.1, POD_MAC),
            "{p}: addressed to the uplink's MAC"
        );

        let step = h.expect_step(Hook::PodEgress, &reply);
        assert!(
            step.out == reply,
            "{p}: a host flow's reply was changed at pod egress"
        );
        let step = h.expect_step(Hook::PodIngress, &fwd);
        assert!(
            step.out == fwd,
            "{p}: a host flow's request was changed at pod ingress"
        );
    }
    check_counters(&h);
}

fn a_host_flows_reply_from_a_pod_passes_untouched_while_the_uplink_is_unknown<F: Family>() {
    require_privileged!();
    let mut h = Harness::new(Tables {
        uplink: None,
        ..standard_tables()
    });
    for proto in PROTOCOLS {
        let p = proto_name(proto);
        let client = F::sock(F::HOST_CLIENT, 50002);
        let fwd = flow::<F>(proto, client, F::SOLO, b"").bytes();
        h.expect_step(Hook::UplinkEgress, &fwd);
        let reply = flow::<F>(proto, F::SOLO_BACKEND, client, b"").bytes();
        let failed = h.counter(Counter::RedirectFailed);
        let step = h.expect_step(Hook::PodIngress, &reply);
        assert_eq!(
            step.verdict, TC_ACT_UNSPEC,
            "{p}: verdict without an uplink"
        );
        assert!(
            step.out == reply,
            "{p}: the reply was changed without an uplink to send it to"
        );
        assert_eq!(
            h.counter(Counter::RedirectFailed),
            failed + 1,
            "{p}: the failed redirect is counted"
        );
        let step = h.expect_step(Hook::UplinkIngress, &reply);
        assert_eq!(
            F::endpoints(&step.out),
            (F::SOLO, client),
            "{p}: on the uplink it is translated"
        );
    }
    check_counters(&h);
}
