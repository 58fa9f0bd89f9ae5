#!/usr/bin/env bash
# Idempotent bootstrap of a build-and-lab machine: Debian packages, the
# nightly rust-src for the eBPF target, bpf-linker, and a mounted bpffs.
# Quiet on success; on failure prints the failing step and its output.
set -euo pipefail

BPF_LINKER_VERSION=0.13.0
LLVM_MAJOR=22
PACKAGES=(
	"llvm-${LLVM_MAJOR}-dev" "libpolly-${LLVM_MAJOR}-dev" zlib1g-dev libzstd-dev
	iproute2 nftables iptables conntrack tcpdump curl socat nginx-light wrk iperf3 ethtool
	dnsutils dnsmasq-base
	buildah containerd runc bpftool
	qemu-system-x86 busybox-static kmod file jq
)
# virtme-ng boots Debian's kernels for the kernel matrix (scripts/vm.sh).
VIRTME_NG_VERSION=1.42

log=$(mktemp)
trap 'rm -f "$log"' EXIT

step() {
	local what=$1
	shift
	if ! "$@" >"$log" 2>&1; then
		echo "setup: $what failed:" >&2
		tail -n 40 "$log" >&2
		exit 1
	fi
}

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
	step "apt-get update" apt-get update
	step "apt-get install ${missing[*]}" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends "${missing[@]}"
fi

# containerd's package starts its daemon where systemd runs; the image
# test runs its own, with a root of its own.
if command -v systemctl >/dev/null && systemctl is-active --quiet containerd 2>/dev/null; then
	step "stop packaged containerd" systemctl stop containerd
fi

# nginx-light's package starts a daemon on the root namespace's port 80; the
# lab runs its own instances inside namespaces and needs none of it.
if command -v systemctl >/dev/null && systemctl is-active --quiet nginx 2>/dev/null; then
	step "stop packaged nginx" systemctl stop nginx
fi

if ! vng --version 2>/dev/null | grep -q "$VIRTME_NG_VERSION"; then
	step "virtme-ng $VIRTME_NG_VERSION" python3 -m pip install --quiet "virtme-ng==$VIRTME_NG_VERSION"
fi

rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^rust-src' ||
	step "rust-src for nightly" rustup component add rust-src --toolchain nightly

if ! bpf-linker --version 2>/dev/null | grep -q "$BPF_LINKER_VERSION"; then
	step "bpf-linker $BPF_LINKER_VERSION" env LLVM_PREFIX="/usr/lib/llvm-${LLVM_MAJOR}" \
		cargo install --locked bpf-linker --version "$BPF_LINKER_VERSION" \
		--no-default-features --features "llvm-${LLVM_MAJOR}"
fi

# Programs and maps are pinned under bpffs; some machines boot without it.
if ! mountpoint -q /sys/fs/bpf; then
	mkdir -p /sys/fs/bpf
	step "mount bpffs" mount -t bpf bpf /sys/fs/bpf
fi
