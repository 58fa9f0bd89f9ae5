//! The agent's HTTP listener, on the agent's own runtime. Every process on
//! the node can reach it, so everything in it is bounded: a request carries
//! no body (one that announces one is refused unread), its headers must
//! arrive whole within `HEADER_TIMEOUT` and fit `MAX_HEADER_BYTES`, a
//! connection serves one request and lasts `REQUEST_TIMEOUT` at most (but
//! a monitor's stream), and at most `MAX_CONNECTIONS` are open: beyond it
//! the oldest connection still waiting for its headers is closed, so that
//! idle connections can never keep the platform's probes out.

mod conns;
mod routes;

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::{Context as _, Result};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tracing::warn;

use crate::{health::Health, metrics::AgentMetrics, monitor::Hub};

pub use routes::MAX_MONITORS;

/// Open connections, monitors' included.
pub const MAX_CONNECTIONS: usize = 512;
/// Time for a request's headers, from the connection's start.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Time for a whole request and its answer (a monitor's stream excepted).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A request's headers, at most (hyper's smallest read buffer).
pub const MAX_HEADER_BYTES: usize = 8192;

/// What the routes read.
pub struct Shared {
    pub pin_dir: PathBuf,
    pub metrics: AgentMetrics,
    pub health: Health,
    pub hub: Hub,
}

/// Binds `addr`: a port another process holds is the caller's to report
/// (a degraded item), not a reason to stop.
pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener> {
    let listener =
        std::net::TcpListener::bind(addr).with_context(|| format!("listening on {addr}"))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Serves `listener` from a thread and a runtime of its own, so that the
/// agent's work (an apply, a sweep) never keeps the probes waiting.
pub fn spawn(listener: std::net::TcpListener, shared: Shared) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("listener".into())
        .spawn(move || rt.block_on(serve(listener, shared)))?;
    Ok(())
}

async fn serve(listener: std::net::TcpListener, shared: Shared) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            warn!("listener: {e}");
            return;
        }
    };
    let routes = Arc::new(routes::Routes::new(shared));
    let conns = conns::Conns::new(MAX_CONNECTIONS);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors, most likely: wait for some to close.
                warn!("listener: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = conns.admit() else {
            continue;
        };
        let routes = routes.clone();
        tokio::spawn(async move {
            let svc = routes::service(routes, slot.clone());
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEADER_BYTES)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), svc);
            slot.run(conn, REQUEST_TIMEOUT).await;
        });
    }
}
