//! What must come out of a hook, and how the datapath's output is held
//! against it.

use std::{collections::HashMap, fmt::Write as _};

use super::tables::{Entry, Tuple};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// `TC_ACT_UNSPEC`: the packet goes on.
    Pass,
    /// `TC_ACT_REDIRECT`.
    Redirect,
    /// Whatever the re-routing in the test's namespace gives.
    Any,
}

impl Verdict {
    pub fn admits(self, v: i32) -> bool {
        match self {
            Verdict::Pass => v == -1,
            Verdict::Redirect => v == 7,
            Verdict::Any => true,
        }
    }
}

/// How a checksum field of the expected frame compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CsumKind {
    /// 0x0000 and 0xffff are the same ones' complement number.
    Ones,
    /// A UDP checksum: zero (none) must stay exactly zero; otherwise it must
    /// not be zero, and 0xffff stands for a computed zero.
    Udp,
}

/// What happened to a frame, for the tests and the messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Passed on bit-identical.
    Untouched,
    /// A TCP or UDP packet of a flow, translated with `entry`.
    Flow { entry: Entry, new_flow: bool },
    /// An ICMP error about a flow, translated with `entry`.
    IcmpError { entry: Entry },
}

#[derive(Clone, Debug)]
pub struct Expected {
    pub action: Action,
    /// The tuple of a translated TCP or UDP packet, as it came.
    pub key: Option<Tuple>,
    pub verdict: Verdict,
    pub frame: Vec<u8>,
    /// Whether the MAC addresses are known (not on a re-routed frame).
    pub check_macs: bool,
    /// The checksum fields the model updated.
    pub csums: Vec<(usize, CsumKind)>,
}

impl Expected {
    pub fn translated(&self) -> bool {
        self.action != Action::Untouched
    }

    /// Compares what the datapath did with what it must have done.
    pub fn check(&self, verdict: i32, out: &[u8]) -> Result<(), String> {
        if !self.verdict.admits(verdict) {
            return Err(format!(
                "verdict {verdict}, expected {:?} ({:?})",
                self.verdict, self.action
            ));
        }
        if out.len() != self.frame.len() {
            return Err(format!(
                "output is {} bytes, expected {} ({:?})",
                out.len(),
                self.frame.len(),
                self.action
            ));
        }
        let mut i = if self.check_macs { 0 } else { 12 };
        while i < out.len() {
            if let Some(&(_, kind)) = self.csums.iter().find(|(off, _)| *off == i) {
                let want = u16::from_be_bytes([self.frame[i], self.frame[i + 1]]);
                let got = u16::from_be_bytes([out[i], out[i + 1]]);
                if !csum_matches(kind, want, got) {
                    return Err(format!(
                        "checksum at byte {i}: {got:#06x}, expected {want:#06x} ({kind:?}, {:?})\n{}",
                        self.action,
                        diff(&self.frame, out)
                    ));
                }
                i += 2;
                continue;
            }
            if out[i] != self.frame[i] {
                return Err(format!(
                    "byte {i} is {:#04x}, expected {:#04x} ({:?})\n{}",
                    out[i],
                    self.frame[i],
                    self.action,
                    diff(&self.frame, out)
                ));
            }
            i += 1;
        }
        Ok(())
    }
}

fn csum_matches(kind: CsumKind, want: u16, got: u16) -> bool {
    let norm = |c: u16| if c == 0 { 0xffff } else { c };
    match kind {
        CsumKind::Ones => norm(want) == norm(got),
        CsumKind::Udp if want == 0 => got == 0,
        CsumKind::Udp => got != 0 && norm(want) == norm(got),
    }
}

/// A hex dump of both frames, differing bytes marked.
pub fn diff(want: &[u8], got: &[u8]) -> String {
    let mut s = String::from("offset: expected / got\n");
    for (row, chunk) in want.chunks(16).enumerate() {
        let _ = write!(s, "{:04x}:", row * 16);
        for (j, b) in chunk.iter().enumerate() {
            let g = got.get(row * 16 + j);
            let mark = if g == Some(b) { ' ' } else { '*' };
            let _ = write!(s, " {b:02x}{mark}");
        }
        s.push_str(" / ");
        for g in got.iter().skip(row * 16).take(16) {
            let _ = write!(s, " {g:02x}");
        }
        s.push('\n');
    }
    s
}

/// Counters the datapath must have moved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Per frontend id: packets, bytes, flows.
    pub frontends: HashMap<u32, [u64; 3]>,
    pub unparsable: u64,
    pub icmp_translated: u64,
    pub redirect_failed: u64,
}
