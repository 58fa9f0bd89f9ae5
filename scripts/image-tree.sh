#!/usr/bin/env bash
# The image's file tree, written once for scripts/image.sh and for
# deploy/Containerfile: the hairpin binary at /usr/local/bin/hairpin and the
# shared objects it links (glibc, libgcc), at the paths its loader looks in.
# Nothing else: no shell, no package manager, no /etc.
#   scripts/image-tree.sh BINARY TREE
set -euo pipefail

binary=$1
tree=$2

rm -rf "$tree"
install -D -m 0755 "$binary" "$tree/usr/local/bin/hairpin"
# ldd names each object as `name => path (address)`, the loader as `path
# (address)`.
ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
	while read -r lib; do
		install -D -m 0755 "$(readlink -f "$lib")" "$tree$lib"
	done
# One time for every file: the tree's bytes alone make the image.
find "$tree" -exec touch -h -d @0 {} +
