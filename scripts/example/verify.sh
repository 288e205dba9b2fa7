# shellcheck shell=bash
# Sourced by build.sh --verify while the example network stands: attaches
# temporary host namespaces to the LAN segments, sends one real probe per
# flow of docs/example-network.md and checks, against the kernel:
#   - the path: `ip route get DST from SRC iif IF ipproto P dport D sport S
#     [mark M] [tos T]` router by router (ECMP: whichever nexthop the kernel
#     picks is printed);
#   - the end-to-end result of a real TCP connect / UDP echo / ICMP echo;
#   - the deciding rules: every router's counters are zeroed and conntrack
#     flushed before the probe; afterwards each rule whose packet counter
#     moved (except the RELATED,ESTABLISHED rules) is listed as
#     router:table:CHAIN#index:TARGET (index 1-based as
#     `iptables -L --line-numbers`; #0 is the chain policy).
# Any flow whose result or expected rules differ makes build.sh fail.
#
# No check depends on this machine's speed or on the multipath hash seed: a
# probe that times out where an answer is expected is sent again with a long
# wait before it counts, and a flow across an ECMP route has one expectation
# per branch (the `via` field), checked against the branch the kernel took.

declare -A HOSTNS # host name -> namespace
UDP_ECHO='import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
while True:
    _, peer = s.recvfrom(2048)
    s.sendto(b"ok\n", peer)'
HOSTN=0

# host NAME SEGMENT GATEWAY ADDR/PLEN [ADDR/PLEN...] [lo ADDR...]
host() {
	local name=$1 seg=$2 gw=$3 ns=${P}h-$1
	shift 3
	newns "$ns"
	HOSTNS[$name]=$ns
	HOSTN=$((HOSTN + 1))
	# Hosts must not depend on this machine's defaults either.
	ip netns exec "$ns" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 \
		net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 >/dev/null
	ip -n "$FAB" link add "h$HOSTN" type veth peer name eth0 netns "$ns"
	ip -n "$FAB" link set "h$HOSTN" master "$seg" up
	local lo=0
	for a in "$@"; do
		if [ "$a" = lo ]; then lo=1; continue; fi
		if [ "$lo" = 1 ]; then
			ip -n "$ns" addr add "$a/32" dev lo
		else
			ip -n "$ns" addr add "$a" dev eth0
		fi
	done
	ip -n "$ns" link set eth0 up
	[ "$gw" = - ] || ip -n "$ns" route add default via "$gw"
}

# listen HOST PROTO PORT[@ADDR]... starts echo listeners ("ok") in HOST.
listen() {
	local h=$1 proto=$2 port
	shift 2
	local bind
	for port in "$@"; do
		bind=
		case $port in *@*) bind=,bind=${port#*@} port=${port%@*} ;; esac
		if [ "$proto" = tcp ]; then
			ip netns exec "${HOSTNS[$h]}" socat "TCP-LISTEN:$port,reuseaddr,fork$bind" SYSTEM:'echo ok' </dev/null >/dev/null 2>&1 &
		else
			# socat's UDP-RECVFROM,fork answers only the first peer reliably
			ip netns exec "${HOSTNS[$h]}" python3 -c "$UDP_ECHO" "$port" </dev/null >/dev/null 2>&1 &
		fi
		CREATED_PIDS+=("$!")
		local n=0 flag=-Hltn
		[ "$proto" = udp ] && flag=-Hlun
		until [ -n "$(ip netns exec "${HOSTNS[$h]}" ss "$flag" "sport = :$port")" ]; do
			n=$((n + 1))
			[ "$n" -lt 300 ] || die "listener $h $proto/$port did not start"
			sleep 0.01
		done
	done
}

# seg_peer ROUTER IFNAME GW prints "router:ifname" of the router owning GW
# on the segment behind ROUTER's IFNAME, or nothing when no router owns it.
seg_peer() {
	local seg=${IFSEG[$1/$2]} owner=${OWNER[$3]:-} m
	[ -n "$owner" ] || return 0
	for m in ${SEGM[$seg]}; do
		[ "${m%%:*}" = "$owner" ] && { echo "$m"; return; }
	done
}

# kpath ROUTER IIF SRC DST PROTO DPORT SPORT MARK TOS prints the kernel's
# path, asking `ip route get` router by router.
kpath() {
	local r=$1 iif=$2 src=$3 dst=$4 proto=$5 dport=$6 sport=$7 mark=$8 tos=$9
	local path="" hops=0 args out dev gw peer
	while [ $hops -lt 12 ]; do
		hops=$((hops + 1))
		args=(route get "$dst" from "$src" iif "$iif" ipproto "$proto")
		[ "$dport" = - ] || args+=(dport "$dport")
		[ "$sport" = - ] || args+=(sport "$sport")
		[ "$mark" = - ] || args+=(mark "$mark")
		[ "$tos" = - ] || args+=(tos "$tos")
		if ! out=$(ip -n "${NS[$r]}" "${args[@]}" 2>&1); then
			path+="$r($iif) ${out//$'\n'/ }"
			echo "$path"
			return
		fi
		out=${out%%$'\n'*}
		case $out in
		local\ *) path+="$r($iif) local"; echo "$path"; return ;;
		esac
		dev=$(awk '{for(i=1;i<NF;i++) if($i=="dev"){print $(i+1); exit}}' <<<"$out")
		gw=$(awk '{for(i=1;i<NF;i++) if($i=="via"){print $(i+1); exit}}' <<<"$out")
		if [ -z "$gw" ]; then
			path+="$r($iif>$dev) delivered"
			echo "$path"
			return
		fi
		peer=$(seg_peer "$r" "$dev" "$gw")
		if [ -z "$peer" ]; then
			path+="$r($iif>$dev) exits via $gw"
			echo "$path"
			return
		fi
		path+="$r($iif>$dev) "
		r=${peer%%:*}
		iif=${peer#*:}
	done
	echo "$path LOOP"
}

# zero_all zeroes every counter and forgets every connection on all routers.
zero_all() {
	local r t
	for r in "${ROUTERS[@]}"; do
		for t in filter nat mangle; do ip netns exec "${NS[$r]}" iptables -t "$t" -Z; done
		ip netns exec "${NS[$r]}" conntrack -F >/dev/null 2>&1 || true
	done
}

# moved prints router:table:CHAIN#index:TARGET for every counter that moved.
moved() {
	local r
	for r in "${ROUTERS[@]}"; do
		ip netns exec "${NS[$r]}" iptables-save -c | awk -v r="$r" '
			/^\*/ { t = substr($0, 2); delete idx; next }
			/^:/ {
				if (t != "filter") next
				split($3, c, /[\[:\]]/)
				if (c[2] > 0 && $2 != "-") printf "%s:%s:%s#0:%s\n", r, t, substr($1, 2), $2
				next
			}
			/^\[/ {
				split($1, c, /[\[:\]]/)
				ch = $3; idx[ch]++
				if (c[2] == 0 || $0 ~ /ESTABLISHED/) next
				tgt = ""
				for (i = 1; i < NF; i++) if ($i == "-j") tgt = $(i + 1)
				printf "%s:%s:%s#%d:%s\n", r, t, ch, idx[ch], tgt
			}'
	done
}

# probe SRCHOST SRC DST PROTO DPORT SPORT [WAIT] prints
# ok|refused|timeout|unreach(...)|ttl-exceeded; WAIT (seconds, default 1) is
# how long an answer is waited for.
probe() {
	local h=$1 src=$2 dst=$3 proto=$4 dport=$5 sport=$6 w=${7:-1} out bind=$2
	[ "$sport" = - ] || bind="$src:$sport"
	case $proto in
	tcp)
		out=$(ip netns exec "${HOSTNS[$h]}" timeout $((w + 4)) socat -T "$w" - "TCP:$dst:$dport,bind=$bind,connect-timeout=$w" </dev/null 2>&1) || true
		;;
	udp)
		out=$(echo probe | ip netns exec "${HOSTNS[$h]}" timeout $((w + 4)) socat -T "$w" - "UDP:$dst:$dport,bind=$bind" 2>&1) || true
		;;
	icmp)
		out=$(ip netns exec "${HOSTNS[$h]}" ping -n -c 1 -W "$w" -I "$src" "$dst" 2>&1) && out=ok
		;;
	esac
	case $out in
	ok) echo ok ;;
	*"Connection refused"*) echo refused ;;
	*"Destination Host Prohibited"* | *"Packet filtered"*) echo "unreach(prohibited)" ;;
	*"Destination Net Unreachable"* | *"Network is unreachable"*) echo "unreach(net)" ;;
	*"No route to host"* | *"Destination Host Unreachable"*) echo "unreach(host)" ;;
	*"Time to live exceeded"*) echo ttl-exceeded ;;
	*"timed out"* | "" | *"100% packet loss"*) echo timeout ;;
	*) echo "other(${out//$'\n'/ })" ;;
	esac
}

# The flows. Fields:
#  id | source host | src | dst | routing dst (after DNAT, else -) | proto |
#  dport | sport | first router:iif | mark | tos | expected result |
#  expected rules (must all have moved) | via
# `via`, when set, makes the line one branch of an ECMP route: it applies
# when the kernel's path crosses that router. Lines with the same id are the
# branches; exactly one of them must apply.
FLOWS=$(
	cat <<-'EOF'
	F01|hqu|10.1.10.5|10.1.50.10|-|tcp|443|-|hq-core:eth1|-|-|ok|hq-core:filter:FORWARD#6 hq-gw:filter:HQ_EGRESS#3 hq-dmz:filter:FORWARD#4
	F02|hqu|10.1.10.5|10.1.50.10|-|tcp|3306|-|hq-core:eth1|-|-|timeout|hq-core:filter:FORWARD#6 hq-gw:filter:HQ_EGRESS#2
	F03|hqu|10.1.10.5|192.0.2.80|-|tcp|25|-|hq-core:eth1|-|-|timeout|hq-core:filter:FORWARD#6 hq-gw:filter:FORWARD#0
	F04|hqu|10.1.10.5|10.3.20.10|-|tcp|5432|-|hq-core:eth1|-|-|refused|hq-core:filter:FORWARD#6 hq-gw:filter:TO_SITES#2 dc-gw:filter:SITES_TO_DC#2 dc-srv:filter:DB_GUARD#3
	F05|hqu|10.1.10.5|10.1.20.10|-|udp|69|-|hq-core:eth1|-|-|refused|hq-core:filter:FORWARD#4
	F06|dca|10.3.10.5|10.3.20.10|-|tcp|5432|-|dc-core:eth1|-|-|ok|dc-core:filter:FORWARD#8 dc-srv:filter:DB_GUARD#1 dc-srv:filter:FORWARD#5
	F07|hqs|10.1.20.10|10.3.20.10|-|tcp|5432|-|hq-core:eth2|-|-|ok|hq-core:filter:FORWARD#7 hq-gw:filter:TO_SITES#2 dc-gw:filter:SITES_TO_DC#2 dc-srv:filter:DB_GUARD#2
	F08|ext1|192.0.2.200|203.0.113.5|10.1.50.10|tcp|443|-|inet-gw:eth0|-|-|timeout|inet-gw:nat:PREROUTING#1 inet-gw:filter:FORWARD#6
	F09|ext1|192.0.2.50|203.0.113.5|10.1.50.10|tcp|443|-|inet-gw:eth0|-|-|ok|inet-gw:nat:PREROUTING#1 inet-gw:filter:ANTI_SPOOF#12 inet-gw:filter:INBOUND#1 hq-dmz:filter:FORWARD#4
	F10|bru|10.2.10.5|10.1.20.10|-|tcp|443|-|br-core:eth1|-|-|ok|br-core:filter:FORWARD#4 br-gw:filter:FORWARD#5 hq-gw:filter:SITES_IN#2 hq-core:filter:FORWARD#9
	F11|hqu|10.1.10.5|10.3.10.5|-|tcp|8443|-|hq-core:eth1|0x10|-|ok|hq-gw:mangle:PREROUTING#1 hq-gw:filter:TO_SITES#3 dc-gw:filter:SITES_TO_DC#3 dc-core:filter:FORWARD#4
	F12|hqu|10.1.10.5|10.3.10.5|-|tcp|443|-|hq-core:eth1|-|-|ok|hq-gw:filter:TO_SITES#3 dc-gw:filter:SITES_TO_DC#3 dc-core:filter:FORWARD#4
	F13|hqu|10.1.10.5|10.3.10.5|-|tcp|22|-|hq-core:eth1|-|0x10|ok|hq-core:mangle:PREROUTING#1 hq-gw:filter:TO_SITES#3 dc-gw:filter:SITES_TO_DC#3 dc-core:filter:FORWARD#4
	F14|hqu|10.1.10.5|10.3.10.5|-|udp|5060|-|hq-core:eth1|-|-|ok|hq-gw:filter:TO_SITES#4 dc-gw:filter:SITES_TO_DC#4 dc-core:filter:FORWARD#5
	F15|hqu|10.1.10.5|10.3.10.5|-|udp|53|-|hq-core:eth1|-|-|ok|hq-gw:filter:TO_SITES#4 dc-gw:filter:SITES_TO_DC#4 dc-core:filter:FORWARD#5
	F16|hqs|10.1.20.11|10.3.10.5|-|tcp|9000|443|hq-core:eth2|-|-|ok|hq-core:filter:FORWARD#7 hq-gw:filter:TO_SITES#5 dc-gw:filter:SITES_TO_DC#5 dc-core:filter:FORWARD#6
	F17|hqs|10.1.20.11|10.3.10.5|-|tcp|9000|40000|hq-core:eth2|-|-|ok|hq-core:filter:FORWARD#7 hq-gw:filter:TO_SITES#5 dc-gw:filter:SITES_TO_DC#5 dc-core:filter:FORWARD#6
	F18|hqm|10.1.30.10|10.3.10.5|-|udp|5060|-|hq-core:eth3|-|-|ok|hq-core:filter:FORWARD#8 hq-gw:filter:HQ_EGRESS#1 dc-gw:filter:SITES_TO_DC#4 dc-core:filter:FORWARD#5
	F19|hqm|10.1.30.10|192.0.2.80|-|tcp|443|-|hq-core:eth3|-|-|unreach(net)|hq-core:filter:FORWARD#8
	F20|hqu|10.1.10.5|192.0.2.80|-|tcp|443|-|hq-core:eth1|-|-|ok|hq-gw:filter:HQ_EGRESS#5 inet-gw:filter:OUTBOUND#2 inet-gw:nat:POSTROUTING#1
	F21|bru|10.2.10.5|10.1.30.10|-|tcp|22|-|br-core:eth1|-|-|unreach(host)|br-core:filter:FORWARD#4 br-gw:filter:FORWARD#5
	F22|dmz|10.1.50.10|10.1.30.10|-|udp|514|-|hq-dmz:eth1|-|-|ok|hq-dmz:filter:DMZ_OUT#4 hq-gw:filter:EDGE_IN#1 hq-core:filter:FORWARD#10
	F38|dmz|10.1.50.22|10.1.30.10|-|tcp|22|-|hq-dmz:eth1|-|-|ok|hq-dmz:filter:DMZ_OUT#6 hq-gw:filter:EDGE_IN#3 hq-core:filter:FORWARD#12
	F23|hqu|10.1.10.5|10.3.100.10|-|icmp|-|-|hq-core:eth1|-|-|ok|hq-core:filter:FORWARD#3 hq-gw:filter:FORWARD#3 dc-gw:filter:FORWARD#3 dc-core:filter:FORWARD#3|dc-core
	F23|hqu|10.1.10.5|10.3.100.10|-|icmp|-|-|hq-core:eth1|-|-|timeout|hq-core:filter:FORWARD#3 hq-gw:filter:FORWARD#3 dc-gw:filter:FORWARD#3 dc-srv:filter:FORWARD#3 dc-core:filter:FORWARD#2|dc-srv
	F24|hqu|10.1.10.5|10.2.250.5|-|icmp|-|-|hq-core:eth1|-|-|timeout|hq-core:filter:FORWARD#3 hq-gw:filter:FORWARD#3
	F25|brg|10.2.99.5|10.1.20.10|-|tcp|443|-|br-gw:eth1|-|-|timeout|
	F26|brg|10.2.99.5|192.0.2.80|-|tcp|443|-|br-gw:eth1|-|-|ok|br-gw:filter:GUEST#2 hq-gw:filter:SITES_IN#3 inet-gw:filter:OUTBOUND#2 inet-gw:nat:POSTROUTING#1
	F27|dcd|10.3.20.10|192.0.2.80|-|tcp|443|-|dc-srv:eth1|-|-|unreach(net)|
	F28|dcs|10.3.100.10|192.0.2.80|-|tcp|443|-|dc-core:eth2|-|-|unreach(host)|dc-core:filter:FORWARD#9
	F29|dca|10.3.10.5|192.0.2.80|-|tcp|443|-|dc-core:eth1|-|-|ok|dc-core:filter:FORWARD#8 dc-gw:filter:DC_OUT#1 hq-gw:filter:SITES_IN#5 inet-gw:filter:OUTBOUND#2 inet-gw:nat:POSTROUTING#1
	F30|dmz|10.1.50.25|192.0.2.25|-|tcp|25|-|hq-dmz:eth1|-|-|ok|hq-dmz:filter:DMZ_OUT#2 inet-gw:filter:OUTBOUND#4 inet-gw:nat:POSTROUTING#2
	F31|dmz|10.1.50.25|192.0.2.80|-|tcp|443|-|hq-dmz:eth1|-|-|ok|hq-dmz:filter:DMZ_OUT#3 inet-gw:filter:OUTBOUND#2 inet-gw:nat:POSTROUTING#1
	F32|ext1|198.51.100.3|203.0.113.5|10.1.50.10|tcp|443|-|inet-gw:eth0|-|-|timeout|inet-gw:nat:PREROUTING#1
	F33|hqu|10.1.10.5|10.1.50.53|-|udp|53|-|hq-core:eth1|-|-|refused|hq-gw:filter:HQ_EGRESS#4 hq-dmz:filter:INPUT#8
	F34|hqu|10.1.10.5|10.3.20.10|-|tcp|8443|-|hq-core:eth1|0x10|-|timeout|hq-gw:filter:TO_SITES#3 dc-gw:filter:FORWARD#0
	F35|hqu|10.1.10.5|10.3.200.5|-|icmp|-|-|hq-core:eth1|-|-|unreach(prohibited)|hq-gw:filter:FORWARD#3
	F36|bru|10.2.10.66|10.1.20.10|-|tcp|443|-|br-core:eth1|-|-|timeout|br-gw:filter:FORWARD#5 hq-gw:filter:SITES_IN#1
	F37|brg|10.2.99.5|192.0.2.80|-|tcp|22|-|br-gw:eth1|-|-|refused|br-gw:filter:GUEST#3
	F39|hqu|10.1.10.5|10.99.0.5|-|icmp|-|-|hq-core:eth1|-|-|ttl-exceeded|hq-core:filter:FORWARD#3 hq-gw:filter:FORWARD#3 dc-gw:filter:FORWARD#3
	F40|dcs|10.3.100.10|10.3.10.5|-|tcp|9090|-|dc-core:eth2|-|-|ok|dc-core:filter:FORWARD#11
	EOF
)

verify_flows() {
	# VERIFY_SEED pins every router's multipath hash seed (default: the
	# kernel's own, different on every run).
	if [ -n "${VERIFY_SEED:-}" ]; then
		local r
		for r in "${ROUTERS[@]}"; do
			ip netns exec "${NS[$r]}" sysctl -q -w net.ipv4.fib_multipath_hash_seed="$VERIFY_SEED" >/dev/null
		done
	fi
	host hqu hqusers 10.1.10.1 10.1.10.5/24
	host hqs hqsrv 10.1.20.1 10.1.20.10/24 10.1.20.11/24
	host hqm hqmgmt 10.1.30.1 10.1.30.10/24
	host dmz dmz 10.1.50.1 10.1.50.10/24 10.1.50.25/24 10.1.50.22/24
	host bru brusers 10.2.10.1 10.2.10.5/24 10.2.10.66/24
	host brg brguest 10.2.99.1 10.2.99.5/24
	host dca dcapps 10.3.10.1 10.3.10.5/24
	host dcd dcdb 10.3.20.1 10.3.20.10/24
	host dcs dcstor 10.3.100.2 10.3.100.10/24
	host ext1 isp1 - 203.0.113.1/29 lo 192.0.2.50 192.0.2.80 192.0.2.200 198.51.100.3
	host ext2 isp2 - 198.51.100.1/29 lo 192.0.2.25
	listen hqs tcp 443@10.1.20.10
	listen hqs udp 69
	listen hqm tcp 22
	listen hqm udp 514
	listen dmz tcp 443 3306 25
	listen dca tcp 22 443 8443 9000 9090
	listen dca udp 53 5060
	listen dcd tcp 5432 8443
	listen ext1 tcp 25 22 443
	listen ext2 tcp 25

	local fails=0 id h src dst rdst proto dport sport start mark tos want rules via
	local got path mv r
	declare -A applied=() branched=()
	while IFS='|' read -r id h src dst rdst proto dport sport start mark tos want rules via; do
		[ -n "$id" ] || continue
		if [ -n "${VERIFY_FLOWS:-}" ] && [[ " $VERIFY_FLOWS " != *" $id "* ]]; then continue; fi
		[ "$rdst" = - ] && rdst=$dst
		path=$(kpath "${start%%:*}" "${start#*:}" "$src" "$rdst" "$proto" "$dport" "$sport" "$mark" "$tos")
		if [ -n "$via" ]; then
			branched[$id]=1
			[[ " $path" == *" $via("* ]] || continue
		fi
		applied[$id]=$((${applied[$id]:-0} + 1))
		zero_all
		got=$(probe "$h" "$src" "$dst" "$proto" "$dport" "$sport")
		# No answer where one is expected: ask again, waiting long, so that a
		# busy machine does not turn a slow answer into a failure.
		if [ "$got" = timeout ] && [ "$want" != timeout ]; then
			got=$(probe "$h" "$src" "$dst" "$proto" "$dport" "$sport" 5)
		fi
		mv=$(moved)
		local bad=""
		[ "$got" = "$want" ] || bad="result $got, want $want"
		for r in $rules; do
			grep -q "^$r:" <<<"$mv" || bad+=" no counter moved for $r"
		done
		printf '%s %s %s -> %s %s/%s sport %s: %s%s\n  path: %s\n  moved: %s\n' \
			"$([ -z "$bad" ] && echo PASS || echo FAIL)" "$id" "$src" "$dst" "$proto" "$dport" "$sport" "$got" \
			"${via:+ (ECMP branch via $via)}" "$path" "$(tr '\n' ' ' <<<"$mv")"
		if [ -n "$bad" ]; then
			echo "  FAIL: $bad"
			fails=$((fails + 1))
		fi
	done <<<"$FLOWS"
	for id in "${!branched[@]}"; do
		if [ "${applied[$id]:-0}" != 1 ]; then
			echo "FAIL $id: ${applied[$id]:-0} of its ECMP branch lines matched the kernel's path"
			fails=$((fails + 1))
		fi
	done
	[ "$fails" = 0 ] || die "$fails flows did not behave as documented"
	echo "build.sh: every flow behaved as documented" >&2
}
