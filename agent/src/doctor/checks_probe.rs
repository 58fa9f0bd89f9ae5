//! The problem itself, for one TCP frontend: does NAT loopback work from
//! this node without hairpin, does a connection through hairpin reach a
//! backend, and does each backend answer directly.

use super::{Check, Finding};

/// The probes of one frontend.
pub struct Probe<'a> {
    /// `address:port`.
    pub frontend: &'a str,
    /// A connection hairpin leaves alone (its socket carries `PROBE_MARK`);
    /// `None` when it could not be made (marking refused while hairpin
    /// serves the node: an unmarked one would go through hairpin).
    pub bypass: Option<&'a Result<(), String>>,
    /// An unmarked connection, when hairpin's datapath serves the node.
    pub through: Option<&'a Result<(), String>>,
    /// A connection to each backend, directly.
    pub backends: &'a [(String, Result<(), String>)],
}

/// The verdicts: "nat loopback" (without hairpin), "through hairpin" (when
/// it serves), "backends" (when there are any).
pub fn loopback(p: &Probe) -> Vec<Check> {
    let fe = p.frontend;
    let answering: Vec<&str> = p
        .backends
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(b, _)| b.as_str())
        .collect();
    let silent: Vec<String> = p
        .backends
        .iter()
        .filter_map(|(b, r)| r.as_ref().err().map(|e| format!("{b}: {e}")))
        .collect();
    let served = p.through.is_some();
    let mut out = vec![match p.bypass {
        None => Check::warn(
            "nat loopback",
            format!("{fe}: not probed without hairpin (the probe's SO_MARK needs CAP_NET_ADMIN)"),
            "run the doctor as root, or with CAP_NET_ADMIN",
        ),
        Some(Ok(())) => Check::ok(
            "nat loopback",
            format!("{fe} works without hairpin: this node needs none for it"),
        )
        .found(Finding::NotNeeded),
        Some(Err(e)) if !answering.is_empty() => {
            let evidence = format!(
                "{fe}: {e}, while {} answer directly: the router does no NAT loopback, \
                 hairpin is needed",
                answering.join(", ")
            );
            if served {
                Check::ok("nat loopback", evidence)
            } else {
                Check::fail(
                    "nat loopback",
                    evidence,
                    "hairpin is needed: start it with this configuration",
                )
            }
            .found(Finding::HairpinNeeded)
        }
        Some(Err(e)) if p.backends.is_empty() => Check::warn(
            "nat loopback",
            format!("{fe} fails for another reason: {e}, and it has no backends"),
            "give the redirect backends",
        )
        .found(Finding::OtherFailure),
        Some(Err(e)) => Check::fail(
            "nat loopback",
            format!(
                "{fe} fails for another reason: {e}; no backend answers either ({})",
                silent.join("; ")
            ),
            "start the backends, or check the redirect's backends and ports",
        )
        .found(Finding::OtherFailure),
    }];
    match p.through {
        None => {}
        Some(Ok(())) => out.push(Check::ok(
            "through hairpin",
            format!("{fe} reaches a backend through hairpin"),
        )),
        Some(Err(e)) => out.push(Check::fail(
            "through hairpin",
            format!("{fe} through hairpin: {e}"),
            if answering.is_empty() {
                "no backend answers: start them, or check the redirect's backends and ports"
            } else {
                "hairpin serves it but the connection fails: see `hairpin ct list` and the \
                 counters"
            },
        )),
    }
    if !p.backends.is_empty() {
        out.push(if silent.is_empty() {
            Check::ok(
                "backends",
                format!("{fe}: {} answer directly", answering.join(", ")),
            )
        } else {
            Check::warn(
                "backends",
                format!("{fe}: {}", silent.join("; ")),
                "flows sent to a silent backend fail: start it, or remove it from the redirect",
            )
        });
    }
    out
}

#[cfg(test)]
#[path = "checks_probe_tests.rs"]
mod tests;
