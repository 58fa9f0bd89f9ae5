//! Signals from the agent's first instant: as PID 1 of its container a
//! process ignores the signals it has no handler for, so a SIGTERM that
//! came while the agent loaded would leave it running until SIGKILL.

use std::{
    fs,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::{
    agent::ONE,
    require_privileged,
    support::lab::{Lab, HAIRPIN},
};

/// The process ids of `pid`'s children.
fn children(pid: u32) -> Vec<u32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[test]
fn the_agent_as_pid_1_ends_on_a_sigterm_that_comes_while_it_loads() {
    require_privileged!();
    let lab = Lab::up();
    let config = lab.run_dir().join("pid1.yaml");
    fs::write(&config, ONE).expect("config");
    let log = lab.run_dir().join("pid1.log");
    let pin_dir = format!("/sys/fs/bpf/{}", lab.ns("n1"));
    // unshare forks the agent as PID 1 of a new PID namespace.
    let mut unshare = Command::new("unshare")
        .args(["--pid", "--fork", "nsenter"])
        .arg(format!("--net=/run/netns/{}", lab.ns("n1")))
        .arg(HAIRPIN)
        .args(["run", "--config"])
        .arg(&config)
        .args(["--pin-dir", &pin_dir])
        .env("HAIRPIN_SOCKET", lab.socket("n1"))
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).expect("log"))
        .spawn()
        .expect("unshare");
    std::thread::sleep(Duration::from_millis(200));
    let agent = children(unshare.id());
    if let [pid] = agent[..] {
        // SAFETY: a plain signal to the process this test started.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    }
    let sent = Instant::now();
    let mut in_time = false;
    while sent.elapsed() < Duration::from_secs(2) {
        if unshare.try_wait().expect("wait").is_some() {
            in_time = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if !in_time {
        for pid in agent.iter().copied().chain([unshare.id()]) {
            // SAFETY: as above.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }
    let status = unshare.wait().expect("wait");
    let _ = lab.hairpin_output("n1", &["detach"]);
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(agent.len(), 1, "the agent ran as PID 1: {agent:?}\n{text}");
    assert!(in_time, "still running 2 s after SIGTERM:\n{text}");
    assert!(status.success(), "{status}:\n{text}");
    assert!(text.contains("stopping"), "it stopped as asked:\n{text}");
}
