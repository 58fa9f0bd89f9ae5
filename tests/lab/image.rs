//! The image, built by scripts/image.sh, run under containerd and runc as
//! the DaemonSet runs it (tests/support/containerd.rs reads the contract
//! from the manifest): every client kind is served through it, a rolling
//! update keeps a transfer intact, the capability list is minimal, and the
//! container writes nowhere but its pins.

use std::{
    fs,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use crate::{
    degraded::eventually,
    require_privileged,
    support::{
        containerd::{Containerd, Contract, Run},
        lab::{Cni, Lab, HAIRPIN},
    },
    transfers::{assert_same, download, finish_download, serve_file, COMPLETE},
    CONFIG,
};

const IMAGE_SH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/image.sh");

/// A directory of the test's, removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        // Ignored error: a directory never made needs no removal.
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A ConfigMap's directory: the file behind `..data`, swapped atomically.
struct ConfigMap {
    dir: PathBuf,
    version: u32,
}

impl ConfigMap {
    fn new(dir: PathBuf, config: &str) -> Self {
        fs::create_dir_all(&dir).expect("the ConfigMap's directory");
        let mut cm = Self { dir, version: 0 };
        cm.update(config);
        symlink("..data/hairpin.yaml", cm.dir.join("hairpin.yaml")).expect("the file's link");
        cm
    }

    fn update(&mut self, config: &str) {
        self.version += 1;
        let data = format!("..v{}", self.version);
        fs::create_dir(self.dir.join(&data)).expect("a new version");
        fs::write(self.dir.join(&data).join("hairpin.yaml"), config).expect("the file");
        let tmp = self.dir.join("..data_tmp");
        symlink(&data, &tmp).expect("the new link");
        fs::rename(&tmp, self.dir.join("..data")).expect("the swap");
    }
}

/// The agents' containers, one per node.
struct Node<'a> {
    lab: &'a Lab,
    ctrd: &'a Containerd,
    contract: &'a Contract,
    image: &'a str,
    node: &'static str,
    sources: Vec<(String, PathBuf)>,
}

/// The pins the nodes' containers leave in the host's bpffs go with the
/// test, passed or failed. Declared before containerd, so dropped once it
/// has killed the containers: a running agent would pin again.
struct Pins<'a>(&'a Lab);

impl Drop for Pins<'_> {
    fn drop(&mut self) {
        for node in ["n1", "n2"] {
            // Ignored results: a node whose agent never started pinned
            // nothing, and detach removed what it did.
            let _ = self.0.hairpin_output(node, &["detach"]);
            let _ = fs::remove_dir_all(format!("/sys/fs/bpf/{}-{node}", self.0.prefix));
        }
    }
}

impl Node<'_> {
    fn args(&self) -> Vec<String> {
        // The manifest's arguments, with this lab node's pin directory.
        let mut args = self.contract.args.clone();
        let pin = args
            .iter()
            .position(|a| a == "--pin-dir")
            .expect("--pin-dir in the manifest");
        args[pin + 1] = format!("/host/sys/fs/bpf/{}-{}", self.lab.prefix, self.node);
        args
    }

    /// Runs container `id` with `caps`, its output in a file of the lab.
    fn run(&self, id: &str, caps: &[String]) -> (Child, PathBuf) {
        let log = self.lab.run_dir().join(format!("{id}.log"));
        let file = fs::File::create(&log).expect("the container's log");
        let netns = format!("/run/netns/{}", self.lab.ns(self.node));
        let args = self.args();
        let child = self
            .ctrd
            .run_command(&Run {
                contract: self.contract,
                caps,
                sources: &self.sources,
                netns: &netns,
                image: self.image,
                id,
                args: &args,
            })
            .env("NODE_NAME", self.node)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("ctr run");
        (child, log)
    }

    /// Runs the agent's container and waits until it is ready.
    fn start(&self, id: &str) -> (Child, PathBuf) {
        let (child, log) = self.run(id, &self.contract.caps);
        let start = Instant::now();
        while !fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("ready:")
        {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "container {id} not ready:\n{}",
                fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        (child, log)
    }
}

fn wait_exit(child: &mut Child, what: &str) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("the container's ctr") {
            return status.code().unwrap_or(-1);
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{what} did not end"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An OCI archive's index: the digests of everything in it.
fn index(archive: &Path) -> String {
    let out = std::process::Command::new("tar")
        .arg("xOf")
        .arg(archive)
        .arg("index.json")
        .output()
        .expect("tar");
    String::from_utf8(out.stdout).expect("index.json")
}

fn build_image(out: &Path) {
    let status = std::process::Command::new(IMAGE_SH)
        .args(["--binary", HAIRPIN])
        .arg(out)
        .stdout(Stdio::null())
        .status()
        .expect("scripts/image.sh");
    assert!(status.success(), "scripts/image.sh failed");
}

#[test]
fn the_image_serves_every_client_with_three_capabilities_and_a_read_only_root() {
    require_privileged!();
    // The manifest's three capabilities serve pods beside a CNI that routes
    // them through the node's stack; beside an eBPF CNI, pod_receive needs
    // CAP_SYS_ADMIN (deploy/kubernetes/hairpin.yaml says so).
    let lab = Lab::up_beside(Cni::Iptables);
    let _pins = Pins(&lab);
    // Declared before containerd, so removed after it has stopped.
    let work = Scratch(std::env::temp_dir().join(format!("{}-image", lab.prefix)));
    let archive = work.0.join("hairpin.oci.tar");
    build_image(&archive);
    let ctrd = Containerd::start(&work.0.join("containerd"));
    let image = ctrd.import(&archive);
    // The same sources make the same image, byte for byte.
    let again = work.0.join("again.oci.tar");
    build_image(&again);
    assert_eq!(index(&archive), index(&again), "a reproducible image");
    let contract = Contract::from_manifest("hairpin-cluster.yaml");
    let file_mode = Contract::from_manifest("hairpin.yaml");
    assert_eq!(
        (
            &file_mode.caps,
            file_mode.read_only_root,
            file_mode.no_new_privileges
        ),
        (
            &contract.caps,
            contract.read_only_root,
            contract.no_new_privileges
        ),
        "both DaemonSets run the container alike"
    );
    assert_eq!(
        contract.caps,
        ["CAP_BPF", "CAP_NET_ADMIN", "CAP_PERFMON"],
        "the manifest's capabilities"
    );
    // n1's host processes of the lab's cgroup take the socket path: its
    // attach goes through the read-only cgroup mount.
    let cgroup = lab.cgroup("n1");
    let n1_config = CONFIG.replace(
        "socket: { enabled: false }",
        &format!(
            "socket: {{ scope: host, cgroup: /host{} }}",
            cgroup.display()
        ),
    );
    let node = |name: &'static str, config: &str| {
        let config = ConfigMap::new(lab.run_dir().join(format!("cm-{name}")), config);
        let state = lab.run_dir().join(format!("state-{name}"));
        fs::create_dir_all(&state).unwrap();
        // The node's /run/hairpin, where the CLI finds the agent's socket.
        let run = lab.socket(name).parent().unwrap().to_owned();
        fs::create_dir_all(&run).unwrap();
        let n = Node {
            lab: &lab,
            ctrd: &ctrd,
            contract: &contract,
            image: &image,
            node: name,
            sources: vec![
                ("hairpin".into(), config.dir.clone()),
                ("/sys/fs/bpf".into(), "/sys/fs/bpf".into()),
                ("/sys/fs/cgroup".into(), "/sys/fs/cgroup".into()),
                ("/var/lib/hairpin".into(), state),
                ("/run/hairpin".into(), run),
                ("/var/run/netns".into(), "/run/netns".into()),
            ],
        };
        (n, config)
    };
    let (n1, mut cm1) = node("n1", &n1_config);
    let (n2, _cm2) = node("n2", CONFIG);
    let bpffs = || -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir("/sys/fs/bpf")
            .expect("the host's bpffs")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        names
    };
    let bpffs_before = bpffs();

    // One capability fewer, one at a time: the agent refuses to start and
    // names it.
    for missing in &contract.caps {
        let caps: Vec<String> = contract
            .caps
            .iter()
            .filter(|c| c != &missing)
            .cloned()
            .collect();
        let id = format!("{}-without-{}", lab.prefix, missing.to_lowercase());
        let (mut child, log) = n1.run(&id, &caps);
        assert_ne!(wait_exit(&mut child, &id), 0, "{id} must fail");
        let out = fs::read_to_string(&log).unwrap_or_default();
        assert!(
            out.contains("missing capabilities") && out.contains(missing.as_str()),
            "{id} names {missing}: {out}"
        );
    }

    let id = |name: &str| format!("{}-{name}", lab.prefix);
    let (mut c1, log1) = n1.start(&id("n1-a"));
    let (_c2, _) = n2.start(&id("n2"));
    let pid = ctrd.pid(&id("n1-a")).expect("the container's process");
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("its status");
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    // BPF (39), PERFMON (38), NET_ADMIN (12), nothing else.
    assert_eq!(
        field("CapEff:"),
        "000000c000001000",
        "effective capabilities"
    );
    if contract.no_new_privileges {
        assert_eq!(field("NoNewPrivs:"), "1", "no privilege escalation");
    }

    // The kubelet's probes, as the manifest has them, in the node's network
    // namespace.
    for url in &contract.probes {
        let out = lab.sh(
            "n1",
            &format!("curl -s -o /dev/null -w '%{{http_code}}' {url}"),
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "200", "probe {url}");
    }
    // The probe sends one datagram per UDP pair; on a loaded machine one
    // went unanswered once (every TCP pair passing): the matrix is asked
    // again, for a while, until every client passes.
    eventually(10, "every client through the containers", || {
        let matrix = lab.probe();
        let all = matrix.values().all(|r| r == "ok");
        if !all {
            eprintln!("probe: {matrix:?}");
        }
        all
    });

    let through_socket = lab.sh_in(
        &cgroup,
        "n1",
        "curl -s --max-time 3 http://203.0.113.10:8080/",
    );
    assert_eq!(String::from_utf8_lossy(&through_socket.stdout).trim(), "b1");
    let list: Vec<serde_json::Value> =
        serde_json::from_str(&lab.hairpin("n1", &["list", "--output", "json"])).expect("list");
    let web = list
        .iter()
        .find(|f| f["frontend"] == "203.0.113.10:8080/TCP")
        .expect("the web frontend");
    assert_eq!(
        web["stats"]["sock_connects"], 1,
        "through the socket path: {web}"
    );

    // A ConfigMap update reaches the running container.
    cm1.update(&n1_config.replace("port: 8081,", "port: 8082,"));
    eventually(10, "the updated ConfigMap is applied", || {
        fs::read_to_string(&log1)
            .unwrap_or_default()
            .contains("configuration reloaded")
    });

    // A rolling update: the old container stops, a new one starts from the
    // image; the transfer goes on.
    let data = serve_file(&lab, "n1-b1", "big.bin", 16);
    let (pod, pod_out) = download(&lab, "n1-c1", "big.bin", 8080, "2M");
    let (host, host_out) = download(&lab, "n1", "big.bin", 8080, "2M");
    std::thread::sleep(Duration::from_secs(2));
    ctrd.stop(&id("n1-a"));
    assert_eq!(wait_exit(&mut c1, "the old container"), 0, "a clean stop");
    let (_c1b, _) = n1.start(&id("n1-b"));
    for (bg, out, who) in [(pod, pod_out, "pod"), (host, host_out, "host")] {
        assert_eq!(
            finish_download(bg, Duration::from_secs(40)),
            COMPLETE,
            "{who} download"
        );
        assert_same(&out, &data, &format!("{who} client across the update"));
    }

    // Nothing written but the pins: in the host's bpffs the nodes' pin
    // directories are new (beside other tests' labs), and the one writable
    // mount (the cluster's state, unused by a file) stayed empty. The root
    // and the configuration are read-only mounts.
    let new: Vec<String> = bpffs()
        .into_iter()
        .filter(|n| !bpffs_before.contains(n))
        .filter(|n| !n.starts_with("hpt") || n.starts_with(&format!("{}-", lab.prefix)))
        .collect();
    assert_eq!(
        new,
        [format!("{}-n1", lab.prefix), format!("{}-n2", lab.prefix)],
        "what the containers made in the host's bpffs"
    );
    let state = lab.run_dir().join("state-n1");
    assert_eq!(
        fs::read_dir(&state).unwrap().count(),
        0,
        "nothing written to {}",
        state.display()
    );
}
