#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test, the privileged
# ones (BPF_PROG_TEST_RUN, the namespace lab) included. Run as root; the
# privileged tests fail rather than skip here, so CI cannot pass without them.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
scripts/clippy-ebpf.sh

echo "== the previous release, for the lab's upgrade test"
scripts/earlier-release.sh

echo "== cargo test"
# The lab's stand-in eBPF CNI (LAB_CNI=ebpf) runs from target/debug.
cargo build --quiet -p hairpin-standin-cni
export HAIRPIN_REQUIRE_PRIVILEGED=1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --exclude hairpin-ebpf --exclude hairpin-standin-cni-ebpf 2>&1 | tee "$log"

# The privileged suites must have run tests, not skipped them.
for suite in packet lab; do
	passed=$(awk -v s="$suite" '
		$1 == "Running" && $2 ~ ("/" s "/main.rs$") { inside = 1; next }
		inside && $1 == "test" && $2 == "result:" { print $4; exit }' "$log")
	if [[ -z $passed || $passed == 0 ]]; then
		echo "test.sh: the privileged suite '$suite' ran no test" >&2
		exit 1
	fi
	echo "privileged suite $suite: $passed tests passed"
done

# Debian's kernels in VMs: the smoke suite on each (scripts/kernels.sh).
echo "== the kernel matrix"
scripts/kernels.sh

# Every benchmark once, in its quick mode: a benchmark that breaks fails CI.
echo "== benchmarks (quick)"
BENCH_QUICK=1 scripts/bench.sh
