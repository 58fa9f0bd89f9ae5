#!/usr/bin/env bash
# Builds the hairpin image with no registry and no daemon: buildah assembles
# scripts/image-tree.sh's tree from scratch, labels it with the version and
# the commit, and writes an OCI archive. Its own storage under target/, so
# the machine's container storage is left alone.
#   scripts/image.sh [--binary PATH] [OUT]
#   default OUT: target/image/hairpin-VERSION.oci.tar
# Without --binary, the release binary is built first.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=
if [[ ${1:-} == --binary ]]; then
	binary=$2
	shift 2
fi
version=$(awk -F'"' '/^version = / { print $2; exit }' Cargo.toml)
out=${1:-target/image/hairpin-$version.oci.tar}
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)

if [[ -z $binary ]]; then
	cargo build --release --locked -p hairpin
	binary=target/release/hairpin
fi

work=$(mktemp -d)
trap 'buildah "${store[@]}" rm --all >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
store=(--root "$work/storage" --runroot "$work/run" --storage-driver vfs)

scripts/image-tree.sh "$binary" "$work/tree"
ctr=$(buildah "${store[@]}" from scratch)
buildah "${store[@]}" copy --quiet "$ctr" "$work/tree" / >/dev/null
buildah "${store[@]}" config \
	--entrypoint '["/usr/local/bin/hairpin"]' \
	--cmd 'run --config /etc/hairpin/hairpin.yaml' \
	--user 0:0 \
	--label org.opencontainers.image.title=hairpin \
	--label "org.opencontainers.image.version=$version" \
	--label "org.opencontainers.image.revision=$commit" \
	"$ctr"
buildah "${store[@]}" commit --quiet --timestamp 0 "$ctr" "hairpin:$version" >/dev/null
mkdir -p "$(dirname "$out")"
rm -f "$out"
buildah "${store[@]}" push --quiet "hairpin:$version" "oci-archive:$out:hairpin:$version"
echo "$out"
