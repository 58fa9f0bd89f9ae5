//! The datapath's monitor events, read from their ring buffer as they
//! come and handed to the monitors.

use std::path::Path;

use anyhow::Result;
use aya::maps::{MapData, RingBuf};
use hairpin_common::Event;

use crate::{inspect, loader::Datapath, monitor::Hub};

/// Events read per wake-up at most, so that a flood cannot starve the loop.
const BATCH: usize = 1024;

/// The hub for this datapath's monitors, its reader polled from a task.
pub fn spawn(dp: &mut Datapath, pin_dir: &Path) -> Result<Hub> {
    let (ring, config) = dp.take_monitor()?;
    let pins = pin_dir.to_owned();
    let hub = Hub::new(
        Some(config),
        Box::new(move |fm| {
            inspect::Pinned::open(&pins)
                .and_then(|p| inspect::frontends(&p))
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
        loop {
            let Ok(mut guard) = fd.readable_mut().await else {
                return;
            };
            let ring: &mut RingBuf<MapData> = guard.get_inner_mut();
            while batch.len() < BATCH {
                let Some(item) = ring.next() else {
                    break;
                };
                if item.len() >= size_of::<Event>() {
                    // SAFETY: the datapath writes whole `Event`s; read unaligned.
                    batch.push(unsafe { item.as_ptr().cast::<Event>().read_unaligned() });
                }
            }
            if batch.len() < BATCH {
                guard.clear_ready();
            }
            publish.publish(&batch);
            batch.clear();
            tokio::task::yield_now().await;
        }
    });
    Ok(hub)
}
