//! The listener's side of monitors: `GET /events?…` streams JSON lines
//! until the monitor goes away; `POST /flush?frontend=ID` ends flows as
//! `hairpin ct flush` would, so that monitors hear of it.

use std::{io::Write as _, path::Path, sync::mpsc::RecvTimeoutError, time::Duration};

use anyhow::Result;
use hairpin_common::EndReason;

use super::{filter::Filter, Hub};
use crate::{flows, inspect};

/// An idle stream writes an empty line this often: a monitor that went
/// away is noticed, and its filter leaves the datapath.
const HEARTBEAT: Duration = Duration::from_secs(2);

/// Serves one monitor from a thread of its own.
pub fn events(req: tiny_http::Request, hub: Hub) {
    let query = req.url().split_once('?').map_or("", |(_, q)| q).to_owned();
    let filter = match Filter::from_query(&query) {
        Ok(f) => f,
        Err(e) => {
            let resp = tiny_http::Response::from_string(format!("{e:#}\n")).with_status_code(400);
            // Ignored error: the client went away.
            let _ = req.respond(resp);
            return;
        }
    };
    std::thread::spawn(move || {
        let sub = hub.subscribe(filter);
        let mut w = req.into_writer();
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n\
                    Cache-Control: no-cache\r\nConnection: close\r\n\r\n";
        if w.write_all(head.as_bytes())
            .and_then(|()| w.flush())
            .is_err()
        {
            return;
        }
        loop {
            let mut out = String::new();
            match sub.rx.recv_timeout(HEARTBEAT) {
                Ok(first) => {
                    for e in std::iter::once(first).chain(sub.rx.try_iter()) {
                        if let Ok(line) = serde_json::to_string(&e) {
                            out.push_str(&line);
                            out.push('\n');
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => out.push('\n'),
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if w.write_all(out.as_bytes())
                .and_then(|()| w.flush())
                .is_err()
            {
                return;
            }
        }
    });
}

/// Ends the flows of frontend `id` (every flow without one) in the maps
/// pinned under `pin_dir`.
pub fn flush(pin_dir: &Path, id: Option<u32>) -> Result<flows::Ended> {
    let mut pinned = inspect::Pinned::open(pin_dir)?;
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

/// `POST /flush`: the flush, and its events to the monitors.
pub fn flush_request(req: tiny_http::Request, pin_dir: &Path, hub: &Hub) {
    let id = req
        .url()
        .split_once("?frontend=")
        .map(|(_, id)| id.parse::<u32>());
    let (code, body) = match id.transpose() {
        Err(e) => (400, format!("frontend id: {e}\n")),
        Ok(id) => match flush(pin_dir, id) {
            Ok(ended) => {
                hub.publish(&ended.events);
                (200, format!("{}\n", ended.flows))
            }
            Err(e) => (500, format!("{e:#}\n")),
        },
    };
    // Ignored error: the client went away.
    let _ = req.respond(tiny_http::Response::from_string(body).with_status_code(code));
}
