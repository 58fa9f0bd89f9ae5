//! The datapath's aya-log records, forwarded to the log.

use anyhow::Result;

use crate::datapath::loader::Datapath;

/// Polls the datapath's log ring buffer from a task. The logger must stay
/// alive and be polled, or the datapath's records are lost.
pub fn spawn(dp: &mut Datapath) -> Result<()> {
    let logger = aya_log::EbpfLogger::init(&mut dp.ebpf)?;
    // SAFETY: the logger owns its ring buffer's descriptor for as long as
    // it lives, and the AsyncFd owns the logger.
    let mut fd = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(logger, tokio::io::Interest::READABLE)
    }
    .map_err(|e| anyhow::anyhow!("polling the datapath logger: {e}"))?;
    tokio::spawn(async move {
        loop {
            let Ok(mut guard) = fd.readable_mut().await else {
                return;
            };
            guard.get_inner_mut().flush();
            guard.clear_ready();
        }
    });
    Ok(())
}
