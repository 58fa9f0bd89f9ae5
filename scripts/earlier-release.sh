#!/usr/bin/env bash
# Builds hairpin as the previous release left it, for the lab's upgrade
# test (tests/lab/release.rs): the binary lands in target/earlier/hairpin.
# The release is the last commit of datapath layout 2, whose conntrack
# tables are LRU hashes. Its sources come from this repository's history;
# it is built in a target directory of its own: cargo hashes a workspace
# crate by its path within the workspace, so in the current one its units
# would be taken for this tree's (its eBPF object among them).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

REF=${HAIRPIN_EARLIER_REF:-ed4a1ad1e0cbde79b322ad2e75b98b52ca3b2948}
out=target/earlier
if [[ -x $out/hairpin && $(cat "$out/commit" 2>/dev/null) == "$REF" ]]; then
	exit 0
fi
# A shallow clone lacks the history: it is fetched.
if ! git cat-file -e "$REF^{commit}" 2>/dev/null &&
	[[ $(git rev-parse --is-shallow-repository) == true ]]; then
	git fetch --quiet --unshallow || true
fi
if ! git cat-file -e "$REF^{commit}" 2>/dev/null; then
	echo "earlier-release.sh: commit $REF is not in this clone's history, which the upgrade test builds from" >&2
	exit 1
fi
src=$out/src
rm -rf "$src" "$out/hairpin" "$out/commit"
mkdir -p "$src"
git archive "$REF" | tar -x -C "$src"
# Without debug info: the test needs none, and it links sooner.
CARGO_PROFILE_DEV_DEBUG=0 cargo build --quiet --manifest-path "$src/Cargo.toml" \
	-p hairpin --bin hairpin --target-dir "$out/target"
cp "$out/target/debug/hairpin" "$out/hairpin"
echo "$REF" >"$out/commit"
rm -rf "$src"
"$out/hairpin" --version
