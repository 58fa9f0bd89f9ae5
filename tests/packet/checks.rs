//! Assertions the scenarios share.

use hairpin_common::{Counter, CtDir, CtOrigin};

use crate::{
    harness::{Harness, TC_ACT_UNSPEC},
    model::{Action, Hook, Tuple},
};

/// Runs `frame` at every hook and asserts that it leaves bit-identical with
/// `TC_ACT_UNSPEC`, as the model also says.
pub fn assert_untouched_everywhere(h: &mut Harness, frame: &[u8], what: &str) {
    for hook in Hook::ALL {
        let step = h.expect_step(hook, frame);
        assert_eq!(
            step.expected.action,
            Action::Untouched,
            "the model translates {what} at {hook:?}"
        );
        assert_eq!(
            step.verdict, TC_ACT_UNSPEC,
            "verdict for {what} at {hook:?}"
        );
        assert!(step.out == frame, "{what} was changed at {hook:?}");
    }
}

/// `assert_untouched_everywhere`, the frame counted as unparsable at each
/// hook and opening no flow `key`.
pub fn assert_unparsable_everywhere(h: &mut Harness, frame: &[u8], what: &str, key: &Tuple) {
    let before = h.counter(Counter::Unparsable);
    assert_untouched_everywhere(h, frame, what);
    let hooks = Hook::ALL.len() as u64;
    assert_eq!(
        h.counter(Counter::Unparsable),
        before + hooks,
        "{what} is counted as unparsable at each of the {hooks} hooks"
    );
    assert!(h.entry(key).is_none(), "{what} opened a flow");
}

/// Asserts the conntrack entries of a flow of either family: the forward
/// one keyed by the client's tuple, the reverse one keyed by the backend's
/// reply tuple.
pub fn assert_flow_entries(h: &Harness, client: &Tuple, to: &Tuple, origin: CtOrigin) {
    let fwd = h
        .entry(client)
        .unwrap_or_else(|| panic!("no forward conntrack entry for {client:?}"));
    assert_eq!(
        fwd.dir,
        CtDir::Forward as u8,
        "direction of the forward entry"
    );
    assert_eq!(fwd.origin, origin as u8, "origin of the forward entry");
    assert_eq!(fwd.nat, *to, "tuple the forward entry leads to");
    let rev = h
        .entry(&to.reversed())
        .unwrap_or_else(|| panic!("no reverse conntrack entry for {:?}", to.reversed()));
    assert_eq!(
        rev.dir,
        CtDir::Reverse as u8,
        "direction of the reverse entry"
    );
    assert_eq!(rev.origin, origin as u8, "origin of the reverse entry");
    assert_eq!(
        rev.nat,
        client.reversed(),
        "tuple the reverse entry leads to"
    );
}

pub fn check_counters(h: &Harness) {
    h.check_counters().unwrap_or_else(|e| panic!("{e}"));
}
