#!/usr/bin/env bash
# Builds tsim's built-in example network in network namespaces on this
# machine, runs the facts collector (internal/facts/collector.sh) inside every
# router namespace, writes internal/example/facts/<router>_facts.txt and tears
# everything down again. Because the facts are collected from the kernel, the
# kernel has accepted every line of them.
#
# Usage (as root):
#   scripts/example/build.sh             regenerate internal/example/facts
#   scripts/example/build.sh --out DIR   write the facts to DIR instead
#   scripts/example/build.sh --check     regenerate into a temp dir and diff
#                                        against internal/example/facts
#   scripts/example/build.sh --verify    also send real packets for every flow
#                                        of docs/example-network.md and check
#                                        route, verdict and deciding rule
#                                        (VERIFY_FLOWS="F01 F02" limits them)
#   scripts/example/build.sh --hold      keep the network up until SIGTERM
#                                        (for looking around with ip netns exec)
#
# Safety: every namespace is named tsimex<pid>-<name> and recorded when
# created; the EXIT/INT/TERM trap deletes exactly those (never by pattern).
# Routers are linked through bridges in a fabric namespace; nothing is added
# to the root namespace. Named routing tables come from a per-namespace
# /etc/netns/<ns>/iproute2/rt_tables (which `ip netns exec` mounts over
# /etc/iproute2 for that namespace only); those directories are removed too.
#
# Timestamps: SOURCE_DATE_EPOCH defaults to 2026-01-01 00:00:00 UTC so a
# regeneration is byte-for-byte identical on the same kernel.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
collector=$repo/internal/facts/collector.sh
golden=$repo/internal/example/facts
out=$golden
check=0
verify=0
hold=0
while [ $# -gt 0 ]; do
	case $1 in
	--out) out=$2; shift 2 ;;
	--check) check=1; shift ;;
	--verify) verify=1; shift ;;
	--hold) hold=1; shift ;;
	-h | --help) sed -n '2,28p' "$0"; exit 0 ;;
	*) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1767225600}
export LC_ALL=C

if [ "$(id -u)" != 0 ]; then
	echo "build.sh: must run as root (it creates network namespaces)" >&2
	exit 3
fi
for tool in ip iptables-restore iptables-save ipset sysctl; do
	command -v "$tool" >/dev/null || { echo "build.sh: $tool not installed" >&2; exit 3; }
done

P="tsimex$$-"
FAB="${P}fab"
CREATED_NS=()
CREATED_DIRS=()
CREATED_PIDS=()
MADE_ETC_NETNS=0
tmp=$(mktemp -d)

cleanup() {
	local rc=$?
	set +e
	for pid in "${CREATED_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
	for pid in "${CREATED_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
	local i
	for ((i = ${#CREATED_NS[@]} - 1; i >= 0; i--)); do
		ip netns del "${CREATED_NS[$i]}" 2>/dev/null || echo "build.sh: could not delete netns ${CREATED_NS[$i]}" >&2
	done
	for d in "${CREATED_DIRS[@]}"; do rm -rf -- "$d"; done
	[ "$MADE_ETC_NETNS" = 1 ] && rmdir /etc/netns 2>/dev/null
	rm -rf -- "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'echo "build.sh: line $LINENO: command failed: $BASH_COMMAND" >&2' ERR

die() { echo "build.sh: $*" >&2; exit 1; }

# nsx NS CMD... runs CMD inside namespace NS.
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

newns() {
	ip netns add "$1"
	CREATED_NS+=("$1")
	ip -n "$1" link set lo up
}

declare -A NS     # router name -> namespace
declare -A RIDX   # router name -> index (for MAC addresses)
declare -A NIF    # router name -> interfaces made so far
NROUTERS=0
ROUTERS=(inet-gw hq-gw hq-core hq-dmz br-gw br-core dc-gw dc-core dc-srv)

# router NAME [ID NAME]... creates a router namespace with forwarding on,
# IPv6 off (keeps the facts IPv4-only and free of address timers) and every
# sysctl the collector reports set explicitly, so the facts do not depend on
# this host's defaults. The ID NAME pairs become the router's rt_tables.
router() {
	local name=$1; shift
	local ns=$P$name
	newns "$ns"
	NS[$name]=$ns
	NROUTERS=$((NROUTERS + 1))
	RIDX[$name]=$NROUTERS
	NIF[$name]=0
	local dir=/etc/netns/$ns
	[ -d /etc/netns ] || { mkdir /etc/netns; MADE_ETC_NETNS=1; }
	mkdir -p "$dir/iproute2"
	CREATED_DIRS+=("$dir")
	{
		printf '#\n# reserved values\n#\n255\tlocal\n254\tmain\n253\tdefault\n0\tunspec\n'
		if [ $# -gt 0 ]; then printf '#\n# %s policy routing tables\n#\n' "$name"; fi
		while [ $# -gt 0 ]; do printf '%s\t%s\n' "$1" "$2"; shift 2; done
	} >"$dir/iproute2/rt_tables"
	local s=()
	for c in all default lo; do
		s+=("net.ipv4.conf.$c.rp_filter=0" "net.ipv4.conf.$c.accept_local=0"
			"net.ipv4.conf.$c.src_valid_mark=0" "net.ipv4.conf.$c.proxy_arp=0"
			"net.ipv4.conf.$c.send_redirects=0" "net.ipv4.conf.$c.accept_redirects=0")
	done
	nsx "$ns" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 \
		net.ipv6.conf.lo.disable_ipv6=1 net.ipv4.ip_forward=1 net.ipv4.ip_nonlocal_bind=0 \
		net.ipv4.fwmark_reflect=0 net.ipv4.fib_multipath_hash_policy=0 "${s[@]}" >/dev/null
}

declare -A SEGS   # segment -> 1 once its bridge exists
declare -A OWNER  # address -> router (for verify.sh)
declare -A IFSEG  # router/ifname -> segment
declare -A SEGM   # segment -> "router:ifname ..."
# link ROUTER IFNAME SEGMENT ADDR/PLEN [ADDR/PLEN...] [mtu N] [nobrd]
# connects ROUTER's IFNAME to the bridge SEGMENT in the fabric namespace.
link() {
	local r=$1 ifn=$2 seg=$3; shift 3
	local ns=${NS[$r]} mtu=1500 brd=(brd +)
	local addrs=()
	while [ $# -gt 0 ]; do
		case $1 in
		mtu) mtu=$2; shift 2 ;;
		nobrd) brd=(); shift ;;
		*) addrs+=("$1"); shift ;;
		esac
	done
	if [ -z "${SEGS[$seg]:-}" ]; then
		ip -n "$FAB" link add "$seg" type bridge stp_state 0 forward_delay 0
		ip -n "$FAB" link set "$seg" up
		SEGS[$seg]=1
	fi
	NIF[$r]=$((NIF[$r] + 1))
	local i=${NIF[$r]} x
	x=$(printf '%02x:%02x' "${RIDX[$r]}" "$i")
	local peer="v${RIDX[$r]}-$i"
	ip -n "$FAB" link add "$peer" address "02:00:00:01:$x" mtu "$mtu" type veth \
		peer name "$ifn" address "02:00:00:00:$x" mtu "$mtu" netns "$ns"
	ip -n "$FAB" link set "$peer" master "$seg" up
	for a in "${addrs[@]}"; do
		ip -n "$ns" addr add "$a" "${brd[@]}" dev "$ifn"
		OWNER[${a%/*}]=$r
	done
	IFSEG[$r/$ifn]=$seg
	SEGM[$seg]+="$r:$ifn "
	ip -n "$ns" link set "$ifn" up
}

# ipt ROUTER reads an iptables-restore file on stdin; ips ROUTER an ipset one.
ipt() { nsx "${NS[$1]}" iptables-restore || die "iptables-restore refused $1's rules"; }
ips() { nsx "${NS[$1]}" ipset restore || die "ipset restore refused $1's sets"; }
# rt ROUTER ARGS... adds a route; rl ROUTER ARGS... adds a policy rule.
rt() { local r=$1; shift; ip -n "${NS[$r]}" route add "$@"; }
rl() { local r=$1; shift; ip -n "${NS[$r]}" rule add "$@"; }

# base_filter NAME [RULE...] prints the INPUT/OUTPUT part every router
# shares: a management chain entered from the HQ management LAN and a
# log-and-drop chain; the RULEs are extra INPUT rules placed before the final
# drop. FORWARD rules follow from the caller.
base_filter() {
	local name=$1 extra
	shift
	extra=$(printf '%s\n' "$@")
	cat <<-EOF
	*filter
	:INPUT DROP [0:0]
	:FORWARD DROP [0:0]
	:OUTPUT ACCEPT [0:0]
	:MGMT_IN - [0:0]
	:LOG_DROP - [0:0]
	-A INPUT -i lo -j ACCEPT
	-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
	-A INPUT -m conntrack --ctstate INVALID -j DROP
	-A INPUT -p icmp -m icmp --icmp-type 8 -m limit --limit 20/sec --limit-burst 50 -j ACCEPT
	-A INPUT -p icmp -m icmp --icmp-type 3 -j ACCEPT
	-A INPUT -p icmp -m icmp --icmp-type 11 -j ACCEPT
	-A INPUT -s 10.1.30.0/24 -j MGMT_IN
	${extra}
	-A INPUT -j LOG_DROP
	-A MGMT_IN -p tcp -m tcp --dport 22 -m comment --comment "ssh from HQ management" -j ACCEPT
	-A MGMT_IN -p udp -m udp --dport 161 -m comment --comment "snmp polling" -j ACCEPT
	-A MGMT_IN -p tcp -m multiport --dports 179,9100 -j ACCEPT
	-A MGMT_IN -j RETURN
	-A LOG_DROP -m limit --limit 5/min -j LOG --log-prefix "$name in-drop: " --log-level 4
	-A LOG_DROP -j DROP
	-A OUTPUT -o lo -j ACCEPT
	-A OUTPUT -p udp -m udp --dport 514 -d 10.1.30.10/32 -j ACCEPT
	EOF
}

# fwd_head prints the FORWARD rules every router starts with.
fwd_head() {
	cat <<-'EOF'
	-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
	-A FORWARD -m conntrack --ctstate INVALID -j DROP
	-A FORWARD -s 10.0.0.0/8 -d 10.0.0.0/8 -p icmp -m icmp --icmp-type 8 -j ACCEPT
	EOF
}

# bogons prints one DROP rule per non-routable source range into CHAIN.
bogons() {
	local c=$1 n
	for n in 0.0.0.0/8 10.0.0.0/8 100.64.0.0/10 127.0.0.0/8 169.254.0.0/16 172.16.0.0/12 \
		192.0.0.0/24 192.168.0.0/16 198.18.0.0/15 224.0.0.0/4 240.0.0.0/4; do
		echo "-A $c -s $n -j DROP"
	done
}

build() {
	newns "$FAB"

	router inet-gw 202 isp2
	router hq-gw 100 mpls
	router hq-core
	router hq-dmz
	router br-gw 120 guest
	router br-core
	router dc-gw 140 isolated
	router dc-core
	router dc-srv

	# --- links (segment names are bridges in the fabric namespace) ---
	link inet-gw eth0 isp1 203.0.113.2/29 203.0.113.5/29
	link inet-gw eth1 hqedge 10.1.0.1/29
	link inet-gw eth2 isp2 198.51.100.2/29
	link hq-gw eth0 hqedge 10.1.0.2/29
	link hq-gw eth1 hqcore 10.1.1.1/24
	link hq-gw eth2 mpls 10.200.0.1/30
	link hq-gw wg0 wg 10.100.0.1/24 mtu 1420 nobrd
	link hq-core eth0 hqcore 10.1.1.2/24
	link hq-core eth1 hqusers 10.1.10.1/24
	link hq-core eth2 hqsrv 10.1.20.1/24
	link hq-core eth3 hqmgmt 10.1.30.1/24
	link hq-dmz eth0 hqedge 10.1.0.3/29
	link hq-dmz eth1 dmz 10.1.50.1/24
	link br-gw wg0 wg 10.100.0.2/24 mtu 1420 nobrd
	link br-gw eth0 brcore 10.2.0.1/24
	link br-gw eth1 brguest 10.2.99.1/24
	link br-core eth0 brcore 10.2.0.2/24
	link br-core eth1 brusers 10.2.10.1/24
	link br-core eth2 brvoice 10.2.20.1/24
	link dc-gw wg0 wg 10.100.0.3/24 mtu 1420 nobrd
	link dc-gw eth0 dccore 10.3.0.1/24
	link dc-gw eth1 mpls 10.200.0.2/30
	link dc-core eth0 dccore 10.3.0.2/24
	link dc-core eth1 dcapps 10.3.10.1/24
	link dc-core eth2 dcstor 10.3.100.2/24
	link dc-srv eth0 dccore 10.3.0.3/24
	link dc-srv eth1 dcdb 10.3.20.1/24
	link dc-srv eth2 dcstor 10.3.100.3/24

	# Strict reverse-path filter on the first ISP uplink, loose on the
	# second (its replies come back for connections routed by policy).
	nsx "${NS[inet-gw]}" sysctl -q -w net.ipv4.conf.eth0.rp_filter=1 net.ipv4.conf.eth2.rp_filter=2 >/dev/null

	# --- inet-gw: Internet gateway, two ISPs, NAT, published DMZ services ---
	rt inet-gw default via 203.0.113.1 dev eth0 proto static
	rt inet-gw 10.0.0.0/8 via 10.1.0.2 dev eth1 proto static metric 10
	rt inet-gw 10.1.50.0/24 via 10.1.0.3 dev eth1 proto static metric 10
	rt inet-gw blackhole 192.168.0.0/16 proto static
	rt inet-gw blackhole 172.16.0.0/12 proto static
	rt inet-gw unreachable 100.64.0.0/10 proto static
	rt inet-gw default via 198.51.100.1 dev eth2 proto static table 202
	rt inet-gw 10.0.0.0/8 via 10.1.0.2 dev eth1 proto static metric 10 table 202
	rt inet-gw 10.1.50.0/24 via 10.1.0.3 dev eth1 proto static metric 10 table 202
	rl inet-gw pref 10 from 198.51.100.0/29 iif eth0 blackhole
	rl inet-gw pref 100 from 10.1.50.0/24 ipproto tcp dport 25 table 202
	rl inet-gw pref 110 from 198.51.100.0/29 table 202
	ips inet-gw <<-'EOF'
	create inet_block_nets hash:net family inet hashsize 1024 maxelem 65536 initval 0x7473696d
	add inet_block_nets 192.0.2.128/25
	add inet_block_nets 198.51.100.128/25
	create inet_block_hosts hash:ip family inet hashsize 1024 maxelem 65536 initval 0x7473696e
	add inet_block_hosts 192.0.2.66
	add inet_block_hosts 203.0.113.99
	create inet_block list:set size 8
	add inet_block inet_block_nets
	add inet_block inet_block_hosts
	create web_ports bitmap:port range 0-9999
	add web_ports 80
	add web_ports 443
	add web_ports 8080
	EOF
	{
		base_filter inet-gw
		cat <<-'EOF'
		:ANTI_SPOOF - [0:0]
		:INBOUND - [0:0]
		:OUTBOUND - [0:0]
		EOF
		fwd_head
		cat <<-'EOF'
		-A FORWARD -i eth0 -j ANTI_SPOOF
		-A FORWARD -i eth2 -j ANTI_SPOOF
		-A FORWARD -i eth0 -m set --match-set inet_block src -j DROP
		-A FORWARD -i eth2 -m set --match-set inet_block src -j DROP
		-A FORWARD -i eth0 -o eth1 -j INBOUND
		-A FORWARD -i eth2 -o eth1 -j INBOUND
		-A FORWARD -i eth1 -o eth0 -j OUTBOUND
		-A FORWARD -i eth1 -o eth2 -j OUTBOUND
		-A FORWARD -m limit --limit 10/min -j LOG --log-prefix "inet-gw fwd-drop: "
		EOF
		bogons ANTI_SPOOF
		cat <<-'EOF'
		-A ANTI_SPOOF -j RETURN
		-A INBOUND -d 10.1.50.10/32 -p tcp -m multiport --dports 80,443 -m comment --comment "published web" -j ACCEPT
		-A INBOUND -d 10.1.50.25/32 -p tcp -m tcp --dport 25 -m comment --comment "published smtp" -j ACCEPT
		-A INBOUND -p tcp -j REJECT --reject-with tcp-reset
		-A INBOUND -j DROP
		-A OUTBOUND -s 10.1.30.0/24 -m comment --comment "management never talks to the Internet" -j DROP
		-A OUTBOUND -p tcp -m set --match-set web_ports dst -j ACCEPT
		-A OUTBOUND -p udp -m multiport --dports 53,123 -j ACCEPT
		-A OUTBOUND -s 10.1.50.25/32 -p tcp -m tcp --dport 25 -j ACCEPT
		-A OUTBOUND -p icmp -m icmp --icmp-type 8 -j ACCEPT
		-A OUTBOUND -j RETURN
		COMMIT
		*nat
		:PREROUTING ACCEPT [0:0]
		:INPUT ACCEPT [0:0]
		:OUTPUT ACCEPT [0:0]
		:POSTROUTING ACCEPT [0:0]
		-A PREROUTING -i eth0 -d 203.0.113.5/32 -p tcp -m multiport --dports 80,443 -j DNAT --to-destination 10.1.50.10
		-A PREROUTING -i eth0 -d 203.0.113.5/32 -p tcp -m tcp --dport 25 -j DNAT --to-destination 10.1.50.25:25
		-A POSTROUTING -s 10.0.0.0/8 -o eth0 -j MASQUERADE
		-A POSTROUTING -s 10.0.0.0/8 -o eth2 -j SNAT --to-source 198.51.100.2
		COMMIT
		*mangle
		:PREROUTING ACCEPT [0:0]
		:INPUT ACCEPT [0:0]
		:FORWARD ACCEPT [0:0]
		:OUTPUT ACCEPT [0:0]
		:POSTROUTING ACCEPT [0:0]
		-A FORWARD -o eth0 -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu
		-A FORWARD -o eth2 -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu
		COMMIT
		EOF
	} | ipt inet-gw

	# --- hq-gw: HQ site gateway; VPN (wg0), MPLS backup to DC (eth2) ---
	rt hq-gw default via 10.1.0.1 dev eth0 proto static
	rt hq-gw 10.1.10.0/24 via 10.1.1.2 dev eth1 proto static
	rt hq-gw 10.1.20.0/24 via 10.1.1.2 dev eth1 proto static
	rt hq-gw 10.1.30.0/24 via 10.1.1.2 dev eth1 proto static
	rt hq-gw 10.1.50.0/24 via 10.1.0.3 dev eth0 proto static
	rt hq-gw 10.2.0.0/16 via 10.100.0.2 dev wg0 proto static metric 10
	rt hq-gw 10.3.0.0/16 via 10.100.0.3 dev wg0 proto static metric 10
	rt hq-gw 10.3.0.0/16 via 10.200.0.2 dev eth2 proto static metric 100
	rt hq-gw 10.3.0.0/16 via 10.200.0.2 dev eth2 proto static table 100
	rt hq-gw throw 10.3.20.0/24 proto static table 100
	rl hq-gw pref 90 from 10.1.30.0/24 goto 200
	rl hq-gw pref 100 fwmark 0x10/0xff table 100
	rl hq-gw pref 110 tos 0x10 table 100
	rl hq-gw pref 120 ipproto udp dport 5060-5061 table 100
	rl hq-gw pref 130 from 10.1.20.0/24 ipproto tcp sport 443 table 100
	rl hq-gw pref 140 iif wg0 to 10.1.30.0/24 ipproto tcp dport 22 prohibit
	rl hq-gw pref 200 table main suppress_prefixlength 0
	rl hq-gw pref 210 from 10.1.30.0/24 unreachable
	# 10.99.0.0/16 is a retired lab prefix that each gateway still routes to
	# the other: a routing loop (TTL runs out; the kernel sends ICMP time
	# exceeded). The oif rule never matches forwarded packets.
	rt hq-gw 10.99.0.0/16 via 10.100.0.3 dev wg0 proto static
	rl hq-gw pref 150 to 10.99.0.0/16 oif wg0 prohibit
	ips hq-gw <<-'EOF'
	create hq_services hash:ip,port family inet hashsize 1024 maxelem 65536 initval 0x74736970
	add hq_services 10.1.20.10,tcp:22
	add hq_services 10.1.20.10,tcp:443
	add hq_services 10.1.20.20,udp:514
	add hq_services 10.1.20.30,tcp:8080
	create blocked_hosts hash:ip family inet hashsize 1024 maxelem 65536 initval 0x74736971
	add blocked_hosts 10.2.10.66
	add blocked_hosts 10.3.10.66
	create site_nets hash:net family inet hashsize 1024 maxelem 65536 initval 0x74736972
	add site_nets 10.2.0.0/16
	add site_nets 10.3.0.0/16
	EOF
	{
		base_filter hq-gw
		cat <<-'EOF'
		:HQ_EGRESS - [0:0]
		:TO_SITES - [0:0]
		:SITES_IN - [0:0]
		:EDGE_IN - [0:0]
		EOF
		fwd_head
		cat <<-'EOF'
		-A FORWARD -i eth1 -j HQ_EGRESS
		-A FORWARD -i wg0 -j SITES_IN
		-A FORWARD -i eth2 -j SITES_IN
		-A FORWARD -i eth0 -o eth1 -j EDGE_IN
		-A FORWARD -m limit --limit 10/min -j LOG --log-prefix "hq-gw fwd-drop: "
		-A HQ_EGRESS -s 10.1.30.0/24 -m comment --comment "management reaches every site" -j ACCEPT
		-A HQ_EGRESS -o eth0 -d 10.1.50.0/24 -p tcp -m tcp --dport 3306 -m comment --comment "no direct DMZ database access" -j DROP
		-A HQ_EGRESS -o eth0 -d 10.1.50.0/24 -p tcp -m multiport --dports 22,80,443 -j ACCEPT
		-A HQ_EGRESS -o eth0 -d 10.1.50.0/24 -p udp -m udp --dport 53 -j ACCEPT
		-A HQ_EGRESS -o eth0 -s 10.1.10.0/24 -p tcp -m multiport --dports 80,443 -j ACCEPT
		-A HQ_EGRESS -o eth0 -s 10.1.0.0/16 -p udp -m multiport --dports 53,123 -j ACCEPT
		-A HQ_EGRESS -o wg0 -j TO_SITES
		-A HQ_EGRESS -o eth2 -j TO_SITES
		-A HQ_EGRESS -j RETURN
		-A TO_SITES -m set ! --match-set site_nets dst -j RETURN
		-A TO_SITES -d 10.3.20.0/24 -p tcp -m tcp --dport 5432 -j ACCEPT
		-A TO_SITES -p tcp -m multiport --dports 22,443,8443 -j ACCEPT
		-A TO_SITES -p udp -m multiport --dports 53,5060:5061 -j ACCEPT
		-A TO_SITES -s 10.1.20.0/24 -p tcp -j ACCEPT
		-A TO_SITES -j RETURN
		-A SITES_IN -m set --match-set blocked_hosts src -m comment --comment "quarantined clients" -j DROP
		-A SITES_IN -o eth1 -m set --match-set hq_services dst,dst -j ACCEPT
		-A SITES_IN -o eth0 -s 10.2.99.0/24 -p tcp -m multiport --dports 80,443 -j ACCEPT
		-A SITES_IN -o eth0 -s 10.2.0.0/16 -p tcp -m multiport --dports 80,443 -j ACCEPT
		-A SITES_IN -o eth0 -s 10.3.10.0/24 -p tcp -m multiport --dports 80,443 -j ACCEPT
		-A SITES_IN -o eth0 -p udp -m udp --dport 53 -j ACCEPT
		-A SITES_IN -o eth0 -d 10.1.50.0/24 -p tcp -m multiport --dports 80,443 -j ACCEPT
		-A SITES_IN -j RETURN
		-A EDGE_IN -s 10.1.50.0/24 -d 10.1.30.0/24 -p udp -m udp --dport 514 -j ACCEPT
		-A EDGE_IN -s 10.1.50.10/32 -d 10.1.20.30/32 -p tcp -m tcp --dport 8080 -j ACCEPT
		-A EDGE_IN -s 10.1.50.22/32 -d 10.1.30.0/24 -p tcp -m tcp --dport 22 -m comment --comment "DMZ bastion" -j ACCEPT
		-A EDGE_IN -j RETURN
		COMMIT
		*mangle
		:PREROUTING ACCEPT [0:0]
		:INPUT ACCEPT [0:0]
		:FORWARD ACCEPT [0:0]
		:OUTPUT ACCEPT [0:0]
		:POSTROUTING ACCEPT [0:0]
		-A PREROUTING -i eth1 -d 10.3.0.0/16 -p tcp -m tcp --dport 8443 -m comment --comment "replication over MPLS" -j MARK --set-xmark 0x10/0xff
		COMMIT
		EOF
	} | ipt hq-gw

	# --- hq-core: HQ users, servers and management LANs ---
	rt hq-core default via 10.1.1.1 dev eth0 proto static
	{
		base_filter hq-core
		fwd_head
		cat <<-'EOF'
		-A FORWARD -i eth1 -p udp -m udp --dport 69 -m comment --comment "no tftp from users" -j REJECT --reject-with icmp-port-unreachable
		-A FORWARD -i eth1 -o eth3 -m comment --comment "users never reach management" -j DROP
		-A FORWARD -i eth1 -j ACCEPT
		-A FORWARD -i eth2 -j ACCEPT
		-A FORWARD -i eth3 -j ACCEPT
		-A FORWARD -i eth0 -o eth2 -p tcp -m multiport --dports 22,443,8080 -j ACCEPT
		-A FORWARD -i eth0 -o eth3 -p udp -m udp --dport 514 -j ACCEPT
		-A FORWARD -i eth0 -o eth2 -p udp -m udp --dport 514 -j ACCEPT
		-A FORWARD -i eth0 -o eth3 -s 10.1.50.22/32 -p tcp -m tcp --dport 22 -j ACCEPT
		-A FORWARD -m limit --limit 10/min -j LOG --log-prefix "hq-core fwd-drop: "
		COMMIT
		*mangle
		:PREROUTING ACCEPT [0:0]
		:INPUT ACCEPT [0:0]
		:FORWARD ACCEPT [0:0]
		:OUTPUT ACCEPT [0:0]
		:POSTROUTING ACCEPT [0:0]
		-A PREROUTING -i eth1 -p tcp -m tcp --dport 22 -m comment --comment "interactive ssh: low delay" -j TOS --set-tos 0x10/0xff
		COMMIT
		EOF
	} | ipt hq-core

	# --- hq-dmz: DMZ behind the Internet gateway ---
	rt hq-dmz default via 10.1.0.1 dev eth0 proto static
	rt hq-dmz 10.0.0.0/8 via 10.1.0.2 dev eth0 proto static
	rt hq-dmz local 10.1.50.53 dev lo proto static table main
	{
		base_filter hq-dmz \
			"-A INPUT -d 10.1.50.53/32 -p udp -m udp --dport 53 -m comment --comment \"resolver on a local route\" -j ACCEPT" \
			"-A INPUT -d 10.1.50.53/32 -p tcp -m tcp --dport 53 -j ACCEPT"
		echo ":DMZ_OUT - [0:0]"
		fwd_head
		cat <<-'EOF'
		-A FORWARD -i eth0 -o eth1 -d 10.1.50.10/32 -p tcp -m multiport --dports 80,443 -j ACCEPT
		-A FORWARD -i eth0 -o eth1 -d 10.1.50.25/32 -p tcp -m tcp --dport 25 -j ACCEPT
		-A FORWARD -i eth0 -o eth1 -s 10.1.30.0/24 -p tcp -m tcp --dport 22 -j ACCEPT
		-A FORWARD -i eth0 -o eth1 -s 10.0.0.0/8 -p tcp -m tcp --dport 3306 -j ACCEPT
		-A FORWARD -i eth1 -o eth0 -j DMZ_OUT
		-A FORWARD -p udp -j REJECT --reject-with icmp-port-unreachable
		-A FORWARD -m limit --limit 10/min -j LOG --log-prefix "hq-dmz fwd-drop: "
		-A DMZ_OUT -p udp -m udp --dport 53 -j ACCEPT
		-A DMZ_OUT -s 10.1.50.25/32 -p tcp -m tcp --dport 25 -j ACCEPT
		-A DMZ_OUT -p tcp -m multiport --dports 80,443 -j ACCEPT
		-A DMZ_OUT -d 10.1.30.0/24 -p udp -m udp --dport 514 -j ACCEPT
		-A DMZ_OUT -d 10.1.20.30/32 -p tcp -m tcp --dport 8080 -j ACCEPT
		-A DMZ_OUT -s 10.1.50.22/32 -d 10.1.30.0/24 -p tcp -m tcp --dport 22 -j ACCEPT
		-A DMZ_OUT -j RETURN
		COMMIT
		EOF
	} | ipt hq-dmz

	# --- br-gw: branch gateway, guest LAN with its own policy table ---
	rt br-gw default via 10.100.0.1 dev wg0 proto static
	rt br-gw 10.1.0.0/16 via 10.100.0.1 dev wg0 proto static metric 10
	rt br-gw 10.3.0.0/16 via 10.100.0.3 dev wg0 proto static metric 10
	rt br-gw 10.2.10.0/24 via 10.2.0.2 dev eth0 proto static
	rt br-gw 10.2.20.0/24 via 10.2.0.2 dev eth0 proto static
	rt br-gw blackhole 10.2.250.0/24 proto static
	rt br-gw default via 10.100.0.1 dev wg0 proto static table 120
	rt br-gw blackhole 10.0.0.0/8 proto static table 120
	rl br-gw pref 100 from 10.2.99.0/24 table 120
	ips br-gw <<-'EOF'
	create guest_ports bitmap:port range 0-1023
	add guest_ports 80
	add guest_ports 443
	EOF
	{
		base_filter br-gw
		echo ":GUEST - [0:0]"
		fwd_head
		cat <<-'EOF'
		-A FORWARD -i eth1 -j GUEST
		-A FORWARD -i eth0 -o wg0 -j ACCEPT
		-A FORWARD -i wg0 -o eth0 -p tcp -m multiport --dports 22,443 -j ACCEPT
		-A FORWARD -i wg0 -o eth0 -p udp -m multiport --dports 5060:5061,10000:20000 -j ACCEPT
		-A FORWARD -m limit --limit 10/min -j LOG --log-prefix "br-gw fwd-drop: "
		-A GUEST -p udp -m udp --dport 53 -j ACCEPT
		-A GUEST -p tcp -m set --match-set guest_ports dst -j ACCEPT
		-A GUEST -p tcp -j REJECT --reject-with tcp-reset
		-A GUEST -j DROP
		COMMIT
		EOF
	} | ipt br-gw

	# --- br-core: branch users and voice LANs ---
	rt br-core default via 10.2.0.1 dev eth0 proto static
	{
		base_filter br-core
		fwd_head
		cat <<-'EOF'
		-A FORWARD -i eth1 -j ACCEPT
		-A FORWARD -i eth2 -p udp -m multiport --dports 5060:5061,10000:20000 -j ACCEPT
		-A FORWARD -i eth0 -o eth1 -s 10.1.30.0/24 -p tcp -m multiport --dports 22,3389 -j ACCEPT
		-A FORWARD -i eth0 -o eth1 -p tcp -m tcp --dport 443 -j ACCEPT
		-A FORWARD -i eth0 -o eth2 -p udp -m multiport --dports 5060:5061,10000:20000 -j ACCEPT
		-A FORWARD -m limit --limit 10/min -j LOG --log-prefix "br-core fwd-drop: "
		COMMIT
		EOF
	} | ipt br-core

	# --- dc-gw: data-centre gateway; ECMP to storage, isolation table ---
	rt dc-gw default via 10.100.0.1 dev wg0 proto static
	rt dc-gw 10.1.0.0/16 via 10.100.0.1 dev wg0 proto static metric 10
	rt dc-gw 10.2.0.0/16 via 10.100.0.2 dev wg0 proto static metric 10
	rt dc-gw 10.3.10.0/24 via 10.3.0.2 dev eth0 proto static
	rt dc-gw 10.3.20.0/24 via 10.3.0.3 dev eth0 proto static
	rt dc-gw 10.3.100.0/24 proto static metric 10 nexthop via 10.3.0.2 dev eth0 weight 1 nexthop via 10.3.0.3 dev eth0 weight 1
	rt dc-gw prohibit 10.3.200.0/24 proto static
	rt dc-gw unreachable default proto static table 140
	rt dc-gw throw 10.0.0.0/8 proto static table 140
	rl dc-gw pref 100 not from 10.3.10.0/24 table 140
	# The other half of the 10.99.0.0/16 loop (see hq-gw); a nop rule and a
	# uidrange rule that forwarded packets (uid 0) pass over.
	rt dc-gw 10.99.0.0/16 via 10.100.0.1 dev wg0 proto static
	rl dc-gw pref 90 to 10.99.0.0/16 nop
	rl dc-gw pref 95 to 10.99.0.0/16 uidrange 1000-1999 unreachable
	{
		base_filter dc-gw
		cat <<-'EOF'
		:SITES_TO_DC - [0:0]
		:DC_OUT - [0:0]
		EOF
		fwd_head
		cat <<-'EOF'
		-A FORWARD -i wg0 -o eth0 -j SITES_TO_DC
		-A FORWARD -i eth1 -o eth0 -j SITES_TO_DC
		-A FORWARD -i eth0 -o wg0 -j DC_OUT
		-A FORWARD -i eth0 -o eth1 -j DC_OUT
		-A FORWARD -i eth0 -o eth0 -m comment --comment "hairpin inside the DC" -j ACCEPT
		-A FORWARD -m limit --limit 10/min -j LOG --log-prefix "dc-gw fwd-drop: "
		-A SITES_TO_DC -s 10.2.99.0/24 -j DROP
		-A SITES_TO_DC -d 10.3.20.0/24 -p tcp -m tcp --dport 5432 -j ACCEPT
		-A SITES_TO_DC -d 10.3.10.0/24 -p tcp -m multiport --dports 22,443,8443 -j ACCEPT
		-A SITES_TO_DC -d 10.3.10.0/24 -p udp -m multiport --dports 53,5060:5061 -j ACCEPT
		-A SITES_TO_DC -s 10.1.20.0/24 -d 10.3.10.0/24 -p tcp -j ACCEPT
		-A SITES_TO_DC -s 10.1.30.0/24 -p tcp -m tcp --dport 22 -j ACCEPT
		-A SITES_TO_DC -d 10.3.100.0/24 -p tcp -m multiport --dports 2049,3260 -j ACCEPT
		-A SITES_TO_DC -j RETURN
		-A DC_OUT -s 10.3.10.0/24 -j ACCEPT
		-A DC_OUT -s 10.3.100.0/24 -d 10.1.20.0/24 -j ACCEPT
		-A DC_OUT -j RETURN
		COMMIT
		EOF
	} | ipt dc-gw

	# --- dc-core: DC application and storage LANs ---
	rt dc-core default via 10.3.0.1 dev eth0 proto static
	rt dc-core 10.3.20.0/24 via 10.3.0.3 dev eth0 proto static
	{
		base_filter dc-core
		fwd_head
		cat <<-'EOF'
		-A FORWARD -i eth0 -o eth1 -p tcp -m multiport --dports 22,443,8443 -j ACCEPT
		-A FORWARD -i eth0 -o eth1 -p udp -m multiport --dports 53,5060:5061 -j ACCEPT
		-A FORWARD -i eth0 -o eth1 -s 10.1.20.0/24 -p tcp -j ACCEPT
		-A FORWARD -i eth0 -o eth2 -p tcp -m multiport --dports 2049,3260 -j ACCEPT
		-A FORWARD -i eth1 -j ACCEPT
		-A FORWARD -i eth2 -o eth0 -p tcp -m multiport --dports 443,5432 -j ACCEPT
		-A FORWARD -m limit --limit 10/min -j LOG --log-prefix "dc-core fwd-drop: "
		-A FORWARD -i eth2 -o eth1 -p tcp -m tcp --dport 9090 -m connlimit --connlimit-upto 16 --connlimit-mask 32 --connlimit-saddr -m comment --comment "storage metrics push, at most 16 connections per node" -j ACCEPT
		COMMIT
		EOF
	} | ipt dc-core

	# --- dc-srv: database LAN; no default route (no Internet for DBs) ---
	rt dc-srv 10.0.0.0/8 via 10.3.0.1 dev eth0 proto static
	rt dc-srv 10.3.10.0/24 via 10.3.0.2 dev eth0 proto static
	ips dc-srv <<-'EOF'
	create db_clients hash:net,port family inet hashsize 1024 maxelem 65536 initval 0x74736973
	add db_clients 10.1.20.0/24,tcp:5432
	add db_clients 10.3.100.0/24,tcp:5432
	EOF
	{
		base_filter dc-srv
		echo ":DB_GUARD - [0:0]"
		fwd_head
		cat <<-'EOF'
		-A FORWARD -o eth1 -j DB_GUARD
		-A FORWARD -o eth1 -p tcp -m tcp --dport 5432 -j ACCEPT
		-A FORWARD -o eth2 -d 10.3.100.0/24 -p tcp -m multiport --dports 2049,3260 -j ACCEPT
		-A FORWARD -i eth1 -d 10.3.100.0/24 -j ACCEPT
		-A FORWARD -m limit --limit 10/min -j LOG --log-prefix "dc-srv fwd-drop: "
		-A DB_GUARD -s 10.3.10.0/24 -m comment --comment "application servers: trusted" -j RETURN
		-A DB_GUARD -m set --match-set db_clients src,dst -j ACCEPT
		-A DB_GUARD -p tcp -m tcp --dport 5432 -j REJECT --reject-with tcp-reset
		-A DB_GUARD -j RETURN
		COMMIT
		EOF
	} | ipt dc-srv
}

# unname_fabric keeps the fabric namespace alive through a sleeping process
# but drops its name while the collector runs: `ip addr` then prints
# "link-netnsid 0" for the veth peers instead of this run's unique name, so
# the facts do not depend on the run. name_fabric gives the name back.
FABPID=
unname_fabric() {
	# ip netns exec execs sleep, so $! is the sleeper itself.
	ip netns exec "$FAB" sleep 86400 </dev/null >/dev/null 2>&1 &
	FABPID=$!
	CREATED_PIDS+=("$FABPID")
	local want n=0
	want=$(ip netns exec "$FAB" readlink /proc/self/ns/net)
	until [ "$(readlink "/proc/$FABPID/ns/net" 2>/dev/null)" = "$want" ]; do
		n=$((n + 1))
		[ "$n" -lt 500 ] || die "fabric holder did not start"
		sleep 0.01
	done
	ip netns del "$FAB"
	CREATED_NS=("${CREATED_NS[@]:1}")
}
name_fabric() {
	ip netns attach "$FAB" "$FABPID"
	CREATED_NS=("$FAB" "${CREATED_NS[@]}")
}

collect() {
	local dir=$1 r
	mkdir -p "$dir"
	unname_fabric
	# All routers at once: each collection is independent and mostly waits.
	local pids=()
	for r in "${ROUTERS[@]}"; do
		nsx "${NS[$r]}" env TSIM_ROUTER="$r" SOURCE_DATE_EPOCH="$SOURCE_DATE_EPOCH" \
			sh "$collector" >"$dir/${r}_facts.txt" &
		pids+=("$!")
	done
	local i
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}" || die "collector failed on ${ROUTERS[$i]}"
	done
	name_fabric
}

build
if [ "$check" = 1 ]; then
	collect "$tmp/facts"
	if diff -ru "$golden" "$tmp/facts"; then
		echo "build.sh: regenerated facts equal $golden" >&2
	else
		die "regenerated facts differ from $golden"
	fi
else
	collect "$out"
	files=("$out"/*_facts.txt)
	echo "build.sh: wrote ${#files[@]} facts files to $out" >&2
fi
if [ "$verify" = 1 ]; then
	# shellcheck source=scripts/example/verify.sh
	. "$here/verify.sh"
	verify_flows
fi
if [ "$hold" = 1 ]; then
	echo "build.sh: holding namespaces ${CREATED_NS[*]}; kill -TERM $$ to tear down" >&2
	sleep infinity &
	CREATED_PIDS+=("$!")
	wait "$!" || true
fi
