#!/usr/bin/env bash
# Runs a command on another kernel: one of Debian's own kernel packages,
# booted in a VM over this machine's root filesystem (read-only, 9p).
#
#   scripts/vm.sh KERNEL COMMAND...     KERNEL: 5.10 (Debian 11), 6.1 (Debian 12),
#                                       6.12 (Debian 13); `scripts/vm.sh list`
#   scripts/vm.sh fetch [KERNEL...]     fetch (and cache) kernels only
#   scripts/vm.sh iproute2              the path of an ip that knows netkit
#
# The command runs in the repository's directory as root, with bpffs
# mounted; prints its output and exits with its status. Variables named in
# VM_ENV (space separated) are passed in, as the guest starts with a clean
# environment. The guest's /tmp is its own (an overlay); the repository is
# read-only there but for target/vm/run, where the output comes back.
#
# Kernels come from Debian's suites through an apt configuration of the
# script's own (target/vm/apt), never the machine's, unpacked with dpkg -x:
# the newest package of each suite's `linux-image-amd64`. A kernel that
# cannot be fetched fails the run. Hardware virtualisation cannot run these
# kernels on the test machines: QEMU emulates (boot ~30 s).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
vm=$root/target/vm

suite_of() {
	case $1 in
	5.10) echo bullseye ;;
	6.1) echo bookworm ;;
	6.12) echo trixie ;;
	*)
		echo "vm.sh: unknown kernel '$1' (one of: 5.10 6.1 6.12)" >&2
		return 1
		;;
	esac
}

apt_opts() {
	local d=$vm/apt/$1
	echo -o "Dir::State=$d" -o Dir::State::status=/dev/null -o "Dir::Cache=$d" \
		-o "Dir::Etc::sourcelist=$d/sources.list" -o Dir::Etc::sourceparts=/dev/null \
		-o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null \
		-o APT::Architecture=amd64 -o APT::Sandbox::User=root -q=2
}

# The guest's tools (QEMU from Debian, virtme-ng from PyPI) come from
# scripts/setup.sh.
tools() {
	local t
	for t in qemu-system-x86_64 busybox depmod file vng; do
		command -v "$t" >/dev/null || {
			echo "vm.sh: $t is missing: run scripts/setup.sh" >&2
			exit 1
		}
	done
}

# Prints the path of KERNEL's image, fetching it first if need be.
fetch() {
	local suite dir image pkg
	suite=$(suite_of "$1")
	dir=$vm/kernels/$1
	image=$(ls "$dir"/root/boot/vmlinuz-* 2>/dev/null | head -n 1 || true)
	if [[ -n $image ]]; then
		echo "$image"
		return
	fi
	mkdir -p "$vm/apt/$suite/lists/partial" "$vm/apt/$suite/archives/partial" "$dir"
	{
		echo "deb http://deb.debian.org/debian $suite main"
		echo "deb http://deb.debian.org/debian-security $suite-security main"
	} >"$vm/apt/$suite/sources.list"
	# shellcheck disable=SC2046 # the options are words
	apt-get $(apt_opts "$suite") update >&2
	# shellcheck disable=SC2046
	pkg=$(apt-cache $(apt_opts "$suite") depends linux-image-amd64 |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
	[[ -n $pkg ]] || {
		echo "vm.sh: no kernel package in $suite" >&2
		return 1
	}
	rm -f "$dir"/*.deb
	# shellcheck disable=SC2046
	(cd "$dir" && apt-get $(apt_opts "$suite") download "$pkg" >&2)
	rm -rf "$dir/root"
	dpkg -x "$dir"/*.deb "$dir/root"
	rm -f "$dir"/*.deb
	ls "$dir"/root/boot/vmlinuz-*
}

# Prints the path of an `ip` that knows netkit (iproute2 6.7+; Debian 12's
# is 6.1), from bookworm-backports, fetching it first if need be: the lab's
# netkit pods (LAB_IPROUTE2).
iproute2() {
	local dir=$vm/iproute2 suite=bookworm-backports
	if [[ ! -x $dir/root/bin/ip ]]; then
		mkdir -p "$vm/apt/$suite/lists/partial" "$vm/apt/$suite/archives/partial" "$dir"
		echo "deb http://deb.debian.org/debian $suite main" >"$vm/apt/$suite/sources.list"
		# shellcheck disable=SC2046 # the options are words
		apt-get $(apt_opts "$suite") update >&2
		rm -f "$dir"/*.deb
		# shellcheck disable=SC2046
		(cd "$dir" && apt-get $(apt_opts "$suite") download "iproute2/$suite" >&2)
		rm -rf "$dir/root"
		dpkg -x "$dir"/*.deb "$dir/root"
		rm -f "$dir"/*.deb
	fi
	echo "$dir/root/bin/ip"
}

case ${1:-} in
iproute2)
	iproute2
	exit 0
	;;
list)
	echo "5.10 6.1 6.12"
	exit 0
	;;
fetch)
	shift
	tools
	for k in "${@:-5.10 6.1 6.12}"; do
		for kk in $k; do fetch "$kk" >/dev/null; done
	done
	exit 0
	;;
"" | -h | --help)
	sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
	;;
esac

kernel=$1
shift
(($#)) || {
	echo "vm.sh: no command" >&2
	exit 2
}
tools
image=$(fetch "$kernel")

run=$vm/run/$kernel.$$
rm -rf "$run"
mkdir -p "$run"
trap 'rm -rf "$run"' EXIT
{
	echo "#!/bin/bash"
	for v in ${VM_ENV:-}; do
		[[ -v $v ]] && printf 'export %s=%q\n' "$v" "${!v}"
	done
	printf 'export PATH=%q HOME=%q\n' "$PATH" "$HOME"
	echo "mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf"
	printf 'cd %q\n' "$root"
	printf '%q ' "$@"
	echo
} >"$run/command"
# The status is written from the guest: vng does not pass it back.
echo '"$(dirname "$0")/command" >"$(dirname "$0")/output" 2>&1; echo $? >"$(dirname "$0")/status"' >"$run/wrapper"
chmod +x "$run/command" "$run/wrapper"
: >"$run/output"

tail -n +1 -F "$run/output" 2>/dev/null &
tailer=$!
vng --disable-kvm --run "$image" --cpus 2 --memory 3G --rwdir="$run" \
	--exec "$run/wrapper" >"$run/console" 2>&1 || true
sleep 0.5
kill "$tailer" 2>/dev/null || true
wait "$tailer" 2>/dev/null || true
if [[ ! -s $run/status ]]; then
	echo "vm.sh: kernel $kernel: the guest wrote no status; its console:" >&2
	tail -n 40 "$run/console" >&2
	exit 1
fi
exit "$(cat "$run/status")"
