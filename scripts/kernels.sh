#!/usr/bin/env bash
# The kernel matrix: on each of Debian's kernels (scripts/vm.sh: 5.10, 6.1,
# 6.12), booted in a VM, the smoke suite of hairpin:
#   - the packet tests, every program loaded, with few property cases (the
#     full tables of pressure:: are left to the host: under emulation they
#     take minutes);
#   - tests of the lab's (lab_smoke, below), the agent attaching as the
#     kernel allows (TCX or clsact), and pods on netkit devices where the
#     kernel has them.
# The full suites run on the host's kernel (scripts/test.sh).
#
#   scripts/kernels.sh [KERNEL...]      default: every kernel of the matrix
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

kernels=("$@")
((${#kernels[@]})) || read -ra kernels <<<"$(scripts/vm.sh list)"

# The lab's stand-in eBPF CNI (LAB_CNI=ebpf) runs from target/debug.
cargo build --quiet -p hairpin-standin-cni
# The test binaries, as cargo test would run them.
mapfile -t bins < <(cargo test --workspace --exclude hairpin-ebpf --exclude hairpin-standin-cni-ebpf --no-run \
	--message-format=json 2>/dev/null |
	jq -r 'select(.reason == "compiler-artifact" and .profile.test
		and (.target.name == "packet" or .target.name == "lab")) | "\(.target.name)=\(.executable)"')
packet= lab_bin=
for b in "${bins[@]}"; do
	case $b in
	packet=*) packet=${b#packet=} ;;
	lab=*) lab_bin=${b#lab=} ;;
	esac
done
[[ -x $packet && -x $lab_bin ]] || {
	echo "kernels.sh: test binaries not found" >&2
	exit 1
}

# The lab on each kernel, chosen so that every attach mode and both kinds
# of CNI meet the oldest kernel and the one with netkit, while the matrix
# stays within CI's time under emulation (a lab test takes minutes there;
# the whole lab runs on the host's kernel). The client matrix: pods on both
# nodes, the nodes' own processes, a backend reaching itself, TCP and UDP,
# IPv4 and IPv6.
lab_smoke() {
	case $1 in
	# clsact; beside an iptables CNI and beside the stand-in eBPF CNI; the
	# socket path without SO_NETNS_COOKIE (5.14), for the node and for
	# chosen cgroups (bpf_get_current_ancestor_cgroup_id)
	5.10) echo ipv6::ipv6_clients_reach_ipv6_frontends_beside_ipv4 \
		ebpf_cni::beside_an_ebpf_cni_every_client_reaches_every_frontend \
		sockets::host_processes_reach_the_frontends_through_the_socket_path_only \
		socket_pods::cgroups_the_file_chooses_take_the_socket_path_beside_an_iptables_cni ;;
	# clsact, Debian 12's nodes: beside an iptables CNI; pods the cluster
	# leaves to the socket path
	6.1) echo ipv6::ipv6_clients_reach_ipv6_frontends_beside_ipv4 \
		socket_pods::pods_the_cluster_leaves_to_the_socket_path_take_it_beside_an_ebpf_cni ;;
	# TCX, and netkit pods beside the stand-in eBPF CNI
	*) echo netkit::a_pod_on_a_netkit_device_in_l3_mode_is_served_beside_an_ebpf_cni ;;
	esac
}
# The kernels with netkit (6.7+), where its test must run, not skip.
NETKIT_KERNELS=" 6.12 "

# The guest's command: the tests run from the package's directory, as
# cargo runs them.
smoke() {
	local lab
	lab=$(lab_smoke "$1")
	cat <<EOF
cd agent || exit 1
uname -r
rc=0
echo "== packet tests (PROPTEST_CASES=\$PROPTEST_CASES)"
$packet --test-threads 2 --skip pressure:: || rc=1
echo "== lab: the client matrix"
$lab_bin --exact --test-threads 1 $lab || rc=1
exit \$rc
EOF
}

# Under emulation a lab probe's answer takes longer than natively.
export HAIRPIN_REQUIRE_PRIVILEGED=1 PROPTEST_CASES=${PROPTEST_CASES:-24} RUST_BACKTRACE=1 \
	LAB_PROBE_WAIT=${LAB_PROBE_WAIT:-10}
# Debian 12's iproute2 makes no netkit pair: the lab takes a newer ip.
LAB_IPROUTE2=$(scripts/vm.sh iproute2)
export LAB_IPROUTE2
failed=()
for k in "${kernels[@]}"; do
	echo "== kernel $k"
	start=$SECONDS
	unset HAIRPIN_REQUIRE_NETKIT
	[[ $NETKIT_KERNELS != *" $k "* ]] || export HAIRPIN_REQUIRE_NETKIT=1
	if VM_ENV="HAIRPIN_REQUIRE_PRIVILEGED PROPTEST_CASES RUST_BACKTRACE LAB_PROBE_WAIT \
		LAB_IPROUTE2 HAIRPIN_REQUIRE_NETKIT" scripts/vm.sh "$k" bash -c "$(smoke "$k")"; then
		echo "== kernel $k: passed in $((SECONDS - start)) s"
	else
		echo "== kernel $k: FAILED after $((SECONDS - start)) s"
		failed+=("$k")
	fi
done
if ((${#failed[@]})); then
	echo "kernels.sh: the smoke suite failed on ${failed[*]}" >&2
	exit 1
fi
