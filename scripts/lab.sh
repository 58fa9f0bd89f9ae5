#!/usr/bin/env bash
# Network-namespace lab that reproduces the NAT-hairpin problem hairpin fixes:
# a home router port-forwards 203.0.113.10:8080/tcp and :5353/udp to a pod of
# a two-node "cluster" behind it, but cannot hairpin (NAT loopback), so
# in-cluster clients that use the public address time out.
#
#   ext (203.0.113.100) --- wan0 [rtr] lan0 (bridge, 192.0.2.1/24)
#                                       |- p1 --- eth0 [n1] 192.0.2.11  pods 198.51.100.0/26
#                                       |                  |- vethb1 --- b1 198.51.100.2  (backend)
#                                       |                  '- vethc1 --- c1 198.51.100.3  (client)
#                                       '- p2 --- eth0 [n2] 192.0.2.12  pods 198.51.100.64/26
#                                                          |- vethc2 --- c2 198.51.100.66 (client)
#                                                          '- vethb2 --- b2 198.51.100.67 (backend)
#
# Usage: scripts/lab.sh up|down|probe|status|add-pod NODE POD ADDR|del-pod NODE POD
#   LAB_PREFIX        namespace name prefix (default hp): namespaces are
#                     $LAB_PREFIX-rtr, -ext, -n1, -n2, -n1-b1, -n1-c1, -n2-c2, -n2-b2
#   LAB_RUN           base of the runtime dir (default /run/hairpin-lab);
#                     configs, pid files and logs live in $LAB_RUN/$LAB_PREFIX
#   LAB_PROBE_FORMAT  "tsv": probe prints "<client>\t<frontend>\t<ok|FAIL>" lines
#                     on stdout (and the human-readable matrix on stderr)
#
# Everything lives in namespaces this script creates; the root namespace is
# never touched (veth pairs are created directly between lab namespaces).
set -Eeuo pipefail

PROG=${0##*/}
P=${LAB_PREFIX:-hp}
RUN=${LAB_RUN:-/run/hairpin-lab}/$P

WAN_IP=203.0.113.10
EXT_IP=203.0.113.100
LAN_GW=192.0.2.1
# Frontends: the router's port forwards, both to b1.
TCP_URL=http://$WAN_IP:8080/
UDP_ADDR=$WAN_IP:5353

NODES=(n1 n2)
declare -A NODE_IP=([n1]=192.0.2.11 [n2]=192.0.2.12)
declare -A NODE_CIDR=([n1]=198.51.100.0/26 [n2]=198.51.100.64/26)
# Calico-style: the node side of every pod veth carries this /32.
declare -A NODE_PODGW=([n1]=198.51.100.1 [n2]=198.51.100.65)
# n1 strict (RHEL default), n2 loose.
declare -A NODE_RPF=([n1]=1 [n2]=2)
declare -A NODE_PEER=([n1]=n2 [n2]=n1)
# "<node> <pod> <address>"
PODS=(
	"n1 b1 198.51.100.2"
	"n1 c1 198.51.100.3"
	"n2 c2 198.51.100.66"
	"n2 b2 198.51.100.67"
)
BACKENDS=(n1-b1 n2-b2)
NAMESPACES=(rtr ext n1 n2 n1-b1 n1-c1 n2-c2 n2-b2)

# Probe clients (id, namespace, label) and frontends (id, label).
PROBE_CLIENTS=(ext c1 n1 c2 n2)
declare -A CLIENT_NS=([ext]=ext [c1]=n1-c1 [n1]=n1 [c2]=n2-c2 [n2]=n2)
declare -A CLIENT_LABEL=([ext]=external [c1]="pod n1" [n1]="host n1" [c2]="pod n2" [n2]="host n2")
PROBE_FRONTENDS=(tcp udp)
declare -A FRONTEND_LABEL=([tcp]="$WAN_IP:8080/tcp" [udp]="$WAN_IP:5353/udp")

die() {
	echo "$PROG: $*" >&2
	exit 1
}

# Only [A-Za-z0-9_]: a prefix can never be a prefix of another lab's
# "<prefix>-" namespaces, and names need no quoting anywhere.
[[ $P =~ ^[A-Za-z0-9_]+$ ]] || die "LAB_PREFIX must match [A-Za-z0-9_]+, got '$P'"
# The run dir ends up unquoted in nginx configs and in a socat address.
[[ $RUN =~ ^/[A-Za-z0-9_./-]+$ ]] || die "LAB_RUN must be an absolute path of [A-Za-z0-9_./-], got '$RUN'"

# Remember the failing command and report it on exit: the ERR trap itself may
# run with stderr redirected into a service log.
failed=
err_trap() {
	local i
	failed="line $2: \`$BASH_COMMAND\` failed (exit $1)"
	for ((i = 1; i < ${#FUNCNAME[@]} - 1; i++)); do
		failed+=", in ${FUNCNAME[i]}() called from line ${BASH_LINENO[i]}"
	done
}
trap 'err_trap $? $LINENO' ERR
building=0   # set while `up` builds: on failure, tear down again
probe_tmp=   # probe's result dir, removed on exit
on_exit() {
	local rc=$?
	if ((rc != 0)) && [[ -n $failed ]]; then
		echo "$PROG: $failed" >&2
	fi
	if ((building)); then
		echo "$PROG: up failed (exit $rc), tearing down lab '$P'" >&2
		building=0
		lab_down || true
	fi
	[[ -z $probe_tmp ]] || rm -rf -- "$probe_tmp"
	exit "$rc"
}
trap on_exit EXIT
# Make INT/TERM run the EXIT trap.
trap 'exit 130' INT
trap 'exit 143' TERM

ns() { echo "$P-$1"; }
# nsx <name> <cmd...>: run a command inside lab namespace <name>.
nsx() {
	local n=$1
	shift
	ip netns exec "$P-$n" "$@"
}
# ipn <name> <ip args...>
ipn() {
	local n=$1
	shift
	ip -n "$P-$n" "$@"
}
sysctl_in() {
	local n=$1
	shift
	nsx "$n" sysctl -qw "$@" >/dev/null
}

# Names of existing namespaces of this lab, one per line.
lab_namespaces() {
	ip netns list | awk '{print $1}' | grep -E "^$P-" || true
}

# Wait (bounded) until `cmd...` succeeds; returns 1 on timeout.
wait_for() {
	local tries=$1
	shift
	while ((tries-- > 0)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

# ---------------------------------------------------------------- down

# PIDs of processes inside the given namespaces, except this shell.
ns_pids() {
	local n
	for n in "$@"; do
		ip netns pids "$n" 2>/dev/null || true
	done | grep -vx "$$" || true
}

no_pids_left() { [[ -z $(ns_pids "$@") ]]; }

# Killed daemons are orphans; they leave `ip netns pids` when they die but
# stay zombies until their reaper (init or a subreaper) collects them.
all_reaped() {
	local pid
	for pid in "$@"; do
		[[ ! -e /proc/$pid ]] || return 1
	done
}

lab_down() {
	local -a nss pids killed
	mapfile -t nss < <(lab_namespaces)
	if ((${#nss[@]})); then
		# A process keeps its namespace (and interfaces) alive after
		# `ip netns del`, so kill everything in there first.
		mapfile -t pids < <(ns_pids "${nss[@]}")
		if ((${#pids[@]})); then
			killed=("${pids[@]}")
			kill -TERM "${pids[@]}" 2>/dev/null || true
			if ! wait_for 30 no_pids_left "${nss[@]}"; then
				mapfile -t pids < <(ns_pids "${nss[@]}")
				((${#pids[@]} == 0)) || kill -KILL "${pids[@]}" 2>/dev/null || true
				killed+=("${pids[@]}")
				wait_for 20 no_pids_left "${nss[@]}" ||
					die "processes survive SIGKILL in lab namespaces: $(ns_pids "${nss[@]}" | tr '\n' ' ')"
			fi
			wait_for 30 all_reaped "${killed[@]}" ||
				echo "$PROG: note: killed lab processes not reaped yet by their parent (zombies)" >&2
		fi
		local n
		for n in "${nss[@]}"; do
			ip netns del "$n" 2>/dev/null || [[ ! -e /run/netns/$n ]] ||
				die "cannot delete namespace $n"
		done
	fi
	rm -rf -- "$RUN"
}

# ---------------------------------------------------------------- up

build_router() {
	ipn rtr link add lan0 type bridge
	ipn rtr addr add "$LAN_GW/24" dev lan0
	ipn rtr link set lan0 up
	ipn rtr link add wan0 type veth peer name eth0 netns "$(ns ext)"
	ipn rtr addr add "$WAN_IP/24" dev wan0
	ipn rtr link set wan0 up
	sysctl_in rtr net.ipv4.ip_forward=1
	# With br_netfilter (built into this kernel, and per-netns defaulting
	# to 1 since 5.3) bridged node<->node frames would also traverse the
	# router's IP hooks and conntrack; a home router's switch does not.
	local k
	for k in bridge-nf-call-iptables bridge-nf-call-ip6tables; do
		if nsx rtr test -e "/proc/sys/net/bridge/$k"; then
			sysctl_in rtr "net.bridge.$k=0"
		fi
	done

	ipn ext addr add "$EXT_IP/24" dev eth0
	ipn ext link set eth0 up
	ipn ext route add default via "$WAN_IP"

	# Port forwards for WAN clients only, and no NAT loopback: LAN packets
	# to the forwarded ports are dropped (clients time out, as with
	# providers' routers that cannot hairpin).
	nsx rtr nft -f - <<-EOF
		table ip router {
			chain prerouting {
				type nat hook prerouting priority dstnat; policy accept;
				iifname "wan0" ip daddr $WAN_IP tcp dport 8080 dnat to 198.51.100.2:80
				iifname "wan0" ip daddr $WAN_IP udp dport 5353 dnat to 198.51.100.2:53
			}
			chain input {
				type filter hook input priority filter; policy accept;
				iifname "lan0" ip daddr $WAN_IP tcp dport 8080 drop
				iifname "lan0" ip daddr $WAN_IP udp dport 5353 drop
			}
		}
	EOF
}

build_node() {
	local node=$1 port=p${1#n} peer=${NODE_PEER[$1]} rpf=${NODE_RPF[$1]}
	sysctl_in "$node" net.ipv4.ip_forward=1 \
		"net.ipv4.conf.all.rp_filter=$rpf" "net.ipv4.conf.default.rp_filter=$rpf"
	ipn rtr link add "$port" type veth peer name eth0 netns "$(ns "$node")"
	ipn rtr link set "$port" master lan0 up
	sysctl_in "$node" "net.ipv4.conf.eth0.rp_filter=$rpf"
	ipn "$node" addr add "${NODE_IP[$node]}/24" dev eth0
	ipn "$node" link set eth0 up
	ipn "$node" route add default via "$LAN_GW"
	ipn "$node" route add "${NODE_CIDR[$peer]}" via "${NODE_IP[$peer]}"
	ipn rtr route add "${NODE_CIDR[$node]}" via "${NODE_IP[$node]}"

	# The cluster's own rules: CNI masquerade for pod egress, kube-proxy's
	# invalid-state drop, and Calico-style anti-spoofing on pod interfaces.
	nsx "$node" nft -f - <<-'EOF'
		table ip cni-nat {
			chain postrouting {
				type nat hook postrouting priority srcnat; policy accept;
				oifname "eth0" ip saddr 198.51.100.0/24 ip daddr != 198.51.100.0/24 masquerade
			}
		}
		table ip kube-proxy {
			chain forward {
				type filter hook forward priority filter; policy accept;
				ct state invalid drop
			}
		}
		table inet cni-raw {
			chain prerouting {
				type filter hook prerouting priority raw; policy accept;
				iifname "veth*" fib saddr . iif oif missing drop
			}
		}
	EOF
}

build_pod() {
	local node=$1 pod=$2 ip=$3 gw=${NODE_PODGW[$1]}
	local pns=$node-$pod
	ipn "$node" link add "veth$pod" type veth peer name eth0 netns "$(ns "$pns")"
	ipn "$node" addr add "$gw/32" dev "veth$pod"
	ipn "$node" link set "veth$pod" up
	ipn "$node" route add "$ip/32" dev "veth$pod"
	ipn "$pns" addr add "$ip/32" dev eth0
	ipn "$pns" link set eth0 up
	ipn "$pns" route add "$gw" dev eth0
	ipn "$pns" route add default via "$gw"
}

# start_nginx <namespace> <listen> <body>: daemonized, everything in $RUN.
start_nginx() {
	local n=$1 listen=$2 body=$3 dir=$RUN/$1
	mkdir -p "$dir/tmp"
	cat >"$dir/nginx.conf" <<-EOF
		worker_processes 1;
		pid $dir/nginx.pid;
		lock_file $dir/nginx.lock;
		error_log $dir/nginx-error.log warn;
		events { worker_connections 512; }
		http {
			access_log off;
			client_body_temp_path $dir/tmp/body;
			proxy_temp_path $dir/tmp/proxy;
			fastcgi_temp_path $dir/tmp/fastcgi;
			uwsgi_temp_path $dir/tmp/uwsgi;
			scgi_temp_path $dir/tmp/scgi;
			server {
				listen $listen;
				default_type text/plain;
				location / { return 200 "$body\n"; }
				# Large files for transfer tests: put them in $dir/files/.
				location /files/ { alias $dir/files/; }
			}
		}
	EOF
	# -e: the error log before the config is read (default: stderr).
	nsx "$n" nginx -p "$dir/" -c "$dir/nginx.conf" -e "$dir/nginx-error.log" \
		</dev/null >>"$dir/nginx.out" 2>&1
}

# start_udp_echo <namespace> <name>: answers each datagram on :53 with
# "<name> <datagram text>", from port 53 to the sender.
start_udp_echo() {
	local n=$1 name=$2 dir=$RUN/$1
	mkdir -p "$dir"
	# One read() of the pipe gets the whole datagram; waiting for EOF
	# instead (cat) hangs: socat does not always close the child's stdin.
	cat >"$dir/udp-echo.sh" <<-EOF
		#!/bin/sh
		data=\$(dd bs=65536 count=1 status=none)
		printf '%s %s\n' $name "\$data"
	EOF
	chmod +x "$dir/udp-echo.sh"
	# RECVFROM+fork: one child per datagram, replying through the bound
	# socket (source port 53). setsid: survive the caller's process group.
	# A plain command (not a function) so the background child execs
	# directly and no subshell of this script lingers as socat's parent.
	ip netns exec "$(ns "$n")" setsid socat UDP4-RECVFROM:53,fork "EXEC:$dir/udp-echo.sh" \
		</dev/null >>"$dir/socat.log" 2>&1 &
}

listening() {
	local n=$1 proto=$2 port=$3
	[[ -n $(nsx "$n" ss -Hln"$proto" "sport = :$port") ]]
}

services_up() {
	local b
	listening rtr t 80 || return 1
	for b in "${BACKENDS[@]}"; do
		listening "$b" t 80 || return 1
		listening "$b" u 53 || return 1
	done
}

lab_up() {
	if [[ -n $(lab_namespaces) || -e $RUN ]]; then
		echo "$PROG: lab '$P' exists, taking it down first" >&2
		lab_down
	fi
	building=1
	mkdir -p "$RUN"

	local n spec node pod ip
	for n in "${NAMESPACES[@]}"; do
		ip netns add "$(ns "$n")"
		ipn "$n" link set lo up
	done
	build_router
	for node in "${NODES[@]}"; do
		build_node "$node"
	done
	for spec in "${PODS[@]}"; do
		read -r node pod ip <<<"$spec"
		build_pod "$node" "$pod" "$ip"
	done

	start_nginx rtr "$WAN_IP:80" router
	for n in "${BACKENDS[@]}"; do
		start_nginx "$n" 80 "${n#*-}"
		start_udp_echo "$n" "${n#*-}"
	done
	if ! wait_for 50 services_up; then
		tail -n 20 "$RUN"/*/*.log "$RUN"/*/nginx.out >&2 2>/dev/null || true
		die "services did not start listening within 5 s"
	fi
	building=0
	echo "lab '$P' is up (namespaces $P-*, runtime dir $RUN)"
}

# add_pod <node> <pod> <address>: a pod that comes after the lab, as pods
# come after an agent has started; del_pod removes it.
add_pod() {
	local node=$1 pod=$2 ip=$3
	[[ $node =~ ^n[12]$ && $pod =~ ^[a-z0-9]+$ && -n $ip ]] ||
		die "usage: $PROG add-pod n1|n2 <pod> <address in the node's pod range>"
	lab_is_up || die "lab '$P' is not up"
	ip netns add "$(ns "$node-$pod")"
	ipn "$node-$pod" link set lo up
	build_pod "$node" "$pod" "$ip"
}

del_pod() {
	local n=$1-$2
	local pid
	for pid in $(ns_pids "$(ns "$n")"); do
		kill "$pid" 2>/dev/null || true
	done
	ip netns del "$(ns "$n")"
}

# ---------------------------------------------------------------- probe

lab_is_up() {
	local n
	for n in "${NAMESPACES[@]}"; do
		[[ -e /run/netns/$(ns "$n") ]] || return 1
	done
	[[ -d $RUN ]]
}

probe_tcp() {
	local out
	out=$(timeout 5 ip netns exec "$(ns "$1")" curl -s --max-time 2 "$TCP_URL" 2>/dev/null) || true
	if [[ $out == b1 ]]; then echo ok; else echo FAIL; fi
}

probe_udp() {
	local out
	# -t2: after sending (stdin EOF) wait up to 2 s for the reply.
	out=$(echo ping | timeout 5 ip netns exec "$(ns "$1")" socat -t2 -T2 - "UDP4:$UDP_ADDR" 2>/dev/null) || true
	if [[ $out == *b1* ]]; then echo ok; else echo FAIL; fi
}

# print_matrix <dir holding one <client>.<frontend> result file per cell>
print_matrix() {
	local c f line
	line=$(printf '%-10s' client)
	for f in "${PROBE_FRONTENDS[@]}"; do line+=$(printf '  %-22s' "${FRONTEND_LABEL[$f]}"); done
	echo "${line%"${line##*[! ]}"}"
	for c in "${PROBE_CLIENTS[@]}"; do
		line=$(printf '%-10s' "${CLIENT_LABEL[$c]}")
		for f in "${PROBE_FRONTENDS[@]}"; do line+=$(printf '  %-22s' "$(<"$1/$c.$f")"); done
		echo "${line%"${line##*[! ]}"}"
	done
}

lab_probe() {
	lab_is_up || die "lab '$P' is not up (run: $PROG up)"
	local tmp c f
	tmp=$(mktemp -d "$RUN/probe.XXXXXX")
	probe_tmp=$tmp
	for c in "${PROBE_CLIENTS[@]}"; do
		probe_tcp "${CLIENT_NS[$c]}" >"$tmp/$c.tcp" &
		probe_udp "${CLIENT_NS[$c]}" >"$tmp/$c.udp" &
	done
	wait

	if [[ ${LAB_PROBE_FORMAT:-} == tsv ]]; then
		print_matrix "$tmp" >&2
		for c in "${PROBE_CLIENTS[@]}"; do
			for f in "${PROBE_FRONTENDS[@]}"; do
				printf '%s\t%s\t%s\n' "$c" "$f" "$(<"$tmp/$c.$f")"
			done
		done
	else
		print_matrix "$tmp"
	fi
}

# ---------------------------------------------------------------- status

lab_status() {
	local -a nss
	mapfile -t nss < <(lab_namespaces | sort)
	if ((${#nss[@]} == 0)); then
		echo "lab '$P': down"
		return 1
	fi
	local state=up n pids
	if ! { lab_is_up && services_up; }; then
		state=degraded
	fi
	echo "lab '$P': $state (runtime dir $RUN)"
	for n in "${nss[@]}"; do
		pids=$(ip netns pids "$n" 2>/dev/null | while read -r p; do
			printf '%s(%s) ' "$p" "$(cat "/proc/$p/comm" 2>/dev/null || echo '?')"
		done)
		printf '  %-20s %s\n' "$n" "${pids:--}"
	done
	[[ $state == up ]]
}

case ${1:-} in
up) lab_up ;;
down) lab_down ;;
probe) lab_probe ;;
status) lab_status || exit 1 ;;
add-pod) add_pod "${@:2}" ;;
del-pod) del_pod "${@:2}" ;;
*)
	echo "usage: $PROG up|down|probe|status|add-pod NODE POD ADDR|del-pod NODE POD   (env: LAB_PREFIX, LAB_RUN, LAB_PROBE_FORMAT)" >&2
	exit 2
	;;
esac
