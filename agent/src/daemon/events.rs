//! The datapath's monitor events, read from their ring buffer as they
//! come and handed to the monitors.

use std::path::Path;

use anyhow::Result;
use aya::maps::{MapData, RingBuf};
use hairpin_common::Event;

use crate::{datapath::loader::Datapath, datapath::pinned, monitor::Hub};

/// Events read per wake-up at most, so that a flood cannot starve the loop.
const BATCH: usize = 1024;

/// The datapath wakes the reader only once much is waiting: the rest is
/// read this often.
const POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// The hub for this datapath's monitors, its reader polled from a task.
pub fn spawn(dp: &mut Datapath, pin_dir: &Path) -> Result<Hub> {
    let (ring, config) = dp.take_monitor()?;
    let pins = pin_dir.to_owned();
    let hub = Hub::new(
        Some(config),
        Box::new(move |fm| {
            pinned::Pinned::open(&pins)
                .and_then(|p| pinned::frontends(&p))
                .map(|fes| {
                    fes.into_iter()
                        .filter(|f| f.addr == fm.addr && fm.port.is_none_or(|p| p == f.port))
                        .map(|f| f.id)
                        .collect()
                })
                .unwrap_or_default()
        }),
    );
    // SAFETY: the ring buffer owns its descriptor for as long as it lives,
    // and the AsyncFd owns the ring buffer.
    let mut fd = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE)
    }?;
    let publish = hub.clone();
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(BATCH);
        let mut tick = tokio::time::interval(POLL);
        loop {
            tokio::select! {
                ready = fd.readable_mut() => {
                    let Ok(mut guard) = ready else {
                        return;
                    };
                    if read(guard.get_inner_mut(), &mut batch) < BATCH {
                        guard.clear_ready();
                    }
                }
                _ = tick.tick() => {
                    read(fd.get_mut(), &mut batch);
                }
            }
            publish.publish(&batch);
            batch.clear();
            tokio::task::yield_now().await;
        }
    });
    Ok(hub)
}

/// Reads up to `BATCH` events into `batch`: how many.
fn read(ring: &mut RingBuf<MapData>, batch: &mut Vec<Event>) -> usize {
    while batch.len() < BATCH {
        let Some(item) = ring.next() else {
            break;
        };
        if item.len() >= size_of::<Event>() {
            // SAFETY: the datapath writes whole `Event`s; read unaligned.
            batch.push(unsafe { item.as_ptr().cast::<Event>().read_unaligned() });
        }
    }
    batch.len()
}
