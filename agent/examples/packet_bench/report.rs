//! Medians, spreads and the table.

use anyhow::{ensure, Result};

use crate::{bpf::RunResult, TC_ACT_UNSPEC};

pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

pub fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)))
}

pub fn expect_pass(r: &RunResult, what: &str) -> Result<()> {
    ensure!(
        r.retval == TC_ACT_UNSPEC,
        "{what}: returned {} instead of TC_ACT_UNSPEC",
        r.retval as i32
    );
    Ok(())
}

pub fn row(label: &str, samples: &[f64], floor: f64) {
    let m = median(samples);
    let (lo, hi) = min_max(samples);
    println!(
        "{label:<46} {m:>8.1} {:>16} {:>8.2}x",
        format!("{lo:.1}-{hi:.1}"),
        m / floor
    );
}
