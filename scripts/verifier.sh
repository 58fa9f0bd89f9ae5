#!/usr/bin/env bash
# Prints each program's size and verifier cost on this kernel, as the agent
# logs them at load (docs/datapath.md has the table). Runs the agent in a
# network namespace and a cgroup of its own, both removed on exit.
#
#   scripts/verifier.sh [path/to/hairpin]
set -euo pipefail

BIN=${1:-target/debug/hairpin}
NS=hp-verifier-$$
DIR=$(mktemp -d)
CG_ROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
CG=$CG_ROOT/hp-verifier-$$
PINS=/sys/fs/bpf/hp-verifier-$$
PID=

cleanup() {
    [[ -n $PID ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    ip netns del "$NS" 2>/dev/null || true
    rmdir "$CG" 2>/dev/null || true
    rm -rf "$PINS" "$DIR"
}
trap cleanup EXIT

ip netns add "$NS"
ip -n "$NS" link add up0 type veth peer name veth0
ip -n "$NS" addr add 192.0.2.1/24 dev up0
ip -n "$NS" -6 addr add 2001:db8::1/64 dev up0 nodad
ip -n "$NS" link set up0 up
ip -n "$NS" link set veth0 up
ip -n "$NS" link set lo up
mkdir "$CG"

cat >"$DIR/config.yaml" <<EOF
redirects:
  - name: web
    frontend: 203.0.113.10
    ports: [{ port: 8080, protocol: TCP, targetPort: 80 }]
    backends: [{ ip: 192.0.2.2 }]
  - name: web
    frontend: 2001:db8:113::10
    ports: [{ port: 8080, protocol: TCP, targetPort: 80 }]
    backends: [{ ip: "2001:db8::2" }]
interfaces:
  uplink: up0
  pods: ["veth*"]
socket:
  cgroup: $CG
EOF

RUST_LOG=info NO_COLOR=1 nsenter --net="/run/netns/$NS" "$BIN" run \
    --config "$DIR/config.yaml" --pin-dir "$PINS" 2>"$DIR/log" &
PID=$!
for _ in $(seq 100); do
    grep -q "ready:" "$DIR/log" && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
done
grep -q "ready:" "$DIR/log" || { cat "$DIR/log" >&2; exit 1; }
grep -o "program [a-z0-9_]*: [0-9]* instructions, [0-9]* processed" "$DIR/log"
