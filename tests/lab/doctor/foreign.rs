//! A foreign TC program placed first on a TCX hook of a lab node, as
//! another product's program would be: `doctor_foreign` returns TC_ACT_OK,
//! which ends a TCX chain, so the programs after it never see the packets.

use std::{
    fs,
    os::fd::AsRawFd as _,
    path::{Path, PathBuf},
    process::Command,
    sync::mpsc,
    thread::JoinHandle,
};

use aya::programs::{tc::TcAttachOptions, LinkOrder, SchedClassifier, TcAttachType};

/// The program's name, as `bpftool` and the doctor show it.
pub const NAME: &str = "doctor_foreign";

/// LLVM IR, so that llc (installed with LLVM for bpf-linker) suffices; no
/// clang is needed.
const IR: &str = r#"target triple = "bpf"

@_license = global [4 x i8] c"GPL\00", section "license", align 1
@llvm.used = appending global [2 x ptr] [ptr @_license, ptr @doctor_foreign], section "llvm.metadata"

define i32 @doctor_foreign(ptr %skb) section "classifier" {
  ret i32 0
}
"#;

/// LLVM's `llc`: `$LLC`, else the newest /usr/lib/llvm-*/bin/llc, else the
/// one on PATH.
fn llc() -> PathBuf {
    if let Some(p) = std::env::var_os("LLC") {
        return p.into();
    }
    let mut found: Vec<PathBuf> = fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("llvm-"))
        .map(|e| e.path().join("bin/llc"))
        .filter(|p| p.exists())
        .collect();
    found.sort_by_key(|p| {
        let v = p
            .components()
            .nth(3)
            .map(|c| c.as_os_str().to_string_lossy().into_owned());
        v.and_then(|v| v.strip_prefix("llvm-").and_then(|n| n.parse::<u32>().ok()))
    });
    found.pop().unwrap_or_else(|| "llc".into())
}

/// Compiles the program into `dir`; returns the object's bytes.
fn build(dir: &Path) -> Vec<u8> {
    let ll = dir.join("foreign.ll");
    let obj = dir.join("foreign.o");
    fs::write(&ll, IR).expect("write foreign.ll");
    let out = Command::new(llc())
        .args(["-march=bpf", "-filetype=obj", "-o"])
        .arg(&obj)
        .arg(&ll)
        .output()
        .expect("run llc");
    assert!(
        out.status.success(),
        "llc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs::read(&obj).expect("read foreign.o")
}

/// The program attached first on `hook` of `iface` in network namespace
/// `netns` (a path under /run/netns), detached on drop. A thread of its own
/// enters the namespace (the interface is named there) and holds the link.
pub struct Foreign {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Foreign {
    pub fn attach(run_dir: &Path, netns: &str, iface: &str, hook: TcAttachType) -> Self {
        let object = build(run_dir);
        let (netns, iface) = (netns.to_owned(), iface.to_owned());
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let attached = (|| -> Result<aya::Ebpf, String> {
                let ns = fs::File::open(&netns).map_err(|e| format!("{netns}: {e}"))?;
                // SAFETY: this thread alone moves to the lab's namespace.
                if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(format!("setns: {}", std::io::Error::last_os_error()));
                }
                let mut bpf = aya::Ebpf::load(&object).map_err(|e| e.to_string())?;
                let prog: &mut SchedClassifier = bpf
                    .program_mut(NAME)
                    .ok_or("no program doctor_foreign")?
                    .try_into()
                    .map_err(|e: aya::programs::ProgramError| e.to_string())?;
                prog.load().map_err(|e| e.to_string())?;
                prog.attach_with_options(
                    &iface,
                    hook,
                    TcAttachOptions::TcxOrder(LinkOrder::first()),
                )
                .map_err(|e| format!("attach to {iface}: {e}"))?;
                Ok(bpf)
            })();
            match attached {
                // Ignored errors: the test's side is gone only when it
                // panicked, and then the program goes with this thread.
                Ok(bpf) => {
                    let _ = ready_tx.send(Ok(()));
                    // Held until the guard drops; dropping it detaches.
                    let _ = stop_rx.recv();
                    drop(bpf);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
        });
        let ready = ready_rx.recv().expect("the attaching thread answers");
        let mut guard = Self {
            stop: Some(stop_tx),
            thread: Some(thread),
        };
        if let Err(e) = ready {
            guard.detach();
            panic!("attaching the foreign program: {e}");
        }
        guard
    }

    /// Detaches the program (closes its link) and waits for it.
    pub fn detach(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            // Ignored error: the thread's panic, if any, was reported.
            let _ = t.join();
        }
    }
}

impl Drop for Foreign {
    fn drop(&mut self) {
        self.detach();
    }
}
