//! The listener's side of monitors: `GET /events?…` streams JSON lines
//! until the monitor goes away; `POST /flush?frontend=ID` ends flows as
//! `hairpin ct flush` would, so that monitors hear of it.

use std::{path::Path, time::Duration};

use anyhow::Result;
use hairpin_common::EndReason;

use super::Subscription;
use crate::{conntrack::flows, datapath::pinned};

/// An idle stream writes an empty line this often: a monitor that went
/// away is noticed, and its filter leaves the datapath.
const HEARTBEAT: Duration = Duration::from_secs(2);

/// A monitor's next lines: the events that came, or after `HEARTBEAT`
/// with none an empty line; `None` once the hub is gone.
pub async fn next_lines(sub: &mut Subscription) -> Option<String> {
    let first = match tokio::time::timeout(HEARTBEAT, sub.rx.recv()).await {
        Ok(first) => first?,
        Err(_) => return Some("\n".into()),
    };
    let mut out = String::new();
    let mut next = Some(first);
    while let Some(e) = next {
        if let Ok(line) = serde_json::to_string(&e) {
            out.push_str(&line);
            out.push('\n');
        }
        next = sub.rx.try_recv().ok();
    }
    Some(out)
}

/// Ends the flows of frontend `id` (every flow without one) in the maps
/// pinned under `pin_dir`.
pub fn flush(pin_dir: &Path, id: Option<u32>) -> Result<flows::Ended> {
    let mut pinned = pinned::Pinned::open(pin_dir)?;
    let ours = |f: &flows::FlowView<_>| id.is_none_or(|id| f.frontend_id == id);
    let mut ended = flows::end_flows(&mut pinned.v4.conntrack, EndReason::Flushed, ours)?;
    let ours = |f: &flows::FlowView<_>| id.is_none_or(|id| f.frontend_id == id);
    ended.add(flows::end_flows(
        &mut pinned.v6.conntrack,
        EndReason::Flushed,
        ours,
    )?);
    Ok(ended)
}
