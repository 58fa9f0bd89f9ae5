use anyhow::{anyhow, Context as _};
use aya_build::{Package, Toolchain};

/// Builds the stand-in's eBPF object with nightly for bpfel-unknown-none;
/// the loader embeds it from OUT_DIR.
fn main() -> anyhow::Result<()> {
    let cargo_metadata::Metadata { packages, .. } = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("MetadataCommand::exec")?;
    let ebpf = packages
        .into_iter()
        .find(|p| p.name.as_str() == "hairpin-standin-cni-ebpf")
        .ok_or_else(|| anyhow!("hairpin-standin-cni-ebpf package not found"))?;
    let root_dir = ebpf
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("no parent for {}", ebpf.manifest_path))?;
    aya_build::build_ebpf(
        [Package {
            name: ebpf.name.as_str(),
            root_dir: root_dir.as_str(),
            ..Default::default()
        }],
        Toolchain::default(),
    )
}
