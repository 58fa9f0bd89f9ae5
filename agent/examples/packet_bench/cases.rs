//! What is measured: one frame at one program, and what every run of it
//! must have done.

use anyhow::{ensure, Result};

use crate::{datapath::Hairpin, report::expect_pass};

/// Runs case `c` on `hp` and checks what every run did: the counters
/// show as many translations (or new flows) as runs, and after an even
/// number of runs a mirrored packet is back in its original form.
pub fn checked(hp: &mut Hairpin, c: &Case, repeat: u32) -> Result<f64> {
    let what = c.name;
    let (p0, f0) = hp.counted()?;
    let r = hp.run(c.prog, &c.frame, repeat)?;
    expect_pass(&r, what)?;
    let (p1, f1) = hp.counted()?;
    let want = if c.expect == Expect::Untouched {
        0
    } else {
        u64::from(repeat)
    };
    ensure!(
        p1 - p0 == want,
        "{what}: {} of {repeat} runs translated the packet, expected {want}",
        p1 - p0
    );
    if c.expect == Expect::NewFlow {
        ensure!(
            f1 - f0 == want,
            "{what}: {} of {repeat} runs opened a flow",
            f1 - f0
        );
    }
    ensure!(
        r.out == c.frame,
        "{what}: the packet did not come back to its original form"
    );
    Ok(f64::from(r.ns))
}

/// What a case checks after each run.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Passed unchanged, nothing counted.
    Untouched,
    /// Every run translated the packet.
    Translated,
    /// Every run opened a new flow.
    NewFlow,
}

/// A case measured with a large repeat count on one frame.
pub struct Case {
    pub name: &'static str,
    pub label: String,
    /// Index into the datapaths; `None`: the empty program.
    pub hp: Option<usize>,
    pub prog: &'static str,
    pub frame: Vec<u8>,
    pub expect: Expect,
    pub samples: Vec<f64>,
}
