//! The agent's HTTP listeners, on a thread and runtime of their own:
//! `metrics.address` over TCP, read-only (metrics and the platform's
//! probes), and the control socket, a Unix socket for root alone, which
//! serves everything that changes or reveals state (flushes, monitors, the
//! lists of names, frontends and degraded items) to the CLI. Every process
//! on the node can reach the first, so everything in both is bounded: a request carries
//! no body (one that announces one is refused unread), its headers must
//! arrive whole within `HEADER_TIMEOUT` and fit `MAX_HEADER_BYTES`, a
//! connection serves one request and lasts `REQUEST_TIMEOUT` at most (but
//! a monitor's stream), and at most `metrics.maxConnections` are open:
//! beyond it the oldest connection still waiting for its headers is closed,
//! so that idle connections can never keep the platform's probes out.

mod conns;
pub mod metrics;
pub mod published;
mod routes;

use std::{
    fs,
    future::Future,
    io,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::{bail, Context as _, Result};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    net::{TcpListener, UnixListener},
    sync::mpsc,
};
use tracing::warn;

use crate::{
    config::ListenerLimits, listener::metrics::AgentMetrics, listener::published::Health,
    monitor::Hub,
};

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

/// Where the agent's control socket is, unless `--socket` says.
pub const DEFAULT_SOCKET: &str = "/run/hairpin/hairpin.sock";

/// Who a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `metrics.address`, over TCP: metrics and the probes, read-only.
    Public,
    /// The control socket (root only): everything, flushes and monitors too.
    Control,
}

/// A bound listener, for the listener's thread to serve.
pub enum Bound {
    Tcp(std::net::TcpListener),
    Control(std::os::unix::net::UnixListener),
}

/// Binds `addr`: a port another process holds is the caller's to report
/// (a degraded item), not a reason to stop.
pub fn bind(addr: SocketAddr) -> Result<Bound> {
    let listener =
        std::net::TcpListener::bind(addr).with_context(|| format!("listening on {addr}"))?;
    listener.set_nonblocking(true)?;
    Ok(Bound::Tcp(listener))
}

/// Binds the control socket at `path`, for root alone (mode 0600). A
/// socket left there by an agent that stopped is replaced; one that an
/// agent answers on, or a file that is not a socket, is not.
pub fn bind_control(path: &Path) -> Result<Bound> {
    use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
    let shown = path.display();
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if let Ok(meta) = fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            bail!("{shown} exists and is not a socket");
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!("{shown}: another agent answers there (each agent needs its own --socket)");
        }
        fs::remove_file(path).with_context(|| format!("removing the stale {shown}"))?;
    }
    // Created 0755 under the usual umask: no other user may connect even
    // before the chmod (connecting needs write permission).
    let listener = std::os::unix::net::UnixListener::bind(path)
        .with_context(|| format!("listening on {shown}"))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    Ok(Bound::Control(listener))
}

/// The listener's thread: it serves each listener handed to it.
pub struct Listeners {
    tx: mpsc::UnboundedSender<Bound>,
}

impl Listeners {
    /// Starts the thread, with a runtime of its own, so that the agent's
    /// work (an apply, a sweep) never keeps the probes waiting.
    pub fn start(shared: Shared, limits: ListenerLimits) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (tx, rx) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("listener".into())
            .spawn(move || rt.block_on(serve(rx, shared, limits)))?;
        Ok(Self { tx })
    }

    pub fn serve(&self, bound: Bound) -> Result<()> {
        self.tx
            .send(bound)
            .map_err(|_| anyhow::anyhow!("the listener's thread is gone"))
    }
}

async fn serve(mut rx: mpsc::UnboundedReceiver<Bound>, shared: Shared, limits: ListenerLimits) {
    let routes = Arc::new(routes::Routes::new(shared, limits.monitors));
    let conns = Arc::new(conns::Conns::new(limits.connections));
    while let Some(bound) = rx.recv().await {
        let (routes, conns) = (routes.clone(), conns.clone());
        let served = match bound {
            Bound::Tcp(l) => TcpListener::from_std(l)
                .map(|l| drop(tokio::spawn(accept(l, Access::Public, routes, conns)))),
            Bound::Control(l) => UnixListener::from_std(l)
                .map(|l| drop(tokio::spawn(accept(l, Access::Control, routes, conns)))),
        };
        if let Err(e) = served {
            warn!("listener: {e}");
        }
    }
    // The agent is leaving: serve until the process ends.
    std::future::pending::<()>().await;
}

/// A listener of either kind.
trait Accept: Send + 'static {
    type Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static;
    fn next(&self) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}

impl Accept for TcpListener {
    type Stream = tokio::net::TcpStream;
    async fn next(&self) -> io::Result<Self::Stream> {
        Ok(self.accept().await?.0)
    }
}

impl Accept for UnixListener {
    type Stream = tokio::net::UnixStream;
    async fn next(&self) -> io::Result<Self::Stream> {
        Ok(self.accept().await?.0)
    }
}

async fn accept<L: Accept>(
    listener: L,
    access: Access,
    routes: Arc<routes::Routes>,
    conns: Arc<conns::Conns>,
) {
    loop {
        let stream = match listener.next().await {
            Ok(stream) => stream,
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
            let svc = routes::service(routes, access, slot.clone());
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
