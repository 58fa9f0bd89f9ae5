#!/usr/bin/env bash
# Lints the eBPF crate for its own target, where it builds (nightly, core
# built from source); the workspace's clippy run leaves it out.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== cargo clippy (ebpf)"
cargo +nightly clippy --quiet -p hairpin-ebpf --target bpfel-unknown-none -Z build-std=core -- -D warnings
