#!/bin/sh
# Generates the raw facts of the trace tests' hand-made network (see
# ../../engine_test.go): three routers, r1 carrying one policy rule per
# selector and action, r2 the Internet gateway with NAT, r3 the firewall
# with an ipset, a custom chain with RETURN and a match the model does not
# understand. Run from this directory: sh gen.sh
set -e
sec() { # name title command; body on stdin
	printf '=== TSIM_SECTION_START:%s ===\nTITLE: %s\nCOMMAND: %s\nTIMESTAMP: 2026-11-27 12:00:00\n---\n' "$1" "$2" "$3"
	cat
	printf '\nEXIT_CODE: 0\n=== TSIM_SECTION_END:%s ===\n\n' "$1"
}
ifc() { # index name mac state addr...
	i=$1 n=$2 mac=$3; shift 3
	if [ "$n" = lo ]; then
		printf '%s: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000\n    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n' "$i"
	else
		printf '%s: %s@if%s: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default qlen 1000\n    link/ether %s brd ff:ff:ff:ff:ff:ff\n' "$i" "$n" "$i" "$mac"
	fi
	for a in "$@"; do
		printf '    inet %s scope global %s\n       valid_lft forever preferred_lft forever\n' "$a" "$n"
	done
}

{
echo "# Hostname: r1"
sec metadata "Router metadata" "cat /etc/tsim/metadata" <<'EOF'
type: core
EOF
sec interfaces "Network Interfaces" "ip addr show" <<EOF
$(ifc 1 lo - 127.0.0.1/8 10.255.0.1/32)
$(ifc 2 eth0 02:00:00:00:01:00 10.0.1.1/24)
$(ifc 3 eth1 02:00:00:00:01:01 10.0.12.1/24)
$(ifc 4 eth2 02:00:00:00:01:02 10.0.13.1/24)
EOF
sec rt_tables "Routing table names" "cat /etc/iproute2/rt_tables" <<'EOF'
255	local
254	main
253	default
0	unspec
100	alt
200	blk
201	unr
202	pro
203	sup
204	ecmp
EOF
sec policy_rules "IP Policy Rules" "ip rule show" <<'EOF'
0:	from all lookup local
10:	from all iif eth0 dport 1001 lookup alt
11:	from all oif eth1 dport 1002 lookup alt
12:	from all fwmark 0x10/0xf0 lookup alt
13:	from all tos 0x10 lookup alt
14:	from 10.0.1.128/25 dport 1005 lookup alt
15:	from all to 10.0.2.0/25 dport 1006 lookup alt
16:	from all ipproto udp dport 1007 lookup alt
17:	from all sport 5000-5100 dport 1008 lookup alt
18:	from all dport 1009-1010 lookup alt
19:	not from 10.0.0.0/8 lookup alt
20:	from all dport 2001 goto 30
25:	from all dport 2001 lookup blk
30:	from all dport 2001 lookup alt
31:	from all dport 2002 nop
32:	from all dport 2002 blackhole
33:	from all dport 2003 unreachable
34:	from all dport 2004 prohibit
35:	from all dport 2005 lookup blk
36:	from all dport 2006 lookup unr
37:	from all dport 2007 lookup pro
38:	from all dport 2008 lookup sup suppress_prefixlength 0
39:	from all dport 2009 lookup ecmp
40:	from all dport 2010 lookup alt
32766:	from all lookup main
32767:	from all lookup default
EOF
sec routing_table_main "IP Routing Table main" "ip route show table main" <<'EOF'
default via 10.0.12.2 dev eth1 metric 10
10.0.1.0/24 dev eth0 proto kernel scope link src 10.0.1.1
10.0.3.0/24 via 10.0.13.3 dev eth2 metric 10
10.0.3.0/24 via 10.0.12.2 dev eth1 metric 20
10.0.12.0/24 dev eth1 proto kernel scope link src 10.0.12.1
10.0.13.0/24 dev eth2 proto kernel scope link src 10.0.13.1
10.9.0.0/16 via 10.0.13.3 dev eth2
10.44.0.0/16 via 10.0.12.99 dev eth1
EOF
sec routing_table_100 "IP Routing Table alt (100)" "ip route show table 100" <<'EOF'
10.0.2.0/24 via 10.0.13.3 dev eth2
throw 10.0.2.128/25
EOF
sec routing_table_200 "IP Routing Table blk (200)" "ip route show table 200" <<'EOF'
blackhole 10.0.2.0/24
EOF
sec routing_table_201 "IP Routing Table unr (201)" "ip route show table 201" <<'EOF'
unreachable 10.0.2.0/24
EOF
sec routing_table_202 "IP Routing Table pro (202)" "ip route show table 202" <<'EOF'
prohibit 10.0.2.0/24
EOF
sec routing_table_203 "IP Routing Table sup (203)" "ip route show table 203" <<'EOF'
default via 10.0.13.3 dev eth2
EOF
sec routing_table_204 "IP Routing Table ecmp (204)" "ip route show table 204" <<'EOF'
10.0.2.0/24 proto static
	nexthop via 10.0.12.2 dev eth1 weight 1
	nexthop via 10.0.13.3 dev eth2 weight 1
EOF
sec iptables_save "iptables-save" "iptables-save" <<'EOF'
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -p tcp --dport 1003 -j MARK --set-mark 0x15
-A PREROUTING -p tcp --dport 1004 -j TOS --set-tos 0x10/0xff
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
COMMIT
EOF
} > r1_facts.txt

{
echo "# Hostname: r2"
sec metadata "Router metadata" "cat /etc/tsim/metadata" <<'EOF'
type: gateway
EOF
sec interfaces "Network Interfaces" "ip addr show" <<EOF
$(ifc 1 lo - 127.0.0.1/8)
$(ifc 2 eth0 02:00:00:00:02:00 10.0.12.2/24)
$(ifc 3 eth1 02:00:00:00:02:01 10.0.2.1/24)
$(ifc 4 eth9 02:00:00:00:02:09 203.0.113.2/24)
$(ifc 5 eth2 02:00:00:00:02:02 10.0.23.2/24)
EOF
sec policy_rules "IP Policy Rules" "ip rule show" <<'EOF'
0:	from all lookup local
32766:	from all lookup main
32767:	from all lookup default
EOF
sec routing_table_main "IP Routing Table main" "ip route show table main" <<'EOF'
default via 203.0.113.1 dev eth9
10.0.0.0/8 via 10.0.12.1 dev eth0
10.0.2.0/24 dev eth1 proto kernel scope link src 10.0.2.1
10.0.12.0/24 dev eth0 proto kernel scope link src 10.0.12.2
10.0.23.0/24 dev eth2 proto kernel scope link src 10.0.23.2
203.0.113.0/24 dev eth9 proto kernel scope link src 203.0.113.2
EOF
sec iptables_save "iptables-save" "iptables-save" <<'EOF'
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -i eth9 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.0.2.10:80
-A POSTROUTING -o eth9 -j MASQUERADE
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p icmp -j ACCEPT
-A INPUT -s 10.0.0.0/8 -p tcp -m tcp --dport 22 -j ACCEPT
COMMIT
EOF
sec sysctls "Routing sysctls" "sysctl -a" <<'EOF'
net.ipv4.ip_forward = 1
net.ipv4.conf.all.rp_filter = 0
net.ipv4.conf.eth9.rp_filter = 1
EOF
} > r2_facts.txt

{
echo "# Hostname: r3"
sec metadata "Router metadata" "cat /etc/tsim/metadata" <<'EOF'
type: access
EOF
sec interfaces "Network Interfaces" "ip addr show" <<EOF
$(ifc 1 lo - 127.0.0.1/8)
$(ifc 2 eth0 02:00:00:00:03:00 10.0.13.3/24)
$(ifc 3 eth1 02:00:00:00:03:01 10.0.3.1/24)
$(ifc 4 eth2 02:00:00:00:03:02 10.0.23.3/24)
EOF
sec policy_rules "IP Policy Rules" "ip rule show" <<'EOF'
0:	from all lookup local
32766:	from all lookup main
32767:	from all lookup default
EOF
sec routing_table_main "IP Routing Table main" "ip route show table main" <<'EOF'
10.0.0.0/8 via 10.0.13.1 dev eth0
10.0.2.0/24 via 10.0.23.2 dev eth2
10.0.3.0/24 dev eth1 proto kernel scope link src 10.0.3.1
10.0.13.0/24 dev eth0 proto kernel scope link src 10.0.13.3
10.0.23.0/24 dev eth2 proto kernel scope link src 10.0.23.3
10.9.0.0/16 via 10.0.13.1 dev eth0
EOF
sec iptables_save "iptables-save" "iptables-save" <<'EOF'
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:CHK - [0:0]
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -m set --match-set blocked src -j DROP
-A FORWARD -p tcp -m tcp --dport 24 -m u32 --u32 "0x0>>0x16&0x3c@0xc>>0x1a&0x3c@0x0=0x11" -j ACCEPT
-A FORWARD -j CHK
-A FORWARD -p tcp -m tcp --dport 23 -j REJECT --reject-with icmp-port-unreachable
-A FORWARD -j ACCEPT
-A CHK -p tcp -m tcp --dport 25 -j RETURN
-A CHK -s 10.0.1.77/32 -j REJECT --reject-with icmp-host-prohibited
COMMIT
EOF
sec ipset_save "ipset save" "ipset save" <<'EOF'
create blocked hash:ip family inet hashsize 1024 maxelem 65536
add blocked 10.0.1.66
EOF
sec sysctls "Routing sysctls" "sysctl -a" <<'EOF'
net.ipv4.ip_forward = 1
net.ipv4.conf.eth1.forwarding = 0
EOF
} > r3_facts.txt
