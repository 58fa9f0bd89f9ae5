//! Kubernetes mode's cost: how long an EndpointSlice update takes to reach
//! the maps (p50, p99), and the agent's memory with a large cluster
//! (10,000 Services, 50,000 endpoints) against the same agent with only
//! the redirected Services (the baseline, in the same run).
//!
//! Runs the agent in a network namespace of its own, against the tests' API
//! server (tests/support/apiserver/) on that namespace's loopback; both
//! are removed on exit. Addresses: fd00::/8 endpoints, 2001:db8::/32
//! frontends.
//!
//!   cluster_bench --hairpin target/release/hairpin [--quick] [--tsv]

#[path = "../../../tests/support/apiserver/mod.rs"]
#[allow(dead_code, reason = "the bench uses part of the tests' server")]
mod apiserver;

use std::{
    fs,
    net::Ipv6Addr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};
use serde_json::{json, Value};

use apiserver::ApiServer;

/// Services with a redirect each: their updates are timed.
const REDIRECTED: usize = 100;
const ENDPOINTS_PER_SERVICE: usize = 5;

struct Args {
    hairpin: PathBuf,
    quick: bool,
    tsv: bool,
}

fn args() -> Result<Args> {
    let mut a = Args {
        hairpin: PathBuf::from("target/release/hairpin"),
        quick: false,
        tsv: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--hairpin" => a.hairpin = it.next().context("--hairpin PATH")?.into(),
            "--quick" => a.quick = true,
            "--tsv" => a.tsv = true,
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(a)
}

/// The network namespace, its pins and the agent: removed on drop.
struct Node {
    hairpin: PathBuf,
    ns: String,
    pins: PathBuf,
    dir: PathBuf,
    agent: Option<Child>,
}

fn sh(cmd: &str) -> Result<()> {
    let st = Command::new("sh").arg("-c").arg(cmd).status()?;
    if !st.success() {
        bail!("`{cmd}` failed");
    }
    Ok(())
}

impl Node {
    fn new(hairpin: &Path) -> Result<Self> {
        let id = std::process::id();
        let n = Self {
            hairpin: std::path::absolute(hairpin)?,
            ns: format!("hp-cbench-{id}"),
            pins: PathBuf::from(format!("/sys/fs/bpf/hp-cbench-{id}")),
            dir: std::env::temp_dir().join(format!("hp-cbench-{id}")),
            agent: None,
        };
        fs::create_dir_all(&n.dir)?;
        let ns = &n.ns;
        sh(&format!(
            "ip netns add {ns} && ip -n {ns} link set lo up && \
             ip -n {ns} link add up0 type veth peer name veth0 && \
             ip -n {ns} -6 addr add 2001:db8::1/64 dev up0 nodad && \
             ip -n {ns} link set up0 up && ip -n {ns} link set veth0 up && \
             ip -n {ns} -6 route add 2001:db8:113::/64 via 2001:db8::2 dev up0"
        ))?;
        Ok(n)
    }

    fn start_agent(&mut self, api: &ApiServer) -> Result<()> {
        let kubeconfig = self.dir.join("kubeconfig");
        fs::write(&kubeconfig, api.kubeconfig())?;
        let config = self.dir.join("hairpin.yaml");
        fs::write(
            &config,
            format!(
                "interfaces: {{ uplink: up0, pods: [\"veth*\"] }}\nsocket: {{ enabled: false }}\n\
                 kubernetes:\n  kubeconfig: {}\n  allowedFrontends: [2001:db8:113::/64]\n  stateFile: {}\n",
                kubeconfig.display(),
                self.dir.join("state.json").display()
            ),
        )?;
        let log = fs::File::create(self.dir.join("agent.log"))?;
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.ns))
            .arg(&self.hairpin)
            .args(["run", "--node-name", "bench", "--config"])
            .arg(&config)
            .arg("--pin-dir")
            .arg(&self.pins)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting the agent")?;
        self.agent = Some(child);
        Ok(())
    }

    fn stop_agent(&mut self) {
        if let Some(mut c) = self.agent.take() {
            // SAFETY: a signal to our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }

    /// The agent's resident memory, in KiB.
    fn rss_kib(&self) -> Result<u64> {
        let pid = self.agent.as_ref().context("no agent")?.id();
        let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .context("VmRSS")
    }

    /// Each frontend's backend addresses, from the pinned maps.
    fn backends(&self) -> Vec<String> {
        let Ok(pinned) = hairpin::datapath::pinned::Pinned::open(&self.pins) else {
            return Vec::new();
        };
        hairpin::datapath::pinned::frontends(&pinned)
            .unwrap_or_default()
            .into_iter()
            .flat_map(|f| f.backends.into_iter().map(|(b, _)| b))
            .collect()
    }

    fn frontends(&self) -> usize {
        hairpin::datapath::pinned::Pinned::open(&self.pins)
            .ok()
            .and_then(|p| hairpin::datapath::pinned::frontends(&p).ok())
            .map_or(0, |f| f.len())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop_agent();
        let _ = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.ns))
            .arg(&self.hairpin)
            .args(["detach", "--pin-dir"])
            .arg(&self.pins)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = fs::remove_dir_all(&self.pins);
        let _ = sh(&format!("ip netns del {}", self.ns));
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn service(i: usize) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"namespace": "bench", "name": format!("s{i}")},
           "spec": {"ports": [{"name": "http", "port": 80}]}})
}

/// Endpoint `e` of Service `i` in its `generation`.
fn endpoint(i: usize, e: usize, generation: usize) -> Ipv6Addr {
    let [hi, lo] = [(i >> 16) as u16, i as u16];
    Ipv6Addr::new(0xfd00, hi, lo, e as u16, 0, 0, 0, generation as u16 + 1)
}

/// Service `i`'s slice; `generation` moves its first endpoint.
fn slice(i: usize, generation: usize) -> Value {
    let eps: Vec<Value> = (0..ENDPOINTS_PER_SERVICE)
        .map(|e| {
            let g = if e == 0 { generation } else { 0 };
            json!({"addresses": [endpoint(i, e, g).to_string()],
                   "nodeName": "bench", "conditions": {"ready": true}})
        })
        .collect();
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"namespace": "bench", "name": format!("s{i}-x"),
                        "labels": {"kubernetes.io/service-name": format!("s{i}")}},
           "addressType": "IPv6",
           "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
           "endpoints": eps})
}

fn redirect(i: usize) -> Value {
    json!({"apiVersion": "hairpin.dev/v1alpha1", "kind": "HairpinRedirect",
           "metadata": {"name": format!("r{i}")},
           "spec": {"frontend": {"address": format!("2001:db8:113::{:x}", i + 1),
                                 "toPorts": [{"port": 8080}]},
                    "backend": {"service": {"namespace": "bench", "name": format!("s{i}")},
                                "toPorts": [{"port": "http"}]}}})
}

fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) -> Result<Duration> {
    let t0 = Instant::now();
    while !cond() {
        if t0.elapsed() > limit {
            bail!("not within {limit:?}: {what}");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(t0.elapsed())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn main() -> Result<()> {
    let a = args()?;
    let (services, updates) = if a.quick { (500, 10) } else { (10_000, 200) };
    let mut node = Node::new(&a.hairpin)?;
    let mut api = ApiServer::start(&node.ns, "127.0.0.1:6443".parse()?);
    for i in 0..REDIRECTED {
        api.apply(service(i));
        api.apply(slice(i, 0));
        api.apply(redirect(i));
    }
    node.start_agent(&api)?;
    wait_for("the redirects in the maps", Duration::from_secs(60), || {
        node.frontends() == REDIRECTED
    })?;
    std::thread::sleep(Duration::from_secs(1));
    let baseline = node.rss_kib()?;

    let t0 = Instant::now();
    for i in REDIRECTED..services {
        api.apply(service(i));
        api.apply(slice(i, 0));
    }
    // A change after the flood: once it is in the maps, the flood is read.
    api.apply(slice(0, 1));
    let moved = format!("[{}]:8080", endpoint(0, 0, 1));
    wait_for("the cluster read", Duration::from_secs(300), || {
        node.backends().contains(&moved)
    })?;
    let flood = t0.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    let large = node.rss_kib()?;

    let mut lat = Vec::new();
    for u in 0..updates {
        let i = u % REDIRECTED;
        let generation = u / REDIRECTED + 2;
        let want = format!("[{}]:8080", endpoint(i, 0, generation));
        api.apply(slice(i, generation));
        let dt = wait_for("an update in the maps", Duration::from_secs(10), || {
            node.backends().contains(&want)
        })?;
        lat.push(dt.as_secs_f64() * 1000.0);
    }
    lat.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
    let endpoints = services * ENDPOINTS_PER_SERVICE;
    if a.tsv {
        println!("cluster\tupdate_p50_ms\t{p50:.2}");
        println!("cluster\tupdate_p99_ms\t{p99:.2}");
        println!("cluster\trss_baseline_mib\t{:.1}", baseline as f64 / 1024.0);
        println!("cluster\trss_large_mib\t{:.1}", large as f64 / 1024.0);
        println!("cluster\tread_seconds\t{:.2}", flood.as_secs_f64());
    }
    eprintln!(
        "cluster: {services} Services, {endpoints} endpoints, {REDIRECTED} redirects; \
         EndpointSlice update to the maps p50 {p50:.1} ms, p99 {p99:.1} ms ({updates} updates); \
         agent RSS {:.1} MiB ({:.2}x the {:.1} MiB with only the redirected Services); \
         the whole cluster read in {:.1} s",
        large as f64 / 1024.0,
        large as f64 / baseline as f64,
        baseline as f64 / 1024.0,
        flood.as_secs_f64()
    );
    api.stop();
    drop(node);
    Ok(())
}
