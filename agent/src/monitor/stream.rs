//! The listener's side of monitors: `GET /events?…` streams JSON lines
//! until the monitor goes away.

use std::time::Duration;

use super::Subscription;

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
