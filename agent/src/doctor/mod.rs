//! `hairpin doctor`: what is wrong on a node, as a checklist of verdicts
//! with their evidence and what to do. Each check is a pure function of
//! facts read from the node (`facts`), so that every verdict can be tested
//! from recorded inputs; reading the facts changes nothing.

pub mod checks;
pub mod checks_network;
pub mod checks_pods;
pub mod checks_probe;
pub mod checks_sockets;
pub mod checks_system;
pub mod facts;
pub mod facts_network;
pub mod probe;

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Warn,
    Fail,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
        }
    }
}

/// One line of the checklist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    pub check: &'static str,
    pub verdict: Verdict,
    /// What was seen.
    pub evidence: String,
    /// What to do, when not ok.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub advice: String,
    /// What a frontend's probe found, for scripts (`nat loopback` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finding: Option<Finding>,
}

/// What a frontend's probe without hairpin found: whether hairpin is
/// needed, which the verdict alone does not tell (a frontend that fails
/// for another reason fails too).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Finding {
    /// The frontend fails and its backends answer: no NAT loopback.
    HairpinNeeded,
    /// The frontend works without hairpin.
    NotNeeded,
    /// The frontend fails, and so do its backends (or it has none).
    OtherFailure,
}

impl Check {
    pub fn ok(check: &'static str, evidence: impl Into<String>) -> Self {
        Self {
            check,
            verdict: Verdict::Ok,
            evidence: evidence.into(),
            advice: String::new(),
            finding: None,
        }
    }

    pub fn found(self, finding: Finding) -> Self {
        Self {
            finding: Some(finding),
            ..self
        }
    }

    pub fn warn(
        check: &'static str,
        evidence: impl Into<String>,
        advice: impl Into<String>,
    ) -> Self {
        Self {
            verdict: Verdict::Warn,
            advice: advice.into(),
            ..Self::ok(check, evidence)
        }
    }

    pub fn fail(
        check: &'static str,
        evidence: impl Into<String>,
        advice: impl Into<String>,
    ) -> Self {
        Self {
            verdict: Verdict::Fail,
            ..Self::warn(check, evidence, advice)
        }
    }
}
