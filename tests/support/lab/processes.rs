//! The processes a test starts in the lab, each a guard of its own: an
//! agent, stopped on drop with its pins removed, and any other command run
//! in the background.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

/// A `hairpin run` in a lab node, stopped (SIGTERM) on drop, its pins
/// removed (the lab's namespaces, going next, take its links with them).
pub struct Agent {
    pub(super) child: Option<Child>,
    pub(super) netns: String,
    pub log: PathBuf,
    pub pin_dir: PathBuf,
    pub config: PathBuf,
    /// The hairpin that `start` runs: this build unless a test says.
    pub binary: PathBuf,
    pub(super) extra: Vec<String>,
    /// A command (and its arguments) that runs the agent's command line.
    pub(super) wrapper: Vec<String>,
    pub(super) env: Vec<(String, String)>,
}

impl Agent {
    /// Starts the agent (again) and waits until it is ready.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "the agent is already running");
        let marks = self.log_text().matches("ready:").count();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("agent log");
        // nsenter keeps the machine's /sys (and its bpffs), which
        // `ip netns exec` would remount.
        let mut command = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg("nsenter");
                c
            }
            None => Command::new("nsenter"),
        };
        let child = command
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .arg(format!("--net={}", self.netns))
            .arg(&self.binary)
            .args(["run", "--config"])
            .arg(&self.config)
            .arg("--pin-dir")
            .arg(&self.pin_dir)
            .args(&self.extra)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start hairpin");
        self.child = Some(child);
        // Room for an emulated VM (the kernel matrix), where the verifier
        // alone takes seconds.
        self.wait_for_count("ready:", marks + 1, Duration::from_secs(60));
    }

    /// The running agent's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("agent running").id()
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log has a line containing `what`.
    pub fn wait_for_log(&self, what: &str, timeout: Duration) {
        self.wait_for_count(what, 1, timeout);
    }

    /// Waits until the log has `n` lines containing `what`.
    pub fn wait_for_count(&self, what: &str, n: usize, timeout: Duration) {
        let start = Instant::now();
        while self.log_text().matches(what).count() < n {
            let alive = self
                .child
                .as_ref()
                .is_some_and(|c| Path::new(&format!("/proc/{}", c.id())).exists());
            assert!(
                alive && start.elapsed() < timeout,
                "agent did not log {what:?} ({n} times) within {timeout:?}:\n{}",
                self.log_text()
            );
            sleep(Duration::from_millis(50));
        }
    }

    /// Sends `sig` and waits (bounded) for the agent to exit.
    pub fn stop(&mut self, sig: i32) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: signalling our own child by its PID.
        unsafe { libc::kill(child.id() as i32, sig) };
        let start = Instant::now();
        while child.try_wait().ok().flatten().is_none() && start.elapsed() < Duration::from_secs(5)
        {
            sleep(Duration::from_millis(20));
        }
        // Ignored errors: the process may already have exited.
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Writes `config` as the agent's file and has it read (SIGHUP).
    pub fn reload_with(&self, config: &str) {
        fs::write(&self.config, config).expect("the agent's configuration");
        self.signal(libc::SIGHUP);
    }

    /// Sends `sig` to the running agent, which goes on running (SIGHUP).
    pub fn signal(&self, sig: i32) {
        let child = self.child.as_ref().expect("agent running");
        // SAFETY: signalling our own child by its PID.
        unsafe { libc::kill(child.id() as i32, sig) };
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop(libc::SIGTERM);
        // Ignored error: nothing pinned when the agent failed early.
        let _ = fs::remove_dir_all(&self.pin_dir);
    }
}

/// A background command (a capture), stopped on drop.
pub struct Background {
    pub(super) child: Child,
    pub(super) out: PathBuf,
}

impl Background {
    pub fn running(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }

    /// Sends `sig` to the command (started with `exec`, it has the PID).
    pub fn signal(&self, sig: i32) {
        // SAFETY: signalling our own child by its PID.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// What the command has written so far.
    pub fn output(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Waits (bounded) for the command to end by itself; returns its output.
    pub fn wait(mut self, timeout: Duration) -> String {
        let start = Instant::now();
        while self.running() && start.elapsed() < timeout {
            sleep(Duration::from_millis(50));
        }
        self.output()
    }

    /// Stops the command (SIGINT, so that tcpdump flushes) and returns its output.
    pub fn finish(mut self) -> String {
        // SAFETY: signalling our own child by its PID.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let start = Instant::now();
        while self.child.try_wait().ok().flatten().is_none()
            && start.elapsed() < Duration::from_secs(5)
        {
            sleep(Duration::from_millis(20));
        }
        fs::read_to_string(&self.out).unwrap_or_default()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // Ignored errors: the process may already have exited.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
