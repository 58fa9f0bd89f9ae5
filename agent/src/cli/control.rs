//! What only the running agent knows, asked on its control socket: what it
//! cannot serve (`/degraded`), the names it follows (`/names`), its
//! monitors' events and flushes. The pinned maps say what is installed.

use std::{
    io::{Read as _, Write as _},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{bail, Context as _, Result};

use serde::de::DeserializeOwned;

use crate::{
    listener::published::{ClusterView, Degraded, SocketView},
    sources::dns::NameView,
};

/// The agent is on this node: it answers at once or not at all.
const TIMEOUT: Duration = Duration::from_secs(2);

/// `--socket`: the agent's control socket (its `hairpin run --socket`).
#[derive(clap::Args)]
pub struct AgentArgs {
    #[arg(long, env = "HAIRPIN_SOCKET", default_value = crate::listener::DEFAULT_SOCKET)]
    socket: PathBuf,
}

impl AgentArgs {
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    fn connect(&self) -> Result<UnixStream> {
        let conn = UnixStream::connect(&self.socket)
            .with_context(|| format!("connecting to {}", self.socket.display()))?;
        conn.set_write_timeout(Some(TIMEOUT))?;
        Ok(conn)
    }

    /// The agent's degraded items; `None`, with a word on stderr, when it
    /// cannot be asked (stopped, or its listener is off).
    pub fn degraded(&self) -> Option<Vec<Degraded>> {
        self.ask("/degraded", "what is not served")
    }

    /// The frontends' names, when the agent can be asked.
    pub fn names(&self) -> Option<Vec<NameView>> {
        self.ask("/names", "the frontends' names")
    }

    /// Kubernetes mode's state, when the agent can be asked.
    pub fn cluster(&self) -> Option<ClusterView> {
        self.ask("/cluster", "the cluster")
    }

    /// Who takes the socket path beside the node's own processes.
    pub fn sockets(&self) -> Option<SocketView> {
        self.ask("/sockets", "the socket path's cgroups")
    }

    /// What the agent applied, with where each frontend comes from.
    pub fn frontends(&self) -> Option<Vec<crate::config::Frontend>> {
        self.ask("/frontends", "where the frontends come from")
    }

    /// Ends flows through the agent (see `conntrack::flows::flush`): how
    /// many, or `None` when no agent answers.
    pub fn flush(&self, frontend_id: Option<u32>) -> Option<usize> {
        let path = frontend_id.map_or("/flush".into(), |id| format!("/flush?frontend={id}"));
        let reply = || -> Result<usize> {
            let mut conn = self.connect()?;
            conn.set_read_timeout(Some(Duration::from_secs(30)))?;
            write!(conn, "POST {path} HTTP/1.0\r\nHost: hairpin\r\n\r\n")?;
            let mut reply = String::new();
            conn.read_to_string(&mut reply)?;
            let (head, body) = reply.split_once("\r\n\r\n").context("not an HTTP reply")?;
            if !head.lines().next().is_some_and(|l| l.contains(" 200 ")) {
                bail!("{}", body.trim());
            }
            Ok(body.trim().parse()?)
        };
        reply()
            .inspect_err(|e| {
                eprintln!(
                    "hairpin: flushing through the agent at {}: {e:#}",
                    self.socket.display()
                )
            })
            .ok()
    }

    /// The agent's event stream for `query`, past its header.
    pub fn events(&self, query: &str) -> Result<std::io::BufReader<UnixStream>> {
        use std::io::BufRead as _;
        let mut conn = self
            .connect()
            .context("the agent does not answer: monitor needs the running agent")?;
        write!(
            conn,
            "GET /events?{query} HTTP/1.0\r\nHost: hairpin\r\n\r\n"
        )?;
        let mut r = std::io::BufReader::new(conn);
        let mut status = String::new();
        r.read_line(&mut status)?;
        let mut line = String::new();
        while r.read_line(&mut line)? > 2 {
            line.clear();
        }
        if !status.contains(" 200 ") {
            let mut body = String::new();
            r.read_to_string(&mut body)?;
            bail!("the agent refused: {}", body.trim());
        }
        Ok(r)
    }

    fn ask<T: DeserializeOwned>(&self, path: &str, what: &str) -> Option<T> {
        match self.fetch(path) {
            Ok(v) => Some(v),
            Err(e) => {
                eprintln!(
                    "hairpin: {what}: unknown: the agent at {}: {e:#}",
                    self.socket.display()
                );
                None
            }
        }
    }

    fn fetch<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let mut conn = self.connect()?;
        conn.set_read_timeout(Some(TIMEOUT))?;
        write!(conn, "GET {path} HTTP/1.0\r\nHost: hairpin\r\n\r\n")?;
        let mut reply = String::new();
        conn.read_to_string(&mut reply).context("reading")?;
        let (head, body) = reply.split_once("\r\n\r\n").context("not an HTTP reply")?;
        if !head.lines().next().is_some_and(|l| l.contains(" 200 ")) {
            bail!("{}", head.lines().next().unwrap_or_default());
        }
        serde_json::from_str(body).with_context(|| format!("not the JSON of {path}"))
    }
}

/// Prints the items as lines after a table.
pub fn print_lines(items: &[Degraded]) {
    for d in items {
        println!("degraded: {} {}: {}", d.kind, d.item, d.reason);
    }
}

/// Kubernetes mode in a few lines: the connection, then each object that
/// is not simply applied.
pub fn print_cluster(c: &ClusterView) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = c.last_sync.map_or("never".into(), |t| {
        format!("{} s ago", now.saturating_sub(t))
    });
    let state = match (c.connected, c.synced) {
        (true, true) => "connected",
        (true, false) => "connected, listing",
        (false, true) => "not connected, serving the last known state",
        (false, false) => "not connected, serving the state file",
    };
    println!("kubernetes: {state}; last word from the API server {last}");
    if let Some(e) = &c.error {
        println!("kubernetes: {e}");
    }
    for r in &c.reports {
        let note = r.note();
        if !note.is_empty() {
            println!("kubernetes: {} {:?}: {note}", r.source, r.state);
        }
    }
}

/// The cgroups and pods on the socket path, and the pods left to TC with
/// why.
pub fn print_sockets(s: &SocketView) {
    for c in &s.cgroups {
        match &c.unseen {
            None => println!("socket path: cgroup {} ({})", c.path, c.by),
            Some(why) => println!(
                "socket path: cgroup {} ({}): not served: {why}",
                c.path, c.by
            ),
        }
    }
    for p in &s.pods {
        let path = if p.socket { "socket path" } else { "TC path" };
        println!("pod {}: {path}: {}", p.pod, p.why);
    }
}
