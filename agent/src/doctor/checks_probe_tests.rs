//! The probes' verdicts from recorded inputs.

use super::*;
use crate::doctor::{Finding, Verdict};

type Conn = Result<(), String>;

fn refused() -> Conn {
    Err("Connection refused (os error 111)".to_string())
}

fn b(r: Conn) -> Vec<(String, Conn)> {
    vec![("198.51.100.2:80".to_string(), r)]
}

fn run(bypass: Option<&Conn>, through: Option<&Conn>, backends: &[(String, Conn)]) -> Vec<Check> {
    loopback(&Probe {
        frontend: "203.0.113.10:8080",
        bypass,
        through,
        backends,
    })
}

fn verdicts(checks: &[Check]) -> Vec<(&'static str, Verdict)> {
    checks.iter().map(|c| (c.check, c.verdict)).collect()
}

#[test]
fn without_hairpin_a_missing_nat_loopback_is_told_from_a_dead_backend() {
    let needed = run(Some(&refused()), None, &b(Ok(())));
    assert_eq!(
        verdicts(&needed),
        [("nat loopback", Verdict::Fail), ("backends", Verdict::Ok)]
    );
    assert_eq!(
        needed[0].evidence,
        "203.0.113.10:8080: Connection refused (os error 111), while 198.51.100.2:80 answer \
         directly: the router does no NAT loopback, hairpin is needed"
    );
    assert_eq!(
        needed[0].advice,
        "hairpin is needed: start it with this configuration"
    );
    assert_eq!(needed[0].finding, Some(Finding::HairpinNeeded));
    assert_eq!(
        needed[1].evidence,
        "203.0.113.10:8080: 198.51.100.2:80 answer directly"
    );

    let dead = run(Some(&refused()), None, &b(refused()));
    assert_eq!(
        verdicts(&dead),
        [("nat loopback", Verdict::Fail), ("backends", Verdict::Warn)]
    );
    assert!(
        dead[0]
            .evidence
            .starts_with("203.0.113.10:8080 fails for another reason")
            && dead[0].evidence.contains("no backend answers either"),
        "{}",
        dead[0].evidence
    );
    assert_eq!(dead[0].finding, Some(Finding::OtherFailure));
    assert_eq!(run(Some(&refused()), None, &[])[0].verdict, Verdict::Warn);

    let works = run(Some(&Ok(())), None, &b(Ok(())));
    assert_eq!(
        (works[0].verdict, works[0].evidence.as_str()),
        (
            Verdict::Ok,
            "203.0.113.10:8080 works without hairpin: this node needs none for it"
        )
    );
    assert_eq!(works[0].finding, Some(Finding::NotNeeded));
}

#[test]
fn with_hairpin_the_marked_probe_still_finds_the_problem_and_the_unmarked_one_the_fix() {
    let fixed = run(Some(&refused()), Some(&Ok(())), &b(Ok(())));
    assert_eq!(
        verdicts(&fixed),
        [
            ("nat loopback", Verdict::Ok),
            ("through hairpin", Verdict::Ok),
            ("backends", Verdict::Ok)
        ]
    );
    assert!(
        fixed[0]
            .evidence
            .ends_with("the router does no NAT loopback, hairpin is needed"),
        "{}",
        fixed[0].evidence
    );
    assert_eq!(
        fixed[1].evidence,
        "203.0.113.10:8080 reaches a backend through hairpin"
    );

    let broken = run(Some(&refused()), Some(&refused()), &b(Ok(())));
    assert_eq!(broken[1].verdict, Verdict::Fail);
    assert!(
        broken[1].advice.contains("hairpin ct list"),
        "{:?}",
        broken[1]
    );
    let dead = run(Some(&refused()), Some(&refused()), &b(refused()));
    assert_eq!(
        verdicts(&dead),
        [
            ("nat loopback", Verdict::Fail),
            ("through hairpin", Verdict::Fail),
            ("backends", Verdict::Warn)
        ]
    );
    assert!(
        dead[1].advice.starts_with("no backend answers"),
        "{:?}",
        dead[1]
    );

    // Unmarkable while hairpin serves: the bypass is not guessed.
    let unmarked = run(None, Some(&Ok(())), &b(Ok(())));
    assert_eq!(unmarked[0].verdict, Verdict::Warn);
    assert!(unmarked[0].evidence.contains("not probed without hairpin"));
}
