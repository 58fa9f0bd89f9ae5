//! The lab fixture: the topology of scripts/lab.sh (a router without NAT
//! loopback, two nodes with the CNI's rules, pods behind veths) under a
//! prefix unique to the test, removed on drop, also when the test panics.
//! Agents and capture processes started in it are guards of their own.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    thread::sleep,
    time::{Duration, Instant},
};

use super::serviceaccount::ServiceAccount;

mod cni;
mod processes;

use cni::standin_cni;
pub use cni::Cni;
pub use processes::{Agent, Background};

const LAB_SH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/lab.sh");
const LAB_RUN: &str = "/run/hairpin-lab";
pub const HAIRPIN: &str = env!("CARGO_BIN_EXE_hairpin");

/// The lab's addresses (see the drawing in scripts/lab.sh).
pub const FRONTEND: &str = "203.0.113.10";
pub const B1: &str = "198.51.100.2";
pub const B2: &str = "198.51.100.67";

pub struct Lab {
    pub prefix: String,
    run: PathBuf,
    pub cni: Cni,
    /// Cgroups made for the nodes' host processes, removed on drop.
    cgroups: std::cell::RefCell<Vec<PathBuf>>,
}

impl Lab {
    /// Brings up a lab under a fresh prefix, beside the CNI that
    /// `HAIRPIN_LAB_CNI` names.
    pub fn up() -> Self {
        Self::up_beside(Cni::from_env())
    }

    /// Brings up a lab whose nodes route pods with `cni`.
    pub fn up_beside(cni: Cni) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let prefix = format!(
            "hpt{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let lab = Self {
            run: Path::new(LAB_RUN).join(&prefix),
            prefix,
            cni,
            cgroups: Default::default(),
        };
        let out = lab.script("up", &[]);
        assert!(
            out.status.success(),
            "lab.sh up failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        lab
    }

    fn script(&self, cmd: &str, env: &[(&str, &str)]) -> Output {
        self.lab_sh()
            .arg(cmd)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .expect("run scripts/lab.sh")
    }

    /// scripts/lab.sh for this lab.
    fn lab_sh(&self) -> Command {
        let mut c = Command::new(LAB_SH);
        c.env("LAB_PREFIX", &self.prefix)
            .env("LAB_RUN", LAB_RUN)
            .env("LAB_CNI", self.cni.name())
            .env("LAB_STANDIN_CNI", standin_cni());
        c
    }

    /// The full name of the lab namespace `name` (`n1`, `n1-c1`, `rtr`, …).
    pub fn ns(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    pub fn run_dir(&self) -> &Path {
        &self.run
    }

    /// A cgroup v2 directory of this lab's own for node `node`'s host
    /// processes (the socket-level path attaches there, never to the
    /// machine's root cgroup), created on first use.
    pub fn cgroup(&self, node: &str) -> PathBuf {
        let root = hairpin::datapath::sockets::cgroup2_root().expect("a cgroup v2 hierarchy");
        let dir = root.join(format!("{}-{node}", self.prefix));
        if !dir.exists() {
            fs::create_dir(&dir).expect("create test cgroup");
            self.cgroups.borrow_mut().push(dir.clone());
        }
        dir
    }

    /// A cgroup at `path` under node `node`'s (`cgroup`), made with its
    /// parents, all removed with the lab (deepest first).
    pub fn cgroup_under(&self, node: &str, path: &str) -> PathBuf {
        let mut dir = self.cgroup(node);
        for part in path.split('/') {
            dir = dir.join(part);
            if !dir.exists() {
                fs::create_dir(&dir).expect("create test cgroup");
                self.cgroups.borrow_mut().push(dir.clone());
            }
        }
        dir
    }

    /// Runs a shell command in namespace `name` from inside `cgroup`: the
    /// process joins the cgroup before it enters the namespace (whose
    /// `ip netns exec` hides the machine's /sys).
    pub fn sh_in(&self, cgroup: &Path, name: &str, cmd: &str) -> Output {
        let script = format!(
            "echo $$ > {}/cgroup.procs && exec ip netns exec {} sh -c \"$0\"",
            cgroup.display(),
            self.ns(name)
        );
        Command::new("sh")
            .args(["-c", &script, cmd])
            .stdin(Stdio::null())
            .output()
            .expect("sh")
    }

    /// Waits (bounded) until something listens on TCP `port` in `name`.
    pub fn wait_listening(&self, name: &str, port: u16) {
        let start = Instant::now();
        while self
            .sh_ok(name, &format!("ss -Htln '( sport = :{port} )'"))
            .trim()
            .is_empty()
        {
            // Room for an emulated VM (the kernel matrix), where a Python
            // server may take half a minute to start (seen on 5.10).
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "nothing listens on {port} in {name}"
            );
            sleep(Duration::from_millis(50));
        }
    }

    /// Runs a shell command in namespace `name`.
    pub fn sh(&self, name: &str, cmd: &str) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns(name), "sh", "-c", cmd])
            .stdin(Stdio::null())
            .output()
            .expect("ip netns exec")
    }

    /// Like `sh`, returning stdout, and panicking with stderr on failure.
    pub fn sh_ok(&self, name: &str, cmd: &str) -> String {
        let out = self.sh(name, cmd);
        assert!(
            out.status.success(),
            "`{cmd}` in {name} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The probe matrix: (client, frontend) → "ok" or "FAIL".
    pub fn probe(&self) -> BTreeMap<(String, String), String> {
        self.probe_family("4")
    }

    /// The probe matrix of one family (`4`, `6` or `all`).
    pub fn probe_family(&self, family: &str) -> BTreeMap<(String, String), String> {
        let out = self.script(
            "probe",
            &[("LAB_PROBE_FORMAT", "tsv"), ("LAB_PROBE_FAMILY", family)],
        );
        assert!(
            out.status.success(),
            "probe failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (f.len() == 3).then(|| ((f[0].to_owned(), f[1].to_owned()), f[2].to_owned()))
            })
            .collect()
    }

    /// The control socket of node `node`'s agent: each agent its own, as
    /// each its own pin directory (the CLI finds it in `HAIRPIN_SOCKET`).
    /// Its directory stands for the node's /run/hairpin.
    pub fn socket(&self, node: &str) -> PathBuf {
        self.run.join(node).join("hairpin.sock")
    }

    /// Starts `hairpin run` in node `node` with `config` (YAML), its maps
    /// and links pinned under a directory of this lab's own, and waits until
    /// it has attached to the node's interfaces.
    pub fn agent(&self, node: &str, config: &str) -> Agent {
        self.agent_with(node, config, &[])
    }

    /// Like `agent`, with more arguments for `hairpin run`.
    pub fn agent_with(&self, node: &str, config: &str, extra: &[&str]) -> Agent {
        self.agent_wrapped(
            node,
            config,
            extra,
            (Vec::new(), Vec::new()),
            HAIRPIN.as_ref(),
        )
    }

    /// Like `agent`, with another build of hairpin.
    pub fn agent_of(&self, binary: &Path, node: &str, config: &str) -> Agent {
        self.agent_wrapped(node, config, &[], (Vec::new(), Vec::new()), binary)
    }

    /// Like `agent_with`, run as the DaemonSet's pod would be: with its
    /// ServiceAccount.
    pub fn agent_as_pod(
        &self,
        node: &str,
        config: &str,
        extra: &[&str],
        sa: &ServiceAccount,
    ) -> Agent {
        self.agent_wrapped(
            node,
            config,
            extra,
            (sa.wrapper(), sa.env()),
            HAIRPIN.as_ref(),
        )
    }

    fn agent_wrapped(
        &self,
        node: &str,
        config: &str,
        extra: &[&str],
        (wrapper, mut env): (Vec<String>, Vec<(String, String)>),
        binary: &Path,
    ) -> Agent {
        let socket = self.socket(node).display().to_string();
        env.push(("HAIRPIN_SOCKET".into(), socket));
        let cfg = self.run.join(format!("hairpin-{node}.yaml"));
        fs::write(&cfg, config).expect("write agent config");
        let mut agent = Agent {
            child: None,
            netns: format!("/run/netns/{}", self.ns(node)),
            log: self.run.join(format!("agent-{node}.log")),
            pin_dir: PathBuf::from(format!("/sys/fs/bpf/{}-{node}", self.prefix)),
            config: cfg,
            binary: binary.to_owned(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            wrapper,
            env,
        };
        agent.start();
        agent
    }

    /// Runs a `hairpin` subcommand in node `node`, against the pins of the
    /// agent started there, and returns its output whatever its status.
    pub fn hairpin_output(&self, node: &str, args: &[&str]) -> Output {
        self.binary_output(Path::new(HAIRPIN), node, args)
    }

    /// Like `hairpin_output`, with another build of hairpin.
    pub fn binary_output(&self, binary: &Path, node: &str, args: &[&str]) -> Output {
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.ns(node)))
            .arg(binary)
            .args(args)
            .arg("--pin-dir")
            .arg(format!("/sys/fs/bpf/{}-{node}", self.prefix))
            .env("HAIRPIN_SOCKET", self.socket(node))
            .stdin(Stdio::null())
            .output()
            .expect("run hairpin")
    }

    /// Runs a `hairpin` subcommand in node `node` that must succeed.
    pub fn hairpin(&self, node: &str, args: &[&str]) -> String {
        let out = self.hairpin_output(node, args);
        assert!(
            out.status.success(),
            "hairpin {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Adds a pod to a node of the running lab (`lab.sh add-pod`).
    pub fn add_pod(&self, node: &str, pod: &str, addr: &str) {
        self.add_pod_on("veth", node, pod, addr);
    }

    /// `add_pod`, on a link of kind `link` (`LAB_POD_LINK`: veth,
    /// netkit-l2, netkit-l3; netkit needs `LAB_IPROUTE2`).
    pub fn add_pod_on(&self, link: &str, node: &str, pod: &str, addr: &str) {
        let out = self
            .lab_sh()
            .args(["add-pod", node, pod, addr])
            .env("LAB_POD_LINK", link)
            .stdin(Stdio::null())
            .output()
            .expect("run scripts/lab.sh");
        assert!(
            out.status.success(),
            "add-pod failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn del_pod(&self, node: &str, pod: &str) {
        let out = self.script_args(&["del-pod", node, pod]);
        assert!(
            out.status.success(),
            "del-pod failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn script_args(&self, args: &[&str]) -> Output {
        self.lab_sh()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run scripts/lab.sh")
    }

    /// Starts `cmd` in namespace `name` in the background, output to `file`.
    pub fn background(&self, name: &str, cmd: &str, file: &str) -> Background {
        self.background_script(name, &format!("exec {cmd}"), file)
    }

    /// Starts a shell script in namespace `name` in the background.
    /// Like `background`, from inside `cgroup` (joined before the
    /// namespace is entered, as `sh_in` does).
    pub fn background_in(&self, cgroup: &Path, name: &str, cmd: &str, file: &str) -> Background {
        let out = self.run.join(file);
        let script = format!(
            "echo $$ > {}/cgroup.procs && exec ip netns exec {} sh -c \"$0\"",
            cgroup.display(),
            self.ns(name)
        );
        let child = Command::new("sh")
            .args(["-c", &script, cmd])
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).expect("output file"))
            .stderr(Stdio::null())
            .spawn()
            .expect("start background command");
        Background { child, out }
    }

    pub fn background_script(&self, name: &str, script: &str, file: &str) -> Background {
        let out = self.run.join(file);
        // A node's commands (`hairpin monitor`) ask its own agent.
        let node = name.split('-').next().unwrap_or(name);
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(name), "sh", "-c", script])
            .env("HAIRPIN_SOCKET", self.socket(node))
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).expect("output file"))
            .stderr(Stdio::null())
            .spawn()
            .expect("start background command");
        Background { child, out }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for cg in self.cgroups.borrow().iter().rev() {
            // Ignored error: the cgroup empties as its processes exit,
            // which the lab's teardown below finishes.
            let _ = fs::remove_dir(cg);
        }
        let out = self.script("down", &[]);
        for cg in self.cgroups.borrow().iter().rev() {
            if cg.exists() && fs::remove_dir(cg).is_err() && !std::thread::panicking() {
                panic!("test cgroup {} left behind", cg.display());
            }
        }
        if !out.status.success() && !std::thread::panicking() {
            panic!(
                "lab.sh down failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
