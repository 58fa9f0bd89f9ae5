#!/usr/bin/env bash
# Lints the eBPF crates (hairpin's, the lab's stand-in CNI's) for their own
# target, where they build (nightly, core built from source); the
# workspace's clippy run leaves them out.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== cargo clippy (ebpf)"
cargo +nightly clippy --quiet -p hairpin-ebpf -p hairpin-standin-cni-ebpf --target bpfel-unknown-none -Z build-std=core -- -D warnings
