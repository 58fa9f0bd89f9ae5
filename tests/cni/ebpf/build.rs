use which::which;

/// Rebuild when bpf-linker changes: it is the linker of this crate, and cargo
/// cannot see it as a dependency.
fn main() {
    let bpf_linker = which("bpf-linker").expect("bpf-linker not found: run scripts/setup.sh");
    println!(
        "cargo:rerun-if-changed={}",
        bpf_linker.to_str().expect("utf-8 path")
    );
}
