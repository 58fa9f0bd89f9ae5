#!/usr/bin/env bash
# The lab demo: a router without NAT loopback in front of a two-node
# cluster; in-cluster clients fail to reach the external address, then
# succeed once hairpin runs on the nodes. Everything it starts lives in
# network namespaces of its own and is removed at the end, on error and on
# Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

export LAB_PREFIX=hpdemo
RUN=/run/hairpin-lab/$LAB_PREFIX
PIN_BASE=/sys/fs/bpf/hairpin-demo
AGENT_PIDS=()
# The nodes' host processes that the socket-level path serves: a cgroup of
# the demo's own per node, never the machine's root cgroup.
CGROUP_ROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
CGROUPS=("$CGROUP_ROOT/hairpin-demo-n1" "$CGROUP_ROOT/hairpin-demo-n2")

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	for pid in "${AGENT_PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${AGENT_PIDS[@]}"; do
		timeout 5 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
	done
	rm -rf "$PIN_BASE"-n1 "$PIN_BASE"-n2
	scripts/lab.sh down >/dev/null 2>&1 || true
	rmdir "${CGROUPS[@]}" 2>/dev/null || true
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "setup and build"
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --quiet
HAIRPIN=$PWD/target/release/hairpin

say "the lab: a router forwards 203.0.113.10 and [2001:db8:0:113::10] :8080/tcp and :5353/udp to pod b1 on node n1"
scripts/lab.sh up
say "without hairpin: the router does no NAT loopback, in-cluster clients fail"
LAB_PROBE_FAMILY=all scripts/lab.sh probe

say "starting hairpin on both nodes (examples/lab.yaml, socket path on a demo cgroup)"
for i in 0 1; do
	node=n$((i + 1))
	mkdir -p "${CGROUPS[$i]}"
	{ cat examples/lab.yaml; printf 'socket: { scope: host, cgroup: %s }\n' "${CGROUPS[$i]}"; } >"$RUN/$node.yaml"
	# nsenter keeps the machine's /sys (bpffs, cgroups); `ip netns exec` would not.
	nsenter --net="/run/netns/$LAB_PREFIX-$node" "$HAIRPIN" run \
		--config "$RUN/$node.yaml" --pin-dir "$PIN_BASE-$node" --socket "$RUN/$node.sock" \
		>"$RUN/agent-$node.log" 2>&1 &
	AGENT_PIDS+=("$!")
done
for node in n1 n2; do
	log=$RUN/agent-$node.log
	for _ in $(seq 100); do
		grep -q 'ready:' "$log" && break
		sleep 0.1
	done
	grep -q 'ready:' "$log" || { cat "$log"; echo "demo: hairpin did not start on $node" >&2; exit 1; }
	sed 's/^/  '"$node"': /' "$log"
done

say "with hairpin: every client reaches the frontends"
LAB_PROBE_FAMILY=all scripts/lab.sh probe

say "a host process of node n1 (like the kubelet) in the socket path's cgroup"
sh -c 'echo $$ >"$1/cgroup.procs" && exec ip netns exec "$2" curl -s --max-time 3 \
	-w "  (connected to %{remote_ip}:%{remote_port}, as getpeername says)\n" http://203.0.113.10:8080/' \
	_ "${CGROUPS[0]}" "$LAB_PREFIX-n1"
nsenter --net="/run/netns/$LAB_PREFIX-n1" "$HAIRPIN" list --pin-dir "$PIN_BASE-n1" \
	--socket "$RUN/n1.sock"

say "the rewrite, seen by tcpdump: pod c1 asks 203.0.113.10:8080"
ip netns exec "$LAB_PREFIX-n1-b1" tcpdump -n -l -c 2 -i eth0 'tcp port 80' \
	>$RUN/b1.cap 2>/dev/null &
cap_b1=$!
ip netns exec "$LAB_PREFIX-n1-c1" tcpdump -n -l -c 2 -i eth0 'tcp port 8080' \
	>$RUN/c1.cap 2>/dev/null &
cap_c1=$!
sleep 1
ip netns exec "$LAB_PREFIX-n1-c1" curl -s --max-time 3 http://203.0.113.10:8080/ >/dev/null
timeout 5 tail --pid="$cap_b1" -f /dev/null || kill "$cap_b1" 2>/dev/null || true
timeout 5 tail --pid="$cap_c1" -f /dev/null || kill "$cap_c1" 2>/dev/null || true
echo "in pod c1 (the client sees only the external address):"
sed 's/^/  /' $RUN/c1.cap
echo "in pod b1 (the backend sees the client's real address, on port 80):"
sed 's/^/  /' $RUN/b1.cap

say "hairpin monitor on node n1: a pod's flow, a host process's on TC, one on the socket path"
nsenter --net="/run/netns/$LAB_PREFIX-n1" "$HAIRPIN" monitor --count 5 --socket "$RUN/n1.sock" \
	>"$RUN/monitor.txt" 2>&1 &
mon=$!
sleep 1
ip netns exec "$LAB_PREFIX-n1-c1" curl -s --max-time 3 http://203.0.113.10:8080/ >/dev/null
ip netns exec "$LAB_PREFIX-n1" curl -s --max-time 3 http://203.0.113.10:8080/ >/dev/null
sh -c 'echo $$ >"$1/cgroup.procs" && exec ip netns exec "$2" curl -s --max-time 3 http://203.0.113.10:8080/' \
	_ "${CGROUPS[0]}" "$LAB_PREFIX-n1" >/dev/null
timeout 5 tail --pid="$mon" -f /dev/null || kill "$mon" 2>/dev/null || true
sed 's/^/  /' "$RUN/monitor.txt"

say "tearing down"
