//! ICMP and ICMPv6 errors about a flow's packets: translated with the flow
//! wherever its replies are, a router's source kept.

use hairpin_common::Counter;

use crate::{
    checks::check_counters,
    families::{flow, Family},
    fixtures::{proto_name, standard_tables, Opened},
    frames::{Frame, ETH_LEN, PROTOCOLS},
    harness::{verify_checksums, Harness},
    model::Action,
    require_privileged,
};

family_tests!(both: [
    icmp_errors_from_a_backend_reach_the_client_as_from_the_frontend,
    icmp_errors_from_a_router_keep_the_routers_source,
]);

fn icmp_errors_from_a_backend_reach_the_client_as_from_the_frontend<F: Family>() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    for proto in PROTOCOLS {
        for opened in Opened::ALL {
            for &(error, icmp_type, code, rest) in F::ICMP_ERRORS {
                for (quote, quote_len) in F::QUOTES {
                    let p = format!("{} {opened:?} {error}, {quote} quoted", proto_name(proto));
                    h.clear_flows();
                    let client = opened.client::<F>(42000);
                    let fwd = flow::<F>(proto, client, F::SOLO, b"are you there?").bytes();
                    let sent = h.expect_step(opened.request_hook(), &fwd).out;
                    let (seen_src, backend) = F::endpoints(&sent);
                    assert_eq!(
                        backend,
                        F::SOLO_BACKEND,
                        "{p}: the request reached the backend"
                    );

                    let err = Frame::<F::Ip>::icmp_error(
                        F::ip(backend),
                        F::ip(seen_src),
                        icmp_type,
                        code,
                        rest,
                        &sent[ETH_LEN..],
                        quote_len,
                    )
                    .bytes();
                    let translated = h.counter(Counter::IcmpTranslated);
                    let step = h.expect_step(opened.reply_hook(), &err);
                    assert!(
                        matches!(step.expected.action, Action::IcmpError { .. }),
                        "{p}: the model translates the error"
                    );
                    assert_eq!(step.verdict, opened.reply_verdict(), "{p}: verdict");
                    assert_eq!(
                        F::src(&step.out),
                        F::ip(F::SOLO),
                        "{p}: the error comes from the frontend"
                    );
                    assert_eq!(
                        F::dst(&step.out),
                        F::ip(client),
                        "{p}: the error goes to the client"
                    );
                    assert_eq!(
                        &F::l4(&step.out)[..2],
                        &[icmp_type, code],
                        "{p}: type and code"
                    );
                    assert_eq!(
                        &F::l4(&step.out)[4..8],
                        &rest,
                        "{p}: the MTU and unused bytes"
                    );
                    assert_eq!(
                        F::endpoints_of_ip(F::quote(&step.out)),
                        (client, F::SOLO),
                        "{p}: the quoted packet is the client's, to the frontend"
                    );
                    verify_checksums(&step.out)
                        .unwrap_or_else(|e| panic!("{p}: checksums of the translated error: {e}"));
                    assert_eq!(
                        h.counter(Counter::IcmpTranslated),
                        translated + 1,
                        "{p}: the translated error is counted"
                    );
                }
            }
        }
    }
    check_counters(&h);
}

fn icmp_errors_from_a_router_keep_the_routers_source<F: Family>() {
    require_privileged!();
    let mut h = Harness::new(standard_tables());
    for proto in PROTOCOLS {
        for opened in [Opened::Pod, Opened::HostViaUplink] {
            let p = format!("{} {opened:?}", proto_name(proto));
            let client = opened.client::<F>(42100);
            let fwd = flow::<F>(proto, client, F::SOLO, b"far away").bytes();
            let sent = h.expect_step(opened.request_hook(), &fwd).out;
            let err = Frame::<F::Ip>::icmp_error(
                F::ROUTER,
                F::ip(client),
                F::TIME_EXCEEDED,
                0,
                [0; 4],
                &sent[ETH_LEN..],
                usize::MAX,
            )
            .bytes();
            let step = h.expect_step(opened.reply_hook(), &err);
            assert_eq!(
                F::src(&step.out),
                F::ROUTER,
                "{p}: the router stays the source"
            );
            assert_eq!(F::dst(&step.out), F::ip(client), "{p}: to the client");
            assert_eq!(
                F::endpoints_of_ip(F::quote(&step.out)),
                (client, F::SOLO),
                "{p}: the quoted packet is the client's, to the frontend"
            );
            verify_checksums(&step.out)
                .unwrap_or_else(|e| panic!("{p}: checksums of the translated error: {e}"));
        }
    }
    check_counters(&h);
}
