//! A containerd of the test's own (its root, state and socket in a
//! directory of its own; no CRI, no network of its own) and the hairpin
//! image run under it as the DaemonSet runs it: the container contract
//! (capabilities, read-only root, mounts, host network) is read from the
//! DaemonSet's manifest, not written again here.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use serde_json::Value;

/// Every capability the kernel has (include/uapi/linux/capability.h).
const ALL_CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

const MANIFESTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/kubernetes");

/// The DaemonSet's container, as the manifest says it runs.
#[derive(Debug, PartialEq, Eq)]
pub struct Contract {
    /// Capabilities added, `CAP_` names; every other one is dropped.
    pub caps: Vec<String>,
    pub read_only_root: bool,
    pub host_network: bool,
    pub no_new_privileges: bool,
    /// (volume's host path or configMap name, mount path, read-only).
    pub mounts: Vec<(String, String, bool)>,
    pub args: Vec<String>,
    /// The liveness and readiness probes: `http://host:port/path`.
    pub probes: Vec<String>,
}

impl Contract {
    /// The contract of the DaemonSet in `deploy/kubernetes/<file>`.
    pub fn from_manifest(file: &str) -> Self {
        let text =
            fs::read_to_string(Path::new(MANIFESTS).join(file)).expect("the DaemonSet manifest");
        let ds = text
            .split("\n---")
            .filter_map(|doc| serde_saphyr::from_str::<Value>(doc).ok())
            .find(|d| d["kind"] == "DaemonSet")
            .expect("a DaemonSet in the manifest");
        let pod = &ds["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        let sc = &c["securityContext"];
        assert_eq!(
            sc["capabilities"]["drop"],
            serde_json::json!(["ALL"]),
            "the manifest drops every capability it does not add"
        );
        let strs = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        };
        let volumes = pod["volumes"].as_array().expect("volumes");
        let mounts = c["volumeMounts"]
            .as_array()
            .expect("volumeMounts")
            .iter()
            .map(|m| {
                let v = volumes
                    .iter()
                    .find(|v| v["name"] == m["name"])
                    .expect("the mount's volume");
                let source = v["hostPath"]["path"]
                    .as_str()
                    .or(v["configMap"]["name"].as_str())
                    .expect("a hostPath or configMap volume");
                (
                    source.to_owned(),
                    m["mountPath"].as_str().expect("mountPath").to_owned(),
                    m["readOnly"] == true,
                )
            })
            .collect();
        Self {
            caps: strs(&sc["capabilities"]["add"])
                .iter()
                .map(|c| format!("CAP_{c}"))
                .collect(),
            read_only_root: sc["readOnlyRootFilesystem"] == true,
            host_network: pod["hostNetwork"] == true,
            no_new_privileges: sc["allowPrivilegeEscalation"] == false,
            mounts,
            args: strs(&c["args"]),
            probes: ["livenessProbe", "readinessProbe"]
                .iter()
                .map(|p| {
                    let get = &c[p]["httpGet"];
                    format!(
                        "http://{}:{}{}",
                        get["host"].as_str().expect("the probe's host"),
                        get["port"],
                        get["path"].as_str().expect("the probe's path")
                    )
                })
                .collect(),
        }
    }
}

/// A containerd daemon, ended (by its PID) with its containers on drop.
pub struct Containerd {
    dir: PathBuf,
    daemon: Child,
    containers: std::cell::RefCell<Vec<String>>,
}

impl Containerd {
    pub fn start(dir: &Path) -> Self {
        fs::create_dir_all(dir).expect("containerd's directory");
        let config = dir.join("config.toml");
        fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{d}/containerd.sock\"\n",
                d = dir.display()
            ),
        )
        .expect("containerd's configuration");
        let log = fs::File::create(dir.join("containerd.log")).expect("containerd's log");
        let daemon = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start containerd (scripts/setup.sh installs it)");
        let c = Self {
            dir: dir.to_owned(),
            daemon,
            containers: Default::default(),
        };
        let start = Instant::now();
        while !c.ctr(&["version"]).status.success() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "containerd did not come up"
            );
            sleep(Duration::from_millis(100));
        }
        c
    }

    /// A `ctr` command, bounded in time.
    pub fn ctr(&self, args: &[&str]) -> Output {
        Command::new("timeout")
            .args(["20", "ctr", "--address"])
            .arg(self.dir.join("containerd.sock"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run ctr")
    }

    pub fn ctr_ok(&self, args: &[&str]) -> String {
        let out = self.ctr(args);
        assert!(
            out.status.success(),
            "ctr {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Imports an OCI archive; returns the image's name.
    pub fn import(&self, archive: &Path) -> String {
        self.ctr_ok(&[
            "image",
            "import",
            "--snapshotter",
            "native",
            archive.to_str().unwrap(),
        ]);
        self.ctr_ok(&["image", "ls", "-q"])
            .lines()
            .next()
            .expect("an imported image")
            .to_owned()
    }

    /// The `ctr run` command line of container `id` of `image` with
    /// `spec`: the contract's capabilities (`caps`, which a test may
    /// narrow), root and mounts (`sources` maps the manifest's volumes to
    /// this machine's paths), in network namespace `netns`.
    pub fn run_command(&self, run: &Run<'_>) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address")
            .arg(self.dir.join("containerd.sock"))
            .args(["run", "--rm", "--snapshotter", "native", "--runc-root"])
            .arg(self.dir.join("runc"))
            .arg("--cgroup")
            .arg(format!("/{}/{}", self.cgroup_parent(), run.id));
        // ctr adds before it drops, and knows no "ALL": every capability
        // but those granted is dropped by name.
        for cap in run.caps {
            cmd.args(["--cap-add", cap]);
        }
        for cap in ALL_CAPS
            .iter()
            .filter(|c| !run.caps.iter().any(|g| g == *c))
        {
            cmd.args(["--cap-drop", cap]);
        }
        if run.contract.read_only_root {
            cmd.arg("--read-only");
        }
        assert!(run.contract.host_network, "the DaemonSet has hostNetwork");
        cmd.arg("--with-ns").arg(format!("network:{}", run.netns));
        for (source, target, ro) in &run.contract.mounts {
            let src = run
                .sources
                .iter()
                .find(|(s, _)| s == source)
                .map(|(_, p)| p.clone())
                .unwrap_or_else(|| panic!("no source for volume {source}"));
            let options = if *ro { "rbind:ro" } else { "rbind:rw" };
            cmd.arg("--mount").arg(format!(
                "type=bind,src={},dst={target},options={options}",
                src.display()
            ));
        }
        cmd.args([run.image, run.id, "/usr/local/bin/hairpin"])
            .args(run.args);
        self.containers.borrow_mut().push(run.id.to_owned());
        cmd
    }

    /// The PID of container `id`'s process, as the host sees it.
    pub fn pid(&self, id: &str) -> Option<u32> {
        let out = self.ctr(&["task", "ls"]);
        String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&id)).then(|| f.get(1)?.parse().ok())?
        })
    }

    /// The cgroup (in every hierarchy) that holds the containers: named for
    /// this daemon's directory, so that tests never share one, and removed
    /// on drop (runc's default, `/default`, would stay behind).
    fn cgroup_parent(&self) -> String {
        self.dir.parent().and_then(|p| p.file_name()).map_or_else(
            || "hairpin-test".into(),
            |n| n.to_string_lossy().into_owned(),
        )
    }

    /// Removes the containers' cgroups, theirs first, from every cgroup
    /// hierarchy mounted.
    fn remove_cgroups(&self) {
        let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let roots = mounts.lines().filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 2 && (f[2] == "cgroup" || f[2] == "cgroup2")).then(|| PathBuf::from(f[1]))
        });
        for root in roots {
            let parent = root.join(self.cgroup_parent());
            for id in self.containers.borrow().iter() {
                // Ignored errors: a hierarchy without it has nothing to remove.
                let _ = fs::remove_dir(parent.join(id));
            }
            let _ = fs::remove_dir(&parent);
        }
    }

    /// Whether container `id`'s task still runs.
    fn running(&self, id: &str) -> bool {
        let out = self.ctr(&["task", "ls"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.split_whitespace().next() == Some(id) && l.contains("RUNNING"))
    }

    /// Stops container `id` as the kubelet does: SIGTERM.
    pub fn stop(&self, id: &str) {
        let _ = self.ctr(&["task", "kill", "--signal", "SIGTERM", id]);
    }
}

/// What `Containerd::run_command` runs.
pub struct Run<'a> {
    pub contract: &'a Contract,
    pub caps: &'a [String],
    pub sources: &'a [(String, PathBuf)],
    pub netns: &'a str,
    pub image: &'a str,
    pub id: &'a str,
    pub args: &'a [String],
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let listed = |what: &str| -> Vec<String> {
            String::from_utf8_lossy(&self.ctr(&[what, "ls", "-q"]).stdout)
                .lines()
                .map(str::to_owned)
                .collect()
        };
        let ours = self.containers.borrow();
        for id in listed("task").iter().filter(|t| ours.contains(t)) {
            // Ignored errors: a task may end on its own meanwhile.
            let _ = self.ctr(&["task", "kill", "--signal", "SIGKILL", id]);
            let start = Instant::now();
            while self.running(id) && start.elapsed() < Duration::from_secs(10) {
                sleep(Duration::from_millis(100));
            }
            let _ = self.ctr(&["task", "delete", "--force", id]);
        }
        for id in listed("container").iter().filter(|c| ours.contains(c)) {
            let _ = self.ctr(&["container", "delete", id]);
        }
        drop(ours);
        self.remove_cgroups();
        // SAFETY: a signal to the daemon this guard started.
        unsafe { libc::kill(self.daemon.id() as i32, libc::SIGTERM) };
        let _ = self.daemon.wait();
        // The native snapshotter's copies of the image: gigabytes over runs.
        let _ = fs::remove_dir_all(&self.dir);
    }
}
