#!/bin/sh
# Generates the raw facts of the trace tests' asymmetric network (see
# ../../connection_test.go): client 10.1.0.0/24 behind a; a reaches the
# servers (10.4.0.0/24 and 10.6.0.0/24 behind d) through b, d answers
# through c. b is a stateful firewall (drops INVALID ssh), c drops INVALID
# icmp, a masquerades udp/5353 and splits 10.6.0.0/24 over b and c (ECMP,
# pinned hash seed), d forwards 10.4.0.200:80 to 10.4.0.10:8080, and b
# 10.4.0.201:80 (whose reply bypasses b, so it is not translated back).
# Run from this directory: sh gen.sh
set -e
sec() { # name title command; body on stdin
	printf '=== TSIM_SECTION_START:%s ===\nTITLE: %s\nCOMMAND: %s\nTIMESTAMP: 2026-12-07 12:00:00\n---\n' "$1" "$2" "$3"
	cat
	printf '\nEXIT_CODE: 0\n=== TSIM_SECTION_END:%s ===\n\n' "$1"
}
ifc() { # index name mac addr...
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
rules() {
	sec policy_rules "IP Policy Rules" "ip rule show" <<'EOF'
0:	from all lookup local
32766:	from all lookup main
32767:	from all lookup default
EOF
}
sysctls() { # extra lines on stdin
	sec sysctls "Routing sysctls" "sysctl -a" <<EOF
net.ipv4.ip_forward = 1
net.ipv4.conf.all.rp_filter = 0
net.ipv4.fib_multipath_hash_policy = 0
net.ipv4.fib_multipath_hash_fields = 7
net.netfilter.nf_conntrack_tcp_loose = 1
net.netfilter.nf_conntrack_tcp_be_liberal = 0
$(cat)
EOF
}
router() { # name
	echo "# Hostname: $1"
	sec metadata "Router metadata" "cat /etc/tsim/metadata" <<'EOF'
type: core
EOF
}

{
router a
sec interfaces "Network Interfaces" "ip addr show" <<EOF
$(ifc 1 lo - 127.0.0.1/8)
$(ifc 2 eth0 02:00:00:00:0a:00 10.1.0.1/24)
$(ifc 3 eth1 02:00:00:00:0a:01 10.12.0.1/24)
$(ifc 4 eth2 02:00:00:00:0a:02 10.13.0.1/24)
EOF
rules
sec routing_table_main "IP Routing Table main" "ip route show table main" <<'EOF'
10.1.0.0/24 dev eth0 proto kernel scope link src 10.1.0.1
10.4.0.0/24 via 10.12.0.2 dev eth1
10.6.0.0/24 proto static
	nexthop via 10.12.0.2 dev eth1 weight 1
	nexthop via 10.13.0.3 dev eth2 weight 1
10.12.0.0/24 dev eth1 proto kernel scope link src 10.12.0.1
10.13.0.0/24 dev eth2 proto kernel scope link src 10.13.0.1
EOF
sec iptables_save "iptables-save" "iptables-save" <<'EOF'
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -o eth1 -p udp -m udp --dport 5353 -j MASQUERADE
COMMIT
EOF
sysctls <<'EOF'
net.ipv4.fib_multipath_hash_seed = 77
EOF
} > a_facts.txt

{
router b
sec interfaces "Network Interfaces" "ip addr show" <<EOF
$(ifc 1 lo - 127.0.0.1/8)
$(ifc 2 eth0 02:00:00:00:0b:00 10.12.0.2/24)
$(ifc 3 eth1 02:00:00:00:0b:01 10.24.0.2/24)
EOF
rules
sec routing_table_main "IP Routing Table main" "ip route show table main" <<'EOF'
10.1.0.0/24 via 10.12.0.1 dev eth0
10.4.0.0/24 via 10.24.0.4 dev eth1
10.6.0.0/24 via 10.24.0.4 dev eth1
10.12.0.0/24 dev eth0 proto kernel scope link src 10.12.0.2
10.24.0.0/24 dev eth1 proto kernel scope link src 10.24.0.2
EOF
sec iptables_save "iptables-save" "iptables-save" <<'EOF'
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 10.4.0.201/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.4.0.10:8080
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -p tcp -m tcp --dport 22 -m conntrack --ctstate INVALID -j DROP
-A FORWARD -p tcp -m tcp --dport 8080 -j ACCEPT
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -p tcp -m tcp --dport 22 -j ACCEPT
-A FORWARD -p tcp -m tcp --dport 80 -j ACCEPT
-A FORWARD -p udp -m multiport --dports 53,5353 -j ACCEPT
-A FORWARD -p icmp -j ACCEPT
COMMIT
EOF
sysctls </dev/null
} > b_facts.txt

{
router c
sec interfaces "Network Interfaces" "ip addr show" <<EOF
$(ifc 1 lo - 127.0.0.1/8)
$(ifc 2 eth0 02:00:00:00:0c:00 10.13.0.3/24)
$(ifc 3 eth1 02:00:00:00:0c:01 10.34.0.3/24)
EOF
rules
sec routing_table_main "IP Routing Table main" "ip route show table main" <<'EOF'
10.1.0.0/24 via 10.13.0.1 dev eth0
10.4.0.0/24 via 10.34.0.4 dev eth1
10.6.0.0/24 via 10.34.0.4 dev eth1
10.13.0.0/24 dev eth0 proto kernel scope link src 10.13.0.3
10.34.0.0/24 dev eth1 proto kernel scope link src 10.34.0.3
EOF
sec iptables_save "iptables-save" "iptables-save" <<'EOF'
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -p icmp -m conntrack --ctstate INVALID -j DROP
-A FORWARD -j ACCEPT
COMMIT
EOF
sysctls </dev/null
} > c_facts.txt

{
router d
sec interfaces "Network Interfaces" "ip addr show" <<EOF
$(ifc 1 lo - 127.0.0.1/8)
$(ifc 2 eth0 02:00:00:00:0d:00 10.24.0.4/24)
$(ifc 3 eth1 02:00:00:00:0d:01 10.34.0.4/24)
$(ifc 4 eth2 02:00:00:00:0d:02 10.4.0.1/24)
$(ifc 5 eth3 02:00:00:00:0d:03 10.6.0.1/24)
EOF
rules
sec routing_table_main "IP Routing Table main" "ip route show table main" <<'EOF'
10.1.0.0/24 via 10.34.0.3 dev eth1
10.4.0.0/24 dev eth2 proto kernel scope link src 10.4.0.1
10.6.0.0/24 dev eth3 proto kernel scope link src 10.6.0.1
10.12.0.0/24 via 10.24.0.2 dev eth0
10.24.0.0/24 dev eth0 proto kernel scope link src 10.24.0.4
10.34.0.0/24 dev eth1 proto kernel scope link src 10.34.0.4
EOF
sec iptables_save "iptables-save" "iptables-save" <<'EOF'
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 10.4.0.200/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.4.0.10:8080
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
COMMIT
EOF
sysctls </dev/null
} > d_facts.txt
