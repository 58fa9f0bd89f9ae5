//! The agent's listeners face every process of the node: what a hostile
//! one sends neither stops the agent nor keeps its probes from answering;
//! what changes or reveals state is on the control socket alone, for root;
//! a port another process holds degrades the listener alone.

use std::time::Duration;

use crate::{
    agent::ONE,
    curl, require_privileged,
    support::lab::{Lab, FRONTEND},
};

/// Hostile clients of 127.0.0.1:9469 and of the control socket (argv[1]),
/// run in the node's namespace while `/healthz` is asked on a fresh
/// connection between them: prints the slowest answer (s) and each hostile
/// request's status line.
const HOSTILE: &str = r#"
import os, resource, socket, sys, time
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
A = ("127.0.0.1", 9469)
CONTROL = sys.argv[1]
def conn():
    s = socket.create_connection(A, timeout=5)
    return s
def control():
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(CONTROL)
    return s
def status(s):
    try:
        return s.recv(4096).split(b"\r\n")[0].decode()
    except Exception as e:
        return "no answer: %s" % e
slowest = 0.0
def healthz():
    global slowest
    t = time.monotonic()
    s = socket.create_connection(A, timeout=1)
    s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
    got = s.recv(4096)
    s.close()
    assert b" 200 " in got.split(b"\r\n")[0], got
    slowest = max(slowest, time.monotonic() - t)
held = []
for length in ["1000000000000000", "18446744073709551615", "5000"]:
    s = conn()
    s.sendall(("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: %s\r\n\r\n" % length).encode())
    print("length", length, status(s))
    held.append(s)
    healthz()
s = conn()
s.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
held.append(s)
healthz()
s = conn()
s.sendall(b"POST /flush HTTP/1.0\r\n\r\n")
print("tcp flush", status(s))
s = control()
s.sendall(b"POST /flush?x=1&frontend=999 HTTP/1.0\r\n\r\n")
print("flush", status(s))
s = control()
s.sendall(b"POST /flush?frontend=999 HTTP/1.0\r\n\r\n")
print("unknown flush", status(s))
pid = os.fork()
if pid == 0:
    os.setuid(65534)
    try:
        control()
        os._exit(1)
    except PermissionError:
        os._exit(0)
print("nobody refused", os.waitpid(pid, 0)[1] == 0)
monitors = []
for i in range(40):
    s = control()
    s.sendall(b"GET /events?types=all HTTP/1.0\r\n\r\n")
    monitors.append(s)
codes = [status(s) for s in monitors]
print("monitors", sum(" 200 " in c for c in codes), sum(" 503 " in c for c in codes))
healthz()
idle = []
for i in range(2000):
    idle.append(socket.create_connection(A, timeout=5))
    if i % 200 == 0:
        healthz()
for i in range(10):
    healthz()
    time.sleep(0.2)
print("slowest", round(slowest, 3))
"#;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("agent status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[test]
fn hostile_requests_neither_stop_the_agent_nor_keep_its_probes_waiting() {
    require_privileged!();
    let lab = Lab::up();
    // Ten monitors at most, where 32 is the default.
    let config = format!("{ONE}metrics: {{ address: 127.0.0.1:9469, maxMonitors: 10 }}\n");
    let agent = lab.agent("n1", &config);
    let before = rss_kib(agent.pid());
    let script = lab.run_dir().join("hostile.py");
    std::fs::write(&script, HOSTILE).expect("write the script");
    let out = lab.sh_ok(
        "n1",
        &format!(
            "python3 {} {}",
            script.display(),
            lab.socket("n1").display()
        ),
    );
    // Bodies are refused unread, whatever length they announce (one past
    // what a header may say is refused by the parser itself).
    for length in ["1000000000000000", "5000"] {
        assert!(
            out.contains(&format!("length {length} HTTP/1.1 413")),
            "{out}"
        );
    }
    assert!(
        out.contains("length 18446744073709551615 HTTP/1.1 431"),
        "{out}"
    );
    // Nothing that changes state over TCP; on the socket, a flush names one
    // frontend that exists, or none; no other user may connect.
    assert!(out.contains("tcp flush HTTP/1.0 404"), "{out}");
    assert!(out.contains("\nflush HTTP/1.0 400"), "{out}");
    assert!(out.contains("unknown flush HTTP/1.0 404"), "{out}");
    assert!(out.contains("nobody refused True"), "{out}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(lab.socket("n1"))
            .expect("the socket")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the control socket is root's alone");
    assert!(out.contains("monitors 10 30"), "at most 10 monitors: {out}");
    let slowest: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("slowest "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(slowest < 1.0, "/healthz answered within 1 s: {out}");
    // The agent lives, within bounds, and its datapath serves.
    let after = rss_kib(agent.pid());
    assert!(
        after < before + 64 * 1024,
        "RSS grew from {before} to {after} KiB"
    );
    assert!(lab
        .sh_ok("n1", "curl -s http://127.0.0.1:9469/healthz")
        .contains("ok"));
    assert_eq!(
        curl(&lab, "n1-c1", &format!("http://{FRONTEND}:8080/")),
        "b1"
    );
}

#[test]
fn a_port_another_process_holds_degrades_the_listener_alone() {
    require_privileged!();
    let lab = Lab::up();
    let mut squatter = lab.background(
        "n1",
        "python3 -c 'import socket,time; s=socket.socket(); s.bind((\"127.0.0.1\", 9469)); s.listen(); time.sleep(60)'",
        "squatter.out",
    );
    // Bound before the agent starts.
    lab.wait_listening("n1", 9469);
    let agent = lab.agent("n1", ONE);
    assert!(
        agent.log_text().contains("listener"),
        "the busy port is reported: {}",
        agent.log_text()
    );
    assert_eq!(
        curl(&lab, "n1-c1", &format!("http://{FRONTEND}:8080/")),
        "b1"
    );
    squatter.signal(libc::SIGKILL);
    assert!(
        !squatter.running() || {
            std::thread::sleep(Duration::from_millis(200));
            !squatter.running()
        }
    );
    // Retried with backoff (1, 2, 4 … s): the listener comes up.
    let mut up = false;
    for _ in 0..40 {
        if lab
            .sh("n1", "curl -s --max-time 1 http://127.0.0.1:9469/healthz")
            .stdout
            .starts_with(b"ok")
        {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        up,
        "the listener came up once the port was free: {}",
        agent.log_text()
    );
}

#[test]
fn a_control_socket_left_by_a_killed_agent_is_replaced_and_a_live_one_kept() {
    require_privileged!();
    let lab = Lab::up();
    let mut agent = lab.agent("n1", ONE);
    agent.stop(libc::SIGKILL);
    assert!(lab.socket("n1").exists(), "the killed agent's socket stays");
    agent.start();
    // The CLI reaches the new agent through the replaced socket.
    let names = lab.hairpin_output("n1", &["list"]);
    assert!(
        !String::from_utf8_lossy(&names.stderr).contains("unknown"),
        "{}",
        String::from_utf8_lossy(&names.stderr)
    );
    // A second agent told to use the same socket leaves it to the first.
    let n1_socket = lab.socket("n1").display().to_string();
    let other = lab.agent_with("n2", ONE, &["--socket", &n1_socket]);
    assert!(
        other.log_text().contains("another agent answers there"),
        "{}",
        other.log_text()
    );
    let names = lab.hairpin_output("n1", &["list"]);
    assert!(
        !String::from_utf8_lossy(&names.stderr).contains("unknown"),
        "n1's agent still answers: {}",
        String::from_utf8_lossy(&names.stderr)
    );
}
