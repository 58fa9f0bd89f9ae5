#!/usr/bin/env bash
# hairpin's cost, side by side with the direct path and with iptables DNAT,
# in one bounded run in a lab of its own (LAB_PREFIX=hpbench):
#   1. per packet: BPF_PROG_TEST_RUN against an empty TC program
#      (agent/examples/packet_bench/)
#   2. end to end: wrk and iperf3 from pods and a host to b1, directly,
#      through hairpin, and through hand-written iptables DNAT; interleaved
#   3. scale: 1 to 100,000 frontends (iptables: DNAT rules)
#   4. conntrack: CT_V4 at 1,000,000 entries (agent/examples/ct_bench.rs)
#   5. Kubernetes mode: EndpointSlice update to the maps (p50, p99), memory
#      with 10,000 Services and 50,000 endpoints against 100 Services
#      (agent/examples/cluster_bench)
# Prints one table and writes bench/results/<date>-<commit>.{txt,json}.
#
# Usage: scripts/bench.sh            (root; about 9 minutes after the build)
#   BENCH_QUICK=1      a short smoke run that keeps no results
#   BENCH_REPS         end-to-end rounds (default 5)
#   BENCH_WRK_S        seconds per wrk run (default 2)
#   BENCH_IPERF_S      seconds per iperf3 run (default 5)
#   BENCH_CLIENTS      end-to-end clients among c1 c1s n1 n1s c2 c2s (default:
#                      all; n1s is host n1 in the cgroup of hairpin's socket
#                      path, c1s and c2s pods c1 and c2 in a cgroup their
#                      node's agent chose for it: the per-pod socket path)
#   BENCH_BULK_CLIENTS clients that also run iperf3 uploads (default: c1 c1s
#                      n1 n1s)
#   BENCH_DOWN_CLIENTS clients that also download from b1 (iperf3 -R;
#                      default: all)
#   BENCH_SCALE        frontend counts (default: 1 1000 10000 20000 100000)
#   BENCH_APPLY_S      how long an agent may take to apply a scale
#                      configuration before it is measured another way
#                      (default 45)
#   BENCH_DEADLINE     seconds after the build before the run is aborted
#                      (default 1500)
set -Eeuo pipefail

PROG=${0##*/}
cd "$(dirname "$0")/.."
ROOT=$PWD

export LAB_PREFIX=hpbench
export LAB_RUN=/run/hairpin-lab
P=$LAB_PREFIX
RUN=$LAB_RUN/$P

QUICK=${BENCH_QUICK:-0}
if ((QUICK)); then
	REPS=${BENCH_REPS:-1} WRK_S=${BENCH_WRK_S:-1} IPERF_S=${BENCH_IPERF_S:-1}
	SCALE=${BENCH_SCALE:-1 1000} SCALE_REPS=1
	PACKET_ARGS=(--runs 2 --repeat 100000 --distinct 5000 --frontends 1000)
	CT_ARGS=(--flows 20000 --ct-entries 65536)
else
	REPS=${BENCH_REPS:-5} WRK_S=${BENCH_WRK_S:-2} IPERF_S=${BENCH_IPERF_S:-5}
	SCALE=${BENCH_SCALE:-1 1000 10000 20000 100000} SCALE_REPS=3
	PACKET_ARGS=()
	CT_ARGS=()
fi
read -r -a CLIENTS <<<"${BENCH_CLIENTS:-c1 c1s n1 n1s c2 c2s}"
BULK_CLIENTS=" ${BENCH_BULK_CLIENTS:-c1 c1s n1 n1s} "
DOWN_CLIENTS=" ${BENCH_DOWN_CLIENTS:-c1 c1s n1 n1s c2 c2s} "
DEADLINE=${BENCH_DEADLINE:-1500}
APPLY_S=${BENCH_APPLY_S:-45}
# wrk: one thread, as many connections as nginx's single worker wants.
WRK_CONNS=16

FRONTEND=203.0.113.10
B1=198.51.100.2
declare -A CLIENT_NS=([c1]=n1-c1 [c1s]=n1-c1 [c2]=n2-c2 [c2s]=n2-c2 [n1]=n1 [n1s]=n1)
# Each node's agent attaches its socket path to a cgroup of its own: host
# n1's processes there meet it, and so do the pods' in its `pod` cgroup,
# which the agent chooses (socket.cgroups); the others keep the TC path.
CG_ROOT=$(findmnt -n -t cgroup2 -o TARGET | head -1)
SOCK_CG=$CG_ROOT/$P-sock
declare -A SOCK_CGS=([n1]=$SOCK_CG [n2]=$CG_ROOT/$P-sock-n2)
declare -A CLIENT_CG=([n1s]=$SOCK_CG [c1s]=$SOCK_CG/pod [c2s]=${SOCK_CGS[n2]}/pod)
VARIANTS=(direct hairpin iptables)
NODES=(n1 n2)
CT_NAMESPACES=(n1 n2 n1-b1 n1-c1 n2-c2 n2-b2)

HAIRPIN=$ROOT/target/release/hairpin
EXAMPLES=$ROOT/target/release/examples

die() {
	echo "$PROG: $*" >&2
	exit 1
}
note() { echo "$PROG: $*" >&2; }

((EUID == 0)) || die "run as root (BPF, network namespaces)"
for t in wrk iperf3 nstat conntrack iptables-restore nft nsenter curl cargo flock; do
	command -v "$t" >/dev/null || die "missing tool: $t (scripts/setup.sh installs the lab's tools)"
done

# ---------------------------------------------------------------- cleanup

TMP=
WATCHDOG=
IPERF_PID=
declare -A AGENT_PID=()
lab_started=0

failed=
trap 'failed="line $LINENO: \`$BASH_COMMAND\` failed (exit $?)"' ERR

cleanup() {
	local rc=$? n
	trap - ERR
	set +e
	if ((rc != 0)); then
		[[ -z $failed ]] || note "$failed"
		note "aborted (exit $rc), cleaning up"
	fi
	[[ -z $WATCHDOG ]] || kill "$WATCHDOG" 2>/dev/null
	for n in "${!AGENT_PID[@]}"; do
		agent_stop "$n"
	done
	[[ -z $IPERF_PID ]] || { kill "$IPERF_PID" 2>/dev/null && wait "$IPERF_PID" 2>/dev/null; }
	# Takes down the namespaces and what lab.sh started in them (nginx).
	((lab_started == 0)) || scripts/lab.sh down >/dev/null || note "lab.sh down failed"
	for n in "${NODES[@]}"; do
		rm -rf "/sys/fs/bpf/$P-$n"
	done
	[[ -z $TMP ]] || rm -rf "$TMP"
	for cg in "${CLIENT_CG[c1s]}" "${CLIENT_CG[c2s]}" "${SOCK_CGS[@]}"; do
		[[ ! -d $cg ]] || rmdir "$cg" || note "cgroup $cg left behind"
	done
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# One run at a time: the lab's prefix is fixed.
mkdir -p "$LAB_RUN"
exec 9>"$LAB_RUN/$P.lock"
flock -n 9 || die "another scripts/bench.sh is running"

# ---------------------------------------------------------------- helpers

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }

nsx() {
	local n=$1
	shift
	ip netns exec "$P-$n" "$@"
}

# in_client <client> <command...>: in the client's namespace (and, for the
# socket path's clients, first in their cgroup: `ip netns exec` remounts
# /sys).
in_client() {
	local c=$1
	shift
	if [[ -n ${CLIENT_CG[$c]:-} ]]; then
		sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "${CLIENT_CG[$c]}" \
			ip netns exec "$P-${CLIENT_NS[$c]}" "$@"
	else
		ip netns exec "$P-${CLIENT_NS[$c]}" "$@"
	fi
}

# record <group> <key> <value>: one raw sample.
record() {
	[[ -n $3 && $3 != - ]] || {
		# The smoke run checks that every benchmark still measures.
		((QUICK == 0)) || die "no value for $1 $2: a benchmark is broken"
		note "no value for $1 $2"
		return 0
	}
	printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RAW"
}

# Between runs: no conntrack entries on the nodes, and no TIME-WAIT
# sockets. b1 closes first (it answers `Connection: close`), so its
# TIME-WAIT sockets would meet the next run's reused client ports; the
# client's timestamp offset depends on the address it connects to, so a SYN
# of a run through 203.0.113.10 onto a TIME-WAIT socket of a direct run is
# refused (PAWS) and retransmitted a second later: an artifact of running
# the variants one after the other, not of any of them.
reset_state() {
	local n
	for n in "${CT_NAMESPACES[@]}"; do
		nsx "$n" conntrack -F >/dev/null 2>&1 || true
		nsx "$n" ss -K -tan state time-wait >/dev/null 2>&1 || true
	done
}

# nstat_get <ns> <counter>: the counter's absolute value.
nstat_get() {
	nsx "$1" nstat -saz "$2" 2>/dev/null | awk -v c="$2" '$1 == c { v = $2 } END { print v + 0 }'
}

# get_ok <client> <url>: the client gets b1's answer.
get_ok() {
	[[ $(in_client "$1" timeout 5 curl -s --max-time 2 "$2" 2>/dev/null) == b1 ]]
}

# ---------------------------------------------------------------- the agent

agent_start() {
	local node=$1 config=$2 log=$RUN/agent-$1.log
	: >"$log"
	# nsenter keeps the machine's bpffs, which `ip netns exec` would remount.
	NO_COLOR=1 RUST_LOG=info nsenter --net="/run/netns/$P-$node" \
		"$HAIRPIN" run --config "$config" --pin-dir "/sys/fs/bpf/$P-$node" \
		--socket "$RUN/$node.sock" </dev/null >/dev/null 2>>"$log" &
	AGENT_PID[$node]=$!
}

# agent_wait <node> <pattern> <count> <timeout s>: until the log has <count>
# lines matching <pattern>; fails if the agent exits or time runs out.
agent_wait() {
	local node=$1 pattern=$2 count=$3 limit=$4 pid=${AGENT_PID[$1]} start
	start=$(now)
	while (($(grep -cE "$pattern" "$RUN/agent-$node.log" || true) < count)); do
		alive "$pid" || return 1
		awk -v t="$(since "$start")" -v l="$limit" 'BEGIN { exit !(t < l) }' || return 1
		sleep 0.02
	done
}

agent_hwm_mib() {
	awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/${AGENT_PID[$1]}/status"
}

# alive <pid>: running (a child that exited stays a zombie until waited for).
alive() {
	[[ -e /proc/$1 ]] && [[ $(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) != Z ]]
}

# Stops the agent and removes its datapath: agents that leave it in place
# on exit have `hairpin detach`; removing the pins detaches the rest.
agent_stop() {
	local node=$1 pid=${AGENT_PID[$1]:-} i
	[[ -n $pid ]] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		alive "$pid" || break
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	unset "AGENT_PID[$node]"
	if "$HAIRPIN" detach --help >/dev/null 2>&1; then
		nsenter --net="/run/netns/$P-$node" "$HAIRPIN" detach \
			--pin-dir "/sys/fs/bpf/$P-$node" >/dev/null 2>&1 || true
	fi
	rm -rf "/sys/fs/bpf/$P-$node"
}

# gen_config <n> <extra ports> [socket cgroup]: n frontends, the last 203.0.113.10:8080,
# the others on 203.0.113.1-250, ports from 10000, all to b1:80; the socket
# path attached to the cgroup given, with its `pod` cgroup chosen, else off.
gen_config() {
	awk -v n="$1" -v extra="$2" -v cgroup="${3:-}" 'BEGIN {
		print "redirects:"
		m = n - 1
		for (a = 1; a <= 250; a++) {
			if (a - 1 >= m) break
			printf "  - name: f%d\n    frontend: 203.0.113.%d\n    ports:\n", a, a
			for (i = a - 1; i < m; i += 250)
				printf "      - { port: %d, protocol: TCP }\n", 10000 + int(i / 250)
			print "    backends:\n      - { ip: 198.51.100.2, port: 80 }"
		}
		print "  - name: web\n    frontend: 203.0.113.10\n    ports:"
		print "      - { name: http, port: 8080, protocol: TCP, targetPort: 80 }"
		if (extra) {
			print "      - { name: dns, port: 5353, protocol: UDP, targetPort: 53 }"
			print "      - { name: iperf, port: 5201, protocol: TCP, targetPort: 5201 }"
		}
		print "    backends:\n      - ip: 198.51.100.2"
		print "interfaces:\n  uplink: auto\n  pods: [\"veth*\"]"
		if (cgroup == "") print "socket:\n  enabled: false"
		else print "socket:\n  enabled: true\n  cgroup: " cgroup "\n  cgroups: [pod]"
	}'
}

# ---------------------------------------------------------------- iptables

# iptables_rules <n>: n DNAT rules in a chain that PREROUTING (pods) and
# OUTPUT (host processes) jump to, the measured one last.
iptables_rules() {
	awk -v n="$1" 'BEGIN {
		print "*nat\n:HPBENCH - [0:0]\n-A PREROUTING -j HPBENCH\n-A OUTPUT -j HPBENCH"
		for (i = 0; i < n - 1; i++)
			printf "-A HPBENCH -d 203.0.113.%d/32 -p tcp -m tcp --dport %d -j DNAT --to-destination 198.51.100.2:80\n", 1 + i % 250, 10000 + int(i / 250)
		print "-A HPBENCH -d 203.0.113.10/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 198.51.100.2:80"
		print "COMMIT"
	}'
}

iptables_down() {
	local n
	for n in "${NODES[@]}"; do
		# iptables-nft's own table, created by the restore; nothing else of
		# the lab lives in it. Faster than iptables -F on 100,000 rules.
		nsx "$n" nft delete table ip nat 2>/dev/null || true
	done
}

# ---------------------------------------------------------------- variants

variant_up() {
	local n
	case $1 in
	direct) ;;
	hairpin)
		for n in "${NODES[@]}"; do
			agent_start "$n" "$RUN/bench-e2e-$n.yaml"
		done
		for n in "${NODES[@]}"; do
			agent_wait "$n" 'ready:' 1 30 || die "agent on $n not ready: $(tail -3 "$RUN/agent-$n.log")"
		done
		;;
	iptables)
		for n in "${NODES[@]}"; do
			nsx "$n" iptables-restore --noflush <<-EOF
				*nat
				-A PREROUTING -d $FRONTEND/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination $B1:80
				-A OUTPUT -d $FRONTEND/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination $B1:80
				-A PREROUTING -d $FRONTEND/32 -p tcp -m tcp --dport 5201 -j DNAT --to-destination $B1:5201
				-A OUTPUT -d $FRONTEND/32 -p tcp -m tcp --dport 5201 -j DNAT --to-destination $B1:5201
				COMMIT
			EOF
		done
		;;
	esac
}

variant_down() {
	local n
	case $1 in
	hairpin)
		for n in "${NODES[@]}"; do
			agent_stop "$n"
		done
		;;
	iptables) iptables_down ;;
	esac
	# Nothing may be left translating.
	[[ $1 == direct ]] || get_fails c1 "http://$FRONTEND:8080/" ||
		die "$1 still translates after it was taken down"
}

# get_fails <client> <url>: no answer within half a second (the router
# drops the frontend's port from inside, so requests time out).
get_fails() {
	! in_client "$1" timeout 5 curl -s --max-time 0.5 "$2" >/dev/null 2>&1
}

target() { if [[ $1 == direct ]]; then echo "$B1 80"; else echo "$FRONTEND 8080"; fi; }

# ---------------------------------------------------------------- load

# wrk_run <client> <url> [wrk args]: prints "req/s p50_us p99_us errors".
wrk_run() {
	local client=$1 url=$2
	shift 2
	in_client "$client" timeout $((WRK_S + 15)) \
		wrk -t1 -c"$WRK_CONNS" -d"${WRK_S}s" --latency "$@" "$url" 2>&1 | awk '
		function us(v) {
			if (v ~ /us$/) return v + 0
			if (v ~ /ms$/) return v * 1000
			if (v ~ /s$/) return v * 1000000
			return v + 0
		}
		$1 == "50%" { p50 = us($2) }
		$1 == "99%" { p99 = us($2) }
		$1 == "Requests/sec:" { rps = $2 }
		/Socket errors:/ { gsub(",", ""); err += $4 + $6 + $8 + $10 }
		/Non-2xx/ { err += $NF }
		END { printf "%s %s %s %d\n", d(rps), d(p50), d(p99), err }
		function d(x) { return x == "" ? "-" : x }' || true
}

# iperf_run <client> <address> [-R]: prints "Gbit/s retransmits" (with
# -R b1 sends: a download, the retransmits are b1's).
iperf_run() {
	in_client "$1" timeout $((IPERF_S + 15)) \
		iperf3 -c "$2" -p 5201 -t "$IPERF_S" -f m --connect-timeout 3000 ${3:-} 2>&1 | awk '
		/receiver$/ { for (i = 1; i <= NF; i++) if ($i == "Mbits/sec") g = $(i - 1) / 1000 }
		/sender$/ { r = $(NF - 1) }
		END { if (g != "") printf "%.3f %s\n", g, r; else print "- -" }' || true
}

# One client's tests against one variant, recorded under <variant>.
e2e_client() {
	local v=$1 c=$2 addr port rps p50 p99 err syn0 paws0 g r
	read -r addr port < <(target "$v")
	local url="http://$addr:$port/" ns=${CLIENT_NS[$c]}

	reset_state
	read -r rps p50 p99 err < <(wrk_run "$c" "$url")
	record e2e "ka.rps/$c/$v" "$rps"
	record e2e "ka.p50_us/$c/$v" "$p50"
	record e2e "ka.p99_us/$c/$v" "$p99"
	record e2e "ka.errors/$c/$v" "$err"

	reset_state
	syn0=$(nstat_get "$ns" TcpExtTCPSynRetrans)
	paws0=$(nstat_get n1-b1 TcpExtPAWSTimewait)
	read -r rps p50 p99 err < <(wrk_run "$c" "$url" -H 'Connection: close')
	record e2e "close.cps/$c/$v" "$rps"
	record e2e "close.errors/$c/$v" "$err"
	record e2e "close.syn_retrans/$c/$v" "$(($(nstat_get "$ns" TcpExtTCPSynRetrans) - syn0))"
	record e2e "close.b1_paws_tw/$c/$v" "$(($(nstat_get n1-b1 TcpExtPAWSTimewait) - paws0))"

	if [[ $BULK_CLIENTS == *" $c "* ]]; then
		reset_state
		read -r g r < <(iperf_run "$c" "$addr")
		record e2e "bulk.gbps/$c/$v" "${g:-}"
		record e2e "bulk.retrans/$c/$v" "${r:-}"
	fi
	if [[ $DOWN_CLIENTS == *" $c "* ]]; then
		reset_state
		read -r g r < <(iperf_run "$c" "$addr" -R)
		record e2e "down.gbps/$c/$v" "${g:-}"
		record e2e "down.retrans/$c/$v" "${r:-}"
	fi
}

# ---------------------------------------------------------------- sections

packet_section() {
	note "per packet: BPF_PROG_TEST_RUN"
	timeout 300 "$EXAMPLES/packet_bench" --tsv "${PACKET_ARGS[@]}" >>"$RAW"
}

ct_section() {
	note "conntrack: 1,000,000 entries"
	timeout 300 "$EXAMPLES/ct_bench" --tsv "${CT_ARGS[@]}" >>"$RAW"
}

# Kubernetes mode: EndpointSlice update to the maps, and memory with a
# large cluster (agent/examples/cluster_bench), in a namespace of its own.
cluster_section() {
	local quick=()
	((QUICK)) && quick=(--quick)
	note "kubernetes mode: an API server with 10,000 Services"
	timeout 300 "$EXAMPLES/cluster_bench" --hairpin "$ROOT/target/release/hairpin" \
		--tsv "${quick[@]}" >"$TMP/cluster.tsv" 2>"$TMP/cluster.txt" ||
		die "cluster_bench failed: $(cat "$TMP/cluster.txt")"
}

e2e_section() {
	local rep i v c addr port
	mkdir -p "${CLIENT_CG[@]}"
	gen_config 1 1 "${SOCK_CGS[n1]}" >"$RUN/bench-e2e-n1.yaml"
	gen_config 1 1 "${SOCK_CGS[n2]}" >"$RUN/bench-e2e-n2.yaml"
	for ((rep = 0; rep < REPS; rep++)); do
		for ((i = 0; i < ${#VARIANTS[@]}; i++)); do
			# Rotate the order each round: no variant always runs first.
			v=${VARIANTS[(i + rep) % ${#VARIANTS[@]}]}
			note "end to end: round $((rep + 1))/$REPS, $v ($(since "$T0") s)"
			variant_up "$v"
			read -r addr port < <(target "$v")
			for c in "${CLIENTS[@]}"; do
				get_ok "$c" "http://$addr:$port/" || die "$v: $c does not reach b1 at $addr:$port"
			done
			for c in "${CLIENTS[@]}"; do
				e2e_client "$v" "$c"
			done
			variant_down "$v"
		done
	done
}

# New connections per second from c1 through 203.0.113.10:8080.
scale_rate() {
	local key=$1 r rps rest
	for ((r = 0; r < SCALE_REPS; r++)); do
		reset_state
		read -r rps rest < <(wrk_run c1 "http://$FRONTEND:8080/" -H 'Connection: close')
		record scale "$key" "$rps"
	done
}

scale_section() {
	local n cfg t reloads
	for n in $SCALE; do
		note "scale: $n frontends ($(since "$T0") s)"
		cfg=$RUN/scale-$n.yaml
		gen_config "$n" 0 >"$cfg"
		t=$(now)
		agent_start n1 "$cfg"
		if agent_wait n1 'ready:' 1 "$APPLY_S"; then
			record scale "start_s/$n/hairpin" "$(since "$t")"
			record scale "hwm_mib/$n/hairpin" "$(agent_hwm_mib n1)"
			# A reload of the unchanged file: the diff against the maps.
			reloads=$(grep -cE 'reloaded|reload \(SIGHUP\)' "$RUN/agent-n1.log" || true)
			t=$(now)
			kill -HUP "${AGENT_PID[n1]}"
			agent_wait n1 'reloaded|reload \(SIGHUP\)' $((reloads + 1)) 120 || die "no reload: $(tail -2 "$RUN/agent-n1.log")"
			record scale "reload_s/$n/hairpin" "$(since "$t")"
			record scale "hwm_mib/$n/hairpin_after_reload" "$(agent_hwm_mib n1)"
		else
			# Refused, or too slow for this run: say which, then measure the
			# datapath with the frontends written into the running agent's
			# pinned maps.
			local why="not ready within $APPLY_S s"
			if alive "${AGENT_PID[n1]}"; then
				record scale "start_over_s/$n/hairpin" "$APPLY_S"
			else
				why=$(tail -n1 "$RUN/agent-n1.log" | sed 's/^hairpin: //' | tr '\t"' '  ' | cut -c1-200 || true)
			fi
			printf 'scale_note\trefused/%s\t%s\n' "$n" "$why" >>"$RAW"
			record scale "refused_after_s/$n/hairpin" "$(since "$t")"
			agent_stop n1
			"$EXAMPLES/fill_frontends" --pin-dir "/sys/fs/bpf/$P-n1" --create "$n" >/dev/null
			gen_config 1 0 >"$RUN/scale-1-only.yaml"
			agent_start n1 "$RUN/scale-1-only.yaml"
			agent_wait n1 'ready:' 1 30 || die "agent on n1 not ready: $(tail -3 "$RUN/agent-n1.log")"
			t=$(now)
			timeout 120 "$EXAMPLES/fill_frontends" --pin-dir "/sys/fs/bpf/$P-n1" --add $((n - 1)) >/dev/null
			record scale "fill_s/$n/hairpin" "$(since "$t")"
		fi
		get_ok c1 "http://$FRONTEND:8080/" || die "hairpin with $n frontends: c1 does not reach b1"
		scale_rate "cps/$n/hairpin"
		agent_stop n1
		get_fails c1 "http://$FRONTEND:8080/" || die "hairpin still translates after it was stopped"

		t=$(now)
		iptables_rules "$n" | nsx n1 iptables-restore --noflush
		record scale "restore_s/$n/iptables" "$(since "$t")"
		get_ok c1 "http://$FRONTEND:8080/" || die "iptables with $n rules: c1 does not reach b1"
		scale_rate "cps/$n/iptables"
		iptables_down
	done
}

# ---------------------------------------------------------------- report

# report <raw> <json out>: the table on stdout, everything in the JSON.
report() {
	META=$META awk -F'\t' -v json="$2" '
	BEGIN { meta = ENVIRON["META"] }
	function median(k,   n, i, j, t, a) {
		n = cnt[k]
		for (i = 1; i <= n; i++) a[i] = val[k, i]
		for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j > 0 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
		lo[k] = a[1]; hi[k] = a[n]
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	function has(k) { return (k in cnt) }
	function fmt(x) {
		if (x == "") return "-"
		if (x == int(x) && (x < 10 || x >= 100)) return sprintf("%d", x)
		if (x >= 100) return sprintf("%.0f", x)
		if (x >= 10) return sprintf("%.1f", x)
		return sprintf("%.2f", x)
	}
	function cell(k) {
		if (!has(k)) return "-"
		if (cnt[k] == 1) return fmt(med[k])
		return fmt(med[k]) " [" fmt(lo[k]) "-" fmt(hi[k]) "]"
	}
	function ratio(k, b) {
		if (!has(k) || !has(b) || med[b] == 0) return "-"
		return sprintf("%.2fx", med[k] / med[b])
	}
	$1 == "packet_info" || $1 == "scale_note" { info[$1 "/" $2] = $3; next }
	{
		k = $1 "/" $2
		if (!(k in cnt)) order[++nk] = k
		val[k, ++cnt[k]] = $3
	}
	END {
		for (i = 1; i <= nk; i++) med[order[i]] = median(order[i])

		print meta_line(meta)
		print "Figures: median [min-max] of the runs; ratios are of medians.\n"

		printf "1. Per packet: BPF_PROG_TEST_RUN, %s runs x %s repeats (ns per packet)\n", info["packet_info/runs"], info["packet_info/repeat"]
		printf "   %-52s %-22s %s\n", "case", "ns/packet", "x empty program"
		npc = split("empty non_ip unrelated_1 unrelated backend_own backend_direct first first_scale first_monitored established reply", pc, " ")
		pl["empty"] = "empty TC program (r0 = -1; exit): the floor"
		pl["non_ip"] = "hairpin, non-IPv4 frame (ARP)"
		pl["unrelated_1"] = "hairpin, unrelated packet (uplink egress)"
		pl["unrelated"] = "hairpin, unrelated packet (pod veth)"
		pl["backend_own"] = "hairpin, backend pod: a connection of its own"
		pl["backend_direct"] = "hairpin, backend pod: a direct client on its port"
		pl["first"] = "hairpin, first packet of a flow"
		pl["first_scale"] = "  the same, " info["packet_info/frontends"] " frontends"
		pl["first_monitored"] = "  the same, a monitor reading its events"
		pl["established"] = "hairpin, established flow"
		pl["reply"] = "hairpin, reply"
		for (i = 1; i <= npc; i++) {
			k = "packet/" pc[i]
			printf "   %-52s %-22s %s\n", pl[pc[i]], cell(k), ratio(k, "packet/empty")
		}
		printf "   one run per call over %s new flows (medians of 5 chunks):\n", info["packet_info/distinct"]
		printf "   %-52s %-22s %s\n", "empty TC program", cell("packet/empty_single"), ratio("packet/empty_single", "packet/empty_single")
		printf "   %-52s %-22s %s\n", "hairpin, first packet, distinct flows", cell("packet/first_distinct"), ratio("packet/first_distinct", "packet/empty_single")

		print "\n2. End to end in the lab: " E2E_HEAD(meta)
		printf "   %-34s %-24s %-24s %-8s %-24s %s\n", "", "direct (the limit)", "hairpin", "x direct", "iptables DNAT", "x direct"
		nm = split("ka.rps ka.p50_us ka.p99_us close.cps close.syn_retrans close.b1_paws_tw bulk.gbps bulk.retrans down.gbps down.retrans", ms, " ")
		ml["ka.rps"] = "keep-alive requests/s"
		ml["ka.p50_us"] = "  latency p50 (us)"
		ml["ka.p99_us"] = "  latency p99 (us)"
		ml["close.cps"] = "new connection per request, conn/s"
		ml["close.syn_retrans"] = "  SYN retransmits (client)"
		ml["close.b1_paws_tw"] = "  SYNs refused by b1 TIME-WAIT"
		ml["bulk.gbps"] = "bulk TCP, Gbit/s (iperf3)"
		ml["bulk.retrans"] = "  retransmits (iperf3)"
		ml["down.gbps"] = "bulk download, Gbit/s (iperf3 -R)"
		ml["down.retrans"] = "  retransmits by b1"
		nc = split("c1 c1s n1 n1s c2 c2s", cs, " ")
		cl["c1"] = "pod c1, same node as b1, TC path"; cl["c1s"] = "pod c1, socket path (chosen for it)"
		cl["n1"] = "host n1, TC path"; cl["n1s"] = "host n1, socket path"
		cl["c2"] = "pod c2, other node, TC path"; cl["c2s"] = "pod c2, other node, socket path (chosen for it)"
		for (j = 1; j <= nc; j++) {
			if (!has("e2e/ka.rps/" cs[j] "/direct")) continue
			printf "   %s\n", cl[cs[j]]
			for (i = 1; i <= nm; i++) {
				b = "e2e/" ms[i] "/" cs[j] "/direct"
				if (!has(b)) continue
				h = "e2e/" ms[i] "/" cs[j] "/hairpin"; t = "e2e/" ms[i] "/" cs[j] "/iptables"
				printf "   %-34s %-24s %-24s %-8s %-24s %s\n", ml[ms[i]], cell(b), cell(h), ratio(h, b), cell(t), ratio(t, b)
			}
		}
		err = 0
		for (k in cnt) if (k ~ /errors/) for (i = 1; i <= cnt[k]; i++) err += val[k, i]
		printf "   wrk socket errors and non-2xx answers, all runs: %d\n", err
		miss = ""
		for (k in cnt) if (k ~ /^e2e\// && cnt[k] < mget(meta, "reps") + 0) miss = miss " " k " (" cnt[k] ")"
		if (miss != "") print "   series with missing runs:" miss

		print "\n3. Scale: pod c1 to 203.0.113.10:8080, the last of N frontends (iptables: N DNAT rules)"
		printf "   %-8s %-10s %-10s %-10s %-22s %-8s| %-10s %-22s %s\n", "N", "start s", "reload s", "VmHWM MiB", "hairpin conn/s", "x N=1", "restore s", "iptables conn/s", "x N=1"
		nn = split(SCALE_LIST(meta), ns, " ")
		for (i = 1; i <= nn; i++) {
			n = ns[i]
			st = has("scale/start_s/" n "/hairpin") ? fmt(med["scale/start_s/" n "/hairpin"]) : \
				has("scale/start_over_s/" n "/hairpin") ? "> " fmt(med["scale/start_over_s/" n "/hairpin"]) : "refused"
			rl = has("scale/reload_s/" n "/hairpin") ? fmt(med["scale/reload_s/" n "/hairpin"]) : "-"
			hw = has("scale/hwm_mib/" n "/hairpin_after_reload") ? fmt(med["scale/hwm_mib/" n "/hairpin_after_reload"]) : "-"
			printf "   %-8s %-10s %-10s %-10s %-22s %-8s| %-10s %-22s %s\n", n, st, rl, hw, \
				cell("scale/cps/" n "/hairpin"), ratio("scale/cps/" n "/hairpin", "scale/cps/1/hairpin"), \
				cell("scale/restore_s/" n "/iptables"), cell("scale/cps/" n "/iptables"), ratio("scale/cps/" n "/iptables", "scale/cps/1/iptables")
			if (("scale_note/refused/" n) in info)
				printf "   %-8s hairpin run did not apply the file (%.2f s): %s\n   %-8s the rate above: agent on 1 frontend, %d more written into its pinned maps (%.2f s)\n", \
					"", med["scale/refused_after_s/" n "/hairpin"], info["scale_note/refused/" n], "", n - 1, med["scale/fill_s/" n "/hairpin"]
		}

		print "\n4. Conntrack: CT_V4 (hash) filled with established flows"
		printf "   %-50s %s\n", "slots (max_entries) / entries", fmt(med["ct/ct_slots"]) " / " fmt(med["ct/ct_entries"])
		printf "   %-50s %s MiB (%s bytes per slot; all maps %s MiB)\n", "kernel memory (fdinfo memlock)", fmt(med["ct/ct_memlock_mib"]), fmt(med["ct/ct_bytes_per_slot"]), fmt(med["ct/maps_memlock_mib"])
		printf "   %-50s %s s (%s ns per entry)\n", "full GC sweep, nothing expired", fmt(med["ct/sweep_live_s"]), fmt(med["ct/sweep_live_ns_per_entry"])
		printf "   %-50s %s s (%s removed)\n", "full GC sweep, expired flows removed", fmt(med["ct/sweep_expired_s"]), fmt(med["ct/sweep_removed"])
		printf "   %-50s %s s\n", "one agent tick (65,536 entries)", fmt(med["ct/tick_s"])
		printf "   %-50s %s ticks, %s s (%s removed, %s left)\n", "ticks to reach " fmt(med["ct/ticks_expired_behind"]) " expired behind 65,536 live", \
			fmt(med["ct/ticks"]), fmt(med["ct/ticks_s"]), fmt(med["ct/ticks_removed"]), fmt(med["ct/ticks_left"])

		# The JSON: settings, and every series with its samples.
		printf "{\n%s,\n  \"results\": {\n", meta > json
		for (i = 1; i <= nk; i++) {
			k = order[i]
			printf "    \"%s\": {\"median\": %s, \"min\": %s, \"max\": %s, \"n\": %d, \"samples\": [", k, med[k], lo[k], hi[k], cnt[k] > json
			for (j = 1; j <= cnt[k]; j++) printf "%s%s", (j > 1 ? ", " : ""), val[k, j] > json
			printf "]}%s\n", (i < nk ? "," : "") > json
		}
		printf "  },\n  \"notes\": {" > json
		sep = ""
		for (k in info) { v = info[k]; gsub(/["\\]/, "", v); printf "%s\n    \"%s\": \"%s\"", sep, k, v > json; sep = "," }
		printf "\n  }\n}\n" > json
	}
	# meta is JSON lines "  \"key\": value"; the helpers below read it.
	function mget(m, key,   re, s) {
		re = "\"" key "\": \"?[^\",\n]*"
		if (match(m, re)) { s = substr(m, RSTART, RLENGTH); sub(/^"[^"]*": "?/, "", s); return s }
		return ""
	}
	function meta_line(m) {
		return "hairpin benchmarks, " mget(m, "date") ": " mget(m, "cores") " cores (" mget(m, "cpu") "), kernel " mget(m, "kernel") ", commit " mget(m, "commit")
	}
	function E2E_HEAD(m) {
		return mget(m, "reps") " rounds, variants interleaved; wrk -t1 -c" mget(m, "wrk_connections") " " mget(m, "wrk_seconds") " s, iperf3 " mget(m, "iperf_seconds") " s"
	}
	function SCALE_LIST(m) { return mget(m, "scale") }
	' "$1"
}

# ---------------------------------------------------------------- main

TMP=$(mktemp -d)
RAW=$TMP/raw.tsv
: >"$RAW"

note "building (cargo build --release, the examples included)"
timeout 900 cargo build --release --quiet -p hairpin --bin hairpin \
	--example packet_bench --example ct_bench --example fill_frontends \
	--example cluster_bench ||
	die "build failed"

# The run proper is bounded: past the deadline, abort (and clean up).
T0=$(now)
(
	trap 'kill "$s" 2>/dev/null; exit 0' TERM
	sleep "$DEADLINE" &
	s=$!
	wait "$s" && note "deadline of $DEADLINE s reached" && kill -TERM $$
) &
WATCHDOG=$!

stamp=$(date -u +%Y-%m-%dT%H%MZ)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -z $(git status --porcelain 2>/dev/null) ]] || commit+=+dirty
META=$(
	cat <<-EOF
		  "date": "$(date -u '+%Y-%m-%d %H:%M UTC')",
		  "cores": $(nproc),
		  "cpu": "$(lscpu | awk -F: '/^Model name/ { gsub(/^ +/, "", $2); print $2; exit }')",
		  "kernel": "$(uname -r)",
		  "commit": "$commit",
		  "reps": $REPS,
		  "wrk_seconds": $WRK_S,
		  "wrk_connections": $WRK_CONNS,
		  "iperf_seconds": $IPERF_S,
		  "scale": "$SCALE",
		  "scale_reps": $SCALE_REPS
	EOF
)

packet_section
ct_section
cluster_section

note "lab: LAB_PREFIX=$P scripts/lab.sh up"
lab_started=1
scripts/lab.sh up >/dev/null
# b1's iperf3 server, bounded like the run.
ip netns exec "$P-n1-b1" timeout "$DEADLINE" iperf3 -s -p 5201 >"$RUN/iperf3-server.log" 2>&1 &
IPERF_PID=$!

e2e_section
scale_section

if ((QUICK)); then
	OUT=$TMP/results # a smoke run keeps nothing
else
	OUT=$ROOT/bench/results
fi
mkdir -p "$OUT"
base=$OUT/$stamp-$commit
report "$RAW" "$base.json" | tee "$base.txt"
{
	echo
	echo "Kubernetes mode (agent/examples/cluster_bench)"
	cat "$TMP/cluster.txt"
} | tee -a "$base.txt"
if ((QUICK)); then
	note "total $(since "$T0") s after the build (smoke run: results not kept)"
else
	note "total $(since "$T0") s after the build; results: $base.{txt,json}"
fi
