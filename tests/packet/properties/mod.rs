//! Property tests: random flows, random unrelated frames and random
//! mutations of both, run through the datapath and held against the model,
//! written once over the family; a family's strategies are its own (IPv4
//! options, IPv6 extension header chains, fragments and jumbograms).
//!
//! Each test loads the datapath once and drives proptest's `TestRunner` by
//! hand; every case starts from no flows, so that cases (and shrinking)
//! stay independent while the conntrack map stays small.

use std::{cell::RefCell, time::Instant};

use proptest::{
    collection::vec,
    prelude::*,
    sample::Index,
    test_runner::{Config, RngAlgorithm, TestCaseError, TestRunner},
};

use crate::{
    fixtures::standard_tables,
    harness::{kernel_runs, verify_checksums, Harness, TC_ACT_UNSPEC},
    model::{Action, Hook},
    require_privileged,
};

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

// After `ensure!`, which they use.
mod flows;
mod ipv4;
mod ipv6;
mod per_family;

use flows::{flow_case, other_hook, run_flow, Flow};
use per_family::{Properties, Run};

family_tests!(both: [
    unrelated_frames_pass_bit_identical_at_every_hook,
    translated_frames_match_the_model_and_carry_valid_checksums,
    a_client_sees_only_the_frontend_address,
    mutated_frames_leave_exactly_as_the_model_says,
]);

/// Runs the cases of `strategy` through `body` on one loaded datapath,
/// then checks the counters against the model's and that enough frames
/// ran.
fn run_property<S: Strategy>(
    run: Run,
    strategy: S,
    body: impl Fn(&mut Harness, S::Value) -> Result<(), String>,
) {
    let name = std::thread::current().name().unwrap_or("?").to_owned();
    let Run { cases, min_frames } = run.capped();
    let harness = RefCell::new(Harness::new(standard_tables()));
    let start = Instant::now();
    let mut runner = TestRunner::new(Config {
        cases,
        // No regression files: a failure is reported with its minimal input.
        failure_persistence: None,
        max_shrink_iters: 2000,
        // Unoptimised, the default ChaCha generator took most of the time
        // of a case; XorShift is plenty for test inputs.
        rng_algorithm: RngAlgorithm::XorShift,
        ..Config::default()
    });
    let result = runner.run(&strategy, |case| {
        let mut h = harness.borrow_mut();
        h.clear_flows();
        body(&mut h, case).map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    let h = harness.into_inner();
    h.check_counters()
        .unwrap_or_else(|e| panic!("{name}: counters after {cases} cases: {e}"));
    let c = &h.model.counters;
    eprintln!(
        "{name}: {cases} cases, {} frames ({} of flows translated, {} ICMP errors \
         translated, {} unparsable), {:.1?}",
        h.frames,
        c.frontends.values().map(|s| s[0]).sum::<u64>(),
        c.icmp_translated,
        c.unparsable,
        start.elapsed()
    );
    assert!(
        h.frames >= min_frames,
        "{name}: only {} frames ran, expected at least {min_frames}",
        h.frames
    );
}

fn unrelated_frames_pass_bit_identical_at_every_hook<F: Properties>() {
    require_privileged!();
    run_property(F::UNRELATED, F::noise(), |h, noise| {
        let frame = F::noise_bytes(&noise);
        if !kernel_runs(&frame) {
            return Err(format!("a frame the kernel refuses: {noise:?}"));
        }
        for hook in Hook::ALL {
            let step = h.step(hook, &frame)?;
            ensure!(
                step.expected.action == Action::Untouched,
                "the model translates an unrelated frame at {hook:?}: {:?}",
                step.expected.action
            );
            ensure!(
                step.verdict == TC_ACT_UNSPEC,
                "verdict {} at {hook:?}",
                step.verdict
            );
            ensure!(step.out == frame, "the frame was changed at {hook:?}");
        }
        Ok(())
    });
}

fn translated_frames_match_the_model_and_carry_valid_checksums<F: Properties>() {
    require_privileged!();
    run_property(F::TRANSLATED, flow_case::<F>(), |h, case| {
        let run = run_flow(h, &case)?;
        // `step` checked the bytes against the model and, for frames built
        // valid, their checksums with etherparse.
        for (what, input, step) in [
            ("request", &run.flow.request, &run.request),
            ("reply", &run.reply_frame, &run.reply),
            ("error", &run.error_frame, &run.error),
        ] {
            if F::UDP_CHECKSUM_REQUIRED && what != "error" && F::zero_udp_checksum(input) {
                ensure!(
                    F::zero_udp_checksum(&step.out),
                    "a zero UDP checksum of the {what} was changed"
                );
                continue;
            }
            verify_checksums(input)
                .map_err(|e| format!("the {what} was built with bad checksums: {e}"))?;
            if step.expected.translated() {
                verify_checksums(&step.out).map_err(|e| format!("translated {what}: {e}"))?;
            }
        }
        Ok(())
    });
}

fn a_client_sees_only_the_frontend_address<F: Properties>() {
    require_privileged!();
    run_property(F::CLIENT, flow_case::<F>(), |h, case| {
        let run = run_flow(h, &case)?;
        let Flow {
            frontend,
            fe_addr,
            client,
            ..
        } = &run.flow;
        let (fe_addr, client) = (*fe_addr, *client);
        let (seen_src, backend) = F::endpoints(&run.request.out);
        ensure!(
            frontend.backends.contains(&backend.into()),
            "the request went to {backend}, not one of {:?}",
            frontend.backends
        );
        let looped = F::ip(backend) == F::ip(client) && run.flow.request_hook == Hook::PodIngress;
        let want_src = if looped {
            F::sock(F::ip(fe_addr), F::port(client))
        } else {
            client
        };
        ensure!(
            seen_src == want_src,
            "the backend sees {seen_src}, expected {want_src}"
        );
        ensure!(
            F::endpoints(&run.reply.out) == (fe_addr, client),
            "the client receives a reply {:?}, expected from {fe_addr} to {client}",
            F::endpoints(&run.reply.out),
        );
        for (what, input, out) in [
            ("request", &run.flow.request, &run.request.out),
            ("reply", &run.reply_frame, &run.reply.out),
            ("error", &run.error_frame, &run.error.out),
        ] {
            F::check_kept(what, input, out)?;
        }

        if matches!(run.error.expected.action, Action::IcmpError { .. }) {
            let out = &run.error.out;
            let want_src = if F::from_router(&case.error) {
                F::ROUTER
            } else {
                F::ip(fe_addr)
            };
            ensure!(
                F::src(out) == want_src,
                "the error comes from {}",
                F::src(out)
            );
            ensure!(
                F::dst(out) == F::ip(client),
                "the error goes to {}",
                F::dst(out)
            );
            F::check_quote(F::quote(out), client, fe_addr, &run.request.out)?;
        } else {
            ensure!(
                run.error.out == run.error_frame,
                "an untranslated error was changed"
            );
        }
        Ok(())
    });
}

#[derive(Clone, Copy, Debug)]
enum Target {
    /// The request that opens the flow.
    FirstRequest,
    /// A later request of the flow.
    Request,
    Reply,
    Error,
}

fn mutated_frames_leave_exactly_as_the_model_says<F: Properties>() {
    require_privileged!();
    let target = prop_oneof![
        Just(Target::FirstRequest),
        Just(Target::Request),
        Just(Target::Reply),
        Just(Target::Error)
    ];
    let cases = (
        flow_case::<F>(),
        target,
        vec(F::mutation(), 1..=3),
        any::<Index>(),
    );
    run_property(F::MUTATED, cases, |h, (case, target, mutations, stray)| {
        let flow = case.flow();
        let (frame, hook) = if let Target::FirstRequest = target {
            (flow.request.clone(), flow.request_hook)
        } else {
            let request = h.step(flow.request_hook, &flow.request)?;
            let Action::Flow { entry, .. } = request.expected.action else {
                return Err("the request opened no flow".into());
            };
            let reply_hook = case.reply_hook(entry.origin);
            let (seen_src, backend) = F::endpoints(&request.out);
            let proto = flow.frontend.proto;
            match target {
                Target::Request => (
                    F::build(proto, flow.client, flow.fe_addr, &case.reply),
                    flow.request_hook,
                ),
                Target::Reply => (F::build(proto, backend, seen_src, &case.reply), reply_hook),
                _ => (F::error(&case.error, &request.out), reply_hook),
            }
        };
        let mutated = F::mutate(&frame, &mutations);
        if !kernel_runs(&mutated) {
            // Flipped into an ethertype whose header is not there.
            return Ok(());
        }
        h.step(hook, &mutated)?;
        h.step(other_hook(hook, &stray), &mutated)?;
        Ok(())
    });
}
