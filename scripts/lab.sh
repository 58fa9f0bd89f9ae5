#!/usr/bin/env bash
# Network-namespace lab that reproduces the NAT-hairpin problem hairpin fixes:
# a home router port-forwards 203.0.113.10:8080/tcp and :5353/udp to a pod of
# a two-node "cluster" behind it, but cannot hairpin (NAT loopback), so
# in-cluster clients that use the public address time out.
#
# Dual stack: every link carries IPv4 and IPv6 (documentation prefixes), the
# router forwards [2001:db8:0:113::10]:8080/tcp and :5353/udp to b1 as well.
#
#   ext eth0 203.0.113.100/24, 2001:db8:0:113::100/64
#    |
#   wan0 203.0.113.10/24, 2001:db8:0:113::10/64
#   [rtr]
#   lan0 (bridge) 192.0.2.1/24, 2001:db8:0:2::1/64
#    |- p1 --- eth0 [n1] 192.0.2.11, 2001:db8:0:2::11
#    |              pods 198.51.100.0/26, 2001:db8:0:51::/64 (gateway .1, ::1)
#    |              |- vethb1 --- b1 198.51.100.2,  2001:db8:0:51::2  (backend)
#    |              '- vethc1 --- c1 198.51.100.3,  2001:db8:0:51::3  (client)
#    '- p2 --- eth0 [n2] 192.0.2.12, 2001:db8:0:2::12
#                   pods 198.51.100.64/26, 2001:db8:0:52::/64 (gateway .65, ::1)
#                   |- vethc2 --- c2 198.51.100.66, 2001:db8:0:52::66 (client)
#                   '- vethb2 --- b2 198.51.100.67, 2001:db8:0:52::67 (backend)
#
# Cluster pod ranges: 198.51.100.0/24 and 2001:db8:0:50::/60. A pod's IPv6
# address is its node's /64 with the digits of its IPv4 address' last octet
# as interface id (198.51.100.66 -> 2001:db8:0:52::66). The node side of
# every pod veth holds the gateway (.1/32 and ::1/128, Calico-style); pods
# hold a /32 and a /128 with routes via that gateway. DAD is off in the lab
# (nothing can collide), so no address is ever tentative.
#
# Usage: scripts/lab.sh up|down|probe|status|add-pod NODE POD ADDR [ADDR6]|del-pod NODE POD
#   LAB_PREFIX        namespace name prefix (default hp): namespaces are
#                     $LAB_PREFIX-rtr, -ext, -n1, -n2, -n1-b1, -n1-c1, -n2-c2, -n2-b2
#   LAB_RUN           base of the runtime dir (default /run/hairpin-lab);
#                     configs, pid files and logs live in $LAB_RUN/$LAB_PREFIX
#   LAB_PROBE_FORMAT  "tsv": probe prints "<client>\t<frontend>\t<ok|FAIL>" lines
#                     on stdout (and the human-readable matrix on stderr)
#   LAB_PROBE_WAIT    seconds a probe waits for its answer (default 2)
#   LAB_POD_LINK      add-pod's link: veth (default), netkit-l2 or netkit-l3
#                     (host side nk<pod>; needs LAB_IPROUTE2, an ip of 6.7+)
#   LAB_PROBE_FAMILY  which frontends probe asks: 4 (default: tcp, udp on
#                     203.0.113.10), 6 (tcp6, udp6 on [2001:db8:0:113::10])
#                     or all (tcp, udp, tcp6, udp6)
#   LAB_CNI           the nodes' CNI datapath: iptables (default: the node's
#                     stack routes pods, netfilter rules below) or ebpf (the
#                     stand-in of tests/cni, as Cilium's host routing and
#                     Calico's eBPF dataplane: TC programs after hairpin's
#                     deliver into pods with bpf_redirect_peer and send pods'
#                     off-node packets out themselves); up and add-pod
#   LAB_STANDIN_CNI   the stand-in's loader (default target/debug/standin-cni)
#
# Everything lives in namespaces this script creates; the root namespace is
# never touched (veth pairs are created directly between lab namespaces).
set -Eeuo pipefail

PROG=${0##*/}
P=${LAB_PREFIX:-hp}
RUN=${LAB_RUN:-/run/hairpin-lab}/$P

WAN_IP=203.0.113.10
# A second external address with the same forwards (a name may move to it).
WAN_IP2=203.0.113.11
EXT_IP=203.0.113.100
LAN_GW=192.0.2.1
WAN_IP6=2001:db8:0:113::10
EXT_IP6=2001:db8:0:113::100
LAN_GW6=2001:db8:0:2::1
# The backend of the router's port forwards.
B1_IP=198.51.100.2
B1_IP6=2001:db8:0:51::2
# The cluster's pod ranges (the CNI masquerades traffic leaving them).
POD_NET=198.51.100.0/24
POD_NET6=2001:db8:0:50::/60

CNI=${LAB_CNI:-iptables}
STANDIN_CNI=${LAB_STANDIN_CNI:-$(dirname "$0")/../target/debug/standin-cni}

NODES=(n1 n2)
declare -A NODE_IP=([n1]=192.0.2.11 [n2]=192.0.2.12)
declare -A NODE_IP6=([n1]=2001:db8:0:2::11 [n2]=2001:db8:0:2::12)
declare -A NODE_CIDR=([n1]=198.51.100.0/26 [n2]=198.51.100.64/26)
declare -A NODE_CIDR6=([n1]=2001:db8:0:51::/64 [n2]=2001:db8:0:52::/64)
# Calico-style: the node side of every pod veth carries this /32 and /128.
declare -A NODE_PODGW=([n1]=198.51.100.1 [n2]=198.51.100.65)
declare -A NODE_PODGW6=([n1]=2001:db8:0:51::1 [n2]=2001:db8:0:52::1)
# n1 strict (RHEL default), n2 loose.
declare -A NODE_RPF=([n1]=1 [n2]=2)
declare -A NODE_PEER=([n1]=n2 [n2]=n1)
# "<node> <pod> <address> <IPv6 address>"
PODS=(
	"n1 b1 198.51.100.2 2001:db8:0:51::2"
	"n1 c1 198.51.100.3 2001:db8:0:51::3"
	"n2 c2 198.51.100.66 2001:db8:0:52::66"
	"n2 b2 198.51.100.67 2001:db8:0:52::67"
)
BACKENDS=(n1-b1 n2-b2)
NAMESPACES=(rtr ext n1 n2 n1-b1 n1-c1 n2-c2 n2-b2)

# Probe clients (id, namespace, label) and frontends (id, label).
PROBE_CLIENTS=(ext c1 n1 c2 n2)
declare -A CLIENT_NS=([ext]=ext [c1]=n1-c1 [n1]=n1 [c2]=n2-c2 [n2]=n2)
declare -A CLIENT_LABEL=([ext]=external [c1]="pod n1" [n1]="host n1" [c2]="pod n2" [n2]="host n2")
# Frontends: the router's port forwards, all to b1; probe asks those of
# LAB_PROBE_FAMILY.
PROBE_FRONTENDS=(tcp udp)
declare -A FRONTEND_LABEL=(
	[tcp]="$WAN_IP:8080/tcp" [udp]="$WAN_IP:5353/udp"
	[tcp6]="[$WAN_IP6]:8080/tcp" [udp6]="[$WAN_IP6]:5353/udp"
)

die() {
	echo "$PROG: $*" >&2
	exit 1
}

[[ $CNI == iptables || $CNI == ebpf ]] || die "LAB_CNI must be iptables or ebpf, got '$CNI'"

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
	rm -rf -- "$RUN" "$(standin_pins)"
}

# ---------------------------------------------------------------- up

# new_ns <name>: a lab namespace with lo up and IPv6 DAD off, before any
# interface comes in: interfaces (veth peers included) take the namespace's
# "default" settings, and addresses are usable at once, never tentative.
new_ns() {
	ip netns add "$(ns "$1")"
	sysctl_in "$1" net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
	ipn "$1" link set lo up
}

# No tentative (DAD pending) or DAD-failed IPv6 address in the namespaces.
no_tentative() {
	local n
	for n in "$@"; do
		[[ -z $(ipn "$n" -6 addr show tentative) && -z $(ipn "$n" -6 addr show dadfailed) ]] || return 1
	done
}

build_router() {
	ipn rtr link add lan0 type bridge
	ipn rtr addr add "$LAN_GW/24" dev lan0
	ipn rtr addr add "$LAN_GW6/64" dev lan0 nodad
	ipn rtr link set lan0 up
	ipn rtr link add wan0 type veth peer name eth0 netns "$(ns ext)"
	ipn rtr addr add "$WAN_IP/24" dev wan0
	ipn rtr addr add "$WAN_IP2/24" dev wan0
	ipn rtr addr add "$WAN_IP6/64" dev wan0 nodad
	ipn rtr link set wan0 up
	sysctl_in rtr net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
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
	ipn ext addr add "$EXT_IP6/64" dev eth0 nodad
	ipn ext link set eth0 up
	ipn ext route add default via "$WAN_IP"
	ipn ext -6 route add default via "$WAN_IP6"

	# Port forwards for WAN clients only, and no NAT loopback: LAN packets
	# to the forwarded ports are dropped (clients time out, as with
	# providers' routers that cannot hairpin). The same for IPv6.
	nsx rtr nft -f - <<-EOF
		table ip router {
			chain prerouting {
				type nat hook prerouting priority dstnat; policy accept;
				iifname "wan0" ip daddr { $WAN_IP, $WAN_IP2 } tcp dport 8080 dnat to $B1_IP:80
				iifname "wan0" ip daddr { $WAN_IP, $WAN_IP2 } udp dport 5353 dnat to $B1_IP:53
			}
			chain input {
				type filter hook input priority filter; policy accept;
				iifname "lan0" ip daddr { $WAN_IP, $WAN_IP2 } tcp dport 8080 drop
				iifname "lan0" ip daddr { $WAN_IP, $WAN_IP2 } udp dport 5353 drop
			}
		}
		table ip6 router {
			chain prerouting {
				type nat hook prerouting priority dstnat; policy accept;
				iifname "wan0" ip6 daddr $WAN_IP6 tcp dport 8080 dnat to [$B1_IP6]:80
				iifname "wan0" ip6 daddr $WAN_IP6 udp dport 5353 dnat to [$B1_IP6]:53
			}
			chain input {
				type filter hook input priority filter; policy accept;
				iifname "lan0" ip6 daddr $WAN_IP6 tcp dport 8080 drop
				iifname "lan0" ip6 daddr $WAN_IP6 udp dport 5353 drop
			}
		}
	EOF
}

build_node() {
	local node=$1 port=p${1#n} peer=${NODE_PEER[$1]} rpf=${NODE_RPF[$1]}
	# IPv6 has no rp_filter: the anti-spoofing fib rule below covers it.
	sysctl_in "$node" net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
		"net.ipv4.conf.all.rp_filter=$rpf" "net.ipv4.conf.default.rp_filter=$rpf"
	ipn rtr link add "$port" type veth peer name eth0 netns "$(ns "$node")"
	ipn rtr link set "$port" master lan0 up
	sysctl_in "$node" "net.ipv4.conf.eth0.rp_filter=$rpf"
	ipn "$node" addr add "${NODE_IP[$node]}/24" dev eth0
	ipn "$node" addr add "${NODE_IP6[$node]}/64" dev eth0 nodad
	ipn "$node" link set eth0 up
	ipn "$node" route add default via "$LAN_GW"
	ipn "$node" -6 route add default via "$LAN_GW6"
	ipn "$node" route add "${NODE_CIDR[$peer]}" via "${NODE_IP[$peer]}"
	ipn "$node" -6 route add "${NODE_CIDR6[$peer]}" via "${NODE_IP6[$peer]}"
	ipn rtr route add "${NODE_CIDR[$node]}" via "${NODE_IP[$node]}"
	ipn rtr -6 route add "${NODE_CIDR6[$node]}" via "${NODE_IP6[$node]}"

	# The cluster's own rules: CNI masquerade for pod egress, kube-proxy's
	# invalid-state drop (per family, as kube-proxy's nftables mode), and
	# Calico-style anti-spoofing on pod interfaces (inet: both families).
	nsx "$node" nft -f - <<-EOF
		table ip cni-nat {
			chain postrouting {
				type nat hook postrouting priority srcnat; policy accept;
				oifname "eth0" ip saddr $POD_NET ip daddr != $POD_NET masquerade
			}
		}
		table ip6 cni-nat {
			chain postrouting {
				type nat hook postrouting priority srcnat; policy accept;
				oifname "eth0" ip6 saddr $POD_NET6 ip6 daddr != $POD_NET6 masquerade
			}
		}
		table ip kube-proxy {
			chain forward {
				type filter hook forward priority filter; policy accept;
				ct state invalid drop
			}
		}
		table ip6 kube-proxy {
			chain forward {
				type filter hook forward priority filter; policy accept;
				ct state invalid drop
			}
		}
		table inet cni-raw {
			chain prerouting {
				type filter hook prerouting priority raw; policy accept;
				iifname "veth*" fib saddr . iif oif missing drop
				iifname "nk*" fib saddr . iif oif missing drop
			}
		}
	EOF
}

# pod_ip6 <node> <IPv4 address>: the pod's IPv6 address, its node's /64
# with the digits of the IPv4 address' last octet as interface id.
pod_ip6() {
	local net=${NODE_CIDR6[$1]}
	echo "${net%::/64}::${2##*.}"
}

build_pod() {
	local node=$1 pod=$2 ip=$3 ip6=$4 gw=${NODE_PODGW[$1]} gw6=${NODE_PODGW6[$1]}
	local pns=$node-$pod dev
	case ${LAB_POD_LINK:-veth} in
	veth)
		dev=veth$pod
		ipn "$node" link add "$dev" type veth peer name eth0 netns "$(ns "$pns")"
		;;
	netkit-l2 | netkit-l3)
		# netkit needs iproute2 6.7 or newer: LAB_IPROUTE2 names its ip.
		dev=nk$pod
		"${LAB_IPROUTE2:-ip}" -n "$P-$node" link add "$dev" type netkit \
			mode "${LAB_POD_LINK#netkit-}" peer name eth0 netns "$(ns "$pns")" ||
			die "cannot create a netkit pair (kernel 6.7+, iproute2 6.7+ as LAB_IPROUTE2)"
		;;
	*) die "LAB_POD_LINK must be veth, netkit-l2 or netkit-l3, got '$LAB_POD_LINK'" ;;
	esac
	ipn "$node" addr add "$gw/32" dev "$dev"
	# The same /128 on every pod veth of the node, like the /32; no prefix
	# route (IPv6 adds one even for a /128), as IPv4 adds none for a /32.
	ipn "$node" addr add "$gw6/128" dev "$dev" nodad noprefixroute
	ipn "$node" link set "$dev" up
	ipn "$node" route add "$ip/32" dev "$dev"
	ipn "$node" -6 route add "$ip6/128" dev "$dev"
	ipn "$pns" addr add "$ip/32" dev eth0
	ipn "$pns" addr add "$ip6/128" dev eth0 nodad noprefixroute
	ipn "$pns" link set eth0 up
	ipn "$pns" route add "$gw" dev eth0
	ipn "$pns" route add default via "$gw"
	ipn "$pns" -6 route add "$gw6" dev eth0
	ipn "$pns" -6 route add default via "$gw6" dev eth0
	if [[ $CNI == ebpf ]]; then
		standin "$node" "$dev"
	fi
}

# standin <node> [<pod interface>...]: the stand-in eBPF CNI on the node's
# uplink and on those pod interfaces (filters of an earlier run replaced).
standin() {
	local node=$1
	shift
	[[ -x $STANDIN_CNI ]] || die "LAB_CNI=ebpf needs the stand-in's loader: cargo build -p hairpin-standin-cni (or LAB_STANDIN_CNI)"
	# nsenter, not ip netns exec: a netkit pod's link is pinned on bpffs.
	STANDIN_PIN_DIR=$(standin_pins)/$node nsenter --net="/run/netns/$(ns "$node")" \
		"$STANDIN_CNI" eth0 "$@"
}

# Where the stand-in pins the links of netkit pods.
standin_pins() { echo "/sys/fs/bpf/standin-$P"; }

# start_nginx <namespace> <listens> <body>: daemonized, everything in $RUN;
# <listens>: space-separated addresses of nginx "listen" directives.
start_nginx() {
	local n=$1 body=$3 dir=$RUN/$1 l listen= listens
	read -ra listens <<<"$2"
	for l in "${listens[@]}"; do listen+="listen $l; "; done
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
				$listen
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

# start_udp_echo <namespace> <name>: answers each datagram on :53 (IPv4 and
# IPv6) with "<name> <datagram text>", from port 53 to the sender. One
# process for both sockets, answering from the loop itself: socat's
# fork-per-datagram left datagrams unanswered when processes start slowly
# (an emulated VM of the kernel matrix).
start_udp_echo() {
	local n=$1 name=$2 dir=$RUN/$1
	mkdir -p "$dir"
	cat >"$dir/udp-echo.py" <<-'EOF'
		import selectors, socket, sys
		name = sys.argv[1].encode()
		sel = selectors.DefaultSelector()
		for family, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
		    s = socket.socket(family, socket.SOCK_DGRAM)
		    if family == socket.AF_INET6:
		        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
		    s.bind((addr, 53))
		    sel.register(s, selectors.EVENT_READ)
		while True:
		    for key, _ in sel.select():
		        data, peer = key.fileobj.recvfrom(65536)
		        key.fileobj.sendto(name + b" " + data.rstrip(b"\n") + b"\n", peer)
	EOF
	# setsid: survive the caller's process group. A plain command (not a
	# function) so the background child execs directly.
	ip netns exec "$(ns "$n")" setsid python3 "$dir/udp-echo.py" "$name" \
		</dev/null >>"$dir/udp-echo.log" 2>&1 &
}

# listening <namespace> <t|u> <port> [4|6]: a listening socket of that
# family (default: any).
listening() {
	local n=$1 proto=$2 port=$3
	[[ -n $(nsx "$n" ss -Hln"$proto"${4:+"$4"} "sport = :$port") ]]
}

services_up() {
	local b f
	for f in 4 6; do
		listening rtr t 80 $f || return 1
		for b in "${BACKENDS[@]}"; do
			listening "$b" t 80 $f || return 1
			listening "$b" u 53 $f || return 1
		done
	done
}

lab_up() {
	if [[ -n $(lab_namespaces) || -e $RUN ]]; then
		echo "$PROG: lab '$P' exists, taking it down first" >&2
		lab_down
	fi
	building=1
	mkdir -p "$RUN"

	local n spec node pod ip ip6
	for n in "${NAMESPACES[@]}"; do
		new_ns "$n"
	done
	build_router
	for node in "${NODES[@]}"; do
		build_node "$node"
	done
	for spec in "${PODS[@]}"; do
		read -r node pod ip ip6 <<<"$spec"
		build_pod "$node" "$pod" "$ip" "$ip6"
	done
	# Bound to the router's addresses: they must be usable (not tentative).
	wait_for 50 no_tentative "${NAMESPACES[@]}" ||
		die "IPv6 addresses still tentative after 5 s: $(for n in "${NAMESPACES[@]}"; do ipn "$n" -6 -br addr show tentative; done)"

	start_nginx rtr "$WAN_IP:80 [$WAN_IP6]:80" router
	for n in "${BACKENDS[@]}"; do
		start_nginx "$n" "80 [::]:80" "${n#*-}"
		start_udp_echo "$n" "${n#*-}"
	done
	# 30 s: a Python process takes seconds to start in an emulated VM.
	if ! wait_for 300 services_up; then
		tail -n 20 "$RUN"/*/*.log "$RUN"/*/nginx.out >&2 2>/dev/null || true
		die "services did not start listening within 30 s"
	fi
	building=0
	echo "lab '$P' is up (namespaces $P-*, runtime dir $RUN)"
}

# add_pod <node> <pod> <address> [<IPv6 address>]: a pod that comes after
# the lab, as pods come after an agent has started; del_pod removes it.
# The IPv6 address defaults to the plan's (see pod_ip6).
add_pod() {
	local node=$1 pod=$2 ip=$3
	[[ $node =~ ^n[12]$ && $pod =~ ^[a-z0-9]+$ && -n $ip ]] ||
		die "usage: $PROG add-pod n1|n2 <pod> <address in the node's pod range> [<IPv6 address>]"
	local ip6=${4:-$(pod_ip6 "$node" "$ip")}
	lab_is_up || die "lab '$P' is not up"
	new_ns "$node-$pod"
	build_pod "$node" "$pod" "$ip" "$ip6"
	wait_for 50 no_tentative "$node" "$node-$pod" || die "IPv6 addresses of $pod still tentative after 5 s"
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

# How long a probe waits for its answer (seconds): an emulated VM (the
# kernel matrix) needs longer than the 2 s that suit a machine's own kernel.
PROBE_WAIT=${LAB_PROBE_WAIT:-2}
# The probe's own deadline only catches a client that hangs: a client's
# start counts against it too, and under emulation twenty of them starting
# at once (curl loads dozens of libraries) take seconds before they send.
PROBE_DEADLINE=$((PROBE_WAIT * 2 + 10))

# probe_tcp <namespace> <url>
probe_tcp() {
	local out
	# -g: no globbing, the brackets are an IPv6 address.
	out=$(timeout "$PROBE_DEADLINE" ip netns exec "$(ns "$1")" \
		curl -g -s --max-time "$PROBE_WAIT" "$2" 2>/dev/null) || true
	if [[ $out == b1 ]]; then echo ok; else echo FAIL; fi
}

# probe_udp <namespace> <socat address>
probe_udp() {
	local out
	# -t: after sending (stdin EOF) wait that long for the reply.
	out=$(echo ping | timeout "$PROBE_DEADLINE" ip netns exec "$(ns "$1")" \
		socat -t"$PROBE_WAIT" -T"$PROBE_WAIT" - "$2" 2>/dev/null) || true
	if [[ $out == *b1* ]]; then echo ok; else echo FAIL; fi
}

# probe_one <namespace> <frontend id>
probe_one() {
	case $2 in
	tcp) probe_tcp "$1" "http://$WAN_IP:8080/" ;;
	udp) probe_udp "$1" "UDP4:$WAN_IP:5353" ;;
	tcp6) probe_tcp "$1" "http://[$WAN_IP6]:8080/" ;;
	udp6) probe_udp "$1" "UDP6:[$WAN_IP6]:5353" ;;
	esac
}

# print_matrix <dir holding one <client>.<frontend> result file per cell>
print_matrix() {
	local c f line w=22
	for f in "${PROBE_FRONTENDS[@]}"; do
		((${#FRONTEND_LABEL[$f]} <= w)) || w=${#FRONTEND_LABEL[$f]}
	done
	line=$(printf '%-10s' client)
	for f in "${PROBE_FRONTENDS[@]}"; do line+=$(printf '  %-*s' "$w" "${FRONTEND_LABEL[$f]}"); done
	echo "${line%"${line##*[! ]}"}"
	for c in "${PROBE_CLIENTS[@]}"; do
		line=$(printf '%-10s' "${CLIENT_LABEL[$c]}")
		for f in "${PROBE_FRONTENDS[@]}"; do line+=$(printf '  %-*s' "$w" "$(<"$1/$c.$f")"); done
		echo "${line%"${line##*[! ]}"}"
	done
}

lab_probe() {
	case ${LAB_PROBE_FAMILY:-4} in
	4) PROBE_FRONTENDS=(tcp udp) ;;
	6) PROBE_FRONTENDS=(tcp6 udp6) ;;
	all) PROBE_FRONTENDS=(tcp udp tcp6 udp6) ;;
	*) die "LAB_PROBE_FAMILY must be 4, 6 or all, got '$LAB_PROBE_FAMILY'" ;;
	esac
	lab_is_up || die "lab '$P' is not up (run: $PROG up)"
	local tmp c f
	tmp=$(mktemp -d "$RUN/probe.XXXXXX")
	probe_tmp=$tmp
	for c in "${PROBE_CLIENTS[@]}"; do
		for f in "${PROBE_FRONTENDS[@]}"; do
			probe_one "${CLIENT_NS[$c]}" "$f" >"$tmp/$c.$f" &
		done
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
	echo "usage: $PROG up|down|probe|status|add-pod NODE POD ADDR [ADDR6]|del-pod NODE POD   (env: LAB_PREFIX, LAB_RUN, LAB_PROBE_FORMAT, LAB_PROBE_FAMILY)" >&2
	exit 2
	;;
esac
